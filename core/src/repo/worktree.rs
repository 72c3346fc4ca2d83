//! Worktrees: hardlinked checkouts that triggers run on, kept between builds.
//!
//! `sync_checkout` turns a checkout of one commit into a checkout of another by touching
//! only the entries whose checksums differ (directories with equal dirtree checksums are
//! skipped whole), so a rebuild costs what changed, not the size of the tree.
//!
//! `commit_touched` commits a worktree after triggers as "the base commit plus what the
//! triggers touched": one `lstat` walk finds entries whose ctime is at or after a stamp
//! taken before the triggers ran (ctime cannot be set from user space); everything else is
//! taken from the base tree by checksum, never read. A touched file that is still the
//! object's own inode with a new mtime was written in place through the hardlink, which
//! would corrupt the object store: that is an error.

use super::tree::{
    commit_root, lookup_entry, no_xattrs, read_dirmeta, read_dirtree, write_dirmeta, DirMeta,
    Entry, TreeIndex,
};
use super::{gerr, write_commit_from_mtree, NewCommit, Repo, WriteStats, NO_CANCEL};
use crate::fsutil::{remove_entry, remove_tree};
use anyhow::{anyhow, bail, Context, Result};
use gio::prelude::*;
use ostree::{MutableTree, RepoCheckoutAtOptions, RepoCheckoutMode, RepoCheckoutOverwriteMode};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A filesystem timestamp (seconds, nanoseconds) as the kernel stamps ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(i64, i64);

impl Stamp {
    /// The filesystem's clock at `dir`, on a tick boundary: everything changed before this
    /// call has a ctime strictly lower, everything changed after a ctime at least equal.
    pub fn now(dir: &Path) -> Result<Stamp> {
        let probe = dir.join(".ostree-build-ctime-probe");
        let read = || -> Result<Stamp> {
            std::fs::write(&probe, b"")
                .with_context(|| format!("cannot write {}", probe.display()))?;
            let md = std::fs::symlink_metadata(&probe)?;
            Ok(Stamp(md.ctime(), md.ctime_nsec()))
        };
        let first = read()?;
        let mut next = read()?;
        while next == first {
            std::thread::sleep(std::time::Duration::from_millis(1));
            next = read()?;
        }
        let _ = std::fs::remove_file(&probe);
        Ok(next)
    }

    fn of(md: &std::fs::Metadata) -> Stamp {
        Stamp(md.ctime(), md.ctime_nsec())
    }
}

/// What `sync_checkout` did.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncStats {
    /// Entries (files or whole directories) removed or checked out.
    pub entries: usize,
    /// Whether the whole tree was checked out afresh.
    pub fresh: bool,
}

impl Repo {
    /// Make `tree` a hardlinked checkout of `target`. With `previous`, `tree` must be an
    /// unmodified checkout of that commit (or of what [`Repo::commit_touched`] made of it);
    /// without, it is checked out afresh.
    pub fn sync_checkout(
        &self,
        tree: &Path,
        previous: Option<&str>,
        target: &str,
    ) -> Result<SyncStats> {
        let Some(previous) = previous else {
            remove_tree(tree)?;
            self.checkout(target, None, tree)?;
            return Ok(SyncStats {
                entries: 0,
                fresh: true,
            });
        };
        let (from_contents, from_meta) = commit_root(&self.repo, previous)?;
        let (to_contents, to_meta) = commit_root(&self.repo, target)?;
        let mut stats = SyncStats::default();
        if from_meta != to_meta {
            self.chmod_dir(tree, &to_meta)?;
        }
        self.sync_dir(target, &from_contents, &to_contents, tree, "", &mut stats)?;
        Ok(stats)
    }

    fn sync_dir(
        &self,
        target: &str,
        from: &str,
        to: &str,
        disk: &Path,
        rel: &str,
        stats: &mut SyncStats,
    ) -> Result<()> {
        if from == to {
            return Ok(());
        }
        let old = read_dirtree(&self.repo, from)?;
        let new = read_dirtree(&self.repo, to)?;
        for (name, csum) in &old.files {
            if new.files.get(name) != Some(csum) {
                remove_entry(&disk.join(name))?;
                stats.entries += 1;
            }
        }
        for name in old.dirs.keys() {
            if !new.dirs.contains_key(name) {
                remove_entry(&disk.join(name))?;
                stats.entries += 1;
            }
        }
        for (name, csum) in &new.files {
            if old.files.get(name) != Some(csum) {
                remove_entry(&disk.join(name))?;
                self.checkout(target, Some(&format!("{rel}/{name}")), disk)?;
                stats.entries += 1;
            }
        }
        for (name, (contents, meta)) in &new.dirs {
            let path = disk.join(name);
            match old.dirs.get(name) {
                Some((old_contents, old_meta)) => {
                    if old_meta != meta {
                        self.chmod_dir(&path, meta)?;
                    }
                    self.sync_dir(
                        target,
                        old_contents,
                        contents,
                        &path,
                        &format!("{rel}/{name}"),
                        stats,
                    )?;
                }
                None => {
                    remove_entry(&path)?;
                    self.checkout(target, Some(&format!("{rel}/{name}")), &path)?;
                    stats.entries += 1;
                }
            }
        }
        Ok(())
    }

    fn chmod_dir(&self, path: &Path, meta: &str) -> Result<()> {
        let m = read_dirmeta(&self.repo, meta)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m.mode & 0o7777))
            .with_context(|| format!("cannot chmod {}", path.display()))
    }

    /// Hardlink-check out `commit` (or only `subpath` of it) at `dest`. A file subpath is
    /// created inside the existing directory `dest`; a tree goes to `dest`, which must not exist.
    fn checkout(&self, commit: &str, subpath: Option<&str>, dest: &Path) -> Result<()> {
        let options = RepoCheckoutAtOptions {
            mode: RepoCheckoutMode::User,
            overwrite_mode: if dest.exists() {
                RepoCheckoutOverwriteMode::UnionFiles
            } else {
                RepoCheckoutOverwriteMode::None
            },
            no_copy_fallback: true,
            subpath: subpath.map(PathBuf::from),
            ..Default::default()
        };
        self.repo
            .checkout_at(Some(&options), libc::AT_FDCWD, dest, commit, NO_CANCEL)
            .map_err(gerr)
            .with_context(|| {
                format!(
                    "cannot check out {}{commit} into {}",
                    subpath.map(|s| format!("{s} of ")).unwrap_or_default(),
                    dest.display()
                )
            })
    }

    /// Commit `tree`, a checkout of `base` changed since `since`, as `base` plus every entry
    /// touched since then. Returns the commit, write stats and how many entries were touched.
    pub fn commit_touched(
        &self,
        tree: &Path,
        base: &str,
        since: Stamp,
        commit: &NewCommit,
    ) -> Result<(String, WriteStats, usize)> {
        // libostree does not count content written through `write_regfile`/`write_symlink`
        // in the transaction stats, so the files and links written are counted here.
        let index = TreeIndex::new(&self.repo, base)?;
        let mut touched = Vec::new();
        scan_touched(tree, String::new(), since, &mut touched)?;
        let count = touched.len();
        let ((checksum, written), stats) = self.in_transaction(|repo| {
            let root = MutableTree::new();
            let (contents, meta) = index.root().clone();
            root.fill_empty_from_dirtree(repo, &contents, &meta);
            let writer = TouchedWriter {
                repo,
                this: self,
                index: &index,
                root: &root,
                written: std::cell::Cell::new(0),
            };
            for (rel, md) in &touched {
                writer.apply(tree, rel, md)?;
            }
            let (checksum, stats) = write_commit_from_mtree(repo, &root, commit)?;
            Ok(((checksum, writer.written.get()), stats))
        })?;
        let stats = WriteStats {
            content_objects_written: written.max(stats.content_objects_written),
            ..stats
        };
        Ok((checksum, stats, count))
    }
}

/// Collect entries under `dir` whose ctime is at or after `since`, parents before children.
fn scan_touched(
    dir: &Path,
    rel: String,
    since: Stamp,
    out: &mut Vec<(String, std::fs::Metadata)>,
) -> Result<()> {
    let md =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if Stamp::of(&md) >= since {
        out.push((rel.clone(), md));
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = format!("{rel}/{name}");
        let md = entry.metadata()?;
        if md.is_dir() {
            scan_touched(&entry.path(), child, since, out)?;
        } else if Stamp::of(&md) >= since {
            out.push((child, md));
        }
    }
    Ok(())
}

struct TouchedWriter<'a> {
    repo: &'a ostree::Repo,
    this: &'a Repo,
    index: &'a TreeIndex,
    root: &'a MutableTree,
    written: std::cell::Cell<usize>,
}

impl TouchedWriter<'_> {
    /// The mutable directory for `rel` ("" is the root), creating it if absent.
    fn dir(&self, rel: &str) -> Result<MutableTree> {
        let mut cur = self.root.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            cur = match lookup_entry(&cur, part)? {
                (_, Some(sub)) => sub,
                (Some(_), None) => {
                    cur.remove(part, false).map_err(gerr)?;
                    cur.ensure_dir(part).map_err(gerr)?
                }
                (None, None) => cur.ensure_dir(part).map_err(gerr)?,
            };
        }
        Ok(cur)
    }

    fn apply(&self, tree: &Path, rel: &str, md: &std::fs::Metadata) -> Result<()> {
        let disk = tree.join(rel.trim_start_matches('/'));
        let original = self.index.lookup(rel)?;
        let (parent, name) = match rel.rfind('/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => ("", ""),
        };
        let ft = md.file_type();
        if ft.is_dir() {
            let dir = self.dir(rel)?;
            let meta = match &original {
                Some(Entry::Dir { meta, .. }) => {
                    let m = read_dirmeta(self.repo, meta)?;
                    if m.mode & 0o7777 == md.mode() & 0o7777 {
                        meta.clone()
                    } else {
                        write_dirmeta(
                            self.repo,
                            &DirMeta {
                                mode: md.mode(),
                                ..m
                            },
                        )?
                    }
                }
                _ => write_dirmeta(
                    self.repo,
                    &DirMeta {
                        uid: md.uid(),
                        gid: md.gid(),
                        mode: md.mode(),
                        xattrs: no_xattrs(),
                    },
                )?,
            };
            dir.set_metadata_checksum(&meta);
            // Entries removed by a trigger: present in the tree, absent on disk.
            let on_disk: std::collections::HashSet<String> = std::fs::read_dir(&disk)?
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect();
            let known: Vec<String> = dir
                .copy_files()
                .into_keys()
                .chain(dir.copy_subdirs().into_keys())
                .collect();
            for name in known.into_iter().filter(|n| !on_disk.contains(n)) {
                dir.remove(&name, false).map_err(gerr)?;
            }
            return Ok(());
        }
        let original_file = match &original {
            Some(Entry::File(c)) => Some(c.as_str()),
            _ => None,
        };
        if ft.is_file() && md.nlink() > 1 {
            if let Some(csum) = original_file {
                let object = std::fs::symlink_metadata(self.this.object_path(csum)).ok();
                if object.is_some_and(|o| o.ino() == md.ino() && o.dev() == md.dev()) {
                    if md.mtime() != 0 {
                        bail!(
                            "a trigger modified {rel} in place, which is hardlinked to object {csum} of the build repository\n  help: the build repository {} is damaged; run `ostree fsck --delete --repo={}` and rebuild",
                            self.this.path().display(),
                            self.this.path().display()
                        );
                    }
                    return Ok(()); // only its link count changed
                }
            }
        }
        // Keep the original owner and xattrs of a path a trigger rewrote; new paths get the
        // owner on disk and no xattrs.
        let (uid, gid, xattrs) = match original_file {
            Some(csum) => {
                let (info, xattrs) = self.repo.query_file(csum, NO_CANCEL).map_err(gerr)?;
                (
                    info.attribute_uint32("unix::uid"),
                    info.attribute_uint32("unix::gid"),
                    xattrs,
                )
            }
            None => (md.uid(), md.gid(), no_xattrs()),
        };
        let checksum = if ft.is_symlink() {
            let target = std::fs::read_link(&disk)?;
            self.repo
                .write_symlink(
                    None,
                    uid,
                    gid,
                    Some(&xattrs),
                    &target.to_string_lossy(),
                    NO_CANCEL,
                )
                .map_err(gerr)?
                .to_string()
        } else if ft.is_file() {
            self.write_file(&disk, uid, gid, md.mode(), md.len(), &xattrs)
                .with_context(|| format!("cannot commit {rel}"))?
        } else {
            bail!("a trigger created {rel}, which is a device node, fifo or socket\n  help: special files cannot be committed; remove it in the trigger");
        };
        self.written.set(self.written.get() + 1);
        let dir = self.dir(parent)?;
        if let (_, Some(_)) = lookup_entry(&dir, name)? {
            dir.remove(name, false).map_err(gerr)?;
        }
        dir.replace_file(name, &checksum).map_err(gerr)?;
        Ok(())
    }

    fn write_file(
        &self,
        path: &Path,
        uid: u32,
        gid: u32,
        mode: u32,
        len: u64,
        xattrs: &glib::Variant,
    ) -> Result<String> {
        let writer = self
            .repo
            .write_regfile(None, uid, gid, mode, len, Some(xattrs))
            .map_err(gerr)?;
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            writer.write_all(&buf[..n], NO_CANCEL).map_err(gerr)?;
        }
        Ok(writer
            .finish(NO_CANCEL)
            .map_err(|e| anyhow!("{}", e.message()))?
            .to_string())
    }
}
