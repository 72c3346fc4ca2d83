//! `ostree-build plan`: the build as a job graph for a CI engine (`--format json`), or as
//! one line per job for a person.

use super::ProjectArgs;
use crate::output::events::WarningsOnly;
use anyhow::Result;
use ostree_build_core::ops::jobs::job_graph;

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// `json`: the job graph for CI engines (jobs, input hashes, dependencies, commands)
    #[arg(long, value_enum, default_value = "text")]
    format: PlanFormat,
}

pub fn exec(args: PlanArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    // Warnings (a cache that cannot be read) go to stderr: stdout stays the graph.
    let graph = job_graph(&manifest, &super::registry(), &mut WarningsOnly)?;
    match args.format {
        PlanFormat::Json => crate::output::plan::print_json(&graph),
        PlanFormat::Text => crate::output::plan::print_text(&graph),
    }
}
