//! Events the pipeline reports while it works, and the text of an error as a user reads
//! it. The CLI renders events as lines for a person or as JSON lines for CI; the core
//! never prints.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Component,
    Image,
    Publish,
}

/// A step of a unit that can take long enough to report its progress.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The backend populating a component's root (its own `progress` events).
    Backend,
    /// A tarball (compressed bytes read) or a directory (files) imported as a commit.
    Import,
    /// Objects copied into the export repository.
    Copy,
    /// A static delta being generated.
    Delta,
    /// A trigger running in an image.
    Trigger,
    /// An image's trigger worktree checked out or synced to the tree the triggers see.
    Worktree,
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
    /// A component taken from the shared cache instead of built.
    Pulled {
        name: String,
        commit: String,
        seconds: f64,
        detail: String,
    },
    /// How far one step of a unit is: `done` of `total` (when known) `unit`s (`bytes`,
    /// `files`, `objects`, a backend's own, or `seconds` for a step that has only its
    /// time to show), `elapsed` seconds into the step. At most a few a second per step;
    /// the step's last report has `last` set (see `crate::progress`).
    Progress {
        kind: Kind,
        name: String,
        step: Step,
        /// What the step works on within the unit (a trigger's name).
        #[serde(skip_serializing_if = "Option::is_none")]
        item: Option<String>,
        done: u64,
        total: Option<u64>,
        unit: String,
        elapsed: f64,
        last: bool,
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
        pulled: usize,
        composed: usize,
        published: usize,
        fresh: usize,
        seconds: f64,
        phases: Vec<(String, f64)>,
    },
}

impl Event {
    /// What backend `name` sent, as a pipeline event: its warnings stay warnings (a quiet
    /// run still shows them), the rest are log lines. Progress is turned into progress
    /// events by `crate::progress::BackendEvents`, which calls this for the rest.
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

/// The error chain, outermost first; the innermost cause is what a user acts on, so it is
/// kept whole (with its help lines).
pub fn error_text(e: &anyhow::Error) -> String {
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    let Some((last, rest)) = chain.split_last() else {
        return String::new();
    };
    let mut lines = last.lines();
    let first = lines.next().unwrap_or_default();
    let mut out = rest
        .iter()
        .map(String::as_str)
        .chain([first])
        .collect::<Vec<_>>()
        .join(": ");
    for l in lines {
        out.push('\n');
        out.push_str(l);
    }
    out
}

/// Bytes for people: B, KiB, MiB, GiB (one decimal above bytes).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_innermost_cause_keeps_its_help_lines() {
        let e = anyhow::anyhow!("no such thing\n  help: try this")
            .context("component 'a'")
            .context("build failed");
        assert_eq!(
            super::error_text(&e),
            "build failed: component 'a': no such thing\n  help: try this"
        );
        assert_eq!(super::error_text(&anyhow::anyhow!("plain")), "plain");
    }
}
