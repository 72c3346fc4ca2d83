//! Progress of the steps that can take more than a second (imports, backends, copies into
//! the export repository, static deltas, triggers), as `report::Event::Progress`.
//!
//! A [`StepMeter`] lets a step report at most a few times a second however fast its work
//! goes (a renderer is never flooded and a JSON log stays small), and always its last
//! report (the pace is `crate::ticker`'s). [`BackendEvents`] turns what a backend sends
//! into pipeline events: its progress as progress, never as log lines.

use crate::report::{Event, Kind, Step};
use crate::ticker::{Meter, INTERVAL, TICK};

/// The progress reports of one step of one unit (a component, an image, a publish).
pub struct StepMeter {
    kind: Kind,
    name: String,
    step: Step,
    item: Option<String>,
    unit: &'static str,
    meter: Meter,
}

impl StepMeter {
    /// A step counting `unit`s, reporting at most every [`INTERVAL`]; a step whose `unit`
    /// is `seconds` (only its time to show) every [`TICK`].
    pub fn new(kind: Kind, name: &str, step: Step, unit: &'static str) -> StepMeter {
        let every = if unit == "seconds" { TICK } else { INTERVAL };
        StepMeter {
            kind,
            name: name.to_string(),
            step,
            item: None,
            unit,
            meter: Meter::new(every),
        }
    }

    /// What the step works on within the unit (a trigger's name).
    pub fn item(mut self, item: &str) -> StepMeter {
        self.item = Some(item.to_string());
        self
    }

    /// The report of `done` of `total` when one is due; the `last` one always.
    pub fn report(&mut self, done: u64, total: Option<u64>, last: bool) -> Option<Event> {
        if !self.meter.due() && !last {
            return None;
        }
        Some(Event::Progress {
            kind: self.kind,
            name: self.name.clone(),
            step: self.step,
            item: self.item.clone(),
            done,
            total,
            unit: self.unit.to_string(),
            elapsed: self.meter.elapsed(),
            last,
        })
    }

    /// A report of the time only (`done` is whole seconds), for steps that count nothing.
    pub fn tick(&mut self, last: bool) -> Option<Event> {
        let seconds = self.meter.elapsed() as u64;
        self.report(seconds, None, last)
    }
}

/// What one backend run sends, as pipeline events for the unit it builds: warnings stay
/// warnings and log lines log lines (named after the backend), progress is progress of the
/// unit's `backend` step, throttled, with a last report once the run is over.
pub struct BackendEvents {
    backend: String,
    meter: StepMeter,
    /// The newest progress the backend sent: (done, total, unit).
    latest: Option<(u64, Option<u64>, String)>,
}

impl BackendEvents {
    /// Events of backend `backend` building unit `name` of `kind`.
    pub fn new(kind: Kind, name: &str, backend: &str) -> BackendEvents {
        BackendEvents {
            backend: backend.to_string(),
            meter: StepMeter::new(kind, name, Step::Backend, ""),
            latest: None,
        }
    }

    /// The pipeline event for `event`, if one is due.
    pub fn convert(&mut self, event: &ostree_build_sdk::Event) -> Option<Event> {
        let ostree_build_sdk::Event::Progress { done, total, unit } = event else {
            return Some(Event::from_backend(&self.backend, event));
        };
        self.latest = Some((*done, *total, unit.clone()));
        self.progress(false)
    }

    /// The last progress report, once the run is over (none if it sent no progress).
    pub fn finish(&mut self) -> Option<Event> {
        self.progress(true)
    }

    fn progress(&mut self, last: bool) -> Option<Event> {
        let (done, total, unit) = self.latest.clone()?;
        let mut event = self.meter.report(done, total, last)?;
        if let Event::Progress { unit: u, .. } = &mut event {
            *u = unit;
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_reports_at_most_every_interval_and_always_its_last() {
        let mut m = StepMeter::new(Kind::Component, "c", Step::Import, "bytes");
        let sent = (0..1000u64)
            .filter_map(|i| m.report(i, Some(1000), false))
            .count();
        // The loop takes far less than one interval: only the first report is due.
        assert_eq!(sent, 1);
        match m.report(1000, Some(1000), true) {
            Some(Event::Progress {
                done, last: true, ..
            }) => assert_eq!(done, 1000),
            other => panic!("no last report: {other:?}"),
        }
    }

    #[test]
    fn backend_progress_is_progress_and_the_last_one_is_marked() {
        let mut b = BackendEvents::new(Kind::Component, "base", "debootstrap");
        let p = |done| ostree_build_sdk::Event::Progress {
            done,
            total: Some(10),
            unit: "packages".into(),
        };
        assert!(matches!(
            b.convert(&p(1)),
            Some(Event::Progress { done: 1, .. })
        ));
        // Too soon after the first: held back, and sent as the last one.
        assert!(b.convert(&p(2)).is_none());
        match b.finish() {
            Some(Event::Progress {
                done: 2,
                unit,
                last: true,
                ..
            }) => assert_eq!(unit, "packages"),
            other => panic!("{other:?}"),
        }
        let log = ostree_build_sdk::Event::Log {
            level: ostree_build_sdk::Level::Info,
            message: "hi".into(),
        };
        assert!(matches!(b.convert(&log), Some(Event::Log { .. })));
    }
}
