//! `ostree-build build`: components -> images -> publish, only what changed; `--dry-run
//! --check` exits with status 3 when something would be done (for CI).

use super::ProjectArgs;
use crate::output::events::Printer;
use anyhow::Result;
use ostree_build_core::ops::build::{build, BuildOptions};

#[derive(clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print what would be rebuilt and why; change nothing
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: exit with status 3 if anything would be rebuilt, 0 if all is fresh
    #[arg(long, requires = "dry_run")]
    check: bool,
    /// Rebuild every component and image
    #[arg(long)]
    force: bool,
    /// Parallel component builds (default: number of CPUs)
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Build only this component (repeatable): a CI worker's job; no image is composed
    #[arg(long, value_name = "NAME")]
    component: Vec<String>,
    /// Compose and publish only this image (repeatable), with the components it needs
    #[arg(long, value_name = "NAME")]
    image: Vec<String>,
}

pub fn exec(args: BuildArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    crate::interrupt::on_interrupt_clean_up(manifest.state_dir());
    let options = BuildOptions {
        dry_run: args.dry_run,
        force: args.force,
        jobs: args.jobs,
        components: args.component,
        images: args.image,
    };
    let mut printer = Printer::new(args.project.json(), args.dry_run);
    build(&manifest, &super::registry(), &options, &mut printer)?;
    if args.check && printer.stale() > 0 {
        std::process::exit(super::status::EXIT_STALE);
    }
    Ok(())
}
