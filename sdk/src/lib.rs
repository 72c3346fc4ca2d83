//! The only crate an ostree-build backend depends on.
//!
//! It owns the backend protocol: the JSON types exchanged between the core and a backend
//! (info, request, events, output), the protocol version, and the [`Backend`] trait that
//! first-party and third-party backends implement. Built-in backends are called through the
//! trait directly; executables and cdylib plugins carry the same types as JSON.

#[cfg(feature = "dylib")]
pub mod dylib;
pub mod exec;
pub mod mounts;
pub mod suggest;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The protocol version this sdk speaks. A plain integer: it changes only when a
/// message changes incompatibly; additions go through capabilities.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a backend says about itself (the info probe).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackendInfo {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Protocol versions this backend can speak.
    pub protocols: Vec<u32>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The options a component may set for this backend, so the core can reject unknown
    /// keys with the manifest line and a did-you-mean.
    #[serde(default)]
    pub options: Vec<OptionSpec>,
}

/// One option a backend accepts in a component table of the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptionSpec {
    pub name: String,
    /// "string", "path", "bool", "integer" or "list".
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub help: String,
}

impl OptionSpec {
    pub fn new(name: &str, kind: &str, required: bool, help: &str) -> Self {
        OptionSpec {
            name: name.into(),
            kind: kind.into(),
            required,
            help: help.into(),
        }
    }
}

/// One request to a backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub protocol: u32,
    /// The component being built (manifest table name).
    pub component: String,
    /// Target architecture, e.g. `x86_64`.
    pub arch: String,
    /// The directory holding `ostree-build.toml`; relative option paths resolve against it.
    pub project_dir: PathBuf,
    /// An empty directory the backend may populate (its `$pkginstallroot`).
    pub root: PathBuf,
    /// The component's options from the manifest, as a JSON object.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
    /// A directory kept between runs, one per backend and project, for what is worth
    /// keeping across builds (downloaded packages, metadata). `None` from an older core.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

impl Request {
    /// A string option, if set.
    pub fn str_option(&self, key: &str) -> anyhow::Result<Option<&str>> {
        match self.options.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(other) => anyhow::bail!(
                "component '{}': option '{}' must be a string, got {}",
                self.component,
                key,
                other
            ),
        }
    }

    /// A path option resolved against the project directory, if set.
    pub fn path_option(&self, key: &str) -> anyhow::Result<Option<PathBuf>> {
        Ok(self.str_option(key)?.map(|p| self.project_dir.join(p)))
    }

    /// A list option: a JSON array of strings, or one string of comma-separated items
    /// (as given on the command line). Missing: empty.
    pub fn list_option(&self, key: &str) -> anyhow::Result<Vec<String>> {
        match self.options.get(key) {
            None => Ok(vec![]),
            Some(serde_json::Value::String(s)) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Ok(s.clone()),
                    other => anyhow::bail!(
                        "component '{}': option '{}' must be a list of strings, got {}",
                        self.component,
                        key,
                        other
                    ),
                })
                .collect(),
            Some(other) => anyhow::bail!(
                "component '{}': option '{}' must be a list of strings, got {}",
                self.component,
                key,
                other
            ),
        }
    }

    /// A boolean option, or `default` when missing.
    pub fn bool_option(&self, key: &str, default: bool) -> anyhow::Result<bool> {
        match self.options.get(key) {
            None => Ok(default),
            Some(serde_json::Value::Bool(b)) => Ok(*b),
            Some(other) => anyhow::bail!(
                "component '{}': option '{}' must be true or false, got {}",
                self.component,
                key,
                other
            ),
        }
    }

    /// A path option that must be present.
    pub fn required_path(&self, key: &str) -> anyhow::Result<PathBuf> {
        self.path_option(key)?.ok_or_else(|| {
            anyhow::anyhow!("component '{}': missing option '{}'", self.component, key)
        })
    }
}

/// What determines a component's result, reported before it is built so the core can
/// decide whether to rebuild (the input hash).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// Files or directories whose metadata (size, mtime, mode, link target) is hashed.
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
    /// Anything else that determines the result (a resolved package set, a mirror state).
    #[serde(default)]
    pub fingerprint: String,
}

/// What a backend produced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Output {
    /// A directory tree: usually the request's `root` once populated, or an existing
    /// directory the core commits in place.
    Tree {
        root: PathBuf,
        #[serde(default)]
        packages: Vec<String>,
    },
    /// The backend produced (or points at) a tar archive; the core streams it into the
    /// repository without extracting it to disk.
    Archive {
        path: PathBuf,
        #[serde(default)]
        packages: Vec<String>,
    },
}

impl Output {
    pub fn packages(&self) -> &[String] {
        match self {
            Output::Tree { packages, .. } | Output::Archive { packages, .. } => packages,
        }
    }
}

/// Log levels a backend may use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// Events a backend sends while it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    Log {
        level: Level,
        message: String,
    },
    Progress {
        done: u64,
        total: Option<u64>,
        unit: String,
    },
}

impl Event {
    /// The event as one line of text for people.
    pub fn text(&self) -> String {
        match self {
            Event::Log { message, .. } => message.clone(),
            Event::Progress {
                done,
                total: Some(t),
                unit,
            } => format!("{done}/{t} {unit}"),
            Event::Progress { done, unit, .. } => format!("{done} {unit}"),
        }
    }
}

/// A sink that drops every event (for calls whose events nobody shows, like `plan`).
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&mut self, _event: Event) {}
}

/// Where a backend sends its events.
pub trait EventSink {
    fn event(&mut self, event: Event);

    fn info(&mut self, message: &str) {
        self.event(Event::Log {
            level: Level::Info,
            message: message.into(),
        })
    }

    fn warn(&mut self, message: &str) {
        self.event(Event::Log {
            level: Level::Warn,
            message: message.into(),
        })
    }
}

/// The trait every backend implements, built-in or third-party.
pub trait Backend: Send + Sync {
    /// Name, version, protocols, capabilities and accepted options.
    fn info(&self) -> BackendInfo;

    /// What determines the result of `run` for this request (no side effects).
    fn plan(&self, request: &Request) -> anyhow::Result<Plan>;

    /// Produce the component: populate `request.root` or point at an archive.
    fn run(&self, request: &Request, events: &mut dyn EventSink) -> anyhow::Result<Output>;
}

/// `name` as `which` finds it: the first executable file of that name on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    which::which(name).ok()
}

/// Whether `path` names an existing file or directory; a helper for clear backend errors.
pub fn require_exists(component: &str, key: &str, path: &Path) -> anyhow::Result<()> {
    if path.symlink_metadata().is_err() {
        anyhow::bail!(
            "component '{}': option '{}' names '{}', which does not exist",
            component,
            key,
            path.display()
        );
    }
    Ok(())
}
