//! Incremental import of a directory component (`Repo::import_dir_cached`). A first walk
//! (`fstatat` only) compares every entry with the [`StatCache`] of the last import and
//! finds the **clean** directories: own stat and everything below unchanged. Then
//! libostree walks the directory as for a full import, but the commit filter skips clean
//! directories and unchanged files and symlinks; afterwards the skipped directories are
//! grafted back lazily from their recorded dirtree and dirmeta (`fill_empty_from_dirtree`,
//! never read) and the skipped files with their recorded checksums. Only the directories on
//! the way to a change are walked by libostree, only new or changed files are read, and the
//! unsafe-entry checks see every entry that was not committed before. The result is the
//! commit a full import makes.

use super::statcache::{StatCache, StatKey};
use super::{gerr, Repo, WriteStats};
use anyhow::{Context, Result};
use ostree::MutableTree;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What the first walk found: every entry's stat, and the clean directories.
#[derive(Default)]
struct PreWalk {
    keys: HashMap<String, StatKey>,
    clean: HashSet<String>,
}

impl PreWalk {
    fn of(root: &Path, cache: &StatCache) -> PreWalk {
        let mut pre = PreWalk::default();
        // The root as libostree opens it: through a symlink if the path is one.
        let walked =
            std::fs::metadata(root).and_then(|md| pre.visit(root, "", &md, cache).map(|_| ()));
        // An entry vanishing meanwhile: no reuse at all; libostree's walk reports it.
        walked.map_or_else(|_| PreWalk::default(), |_| pre)
    }

    /// Records `path` (relative `rel`, "" for the root) and below; whether it is clean.
    fn visit(
        &mut self,
        path: &Path,
        rel: &str,
        md: &std::fs::Metadata,
        cache: &StatCache,
    ) -> std::io::Result<bool> {
        let key = StatKey::of(md);
        self.keys.insert(rel.to_string(), key);
        let mut clean = cache.get(rel, &key).is_some();
        if !md.is_dir() {
            return Ok(clean);
        }
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                clean = false;
                continue;
            };
            let child = match rel {
                "" => name.to_string(),
                _ => format!("{rel}/{name}"),
            };
            clean &= self.visit(&entry.path(), &child, &entry.metadata()?, cache)?;
        }
        if clean {
            self.clean.insert(rel.to_string());
        }
        Ok(clean)
    }

    /// Whether `rel` is a clean directory or lies in one.
    fn under_clean(&self, rel: &str) -> bool {
        let mut at = rel;
        loop {
            if self.clean.contains(at) {
                return true;
            }
            match at.rfind('/') {
                Some(i) => at = &at[..i],
                None => return !at.is_empty() && self.clean.contains(""),
            }
        }
    }
}

/// What the commit filter skipped, and the stats it had to take itself.
#[derive(Default)]
struct Walk {
    files: Vec<(String, String)>,
    dirs: Vec<(String, String, String)>,
    late_keys: Vec<(String, StatKey)>,
}

/// The part of the commit filter that consults the stat cache.
#[derive(Clone)]
pub(super) struct Reuse {
    cache: Arc<StatCache>,
    pre: Arc<PreWalk>,
    walk: Arc<Mutex<Walk>>,
    root: std::path::PathBuf,
}

impl Reuse {
    /// Whether libostree may skip the entry at its `path` ("/a/b"): a clean directory, or a
    /// file or symlink whose stat is unchanged. The stats were taken before libostree reads
    /// anything, so a file changing meanwhile is recorded with an older stat than its
    /// content and read again next time.
    pub(super) fn unchanged(&self, path: &str, info: &gio::FileInfo) -> bool {
        let rel = path.trim_start_matches('/');
        let Ok(mut walk) = self.walk.lock() else {
            return false;
        };
        let key = match self.pre.keys.get(rel) {
            Some(key) => *key,
            None => match std::fs::symlink_metadata(self.root.join(rel)) {
                Ok(md) => {
                    let key = StatKey::of(&md);
                    walk.late_keys.push((rel.to_string(), key));
                    key
                }
                Err(_) => return false,
            },
        };
        let Some(recorded) = self.cache.get(rel, &key) else {
            return false;
        };
        match info.file_type() {
            gio::FileType::Directory if self.pre.clean.contains(rel) => {
                let Some((contents, meta)) = recorded.split_once(':') else {
                    return false;
                };
                let dir = (rel.to_string(), contents.to_string(), meta.to_string());
                walk.dirs.push(dir);
                true
            }
            gio::FileType::Regular | gio::FileType::SymbolicLink => {
                walk.files.push((rel.to_string(), recorded.to_string()));
                true
            }
            _ => false,
        }
    }
}

/// What an incremental import did, besides the commit.
#[derive(Debug, Clone, Default)]
pub struct DirImport {
    pub stats: WriteStats,
    /// Files and symlinks whose checksum came from the cache, outside clean directories.
    pub reused_files: usize,
    /// Clean directories grafted whole.
    pub reused_dirs: usize,
    /// The cache for the next import (to be saved with the commit it describes).
    pub cache: StatCache,
}

impl Repo {
    /// Import `dir` as a commit like [`Repo::import_dir_with`], reusing what `cache` (the
    /// stat cache of this directory's last import, whose commit is still in this
    /// repository) shows unchanged. Also returns the cache for next time.
    pub fn import_dir_cached(
        &self,
        dir: &Path,
        commit: &super::NewCommit,
        cache: StatCache,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(String, DirImport)> {
        let start = SystemTime::now();
        let pre = PreWalk::of(dir, &cache);
        let reuse = Reuse {
            cache: Arc::new(cache),
            pre: Arc::new(pre),
            walk: Arc::default(),
            root: dir.to_path_buf(),
        };
        let (checksum, stats, sums) =
            self.import_dir_filtered(dir, commit, Some(reuse.clone()), progress)?;
        let walk = std::mem::take(&mut *reuse.walk.lock().map_err(|_| poisoned())?);
        let late: HashMap<String, StatKey> = walk.late_keys.into_iter().collect();
        let mut next = StatCache::default();
        for (rel, sum) in sums {
            if let Some(key) = reuse.pre.keys.get(&rel).or_else(|| late.get(&rel)) {
                next.insert(rel, *key, sum, start);
            }
        }
        next.keep_from(&reuse.cache, |rel| reuse.pre.under_clean(rel));
        let import = DirImport {
            stats,
            reused_files: walk.files.len(),
            reused_dirs: walk.dirs.len(),
            cache: next,
        };
        Ok((checksum, import))
    }
}

fn poisoned() -> anyhow::Error {
    anyhow::anyhow!("the import's list of skipped entries is poisoned")
}

/// Puts what the filter skipped back into `mtree`: clean directories lazily from their
/// recorded checksums, then files (their directories exist: libostree walked them).
pub(super) fn graft_reused(repo: &ostree::Repo, mtree: &MutableTree, reuse: &Reuse) -> Result<()> {
    let walk = reuse.walk.lock().map_err(|_| poisoned())?;
    for (rel, contents, meta) in &walk.dirs {
        let node = match rel.rsplit_once('/') {
            _ if rel.is_empty() => mtree.clone(),
            Some((parent, name)) => subdir(mtree, parent)?.ensure_dir(name).map_err(gerr)?,
            None => mtree.ensure_dir(rel).map_err(gerr)?,
        };
        if !node.fill_empty_from_dirtree(repo, contents, meta) {
            anyhow::bail!("cannot reuse directory /{rel}: it is not empty");
        }
    }
    for (rel, checksum) in &walk.files {
        let (dir, name) = match rel.rsplit_once('/') {
            Some((parent, name)) => (subdir(mtree, parent)?, name),
            None => (mtree.clone(), rel.as_str()),
        };
        dir.replace_file(name, checksum)
            .map_err(gerr)
            .with_context(|| format!("cannot reuse /{rel}"))?;
    }
    Ok(())
}

fn subdir(mtree: &MutableTree, rel: &str) -> Result<MutableTree> {
    let mut dir = mtree.clone();
    for part in rel.split('/') {
        dir = dir.ensure_dir(part).map_err(gerr)?;
    }
    Ok(dir)
}

/// The checksum of every file (content) and directory (`contents:metadata`) in `mtree`
/// once written, by path relative to its root; grafted directories are not entered.
pub(super) fn written_checksums(mtree: &MutableTree, reuse: &Reuse) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut todo = vec![(String::new(), mtree.clone())];
    while let Some((rel, tree)) = todo.pop() {
        let dir = format!("{}:{}", tree.contents_checksum(), tree.metadata_checksum());
        out.insert(rel.clone(), dir);
        if reuse.pre.clean.contains(&rel) {
            continue;
        }
        let join = |name: &str| match rel.as_str() {
            "" => name.to_string(),
            _ => format!("{rel}/{name}"),
        };
        for (name, checksum) in tree.copy_files() {
            out.insert(join(&name), checksum);
        }
        for (name, sub) in tree.copy_subdirs() {
            todo.push((join(&name), sub));
        }
    }
    out
}
