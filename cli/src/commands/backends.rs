//! `ostree-build backends`: every backend found, where it came from, and what shadows what.

use super::MessageFormat;
use anyhow::Result;

#[derive(clap::Args)]
pub struct BackendsArgs {
    /// Output for people or JSON lines for CI
    #[arg(long, value_enum, default_value = "human")]
    pub message_format: MessageFormat,
}

pub fn exec(args: BackendsArgs) -> Result<()> {
    let registry = super::registry();
    crate::output::backends::list(&registry, args.message_format == MessageFormat::Json);
    Ok(())
}
