//! How far libostree's long calls are.
//!
//! A local pull: from libostree's `AsyncProgress`. The pull runs on a thread of
//! its own with a main context of its own (so two pulls in two threads never share the
//! global one); the progress object's `changed` signal is dispatched there, and stores the
//! counts where the caller's thread reads them.
//!
//! For a local source libostree imports metadata while it walks the trees and content
//! objects on its worker threads: done = metadata + content imported; the total is known
//! once the walk is over (`scanning` 0): done + what is still being written.
//!
//! A static delta: libostree 2022.7 reports nothing while it generates one, but it writes
//! each part to an unnamed temporary file in the delta's directory and keeps them all open
//! until it links them at the end, so the files this process holds open below `deltas/`
//! are the parts written so far (Linux's `/proc/self/fd`).

use anyhow::{anyhow, Result};
use std::sync::{Arc, Mutex};

/// Objects copied so far, and in all when known.
type DoneOf = (u64, Option<u64>);

/// (done, total) of the pull, shared between its thread and the caller's.
#[derive(Clone, Default)]
pub(super) struct Counts(Arc<Mutex<Option<DoneOf>>>);

impl Counts {
    pub(super) fn get(&self) -> Option<DoneOf> {
        self.0.lock().ok().and_then(|c| *c)
    }

    fn set(&self, progress: &ostree::AsyncProgress) {
        let done = u64::from(progress.uint("metadata-fetched-localcache"))
            + u64::from(progress.uint("content-fetched-localcache"));
        let total = match progress.uint("scanning") {
            0 => Some(done + u64::from(progress.uint("outstanding-writes"))),
            _ => None,
        };
        if let Ok(mut c) = self.0.lock() {
            *c = Some((done, total));
        }
    }
}

/// Run `pull` with a new `AsyncProgress` in a main context of this thread's own, keeping
/// `counts` up to date (and final once it returns).
pub(super) fn in_own_context(
    counts: &Counts,
    pull: impl FnOnce(&ostree::AsyncProgress) -> Result<()>,
) -> Result<()> {
    let context = glib::MainContext::new();
    context
        .with_thread_default(|| {
            let progress = ostree::AsyncProgress::new();
            let shared = counts.clone();
            progress.connect_changed(move |p| shared.set(p));
            let result = pull(&progress);
            // libostree sets the final counts as it ends; the signal for them may still
            // wait in the context.
            counts.set(&progress);
            progress.finish();
            result
        })
        .map_err(|e| anyhow!("cannot use a main context for the copy: {e}"))?
}

/// How many delta parts are being written below `repo`'s `deltas/` directory now.
pub(super) fn delta_parts_open(repo: &std::path::Path) -> u64 {
    let Ok(deltas) = repo.join("deltas").canonicalize() else {
        return 0;
    };
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let is_part = |target: &std::path::Path| {
        target.starts_with(&deltas)
            && target
                .file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with('#') || n.starts_with(".tmp"))
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| is_part(target))
        .count() as u64
}
