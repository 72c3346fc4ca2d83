//! The `ostree-build` command line: argument parsing and output only. Each command lives in
//! `commands/` and calls into `ostree_build_core`; `output` does the printing; `builtins`
//! hands the first-party backends to the core's registry.

mod builtins;
mod commands;
mod interrupt;
mod output;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "ostree-build",
    version,
    about = "Build OS trees into OSTree repositories from one manifest",
    allow_external_subcommands = true,
    disable_help_subcommand = true,
    after_help = "Any backend also runs as a subcommand: ostree-build <backend> --branch BRANCH [--OPTION VALUE]...\nSee `ostree-build backends` and `ostree-build help <backend>`."
)]
pub(crate) struct Cli {
    /// More detail in errors (-vv: abi_stable's full report when a plugin does not load)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No status lines (Building, Fresh, Finished...); warnings, errors and answers stay
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: commands::Command,
}

fn main() {
    let cli = Cli::parse();
    if cli.verbose >= 2 {
        // Read by the plugin loader in core.
        std::env::set_var("OSTREE_BUILD_PLUGIN_DEBUG", "1");
    }
    output::set_quiet(cli.quiet);
    let json = cli.command.json();
    if let Err(e) = cli.command.exec() {
        output::error(&e, json);
        std::process::exit(1);
    }
}
