//! `log` output: a header naming the ref and repository, then one compact block per
//! commit (like `git log`), or one JSON object per commit.

use super::outln;
use anyhow::Result;
use ostree_build_core::ops::log::LogEntry;
use ostree_build_core::report::human_bytes;

pub fn print(entries: &[LogEntry], json: bool) -> Result<()> {
    if json {
        for e in entries {
            outln!("{}", serde_json::to_string(e)?);
        }
        return Ok(());
    }
    let Some(first) = entries.first() else {
        return Ok(());
    };
    let mut header = match first.kind {
        "ref" => format!("{}: in the {} repository", first.ref_name, first.repository),
        kind => format!(
            "{kind} {}: {} in the {} repository",
            first.name, first.ref_name, first.repository
        ),
    };
    if first.kind == "image" && first.repository == "build" {
        header.push_str(" (not published yet)");
    }
    outln!("{header}");
    for e in entries {
        outln!("");
        for line in block(e) {
            outln!("{line}");
        }
    }
    Ok(())
}

fn block(e: &LogEntry) -> Vec<String> {
    let mut first = format!("commit {}", e.commit);
    if let Some(v) = &e.version {
        first.push_str(&format!("  version {v}"));
    }
    let mut facts = format!("  {}  size {}", e.date, human_bytes(e.size));
    if let Some(n) = e.new_size {
        facts.push_str(&format!(" ({} new)", human_bytes(n)));
    }
    if let Some(p) = e.packages {
        facts.push_str(&format!("  {p} packages"));
    }
    let mut lines = vec![first, facts];
    if !e.subject.is_empty() {
        lines.push(format!("  {}", e.subject));
    }
    if e.signatures.is_empty() {
        lines.push("  not signed".to_string());
    }
    for s in &e.signatures {
        lines.push(match &s.problem {
            None => format!("  signed by {}: verified", s.key),
            Some(p) => format!("  signed by {}: NOT verified ({p})", s.key),
        });
    }
    if let Some(p) = &e.promoted_from {
        lines.push(format!("  promoted from {p}"));
    }
    if e.history_pruned {
        lines.push("  history beyond this commit pruned".to_string());
    }
    if e.parent_in_build_repo {
        lines.push(format!(
            "  (its parent {} is still in the build repository: pruned from the export repository, or never published)",
            e.parent.as_deref().map(super::short).unwrap_or("?")
        ));
    }
    lines
}
