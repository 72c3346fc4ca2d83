//! `ostree-build clean`, like `cargo clean`: removes what ostree-build keeps only to go
//! faster (scratch space, trigger worktrees, package caches, kept component trees, ad hoc
//! roots, input digests, the ssh push outbox). The build
//! repository stays: its heads are the parents and version numbers of the next images
//! (`prune` shrinks it); the export repository always stays: clients pull from it.

use crate::lock::{unmount_below, ProjectLock};
use crate::manifest::Manifest;
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct CleanOptions {
    pub dry_run: bool,
}

/// One directory clean removes (or would remove).
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub path: PathBuf,
    pub bytes: u64,
    pub what: &'static str,
}

/// Fails at once when another run holds the project lock: a running build must not lose
/// its worktree, and waiting behind it is not what `clean` is asked for.
pub fn clean(manifest: &Manifest, options: &CleanOptions) -> Result<Vec<Removed>> {
    let state = manifest.state_dir();
    if !state.is_dir() {
        return Ok(vec![]);
    }
    let Some(lock) = ProjectLock::try_acquire(&state)? else {
        bail!(
            "{}: another ostree-build run (a build?) holds the project lock; nothing was removed\n  help: run `ostree-build clean` again once it has finished",
            state.join("lock").display()
        );
    };
    let removed = targets(&lock.state_dir);
    if !options.dry_run {
        unmount_below(&lock.state_dir);
        for r in &removed {
            crate::fsutil::remove_tree(&r.path)?;
        }
    }
    Ok(removed)
}

fn targets(state: &std::path::Path) -> Vec<Removed> {
    let mut out: Vec<(PathBuf, &'static str)> = vec![
        (state.join("work"), "scratch space"),
        (state.join("images"), "trigger worktrees and records"),
        (state.join("cache"), "package caches"),
        (
            state.join("trees"),
            "component trees kept for incremental builds",
        ),
        (
            state.join("stat-cache"),
            "stat caches of directory components",
        ),
        (state.join("digests"), "input digests for cache keys"),
        (
            state.join("cache-outbox"),
            "components staged for ssh cache pushes",
        ),
    ];
    if let Ok(entries) = std::fs::read_dir(state) {
        let mut adhoc: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("adhoc-"))
            })
            .collect();
        adhoc.sort();
        out.extend(adhoc.into_iter().map(|p| (p, "ad hoc build root")));
    }
    out.into_iter()
        .filter(|(p, _)| p.exists())
        .map(|(path, what)| Removed {
            bytes: crate::fsutil::tree_size(&path),
            path,
            what,
        })
        .collect()
}
