//! `ostree-build completions SHELL`: the completion script clap_complete writes for the
//! command line (commands and their flags; backends run ad hoc are found at run time, so
//! they are not completed).

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_parser = ["bash", "zsh", "fish"])]
    shell: String,
}

pub fn exec(args: CompletionsArgs) -> Result<()> {
    let shell: Shell = args.shell.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut script = Vec::new();
    clap_complete::generate(
        shell,
        &mut crate::Cli::command(),
        "ostree-build",
        &mut script,
    );
    crate::output::text(&String::from_utf8_lossy(&script));
    Ok(())
}
