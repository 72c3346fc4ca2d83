//! `prune` and `clean` output: what goes (or would go), line by line, then the totals; as
//! JSON lines, one `prune-*` or `clean*` event each.

use super::{outln, short};
use anyhow::Result;
use ostree_build_core::ops::clean::Removed;
use ostree_build_core::ops::prune::{CommitBrief, PruneReport};
use ostree_build_core::report::human_bytes;
use serde_json::json;

pub fn print(r: &PruneReport, as_json: bool) -> Result<()> {
    if as_json {
        return print_json(r);
    }
    let verb = if r.dry_run { "Would remove" } else { "Removed" };
    for rr in &r.refs {
        outln!(
            "{:>12} {}: keeping {} commit{} ({}), removing {}{}",
            "Ref",
            rr.ref_name,
            rr.kept.len(),
            plural(rr.kept.len()),
            list(&rr.kept),
            rr.removed.len(),
            if rr.removed.is_empty() {
                String::new()
            } else {
                format!(" ({})", list(&rr.removed))
            }
        );
    }
    for d in &r.deltas {
        let from = d.from.as_deref().map(short).unwrap_or("(empty)");
        outln!("{:>12} static delta {from} -> {}", verb, short(&d.to));
    }
    for c in &r.caches {
        let (path, bytes) = (c.path.display(), human_bytes(c.bytes));
        outln!("{:>12} {path} ({bytes}): {}", verb, c.reason);
    }
    let cache_bytes: u64 = r.caches.iter().map(|c| c.bytes).sum();
    outln!(
        "{:>12} export repository: {} objects ({}), {} static delta{}; build repository: {} objects ({}); package caches: {} entr{} ({}){}",
        if r.dry_run { "Would prune" } else { "Pruned" },
        r.export.objects,
        human_bytes(r.export.bytes),
        r.deltas.len(),
        plural(r.deltas.len()),
        r.build.objects,
        human_bytes(r.build.bytes),
        r.caches.len(),
        if r.caches.len() == 1 { "y" } else { "ies" },
        human_bytes(cache_bytes),
        if r.summary_regenerated { "; summary regenerated" } else { "" }
    );
    Ok(())
}

fn print_json(r: &PruneReport) -> Result<()> {
    for rr in &r.refs {
        let mut v = serde_json::to_value(rr)?;
        v["event"] = json!("prune-ref");
        outln!("{v}");
    }
    for d in &r.deltas {
        outln!(
            "{}",
            json!({"event": "prune-delta", "from": d.from, "to": d.to})
        );
    }
    for c in &r.caches {
        let mut v = serde_json::to_value(c)?;
        v["event"] = json!("prune-cache");
        outln!("{v}");
    }
    outln!(
        "{}",
        json!({
            "event": "prune-summary",
            "dry_run": r.dry_run,
            "export": r.export,
            "build": r.build,
            "deltas": r.deltas.len(),
            "cache_entries": r.caches.len(),
            "cache_bytes": r.caches.iter().map(|c| c.bytes).sum::<u64>(),
            "summary_regenerated": r.summary_regenerated,
        })
    );
    Ok(())
}

pub fn print_clean(removed: &[Removed], dry_run: bool, as_json: bool) -> Result<()> {
    let verb = if dry_run { "Would remove" } else { "Removed" };
    for r in removed {
        if as_json {
            let mut v = serde_json::to_value(r)?;
            v["event"] = json!("clean");
            v["dry_run"] = json!(dry_run);
            outln!("{v}");
        } else {
            outln!(
                "{:>12} {} ({}, {})",
                verb,
                r.path.display(),
                r.what,
                human_bytes(r.bytes)
            );
        }
    }
    let total: u64 = removed.iter().map(|r| r.bytes).sum();
    if as_json {
        outln!(
            "{}",
            json!({"event": "clean-summary", "dry_run": dry_run, "bytes": total})
        );
    } else {
        outln!("{:>12} {} in total", verb, human_bytes(total));
    }
    Ok(())
}

fn list(commits: &[CommitBrief]) -> String {
    commits
        .iter()
        .map(|c| match &c.version {
            Some(v) => format!("{v} {}", short(&c.commit)),
            None => short(&c.commit).to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
