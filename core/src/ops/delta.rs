//! Static deltas for `publish` and `promote`: the `[publish] delta` policy (auto keeps a
//! delta only when it saves clients downloads), and several deltas written at once, one per
//! core, since libostree compresses a delta on one core.

use crate::manifest::{DeltaPolicy, Manifest};
use crate::repo::{DeltaSize, Repo};
use anyhow::{anyhow, Result};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A delta to write: `from` is the commit the ref pointed at.
#[derive(Debug, Clone)]
pub(super) struct DeltaJob {
    pub from: String,
    pub to: String,
}

/// What became of a [`DeltaJob`].
#[derive(Debug, Clone, Copy)]
pub(super) struct DeltaDone {
    pub size: DeltaSize,
    /// False: `auto` removed it, as it saved nothing.
    pub kept: bool,
    pub seconds: f64,
}

impl DeltaDone {
    /// How publish's summary line describes it.
    pub(super) fn describe(&self, from: &str) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        let from = &from[..12.min(from.len())];
        let (delta, objects) = (mb(self.size.delta_bytes), mb(self.size.replaced_bytes));
        match self.kept {
            true => format!(
                "static delta from {from} ({delta:.1} MB for {objects:.1} MB of objects, {} fallback(s))",
                self.size.fallbacks
            ),
            false => format!(
                "no static delta from {from}: {delta:.1} MB would replace {objects:.1} MB of objects (delta = \"auto\")"
            ),
        }
    }
}

/// The delta `from` -> `to` a publish or promote writes, if the policy wants one and the
/// export repository still has `from`.
pub(super) fn wanted(
    manifest: &Manifest,
    export: &Repo,
    from: Option<&str>,
    to: &str,
) -> Result<Option<DeltaJob>> {
    let Some(from) = from else { return Ok(None) };
    if manifest.publish.delta_policy() == DeltaPolicy::Never || !export.has_commit(from)? {
        return Ok(None);
    }
    Ok(Some(DeltaJob {
        from: from.to_string(),
        to: to.to_string(),
    }))
}

/// Write `jobs` into the export repository at `export`, as many at once as there are cores
/// (each worker with its own handle on the repository). Results in the order of `jobs`.
pub(super) fn write_all(
    manifest: &Manifest,
    export: &Path,
    jobs: &[DeltaJob],
) -> Result<Vec<DeltaDone>> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<DeltaDone>>>> =
        Mutex::new(jobs.iter().map(|_| None).collect());
    let policy = manifest.publish.delta_policy();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut i = next.fetch_add(1, Ordering::SeqCst);
                while let Some(job) = jobs.get(i) {
                    let done = write_one(export, job, policy);
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(done);
                    }
                    i = next.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| anyhow!("a delta worker panicked"))?;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow!("a delta worker stopped early"))))
        .collect()
}

/// Write one delta; with `auto`, remove it again when it saves nothing.
fn write_one(export: &Path, job: &DeltaJob, policy: DeltaPolicy) -> Result<DeltaDone> {
    let t = Instant::now();
    let repo = Repo::open_existing(export)?
        .ok_or_else(|| anyhow!("no repository at {}", export.display()))?;
    repo.generate_delta(&job.from, &job.to)?;
    let size = repo.delta_size(&job.from, &job.to)?;
    let kept = policy != DeltaPolicy::Auto || size.saves();
    if !kept {
        repo.delete_delta(&job.from, &job.to)?;
    }
    Ok(DeltaDone {
        size,
        kept,
        seconds: t.elapsed().as_secs_f64(),
    })
}
