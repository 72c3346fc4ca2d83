//! `ostree-build log NAME`: the history of an image (as published) or a component.

use super::ProjectArgs;
use anyhow::Result;
use ostree_build_core::ops::log::log;

#[derive(clap::Args)]
pub struct LogArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// An image (its published history), a component (its build history), or any ref of
    /// the export repository (e.g. a promotion target)
    name: String,
    /// Show at most N commits, newest first
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    max_count: Option<usize>,
}

pub fn exec(args: LogArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let entries = log(&manifest, &args.name, args.max_count)?;
    crate::output::log::print(&entries, args.project.json())
}
