//! `ostree-build init [--template T] [--os-name ..] ...`: a project from a template in the
//! current folder, which may hold other files but none the template would overwrite.

use super::new::TemplateArgs;
use anyhow::Result;
use ostree_build_core::ops::new::init;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    template: TemplateArgs,
}

pub fn exec(args: InitArgs) -> Result<()> {
    let created = init(&args.template.options(PathBuf::from(".")))?;
    crate::output::new::created(&created, true);
    Ok(())
}
