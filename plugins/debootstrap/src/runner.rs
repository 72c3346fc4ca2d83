//! Running the bootstrap tool: its output streamed line by line as log events, a tail kept
//! for error messages, a hard time limit (the whole process group is killed past it), and
//! clean-up of mounts a killed or failed tool may leave inside the target.

use anyhow::{Context, Result};
use ostree_build_sdk::EventSink;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How many of the last output lines are kept for error messages.
const TAIL: usize = 40;

/// What a finished (or killed) run left behind.
pub struct Ran {
    /// `None` when the tool was killed at the time limit.
    pub status: Option<ExitStatus>,
    pub tail: VecDeque<String>,
    /// Lines that say something is wrong (`E:`, `W: Failure`, apt's "Unable to locate"),
    /// kept in full whatever the tail holds.
    pub errors: Vec<String>,
    /// Packages fetched, unpacked, configured so far (sent as progress).
    pub packages: crate::progress::Packages,
}

/// Run `cmd` in its own process group; lines that start with `I:`/`W:`/`E:` go to `events`.
pub fn run(mut cmd: Command, events: &mut dyn EventSink, limit: Duration) -> Result<Ran> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(err, tx.clone()));
    }
    drop(tx);
    let pgid = child.id() as libc::pid_t;
    let start = Instant::now();
    let mut ran = Ran {
        status: None,
        tail: VecDeque::new(),
        errors: Vec::new(),
        packages: Default::default(),
    };
    let mut exited_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => take_line(&mut ran, events, line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if exited_at.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                ran.status = Some(status);
                exited_at = Some(Instant::now());
            }
        }
        // A leftover grandchild may hold the pipes open: give it a moment, then stop
        // reading and kill the group.
        if exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            break;
        }
        if exited_at.is_none() && start.elapsed() > limit {
            events.warn(&format!(
                "{program} still running after {}s: killing it",
                limit.as_secs()
            ));
            break;
        }
    }
    // Whatever is left of the group (everything, when the limit was hit).
    // SAFETY: kill(2) with a negative pid signals the process group we created.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    if ran.status.is_none() {
        let status = child.wait().context("cannot wait for the bootstrap tool")?;
        if start.elapsed() <= limit {
            ran.status = Some(status);
        }
    }
    while let Ok(line) = rx.try_recv() {
        take_line(&mut ran, events, line);
    }
    drop(rx);
    drop(readers);
    Ok(ran)
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    tx: mpsc::Sender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    // Progress bars redraw with carriage returns: keep the last state.
                    let line = line.trim_end().rsplit('\r').next().unwrap_or("").trim_end();
                    if !line.is_empty() && tx.send(line.to_string()).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

fn take_line(ran: &mut Ran, events: &mut dyn EventSink, line: String) {
    if line.starts_with("E: ") || line.starts_with("W: ") {
        events.warn(&line);
    } else if line.starts_with("I: ") {
        events.info(&line);
    }
    if let Some((done, total, unit)) = ran.packages.see(&line) {
        events.progress(done, total, unit);
    }
    if line.starts_with("E: ")
        || line.starts_with("W: Failure")
        || line.contains("Unable to locate package")
        || line.contains("has no installation candidate")
    {
        ran.errors.push(line.clone());
    }
    if ran.tail.len() == TAIL {
        ran.tail.pop_front();
    }
    ran.tail.push_back(line);
}

/// Detach every mount at or below `root` (deepest first): a tool killed mid-way may leave
/// /proc, /sys or /dev mounted in the target, which must not be deleted through.
pub fn unmount_below(root: &Path) -> Vec<String> {
    let mut done = Vec::new();
    for p in ostree_build_sdk::mounts::mount_points_below(root) {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        // SAFETY: a valid NUL-terminated path; MNT_DETACH only detaches the mount.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
            done.push(p.display().to_string());
        }
    }
    done
}
