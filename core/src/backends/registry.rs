//! The backend registry: resolves a backend name to something that implements the sdk's
//! `Backend` trait. One function ([`Registry::discover`]) serves both running and listing,
//! so what `backends` prints is exactly what `build` would run.
//!
//! Built-ins come first; they are handed in by the caller (the CLI), so the core links no
//! backend. Then the files [`super::search`] finds; those are probed only when they are run
//! or listed, and each probe is remembered for the life of the process.

use super::found::{Candidate, CandidateKind, Found};
use super::search::search;
use anyhow::{anyhow, bail, Result};
use ostree_build_sdk::exec::INFO_ARG;
use ostree_build_sdk::suggest::did_you_mean;
use ostree_build_sdk::Backend;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Every backend this process can use.
pub struct Registry {
    builtins: Vec<Arc<dyn Backend>>,
    probed: Mutex<HashMap<String, Found>>,
    /// Backend files found on the search path (executables and plugin libraries), unprobed.
    pub candidates: Vec<Candidate>,
    pub warnings: Vec<String>,
}

/// What `list` says about one name.
pub enum Listed {
    Backend(Found),
    /// An `ostree-build-<name>` that does not answer the probe: a plain external command.
    Command(Candidate),
    /// A backend that cannot be used, and why.
    Broken(Candidate, String),
}

/// What a name resolves to.
pub enum Resolved {
    Backend(Found),
    /// An `ostree-build-<name>` that is not a backend, to run as a command.
    Command(Candidate),
}

impl Registry {
    /// The registry with these built-in backends, then everything on the search path.
    pub fn discover(builtins: Vec<Arc<dyn Backend>>) -> Registry {
        let builtin_names: Vec<String> = builtins.iter().map(|b| b.info().name).collect();
        let found = search(&builtin_names);
        Registry {
            builtins,
            probed: Default::default(),
            candidates: found.candidates,
            warnings: found.warnings,
        }
    }

    /// Every backend and external command, probing the candidates.
    pub fn list(&self) -> Vec<Listed> {
        let builtins = self
            .builtins
            .iter()
            .map(|b| Listed::Backend(Found::built_in(b)));
        let others = self.candidates.iter().map(|c| match probe(c) {
            Ok(Some(found)) => Listed::Backend(found),
            Ok(None) => Listed::Command(c.clone()),
            Err(e) => Listed::Broken(c.clone(), format!("{e:#}")),
        });
        builtins.chain(others).collect()
    }

    /// What `name` is: a backend, or a plain external command; an error (cargo-style, with
    /// a did-you-mean) when there is neither.
    pub fn resolve(&self, name: &str) -> Result<Resolved> {
        if let Some(b) = self.builtins.iter().find(|b| b.info().name == name) {
            return Ok(Resolved::Backend(Found::built_in(b)));
        }
        if let Some(found) = self.probed.lock().ok().and_then(|p| p.get(name).cloned()) {
            return Ok(Resolved::Backend(found));
        }
        let Some(c) = self.candidates.iter().find(|c| c.name == name) else {
            return Err(self.no_such_backend(name));
        };
        Ok(match probe(c)? {
            Some(found) => {
                if let Ok(mut p) = self.probed.lock() {
                    p.insert(name.to_string(), found.clone());
                }
                Resolved::Backend(found)
            }
            None => Resolved::Command(c.clone()),
        })
    }

    /// A backend that must be a real backend (for components).
    pub fn backend(&self, name: &str) -> Result<Found> {
        match self.resolve(name)? {
            Resolved::Backend(found) => Ok(found),
            Resolved::Command(c) => bail!(
                "'{name}' ({}) is an external command, not a backend: it does not answer `{INFO_ARG}`\n  help: backends are built with ostree-build-sdk (see docs/PLUGINS.md)",
                c.path.display()
            ),
        }
    }

    fn no_such_backend(&self, name: &str) -> anyhow::Error {
        let names: Vec<String> = self
            .builtins
            .iter()
            .map(|b| b.info().name)
            .chain(self.candidates.iter().map(|c| c.name.clone()))
            .collect();
        let mut msg = format!("no such backend: '{name}'");
        if let Some(s) = did_you_mean(name, names.iter().map(String::as_str)) {
            msg.push_str(&format!(
                "\n  help: a backend with a similar name exists: '{s}'"
            ));
        }
        msg.push_str("\n  help: list the available backends with `ostree-build backends`");
        msg.push_str("\n  help: backends are built in, libostree_build_backend_<name>.so plugins or ostree-build-<name> executables in $OSTREE_BUILD_PLUGIN_PATH, ~/.local/share/ostree-build/backends or /usr/libexec/ostree-build/backends, or executables on PATH");
        anyhow!(msg)
    }
}

/// Ask a candidate who it is. `Ok(None)`: an executable that does not answer like a backend.
fn probe(c: &Candidate) -> Result<Option<Found>> {
    match c.kind {
        CandidateKind::Executable => super::exec::ExecBackend::probe(c),
        CandidateKind::Dylib => super::dylib::DylibBackend::load(c).map(Some),
    }
}
