//! Which directory components keep a stat cache, and where (`repo::statcache` says what it
//! is): backends that commit a directory in place (`tree-in-place`, such as `dir`), whose
//! files mostly stay as they were between builds. The cache of component `c` is
//! `.ostree-build/stat-cache/<c>`; `build --force` ignores it (a full import) and rewrites it.

use super::plan::ComponentPlan;
use crate::repo::{NewCommit, Repo, StatCache, WriteStats};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The folder of the caches under the project's state directory.
pub fn cache_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("stat-cache")
}

/// Whether `p`'s backend commits its input directory in place.
pub(super) fn applies(p: &ComponentPlan) -> bool {
    p.backend
        .info
        .capabilities
        .iter()
        .any(|c| c == "tree-in-place")
}

/// A component import that uses its stat cache.
pub(super) struct Cached<'a> {
    pub plan: &'a ComponentPlan,
    /// The folder of the caches ([`cache_dir`]).
    pub dir: &'a Path,
    /// Do not read the cache (`build --force`); the import still writes it.
    pub full: bool,
}

impl Cached<'_> {
    /// Import `root`, reusing the checksums of the files the cache shows unchanged, then
    /// save the cache for the new commit. A cache that cannot be saved only makes the next
    /// import a full one.
    pub fn import(
        &self,
        repo: &Repo,
        root: &Path,
        commit: &NewCommit,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(String, WriteStats)> {
        let file = self
            .dir
            .join(crate::manifest::escape_ref_part(&self.plan.name));
        let cache = match (&self.plan.current, self.full) {
            (Some(current), false) => StatCache::load(&file, &current.checksum).unwrap_or_default(),
            _ => StatCache::default(),
        };
        let (checksum, import) = repo.import_dir_cached(root, commit, cache, progress)?;
        let saved = std::fs::create_dir_all(self.dir)
            .map_err(anyhow::Error::from)
            .and_then(|_| import.cache.save(&file, &checksum));
        if saved.is_err() {
            let _ = std::fs::remove_file(&file);
        }
        Ok((checksum, import.stats))
    }
}
