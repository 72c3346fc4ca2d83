//! Portable input digests: what a component is built from, by content, so that two
//! machines holding the same sources compute the same component cache key.
//!
//! The freshness stamp (`inputs::stamp_inputs`) hashes metadata, with absolute paths and
//! times, which differ between two clones of one project. The digest hashes what ends up in
//! a component: paths relative to the project, file types, modes, owners, contents, symlink
//! targets and extended attributes. Contents and attributes are remembered per inode, keyed
//! by size, mtime and ctime (git's index does the same), so a second digest of unchanged
//! inputs only stats them.

use crate::inputs::Hasher;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What is remembered of one inode: its stat when it was read, and the digest of its
/// contents and extended attributes.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
struct Seen {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    digest: String,
}

/// The remembered digests of one component's inputs, in a file of the state directory.
#[derive(Default, Serialize, Deserialize)]
pub struct DigestCache {
    entries: HashMap<String, Seen>,
    #[serde(skip)]
    used: HashMap<String, Seen>,
    #[serde(skip)]
    changed: bool,
}

impl DigestCache {
    /// The cache in `path`; empty when it is missing or unreadable (it is only a cache).
    pub fn load(path: &Path) -> DigestCache {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Write the entries this digest used (so deleted inputs are forgotten), if any changed.
    pub fn save(self, path: &Path) -> Result<()> {
        if !self.changed && self.used.len() == self.entries.len() {
            return Ok(());
        }
        let kept = DigestCache {
            entries: self.used,
            ..Default::default()
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::fsutil::replace_file(path, &serde_json::to_vec(&kept)?)
    }

    /// The digest of `path`'s contents (for a regular file) and extended attributes.
    fn contents(&mut self, path: &Path, md: &std::fs::Metadata) -> Result<String> {
        let key = format!("{}:{}", md.dev(), md.ino());
        let stat = Seen {
            size: md.size(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
            digest: String::new(),
        };
        if let Some(seen) = self.entries.get(&key).filter(|s| same_stat(s, &stat)) {
            self.used.insert(key, seen.clone());
            return Ok(seen.digest.clone());
        }
        let digest = read_digest(path, md)?;
        self.changed = true;
        self.used.insert(
            key,
            Seen {
                digest: digest.clone(),
                ..stat
            },
        );
        Ok(digest)
    }
}

fn same_stat(a: &Seen, b: &Seen) -> bool {
    (a.size, a.mtime_ns, a.ctime_ns) == (b.size, b.mtime_ns, b.ctime_ns)
}

/// SHA-256 of a regular file's bytes (nothing for other kinds), then its extended
/// attributes sorted by name.
fn read_digest(path: &Path, md: &std::fs::Metadata) -> Result<String> {
    let mut h = Hasher::new("contents");
    if md.is_file() {
        let mut file = std::fs::File::open(path)
            .with_context(|| format!("cannot read input {}", path.display()))?;
        let mut sha = sha2::Sha256::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("cannot read input {}", path.display()))?;
            if n == 0 {
                break;
            }
            sha2::Digest::update(&mut sha, &buf[..n]);
        }
        h.bytes(&sha2::Digest::finalize(sha));
    }
    if !md.file_type().is_symlink() {
        let mut names: Vec<_> = xattr::list(path)
            .with_context(|| format!("cannot list the attributes of {}", path.display()))?
            .collect();
        names.sort();
        for name in names {
            let value = xattr::get(path, &name).ok().flatten().unwrap_or_default();
            h.bytes(name.as_encoded_bytes()).bytes(&value);
        }
    }
    Ok(h.finish())
}

/// The portable digest of `inputs`: each named relative to `project_dir` when inside it.
pub fn digest_inputs(
    inputs: &[PathBuf],
    project_dir: &Path,
    cache: &mut DigestCache,
) -> Result<String> {
    let mut h = Hasher::new("ostree-build input digest v1");
    for p in inputs {
        let shown = p.strip_prefix(project_dir).unwrap_or(p);
        h.str(&shown.to_string_lossy());
        let md = std::fs::symlink_metadata(p)
            .with_context(|| format!("cannot read input {}", p.display()))?;
        digest_path(&mut h, p, "", &md, cache)?;
    }
    Ok(h.finish())
}

fn digest_path(
    h: &mut Hasher,
    path: &Path,
    rel: &str,
    md: &std::fs::Metadata,
    cache: &mut DigestCache,
) -> Result<()> {
    h.str(rel);
    for n in [md.mode(), md.uid(), md.gid()] {
        h.bytes(&n.to_le_bytes());
    }
    if md.file_type().is_symlink() {
        h.str(&std::fs::read_link(path)?.to_string_lossy());
        return Ok(());
    }
    h.str(&cache.contents(path, md)?);
    if md.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list input {}", path.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let child = path.join(entry.file_name());
            let md = entry
                .metadata()
                .with_context(|| format!("cannot read input {}", child.display()))?;
            let child_rel = format!("{rel}/{}", entry.file_name().to_string_lossy());
            digest_path(h, &child, &child_rel, &md, cache)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(dir: &Path, project: &Path, cache: &mut DigestCache) -> String {
        digest_inputs(&[dir.to_path_buf()], project, cache).unwrap()
    }

    #[test]
    fn same_content_elsewhere_same_digest_and_content_matters() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for root in [a.path(), b.path()] {
            std::fs::create_dir_all(root.join("rootfs/etc")).unwrap();
            std::fs::write(root.join("rootfs/etc/motd"), "hello\n").unwrap();
            std::os::unix::fs::symlink("motd", root.join("rootfs/etc/issue")).unwrap();
        }
        // Different times: a copy made later.
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let motd = std::fs::File::options()
            .write(true)
            .open(a.path().join("rootfs/etc/motd"));
        motd.unwrap().set_modified(old).unwrap();
        let da = digest(
            &a.path().join("rootfs"),
            a.path(),
            &mut DigestCache::default(),
        );
        let db = digest(
            &b.path().join("rootfs"),
            b.path(),
            &mut DigestCache::default(),
        );
        assert_eq!(da, db);
        std::fs::write(b.path().join("rootfs/etc/motd"), "hellO\n").unwrap();
        let db2 = digest(
            &b.path().join("rootfs"),
            b.path(),
            &mut DigestCache::default(),
        );
        assert_ne!(da, db2);
    }

    #[test]
    fn cache_is_used_and_notices_a_change_of_the_same_size() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in/f");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "aaaa").unwrap();
        let store = dir.path().join("digests.json");
        let mut cache = DigestCache::load(&store);
        let first = digest(&dir.path().join("in"), dir.path(), &mut cache);
        cache.save(&store).unwrap();
        let mut cache = DigestCache::load(&store);
        assert_eq!(cache.entries.len(), 2);
        assert_eq!(
            first,
            digest(&dir.path().join("in"), dir.path(), &mut cache)
        );
        assert!(!cache.changed);
        std::fs::write(&file, "bbbb").unwrap();
        let mut cache = DigestCache::load(&store);
        assert_ne!(
            first,
            digest(&dir.path().join("in"), dir.path(), &mut cache)
        );
    }
}
