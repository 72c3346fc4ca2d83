//! The protocol client for `ostree-build-<name>` executables: a reserved first argument
//! (`ostree-build-plugin-{info,plan,run}`), the request as JSON on stdin, JSON lines back on
//! stdout (`hello` first, then events, then one answer), stderr passed through, and a
//! timeout on every call. Each failure is one line naming the backend.

use super::external::this_exe;
use super::found::{check_info, Candidate, Found, Source};
use anyhow::{anyhow, bail, Context, Result};
use ostree_build_sdk::exec::{Message, INFO_ARG, PLAN_ARG, RUN_ARG};
use ostree_build_sdk::{
    Backend, BackendInfo, EventSink, NoEvents, Output, Plan, Request, PROTOCOL_VERSION,
};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// An `ostree-build-<name>` executable speaking the JSON protocol.
pub struct ExecBackend {
    info: BackendInfo,
    path: PathBuf,
}

impl ExecBackend {
    /// Ask the executable who it is. `Ok(None)`: it does not answer in JSON at all (no
    /// output, or text that is not a JSON object), so it is a plain external command. A
    /// probe that starts a JSON answer must finish it correctly and in time.
    pub(super) fn probe(c: &Candidate) -> Result<Option<Found>> {
        let who = format!("backend '{}' ({})", c.name, c.path.display());
        let mut child = command(&c.path, INFO_ARG)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("{who} exists but could not be executed (missing interpreter?)")
            })?;
        let limit = probe_timeout();
        let lines = read_lines(&mut child, limit);
        kill_group(&child);
        let status = child.wait()?;
        let lines = lines.map_err(|e| {
            anyhow!("{who} did not answer `{INFO_ARG}`: {e}\n  help: the probe must print its info at once; set OSTREE_BUILD_BACKEND_TIMEOUT (seconds) if it needs longer")
        })?;
        let Some(first) = lines.iter().map(|l| l.trim()).find(|l| !l.is_empty()) else {
            return Ok(None);
        };
        if !first.starts_with('{') {
            return Ok(None);
        }
        let info: BackendInfo = serde_json::from_str(first).map_err(|e| {
            anyhow!("{who} answered `{INFO_ARG}` with invalid info: {e}: {}\n  help: print one JSON object with name, version, protocols (see docs/PLUGINS.md), or build the backend with ostree-build-sdk", truncate(first))
        })?;
        if !status.success() {
            bail!("{who} answered `{INFO_ARG}` but exited with {status}\n  help: the probe exits 0 after printing its info");
        }
        check_info(c, &info)?;
        let backend = Arc::new(ExecBackend {
            info: info.clone(),
            path: c.path.clone(),
        });
        Ok(Some(Found {
            backend,
            info,
            source: Source::Executable(c.path.clone()),
        }))
    }

    /// Run one operation: the request on stdin, JSON lines back until stdout closes.
    fn call(&self, arg: &str, request: &Request, events: &mut dyn EventSink) -> Result<Message> {
        let name = &self.info.name;
        let mut child = command(&self.path, arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot run backend '{name}' ({})", self.path.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A backend that exits without reading its request shows up below.
            let _ = stdin.write_all(serde_json::to_string(request)?.as_bytes());
        }
        let limit = timeout(arg == RUN_ARG);
        let mut conversation = Conversation {
            name,
            hello: false,
            answer: None,
        };
        let read = conversation.read(&mut child, limit, events);
        // Whatever the backend started dies with it: on a timeout, an error, or its exit.
        kill_group(&child);
        let status = child.wait()?;
        read?;
        conversation.answer(status)
    }
}

/// What one call has heard so far.
struct Conversation<'a> {
    name: &'a str,
    hello: bool,
    answer: Option<Message>,
}

impl Conversation<'_> {
    /// Read messages until stdout closes, passing events on. Once the backend itself has
    /// exited, what it left running is killed, so a child holding stdout open cannot turn
    /// a finished run into a timeout.
    fn read(
        &mut self,
        child: &mut Child,
        limit: Duration,
        events: &mut dyn EventSink,
    ) -> Result<()> {
        let name = self.name;
        let lines = line_channel(child);
        let deadline = Instant::now() + limit;
        loop {
            match next_line(&lines, child, deadline) {
                Next::Line(Ok(line)) if line.trim().is_empty() => {}
                Next::Line(Ok(line)) => self.accept(&line, events)?,
                Next::Line(Err(e)) => bail!("cannot read backend '{name}': {e}"),
                Next::End => return Ok(()),
                Next::TimedOut => bail!(
                    "backend '{name}' did not finish within {}s and was stopped\n  help: set OSTREE_BUILD_BACKEND_TIMEOUT (seconds) if it needs longer",
                    limit.as_secs()
                ),
            }
        }
    }

    /// One line: the hello, an event, or the answer.
    fn accept(&mut self, line: &str, events: &mut dyn EventSink) -> Result<()> {
        let name = self.name;
        let message: Message = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "backend '{name}' sent malformed JSON: {e}: {}\n  help: a backend writes only JSON lines on stdout; human output goes to stderr",
                truncate(line)
            )
        })?;
        match message {
            Message::Hello { protocol } if !self.hello && protocol != PROTOCOL_VERSION => bail!(
                "backend '{name}' answered with protocol {protocol}; this ostree-build speaks {PROTOCOL_VERSION}: rebuild the backend against a matching ostree-build-sdk"
            ),
            Message::Hello { .. } if !self.hello => self.hello = true,
            _ if !self.hello => bail!(
                "backend '{name}' did not send a hello message (got: {}); it may be too old or not an ostree-build backend",
                truncate(line)
            ),
            m => match (m.event(), &self.answer) {
                (Some(event), _) => events.event(event),
                (None, Some(_)) => bail!(
                    "backend '{name}' answered twice (the second: {})\n  help: a backend sends exactly one plan, output or error",
                    truncate(line)
                ),
                (None, None) => self.answer = Some(m),
            },
        }
        Ok(())
    }

    /// The answer, once the backend has exited with `status`. An `error` answer stands
    /// whatever the exit status; any other needs a successful exit.
    fn answer(self, status: ExitStatus) -> Result<Message> {
        let name = self.name;
        match self.answer {
            Some(m @ Message::Error { .. }) => Ok(m),
            Some(m) if status.success() => Ok(m),
            _ if !self.hello => bail!(
                "backend '{name}' exited ({status}) without a hello message; it may be too old or not an ostree-build backend"
            ),
            _ => bail!("backend '{name}' exited ({status}) without an answer"),
        }
    }
}

impl Backend for ExecBackend {
    fn info(&self) -> BackendInfo {
        self.info.clone()
    }

    fn plan(&self, request: &Request) -> Result<Plan> {
        self.call(PLAN_ARG, request, &mut NoEvents)?
            .into_plan(&self.info.name)
    }

    fn run(&self, request: &Request, events: &mut dyn EventSink) -> Result<Output> {
        self.call(RUN_ARG, request, events)?
            .into_output(&self.info.name)
    }
}

/// The backend at `path` with its reserved argument and the environment every call gets.
fn command(path: &std::path::Path, arg: &str) -> Command {
    let mut cmd = Command::new(path);
    // Its own process group, so everything it starts can be killed with it.
    cmd.process_group(0);
    cmd.arg(arg).env("OSTREE_BUILD", this_exe()).env(
        "OSTREE_BUILD_PLUGIN_PROTOCOLS",
        PROTOCOL_VERSION.to_string(),
    );
    cmd
}

/// How long a backend may take: the probe and `plan` are quick questions; `run` installs
/// packages. `OSTREE_BUILD_BACKEND_TIMEOUT` (seconds) overrides both.
fn timeout(run: bool) -> Duration {
    let secs = std::env::var("OSTREE_BUILD_BACKEND_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    Duration::from_secs(secs.unwrap_or(if run { 3600 } else { 60 }))
}

/// The probe is a quick question: 10 s, or less when `OSTREE_BUILD_BACKEND_TIMEOUT` says so.
fn probe_timeout() -> Duration {
    Duration::from_secs(10).min(timeout(false))
}

/// Kill the process group `child` leads (it and whatever it started).
fn kill_group(child: &Child) {
    if let Ok(pgid) = i32::try_from(child.id()) {
        // SAFETY: signalling the process group this process created for the backend.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

fn truncate(line: &str) -> String {
    let mut s: String = line.chars().take(120).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

/// The child's stdout, line by line, on a channel (so reads can time out).
fn line_channel(child: &mut Child) -> mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// What came next on a backend's stdout.
enum Next {
    Line(std::io::Result<String>),
    /// Stdout closed.
    End,
    TimedOut,
}

/// The next line of `child`'s stdout before `deadline`. Once the child itself has exited,
/// what it left running is killed, so a grandchild holding stdout open cannot keep a
/// finished backend waiting for the timeout.
fn next_line(
    lines: &mpsc::Receiver<std::io::Result<String>>,
    child: &mut Child,
    deadline: Instant,
) -> Next {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => return Next::Line(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Next::End,
            Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => return Next::TimedOut,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    kill_group(child);
                }
            }
        }
    }
}

/// Read all stdout lines of `child` within `limit`; on timeout kill its group.
fn read_lines(child: &mut Child, limit: Duration) -> Result<Vec<String>> {
    let lines = line_channel(child);
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    loop {
        match next_line(&lines, child, deadline) {
            Next::Line(Ok(line)) => out.push(line),
            Next::Line(Err(_)) | Next::End => return Ok(out),
            Next::TimedOut => {
                kill_group(child);
                bail!("no answer within {}s", limit.as_secs())
            }
        }
    }
}
