//! The operations behind each command (cargo's `ops` split): they take a manifest and
//! typed options, do the work through the repository layer, and report events.

use std::time::Instant;

pub mod adhoc;
pub mod boot;
pub mod build;
pub mod cache;
pub mod clean;
mod compose;
mod delta;
pub mod diff;
mod dircache;
pub mod history;
pub mod jobs;
mod kept_tree;
pub mod log;
pub mod new;
pub mod new_backend;
pub mod plan;
pub mod promote;
pub mod prune;
pub mod publish;
pub mod serve;
pub mod status;

/// The timestamp of new commits: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
pub(crate) fn commit_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        })
}

/// Wall time of consecutive steps, for the one-line summary of a long step.
pub(crate) struct PhaseTimer {
    last: Instant,
    laps: Vec<(&'static str, f64)>,
}

impl PhaseTimer {
    pub(crate) fn start() -> Self {
        PhaseTimer {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    pub(crate) fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.laps.push((name, (now - self.last).as_secs_f64()));
        self.last = now;
    }

    /// The laps so far, as the build summary reports them.
    /// A step timed elsewhere (a delta written beside others), ending now.
    pub(crate) fn record(&mut self, name: &'static str, seconds: f64) {
        self.laps.push((name, seconds));
        self.last = Instant::now();
    }

    pub(crate) fn laps(&self) -> Vec<(String, f64)> {
        self.laps.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    pub(crate) fn report(&self) -> String {
        self.laps
            .iter()
            .map(|(n, s)| format!("{n} {s:.2}s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
