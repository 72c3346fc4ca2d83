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
use std::collections::HashMap;
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
        let mut writes = 0u32;
        let mut read = || -> Result<Stamp> {
            writes += 1;
            std::fs::write(&probe, writes.to_le_bytes())
                .with_context(|| format!("cannot write {}", probe.display()))?;
            let md = std::fs::symlink_metadata(&probe)?;
            Ok(Stamp(md.ctime(), md.ctime_nsec()))
        };
        let first = read()?;
        let mut next = read()?;
        // Wait for the filesystem clock to tick (a few ms on coarse clocks), not forever.
        for _ in 0..2000 {
            if next != first {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            next = read()?;
        }
        let _ = std::fs::remove_file(&probe);
        if next == first {
            bail!(
                "the filesystem of {} does not update ctime; triggers need a filesystem that does (ext4, xfs, btrfs, tmpfs)",
                dir.display()
            );
        }
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

    /// Check `commit` out at `dest` (which must not exist) as copies with their owners,
    /// modes and xattrs, for a tool to change in place and [`Repo::commit_touched`] with
    /// [`MetaFrom::Disk`] to commit: nothing in it is shared with the repository. Needs root.
    pub fn checkout_owned(&self, commit: &str, dest: &Path) -> Result<()> {
        let options = RepoCheckoutAtOptions {
            mode: RepoCheckoutMode::None,
            overwrite_mode: RepoCheckoutOverwriteMode::None,
            ..Default::default()
        };
        self.repo
            .checkout_at(Some(&options), libc::AT_FDCWD, dest, commit, NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot check out {commit} into {}", dest.display()))
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

    /// Commit `tree`, a checkout of `base` changed after `before` was taken, as `base` plus
    /// every entry touched since then. Returns the commit, write stats and the touched
    /// paths that are not directories (relative, no leading `/`), rewrites to identical
    /// content included.
    pub fn commit_touched(
        &self,
        tree: &Path,
        base: &str,
        before: &Snapshot,
        commit: &NewCommit,
        meta_from: MetaFrom,
    ) -> Result<Touched> {
        let index = TreeIndex::new(&self.repo, base)?;
        let mut touched = Vec::new();
        scan_touched(tree, String::new(), before.since, &mut touched)?;
        let touched_files: Vec<String> = touched
            .iter()
            .filter(|(_, md)| !md.is_dir())
            .map(|(rel, _)| rel.trim_start_matches('/').to_string())
            .collect();
        let ((checksum, written, new_setuid), stats) = self.in_transaction(|repo| {
            let root = MutableTree::new();
            let (contents, meta) = index.root().clone();
            root.fill_empty_from_dirtree(repo, &contents, &meta);
            let writer = TouchedWriter {
                repo,
                this: self,
                index: &index,
                before,
                root: &root,
                meta_from,
                written: std::cell::Cell::new(0),
                new_setuid: Default::default(),
            };
            for (rel, md) in &touched {
                writer.apply(tree, rel, md)?;
            }
            let (checksum, stats) = write_commit_from_mtree(repo, &root, commit)?;
            Ok((
                (checksum, writer.written.get(), writer.new_setuid.take()),
                stats,
            ))
        })?;
        // libostree does not count content written through `write_regfile`/`write_symlink`
        // in the transaction stats, so the files and links written are counted here.
        let stats = WriteStats {
            content_objects_written: written.max(stats.content_objects_written),
            ..stats
        };
        Ok(Touched {
            commit: checksum,
            stats,
            files: touched_files,
            new_setuid,
        })
    }
}

/// What a worktree looked like before triggers ran: a ctime stamp, and where each
/// directory (by device and inode) was, so a directory a trigger moved keeps its contents.
pub struct Snapshot {
    since: Stamp,
    dirs: HashMap<(u64, u64), String>,
}

impl Snapshot {
    /// Take it just before the triggers run; `scratch` is a directory on the same
    /// filesystem as `tree` for the clock probe.
    pub fn take(tree: &Path, scratch: &Path) -> Result<Snapshot> {
        let mut dirs = HashMap::new();
        walk_dirs(tree, String::new(), &mut dirs)?;
        Ok(Snapshot {
            since: Stamp::now(scratch)?,
            dirs,
        })
    }
}

fn walk_dirs(dir: &Path, rel: String, out: &mut HashMap<(u64, u64), String>) -> Result<()> {
    let md =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    out.insert((md.dev(), md.ino()), rel.clone());
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            walk_dirs(&entry.path(), format!("{rel}/{name}"), out)?;
        }
    }
    Ok(())
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

/// Ownership, mode and xattrs of a content object.
pub(super) struct FileMeta {
    uid: u32,
    gid: u32,
    mode: u32,
    pub xattrs: glib::Variant,
}

/// The metadata a `bare-user` object keeps in its `user.ostreemeta` xattr, if `path` has it
/// (an object's own inode, or a copy made with its xattrs, e.g. `cp -a`).
pub(super) fn object_meta(path: &Path) -> Result<Option<FileMeta>> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    let name = c"user.ostreemeta";
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: buf is valid for buf.len() bytes; both strings are NUL-terminated.
        let n = unsafe {
            libc::lgetxattr(
                c_path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            _ => {
                return Err(err)
                    .with_context(|| format!("cannot read xattrs of {}", path.display()))
            }
        }
    }
    let v = glib::Variant::from_bytes_with_type(
        &glib::Bytes::from_owned(buf),
        glib::VariantTy::new("(uuua(ayay))").expect("valid variant type"),
    );
    let field = |i: usize| {
        v.try_child_value(i)
            .and_then(|c| c.get::<u32>())
            .map(u32::from_be)
    };
    match (field(0), field(1), field(2), v.try_child_value(3)) {
        (Some(uid), Some(gid), Some(mode), Some(xattrs)) => Ok(Some(FileMeta {
            uid,
            gid,
            mode,
            xattrs,
        })),
        _ => bail!("{}: malformed user.ostreemeta xattr", path.display()),
    }
}

/// Where the owner, mode and xattrs of a touched entry come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaFrom {
    /// A hardlinked user-mode checkout (triggers): the disk shows the checking-out user
    /// and masked modes, so owners and xattrs are those of the entry replaced.
    Base,
    /// A checkout made as root with owners, modes and xattrs (a backend's previous tree):
    /// the disk is the truth.
    Disk,
}

struct TouchedWriter<'a> {
    repo: &'a ostree::Repo,
    this: &'a Repo,
    index: &'a TreeIndex,
    before: &'a Snapshot,
    root: &'a MutableTree,
    meta_from: MetaFrom,
    written: std::cell::Cell<usize>,
    /// Files that are setuid or setgid now and were not (or did not exist) before.
    new_setuid: std::cell::RefCell<Vec<String>>,
}

/// What [`Repo::commit_touched`] committed.
#[derive(Debug)]
pub struct Touched {
    pub commit: String,
    pub stats: WriteStats,
    /// The files (not directories) the triggers touched, relative to the root.
    pub files: Vec<String>,
    /// Files the triggers made setuid or setgid, for the build output to name.
    pub new_setuid: Vec<String>,
}

/// A symlink a trigger wrote must be one an import would accept.
fn check_link(rel: &str, target: &str) -> Result<()> {
    if let Some(problem) = crate::links::unsafe_link(rel, target) {
        bail!("a trigger created {problem}\n  help: make the link absolute, or relative without climbing above the root");
    }
    Ok(())
}

impl TouchedWriter<'_> {
    /// Record `rel` when the trigger made it setuid or setgid.
    fn note_setuid(&self, rel: &str, md: &std::fs::Metadata, original: Option<&str>) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let bits = md.permissions().mode() & 0o6000;
        if bits == 0 {
            return Ok(());
        }
        let before = match original {
            Some(csum) => self.original_meta(csum)?.mode & 0o6000,
            None => 0,
        };
        if bits & !before != 0 {
            self.new_setuid
                .borrow_mut()
                .push(format!("/{}", rel.trim_start_matches('/')));
        }
        Ok(())
    }

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
        let (parent, name) = match rel.rfind('/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => ("", ""),
        };
        let ft = md.file_type();
        if ft.is_dir() {
            return self.apply_dir(&disk, rel, parent, name, md);
        }
        let original = match self.index.lookup(rel)? {
            Some(Entry::File(c)) => Some(c),
            _ => None,
        };
        let checksum = if ft.is_symlink() {
            // Keep the owner and xattrs of a link a trigger rewrote.
            let meta = match &original {
                _ if self.meta_from == MetaFrom::Disk => disk_meta(&disk, md)?,
                Some(csum) => self.original_meta(csum)?,
                None => FileMeta {
                    uid: md.uid(),
                    gid: md.gid(),
                    mode: 0o120777,
                    xattrs: no_xattrs(),
                },
            };
            let target = std::fs::read_link(&disk)?;
            check_link(rel, &target.to_string_lossy())?;
            self.repo
                .write_symlink(
                    None,
                    meta.uid,
                    meta.gid,
                    Some(&meta.xattrs),
                    &target.to_string_lossy(),
                    NO_CANCEL,
                )
                .map_err(gerr)?
                .to_string()
        } else if ft.is_file() {
            self.note_setuid(rel, md, original.as_deref())?;
            match self.file_checksum(&disk, rel, md, original.as_deref())? {
                Some(c) => c,
                None => return Ok(()), // the base object, unchanged
            }
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

    fn original_meta(&self, csum: &str) -> Result<FileMeta> {
        let (info, xattrs) = self.repo.query_file(csum, NO_CANCEL).map_err(gerr)?;
        Ok(FileMeta {
            uid: info.attribute_uint32("unix::uid"),
            gid: info.attribute_uint32("unix::gid"),
            mode: info.attribute_uint32("unix::mode"),
            xattrs,
        })
    }

    /// The checksum of a touched regular file, or `None` when it is still exactly the base
    /// object at its path.
    fn file_checksum(
        &self,
        disk: &Path,
        rel: &str,
        md: &std::fs::Metadata,
        original: Option<&str>,
    ) -> Result<Option<String>> {
        if self.meta_from == MetaFrom::Disk {
            return self
                .write_file(disk, &disk_meta(disk, md)?, md.len())
                .map(Some);
        }
        let own_object = match original {
            Some(csum) => std::fs::symlink_metadata(self.this.object_path(csum))
                .ok()
                .is_some_and(|o| o.ino() == md.ino() && o.dev() == md.dev()),
            None => false,
        };
        let stored = object_meta(disk)?;
        if own_object {
            let csum = original.unwrap_or_default();
            // Its ctime moved: a link count change, a `touch` (rofiles-fuse allows times), or
            // a write through the hardlink. Only the last changes the content: verify.
            let Some(meta) = stored else {
                bail!(
                    "a trigger removed the metadata xattr of {rel}, which is hardlinked to object {csum} of the build repository\n  help: {}",
                    damaged_hint(self.this)
                );
            };
            if md.mtime() == 0 {
                return Ok(None);
            }
            let actual = self.write_file(disk, &meta, md.len())?;
            if actual != csum {
                bail!(
                    "a trigger modified {rel} in place, which is hardlinked to object {csum} of the build repository\n  help: {}",
                    damaged_hint(self.this)
                );
            }
            // Only its times changed: put back the object's mtime of 0.
            let c_path = std::ffi::CString::new(disk.as_os_str().as_encoded_bytes())?;
            let times = [libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }; 2];
            // SAFETY: a NUL-terminated path and two valid timespecs.
            unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c_path.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            return Ok(None);
        }
        let meta = match (stored, original) {
            // An object moved, linked or copied with its xattrs: its true metadata.
            (Some(meta), _) => meta,
            // A file a trigger rewrote: the owner and xattrs of the file it replaces. The
            // trigger saw that file's on-disk mode, which bare-user masks to 0775|0400; the
            // same mode back means "unchanged", so setuid/setgid bits are restored.
            (None, Some(csum)) => {
                let orig = self.original_meta(csum)?;
                let on_disk = md.mode() & 0o7777;
                let mode = if on_disk == ((orig.mode & 0o775) | 0o400) {
                    orig.mode
                } else {
                    md.mode()
                };
                FileMeta { mode, ..orig }
            }
            (None, None) => FileMeta {
                uid: md.uid(),
                gid: md.gid(),
                mode: md.mode(),
                xattrs: no_xattrs(),
            },
        };
        self.write_file(disk, &meta, md.len()).map(Some)
    }

    fn apply_dir(
        &self,
        disk: &Path,
        rel: &str,
        parent: &str,
        name: &str,
        md: &std::fs::Metadata,
    ) -> Result<()> {
        // Where this directory was before the triggers: here, elsewhere (moved), or nowhere (new).
        let origin = self.before.dirs.get(&(md.dev(), md.ino())).cloned();
        let dir = if rel.is_empty() {
            self.root.clone()
        } else {
            let parent_dir = self.dir(parent)?;
            if origin.as_deref() != Some(rel) {
                let _ = parent_dir.remove(name, true);
            }
            match (&origin, lookup_entry(&parent_dir, name)?) {
                (_, (_, Some(existing))) => existing,
                (Some(from), _) => match self.index.lookup(from)? {
                    Some(Entry::Dir { contents, meta }) => {
                        let sub = parent_dir.ensure_dir(name).map_err(gerr)?;
                        sub.fill_empty_from_dirtree(self.repo, &contents, &meta);
                        sub
                    }
                    _ => parent_dir.ensure_dir(name).map_err(gerr)?,
                },
                (None, _) => parent_dir.ensure_dir(name).map_err(gerr)?,
            }
        };
        let base_meta = match origin
            .as_deref()
            .map(|o| self.index.lookup(o))
            .transpose()?
            .flatten()
        {
            Some(Entry::Dir { meta, .. }) => Some(meta),
            _ => None,
        };
        let meta = match base_meta {
            _ if self.meta_from == MetaFrom::Disk => {
                let m = disk_meta(disk, md)?;
                write_dirmeta(
                    self.repo,
                    &DirMeta {
                        uid: m.uid,
                        gid: m.gid,
                        mode: m.mode,
                        xattrs: m.xattrs,
                    },
                )?
            }
            Some(meta) => {
                let m = read_dirmeta(self.repo, &meta)?;
                if m.mode & 0o7777 == md.mode() & 0o7777 {
                    meta
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
            None => write_dirmeta(
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
        // Entries removed by a trigger: present in the tree, absent on disk. New names on
        // disk were created, linked or moved in after the snapshot, so they are touched
        // themselves and applied after this directory.
        let on_disk: std::collections::HashSet<String> = std::fs::read_dir(disk)?
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
        Ok(())
    }

    fn write_file(&self, path: &Path, meta: &FileMeta, len: u64) -> Result<String> {
        let writer = self
            .repo
            .write_regfile(None, meta.uid, meta.gid, meta.mode, len, Some(&meta.xattrs))
            .map_err(gerr)?;
        let mut file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
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

/// An entry's owner, mode and xattrs as they are on disk; xattrs in the order the kernel
/// lists them, as libostree's directory import reads them.
fn disk_meta(path: &Path, md: &std::fs::Metadata) -> Result<FileMeta> {
    let cannot = || format!("cannot read the xattrs of {}", path.display());
    let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for name in xattr::list(path).with_context(cannot)? {
        if let Some(value) = xattr::get(path, &name).with_context(cannot)? {
            let mut name = name.into_encoded_bytes();
            name.push(0);
            xattrs.push((name, value));
        }
    }
    Ok(FileMeta {
        uid: md.uid(),
        gid: md.gid(),
        mode: md.mode(),
        xattrs: xattrs.to_variant(),
    })
}

fn damaged_hint(repo: &Repo) -> String {
    format!(
        "the build repository {} is damaged; run `ostree fsck --delete --repo={}`, then `ostree-build build --force`",
        repo.path().display(),
        repo.path().display()
    )
}
