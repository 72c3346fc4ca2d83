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
//! A static delta: our writer (`delta_writer.rs`) counts the parts it has written, per
//! repository, for the whole process; a caller reads the count before and during a write.

use anyhow::{anyhow, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// Delta parts written by this process, per repository path.
static DELTA_PARTS: Mutex<BTreeMap<PathBuf, u64>> = Mutex::new(BTreeMap::new());

/// Count one more delta part written into `repo`.
pub(super) fn delta_part_written(repo: &Path) {
    if let Ok(mut parts) = DELTA_PARTS.lock() {
        *parts.entry(repo.to_path_buf()).or_default() += 1;
    }
}

/// How many delta parts this process has written into `repo` so far.
pub(super) fn delta_parts_written(repo: &Path) -> u64 {
    DELTA_PARTS
        .lock()
        .ok()
        .and_then(|p| p.get(repo).copied())
        .unwrap_or(0)
}
