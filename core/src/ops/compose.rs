//! Composing an image: the in-memory union of its components; then its triggers, each
//! either re-applied from its last output (inputs unchanged) or run in a worktree kept
//! between builds under `.ostree-build/images/<image>/` and committed as the tree plus what
//! it touched; then, for a bootable image, the OSTree layout and its lint.

use super::plan::*;
use crate::lock::ProjectLock;
use crate::manifest::{ImageSection, Manifest};
use crate::progress::StepMeter;
use crate::repo::LintLevel;
use crate::repo::{
    Change, LayoutOptions, LintErrors, MetaFrom, MetaValue, NewCommit, Repo, Snapshot, SyncStats,
};
use crate::report::{Kind, Reporter, Step};
use crate::triggers;
use anyhow::Result;
use std::collections::HashMap;

pub(super) fn image_input_hash(
    repo: &Repo,
    name: &str,
    section: &ImageSection,
    inputs: &[(String, String)],
) -> Result<String> {
    let mut h = crate::inputs::Hasher::new("image v1");
    hash_image_definition(&mut h, name, section)?;
    for (component, commit) in inputs {
        // The component's tree, not its commit: a rebuild with identical output changes nothing.
        h.str(component).str(&repo.commit_info(commit)?.tree);
    }
    Ok(h.finish())
}

/// An image's input hash before its components are built, the same on every machine:
/// its definition and its components' cache keys (`plan --format json`).
pub(super) fn image_cache_key(
    name: &str,
    section: &ImageSection,
    component_keys: &[(String, String)],
) -> Result<String> {
    let mut h = crate::inputs::Hasher::new("image cache key v1");
    hash_image_definition(&mut h, name, section)?;
    for (component, key) in component_keys {
        h.str(component).str(key);
    }
    Ok(h.finish())
}

/// Everything of an image's section that changes what is composed, and this tool's version.
fn hash_image_definition(
    h: &mut crate::inputs::Hasher,
    name: &str,
    section: &ImageSection,
) -> Result<()> {
    h.str(env!("CARGO_PKG_VERSION")).str(name);
    h.str(&serde_json::to_string(&section.conflicts)?)
        .str(&serde_json::to_string(&section.triggers)?)
        .str(section.version.as_deref().unwrap_or(""))
        .str(section.subject.as_deref().unwrap_or(""))
        .str(&format!(
            "bootable={} var-files={:?}",
            section.bootable, section.var_files
        ));
    for (rule, level) in &section.lint {
        h.str(rule.get_ref()).str(&format!("{level:?}"));
    }
    for (k, v) in &section.metadata {
        h.str(k).str(&v.get_ref().to_string());
    }
    Ok(())
}

/// Remove the worktrees of images the manifest no longer has.
pub(super) fn remove_stale_worktrees(manifest: &Manifest, lock: &ProjectLock) -> Result<()> {
    crate::fsutil::remove_entries_but(
        &lock.state_dir.join("images"),
        manifest
            .images
            .keys()
            .map(|n| crate::manifest::escape_ref_part(n)),
    )
}

/// `version`, then `version.1`, `version.2`, ... while the prefix stays the same.
fn next_version(prefix: &str, previous: Option<&str>) -> String {
    match previous {
        Some(p) if p == prefix => format!("{prefix}.1"),
        Some(p) => match p
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(n) => format!("{prefix}.{}", n + 1),
            None => prefix.to_string(),
        },
        None => prefix.to_string(),
    }
}

/// One image to compose: its plan, its manifest section, its component commits (in
/// union order) and its input hash.
pub(super) struct ComposeJob<'a> {
    pub ip: &'a ImagePlan,
    pub section: &'a ImageSection,
    pub inputs: &'a [(String, String)],
    pub input_hash: &'a str,
    /// `build --force`: triggers run even when their inputs did not change.
    pub force: bool,
}

/// Compose one image; `union_ready` hears the union commit as soon as it exists. Returns
/// the image commit and a one-line account of the work. A conflict comes back as a
/// [`crate::repo::ComposeConflict`] (see [`conflict_error`]).
pub(super) fn compose_image(
    manifest: &Manifest,
    repo: &Repo,
    lock: &ProjectLock,
    job: &ComposeJob,
    union_ready: &mut dyn FnMut(&str),
    warnings: &mut Vec<String>,
    rep: &mut dyn Reporter,
) -> Result<(String, String)> {
    let ComposeJob {
        ip,
        section,
        inputs,
        ..
    } = *job;
    let meta = ImageMetadata::of(repo, job)?;
    let subject = section
        .subject
        .clone()
        .unwrap_or_else(|| format!("{} {} {}", manifest.os.name, ip.name, meta.version));
    let commit = NewCommit {
        parent: ip.current.as_ref().map(|c| c.checksum.as_str()),
        subject: &subject,
        metadata: &meta.metadata,
        timestamp: super::commit_time(),
    };
    let last_wins = section.conflicts == crate::manifest::ConflictPolicy::LastWins;
    let mut account = vec![format!(
        "version {}, {} components",
        meta.version,
        inputs.len()
    )];
    if !meta.package_account.is_empty() {
        account.push(meta.package_account.clone());
    }
    if section.triggers.is_empty() && !section.bootable {
        let (c, _) = repo.union_commit(inputs, last_wins, &commit)?;
        return Ok((c, account.join(", ")));
    }
    let mut timer = super::PhaseTimer::start();
    let before_triggers = NewCommit {
        parent: None,
        subject: "ostree-build union (before triggers)",
        metadata: &[],
        timestamp: commit.timestamp,
    };
    let (mut tree, _) = repo.union_commit(inputs, last_wins, &before_triggers)?;
    union_ready(&tree);
    timer.lap("union");
    if !section.triggers.is_empty() {
        let (after, runs) = run_triggers(
            manifest,
            repo,
            lock,
            job,
            &tree,
            &mut Report {
                timer: &mut timer,
                rep,
            },
            warnings,
        )?;
        tree = after;
        account.push(runs);
    }
    let c = if section.bootable {
        let (c, layout) = bootable_layout(manifest, repo, job, &tree, &commit, warnings)?;
        timer.lap("layout");
        account.push(layout);
        c
    } else {
        // The same tree, committed with the image's parent, subject and metadata.
        repo.apply_changes(&tree, &[], &commit)?
    };
    account.push(timer.report());
    Ok((c, account.join("; ")))
}

/// The metadata of a new image commit, and what changed in its package list.
struct ImageMetadata {
    version: String,
    metadata: Vec<(String, MetaValue)>,
    /// `+added -removed` against the previous image commit; empty when unchanged.
    package_account: String,
}

impl ImageMetadata {
    fn of(repo: &Repo, job: &ComposeJob) -> Result<ImageMetadata> {
        let ComposeJob {
            ip,
            section,
            inputs,
            input_hash,
            ..
        } = *job;
        let previous = ip.current.as_ref();
        let version = next_version(
            section.version.as_deref().unwrap_or("0"),
            previous
                .and_then(|c| c.metadata.get(META_VERSION))
                .map(String::as_str),
        );
        let mut metadata = vec![
            (META_VERSION.to_string(), MetaValue::Str(version.clone())),
            (META_IMAGE.to_string(), MetaValue::Str(ip.name.clone())),
            (
                META_INPUT_HASH.to_string(),
                MetaValue::Str(input_hash.to_string()),
            ),
            (
                META_COMPONENTS.to_string(),
                MetaValue::StrList(inputs.iter().map(|(n, c)| format!("{n}={c}")).collect()),
            ),
        ];
        let mut component_packages = Vec::new();
        for (_, c) in inputs {
            let mut info = repo.commit_info(c)?;
            component_packages.push(info.lists.remove(META_PACKAGES).unwrap_or_default());
        }
        let packages = crate::packages::merge(component_packages.iter().map(|l| &l[..]));
        let package_account = crate::packages::describe(
            previous.map(|c| c.lists.get(META_PACKAGES).map_or(&[][..], |l| &l[..])),
            &packages,
        );
        if !packages.is_empty() {
            metadata.push((META_PACKAGES.to_string(), MetaValue::StrList(packages)));
        }
        metadata.extend(
            section
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), meta_value(v.get_ref()))),
        );
        Ok(ImageMetadata {
            version,
            metadata,
            package_account,
        })
    }
}

/// A manifest metadata value as commit metadata.
fn meta_value(v: &toml::Value) -> MetaValue {
    match v {
        toml::Value::String(s) => MetaValue::Str(s.clone()),
        toml::Value::Integer(i) => MetaValue::Int(*i),
        toml::Value::Float(f) => MetaValue::Float(*f),
        toml::Value::Boolean(b) => MetaValue::Bool(*b),
        other => MetaValue::Str(other.to_string()),
    }
}

/// How many conflicts the error message shows; all of them go to a file it names.
const CONFLICTS_SHOWN: usize = 20;

/// A union conflict as a manifest error at the image's component list, with what to do.
/// Past [`CONFLICTS_SHOWN`], the message names a file listing every conflict.
pub(super) fn conflict_error(manifest: &Manifest, image: &str, e: anyhow::Error) -> anyhow::Error {
    let Some(conflict) = e.downcast_ref::<crate::repo::ComposeConflict>() else {
        return e;
    };
    let all = &conflict.0;
    let mut lines: Vec<String> = all
        .iter()
        .take(CONFLICTS_SHOWN)
        .map(|c| c.to_string())
        .collect();
    if all.len() > CONFLICTS_SHOWN {
        let listed = conflicts_file(manifest, image, all);
        lines.push(format!(
            "... and {} more; all {} are listed in {listed}",
            all.len() - CONFLICTS_SHOWN,
            all.len(),
        ));
    }
    let at = manifest.images[image]
        .components
        .first()
        .map(|c| c.span().start)
        .unwrap_or(0);
    manifest.error_at(
        at,
        &format!(
            "image '{image}': components conflict:\n  {}",
            lines.join("\n  ")
        ),
        Some(&format!(
            "make the components agree, or set conflicts = \"last-wins\" in [image.{image}]"
        )),
    )
}

/// Write every conflict, one per line, beside the image's trigger state; the path to show.
fn conflicts_file(manifest: &Manifest, image: &str, all: &[crate::repo::Conflict]) -> String {
    let path = manifest
        .state_dir()
        .join("images")
        .join(crate::manifest::escape_ref_part(image))
        .join("conflicts.txt");
    let text: String = all.iter().map(|c| format!("{c}\n")).collect();
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(&path, text));
    match written {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(nowhere: cannot write {}: {e})", path.display()),
    }
}

/// Lay `tree` out for `ostree admin deploy`, lint it and commit it as the image. Returns
/// the commit and a one-line account; lint warnings go to `warnings`.
fn bootable_layout(
    manifest: &Manifest,
    repo: &Repo,
    job: &ComposeJob,
    tree: &str,
    commit: &NewCommit,
    warnings: &mut Vec<String>,
) -> Result<(String, String)> {
    let (name, section) = (&job.ip.name, job.section);
    let levels: HashMap<String, LintLevel> = section
        .lint
        .iter()
        .map(|(k, v)| (k.get_ref().clone(), *v))
        .collect();
    let options = LayoutOptions {
        var_files: section.var_files,
        levels: &levels,
    };
    let (c, report) = repo
        .bootable_commit(tree, &options, commit)
        .map_err(|e| match e.downcast_ref::<LintErrors>() {
            Some(errors) => manifest.error_at(
                manifest.table_header(&format!("image.{name}")),
                &format!("image '{name}': not bootable:\n  {errors}"),
                Some(&format!(
                    "fix the components, or set lint.<rule> = \"warn\" in [image.{name}] to accept it"
                )),
            ),
            None => e.context(format!("image '{name}': bootable layout")),
        })?;
    let factory = match report.factory_files {
        0 => String::new(),
        n => format!(", {n} /var files in /usr/share/factory"),
    };
    let account = format!(
        "bootable: kernel {}, {} tmpfiles.d lines{factory}",
        report.kernel.as_deref().unwrap_or("none"),
        report.tmpfiles_lines,
    );
    warnings.extend(report.warnings);
    Ok((c, account))
}

/// What the trigger state under `.ostree-build/images/` needs from the build repository
/// although no ref names it: each worktree's commit (`tree.commit`, else the next build
/// checks out afresh) and the recorded changes (else the triggers run again). Prune keeps
/// them.
pub(super) fn trigger_state_needs(state_dir: &std::path::Path) -> (Vec<String>, Vec<Change>) {
    let (mut commits, mut changes) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(state_dir.join("images")) else {
        return (commits, changes);
    };
    for dir in entries.flatten().map(|e| e.path()) {
        if let Ok(c) = std::fs::read_to_string(dir.join("tree.commit")) {
            commits.push(c.trim().to_string());
        }
        let records: Option<TriggerRecords> = std::fs::read(dir.join("triggers.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        for r in records.into_iter().flat_map(|r| r.triggers.into_values()) {
            changes.extend(r.changes);
        }
    }
    (commits, changes)
}

/// Per trigger: its input fingerprint and what it changed, from the last time it ran.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct TriggerRecords {
    #[serde(default)]
    triggers: HashMap<String, TriggerRecord>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TriggerRecord {
    fingerprint: String,
    changes: Vec<Change>,
    /// Every path the trigger changed or touched (identical rewrites too), with what it
    /// named in the tree the trigger saw. The changes are re-applied only onto a tree where
    /// all of these are still the same: otherwise what another component now ships there
    /// would be clobbered (a new directory replaces the old) or go stale (a rewrite that
    /// left a file as it was is no change at all).
    guards: Vec<(String, String)>,
}

/// Run the image's triggers in order on `base`. A trigger whose declared inputs are
/// unchanged since it last ran is not run: its recorded changes are applied instead.
/// The others run in the image's worktree (kept between builds under
/// `.ostree-build/images/<image>/`, synced to the tree they must see). Returns the commit
/// after the last trigger and a one-line account.
fn run_triggers(
    manifest: &Manifest,
    repo: &Repo,
    lock: &ProjectLock,
    job: &ComposeJob,
    base: &str,
    out: &mut Report,
    warnings: &mut Vec<String>,
) -> Result<(String, String)> {
    let mut space = TriggerSpace::open(manifest, lock, repo, &job.ip.name)?;
    let step = NewCommit {
        parent: None,
        subject: "ostree-build trigger output",
        metadata: &[],
        timestamp: super::commit_time(),
    };
    let mut current = base.to_string();
    let mut account = Vec::new();
    for t in &job.section.triggers {
        let t = triggers::Resolved::of(t);
        let fingerprint = trigger_fingerprint(repo, &t, &current)?;
        if !job.force {
            if let Some(reused) = space.reuse(repo, &t, fingerprint.as_deref(), &current, &step)? {
                current = reused;
                account.push(format!("{} reused", t.name));
                continue;
            }
        }
        let (after, line) = space.run(repo, &t, fingerprint, &current, &step, out)?;
        account.push(line);
        current = after;
    }
    warnings.append(&mut space.warnings);
    Ok((current, format!("triggers: {}", account.join(", "))))
}

/// Where trigger runs report: the compose's phase timer, and the reporter (their progress).
struct Report<'a> {
    timer: &'a mut super::PhaseTimer,
    rep: &'a mut dyn Reporter,
}

/// What a trigger with declared inputs depends on: its definition and the ids of its input
/// paths in `tree`. `None`: it has no inputs and runs at every compose.
fn trigger_fingerprint(repo: &Repo, t: &triggers::Resolved, tree: &str) -> Result<Option<String>> {
    let Some(paths) = &t.inputs else {
        return Ok(None);
    };
    let mut h = crate::inputs::Hasher::new("trigger v1");
    h.str(&t.name).str(&t.run).str(&format!("{:?}", t.sandbox));
    for (path, id) in paths.iter().zip(repo.path_ids(tree, paths, true)?) {
        h.str(path).str(&id);
    }
    Ok(Some(h.finish()))
}

/// An image's trigger state under `.ostree-build/images/<image>/`: the worktree, the commit
/// it reflects, and the record of each trigger's last run.
struct TriggerSpace {
    image: String,
    /// What the build output should say about what triggers did (new setuid files).
    warnings: Vec<String>,
    /// Where `run` commands start (the project directory).
    project_dir: std::path::PathBuf,
    dir: std::path::PathBuf,
    records_path: std::path::PathBuf,
    records: TriggerRecords,
    worktree: std::path::PathBuf,
    /// `tree.commit`: the commit the worktree reflects. Removed while the tree is being
    /// changed, so an interrupted run starts from a fresh checkout.
    state: std::path::PathBuf,
    worktree_at: Option<String>,
}

impl TriggerSpace {
    fn open(
        manifest: &Manifest,
        lock: &ProjectLock,
        repo: &Repo,
        image: &str,
    ) -> Result<TriggerSpace> {
        let dir = lock
            .state_dir
            .join("images")
            .join(crate::manifest::escape_ref_part(image));
        std::fs::create_dir_all(&dir)?;
        let records_path = dir.join("triggers.json");
        let records = std::fs::read(&records_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let worktree = dir.join("tree");
        let state = dir.join("tree.commit");
        let worktree_at = std::fs::read_to_string(&state)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|c| worktree.is_dir() && repo.has_commit(c).unwrap_or(false));
        Ok(TriggerSpace {
            image: image.to_string(),
            warnings: Vec::new(),
            project_dir: manifest.dir.clone(),
            dir,
            records_path,
            records,
            worktree,
            state,
            worktree_at,
        })
    }

    /// `current` with the trigger's recorded changes applied, when its inputs are as they
    /// were and every path it touched still is what it saw; `None` when it must run.
    fn reuse(
        &self,
        repo: &Repo,
        t: &triggers::Resolved,
        fingerprint: Option<&str>,
        current: &str,
        step: &NewCommit,
    ) -> Result<Option<String>> {
        let (Some(fp), Some(record)) = (fingerprint, self.records.triggers.get(&t.name)) else {
            return Ok(None);
        };
        let guard_paths: Vec<String> = record.guards.iter().map(|(p, _)| p.clone()).collect();
        let guards_hold = repo
            .path_ids(current, &guard_paths, false)?
            .iter()
            .zip(&record.guards)
            .all(|(now, (_, then))| now == then);
        if fp != record.fingerprint || !guards_hold || !repo.changes_available(&record.changes)? {
            return Ok(None);
        }
        Ok(Some(repo.apply_changes(current, &record.changes, step)?))
    }

    /// Run the trigger in the worktree synced to `current`, commit what it touched, and
    /// record its changes for reuse. Returns the commit and a one-line account.
    fn run(
        &mut self,
        repo: &Repo,
        t: &triggers::Resolved,
        fingerprint: Option<String>,
        current: &str,
        step: &NewCommit,
        out: &mut Report,
    ) -> Result<(String, String)> {
        std::fs::remove_file(&self.state).ok();
        let sync = self.sync(repo, current, out)?;
        out.timer.lap(if sync.fresh { "checkout" } else { "sync" });
        let mount_points = triggers::create_mount_points(t, &self.worktree)?;
        let before = Snapshot::take(&self.worktree, &self.dir)?;
        let mnt = self.dir.join("mnt");
        let mut meter =
            StepMeter::new(Kind::Image, &self.image, Step::Trigger, "seconds").item(&t.name);
        let mut tick = || {
            if let Some(e) = meter.tick(false) {
                out.rep.event(e)
            }
        };
        let run = triggers::run_trigger(
            &self.image,
            &self.worktree,
            &mnt,
            &self.project_dir,
            t,
            &mut tick,
        );
        if let Some(e) = meter.tick(true) {
            out.rep.event(e)
        }
        let run = run?;
        triggers::remove_mount_points(&mount_points)?;
        let done = repo.commit_touched(&self.worktree, current, &before, step, MetaFrom::Base)?;
        let (after, touched) = (done.commit, done.files);
        if !done.new_setuid.is_empty() {
            self.warnings.push(format!(
                "trigger '{}' made {} setuid or setgid",
                t.name,
                done.new_setuid.join(", ")
            ));
        }
        std::fs::write(&self.state, &after)?;
        self.worktree_at = Some(after.clone());
        out.timer.lap("triggers");
        let touched_count = touched.len();
        if let Some(fp) = fingerprint {
            self.record(repo, &t.name, fp, current, &after, touched)?;
        }
        let worktree = if sync.fresh {
            "checked out".to_string()
        } else {
            format!("synced ({} entries)", sync.entries)
        };
        let line = format!(
            "{} {:.2}s (worktree {worktree}, {touched_count} files touched)",
            run.name, run.seconds
        );
        Ok((after, line))
    }

    /// Sync the worktree to `current` (a fresh checkout the first time: seconds for a large
    /// image), reporting its running time as the image's `worktree` step.
    fn sync(&self, repo: &Repo, current: &str, out: &mut Report) -> Result<SyncStats> {
        let mut meter = StepMeter::new(Kind::Image, &self.image, Step::Worktree, "seconds");
        let mut tick = || {
            if let Some(e) = meter.tick(false) {
                out.rep.event(e)
            }
        };
        let (handle, at) = (repo.handle(), self.worktree_at.as_deref());
        let work = move || handle.sync_checkout(&self.worktree, at, current);
        let sync = crate::ticker::ticking(crate::ticker::TICK, work, &mut tick);
        if let Some(e) = meter.tick(true) {
            out.rep.event(e)
        }
        sync
    }

    /// Keep what the trigger changed from `before` to `after`, guarded by every path it
    /// changed or touched.
    fn record(
        &mut self,
        repo: &Repo,
        name: &str,
        fingerprint: String,
        before: &str,
        after: &str,
        touched: Vec<String>,
    ) -> Result<()> {
        let changes = repo.tree_changes(before, after)?;
        let mut paths: std::collections::BTreeSet<String> = touched.into_iter().collect();
        paths.extend(changes.iter().map(|c| c.path().to_string()));
        let paths: Vec<String> = paths.into_iter().collect();
        let ids = repo.path_ids(before, &paths, false)?;
        self.records.triggers.insert(
            name.to_string(),
            TriggerRecord {
                fingerprint,
                changes,
                guards: paths.into_iter().zip(ids).collect(),
            },
        );
        std::fs::write(&self.records_path, serde_json::to_vec(&self.records)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::next_version;

    #[test]
    fn versions_increment_under_one_prefix() {
        assert_eq!(next_version("1.0", None), "1.0");
        assert_eq!(next_version("1.0", Some("1.0")), "1.0.1");
        assert_eq!(next_version("1.0", Some("1.0.7")), "1.0.8");
        assert_eq!(next_version("2.0", Some("1.0.7")), "2.0");
    }
}
