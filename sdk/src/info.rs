//! What a backend says about itself: [`BackendInfo`] (the answer to the info probe) and the
//! [`OptionSpec`]s it declares, with builders so an `info()` reads as a list.

use serde::{Deserialize, Serialize};

/// What a backend says about itself (the info probe).
///
/// ```
/// use ostree_build_sdk::{BackendInfo, OptionSpec, PROTOCOL_VERSION};
///
/// let info = BackendInfo::new("acme", "1.0.0")
///     .description("installs acme packages")
///     .option(OptionSpec::list("packages").required().help("packages to install"));
/// assert_eq!(info.protocols, vec![PROTOCOL_VERSION]);
/// assert_eq!(info.options[0].kind, "list");
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackendInfo {
    /// The backend's name, `[a-z][a-z0-9-]*`; it must match its file name
    /// (`ostree-build-<name>`, `libostree_build_backend_<name with _ for ->.so`).
    pub name: String,
    /// The backend's own version; a change rebuilds every component it built.
    pub version: String,
    /// One line for `ostree-build backends`.
    #[serde(default)]
    pub description: String,
    /// Protocol versions this backend can speak.
    pub protocols: Vec<u32>,
    /// Optional protocol features (none are defined in protocol 1).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The options a component may set for this backend, so the core can reject unknown
    /// keys with the manifest line and a did-you-mean.
    #[serde(default)]
    pub options: Vec<OptionSpec>,
}

impl BackendInfo {
    /// `name` at `version`, speaking this sdk's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION),
    /// with no description, capabilities or options yet.
    pub fn new(name: &str, version: &str) -> Self {
        BackendInfo {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            protocols: vec![crate::PROTOCOL_VERSION],
            capabilities: vec![],
            options: vec![],
        }
    }

    /// With this one-line description.
    pub fn description(mut self, text: &str) -> Self {
        self.description = text.into();
        self
    }

    /// With one more option.
    pub fn option(mut self, option: OptionSpec) -> Self {
        self.options.push(option);
        self
    }
}

/// One option a backend accepts in a component table of the manifest (and as `--NAME
/// VALUE` ad hoc). The core checks a component's options against these before it calls
/// the backend: unknown keys, wrong types and missing required options are errors.
///
/// ```
/// use ostree_build_sdk::OptionSpec;
///
/// let spec = OptionSpec::path("source").required().help("the directory to copy");
/// assert_eq!(spec, OptionSpec::new("source", "path", true, "the directory to copy"));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptionSpec {
    pub name: String,
    /// `"string"`, `"path"` (a string, resolved against the project directory by
    /// [`Request::path_option`](crate::Request::path_option)), `"bool"`, `"integer"` or
    /// `"list"` (of strings).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    /// One line for `ostree-build help <backend>`.
    #[serde(default)]
    pub help: String,
}

impl OptionSpec {
    /// An option with every field given.
    pub fn new(name: &str, kind: &str, required: bool, help: &str) -> Self {
        OptionSpec {
            name: name.into(),
            kind: kind.into(),
            required,
            help: help.into(),
        }
    }

    /// An optional string option, without help yet.
    pub fn string(name: &str) -> Self {
        Self::new(name, "string", false, "")
    }

    /// An optional path option (relative paths resolve against the project directory).
    pub fn path(name: &str) -> Self {
        Self::new(name, "path", false, "")
    }

    /// An optional boolean option (`true`/`false`).
    pub fn bool(name: &str) -> Self {
        Self::new(name, "bool", false, "")
    }

    /// An optional integer option.
    pub fn integer(name: &str) -> Self {
        Self::new(name, "integer", false, "")
    }

    /// An optional list of strings (an array in the manifest, comma-separated ad hoc).
    pub fn list(name: &str) -> Self {
        Self::new(name, "list", false, "")
    }

    /// Required: a component without it is refused before the backend runs.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// With this one-line help.
    pub fn help(mut self, text: &str) -> Self {
        self.help = text.into();
        self
    }
}
