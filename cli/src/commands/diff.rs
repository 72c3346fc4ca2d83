//! `ostree-build diff IMAGE [FROM [TO]]`: files, packages and download size between two
//! commits of an image's history.

use super::ProjectArgs;
use anyhow::Result;
use ostree_build_core::ops::diff::diff;

#[derive(clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The image, or a ref of the export repository
    name: String,
    /// A version, commit checksum or unique prefix (default: TO's parent)
    from: Option<String>,
    /// A version, commit checksum or unique prefix (default: the newest commit)
    to: Option<String>,
}

pub fn exec(args: DiffArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let d = diff(
        &manifest,
        &args.name,
        args.from.as_deref(),
        args.to.as_deref(),
    )?;
    crate::output::diff::print(&d, args.project.json())
}
