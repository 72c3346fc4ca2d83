//! Composing an image: the in-memory union of its components, then, when it has
//! triggers, a worktree kept between builds under `.ostree-build/images/<image>/`, synced to
//! the new union, handed to the triggers behind rofiles-fuse, and committed as the union
//! plus what the triggers touched.

use super::plan::*;
use crate::lock::ProjectLock;
use crate::manifest::{ImageSection, Manifest};
use crate::repo::{MetaValue, NewCommit, Repo, Snapshot};
use crate::triggers;
use anyhow::Result;

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
        .str(section.subject.as_deref().unwrap_or(""));
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
}

/// Compose one image; `union_ready` hears the union commit as soon as it exists. Returns
/// the image commit and a one-line account of the work.
pub(super) fn compose_image(
    manifest: &Manifest,
    repo: &Repo,
    lock: &ProjectLock,
    job: &ComposeJob,
    union_ready: &mut dyn FnMut(&str),
) -> Result<(String, String)> {
    let ComposeJob {
        ip,
        section,
        inputs,
        input_hash,
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
    if section.triggers.is_empty() {
        let (c, _) = repo
            .union_commit(inputs, last_wins, &commit)
            .map_err(conflict_hint)?;
        return Ok((c, format!("version {version}, {} components", inputs.len())));
    }
    // Triggers need a real tree: union in memory, check out by hardlink, run them behind
    // rofiles-fuse, prove the object store is untouched, commit back with the devino cache.
    let union_commit = NewCommit {
        parent: None,
        subject: "ostree-build union (before triggers)",
        metadata: &[],
        timestamp: commit.timestamp,
    };
    let mut timer = super::PhaseTimer::start();
    let (union, _) = repo
        .union_commit(inputs, last_wins, &union_commit)
        .map_err(conflict_hint)?;
    union_ready(&union);
    timer.lap("union");
    // The worktree reflects the commit named in `tree.commit`; that file is removed while
    // the tree is being changed, so an interrupted run starts from a fresh checkout.
    let dir = lock
        .state_dir
        .join("images")
        .join(crate::manifest::escape_ref_part(&ip.name));
    let tree = dir.join("tree");
    let state = dir.join("tree.commit");
    let previous = std::fs::read_to_string(&state)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|c| tree.is_dir() && repo.has_commit(c).unwrap_or(false));
    crate::fsutil::remove_entry(&state)?;
    std::fs::create_dir_all(&dir)?;
    let sync = repo.sync_checkout(&tree, previous.as_deref(), &union)?;
    timer.lap(if sync.fresh { "checkout" } else { "sync" });
    let before = Snapshot::take(&tree, &dir)?;
    let runs = triggers::run_triggers(&ip.name, &tree, &dir.join("mnt"), &section.triggers)?;
    timer.lap("triggers");
    let (c, stats, touched) = repo.commit_touched(&tree, &union, &before, &commit)?;
    std::fs::write(&state, &c)?;
    timer.lap("commit");
    Ok((
        c,
        format!(
            "version {version}, {} components, triggers: {}; worktree {}, {touched} entries touched, {} objects written; {}",
            inputs.len(),
            runs.iter()
                .map(|r| format!("{} {:.2}s", r.name, r.seconds))
                .collect::<Vec<_>>()
                .join(", "),
            if sync.fresh { "checked out".to_string() } else { format!("synced ({} entries)", sync.entries) },
            stats.content_objects_written,
            timer.report()
        ),
    ))
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
