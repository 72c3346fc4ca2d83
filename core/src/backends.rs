//! The backend registry: resolves a backend name to something that implements the sdk's
//! `Backend` trait. One function serves both running and listing, so what `backends`
//! prints is exactly what `build` would run.

use crate::manifest::did_you_mean;
use anyhow::{anyhow, Result};
use ostree_build_sdk::{Backend, BackendInfo};
use std::sync::Arc;

/// Where a backend came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    BuiltIn,
}

/// A backend found by the registry.
#[derive(Clone)]
pub struct Found {
    pub backend: Arc<dyn Backend>,
    pub info: BackendInfo,
    pub source: Source,
}

/// Every backend that can be run, in resolution order.
pub fn discover() -> Vec<Found> {
    let builtins: Vec<Arc<dyn Backend>> = vec![
        Arc::new(ostree_build_dir::DirBackend),
        Arc::new(ostree_build_tarball::TarballBackend),
    ];
    builtins
        .into_iter()
        .map(|backend| Found {
            info: backend.info(),
            backend,
            source: Source::BuiltIn,
        })
        .collect()
}

/// The backend called `name`, or a cargo-style error with a did-you-mean.
pub fn resolve(name: &str) -> Result<Found> {
    let all = discover();
    if let Some(found) = all.iter().find(|f| f.info.name == name) {
        return Ok(found.clone());
    }
    let mut msg = format!("no such backend: '{name}'");
    if let Some(s) = did_you_mean(name, all.iter().map(|f| f.info.name.as_str())) {
        msg.push_str(&format!(
            "\n  help: a backend with a similar name exists: '{s}'"
        ));
    }
    msg.push_str("\n  help: list the available backends with `ostree-build backends`");
    Err(anyhow!(msg))
}
