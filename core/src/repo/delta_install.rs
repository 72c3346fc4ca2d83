//! Putting a delta in place atomically: its files are written (and fsynced) into a
//! directory below the repository's `tmp/`, which is then renamed to the delta's place, or
//! swapped in one step with the delta already there (`renameat2(RENAME_EXCHANGE)`), so a
//! client or a killed writer never sees half a delta. A directory left by a killed writer
//! is removed by libostree once it is older than `tmp-expiry-secs` (a day).

use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

pub(super) fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A directory below the repository's `tmp/`, removed unless installed.
pub(super) struct TempDir(pub PathBuf);

impl TempDir {
    pub(super) fn new(repo: &Path) -> Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = repo
            .join("tmp")
            .join(format!("ostree-build-delta-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    /// Move the delta to `target`: a rename, or an atomic exchange with the delta there
    /// (whose files then go with this directory).
    pub(super) fn install(self, target: &Path) -> Result<()> {
        let parent = target.parent().ok_or_else(|| anyhow!("bad delta path"))?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot write {}", self.0.display()))?;
        let moved = match target.exists() {
            true => exchange(&self.0, target),
            false => std::fs::rename(&self.0, target),
        };
        moved.with_context(|| format!("cannot move the delta to {}", target.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Swap two directories in one step (`renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::from);
    let (a, b): (std::ffi::CString, std::ffi::CString) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths for the duration of the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}
