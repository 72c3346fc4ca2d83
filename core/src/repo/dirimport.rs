//! Incremental import of a directory component (`Repo::import_dir_cached`): libostree walks
//! the directory as for a full import, but the commit filter skips every file and symlink
//! whose stat matches the [`StatCache`] of the last import, and their recorded checksums are
//! put into the tree afterwards. Only new or changed files are read and hashed; directories'
//! metadata is always read (a few per thousand files), and the problem checks of a full
//! import still see every entry. The result is the commit a full import would make.

use super::statcache::{StatCache, StatKey};
use super::{gerr, Repo, WriteStats};
use anyhow::{Context, Result};
use ostree::MutableTree;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What the commit filter saw: files kept from the cache, and the stat of every file.
#[derive(Default)]
struct Walk {
    reused: Vec<(String, String)>,
    stats: Vec<(String, StatKey)>,
}

/// The part of the commit filter that consults the stat cache.
#[derive(Clone)]
pub(super) struct Reuse {
    root: PathBuf,
    cache: Arc<StatCache>,
    walk: Arc<Mutex<Walk>>,
}

impl Reuse {
    /// Whether the file or symlink at libostree's `path` ("/a/b") is unchanged since the
    /// cache was written; then libostree skips it and its recorded checksum is used. The
    /// stat is taken before libostree reads the file, so a file changing meanwhile is
    /// recorded with an older stat than its content and hashed again next time.
    pub(super) fn unchanged(&self, path: &str, info: &gio::FileInfo) -> bool {
        if !matches!(
            info.file_type(),
            gio::FileType::Regular | gio::FileType::SymbolicLink
        ) {
            return false;
        }
        let rel = path.trim_start_matches('/');
        let Ok(md) = std::fs::symlink_metadata(self.root.join(rel)) else {
            return false;
        };
        let key = StatKey::of(&md);
        let Ok(mut walk) = self.walk.lock() else {
            return false;
        };
        let hit = self.cache.get(rel, &key).map(str::to_string);
        walk.stats.push((rel.to_string(), key));
        match hit {
            Some(checksum) => {
                walk.reused.push((rel.to_string(), checksum));
                true
            }
            None => false,
        }
    }
}

/// What an incremental import did, besides the commit.
#[derive(Debug, Clone, Default)]
pub struct DirImport {
    pub stats: WriteStats,
    /// Files and symlinks whose checksum came from the cache (not read).
    pub reused: usize,
    /// The cache for the next import (to be saved with the commit it describes).
    pub cache: StatCache,
}

impl Repo {
    /// Import `dir` as a commit like [`Repo::import_dir_with`], reusing the checksums of
    /// the files `cache` (the stat cache of this directory's last import, whose commit is
    /// still in this repository) shows unchanged. Also returns the cache for next time.
    pub fn import_dir_cached(
        &self,
        dir: &Path,
        commit: &super::NewCommit,
        cache: StatCache,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(String, DirImport)> {
        let start = SystemTime::now();
        let reuse = Reuse {
            root: dir.to_path_buf(),
            cache: Arc::new(cache),
            walk: Arc::default(),
        };
        let walk = reuse.walk.clone();
        let (checksum, stats, sums) =
            self.import_dir_filtered(dir, commit, Some(reuse), progress)?;
        let walk = std::mem::take(&mut *walk.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        let mut next = StatCache::default();
        for (rel, key) in walk.stats {
            if let Some(sum) = sums.get(&rel) {
                next.insert(rel, key, sum.clone(), start);
            }
        }
        let import = DirImport {
            stats,
            reused: walk.reused.len(),
            cache: next,
        };
        Ok((checksum, import))
    }
}

/// Puts the files the filter skipped back into `mtree` with their recorded checksums
/// (their directories exist: libostree walked them).
pub(super) fn graft_reused(mtree: &MutableTree, reuse: &Reuse) -> Result<()> {
    let walk = reuse
        .walk
        .lock()
        .map_err(|_| anyhow::anyhow!("the import's file list is poisoned"))?;
    for (rel, checksum) in &walk.reused {
        let mut parts: Vec<&str> = rel.split('/').collect();
        let name = parts.pop().unwrap_or_default();
        let mut dir = mtree.clone();
        for part in parts {
            dir = dir.ensure_dir(part).map_err(gerr)?;
        }
        dir.replace_file(name, checksum)
            .map_err(gerr)
            .with_context(|| format!("cannot reuse {rel}"))?;
    }
    Ok(())
}

/// Every file's checksum in `mtree`, by path relative to its root.
pub(super) fn file_checksums(mtree: &MutableTree) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut todo = vec![(String::new(), mtree.clone())];
    while let Some((prefix, tree)) = todo.pop() {
        for (name, checksum) in tree.copy_files() {
            out.insert(format!("{prefix}{name}"), checksum);
        }
        for (name, sub) in tree.copy_subdirs() {
            todo.push((format!("{prefix}{name}/"), sub));
        }
    }
    out
}
