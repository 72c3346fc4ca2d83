//! Progress events for a person. On a terminal (stderr is a TTY): one live line per running
//! step, redrawn in place by indicatif and cleared while any other line prints (cargo's
//! way). Elsewhere (a CI log): no live line, but a plain line every 10 s for a step still
//! running, so a long step is never silent there. Under `-q`: nothing. JSON output prints
//! the events themselves (events.rs).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ostree_build_core::report::{human_bytes, Event, Kind, Step};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A running step: its unit, the step, and what it works on.
type Key = (Kind, String, Step, Option<String>);

/// How often a step still running gets a plain line when there is no terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The live lines of this process, so that an interrupt can clear them before its message.
static LIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Clear the live lines, if any (before a message printed outside the printer).
pub fn clear() {
    if let Ok(Some(multi)) = LIVE.lock().as_deref() {
        let _ = multi.clear();
    }
}

/// Where progress goes for a person.
pub struct Progress {
    mode: Mode,
    bars: BTreeMap<Key, ProgressBar>,
    /// When each step last got a plain line.
    printed: BTreeMap<Key, Instant>,
}

enum Mode {
    Off,
    Live(MultiProgress),
    Plain,
}

impl Progress {
    /// Progress for a person; `shown` false (JSON, `-q`) shows none.
    pub fn new(shown: bool) -> Progress {
        let mode = match (shown, std::io::stderr().is_terminal()) {
            (false, _) => Mode::Off,
            (true, true) => {
                let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                if let Ok(mut live) = LIVE.lock() {
                    *live = Some(multi.clone());
                }
                Mode::Live(multi)
            }
            (true, false) => Mode::Plain,
        };
        Progress {
            mode,
            bars: BTreeMap::new(),
            printed: BTreeMap::new(),
        }
    }

    /// Show one progress event.
    pub fn show(&mut self, event: &Event) {
        let Event::Progress {
            kind,
            name,
            step,
            item,
            last,
            elapsed,
            ..
        } = event
        else {
            return;
        };
        let key = (*kind, name.clone(), *step, item.clone());
        match &self.mode {
            Mode::Off => {}
            Mode::Live(multi) if *last => {
                if let Some(bar) = self.bars.remove(&key) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
            }
            Mode::Live(multi) => {
                let bar = self.bars.entry(key).or_insert_with(|| {
                    let style = ProgressStyle::with_template("{wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                    multi.add(ProgressBar::no_length().with_style(style))
                });
                bar.set_message(line(event));
            }
            Mode::Plain if *last || *elapsed < PLAIN_EVERY.as_secs_f64() => {}
            Mode::Plain => {
                let due = self
                    .printed
                    .get(&key)
                    .is_none_or(|at| at.elapsed() >= PLAIN_EVERY);
                if due {
                    self.printed.insert(key, Instant::now());
                    super::line(&line(event));
                }
            }
        }
    }

    /// The unit `name` of `kind` finished: none of its steps is running any more.
    pub fn unit_finished(&mut self, kind: Kind, name: &str) {
        let done: Vec<Key> = self
            .bars
            .keys()
            .filter(|k| k.0 == kind && k.1 == name)
            .cloned()
            .collect();
        for key in done {
            if let (Some(bar), Mode::Live(multi)) = (self.bars.remove(&key), &self.mode) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
        }
    }

    /// Print `text` as a normal line, the live lines cleared meanwhile and redrawn below it.
    pub fn println(&self, text: &str) {
        match &self.mode {
            Mode::Live(multi) if !self.bars.is_empty() => multi.suspend(|| super::line(text)),
            _ => super::line(text),
        }
    }
}

impl Drop for Progress {
    /// No live line outlives the printer (an error is printed after it is gone).
    fn drop(&mut self) {
        if let Mode::Live(multi) = &self.mode {
            for bar in self.bars.values() {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
            if let Ok(mut live) = LIVE.lock() {
                *live = None;
            }
        }
    }
}

/// The line of a progress event: `Importing component base: 45.3/93.1 MiB, 12s`.
pub fn line(event: &Event) -> String {
    let Event::Progress {
        kind,
        name,
        step,
        item,
        done,
        total,
        unit,
        elapsed,
        ..
    } = event
    else {
        return String::new();
    };
    let noun = match kind {
        Kind::Component => "component",
        Kind::Image | Kind::Publish => "image",
    };
    let item = item.as_deref().unwrap_or_default();
    let (verb, what) = match step {
        Step::Backend => ("Building", format!("{noun} {name}")),
        Step::Import => ("Importing", format!("{noun} {name}")),
        Step::Copy if item.is_empty() => ("Copying", format!("{noun} {name}")),
        Step::Copy => ("Copying", format!("{noun} {name} ({item})")),
        Step::Delta => ("Computing", format!("static delta of {noun} {name}")),
        Step::Trigger => ("Running", format!("trigger {item} of {noun} {name}")),
    };
    let measure = match (unit.as_str(), total) {
        ("seconds", _) | ("", _) => String::new(),
        ("bytes", Some(t)) => format!("{}, ", bytes_of(*done, *t)),
        ("bytes", None) => format!("{}, ", human_bytes(*done)),
        (unit, Some(t)) => format!("{done}/{t} {unit}, "),
        (unit, None) => format!("{done} {unit}, "),
    };
    format!("{verb:>9} {what}: {measure}{elapsed:.0}s")
}

/// `45.3/93.1 MiB`: both in the unit of the total.
fn bytes_of(done: u64, total: u64) -> String {
    let total_text = human_bytes(total);
    let Some((_, unit)) = total_text.split_once(' ') else {
        return total_text;
    };
    let scale = match unit {
        "KiB" => 1024f64,
        "MiB" => 1024f64 * 1024.0,
        "GiB" => 1024f64 * 1024.0 * 1024.0,
        _ => return format!("{done}/{total} B"),
    };
    format!(
        "{:.1}/{:.1} {unit}",
        done as f64 / scale,
        total as f64 / scale
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(step: Step, done: u64, total: Option<u64>, unit: &str) -> Event {
        Event::Progress {
            kind: Kind::Component,
            name: "oe-core".into(),
            step,
            item: None,
            done,
            total,
            unit: unit.into(),
            elapsed: 12.4,
            last: false,
        }
    }

    #[test]
    fn lines_say_what_runs_how_far_and_for_how_long() {
        let e = progress(Step::Import, 47_500_000, Some(97_600_000), "bytes");
        assert_eq!(line(&e), "Importing component oe-core: 45.3/93.1 MiB, 12s");
        let e = progress(Step::Backend, 3, Some(10), "packages");
        assert_eq!(line(&e), " Building component oe-core: 3/10 packages, 12s");
        let e = progress(Step::Import, 1200, None, "files");
        assert_eq!(line(&e), "Importing component oe-core: 1200 files, 12s");
    }
}
