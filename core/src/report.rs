//! Events the pipeline reports while it works. The CLI renders them as lines for a
//! person or as JSON lines for CI; the core never prints.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Component,
    Image,
    Publish,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// What will happen to one unit and why.
    Plan {
        kind: Kind,
        name: String,
        /// "build", "compose", "publish" or "fresh".
        action: String,
        reason: String,
    },
    /// A unit started.
    Started {
        kind: Kind,
        name: String,
    },
    /// A unit finished.
    Finished {
        kind: Kind,
        name: String,
        commit: String,
        seconds: f64,
        detail: String,
    },
    /// A message from a backend or a step.
    Log {
        name: String,
        message: String,
    },
    Warning {
        message: String,
    },
    /// Every path the components of an image provide differently (the error that follows
    /// shows the first ones).
    Conflicts {
        image: String,
        conflicts: Vec<crate::repo::Conflict>,
    },
    /// Waiting for another run's lock.
    Waiting {
        message: String,
    },
    /// The end of a run.
    Summary {
        built: usize,
        composed: usize,
        published: usize,
        fresh: usize,
        seconds: f64,
        phases: Vec<(String, f64)>,
    },
}

impl Event {
    /// What backend `name` sent, as a pipeline event: its warnings stay warnings (a quiet
    /// run still shows them), the rest are log lines.
    pub fn from_backend(name: &str, event: &ostree_build_sdk::Event) -> Event {
        match event {
            ostree_build_sdk::Event::Log {
                level: ostree_build_sdk::Level::Warn,
                message,
            } => Event::Warning {
                message: format!("{name}: {message}"),
            },
            _ => Event::Log {
                name: name.to_string(),
                message: event.text(),
            },
        }
    }
}

pub trait Reporter {
    fn event(&mut self, event: Event);
}

/// A reporter that keeps events (for tests and library users).
#[derive(Default)]
pub struct Collect(pub Vec<Event>);

impl Reporter for Collect {
    fn event(&mut self, event: Event) {
        self.0.push(event);
    }
}
