//! Publishing: copying images into the `archive` export repository (in the background
//! while the build goes on, then what is left), static deltas from the previously
//! published commit, the export refs and the summary.

use crate::manifest::Manifest;
use crate::repo::{Repo, RepoKind};
use crate::report::{Event, Kind, Reporter};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

/// Copies of component and union commits into the export repository, made in the
/// background by one worker while other components import and triggers run: compressing
/// into the archive repository is the most expensive step of a cold build, and the image
/// shares nearly all its objects with them. Only an optimisation: publish copies the image
/// in any case, so failures here are ignored. Dropped on an error path, the worker is
/// cancelled and waited for.
#[derive(Default)]
pub(super) struct Prefetch {
    cancel: crate::repo::Cancel,
    queue: Option<mpsc::Sender<String>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Prefetch {
    pub(super) fn start(
        &mut self,
        build: &std::path::Path,
        export: &std::path::Path,
        commit: &str,
    ) {
        if self.queue.is_none() {
            let (tx, rx) = mpsc::channel::<String>();
            let (build, export, cancel) = (
                build.to_path_buf(),
                export.to_path_buf(),
                self.cancel.clone(),
            );
            self.worker = Some(std::thread::spawn(move || {
                let Ok(Some(export)) = Repo::open_existing(&export) else {
                    return;
                };
                // One syncfs per copied component would flush the whole filesystem each
                // time; publish's own synced transactions make these objects durable
                // before any export ref moves.
                export.skip_fsync();
                for commit in rx {
                    if export
                        .pull_commit_cancellable(&build, &commit, &cancel)
                        .is_err()
                    {
                        return;
                    }
                }
            }));
            self.queue = Some(tx);
        }
        if let Some(q) = &self.queue {
            let _ = q.send(commit.to_string());
        }
    }

    fn finish(&mut self) {
        self.queue = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.cancel.cancel();
            self.finish();
        }
    }
}

/// Copy images into the export repository, generate deltas from the previously published
/// commit, then move the refs and regenerate the summary. Returns the images published.
pub(super) fn publish(
    manifest: &Manifest,
    build_path: &std::path::Path,
    image_commits: &BTreeMap<String, String>,
    mut prefetch: Prefetch,
    rep: &mut dyn Reporter,
) -> Result<Vec<String>> {
    // First the background copies, then what is left.
    if prefetch.worker.is_some() {
        rep.event(Event::Log {
            name: "publish".into(),
            message: format!(
                "finishing the background copy into {}",
                manifest.export_repo_path().display()
            ),
        });
    }
    prefetch.finish();
    let wanted: Vec<(&String, &String)> = image_commits
        .iter()
        .filter(|(name, _)| manifest.images[*name].publish)
        .collect();
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    let export = Repo::open_or_create(&manifest.export_repo_path(), RepoKind::Export)?;
    export.ensure_zlib_level(manifest.publish.zlib_level.as_ref().map(|l| *l.get_ref()))?;
    let mut published = Vec::new();
    for (name, commit) in wanted {
        let ref_name = manifest.image_ref(name);
        let previous = export.resolve(&ref_name)?;
        if previous.as_deref() == Some(commit.as_str()) {
            continue;
        }
        rep.event(Event::Started {
            kind: Kind::Publish,
            name: name.clone(),
        });
        let t = Instant::now();
        let mut timer = super::PhaseTimer::start();
        export
            .pull_commit_from(build_path, commit)
            .with_context(|| {
                format!("image '{name}' was not published; the export ref was not changed")
            })?;
        timer.lap("copy");
        let mut detail = String::from("copied");
        if let Some(prev) = previous.as_deref().filter(|_| manifest.publish.deltas) {
            if export.has_commit(prev)? {
                export.generate_delta(prev, commit).with_context(|| {
                    format!("image '{name}' was not published; the export ref was not changed")
                })?;
                detail.push_str(&format!(
                    ", static delta from {}",
                    &prev[..12.min(prev.len())]
                ));
                timer.lap("delta");
            }
        }
        export.set_refs(&[(ref_name.clone(), commit.clone())])?;
        timer.lap("ref");
        rep.event(Event::Finished {
            kind: Kind::Publish,
            name: name.clone(),
            commit: commit.clone(),
            seconds: t.elapsed().as_secs_f64(),
            detail: format!("{detail} -> {ref_name}; {}", timer.report()),
        });
        published.push(name.clone());
    }
    if manifest.publish.summary && (!published.is_empty() || export.summary_is_stale()?) {
        refresh_summary(manifest, &export)?;
    }
    Ok(published)
}

/// Write the export repository's summary anew (after publish, or after prune removed
/// deltas). The one place that does it, so that signing it changes every caller.
pub(super) fn refresh_summary(_manifest: &Manifest, export: &Repo) -> Result<()> {
    export.regenerate_summary()
}
