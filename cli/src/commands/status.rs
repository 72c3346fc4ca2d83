//! `ostree-build status`: every component and image, fresh or stale, read-only.

use super::ProjectArgs;
use anyhow::Result;
use ostree_build_core::ops::status::status;

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// List the installed packages of each component and image
    #[arg(long)]
    packages: bool,
}

pub fn exec(args: StatusArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let units = status(&manifest, &super::registry())?;
    crate::output::status::print(&units, args.project.json(), args.packages)
}
