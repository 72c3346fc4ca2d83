//! Composing an image: the in-memory union of its components; then its triggers, each
//! either re-applied from its last output (inputs unchanged) or run in a worktree kept
//! between builds under `.ostree-build/images/<image>/` and committed as the tree plus what
//! it touched; then, for a bootable image, the OSTree layout and its lint.

use super::plan::*;
use crate::lock::ProjectLock;
use crate::manifest::{ImageSection, Manifest};
use crate::repo::LintLevel;
use crate::repo::{Change, LayoutOptions, LintErrors, MetaValue, NewCommit, Repo, Snapshot};
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
    for (component, commit) in inputs {
        // The component's tree, not its commit: a rebuild with identical output changes nothing.
        h.str(component).str(&repo.commit_info(commit)?.tree);
    }
    Ok(h.finish())
}

/// Remove the worktrees of images the manifest no longer has.
pub(super) fn remove_stale_worktrees(manifest: &Manifest, lock: &ProjectLock) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(lock.state_dir.join("images")) else {
        return Ok(());
    };
    let keep: std::collections::HashSet<String> = manifest
        .images
        .keys()
        .map(|n| crate::manifest::escape_ref_part(n))
        .collect();
    for entry in entries.flatten() {
        if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
            crate::fsutil::remove_tree(&entry.path())?;
        }
    }
    Ok(())
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
/// the image commit and a one-line account of the work.
pub(super) fn compose_image(
    manifest: &Manifest,
    repo: &Repo,
    lock: &ProjectLock,
    job: &ComposeJob,
    union_ready: &mut dyn FnMut(&str),
    warnings: &mut Vec<String>,
) -> Result<(String, String)> {
    let ComposeJob {
        ip,
        section,
        inputs,
        input_hash,
        ..
    } = *job;
    let prefix = section.version.clone().unwrap_or_else(|| "0".into());
    let version = next_version(
        &prefix,
        ip.current
            .as_ref()
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
    for (_, c) in inputs.iter() {
        component_packages.push(
            repo.commit_info(c)?
                .lists
                .remove(META_PACKAGES)
                .unwrap_or_default(),
        );
    }
    let packages = crate::packages::merge(component_packages.iter().map(|l| &l[..]));
    let package_account = crate::packages::describe(
        ip.current
            .as_ref()
            .map(|c| c.lists.get(META_PACKAGES).map_or(&[][..], |l| &l[..])),
        &packages,
    );
    if !packages.is_empty() {
        metadata.push((META_PACKAGES.to_string(), MetaValue::StrList(packages)));
    }
    for (k, v) in &section.metadata {
        metadata.push((
            k.clone(),
            match v.get_ref() {
                toml::Value::String(s) => MetaValue::Str(s.clone()),
                toml::Value::Integer(i) => MetaValue::Int(*i),
                toml::Value::Float(f) => MetaValue::Float(*f),
                toml::Value::Boolean(b) => MetaValue::Bool(*b),
                other => MetaValue::Str(other.to_string()),
            },
        ));
    }
    let subject = section
        .subject
        .clone()
        .unwrap_or_else(|| format!("{} {} {}", manifest.os.name, ip.name, version));
    let commit = NewCommit {
        parent: ip.current.as_ref().map(|c| c.checksum.as_str()),
        subject: &subject,
        metadata: &metadata,
        timestamp: super::commit_time(),
    };
    let last_wins = section.conflicts == crate::manifest::ConflictPolicy::LastWins;
    let conflict_hint = |e: anyhow::Error| -> anyhow::Error {
        if e.downcast_ref::<crate::repo::ComposeConflict>().is_some() {
            manifest.error_at(
                section
                    .components
                    .first()
                    .map(|c| c.span().start)
                    .unwrap_or(0),
                &format!("image '{}': components conflict:\n  {e}", ip.name),
                Some(&format!(
                    "make the components agree, or set conflicts = \"last-wins\" in [image.{}]",
                    ip.name
                )),
            )
        } else {
            e
        }
    };
    if section.triggers.is_empty() && !section.bootable {
        let (c, _) = repo
            .union_commit(inputs, last_wins, &commit)
            .map_err(conflict_hint)?;
        let mut account = format!("version {version}, {} components", inputs.len());
        if !package_account.is_empty() {
            account.push_str(&format!(", {package_account}"));
        }
        return Ok((c, account));
    }
    let intermediate = |subject: &'static str| NewCommit {
        parent: None,
        subject,
        metadata: &[],
        timestamp: commit.timestamp,
    };
    let mut timer = super::PhaseTimer::start();
    let (union, _) = repo
        .union_commit(
            inputs,
            last_wins,
            &intermediate("ostree-build union (before triggers)"),
        )
        .map_err(conflict_hint)?;
    union_ready(&union);
    timer.lap("union");
    let mut account = vec![format!("version {version}, {} components", inputs.len())];
    if !package_account.is_empty() {
        account.push(package_account);
    }
    let mut tree = union;
    if !section.triggers.is_empty() {
        let (after, runs) = run_triggers(manifest, repo, lock, job, &tree, &mut timer)?;
        tree = after;
        account.push(runs);
    }
    let c = if section.bootable {
        let levels: HashMap<String, LintLevel> = section
            .lint
            .iter()
            .map(|(k, v)| (k.get_ref().clone(), *v))
            .collect();
        let options = LayoutOptions {
            var_files: section.var_files,
            levels: &levels,
        };
        let (c, report) = repo.bootable_commit(&tree, &options, &commit).map_err(|e| {
            match e.downcast_ref::<LintErrors>() {
                Some(errors) => manifest.error_at(
                    manifest.table_header(&format!("image.{}", ip.name)),
                    &format!("image '{}': not bootable:\n  {errors}", ip.name),
                    Some(&format!(
                        "fix the components, or set lint.<rule> = \"warn\" in [image.{}] to accept it",
                        ip.name
                    )),
                ),
                None => e.context(format!("image '{}': bootable layout", ip.name)),
            }
        })?;
        timer.lap("layout");
        account.push(format!(
            "bootable: kernel {}, {} tmpfiles.d lines{}",
            report.kernel.as_deref().unwrap_or("none"),
            report.tmpfiles_lines,
            if report.factory_files > 0 {
                format!(
                    ", {} /var files in /usr/share/factory",
                    report.factory_files
                )
            } else {
                String::new()
            }
        ));
        warnings.extend(report.warnings);
        c
    } else {
        // The same tree, committed with the image's parent, subject and metadata.
        repo.apply_changes(&tree, &[], &commit)?
    };
    account.push(timer.report());
    Ok((c, account.join("; ")))
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
    timer: &mut super::PhaseTimer,
) -> Result<(String, String)> {
    let (image, section, force) = (job.ip.name.as_str(), job.section, job.force);
    let dir = lock
        .state_dir
        .join("images")
        .join(crate::manifest::escape_ref_part(image));
    std::fs::create_dir_all(&dir)?;
    let records_path = dir.join("triggers.json");
    let mut records: TriggerRecords = std::fs::read(&records_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    // The worktree reflects the commit named in `tree.commit`; that file is removed while
    // the tree is being changed, so an interrupted run starts from a fresh checkout.
    let worktree = dir.join("tree");
    let state = dir.join("tree.commit");
    let mut worktree_at = std::fs::read_to_string(&state)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|c| worktree.is_dir() && repo.has_commit(c).unwrap_or(false));
    let step = NewCommit {
        parent: None,
        subject: "ostree-build trigger output",
        metadata: &[],
        timestamp: super::commit_time(),
    };
    let mut current = base.to_string();
    let mut account = Vec::new();
    for t in &section.triggers {
        let t = triggers::Resolved::of(t);
        let fingerprint = match &t.inputs {
            Some(paths) => {
                let mut h = crate::inputs::Hasher::new("trigger v1");
                h.str(&t.name).str(&t.run).str(&format!("{:?}", t.sandbox));
                for (path, id) in paths.iter().zip(repo.path_ids(&current, paths, true)?) {
                    h.str(path).str(&id);
                }
                Some(h.finish())
            }
            None => None,
        };
        if let (Some(fp), Some(record), false) =
            (&fingerprint, records.triggers.get(&t.name), force)
        {
            let guard_paths: Vec<String> = record.guards.iter().map(|(p, _)| p.clone()).collect();
            let guards_hold = repo
                .path_ids(&current, &guard_paths, false)?
                .iter()
                .zip(&record.guards)
                .all(|(now, (_, then))| now == then);
            if *fp == record.fingerprint
                && guards_hold
                && repo.changes_available(&record.changes)?
            {
                current = repo.apply_changes(&current, &record.changes, &step)?;
                account.push(format!("{} reused", t.name));
                continue;
            }
        }
        std::fs::remove_file(&state).ok();
        let sync = repo.sync_checkout(&worktree, worktree_at.as_deref(), &current)?;
        timer.lap(if sync.fresh { "checkout" } else { "sync" });
        let mount_points = triggers::create_mount_points(&t, &worktree)?;
        let before = Snapshot::take(&worktree, &dir)?;
        let run = triggers::run_trigger(image, &worktree, &dir.join("mnt"), &manifest.dir, &t)?;
        triggers::remove_mount_points(&mount_points)?;
        let (after, _, touched) = repo.commit_touched(&worktree, &current, &before, &step)?;
        std::fs::write(&state, &after)?;
        worktree_at = Some(after.clone());
        timer.lap("triggers");
        let touched_count = touched.len();
        if let Some(fp) = fingerprint {
            let changes = repo.tree_changes(&current, &after)?;
            let mut paths: std::collections::BTreeSet<String> = touched.into_iter().collect();
            paths.extend(changes.iter().map(|c| c.path().to_string()));
            let paths: Vec<String> = paths.into_iter().collect();
            let ids = repo.path_ids(&current, &paths, false)?;
            records.triggers.insert(
                t.name.clone(),
                TriggerRecord {
                    fingerprint: fp,
                    changes,
                    guards: paths.into_iter().zip(ids).collect(),
                },
            );
            std::fs::write(&records_path, serde_json::to_vec(&records)?)?;
        }
        account.push(format!(
            "{} {:.2}s (worktree {}, {touched_count} files touched)",
            run.name,
            run.seconds,
            if sync.fresh {
                "checked out".to_string()
            } else {
                format!("synced ({} entries)", sync.entries)
            }
        ));
        current = after;
    }
    Ok((current, format!("triggers: {}", account.join(", "))))
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
