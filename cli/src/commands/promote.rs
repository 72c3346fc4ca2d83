//! `ostree-build promote IMAGE --to REF`: a published version of an image becomes the next
//! commit of a release ref (same tree, new commit), signed and in the summary like a publish.

use super::ProjectArgs;
use crate::output::{outln, short};
use anyhow::Result;
use ostree_build_core::ops::promote::{promote, PromoteOptions};

#[derive(clap::Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The image whose published history holds the version to promote
    image: String,
    /// The ref to promote to, e.g. exampleos/x86_64/stable (not a component's or image's ref)
    #[arg(long, value_name = "REF")]
    to: String,
    /// Which published version (the `version` metadata, or a commit checksum prefix);
    /// default: the newest
    #[arg(long)]
    version: Option<String>,
    /// Start the ref's history afresh: the new commit has no parent
    #[arg(long)]
    no_history: bool,
    /// The new commit's subject (default: "Promote IMAGE VERSION to REF")
    #[arg(long)]
    subject: Option<String>,
}

pub fn exec(args: PromoteArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let done = promote(
        &manifest,
        &PromoteOptions {
            image: args.image,
            to: args.to,
            version: args.version,
            no_history: args.no_history,
            subject: args.subject,
        },
    )?;
    if args.project.json() {
        outln!("{}", serde_json::to_string(&done)?);
    } else if !crate::output::quiet() {
        let version = done.version.as_deref().unwrap_or("(no version)");
        match done.changed {
            true => outln!(
                "   Promoted {} {version} ({}) -> {} at {}",
                done.image,
                short(&done.source),
                done.to,
                short(&done.commit)
            ),
            false => outln!(
                "      Fresh {} already holds {} {version} ({})",
                done.to,
                done.image,
                short(&done.source)
            ),
        }
    }
    Ok(())
}
