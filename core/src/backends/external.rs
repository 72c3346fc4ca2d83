//! `ostree-build-<name>` programs that do not speak the backend protocol: plain external
//! commands, run cargo-style (`ostree-build-<name> <name> ARGS...` with `$OSTREE_BUILD`).

use super::found::Candidate;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Run an external command; returns its exit code.
pub fn run_external(c: &Candidate, args: &[std::ffi::OsString]) -> Result<i32> {
    let status = Command::new(&c.path)
        .arg(&c.name)
        .args(args)
        .env("OSTREE_BUILD", this_exe())
        .status()
        .with_context(|| format!("cannot run {}", c.path.display()))?;
    Ok(status.code().unwrap_or(1))
}

/// This program, for `$OSTREE_BUILD` in what it runs (so a plugin can call back).
pub(super) fn this_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ostree-build"))
}
