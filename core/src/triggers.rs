//! Triggers: commands run against a composed tree (the seed's `ldconfig -r`), in a
//! bubblewrap sandbox (no network; nothing of the host writable) and behind a rofiles-fuse
//! `--copyup` mount: a file opened for writing is copied out of its hardlink first, so no
//! object of the build repository can be changed in place (the commit afterwards proves it
//! was not: see `repo::worktree`). Built-in named triggers
//! (`ldconfig`, `depmod`, `systemd-presets`) come with the paths they depend on.

use crate::lock::unmount;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

/// A trigger as a manifest declares it (`[image.NAME] triggers = [...]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Trigger {
    /// A short name shown in output; without `run`, the name of a built-in trigger
    /// (`ldconfig`, `depmod`, `systemd-presets`).
    pub name: String,
    /// A shell command run with `$OSTREE_BUILD_ROOT` set to the composed tree.
    #[serde(default)]
    pub run: Option<String>,
    /// Paths in the image the trigger depends on: it re-runs only when one of them changed
    /// and otherwise its previous output is reused. Unset: it runs at every compose.
    #[serde(default)]
    pub inputs: Option<Vec<String>>,
    /// Where the command runs: `host` (the host's tools, read-only, with the image at
    /// `$OSTREE_BUILD_ROOT`) or `image` (the image is `/`). Both without network.
    #[serde(default)]
    pub sandbox: SandboxKind,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxKind {
    #[default]
    Host,
    Image,
}

/// A rofiles-fuse mount of a checked-out tree; unmounted on drop.
struct RofilesMount {
    point: PathBuf,
    mounted: bool,
}

impl RofilesMount {
    fn new(tree: &Path, point: &Path) -> Result<RofilesMount> {
        std::fs::create_dir_all(point)?;
        // --copyup: a file opened for writing is first copied out of its hardlink (what
        // rpm-ostree does for scripts), so triggers may replace or edit files, while the
        // build repository's objects behind the hardlinks never change.
        let out = Command::new("rofiles-fuse")
            .arg("--copyup")
            .arg(tree)
            .arg(point)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                anyhow!("cannot run rofiles-fuse: {e}\n  help: triggers need rofiles-fuse and FUSE to protect the object store: apt-get install ostree fuse3")
            })?;
        // rofiles-fuse exits 0 even when it could not open /dev/fuse: check the mount too.
        let mounted = ostree_build_sdk::mounts::mount_points_below(point)
            .iter()
            .any(|p| point.canonicalize().is_ok_and(|c| *p == c));
        if !out.status.success() || !mounted {
            bail!(
                "rofiles-fuse could not mount {}: {}\n  help: triggers need FUSE (/dev/fuse usable by this user, and fusermount3 from fuse3)",
                point.display(),
                match String::from_utf8_lossy(&out.stderr).trim() {
                    "" => "no mount appeared".to_string(),
                    why => why.to_string(),
                }
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

/// The built-in triggers a manifest can name without `run`.
pub const BUILTIN_NAMES: &[&str] = &["ldconfig", "depmod", "systemd-presets", "initramfs"];

/// A built-in trigger: its command, the paths it depends on and where it runs (host tools
/// with the image at `$OSTREE_BUILD_ROOT`, or the image's own tools with the image as `/`).
pub struct Builtin {
    pub run: &'static str,
    pub inputs: &'static [&'static str],
    pub sandbox: SandboxKind,
}

/// The `initramfs` trigger: dracut from the image, with OSTree's module, for each kernel,
/// written where the bootable layout takes it from (`/boot/initrd.img-<kver>` beside a
/// Debian kernel, else `/usr/lib/modules/<kver>/initramfs.img`, dropping stale ones in /boot).
const INITRAMFS: &str = r#"set -e
command -v dracut >/dev/null 2>&1 || { echo "initramfs: the image has no dracut: add dracut-core (Debian) or dracut (Fedora) to its packages" >&2; exit 1; }
ls -d /usr/lib/dracut/modules.d/*ostree >/dev/null 2>&1 || { echo "initramfs: the image's dracut has no ostree module: add ostree-boot (Debian) or ostree (Fedora) to its packages" >&2; exit 1; }
found=
for d in /usr/lib/modules/*/; do
  [ -d "$d" ] || continue
  k=$(basename "$d")
  if [ -e "/boot/vmlinuz-$k" ]; then out="/boot/initrd.img-$k"
  elif [ -e "$d/vmlinuz" ]; then out="${d}initramfs.img"; rm -f "/boot/initramfs-$k.img" "/boot/initrd.img-$k" "/boot/initrd-$k"
  else continue; fi
  found=1
  echo "initramfs: dracut for $k -> $out"
  dracut --quiet --no-hostonly --force --add ostree --tmpdir /tmp --kver "$k" "$out"
done
[ -n "$found" ] || { echo "initramfs: no kernel in the image (/boot/vmlinuz-<kver> or /usr/lib/modules/<kver>/vmlinuz)" >&2; exit 1; }
"#;

pub fn builtin(name: &str) -> Option<Builtin> {
    match name {
        "initramfs" => Some(Builtin {
            run: INITRAMFS,
            // What goes into a generic initramfs that changes with a package: the kernel and
            // its modules, dracut and its configuration, OSTree's boot pieces, systemd and udev.
            // Libraries they link are not listed: a library-only update reuses the old one.
            inputs: &[
                "/boot",
                "/usr/lib/modules",
                "/usr/lib/dracut",
                "/etc/dracut.conf",
                "/etc/dracut.conf.d",
                "/usr/lib/ostree",
                "/usr/lib/systemd/system",
                "/usr/lib/systemd/systemd",
                "/usr/lib/udev",
            ],
            sandbox: SandboxKind::Image,
        }),
        "ldconfig" => Some(Builtin {
            run: "ldconfig -r \"$OSTREE_BUILD_ROOT\"",
            inputs: &[
                "/usr/lib",
                "/usr/lib64",
                "/usr/local/lib",
                "/lib",
                "/lib64",
                "/etc/ld.so.conf",
                "/etc/ld.so.conf.d",
            ],
            sandbox: SandboxKind::Host,
        }),
        "depmod" => Some(Builtin {
            // `-b` takes the directory holding lib/modules: the root when /lib/modules
            // reaches the modules (merged /usr or a real /lib), else /usr.
            run: "for d in \"$OSTREE_BUILD_ROOT\"/usr/lib/modules/*/; do [ -d \"$d\" ] || continue; k=$(basename \"$d\"); if [ -d \"$OSTREE_BUILD_ROOT/lib/modules/$k\" ]; then depmod -b \"$OSTREE_BUILD_ROOT\" \"$k\"; else depmod -b \"$OSTREE_BUILD_ROOT/usr\" \"$k\"; fi || exit 1; done",
            inputs: &["/usr/lib/modules", "/lib/modules"],
            sandbox: SandboxKind::Host,
        }),
        "systemd-presets" => Some(Builtin {
            run: "systemctl --root=\"$OSTREE_BUILD_ROOT\" preset-all",
            inputs: &[
                "/usr/lib/systemd/system",
                "/usr/lib/systemd/system-preset",
                "/usr/lib/systemd/user",
                "/usr/lib/systemd/user-preset",
                "/etc/systemd/system",
                "/etc/systemd/system-preset",
                "/etc/systemd/user",
            ],
            sandbox: SandboxKind::Host,
        }),
        _ => None,
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

/// A trigger with its built-in definition filled in.
pub struct Resolved {
    pub name: String,
    pub run: String,
    /// Paths it depends on; `None`: it runs at every compose.
    pub inputs: Option<Vec<String>>,
    pub sandbox: SandboxKind,
}

impl Resolved {
    pub fn of(t: &Trigger) -> Resolved {
        // A built-in's inputs and sandbox hold only for its own command.
        let own = builtin(&t.name).filter(|_| t.run.is_none());
        Resolved {
            name: t.name.clone(),
            run: t
                .run
                .clone()
                .or_else(|| own.as_ref().map(|b| b.run.to_string()))
                .unwrap_or_default(),
            inputs: t.inputs.clone().or_else(|| {
                own.as_ref()
                    .map(|b| b.inputs.iter().map(|s| s.to_string()).collect())
            }),
            sandbox: own.map_or(t.sandbox, |b| b.sandbox),
        }
    }
}

/// The bubblewrap command line for one trigger: no network, no IPC or PID sharing, nothing
/// of the host writable but the image (through the rofiles-fuse mount at `mount_point`).
fn sandboxed(t: &Resolved, image: &str, mount_point: &Path, project_dir: &Path) -> Command {
    let mut cmd = Command::new("bwrap");
    // As root, bwrap would leave the trigger every capability, enough to remount the
    // read-only host writable: keep only what file work in the image needs (owners, modes,
    // file capabilities, ldconfig's chroot). Not CAP_DAC_READ_SEARCH (open_by_handle_at
    // escapes), CAP_SYS_ADMIN (mounts) or CAP_MKNOD.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.args(["--cap-drop", "ALL"]);
        for cap in [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_FSETID",
            "CAP_SETFCAP",
            "CAP_SETGID",
            "CAP_SETUID",
            "CAP_SYS_CHROOT",
        ] {
            cmd.args(["--cap-add", cap]);
        }
    }
    cmd.args([
        // No controlling terminal: a trigger cannot push keystrokes into the user's shell.
        "--new-session",
        "--die-with-parent",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-uts",
        "--hostname",
        "ostree-build",
    ]);
    let root_in_sandbox = match t.sandbox {
        SandboxKind::Host => {
            bind_host_tools(&mut cmd);
            cmd.args(["--dev", "/dev", "--proc", "/proc"])
                .args(["--tmpfs", "/tmp", "--tmpfs", "/run"]);
            hide_host_secrets(&mut cmd);
            // /tmp is private; the project (often under /tmp in tests) stays readable.
            cmd.arg("--ro-bind").arg(project_dir).arg(project_dir);
            cmd.arg("--bind").arg(mount_point).arg(mount_point);
            mount_point.to_path_buf()
        }
        SandboxKind::Image => {
            cmd.arg("--bind").arg(mount_point).arg("/");
            cmd.args([
                "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
            ]);
            PathBuf::from("/")
        }
    };
    // Kernel settings are host-wide: readable, never writable.
    cmd.args(["--ro-bind", "/proc/sys", "/proc/sys"]);
    cmd.arg("--chdir")
        .arg(&root_in_sandbox)
        .arg("--setenv")
        .arg("OSTREE_BUILD_ROOT")
        .arg(&root_in_sandbox)
        .args(["--setenv", "OSTREE_BUILD_IMAGE", image])
        .args(["--setenv", "TMPDIR", "/tmp"])
        .args(["--", "/bin/sh", "-c", &t.run]);
    cmd
}

/// What host tools need of the host, read-only: programs, libraries and configuration.
/// Not /home, /root, /var, /srv, /mnt or /media: no user's files, no service's data or
/// sockets.
const HOST_TOOL_DIRS: &[&str] = &[
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
];

fn bind_host_tools(cmd: &mut Command) {
    for dir in HOST_TOOL_DIRS {
        let Ok(md) = std::fs::symlink_metadata(dir) else {
            continue;
        };
        if md.is_symlink() {
            // Merged /usr: /bin -> usr/bin stays a link.
            if let Ok(target) = std::fs::read_link(dir) {
                cmd.arg("--symlink").arg(target).arg(dir);
            }
        } else if md.is_dir() {
            cmd.args(["--ro-bind", dir, dir]);
        }
    }
}

/// Secrets in the host's /etc are replaced by /dev/null: password hashes, SSH host keys
/// (not their .pub halves), TLS private keys.
fn hide_host_secrets(cmd: &mut Command) {
    let mut secrets: Vec<PathBuf> = [
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/shadow-",
        "/etc/gshadow-",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    let private = |dir: &str, is_secret: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| is_secret(&p.to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default()
    };
    secrets.extend(private("/etc/ssh", &|p| {
        p.contains("_key") && !p.ends_with(".pub")
    }));
    secrets.extend(private("/etc/ssl/private", &|_| true));
    for secret in secrets.iter().filter(|p| p.is_file() && !p.is_symlink()) {
        cmd.arg("--ro-bind").arg("/dev/null").arg(secret);
    }
}

/// At most this many processes more than the trigger's user already runs: a fork bomb in a
/// trigger stops there instead of taking the build machine with it.
const PROCESS_ALLOWANCE: u64 = 4096;

/// Put [`process_limit`] on what `command` starts.
fn limit_processes(command: &mut Command) {
    let nproc = process_limit();
    // SAFETY: setrlimit is async-signal-safe and touches nothing but the child's limits.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: nproc,
                rlim_max: nproc,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `RLIMIT_NPROC` for a trigger: what the user runs now plus [`PROCESS_ALLOWANCE`] (the
/// limit counts every process of the real user, inside the sandbox or not).
fn process_limit() -> u64 {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let running = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
                .count() as u64
        })
        .unwrap_or(0);
    running + PROCESS_ALLOWANCE
}

/// For `sandbox = "image"`: the mount points bubblewrap needs in the image, created where
/// the image lacks them (before the snapshot, so they are not trigger output). Returns
/// those it created, for [`remove_mount_points`] after the run.
pub fn create_mount_points(t: &Resolved, tree: &Path) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    if t.sandbox != SandboxKind::Image {
        return Ok(created);
    }
    for dir in ["dev", "proc", "tmp", "run"] {
        let path = tree.join(dir);
        if std::fs::symlink_metadata(&path).is_err() {
            std::fs::create_dir(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            created.push(path);
        }
    }
    Ok(created)
}

pub fn remove_mount_points(created: &[PathBuf]) -> Result<()> {
    for path in created {
        std::fs::remove_dir(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
}

/// Run one trigger against `tree`, seen through rofiles-fuse at `mount_point` as
/// `$OSTREE_BUILD_ROOT`, inside a bubblewrap sandbox. It runs in its own process group,
/// killed when it exits, so nothing it left in the background can change the tree while
/// it is committed. `tick` is called every second while it runs.
pub fn run_trigger(
    image: &str,
    tree: &Path,
    mount_point: &Path,
    project_dir: &Path,
    t: &Resolved,
    tick: &mut dyn FnMut(),
) -> Result<TriggerRun> {
    if t.sandbox == SandboxKind::Image && std::fs::symlink_metadata(tree.join("bin/sh")).is_err() {
        bail!(
            "image '{image}': trigger '{}' has sandbox = \"image\" but the image has no /bin/sh\n  help: use sandbox = \"host\" to run the host's tools against $OSTREE_BUILD_ROOT",
            t.name
        );
    }
    let mut mount = RofilesMount::new(tree, mount_point)?;
    let log = mount_point.with_extension("log");
    let start = std::time::Instant::now();
    let output =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = sandboxed(t, image, mount_point, project_dir);
    limit_processes(&mut command);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            anyhow!(
                "image '{image}': cannot start trigger '{}' in bubblewrap: {e}\n  help: triggers run sandboxed by bwrap: apt-get install bubblewrap",
                t.name
            )
        })?;
    RUNNING.store(child.id() as i32, Ordering::SeqCst);
    let status = crate::ticker::ticking(crate::ticker::TICK, || child.wait(), tick);
    kill_running();
    RUNNING.store(0, Ordering::SeqCst);
    let status =
        status.with_context(|| format!("image '{image}': trigger '{}' was lost", t.name))?;
    mount.unmount()?;
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(10)..];
        bail!(
            "image '{image}': trigger '{}' failed ({}){}\n  help: the command was: {}; triggers run sandboxed: no network, nothing of the host writable, the image writable (files are copied before they are changed), /tmp private{}",
            t.name,
            status,
            tail.last().map(|l| format!(": {l}")).unwrap_or_default(),
            t.run,
            if tail.len() > 1 {
                format!(
                    "\n  output (last {} lines; all of it in {}):\n    {}",
                    tail.len(),
                    log.display(),
                    tail.join("\n    ")
                )
            } else {
                String::new()
            }
        );
    }
    Ok(TriggerRun {
        name: t.name.clone(),
        seconds: start.elapsed().as_secs_f64(),
    })
}
