//! `cache push` output: what was sent, what the cache had, what was not sent and why.

use super::outln;
use anyhow::Result;
use ostree_build_core::ops::cache::PushSummary;

pub fn print_push(summary: &PushSummary, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(summary)?);
        return Ok(());
    }
    for (name, key) in &summary.pushed {
        status_line(
            "Pushed",
            &format!("component {name} (input hash {})", super::short(key)),
        );
    }
    for name in &summary.present {
        status_line(
            "Present",
            &format!("component {name}: the cache has it already"),
        );
    }
    for (name, why) in &summary.skipped {
        status_line("Skipped", &format!("component {name}: {why}"));
    }
    status_line(
        "Finished",
        &format!(
            "{} pushed, {} already there, {} skipped: {}",
            summary.pushed.len(),
            summary.present.len(),
            summary.skipped.len(),
            summary.dest
        ),
    );
    Ok(())
}

/// A cargo-style status line (hidden by `-q`, like every status line).
fn status_line(verb: &str, text: &str) {
    if !super::quiet() {
        super::line(&format!("{verb:>9} {text}"));
    }
}
