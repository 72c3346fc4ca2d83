//! What a backend reports while it runs: [`Event`]s (log lines and progress) sent to an
//! [`EventSink`]. The core shows log lines under the component's name as they arrive, and
//! progress as the component's progress (a live line on a terminal, a JSON `progress`
//! event), at most a few a second, the newest always shown once the run is over.

use serde::{Deserialize, Serialize};

/// Log levels a backend may use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// Events a backend sends while it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// A line for people.
    Log { level: Level, message: String },
    /// `done` of `total` (if known) `unit`s, e.g. 3 of 10 packages.
    Progress {
        done: u64,
        total: Option<u64>,
        unit: String,
    },
}

impl Event {
    /// The event as one line of text for people (`3/10 packages` for progress).
    pub fn text(&self) -> String {
        match self {
            Event::Log { message, .. } => message.clone(),
            Event::Progress {
                done,
                total: Some(t),
                unit,
            } => format!("{done}/{t} {unit}"),
            Event::Progress { done, unit, .. } => format!("{done} {unit}"),
        }
    }
}

/// Where a backend sends its events. Implement [`EventSink::event`]; the other methods
/// are shorthands.
///
/// ```
/// use ostree_build_sdk::{Event, EventSink};
///
/// // A sink that keeps the events, as a backend's own tests may use.
/// struct Keep(Vec<Event>);
/// impl EventSink for Keep {
///     fn event(&mut self, event: Event) {
///         self.0.push(event);
///     }
/// }
///
/// let mut sink = Keep(vec![]);
/// sink.info("downloading");
/// sink.progress(3, Some(10), "packages");
/// assert_eq!(sink.0[1].text(), "3/10 packages");
/// ```
pub trait EventSink {
    /// Send one event.
    fn event(&mut self, event: Event);

    /// A log line at `level`.
    fn log(&mut self, level: Level, message: &str) {
        self.event(Event::Log {
            level,
            message: message.into(),
        })
    }

    fn debug(&mut self, message: &str) {
        self.log(Level::Debug, message)
    }

    fn info(&mut self, message: &str) {
        self.log(Level::Info, message)
    }

    fn warn(&mut self, message: &str) {
        self.log(Level::Warn, message)
    }

    /// Progress: `done` of `total` (`None`: unknown) `unit`s.
    fn progress(&mut self, done: u64, total: Option<u64>, unit: &str) {
        self.event(Event::Progress {
            done,
            total,
            unit: unit.into(),
        })
    }
}

/// A sink that drops every event (for calls whose events nobody shows, like `plan`, and
/// for tests).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&mut self, _event: Event) {}
}
