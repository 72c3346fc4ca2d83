//! Progress events for a person. On a terminal (stderr is a TTY): one live line per running
//! unit (component, image, publish), redrawn in place by indicatif and cleared while any
//! other line prints (cargo's way): the progress of its current step, or, while no step
//! reports, what it is doing and for how long. Elsewhere (a CI log): no live line, but a
//! plain line every 10 s for a step still running, so a long step is never silent there.
//! Under `-q`: nothing. JSON output prints the events themselves (events.rs).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ostree_build_core::report::{human_bytes, Event, Kind, Step};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A running step: its unit, the step, and what it works on.
type Key = (Kind, String, Step, Option<String>);

/// A running unit.
type Unit = (Kind, String);

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
    /// The live line of each running unit, and what it says while no step reports.
    bars: BTreeMap<Unit, (ProgressBar, Option<String>)>,
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
        let unit = (*kind, name.clone());
        match &self.mode {
            Mode::Off => {}
            Mode::Live(_) if *last => match self.bars.get(&unit) {
                Some((bar, Some(title))) => show_title(bar, title),
                Some((_, None)) => self.unit_finished(*kind, name),
                None => {}
            },
            Mode::Live(multi) => {
                let (bar, _) = self
                    .bars
                    .entry(unit)
                    .or_insert_with(|| (multi.add(ProgressBar::no_length()), None));
                bar.set_style(style("{wide_msg}"));
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

    /// The unit `name` of `kind` started, saying `title` (`Building component base`): its
    /// live line says so, with the time it has been running, until a step reports.
    pub fn unit_started(&mut self, kind: Kind, name: &str, title: &str) {
        let Mode::Live(multi) = &self.mode else {
            return;
        };
        let bar = multi.add(ProgressBar::no_length());
        bar.enable_steady_tick(Duration::from_secs(1));
        show_title(&bar, title);
        self.bars
            .insert((kind, name.to_string()), (bar, Some(title.to_string())));
    }

    /// The unit `name` of `kind` finished: its live line goes.
    pub fn unit_finished(&mut self, kind: Kind, name: &str) {
        if let (Some((bar, _)), Mode::Live(multi)) =
            (self.bars.remove(&(kind, name.to_string())), &self.mode)
        {
            bar.finish_and_clear();
            multi.remove(&bar);
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
            for (bar, _) in self.bars.values() {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
            if let Ok(mut live) = LIVE.lock() {
                *live = None;
            }
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A unit's live line while no step reports: `Composing image standard: 3s`.
fn show_title(bar: &ProgressBar, title: &str) {
    bar.set_style(style("{msg}: {elapsed}"));
    bar.set_message(title.to_string());
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
        Step::Worktree => ("Preparing", format!("the worktree of {noun} {name}")),
    };
    let measure = match (unit.as_str(), total) {
        // Nothing counted yet, nor known to come: only the time says something.
        ("seconds", _) | ("", _) | (_, None) if *done == 0 => String::new(),
        ("seconds", _) | ("", _) => String::new(),
        ("bytes", Some(t)) => format!("{}, ", bytes_of(*done, *t)),
        ("bytes", None) => format!("{}, ", human_bytes(*done)),
        (unit, Some(t)) => format!("{done}/{t} {unit}, "),
        // `1 part`, not `1 parts` (a one-word unit; `packages fetched` stays).
        (unit, None) if *done == 1 && !unit.contains(' ') => {
            format!("1 {}, ", unit.strip_suffix('s').unwrap_or(unit))
        }
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
        let e = progress(Step::Delta, 1, None, "parts");
        assert_eq!(
            line(&e),
            "Computing static delta of component oe-core: 1 part, 12s"
        );
        let e = progress(Step::Delta, 0, None, "parts");
        assert_eq!(line(&e), "Computing static delta of component oe-core: 12s");
    }
}
