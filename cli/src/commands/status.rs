//! `ostree-build status`: every component and image, fresh or stale, read-only; `--check`
//! turns "something is stale" into exit status [`EXIT_STALE`] for CI.

use super::ProjectArgs;
use anyhow::Result;
use ostree_build_core::ops::status::status;

/// The exit status of `status --check` and `build --dry-run --check` when a component or
/// image is stale or missing: distinct from 1 (an error) and 2 (a usage error).
pub const EXIT_STALE: i32 = 3;

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// List the installed packages of each component and image
    #[arg(long)]
    packages: bool,
    /// Exit with status 3 if a component or image is stale or missing, 0 if all are fresh
    #[arg(long)]
    check: bool,
}

pub fn exec(args: StatusArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let mut warnings = crate::output::events::WarningsOnly;
    let units = status(&manifest, &super::registry(), &mut warnings)?;
    crate::output::status::print(&units, args.project.json(), args.packages)?;
    if args.check && units.iter().any(|u| u.state != "fresh") {
        std::process::exit(EXIT_STALE);
    }
    Ok(())
}
