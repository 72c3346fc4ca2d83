//! `ostree-build clean`: removes scratch space, trigger worktrees, package caches and kept trees, like
//! `cargo clean`; the repositories stay.

use super::ProjectArgs;
use anyhow::Result;
use ostree_build_core::ops::clean::{clean, CleanOptions};

#[derive(clap::Args)]
pub struct CleanArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print what would be removed; change nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn exec(args: CleanArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let options = CleanOptions {
        dry_run: args.dry_run,
    };
    let removed = clean(&manifest, &options)?;
    crate::output::prune::print_clean(&removed, args.dry_run, args.project.json())
}
