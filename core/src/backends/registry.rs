//! The backend registry: resolves a backend name to something that implements the sdk's
//! `Backend` trait. One function ([`Registry::discover`]) serves both running and listing,
//! so what `backends` prints is exactly what `build` would run.
//!
//! Built-ins come first; they are handed in by the caller (the CLI), so the core links no
//! backend. Then the files [`super::search`] finds; those are probed only when they are run
//! or listed, and each probe is remembered for the life of the process. What the search
//! passed over although it looks meant as a backend is kept ([`Registry::ignored`]) for
//! `backends` to warn about and for the "no such backend" error to name.

use super::found::{Candidate, CandidateKind, Found};
use super::search::{search, Ignored};
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
    /// Files and plugin path entries that look meant as backends but are not used.
    pub ignored: Vec<Ignored>,
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
            ignored: found.ignored,
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
        self.unknown(name, &[])
    }

    /// Whether `name` is a built-in or a backend file found by the search (probed or not).
    pub fn knows(&self, name: &str) -> bool {
        self.builtins.iter().any(|b| b.info().name == name)
            || self.candidates.iter().any(|c| c.name == name)
    }

    /// Every backend name: the built-ins, then the candidates found.
    pub fn names(&self) -> Vec<String> {
        let builtins = self.builtins.iter().map(|b| b.info().name);
        builtins
            .chain(self.candidates.iter().map(|c| c.name.clone()))
            .collect()
    }

    /// The error for a `name` the registry does not know, cargo-style: a did-you-mean among
    /// the backends and `commands` (the caller's own commands: then the error says "no such
    /// command or backend"), what the search ignored that may be meant as `name` (files of
    /// that name, plugin path entries; the others are counted), and where backends are
    /// looked for.
    pub fn unknown(&self, name: &str, commands: &[String]) -> anyhow::Error {
        let what = match commands.is_empty() {
            true => "backend",
            false => "command or backend",
        };
        let (ignored, meant) = self.ignored_help(name);
        let names = self.names();
        let all = commands.iter().chain(&names).map(String::as_str);
        // A file meant as this very backend is the answer; a similar name would be noise.
        let mut help: Vec<String> = did_you_mean(name, all)
            .filter(|_| !meant)
            .map(|s| format!("did you mean '{s}'?"))
            .into_iter()
            .chain(ignored)
            .collect();
        if !commands.is_empty() {
            help.push("list the commands with `ostree-build --help`".into());
        }
        help.push("list the available backends with `ostree-build backends`".into());
        help.push("backends are built in, libostree_build_backend_<name>.so plugins or ostree-build-<name> executables in $OSTREE_BUILD_PLUGIN_PATH, ~/.local/share/ostree-build/backends or /usr/libexec/ostree-build/backends, or executables on PATH".into());
        let help: String = help.iter().map(|h| format!("\n  help: {h}")).collect();
        anyhow!("no such {what}: '{name}'{help}")
    }

    /// Help lines about what the search ignored: everything that may be meant as `name` (a
    /// file meant as that backend, a plugin path entry), then how many others there are;
    /// and whether a file is meant as `name` itself.
    fn ignored_help(&self, name: &str) -> (Vec<String>, bool) {
        let (mut about, others): (Vec<&Ignored>, Vec<&Ignored>) = self
            .ignored
            .iter()
            .partition(|i| i.backend.is_none() || i.backend.as_deref() == Some(name));
        about.sort_by_key(|i| i.backend.is_none());
        let meant = about.iter().any(|i| i.backend.is_some());
        let mut lines: Vec<String> = about.iter().map(|i| i.to_string()).collect();
        match others.len() {
            0 => {}
            1 => lines.push("1 more file looks like a backend of another name but is ignored: see the warnings of `ostree-build backends`".into()),
            n => lines.push(format!("{n} more files look like backends of other names but are ignored: see the warnings of `ostree-build backends`")),
        }
        (lines, meant)
    }
}

/// Ask a candidate who it is. `Ok(None)`: an executable that does not answer like a backend.
fn probe(c: &Candidate) -> Result<Option<Found>> {
    match c.kind {
        CandidateKind::Executable => super::exec::ExecBackend::probe(c),
        CandidateKind::Dylib => super::dylib::DylibBackend::load(c).map(Some),
    }
}
