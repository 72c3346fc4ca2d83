//! `ostree-build help [TOPIC]`: a command's help, a backend's options, or the built-in
//! triggers.

use crate::output::outln;
use anyhow::Result;
use clap::CommandFactory;
use ostree_build_core::backends::{run_external, Resolved};

#[derive(clap::Args)]
pub struct HelpArgs {
    /// A command, a backend, or `triggers`
    topic: Option<String>,
}

pub fn exec(args: HelpArgs) -> Result<()> {
    let mut cli = crate::Cli::command();
    let Some(topic) = args.topic else {
        outln!("{}", cli.render_help());
        return Ok(());
    };
    if let Some(sub) = cli.find_subcommand_mut(&topic) {
        outln!("{}", sub.render_help());
        return Ok(());
    }
    if topic == "triggers" {
        crate::output::backends::triggers_help();
        return Ok(());
    }
    let registry = super::registry();
    if !registry.knows(&topic) {
        return Err(super::external::unknown(&registry, &topic, &["triggers"]));
    }
    match registry.resolve(&topic)? {
        Resolved::Backend(found) => {
            outln!("{}", super::external::adhoc_command(&found).render_help());
        }
        Resolved::Command(c) => std::process::exit(run_external(&c, &["--help".into()])?),
    }
    Ok(())
}
