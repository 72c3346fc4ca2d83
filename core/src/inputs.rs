//! Input hashing: what decides whether a component or image must be rebuilt.
//!
//! Files are stamped by metadata (type, mode, owner, size, mtime, link target), the way
//! cargo and make decide freshness, so a no-op check never reads file contents.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A running SHA-256 with helpers for the fields we hash.
#[derive(Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new(domain: &str) -> Self {
        let mut h = Hasher(Sha256::new());
        h.str(domain);
        h
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// Hash the metadata of every file under each input path (recursively, sorted by name).
pub fn stamp_inputs(paths: &[std::path::PathBuf]) -> Result<String> {
    let mut h = Hasher::new("ostree-build inputs v1");
    for p in paths {
        h.str(&p.to_string_lossy());
        let md = std::fs::symlink_metadata(p)
            .with_context(|| format!("cannot read input {}", p.display()))?;
        stamp_path(&mut h, p, "", &md)?;
    }
    Ok(h.finish())
}

/// Stamp the entry at `path` whose `lstat` is `md`. Children are stat'ed through their
/// directory's descriptor (`DirEntry::metadata` is `fstatat`), which spares the kernel a
/// full path lookup per file: this walk runs over every input of every component at each
/// build, so it is what a no-op or one-file build of a large tree costs.
fn stamp_path(h: &mut Hasher, path: &Path, rel: &str, md: &std::fs::Metadata) -> Result<()> {
    h.str(rel);
    for n in [
        md.mode() as u64,
        md.uid() as u64,
        md.gid() as u64,
        if md.is_dir() { 0 } else { md.size() },
        md.mtime() as u64,
        md.mtime_nsec() as u64,
    ] {
        h.bytes(&n.to_le_bytes());
    }
    if md.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        h.str(&target.to_string_lossy());
    } else if md.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list input {}", path.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let child = path.join(&name);
            let md = entry
                .metadata()
                .with_context(|| format!("cannot read input {}", child.display()))?;
            let child_rel = format!("{rel}/{}", name.to_string_lossy());
            stamp_path(h, &child, &child_rel, &md)?;
        }
    }
    Ok(())
}
