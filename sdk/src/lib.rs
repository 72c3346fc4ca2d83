//! The only crate an ostree-build backend depends on.
//!
//! It owns the backend protocol: the JSON types exchanged between the core and a backend
//! (info, request, events, output), the protocol version, and the [`Backend`] trait that
//! first-party and third-party backends implement. Built-in backends are called through the
//! trait directly; executables and cdylib plugins carry the same types as JSON.
//!
//! Modules: `info` ([`BackendInfo`], [`OptionSpec`]), `request` ([`Request`]), `output`
//! ([`Plan`], [`Output`]), `events` ([`Event`], [`EventSink`]), [`exec`] (the executable
//! side), `dylib` (the cdylib side, feature `dylib`), and helpers the core shares
//! ([`suggest`], [`mounts`], [`which()`], [`require_exists`]).
//!
//! The crate's README follows: how to depend on it, an example, and the semver policy.
//!
#![doc = include_str!("../README.md")]

#[cfg(feature = "dylib")]
pub mod dylib;
mod events;
pub mod exec;
mod info;
pub mod mounts;
mod output;
mod request;
pub mod suggest;

pub use events::{Event, EventSink, Level, NoEvents};
pub use info::{BackendInfo, OptionSpec};
pub use output::{Output, Plan};
pub use request::{Previous, Request};
/// The versions of `anyhow` and `serde_json` this crate's API uses ([`Backend`] returns
/// `anyhow::Result`, [`Request::options`] is a `serde_json::Map`), for backends and their
/// tests that would rather not name them twice.
pub use {anyhow, serde_json};

use std::path::{Path, PathBuf};

/// The protocol version this sdk speaks. A plain integer: it changes only when a
/// message changes incompatibly; additions go through capabilities. It is independent of
/// the crate's version (see the README's semver policy).
pub const PROTOCOL_VERSION: u32 = 1;

/// The capability (in [`BackendInfo::capabilities`]) of a backend that can change its last
/// build in place: the core then checks that build out into `root` when only the
/// component's options changed, and says so in [`Request::previous`]. Checked out as
/// root, with owners, modes and xattrs; without root it is not offered.
pub const PREVIOUS_TREE: &str = "previous-tree";

/// This crate's version. A cdylib plugin must be built against the sdk `0.minor` of the
/// ostree-build that loads it; executables only need a shared [`PROTOCOL_VERSION`].
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The trait every backend implements, built-in or third-party. The core calls `info` to
/// list and check it, `plan` before every build (cheap, no side effects: it decides whether
/// the component is rebuilt) and `run` when it is. `run` writes only inside
/// `request.root` (or the archive it names); the core checks the answer before it commits.
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

/// Remove everything inside `dir`, keeping `dir`: for a backend that was handed the
/// previous build in its root ([`Request::previous`]) and builds from scratch instead.
pub fn empty_dir(dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let removed = match path.symlink_metadata() {
            Ok(md) if md.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        removed.with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(())
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
