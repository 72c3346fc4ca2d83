//! The project lock and the scratch space under `.ostree-build/`.
//!
//! Two runs on one project are serialised by an exclusive `flock`. Whatever an interrupted
//! run left behind (a rofiles-fuse mount, a half-populated root) is cleaned up by the next
//! run once it holds the lock.

use crate::fsutil::remove_tree;
use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this process holds a project lock (so its Ctrl-C handler may clean up).
static HELD: AtomicBool = AtomicBool::new(false);

/// True while this process holds the project lock: only then are the trigger mounts under
/// the state directory its own.
pub fn held_by_this_process() -> bool {
    HELD.load(Ordering::SeqCst)
}

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
        HELD.store(true, Ordering::SeqCst);
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
        unmount_below(&self.state_dir);
        remove_tree(&self.state_dir.join("work"))
    }
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        HELD.store(false, Ordering::SeqCst);
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
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(&dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        unmount(&p, true);
    }
}

/// Undo the octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash)
/// of /proc/self/mountinfo.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(
            super::unescape_mountinfo("/a\\040b\\011c\\134d"),
            "/a b\tc\\d"
        );
        assert_eq!(super::unescape_mountinfo("/plain\\"), "/plain\\");
    }
}
