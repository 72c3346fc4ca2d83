//! Triggers: commands run against a composed tree (the seed's `ldconfig -r`), behind a
//! rofiles-fuse mount so that no hardlinked object of the build repository can be changed
//! in place (the commit afterwards proves it was not: see `repo::worktree`).

use crate::lock::unmount;
use crate::manifest::Trigger;
use anyhow::{anyhow, bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

/// A rofiles-fuse mount of a checked-out tree; unmounted on drop.
struct RofilesMount {
    point: PathBuf,
    mounted: bool,
}

impl RofilesMount {
    fn new(tree: &Path, point: &Path) -> Result<RofilesMount> {
        std::fs::create_dir_all(point)?;
        let out = Command::new("rofiles-fuse")
            .arg(tree)
            .arg(point)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                anyhow!("cannot run rofiles-fuse: {e}\n  help: triggers need rofiles-fuse and FUSE to protect the object store: apt-get install ostree fuse3")
            })?;
        if !out.status.success() {
            bail!(
                "rofiles-fuse could not mount {}: {}\n  help: triggers need FUSE (/dev/fuse and fusermount3 from fuse3)",
                point.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(RofilesMount {
            point: point.to_path_buf(),
            mounted: true,
        })
    }

    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            self.mounted = false;
            if !unmount(&self.point, false) && !unmount(&self.point, true) {
                bail!("cannot unmount {}", self.point.display());
            }
        }
        Ok(())
    }
}

impl Drop for RofilesMount {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// What one trigger run printed and how long it took.
pub struct TriggerRun {
    pub name: String,
    pub seconds: f64,
}

/// The process group of the trigger running now (0: none), for [`kill_running`].
static RUNNING: AtomicI32 = AtomicI32::new(0);

/// Kill the trigger that is running, with everything it started (for Ctrl-C handling).
pub fn kill_running() {
    let pgid = RUNNING.load(Ordering::SeqCst);
    if pgid > 0 {
        // SAFETY: signalling a process group we created.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// Run `triggers` in order against `tree`, each seeing the tree through rofiles-fuse at
/// `mount_point` as `$OSTREE_BUILD_ROOT` (also its working directory). Each runs in its
/// own process group, killed when the trigger's shell exits, so nothing it left in the
/// background can change the tree while it is committed.
pub fn run_triggers(
    image: &str,
    tree: &Path,
    mount_point: &Path,
    triggers: &[Trigger],
) -> Result<Vec<TriggerRun>> {
    let mut mount = RofilesMount::new(tree, mount_point)?;
    let log = mount_point.with_extension("log");
    let mut runs = Vec::new();
    for t in triggers {
        let start = std::time::Instant::now();
        let output = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&t.run)
            .current_dir(mount_point)
            .env("OSTREE_BUILD_ROOT", mount_point)
            .env("OSTREE_BUILD_IMAGE", image)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .process_group(0)
            .spawn()
            .with_context(|| format!("image '{image}': cannot start trigger '{}'", t.name))?;
        RUNNING.store(child.id() as i32, Ordering::SeqCst);
        let status = child.wait();
        kill_running();
        RUNNING.store(0, Ordering::SeqCst);
        let status =
            status.with_context(|| format!("image '{image}': trigger '{}' was lost", t.name))?;
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let mut tail: Vec<&str> = text.lines().collect();
            tail.truncate(10);
            bail!(
                "image '{image}': trigger '{}' failed ({}){}\n  help: the command was: {}{}",
                t.name,
                status,
                tail.first().map(|l| format!(": {l}")).unwrap_or_default(),
                t.run,
                if tail.len() > 1 {
                    format!("\n  output:\n    {}", tail.join("\n    "))
                } else {
                    String::new()
                }
            );
        }
        runs.push(TriggerRun {
            name: t.name.clone(),
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    mount.unmount()?;
    Ok(runs)
}
