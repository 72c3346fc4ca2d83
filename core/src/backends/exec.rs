//! The protocol client for `ostree-build-<name>` executables: a reserved first argument
//! (`ostree-build-plugin-{info,plan,run}`), the request as JSON on stdin, JSON lines back on
//! stdout (`hello` first, then events, then one answer), stderr passed through, and a
//! timeout on every call. Each failure is one line naming the backend.

use super::external::this_exe;
use super::found::{check_info, Candidate, Found, Source};
use anyhow::{bail, Context, Result};
use ostree_build_sdk::exec::{Message, INFO_ARG, PLAN_ARG, RUN_ARG};
use ostree_build_sdk::{
    Backend, BackendInfo, EventSink, NoEvents, Output, Plan, Request, PROTOCOL_VERSION,
};
use std::io::{BufRead, BufReader, Write};
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
    /// Ask the executable who it is. `Ok(None)`: it does not answer like a backend.
    pub(super) fn probe(c: &Candidate) -> Result<Option<Found>> {
        let mut child = command(&c.path, INFO_ARG)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "backend '{}' at {} exists but could not be executed (missing interpreter?)",
                    c.name,
                    c.path.display()
                )
            })?;
        let lines = read_lines(&mut child, Duration::from_secs(10).min(timeout(false)));
        let status = child.wait()?;
        let info = lines
            .ok()
            .filter(|_| status.success())
            .and_then(|lines| serde_json::from_str::<BackendInfo>(lines.first()?).ok());
        let Some(info) = info else {
            return Ok(None);
        };
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
        if let Err(e) = conversation.read(&mut child, limit, events) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        let status = child.wait()?;
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
    /// Read messages until the backend closes stdout, passing events on.
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
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(Ok(line)) => line,
                Ok(Err(e)) => bail!("cannot read backend '{name}': {e}"),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "backend '{name}' did not finish within {}s and was stopped\n  help: set OSTREE_BUILD_BACKEND_TIMEOUT (seconds) if it needs longer",
                    limit.as_secs()
                ),
            };
            if !line.trim().is_empty() {
                self.accept(&line, events)?;
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
            m => match m.event() {
                Some(event) => events.event(event),
                None => self.answer = Some(m),
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

/// Read all stdout lines of `child` within `limit`; on timeout kill it.
fn read_lines(child: &mut Child, limit: Duration) -> Result<Vec<String>> {
    let lines = line_channel(child);
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(line)) => out.push(line),
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(out),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                bail!("no answer within {}s", limit.as_secs())
            }
        }
    }
}
