//! `ostree-build man`: the man page in roff, written by clap_mangen from the command line,
//! on stdout; `--out DIR` writes one page per command (`ostree-build.1`,
//! `ostree-build-build.1`, ...) for packagers.

use crate::output::outln;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write ostree-build.1 and one ostree-build-COMMAND.1 per command into this folder
    /// (created if absent) instead of printing the main page
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn exec(args: ManArgs) -> Result<()> {
    let mut cli = crate::Cli::command();
    cli.build();
    let Some(dir) = args.out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cli).render(&mut page)?;
        crate::output::text(&String::from_utf8_lossy(&page));
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_pages(cli, &dir)
}

/// The page of `cmd` and of each of its visible subcommands, each path printed as written.
fn write_pages(cmd: clap::Command, dir: &Path) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir)?;
    }
    let page = clap_mangen::Man::new(cmd);
    let path = dir.join(page.get_filename());
    page.generate_to(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if !crate::output::quiet() {
        outln!("{:>9} {}", "Wrote", path.display());
    }
    Ok(())
}
