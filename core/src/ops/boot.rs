//! `ostree-build boot IMAGE`: the published image deployed into a throwaway sysroot (kept
//! between boots, so a new commit boots with the previous one as rollback), written to a
//! raw ext4 disk, and booted with QEMU from the boot loader entry's kernel, initramfs and
//! command line, the serial console on the terminal or, with `check`, in a log that is
//! watched for `multi-user.target` under a timeout.

use crate::lock::ProjectLock;
use crate::manifest::{escape_ref_part, Manifest};
use crate::repo::{sysroot, Repo};
use crate::report::{Event, Reporter};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How QEMU runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: slow (a Debian guest boots in 1-3 minutes) but works anywhere.
    Tcg,
    /// Hardware virtualisation through /dev/kvm.
    Kvm,
}

#[derive(Debug, Clone)]
pub struct BootOptions {
    pub image: String,
    /// Watch the console for multi-user.target instead of handing it to the terminal.
    pub check: bool,
    /// How long `check` waits for multi-user.target.
    pub timeout: Duration,
    /// How long `check` keeps reading the console after success (the guest may power off).
    pub settle: Duration,
    pub accel: Accel,
    pub memory_mb: u32,
    /// Start from an empty sysroot instead of deploying on top of the previous one.
    pub fresh: bool,
    /// With `check`: every console line as a log event, not only in the log file.
    pub show_console: bool,
}

/// What a checked boot saw.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    pub commit: String,
    /// Deployments in the sysroot, the booted (new default) one first.
    pub deployments: Vec<String>,
    pub console_log: PathBuf,
    pub seconds: f64,
}

/// Lines that end a boot as failed before the timeout.
const FATAL: &[&str] = &[
    "Kernel panic",
    "You are in emergency mode",
    "Entering emergency mode",
    "No working init found",
    "Attempted to kill init",
];

pub fn boot(
    manifest: &Manifest,
    options: &BootOptions,
    rep: &mut dyn Reporter,
) -> Result<BootOutcome> {
    let commit = published_commit(manifest, &options.image)?;
    let _lock = ProjectLock::acquire(&manifest.state_dir(), || {
        rep.event(Event::Waiting {
            message: "waiting for another ostree-build run on this project to finish".into(),
        })
    })?;
    let work = manifest
        .state_dir()
        .join("boot")
        .join(escape_ref_part(&options.image));
    if options.fresh {
        crate::fsutil::remove_tree(&work)?;
    }
    let log = |message: String| Event::Log {
        name: options.image.clone(),
        message,
    };
    let kargs = [
        "root=/dev/vda",
        "rw",
        "console=ttyS0,115200",
        "systemd.show_status=true",
    ];
    let kargs: Vec<String> = kargs.iter().map(|s| s.to_string()).collect();
    let entry = sysroot::deploy(
        &work.join("sysroot"),
        &manifest.os.name,
        &manifest.export_repo_path(),
        &commit,
        &kargs,
    )?;
    rep.event(log(format!(
        "deployed {} ({} deployment(s) in {})",
        &commit[..12.min(commit.len())],
        entry.deployments.len(),
        work.join("sysroot").display()
    )));
    check_bootable_kernel(&entry.kernel)?;
    let disk = work.join("disk.img");
    make_disk(&work.join("sysroot"), &disk)?;
    let mut qemu = qemu_command(options, &entry, &disk)?;
    let console_log = work.join("console.log");
    let start = Instant::now();
    if !options.check {
        rep.event(log("console on this terminal; Ctrl-A X quits QEMU".into()));
        let status = qemu.status().context("cannot run qemu-system-x86_64")?;
        if !status.success() {
            bail!("QEMU ended with {status}");
        }
    } else {
        rep.event(log(format!(
            "booting ({:?}, up to {}s); console in {}",
            options.accel,
            options.timeout.as_secs(),
            console_log.display()
        )));
        watch_console(&mut qemu, options, &console_log, rep)?;
    }
    Ok(BootOutcome {
        commit,
        deployments: entry.deployments,
        console_log,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// QEMU boots x86 Linux kernels (the boot protocol's `HdrS` at 0x202); anything else, such
/// as the stand-in kernel of the minimal template, is refused before a disk is made.
fn check_bootable_kernel(kernel: &Path) -> Result<()> {
    let mut head = [0u8; 0x206];
    let read = std::fs::File::open(kernel).and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut head)
    });
    if read.is_err() || &head[0x202..0x206] != b"HdrS" {
        bail!(
            "{}: not an x86 Linux kernel, so QEMU cannot boot it\n  help: a stand-in kernel (the minimal template's) deploys but does not boot; `ostree-build new NAME --template debian` makes an image that boots",
            kernel.display()
        );
    }
    Ok(())
}

/// The commit the export repository publishes for `image`.
fn published_commit(manifest: &Manifest, image: &str) -> Result<String> {
    let section = manifest.image(image)?;
    if !section.bootable {
        bail!(
            "image '{image}' is not bootable\n  help: set bootable = true in [image.{image}] (and give it a kernel and an initramfs with OSTree support), then build"
        );
    }
    let not_published = || {
        anyhow!("image '{image}' is not published yet\n  help: run `ostree-build build` first (and keep `publish = true` for the image)")
    };
    let export = Repo::open_existing(&manifest.export_repo_path())?.ok_or_else(not_published)?;
    export
        .resolve(&manifest.image_ref(image))?
        .ok_or_else(not_published)
}

/// A raw ext4 disk holding the sysroot (`mkfs.ext4 -d`: no root, no loop device), with
/// room to spare for the guest.
fn make_disk(sysroot: &Path, disk: &Path) -> Result<()> {
    let used = tree_bytes(sysroot)?;
    let size_mib = used / (1 << 20) * 3 / 2 + 512;
    let _ = std::fs::remove_file(disk);
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "ostree-root", "-d"])
        .arg(sysroot)
        .arg(disk)
        .arg(format!("{size_mib}M"))
        .output()
        .map_err(|e| anyhow!("cannot run mkfs.ext4: {e}\n  help: apt-get install e2fsprogs"))?;
    if !out.status.success() {
        bail!(
            "mkfs.ext4 could not write {}: {}",
            disk.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Bytes of the files under `dir`, each hardlinked inode once.
fn tree_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?
        {
            let entry = entry?;
            let md = entry.metadata()?;
            if md.is_dir() {
                todo.push(entry.path());
            } else if seen.insert((md.dev(), md.ino())) {
                total += md.len();
            }
        }
    }
    Ok(total)
}

fn qemu_command(options: &BootOptions, entry: &sysroot::BootEntry, disk: &Path) -> Result<Command> {
    let qemu = ostree_build_sdk::which("qemu-system-x86_64").ok_or_else(|| {
        anyhow!("qemu-system-x86_64 is not installed\n  help: apt-get install qemu-system-x86")
    })?;
    let mut cmd = Command::new(qemu);
    cmd.args([
        "-machine",
        "q35",
        "-smp",
        "2",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
    ])
    .args(["-m", &options.memory_mb.to_string()])
    .args([
        "-accel",
        if options.accel == Accel::Kvm {
            "kvm"
        } else {
            "tcg"
        },
    ])
    .arg("-kernel")
    .arg(&entry.kernel)
    .args(["-append", &entry.options])
    .arg("-drive")
    .arg(format!("file={},format=raw,if=virtio", disk.display()));
    if let Some(initrd) = &entry.initrd {
        cmd.arg("-initrd").arg(initrd);
    }
    Ok(cmd)
}

/// Run QEMU with its console going to `log`, until multi-user.target (then `settle` more),
/// a fatal line, the guest's end or the timeout.
fn watch_console(
    qemu: &mut Command,
    options: &BootOptions,
    log: &Path,
    rep: &mut dyn Reporter,
) -> Result<()> {
    let mut child = qemu
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run qemu-system-x86_64")?;
    let mut file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let rx = console_lines(&mut child);
    let deadline = Instant::now() + options.timeout;
    let mut reached: Option<Instant> = None;
    let mut tail: std::collections::VecDeque<String> = Default::default();
    let outcome = loop {
        let until = reached.map_or(deadline, |at| at + options.settle);
        let line = match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break reached.is_some(),
            Err(mpsc::RecvTimeoutError::Timeout) => break reached.is_some(),
        };
        let _ = writeln!(file, "{line}");
        if options.show_console {
            rep.event(Event::Log {
                name: options.image.clone(),
                message: line.clone(),
            });
        }
        if tail.len() == 15 {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        if reached.is_none() && reaches_multi_user(&line) {
            reached = Some(Instant::now());
        }
        if reached.is_none() && FATAL.iter().any(|f| line.contains(f)) {
            break false;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    if !outcome {
        bail!(
            "image '{}' did not reach multi-user.target (within {}s, or the boot failed); the whole console is in {}\n  last console lines:\n    {}",
            options.image,
            options.timeout.as_secs(),
            log.display(),
            tail.iter().cloned().collect::<Vec<_>>().join("\n    ")
        );
    }
    Ok(())
}

/// systemd's status line for the target (`Reached target multi-user.target - Multi-User
/// System.`, or the older `Reached target Multi-User System.`).
fn reaches_multi_user(line: &str) -> bool {
    line.contains("Reached target")
        && (line.contains("multi-user.target") || line.contains("Multi-User System"))
}

/// QEMU's output (the serial console on stdout, its own messages on stderr), line by line.
fn console_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel::<String>();
    let streams: [Option<Box<dyn std::io::Read + Send>>; 2] = [
        child.stdout.take().map(|s| Box::new(s) as _),
        child.stderr.take().map(|s| Box::new(s) as _),
    ];
    for stream in streams.into_iter().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n').map_while(|l| l.ok()) {
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}
