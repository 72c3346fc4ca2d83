//! `ostree-build publish`: (re)publish what the build repository holds, without building:
//! copy, deltas, signatures, refs, summary and its signature.

use super::ProjectArgs;
use crate::output::events::Printer;
use anyhow::Result;
use ostree_build_core::ops::publish::publish_built;

#[derive(clap::Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn exec(args: PublishArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let mut printer = Printer::new(args.project.json(), false);
    let published = publish_built(&manifest, &mut printer)?;
    if !args.project.json() && published.is_empty() {
        println!(
            "no new commit to publish into {}",
            manifest.export_repo_path().display()
        );
    }
    Ok(())
}
