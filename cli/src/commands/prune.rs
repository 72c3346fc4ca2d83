//! `ostree-build prune`: retention for published refs, their deltas and objects, the build
//! repository's unreferenced objects and old package-cache entries.

use super::ProjectArgs;
use crate::output::events::Printer;
use anyhow::Result;
use ostree_build_core::ops::prune::{prune, PruneOptions};

#[derive(clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Keep the newest N commits of each published image ref (overrides [retention])
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Keep the commits younger than AGE, e.g. 30d (units s, m, h, d, w; overrides [retention])
    #[arg(long, value_name = "AGE")]
    keep_younger_than: Option<String>,
    /// Print exactly what would be removed; change nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn exec(args: PruneArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let options = PruneOptions {
        keep: args.keep,
        keep_younger_than: args.keep_younger_than,
        dry_run: args.dry_run,
    };
    let mut printer = Printer::new(args.project.json(), args.dry_run);
    let report = prune(&manifest, &options, &mut printer)?;
    crate::output::prune::print(&report, args.project.json())
}
