//! Content objects (files and symlinks) written straight into a `bare-user` repository, the
//! build repository's mode, for the tar import. libostree's per-object path costs more than
//! the object: GLib's SHA-256 (no SHA-NI), a GVariant stream per object, the object written
//! before it checks whether it has it. Here the checksum is computed first (`sha2`, SHA-NI
//! when the CPU has it), an object the repository or this import already holds is not
//! written again, and the rest are staged in a private directory under `tmp/`: a failed
//! import removes it, a good one renames its objects into `objects/` before the commit
//! (after a `syncfs` when the repository has fsync on). The layout is libostree's
//! (`commit_loose_regfile_object`, 2022.7): the content (a symlink's target with its NUL),
//! `user.ostreemeta` = `(uuu@a(ayay))` big-endian, mode `(mode & 0775) | 0400` for files
//! and 0644 for symlinks, mtime 0. `fsck` and the differential test check it.

use super::WriteStats;
use anyhow::{Context, Result};
use gio::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Owner, full mode and xattrs (`a(ayay)`) of a content object.
pub struct ObjectMeta<'a> {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: &'a glib::Variant,
}

/// Writes the content objects of one import; see the module comment.
pub struct LooseWriter {
    objects: PathBuf,
    staging: PathBuf,
    sync: bool,
    /// Checksums staged by this import or found in the repository.
    known: Mutex<HashSet<String>>,
    next_tmp: AtomicU64,
    written: AtomicUsize,
    bytes: AtomicU64,
}

impl LooseWriter {
    /// A writer for `repo` if it is a `bare-user` repository on a local path; `None` (use
    /// libostree) otherwise.
    pub fn for_repo(repo: &ostree::Repo) -> Result<Option<LooseWriter>> {
        if repo.mode() != ostree::RepoMode::BareUser {
            return Ok(None);
        }
        let Some(root) = repo.path().path() else {
            return Ok(None);
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let staging = root.join(format!(
            "tmp/ostree-build-import-{}-{stamp}",
            std::process::id()
        ));
        std::fs::create_dir(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        Ok(Some(LooseWriter {
            objects: root.join("objects"),
            staging,
            sync: !repo.is_disable_fsync(),
            known: Mutex::new(HashSet::new()),
            next_tmp: AtomicU64::new(0),
            written: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
        }))
    }

    /// Write a regular file held in memory; its checksum.
    pub fn write_file(&self, meta: &ObjectMeta, data: &[u8]) -> Result<String> {
        self.write_content(meta, "", data)
    }

    /// Write a symlink (its target is the content in `bare-user`); its checksum.
    pub fn write_symlink(&self, meta: &ObjectMeta, target: &str) -> Result<String> {
        let mut content = target.as_bytes().to_vec();
        content.push(0);
        self.write_content(meta, target, &content)
    }

    fn write_content(&self, meta: &ObjectMeta, target: &str, content: &[u8]) -> Result<String> {
        let mut hash = Sha256::new();
        hash.update(file_header(meta, target));
        // A symlink's checksum covers its header only; its target is in the header.
        if target.is_empty() {
            hash.update(content);
        }
        let checksum = hex::encode(hash.finalize());
        if !self.claim(&checksum) {
            return Ok(checksum);
        }
        let path = self.staging.join(format!("{checksum}.file"));
        let mut file = create(&path)?;
        file.write_all(content)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.finish(&file, &path, meta, content.len() as u64)?;
        Ok(checksum)
    }

    /// Write a regular file of `size` bytes read from `data`, hashing as it goes; its
    /// checksum.
    pub fn write_stream(
        &self,
        meta: &ObjectMeta,
        data: &mut dyn Read,
        size: u64,
    ) -> Result<String> {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.staging.join(format!("stream-{n}"));
        let mut file = create(&tmp)?;
        let mut hash = Sha256::new();
        hash.update(file_header(meta, ""));
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let k = data.read(&mut buf).context("reading the archive")?;
            if k == 0 {
                break;
            }
            hash.update(&buf[..k]);
            file.write_all(&buf[..k])
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            total += k as u64;
        }
        anyhow::ensure!(
            total == size,
            "the archive ends {total} bytes into it, of {size}"
        );
        let checksum = hex::encode(hash.finalize());
        if !self.claim(&checksum) {
            drop(file);
            std::fs::remove_file(&tmp)?;
            return Ok(checksum);
        }
        self.finish(&file, &tmp, meta, size)?;
        let path = self.staging.join(format!("{checksum}.file"));
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot rename {}", tmp.display()))?;
        Ok(checksum)
    }

    /// True if this import is the first to want `checksum` and the repository lacks it.
    fn claim(&self, checksum: &str) -> bool {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(checksum) {
            return false;
        }
        known.insert(checksum.to_string());
        let stored = self.objects.join(loose_path(checksum));
        stored.symlink_metadata().is_err()
    }

    /// The metadata libostree gives a `bare-user` object.
    fn finish(&self, file: &File, path: &Path, meta: &ObjectMeta, size: u64) -> Result<()> {
        let fd = file.as_raw_fd();
        let ostreemeta = glib::Variant::tuple_from_iter([
            meta.uid.to_be().to_variant(),
            meta.gid.to_be().to_variant(),
            meta.mode.to_be().to_variant(),
            meta.xattrs.clone(),
        ]);
        let value = ostreemeta.data();
        let name = c"user.ostreemeta";
        // SAFETY: fd is open; name is NUL-terminated; value is valid for its length.
        let set =
            unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        let is_file = meta.mode & libc::S_IFMT == libc::S_IFREG;
        let perms = if is_file {
            (meta.mode & 0o775) | 0o400
        } else {
            0o644
        };
        let times = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        ];
        // SAFETY: fd is open; times is two valid timespecs.
        let done = set == 0
            && unsafe { libc::fchmod(fd, perms) } == 0
            && unsafe { libc::futimens(fd, times.as_ptr()) } == 0;
        if !done {
            let e = std::io::Error::last_os_error();
            return Err(anyhow::anyhow!(
                "cannot set the metadata of {}: {e}",
                path.display()
            ));
        }
        self.written.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Move every staged object into `objects/` (a good import, before its commit); what
    /// was written.
    pub fn publish(self) -> Result<WriteStats> {
        if self.sync {
            let dir = File::open(&self.staging)?;
            // SAFETY: the fd is open.
            if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
                return Err(std::io::Error::last_os_error()).context("syncfs");
            }
        }
        let mut made: HashSet<String> = HashSet::new();
        for entry in std::fs::read_dir(&self.staging)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            let Some(checksum) = name.strip_suffix(".file") else {
                continue;
            };
            let dest = self.objects.join(loose_path(checksum));
            if made.insert(checksum[..2].to_string()) {
                if let Err(e) = std::fs::create_dir(self.objects.join(&checksum[..2])) {
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(e).context("cannot create an object directory");
                    }
                }
            }
            rename_noreplace(&self.staging.join(&*name), &dest)
                .with_context(|| format!("cannot store object {checksum}"))?;
        }
        Ok(WriteStats {
            content_objects_written: self.written.load(Ordering::Relaxed),
            content_bytes_written: self.bytes.load(Ordering::Relaxed),
            devino_cache_hits: 0,
        })
    }
}

impl Drop for LooseWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// Rename `from` to `to` unless `to` exists (another import stored the same object since
/// `claim`): the object in place keeps its inode, which checkouts may hardlink, as
/// libostree leaves it. What is left in the staging directory goes with it.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    match std::io::Error::last_os_error() {
        _ if done == 0 => Ok(()),
        e if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        e => Err(e),
    }
}

/// `objects/`-relative path of a content object.
fn loose_path(checksum: &str) -> String {
    format!("{}/{}.file", &checksum[..2], &checksum[2..])
}

fn create(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// What a content object's checksum starts with (libostree's `_ostree_file_header_new`):
/// the big-endian length of a `(uuuusa(ayay))` variant, four zero bytes, the variant.
fn file_header(meta: &ObjectMeta, target: &str) -> Vec<u8> {
    let header = glib::Variant::tuple_from_iter([
        meta.uid.to_be().to_variant(),
        meta.gid.to_be().to_variant(),
        meta.mode.to_be().to_variant(),
        0u32.to_variant(),
        target.to_variant(),
        meta.xattrs.clone(),
    ]);
    let data = header.data();
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(data);
    out
}
