//! `ostree-build prune`: retention for the export repository (the newest commits of each
//! published image ref by the `[retention]` policy, their objects and static deltas), the
//! build repository (what no ref and no build state needs) and the package caches.
//!
//! Everything is decided before anything is deleted: a policy that would keep no commit of
//! a ref is refused for all refs. Under the project lock, so no build is running.

use super::compose::trigger_state_needs;
use super::publish::{lock_export, WhenLocked};
use crate::lock::ProjectLock;
use crate::manifest::Manifest;
use crate::repo::{Delta, PruneCount, Reachable, Repo};
use crate::report::{Event, Reporter};
use crate::retention::{describe_age, parse_age, Policy, AGE_HINT};
use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Overrides `retention.keep`.
    pub keep: Option<usize>,
    /// Overrides `retention.keep-younger-than` (`30d`).
    pub keep_younger_than: Option<String>,
    pub dry_run: bool,
}

/// One commit of a published ref, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CommitBrief {
    pub commit: String,
    pub version: Option<String>,
    pub timestamp: u64,
}

/// What happens to one published ref's history.
#[derive(Debug, Clone, Serialize)]
pub struct RefRetention {
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub kept: Vec<CommitBrief>,
    pub removed: Vec<CommitBrief>,
}

/// A file or directory of a package cache that goes, and why.
#[derive(Debug, Clone, Serialize)]
pub struct CacheEntry {
    pub path: PathBuf,
    pub bytes: u64,
    pub reason: String,
}

/// What prune removed, or with `dry_run` would remove.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub refs: Vec<RefRetention>,
    pub deltas: Vec<Delta>,
    pub export: PruneCount,
    pub build: PruneCount,
    pub caches: Vec<CacheEntry>,
    pub summary_regenerated: bool,
}

pub fn prune(
    manifest: &Manifest,
    options: &PruneOptions,
    rep: &mut dyn Reporter,
) -> Result<PruneReport> {
    let policy = policy(manifest, options)?;
    let lock = ProjectLock::acquire_keeping_scratch(&manifest.state_dir(), || {
        rep.event(Event::Waiting {
            message: "waiting for another ostree-build run on this project to finish".into(),
        })
    })?;
    let mut report = PruneReport {
        dry_run: options.dry_run,
        ..Default::default()
    };
    let export = Repo::open_existing(&manifest.export_repo_path())?;
    // A publish from another checkout sharing the export repository must not move a ref
    // while prune decides what its history keeps.
    let _export_lock = match &export {
        Some(e) => Some(lock_export(e, WhenLocked::Wait, rep)?),
        None => None,
    };
    let export_keep = match &export {
        Some(e) => Some(plan_export(manifest, e, &policy, &mut report)?),
        None => None,
    };
    let build = Repo::open_existing(&manifest.build_repo_path())?;
    let build_keep = match &build {
        Some(b) => Some(build_keep(manifest, b, &lock.state_dir)?),
        None => None,
    };
    if let (Some(b), Some(keep)) = (&build, &build_keep) {
        report.build = b.unreachable(keep)?.0;
    }
    report.caches = cache_plan(manifest, &lock.state_dir);
    if !options.dry_run {
        if let (Some(e), Some(keep)) = (&export, &export_keep) {
            apply_export(manifest, e, keep, &mut report)?;
        }
        if let (Some(b), Some(keep)) = (&build, &build_keep) {
            report.build = b.prune_except(keep)?;
        }
        for entry in &report.caches {
            crate::fsutil::remove_entry(&entry.path)?;
        }
    }
    Ok(report)
}

/// The command line's rules, else the manifest's; none at all is an error.
fn policy(manifest: &Manifest, options: &PruneOptions) -> Result<Policy> {
    let mut policy = manifest.retention_policy();
    if options.keep.is_some() || options.keep_younger_than.is_some() {
        policy = Policy::default();
    }
    if let Some(n) = options.keep {
        if n == 0 {
            bail!("--keep 0 would delete every published commit\n  help: --keep 1 keeps only the newest commit of each published ref");
        }
        policy.keep = Some(n);
    }
    if let Some(age) = &options.keep_younger_than {
        let secs =
            parse_age(age).map_err(|e| anyhow!("--keep-younger-than: {e}\n  help: {AGE_HINT}"))?;
        policy.younger_than = Some(secs);
    }
    if policy.is_empty() {
        bail!(
            "{}: no retention policy: prune does not know how many commits to keep\n  help: add `[retention]` with `keep = 10` or `keep-younger-than = \"30d\"` to the manifest, or pass --keep N",
            manifest.path.display()
        );
    }
    Ok(policy)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Decide what the export repository keeps: by the policy for the manifest's published
/// image refs, everything for any other ref (promoted refs, images no longer in the
/// manifest). Fills the report's refs, deltas and object count.
fn plan_export(
    manifest: &Manifest,
    export: &Repo,
    policy: &Policy,
    report: &mut PruneReport,
) -> Result<Reachable> {
    let managed: BTreeSet<String> = manifest
        .images
        .iter()
        .filter(|(_, s)| s.publish)
        .map(|(n, _)| manifest.image_ref(n))
        .collect();
    let mut keep = Reachable::default();
    let mut refused = Vec::new();
    for (ref_name, head) in export.refs()? {
        if !managed.contains(&ref_name) {
            export.keep_commit(&mut keep, &head, -1)?;
            continue;
        }
        match keep_published(export, policy, &ref_name, &head, &mut keep)? {
            Ok(r) => report.refs.push(r),
            Err(why) => refused.push(why),
        }
    }
    if let Some(first) = refused.first() {
        let more: String = refused[1..]
            .iter()
            .map(|r| format!("\n  help: the policy keeps no commit of {r} either"))
            .collect();
        bail!(
            "refusing to prune: the retention policy keeps no commit of {first}{more}\n  help: nothing was deleted; keep at least one commit (e.g. --keep 1, or a longer keep-younger-than)"
        );
    }
    let (count, gone) = export.unreachable(&keep)?;
    for r in &mut report.refs {
        r.removed.retain(|c| gone.contains(&c.commit));
    }
    let present = |c: &str| !gone.contains(c) && export.has_commit(c).unwrap_or(false);
    report.deltas = export
        .static_deltas()?
        .into_iter()
        .filter(|d| !present(&d.to) || d.from.as_deref().is_some_and(|f| !present(f)))
        .collect();
    report.export = count;
    Ok(keep)
}

/// Keep the commits of one published ref the policy keeps; `Err` (inside `Ok`) says why
/// the policy would keep none.
fn keep_published(
    export: &Repo,
    policy: &Policy,
    ref_name: &str,
    head: &str,
    keep: &mut Reachable,
) -> Result<std::result::Result<RefRetention, String>> {
    let history = export.history(head)?;
    let times: Vec<u64> = history.iter().map(|c| c.timestamp).collect();
    let now = now();
    let n = policy.kept(&times, now);
    if n == 0 {
        return Ok(Err(format!(
            "{ref_name}: its newest commit {} is {} old",
            &head[..12.min(head.len())],
            describe_age(now.saturating_sub(times[0]))
        )));
    }
    for c in &history[..n] {
        export.keep_commit(keep, &c.checksum, 0)?;
    }
    Ok(Ok(RefRetention {
        ref_name: ref_name.to_string(),
        kept: history[..n].iter().map(brief).collect(),
        removed: history[n..].iter().map(brief).collect(),
    }))
}

fn brief(c: &crate::repo::CommitInfo) -> CommitBrief {
    CommitBrief {
        commit: c.checksum.clone(),
        version: c.metadata.get(super::plan::META_VERSION).cloned(),
        timestamp: c.timestamp,
    }
}

/// Deltas first (and the summary that lists them), then the objects: a client reading
/// the summary is never sent to a delta whose commits are gone.
fn apply_export(
    manifest: &Manifest,
    export: &Repo,
    keep: &Reachable,
    report: &mut PruneReport,
) -> Result<()> {
    for d in &report.deltas {
        export.delete_static_delta(d)?;
    }
    if !report.deltas.is_empty() && manifest.publish.summary {
        super::publish::write_summary(manifest, export)?;
        report.summary_regenerated = true;
    }
    report.export = export.prune_except(keep)?;
    Ok(())
}

/// What the build repository keeps: the head of each of the manifest's component and image
/// refs (history lives in the export repository; a build needs only the head, as parent of
/// its next commit and for freshness), every other ref whole, and what the trigger state
/// records (worktree commits, trigger changes).
fn build_keep(manifest: &Manifest, build: &Repo, state_dir: &Path) -> Result<Reachable> {
    let mut managed: BTreeSet<String> = manifest
        .components
        .keys()
        .map(|c| manifest.component_ref(c))
        .collect();
    managed.extend(manifest.images.keys().map(|i| manifest.image_ref(i)));
    let mut keep = Reachable::default();
    for (ref_name, head) in build.refs()? {
        let depth = if managed.contains(&ref_name) { 0 } else { -1 };
        build.keep_commit(&mut keep, &head, depth)?;
    }
    let (commits, changes) = trigger_state_needs(state_dir);
    for c in commits {
        if build.has_commit(&c).unwrap_or(false) {
            build.keep_commit(&mut keep, &c, 0)?;
        }
    }
    build.keep_changes(&mut keep, &changes)?;
    Ok(keep)
}

/// Package-cache entries that go: whole caches of backends no component uses, and
/// package files a newer version supersedes.
fn cache_plan(manifest: &Manifest, state_dir: &Path) -> Vec<CacheEntry> {
    let mut used: BTreeSet<String> = manifest
        .components
        .values()
        .map(|c| crate::manifest::escape_ref_part(&c.backend))
        .collect();
    if used.contains("yum") {
        // The dnf backend keeps yum's packages in the `dnf` cache.
        used.insert("dnf".into());
    }
    let Ok(entries) = std::fs::read_dir(state_dir.join("cache")) else {
        return vec![];
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    let mut out = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if !used.contains(&name) {
            out.push(CacheEntry {
                bytes: crate::fsutil::tree_size(&dir),
                path: dir,
                reason: format!("no component uses the backend '{name}' any more"),
            });
            continue;
        }
        for (old, newer) in crate::pkgcache::superseded(&dir) {
            out.push(CacheEntry {
                bytes: crate::fsutil::tree_size(&old),
                path: old,
                reason: format!(
                    "superseded by {}",
                    newer.file_name().unwrap_or_default().to_string_lossy()
                ),
            });
        }
    }
    out
}
