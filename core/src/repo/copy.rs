//! Copying a commit into the export repository in proportion to what changed: a local
//! pull (libostree 2022.7) loads every dirtree of the commit and looks up every file
//! object even when it holds nearly all of them, which at 60,000 files costs more than the
//! change. When the destination holds a complete earlier commit (`base`, the one
//! published before), the new commit's tree is walked against the base's in the source
//! repository, descending only into directories whose dirtree checksums differ (as
//! `treediff` does), and only the objects found there are imported, each checked against
//! its checksum as the untrusted pull does. Files first, then directories from the leaves
//! up, then the commit: an interrupted copy leaves no commit whose objects are missing.

use super::tree::{commit_root, read_dirtree};
use super::{gerr, Repo, NO_CANCEL};
use anyhow::{Context, Result};
use ostree::ObjectType;
use std::collections::HashSet;

/// The objects a pruned walk found, in import order once reversed per kind.
#[derive(Default)]
struct Found {
    files: Vec<String>,
    dirmetas: Vec<String>,
    dirtrees: Vec<String>,
    seen: HashSet<String>,
}

impl Found {
    fn add(list: &mut Vec<String>, seen: &mut HashSet<String>, checksum: &str) {
        if seen.insert(checksum.to_string()) {
            list.push(checksum.to_string());
        }
    }
}

impl Repo {
    /// Whether this repository holds all of `commit` (not a partial pull).
    pub fn has_complete_commit(&self, commit: &str) -> bool {
        match self.repo.load_commit(commit) {
            Ok((_, state)) => !state.contains(ostree::RepoCommitState::PARTIAL),
            Err(_) => false,
        }
    }

    /// Copy `commit` from `source`, importing only the objects of the directories that
    /// differ from `base`'s; `base` must be complete here and present in `source`
    /// (callers check with [`Repo::has_complete_commit`] on both). Returns the number of
    /// objects imported; `progress` hears that count as it grows.
    pub fn copy_commit_since(
        &self,
        source: &Repo,
        commit: &str,
        base: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let found = changed_objects(&source.repo, commit, base)
            .with_context(|| format!("cannot compare commit {commit} with {base}"))?;
        let (dest, src) = (self.repo.clone(), source.repo.clone());
        let (n, _) = self.in_transaction(|_| {
            let mut n = 0;
            let mut import = |t: ObjectType, c: &str| -> Result<()> {
                if !dest.has_object(t, c, NO_CANCEL).map_err(gerr)? {
                    dest.import_object_from_with_trust(&src, t, c, false, NO_CANCEL)
                        .map_err(gerr)
                        .with_context(|| format!("cannot copy object {c}"))?;
                    n += 1;
                    progress(n);
                }
                Ok(())
            };
            for c in &found.files {
                import(ObjectType::File, c)?;
            }
            for c in &found.dirmetas {
                import(ObjectType::DirMeta, c)?;
            }
            for c in found.dirtrees.iter().rev() {
                import(ObjectType::DirTree, c)?;
            }
            import(ObjectType::Commit, commit)?;
            dest.mark_commit_partial(commit, false).map_err(gerr)?;
            Ok((n, Default::default()))
        })?;
        Ok(n)
    }
}

/// The objects of `commit`'s tree outside the directories it shares with `base`.
fn changed_objects(src: &ostree::Repo, commit: &str, base: &str) -> Result<Found> {
    let mut found = Found::default();
    let (new, old) = (commit_root(src, commit)?, commit_root(src, base)?);
    walk(src, new, Some(old), &mut found)?;
    Ok(found)
}

/// Adds what directory `new` (contents, metadata) needs beyond `old`, the directory at
/// the same path in the base.
fn walk(
    src: &ostree::Repo,
    new: (String, String),
    old: Option<(String, String)>,
    found: &mut Found,
) -> Result<()> {
    if old.as_ref().map(|o| &o.1) != Some(&new.1) {
        Found::add(&mut found.dirmetas, &mut found.seen, &new.1);
    }
    if old.as_ref().map(|o| &o.0) == Some(&new.0) {
        return Ok(());
    }
    Found::add(&mut found.dirtrees, &mut found.seen, &new.0);
    let tree = read_dirtree(src, &new.0)?;
    let before = match &old {
        Some((contents, _)) => read_dirtree(src, contents)?,
        None => Default::default(),
    };
    for (name, checksum) in &tree.files {
        if before.files.get(name) != Some(checksum) {
            Found::add(&mut found.files, &mut found.seen, checksum);
        }
    }
    for (name, dir) in tree.dirs {
        let old = before.dirs.get(&name).cloned();
        walk(src, dir, old, found)?;
    }
    Ok(())
}
