//! `ostree-build cache push [DEST]`: send the components built here to the shared cache.

use super::ProjectArgs;
use crate::output::events::Printer;
use anyhow::Result;
use ostree_build_core::ops::cache::{push, PushOptions};

#[derive(clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(clap::Subcommand)]
pub enum CacheAction {
    /// Send the components built here (fresh ones) to a shared cache: a path or ssh://[user@]host[:port]/path
    Push(PushArgs),
}

#[derive(clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The cache: a directory or ssh://[user@]host[:port]/path (default: [cache] push)
    dest: Option<String>,
}

impl CacheArgs {
    pub fn json(&self) -> bool {
        match &self.action {
            CacheAction::Push(a) => a.project.json(),
        }
    }
}

pub fn exec(args: CacheArgs) -> Result<()> {
    match args.action {
        CacheAction::Push(args) => exec_push(args),
    }
}

fn exec_push(args: PushArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let mut printer = Printer::new(args.project.json(), false);
    let options = PushOptions { dest: args.dest };
    let summary = push(&manifest, &super::registry(), &options, &mut printer)?;
    crate::output::cache::print_push(&summary, args.project.json())
}
