//! [`Request`]: what the core asks of a backend for one operation, and typed accessors for
//! the component's options, each failing with a message that names the component and key.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One request to a backend (the same for `plan` and `run`).
///
/// ```
/// use ostree_build_sdk::{Request, PROTOCOL_VERSION};
///
/// let request: Request = serde_json::from_value(serde_json::json!({
///     "protocol": PROTOCOL_VERSION, "component": "base", "arch": "x86_64",
///     "project_dir": "/srv/myos", "root": "/tmp/root",
///     "options": {"source": "rootfs", "packages": ["bash", "coreutils"],
///                 "jobs": 4, "verbose": true, "mirror": "http://deb.debian.org/debian"},
/// }))?;
/// assert_eq!(request.path_option("source")?, Some("/srv/myos/rootfs".into()));
/// assert_eq!(request.list_option("packages")?, ["bash", "coreutils"]);
/// assert_eq!(request.int_option("jobs")?, Some(4));
/// assert!(request.bool_option("verbose", false)?);
/// assert_eq!(request.str_option("mirror")?, Some("http://deb.debian.org/debian"));
/// assert!(request.str_option("jobs").is_err()); // not a string: an error naming it
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The protocol of this request; [`exec::main`](crate::exec::main) and
    /// [`export_backend!`](crate::export_backend) refuse one that is not theirs.
    pub protocol: u32,
    /// The component being built (manifest table name).
    pub component: String,
    /// Target architecture, e.g. `x86_64`.
    pub arch: String,
    /// The directory holding `ostree-build.toml`; relative option paths resolve against it.
    pub project_dir: PathBuf,
    /// An empty directory the backend may populate (its `$pkginstallroot`).
    pub root: PathBuf,
    /// The component's options from the manifest, as a JSON object, already checked
    /// against the backend's [`OptionSpec`](crate::OptionSpec)s.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
    /// A directory kept between runs, one per backend and project, for what is worth
    /// keeping across builds (downloaded packages, metadata); create it if missing.
    /// `None` from an older core.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// The component's last build, already checked out into `root`, for a backend with
    /// the [`PREVIOUS_TREE`](crate::PREVIOUS_TREE) capability when only the component's
    /// options changed since (same backend version, same inputs and fingerprint). The
    /// backend changes the tree in place (say, installs the packages added to a list), or
    /// empties `root` and builds from scratch. `None` otherwise, and from an older core.
    #[serde(default)]
    pub previous: Option<Previous>,
}

/// What the core tells a backend about the build whose tree it left in `root`.
///
/// ```
/// use ostree_build_sdk::{Previous, Request, PROTOCOL_VERSION};
///
/// let request = |options: serde_json::Value| -> Request {
///     serde_json::from_value(serde_json::json!({
///         "protocol": PROTOCOL_VERSION, "component": "base", "arch": "x86_64",
///         "project_dir": "/srv/myos", "root": "/tmp/root", "options": options,
///     })).unwrap()
/// };
/// let previous = Previous {
///     options: request(serde_json::json!({"suite": "bookworm", "include": ["less"]})).options,
///     ..Default::default()
/// };
/// let grown = request(serde_json::json!({"suite": "bookworm", "include": "less, curl", "timeout": 5}));
/// assert_eq!(previous.only_added(&grown, "include", &["timeout"]), Some(vec!["curl".to_string()]));
/// let other = request(serde_json::json!({"suite": "trixie", "include": ["less", "curl"]}));
/// assert_eq!(previous.only_added(&other, "include", &[]), None);
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Previous {
    /// The OSTree commit the tree was checked out from.
    pub commit: String,
    /// The options that build was made with.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Its package list (`name-version.arch`), as its output reported it.
    #[serde(default)]
    pub packages: Vec<String>,
}

impl Previous {
    /// The items added to the list option `key` since this build, when that is all that
    /// changed: nothing taken out of `key`, every other option as it was (but those in
    /// `ignore`, which do not change the result, such as a timeout). `None` otherwise,
    /// and when either list is not a list of strings.
    pub fn only_added(&self, request: &Request, key: &str, ignore: &[&str]) -> Option<Vec<String>> {
        let then = Request {
            options: self.options.clone(),
            previous: None,
            ..request.clone()
        };
        let (old, new) = (then.list_option(key).ok()?, request.list_option(key).ok()?);
        if !old.iter().all(|item| new.contains(item)) {
            return None;
        }
        let rest = |options: &serde_json::Map<String, serde_json::Value>| {
            let mut o = options.clone();
            o.retain(|k, _| k != key && !ignore.contains(&k.as_str()));
            o
        };
        if rest(&self.options) != rest(&request.options) {
            return None;
        }
        let mut added: Vec<String> = new.into_iter().filter(|i| !old.contains(i)).collect();
        added.dedup();
        Some(added)
    }
}

impl Request {
    /// A string option, if set.
    pub fn str_option(&self, key: &str) -> anyhow::Result<Option<&str>> {
        match self.options.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// A path option resolved against the project directory, if set.
    pub fn path_option(&self, key: &str) -> anyhow::Result<Option<PathBuf>> {
        Ok(self.str_option(key)?.map(|p| self.project_dir.join(p)))
    }

    /// A path option that must be present.
    pub fn required_path(&self, key: &str) -> anyhow::Result<PathBuf> {
        self.path_option(key)?.ok_or_else(|| {
            anyhow::anyhow!("component '{}': missing option '{}'", self.component, key)
        })
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
                    other => Err(self.wrong_type(key, "a list of strings", other)),
                })
                .collect(),
            Some(other) => Err(self.wrong_type(key, "a list of strings", other)),
        }
    }

    /// A boolean option, or `default` when missing.
    pub fn bool_option(&self, key: &str, default: bool) -> anyhow::Result<bool> {
        match self.options.get(key) {
            None => Ok(default),
            Some(serde_json::Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.wrong_type(key, "true or false", other)),
        }
    }

    /// An integer option, if set.
    pub fn int_option(&self, key: &str) -> anyhow::Result<Option<i64>> {
        match self.options.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "an integer", v)),
        }
    }

    fn wrong_type(&self, key: &str, what: &str, got: &serde_json::Value) -> anyhow::Error {
        anyhow::anyhow!(
            "component '{}': option '{}' must be {}, got {}",
            self.component,
            key,
            what,
            got
        )
    }
}
