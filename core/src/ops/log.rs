//! `ostree-build log NAME`: an image's published history (or a component's), newest
//! first, with versions, dates, sizes, signatures and package counts. Read-only.
//!
//! Sizes are storage sizes (stat only): `size` is every object the commit reaches, what a
//! new client downloads (compressed, in the `archive` export repository; uncompressed in
//! the build repository); `new_size` is what the commit adds to its parent, what an
//! updating client downloads without a static delta.

use super::history::{utc_date, History};
use super::plan::{META_PACKAGES, META_VERSION};
use super::promote::META_PROMOTED_FROM;
use crate::manifest::Manifest;
use crate::repo::{CommitInfo, Objects, Repo, Signature};
use anyhow::Result;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct LogEntry {
    pub kind: &'static str,
    pub name: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// "export" or "build".
    pub repository: &'static str,
    pub commit: String,
    pub parent: Option<String>,
    pub version: Option<String>,
    pub timestamp: u64,
    /// `timestamp` as `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    pub subject: String,
    pub size: u64,
    /// Bytes of the objects the parent does not have; absent when the parent is gone.
    pub new_size: Option<u64>,
    pub signatures: Vec<Signature>,
    /// How many packages the backends recorded; absent when they recorded none.
    pub packages: Option<usize>,
    pub promoted_from: Option<String>,
    /// The parent is recorded but no longer in the repository (pruned).
    pub history_pruned: bool,
    /// With `history_pruned` on an export ref: the missing parent is still in the build
    /// repository (pruned from the export repository only, or never published).
    pub parent_in_build_repo: bool,
}

/// The newest `limit` commits (all without a limit) of image or component `name`.
pub fn log(manifest: &Manifest, name: &str, limit: Option<usize>) -> Result<Vec<LogEntry>> {
    let history = History::open(manifest, name)?;
    let walk = history.walk(limit)?;
    let keyring = super::publish::keyring_path(manifest);
    let sets = object_sets(&history, &walk.commits)?;
    let in_build = walk.pruned && parent_in_build(manifest, &history, &walk.commits)?;
    let mut out = Vec::new();
    for (i, c) in walk.commits.iter().enumerate() {
        let size = history.repo.storage_size(&sets[i], None)?;
        let new_size = match sets.get(i + 1) {
            Some(parent) => Some(history.repo.storage_size(&sets[i], Some(parent))?),
            None => None,
        };
        let last = i + 1 == walk.commits.len();
        out.push(LogEntry {
            kind: history.kind,
            name: history.name.clone(),
            ref_name: history.ref_name.clone(),
            repository: history.repository,
            commit: c.checksum.clone(),
            parent: c.parent.clone(),
            version: c.metadata.get(META_VERSION).cloned(),
            timestamp: c.timestamp,
            date: utc_date(c.timestamp),
            subject: c.subject.clone(),
            size,
            new_size,
            signatures: history.repo.signatures(&c.checksum, Some(&keyring))?,
            packages: c.lists.get(META_PACKAGES).map(Vec::len),
            promoted_from: c.metadata.get(META_PROMOTED_FROM).cloned(),
            history_pruned: last && walk.pruned,
            parent_in_build_repo: last && in_build,
        });
    }
    Ok(out)
}

/// Whether the missing parent of the oldest listed commit of an export ref is in the
/// build repository.
fn parent_in_build(manifest: &Manifest, history: &History, commits: &[CommitInfo]) -> Result<bool> {
    let Some(parent) = commits.last().and_then(|c| c.parent.as_deref()) else {
        return Ok(false);
    };
    if history.repository != "export" {
        return Ok(false);
    }
    match Repo::open_existing(&manifest.build_repo_path())? {
        Some(build) => build.has_commit(parent),
        None => Ok(false),
    }
}

/// The object set of each listed commit, then of the last one's parent when it is
/// present (for its `new_size`).
fn object_sets(history: &History, commits: &[CommitInfo]) -> Result<Vec<Objects>> {
    let mut sets = Vec::new();
    for c in commits {
        sets.push(history.repo.objects(&c.checksum)?);
    }
    if let Some(parent) = commits.last().and_then(|c| c.parent.as_deref()) {
        if history.repo.has_commit(parent)? {
            sets.push(history.repo.objects(parent)?);
        }
    }
    Ok(sets)
}
