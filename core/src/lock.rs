//! The project lock and the scratch space under `.ostree-build/`.
//!
//! Two runs on one project are serialised by an exclusive `flock`. Whatever an interrupted
//! run left behind (a rofiles-fuse mount, a half-populated root) is cleaned up by the next
//! run once it holds the lock.

use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub struct ProjectLock {
    _file: File,
    pub state_dir: PathBuf,
}

impl ProjectLock {
    /// Take the lock, waiting (and saying so through `waiting`) if another run holds it.
    pub fn acquire(state_dir: &Path, waiting: impl FnOnce()) -> Result<ProjectLock> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
        let path = state_dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            waiting();
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let lock = ProjectLock {
            _file: file,
            state_dir: state_dir.to_path_buf(),
        };
        lock.clean_scratch()?;
        Ok(lock)
    }

    /// A fresh, empty scratch directory for one job.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let dir = self.state_dir.join("work").join(name);
        remove_tree(&dir)?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    fn clean_scratch(&self) -> Result<()> {
        let work = self.state_dir.join("work");
        unmount_below(&work);
        remove_tree(&work)
    }
}

/// Remove a directory tree that may contain read-only directories.
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

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::symlink_metadata(dir) {
        if md.is_dir() {
            let _ = std::fs::set_permissions(
                dir,
                std::fs::Permissions::from_mode(md.mode_bits() | 0o700),
            );
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

trait ModeBits {
    fn mode_bits(&self) -> u32;
}
impl ModeBits for std::fs::Metadata {
    fn mode_bits(&self) -> u32 {
        std::os::unix::fs::PermissionsExt::mode(&self.permissions())
    }
}

/// Lazily unmount every mount point at or below `dir` (left by a killed run).
pub fn unmount_below(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else { return };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(&dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        unmount(&p, true);
    }
}

/// Unmount a FUSE mount point; `lazy` detaches it even when busy.
pub fn unmount(point: &Path, lazy: bool) -> bool {
    for tool in ["fusermount3", "fusermount"] {
        let mut cmd = std::process::Command::new(tool);
        cmd.arg(if lazy { "-uz" } else { "-u" }).arg(point);
        if let Ok(status) = cmd.stderr(std::process::Stdio::null()).status() {
            if status.success() {
                return true;
            }
        }
    }
    std::process::Command::new("umount")
        .arg("-l")
        .arg(point)
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
