//! What a backend answers: a [`Plan`] (what determines the result, for `plan`) and an
//! [`Output`] (what it produced, for `run`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What determines a component's result, reported before it is built so the core can
/// decide whether to rebuild (the input hash). The component's options and the backend's
/// version are hashed by the core already: a plan names only what lies outside them.
///
/// ```
/// use ostree_build_sdk::Plan;
///
/// // Rebuild when anything under rootfs/ changes, or when the mirror publishes.
/// let plan = Plan {
///     inputs: vec!["/srv/myos/rootfs".into()],
///     fingerprint: "Release: 2024-06-29".into(),
/// };
/// assert_eq!(serde_json::to_value(&plan)?["inputs"][0], "/srv/myos/rootfs");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// Files or directories whose metadata (type, mode, owner, size, mtime, link target)
    /// is hashed, recursively; contents are never read.
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
    /// Anything else that determines the result (a resolved package set, a mirror state);
    /// stored in the commit, so `status` can say it changed.
    #[serde(default)]
    pub fingerprint: String,
}

/// What a backend produced.
///
/// ```
/// use ostree_build_sdk::Output;
///
/// let out = Output::Tree { root: "/tmp/root".into(), packages: vec!["acme-1.0".into()] };
/// assert_eq!(out.packages(), ["acme-1.0"]);
/// assert_eq!(serde_json::to_value(&out)?["kind"], "tree");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Output {
    /// A directory tree: usually the request's `root` once populated, or a directory of
    /// the project the core commits in place. `packages` (`name-version.arch`, if the
    /// backend knows them) go into the commit metadata (`ostree-build.packages`).
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
    /// The packages either kind reports.
    pub fn packages(&self) -> &[String] {
        match self {
            Output::Tree { packages, .. } | Output::Archive { packages, .. } => packages,
        }
    }
}
