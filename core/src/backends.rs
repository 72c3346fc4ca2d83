//! The backend registry: resolves a backend name to something that implements the sdk's
//! `Backend` trait. One function (`Registry::discover`) serves both running and listing,
//! so what `backends` prints is exactly what `build` would run.
//!
//! Order: built-ins, then `ostree-build-<name>` executables in `$OSTREE_BUILD_PLUGIN_PATH`,
//! the user data directory, the system libexec directories, then `PATH`. The first one of a
//! name wins; the others are reported as shadowed. Executables are probed
//! (`ostree-build-plugin-info`) only when they are run or listed.

use anyhow::{anyhow, bail, Context, Result};
use ostree_build_sdk::exec::{Message, INFO_ARG, PLAN_ARG, RUN_ARG};
use ostree_build_sdk::suggest::did_you_mean;
use ostree_build_sdk::{
    Backend, BackendInfo, EventSink, NoEvents, Output, Plan, Request, PROTOCOL_VERSION,
};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Where a backend came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "path")]
pub enum Source {
    BuiltIn,
    Executable(PathBuf),
    Plugin(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::BuiltIn => write!(f, "built-in"),
            Source::Executable(p) | Source::Plugin(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A backend ready to run.
#[derive(Clone)]
pub struct Found {
    pub backend: Arc<dyn Backend>,
    pub info: BackendInfo,
    pub source: Source,
}

/// A backend file found in a search directory.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub path: PathBuf,
    pub kind: CandidateKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// `ostree-build-<name>`, anywhere on the search path.
    Executable,
    /// `libostree_build_backend_<name>.so`, only in plugin directories (never PATH).
    Dylib,
}

/// Everything the search found: built-ins, the executable that wins for each other name,
/// and what the user should know (shadowed names, files that are not executable).
pub struct Registry {
    builtins: Vec<Arc<dyn Backend>>,
    probed: std::sync::Mutex<std::collections::HashMap<String, Found>>,
    pub executables: Vec<Candidate>,
    pub warnings: Vec<String>,
}

/// What `list` says about one backend.
pub enum Listed {
    Backend(Found),
    /// An `ostree-build-<name>` that does not answer the probe: a plain external command.
    Command(Candidate),
    /// A backend that cannot be used, and why.
    Broken(Candidate, String),
}

impl Registry {
    pub fn discover() -> Registry {
        // `OSTREE_BUILD_BUILTIN_BACKENDS=none` leaves the first-party backends to their
        // plugin builds (to test those, or where a distribution ships them as plugins).
        let builtins: Vec<Arc<dyn Backend>> =
            if std::env::var("OSTREE_BUILD_BUILTIN_BACKENDS").as_deref() == Ok("none") {
                vec![]
            } else {
                vec![
                    Arc::new(ostree_build_dir::DirBackend),
                    Arc::new(ostree_build_tarball::TarballBackend),
                    Arc::new(ostree_build_debootstrap::DebootstrapBackend),
                    Arc::new(ostree_build_dnf::DnfBackend::DNF),
                    Arc::new(ostree_build_dnf::DnfBackend::YUM),
                ]
            };
        let builtin_names: Vec<String> = builtins.iter().map(|b| b.info().name).collect();
        let mut executables: Vec<Candidate> = Vec::new();
        let mut warnings = Vec::new();
        for (dir, plugin_dir) in search_dirs() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut found: Vec<(String, u8, PathBuf, CandidateKind)> = entries
                .flatten()
                .filter_map(|e| {
                    let file = e.file_name().to_string_lossy().into_owned();
                    if let Some(n) = file
                        .strip_prefix("libostree_build_backend_")
                        .and_then(|f| f.strip_suffix(".so"))
                    {
                        // Loading a library runs its code: plugin directories only.
                        let name = n.replace('_', "-");
                        return (plugin_dir && valid_name(&name))
                            .then(|| (name, 0, e.path(), CandidateKind::Dylib));
                    }
                    let name = file.strip_prefix("ostree-build-")?.to_string();
                    valid_name(&name).then(|| (name, 1, e.path(), CandidateKind::Executable))
                })
                .collect();
            // By name; a library before an executable of the same name in one directory.
            found.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
            for (name, _, path, kind) in found {
                let Ok(md) = std::fs::metadata(&path) else {
                    continue;
                };
                if !md.is_file() {
                    continue;
                }
                if kind == CandidateKind::Executable && md.permissions().mode() & 0o111 == 0 {
                    warnings.push(format!(
                        "{} identified as a backend, but it is not executable (chmod +x it or remove it)",
                        path.display()
                    ));
                    continue;
                }
                if builtin_names.contains(&name) {
                    warnings.push(format!(
                        "{} is shadowed by built-in backend '{name}'",
                        path.display()
                    ));
                } else if let Some(first) = executables.iter().find(|c| c.name == name) {
                    warnings.push(format!(
                        "{} is shadowed by {}",
                        path.display(),
                        first.path.display()
                    ));
                } else {
                    executables.push(Candidate { name, path, kind });
                }
            }
        }
        Registry {
            builtins,
            probed: Default::default(),
            executables,
            warnings,
        }
    }

    /// Every backend and external command, probing the executables.
    pub fn list(&self) -> Vec<Listed> {
        let mut out: Vec<Listed> = self
            .builtins
            .iter()
            .map(|b| {
                Listed::Backend(Found {
                    info: b.info(),
                    backend: b.clone(),
                    source: Source::BuiltIn,
                })
            })
            .collect();
        for c in &self.executables {
            out.push(match probe(c) {
                Ok(Some(found)) => Listed::Backend(found),
                Ok(None) => Listed::Command(c.clone()),
                Err(e) => Listed::Broken(c.clone(), format!("{e:#}")),
            });
        }
        out
    }

    /// The backend called `name`: `Ok(Err(candidate))` when it is a plain external
    /// command, an error (cargo-style, with a did-you-mean) when there is none.
    pub fn resolve(&self, name: &str) -> Result<std::result::Result<Found, Candidate>> {
        if let Some(b) = self.builtins.iter().find(|b| b.info().name == name) {
            return Ok(Ok(Found {
                info: b.info(),
                backend: b.clone(),
                source: Source::BuiltIn,
            }));
        }
        if let Some(found) = self.probed.lock().ok().and_then(|p| p.get(name).cloned()) {
            return Ok(Ok(found));
        }
        if let Some(c) = self.executables.iter().find(|c| c.name == name) {
            return Ok(match probe(c)? {
                Some(found) => {
                    if let Ok(mut p) = self.probed.lock() {
                        p.insert(name.to_string(), found.clone());
                    }
                    Ok(found)
                }
                None => Err(c.clone()),
            });
        }
        let names = self
            .builtins
            .iter()
            .map(|b| b.info().name)
            .chain(self.executables.iter().map(|c| c.name.clone()))
            .collect::<Vec<_>>();
        let mut msg = format!("no such backend: '{name}'");
        if let Some(s) = did_you_mean(name, names.iter().map(String::as_str)) {
            msg.push_str(&format!(
                "\n  help: a backend with a similar name exists: '{s}'"
            ));
        }
        msg.push_str("\n  help: list the available backends with `ostree-build backends`");
        msg.push_str("\n  help: backends are built in, libostree_build_backend_<name>.so plugins or ostree-build-<name> executables in $OSTREE_BUILD_PLUGIN_PATH, ~/.local/share/ostree-build/backends or /usr/libexec/ostree-build/backends, or executables on PATH");
        Err(anyhow!(msg))
    }

    /// A backend that must be a real backend (for components).
    pub fn backend(&self, name: &str) -> Result<Found> {
        match self.resolve(name)? {
            Ok(found) => Ok(found),
            Err(c) => bail!(
                "'{name}' ({}) is an external command, not a backend: it does not answer `{INFO_ARG}`\n  help: backends are built with ostree-build-sdk (see docs/PLUGINS.md)",
                c.path.display()
            ),
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The directories searched for backends, in order, without repeats, each with whether it
/// is a plugin directory (libraries are loaded only from those, never from PATH).
pub fn search_dirs() -> Vec<(PathBuf, bool)> {
    let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
    if let Some(p) = std::env::var_os("OSTREE_BUILD_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&p).map(|d| (d, true)));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(d) = data {
        dirs.push((d.join("ostree-build/backends"), true));
    }
    dirs.push((
        PathBuf::from("/usr/local/libexec/ostree-build/backends"),
        true,
    ));
    dirs.push((PathBuf::from("/usr/libexec/ostree-build/backends"), true));
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p).map(|d| (d, false)));
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|(d, _)| !d.as_os_str().is_empty() && seen.insert(d.clone()));
    dirs
}

/// Ask a candidate who it is. `Ok(None)`: an executable that does not answer like a backend.
fn probe(c: &Candidate) -> Result<Option<Found>> {
    match c.kind {
        CandidateKind::Executable => ExecBackend::probe(c),
        CandidateKind::Dylib => crate::dylib::DylibBackend::load(c).map(Some),
    }
}

/// Check what a backend says about itself against its file name and our protocol.
pub(crate) fn check_info(c: &Candidate, info: &BackendInfo) -> Result<()> {
    if info.name != c.name {
        bail!(
            "{} says its name is '{}', not '{}'\n  help: rename the file after the backend's name",
            c.path.display(),
            info.name,
            c.name
        );
    }
    if !info.protocols.contains(&PROTOCOL_VERSION) {
        bail!(
            "backend '{}' ({}) speaks protocol {:?}; this ostree-build speaks {PROTOCOL_VERSION}: rebuild the backend against a matching ostree-build-sdk, or use a matching ostree-build",
            c.name,
            c.path.display(),
            info.protocols
        );
    }
    Ok(())
}

/// How long a backend may take: the probe and `plan` are quick questions; `run` installs
/// packages. `OSTREE_BUILD_BACKEND_TIMEOUT` (seconds) overrides both.
fn timeout(run: bool) -> Duration {
    let secs = std::env::var("OSTREE_BUILD_BACKEND_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    Duration::from_secs(secs.unwrap_or(if run { 3600 } else { 60 }))
}

/// An `ostree-build-<name>` executable speaking the JSON protocol.
pub struct ExecBackend {
    info: BackendInfo,
    path: PathBuf,
}

impl ExecBackend {
    /// Ask the executable who it is. `Ok(None)`: it does not answer like a backend.
    fn probe(c: &Candidate) -> Result<Option<Found>> {
        let mut child = Command::new(&c.path)
            .arg(INFO_ARG)
            .env("OSTREE_BUILD", current_exe())
            .env(
                "OSTREE_BUILD_PLUGIN_PROTOCOLS",
                PROTOCOL_VERSION.to_string(),
            )
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
        let Ok(lines) = lines else {
            return Ok(None);
        };
        let Some(info) = (status.success())
            .then(|| {
                lines
                    .first()
                    .and_then(|l| serde_json::from_str::<BackendInfo>(l).ok())
            })
            .flatten()
        else {
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

    /// Run one operation: the request on stdin, JSON lines back.
    fn call(&self, arg: &str, request: &Request, events: &mut dyn EventSink) -> Result<Message> {
        let name = &self.info.name;
        let mut child = Command::new(&self.path)
            .arg(arg)
            .env("OSTREE_BUILD", current_exe())
            .env(
                "OSTREE_BUILD_PLUGIN_PROTOCOLS",
                PROTOCOL_VERSION.to_string(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot run backend '{name}' ({})", self.path.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A backend that exits without reading its request shows up below.
            let _ = stdin.write_all(serde_json::to_string(request)?.as_bytes());
        }
        let (tx, rx) = mpsc::channel::<std::io::Result<String>>();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + timeout(arg == RUN_ARG);
        let mut hello = false;
        let mut answer = None;
        let kill = |child: &mut std::process::Child| {
            let _ = child.kill();
            let _ = child.wait();
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(Ok(line)) => line,
                Ok(Err(e)) => {
                    kill(&mut child);
                    bail!("cannot read backend '{name}': {e}");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    kill(&mut child);
                    bail!(
                        "backend '{name}' did not finish within {}s and was stopped\n  help: set OSTREE_BUILD_BACKEND_TIMEOUT (seconds) if it needs longer",
                        timeout(arg == RUN_ARG).as_secs()
                    );
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let message: Message = match serde_json::from_str(&line) {
                Ok(m) => m,
                Err(e) => {
                    kill(&mut child);
                    bail!(
                        "backend '{name}' sent malformed JSON: {e}: {}\n  help: a backend writes only JSON lines on stdout; human output goes to stderr",
                        truncate(&line)
                    );
                }
            };
            if !hello {
                if let Message::Hello { protocol } = message {
                    if protocol != PROTOCOL_VERSION {
                        kill(&mut child);
                        bail!("backend '{name}' answered with protocol {protocol}; this ostree-build speaks {PROTOCOL_VERSION}: rebuild the backend against a matching ostree-build-sdk");
                    }
                    hello = true;
                    continue;
                }
                kill(&mut child);
                bail!(
                    "backend '{name}' did not send a hello message (got: {}); it may be too old or not an ostree-build backend",
                    truncate(&line)
                );
            }
            match message {
                Message::Log { level, message } => {
                    events.event(ostree_build_sdk::Event::Log { level, message })
                }
                Message::Progress { done, total, unit } => {
                    events.event(ostree_build_sdk::Event::Progress { done, total, unit })
                }
                other => answer = Some(other),
            }
        }
        let status = child.wait()?;
        match answer {
            Some(Message::Error { message, hint }) => {
                if hint.is_empty() {
                    bail!("{message}")
                }
                bail!("{message}\n  help: {hint}")
            }
            Some(m) if status.success() => Ok(m),
            _ if !hello => bail!(
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

fn current_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ostree-build"))
}

fn truncate(line: &str) -> String {
    let mut s: String = line.chars().take(120).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

/// Read all stdout lines of `child` within `limit`; on timeout kill it.
fn read_lines(child: &mut std::process::Child, limit: Duration) -> Result<Vec<String>> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            .collect();
        let _ = tx.send(lines);
    });
    match rx.recv_timeout(limit) {
        Ok(lines) => Ok(lines),
        Err(_) => {
            let _ = child.kill();
            bail!("no answer within {}s", limit.as_secs())
        }
    }
}

/// A plain external command `ostree-build-<name>`, run cargo-style: `ostree-build-<name>
/// <name> ARGS...` with `$OSTREE_BUILD` set. Returns its exit code.
pub fn run_external(c: &Candidate, args: &[std::ffi::OsString]) -> Result<i32> {
    let status = Command::new(&c.path)
        .arg(&c.name)
        .args(args)
        .env("OSTREE_BUILD", current_exe())
        .status()
        .with_context(|| format!("cannot run {}", c.path.display()))?;
    Ok(status.code().unwrap_or(1))
}
