//! `plan` output: the job graph as one JSON document, or one line per job.

use super::outln;
use anyhow::Result;
use ostree_build_core::ops::jobs::JobGraph;

pub fn print_json(graph: &JobGraph) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(graph)?);
    Ok(())
}

pub fn print_text(graph: &JobGraph) -> Result<()> {
    for job in &graph.jobs {
        let after = match job.depends_on.is_empty() {
            true => String::new(),
            false => format!("  after {}", job.depends_on.join(", ")),
        };
        outln!(
            "{:<22} {:<8} {}  `{}`  [{}]{after}",
            job.id,
            job.state,
            super::short(&job.input_hash),
            job.command.join(" "),
            job.reason
        );
    }
    for id in &graph.cached {
        outln!("{id:<22} cached   (pulled from the cache by the build)");
    }
    if graph.jobs.is_empty() {
        outln!(
            "nothing to build: {} fresh, {} in the cache",
            graph.fresh.len(),
            graph.cached.len()
        );
    }
    Ok(())
}
