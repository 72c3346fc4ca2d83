//! The project lock and the scratch space under `.ostree-build/`.
//!
//! Two runs on one project are serialised by an exclusive `flock`. Whatever an interrupted
//! run left behind (a rofiles-fuse mount, a half-populated root) is cleaned up by the next
//! run once it holds the lock. Publishing into an export repository is serialised by its own
//! lock inside that repository ([`ExportLock`]).

use crate::fsutil::remove_tree;
use anyhow::{Context, Result};
use std::fs::File;
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
    /// Take the lock, waiting (and saying so through `waiting`) if another run holds it,
    /// then clean what an interrupted run left in the scratch space.
    pub fn acquire(state_dir: &Path, waiting: impl FnOnce()) -> Result<ProjectLock> {
        let lock = Self::acquire_keeping_scratch(state_dir, waiting)?;
        lock.clean_scratch()?;
        Ok(lock)
    }

    /// [`ProjectLock::acquire`] for commands that only read or remove (`prune`, even
    /// `--dry-run`): the scratch space is left as it is.
    pub fn acquire_keeping_scratch(
        state_dir: &Path,
        waiting: impl FnOnce(),
    ) -> Result<ProjectLock> {
        let (file, path) = open_lock_file(state_dir)?;
        let mut waiting = Some(waiting);
        let mut say = || waiting.take().map_or((), |w| w());
        take(&file, &path, Some(&mut say))?;
        Ok(Self::held(file, state_dir))
    }

    /// Take the lock if no other run holds it (`None` if one does), without cleaning
    /// anything: for commands that must not wait behind a long build.
    pub fn try_acquire(state_dir: &Path) -> Result<Option<ProjectLock>> {
        let (file, path) = open_lock_file(state_dir)?;
        if !take(&file, &path, None)? {
            return Ok(None);
        }
        Ok(Some(Self::held(file, state_dir)))
    }

    fn held(file: File, state_dir: &Path) -> ProjectLock {
        HELD.store(true, Ordering::SeqCst);
        ProjectLock {
            _file: file,
            state_dir: state_dir.to_path_buf(),
        }
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

/// Take `file`'s exclusive lock (`flock`, through std): at once when it is free; else, when
/// `wait` is given, call it and block until the holder lets go. False when it is held and
/// there is no `wait`.
fn take(file: &File, path: &Path, wait: Option<&mut dyn FnMut()>) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => return Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
    let Some(wait) = wait else {
        return Ok(false);
    };
    wait();
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(true)
}

fn open_lock_file(state_dir: &Path) -> Result<(File, PathBuf)> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let path = state_dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    Ok((file, path))
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        HELD.store(false, Ordering::SeqCst);
    }
}

/// Lazily unmount every mount point at or below `dir` (left by a killed run).
pub fn unmount_below(dir: &Path) {
    for p in ostree_build_sdk::mounts::mount_points_below(dir) {
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

/// The publish lock of an export repository: one `flock`ed file inside it, so two
/// publishes (two processes, maybe two projects sharing the repository) never interleave
/// their refs, deltas and summary. The holder writes its pid and command line into the
/// file so the one turned away can name it.
pub struct ExportLock {
    _file: File,
}

/// The lock file's name inside the export repository.
pub const EXPORT_LOCK_NAME: &str = ".ostree-build-publish.lock";

impl ExportLock {
    /// Take the lock; if another process holds it, wait when `wait` is given (calling it
    /// first with who holds the lock), else fail at once naming the repository and holder.
    pub fn acquire(repo: &Path, wait: Option<&mut dyn FnMut(&str)>) -> Result<ExportLock> {
        let path = repo.join(EXPORT_LOCK_NAME);
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        let taken = match wait {
            Some(wait) => take(&file, &path, Some(&mut || wait(&holder(&path))))?,
            None => take(&file, &path, None)?,
        };
        if !taken {
            anyhow::bail!(
                "export repository {} is being published by {}; nothing was changed\n  help: wait for it to finish, then run this again",
                repo.display(),
                holder(&path)
            );
        }
        let me = format!(
            "pid {} ({})\n",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        // Overwritten in place, then cut: never empty while held.
        let _ = std::os::unix::fs::FileExt::write_all_at(&file, me.as_bytes(), 0);
        let _ = file.set_len(me.len() as u64);
        Ok(ExportLock { _file: file })
    }
}

/// Who holds the export lock at `path`, as it wrote itself there (it may have taken the
/// lock an instant before writing: look again briefly).
fn holder(path: &Path) -> String {
    for _ in 0..10 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if !text.trim().is_empty() {
            return text.trim().to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    "another process".to_string()
}
