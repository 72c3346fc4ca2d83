//! Small filesystem helpers shared by the lock, the worktrees, the pipeline and publishing
//! (removing trees, sizes, replacing a file atomically).

use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Remove a directory tree that may contain read-only directories; absent is fine.
pub fn remove_tree(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(dir);
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
        }
    }
}

/// Remove every entry of `dir` whose name is not in `keep`; a missing `dir` is fine.
pub fn remove_entries_but(dir: &Path, keep: impl IntoIterator<Item = String>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let keep: std::collections::HashSet<String> = keep.into_iter().collect();
    for entry in entries.flatten() {
        if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
            remove_entry(&entry.path())?;
        }
    }
    Ok(())
}

/// Remove a file, symlink or directory tree; absent is fine.
pub fn remove_entry(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        Ok(md) if md.is_dir() => remove_tree(path),
        Ok(_) => {
            std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))
        }
    }
}

fn make_writable(dir: &Path) {
    if let Ok(md) = std::fs::symlink_metadata(dir) {
        if md.is_dir() {
            let mode = md.permissions().mode() | 0o700;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode));
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

/// Bytes a file or directory tree occupies (file lengths; symlinks not followed); 0 when
/// absent.
pub fn tree_size(path: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Replace `dest` with `bytes` atomically and durably (temp file, fsync, rename, fsync dir).
pub fn replace_file(dest: &Path, bytes: &[u8]) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.ostree-build-tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("cannot write {}", dest.display()))
}
