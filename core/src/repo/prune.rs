//! Retention in one repository: its refs and histories, the set of objects to keep,
//! static deltas, and deleting everything else with libostree's `prune_from_reachable`
//! (which takes the repository's exclusive lock, so it waits for a pull or a transaction
//! of another process on the same repository).

use super::{gerr, Change, CommitInfo, Repo, NO_CANCEL};
use anyhow::{Context, Result};
use base64::Engine;
use ostree::{ObjectName, ObjectType};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Objects to keep.
#[derive(Default)]
pub struct Reachable(HashSet<ObjectName>);

/// What a prune removes (or would remove).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneCount {
    pub objects: usize,
    pub bytes: u64,
}

/// A static delta: `from` is `None` for a delta from nothing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Delta {
    pub from: Option<String>,
    pub to: String,
}

impl Repo {
    /// Every ref of the repository and its commit.
    pub fn refs(&self) -> Result<BTreeMap<String, String>> {
        let refs = self.repo.list_refs(None, NO_CANCEL).map_err(gerr)?;
        Ok(refs.into_iter().collect())
    }

    /// The commits of `head`'s history present here, newest first: the walk stops at the
    /// first parent this repository does not have.
    pub fn history(&self, head: &str) -> Result<Vec<CommitInfo>> {
        let mut out = vec![self.commit_info(head)?];
        while let Some(parent) = out.last().and_then(|c| c.parent.clone()) {
            if !self.has_commit(&parent)? || out.iter().any(|c| c.checksum == parent) {
                break;
            }
            out.push(self.commit_info(&parent)?);
        }
        Ok(out)
    }

    /// Add what `commit` needs to `keep`, with `depth` parents (-1: all of them).
    pub fn keep_commit(&self, keep: &mut Reachable, commit: &str, depth: i32) -> Result<()> {
        let found = self
            .repo
            .traverse_commit(commit, depth, NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot walk commit {commit} in {}", self.path.display()))?;
        keep.0.extend(found);
        Ok(())
    }

    /// Add the objects recorded `changes` name and this repository has (a directory with
    /// all it contains), so a later build can still apply them.
    pub fn keep_changes(&self, keep: &mut Reachable, changes: &[Change]) -> Result<()> {
        let has = |t, c: &str| self.repo.has_object(t, c, NO_CANCEL).unwrap_or(false);
        for c in changes {
            match c {
                Change::File { checksum, .. } if has(ObjectType::File, checksum) => {
                    keep.0.insert(ObjectName::new(checksum, ObjectType::File));
                }
                Change::Dir { contents, meta, .. } => self.keep_dir(keep, contents, meta)?,
                Change::DirMeta { meta, .. } if has(ObjectType::DirMeta, meta) => {
                    keep.0.insert(ObjectName::new(meta, ObjectType::DirMeta));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn keep_dir(&self, keep: &mut Reachable, contents: &str, meta: &str) -> Result<()> {
        let has = |t, c: &str| self.repo.has_object(t, c, NO_CANCEL).unwrap_or(false);
        if !has(ObjectType::DirTree, contents) || !has(ObjectType::DirMeta, meta) {
            return Ok(());
        }
        keep.0.insert(ObjectName::new(meta, ObjectType::DirMeta));
        if !keep
            .0
            .insert(ObjectName::new(contents, ObjectType::DirTree))
        {
            return Ok(());
        }
        let tree = super::tree::read_dirtree(&self.repo, contents)?;
        for checksum in tree.files.values() {
            keep.0.insert(ObjectName::new(checksum, ObjectType::File));
        }
        for (c, m) in tree.dirs.values() {
            self.keep_dir(keep, c, m)?;
        }
        Ok(())
    }

    /// The objects `keep` does not hold and their storage size, plus the commits among
    /// them: what [`Repo::prune_except`] would delete, computed without changing anything.
    pub fn unreachable(&self, keep: &Reachable) -> Result<(PruneCount, BTreeSet<String>)> {
        let flags = ostree::ffi::OSTREE_REPO_LIST_OBJECTS_ALL
            | ostree::ffi::OSTREE_REPO_LIST_OBJECTS_NO_PARENTS;
        let all = self.repo.list_objects(flags, NO_CANCEL).map_err(gerr)?;
        let mut count = PruneCount::default();
        let mut commits = BTreeSet::new();
        for name in all.keys().filter(|n| !keep.0.contains(*n)) {
            count.objects += 1;
            count.bytes += self
                .repo
                .query_object_storage_size(name.object_type(), name.checksum(), NO_CANCEL)
                .map_err(gerr)?;
            if name.object_type() == ObjectType::Commit {
                commits.insert(name.checksum().to_string());
            }
        }
        Ok((count, commits))
    }

    /// Delete every object `keep` does not hold (and, as libostree does, the static deltas
    /// whose target commit is gone).
    pub fn prune_except(&self, keep: &Reachable) -> Result<PruneCount> {
        use glib::translate::{IntoGlib, ToGlibPtr};
        let (mut total, mut pruned, mut bytes) = (0, 0, 0u64);
        // SAFETY: the table is libostree's own reachable-set type (keys owned by the
        // table's value destructor, as g_hash_table_add stores the key as the value);
        // every key is a sunk (su) variant; the table is released on every path.
        let ok = unsafe {
            let table = ostree::ffi::ostree_repo_traverse_new_reachable();
            for name in &keep.0 {
                let key = ostree::ffi::ostree_object_name_serialize(
                    name.checksum().to_glib_none().0,
                    name.object_type().into_glib(),
                );
                glib::ffi::g_hash_table_add(table, glib::ffi::g_variant_ref_sink(key) as _);
            }
            let mut options: ostree::ffi::OstreeRepoPruneOptions = std::mem::zeroed();
            options.flags = ostree::ffi::OSTREE_REPO_PRUNE_FLAGS_NONE;
            options.reachable = table;
            let mut error = std::ptr::null_mut();
            let ok = ostree::ffi::ostree_repo_prune_from_reachable(
                self.repo.to_glib_none().0,
                &mut options,
                &mut total,
                &mut pruned,
                &mut bytes,
                std::ptr::null_mut(),
                &mut error,
            );
            glib::ffi::g_hash_table_unref(table);
            if ok == 0 {
                Err(gerr(glib::translate::from_glib_full(error)))
            } else {
                Ok(())
            }
        };
        ok.with_context(|| format!("cannot prune {}", self.path.display()))?;
        let _ = total;
        Ok(PruneCount {
            objects: pruned.max(0) as usize,
            bytes,
        })
    }

    /// Every static delta of the repository.
    pub fn static_deltas(&self) -> Result<Vec<Delta>> {
        let names = self.repo.list_static_delta_names(NO_CANCEL).map_err(gerr)?;
        let mut out: Vec<Delta> = names
            .iter()
            .map(|n| match n.split_once('-') {
                Some((from, to)) => Delta {
                    from: Some(from.to_string()),
                    to: to.to_string(),
                },
                None => Delta {
                    from: None,
                    to: n.to_string(),
                },
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Remove one static delta (its directory under `deltas/`). The summary still names it
    /// until it is regenerated.
    pub fn delete_static_delta(&self, delta: &Delta) -> Result<()> {
        let dir = self.path.join(delta_dir(delta)?);
        crate::fsutil::remove_tree(&dir)
            .with_context(|| format!("cannot remove static delta {}", dir.display()))
    }
}

/// libostree's place for a delta: `deltas/` + the first two characters of the first
/// checksum in its modified base64 (`/` as `_`, no padding), `/`, the rest.
pub(super) fn delta_dir(delta: &Delta) -> Result<String> {
    let b64 = |c: &str| -> Result<String> {
        let bytes = hex::decode(c).with_context(|| format!("bad checksum {c}"))?;
        Ok(base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(bytes)
            .replace('/', "_"))
    };
    let to = b64(&delta.to)?;
    Ok(match &delta.from {
        Some(from) => {
            let from = b64(from)?;
            format!("deltas/{}/{}-{to}", &from[..2], &from[2..])
        }
        None => format!("deltas/{}/{}", &to[..2], &to[2..]),
    })
}
