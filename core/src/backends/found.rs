//! What a backend search finds: candidates (files that look like backends), backends ready
//! to run with where they came from, and the checks a backend's own info must pass.

use anyhow::{bail, Context, Result};
use ostree_build_sdk::{Backend, BackendInfo, Output, Request, PROTOCOL_VERSION};
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

impl Found {
    /// What the backend answered, checked before anything is imported: a tree inside the
    /// scratch root it was given or inside the project (a backend such as `dir` hands over
    /// a source tree in place; built-ins are trusted), an archive that is a regular file.
    pub fn check_output(&self, request: &Request, output: &Output) -> Result<()> {
        let name = &self.info.name;
        match output {
            Output::Tree { root, .. } if self.source != Source::BuiltIn => {
                let answered = root.canonicalize().with_context(|| {
                    format!(
                        "backend '{name}' answered with tree {}, which does not exist",
                        root.display()
                    )
                })?;
                let allowed = [&request.root, &request.project_dir]
                    .iter()
                    .filter_map(|d| d.canonicalize().ok())
                    .any(|d| answered.starts_with(d));
                if !allowed {
                    bail!(
                        "backend '{name}' answered with tree {}, outside the scratch root it was given ({}) and the project\n  help: a backend populates the request's root, or names a directory of the project",
                        answered.display(),
                        request.root.display()
                    );
                }
            }
            Output::Archive { path, .. } => {
                let md = std::fs::metadata(path).with_context(|| {
                    format!(
                        "backend '{name}' answered with archive {}, which does not exist",
                        path.display()
                    )
                })?;
                if !md.is_file() {
                    bail!(
                        "backend '{name}' answered with archive {}, which is not a regular file",
                        path.display()
                    );
                }
            }
            Output::Tree { .. } => {}
        }
        Ok(())
    }
}
