//! What a backend search finds: candidates (files that look like backends), backends ready
//! to run with where they came from, and the checks a backend's own info must pass.

use anyhow::{bail, Result};
use ostree_build_sdk::{Backend, BackendInfo, PROTOCOL_VERSION};
use std::path::PathBuf;
use std::sync::Arc;

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

impl Found {
    pub fn built_in(backend: &Arc<dyn Backend>) -> Found {
        Found {
            info: backend.info(),
            backend: backend.clone(),
            source: Source::BuiltIn,
        }
    }
}

/// A backend file found in a search directory, not yet probed.
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
