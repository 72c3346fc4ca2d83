//! `diff` output: counts first, then the paths and packages (long lists cut, with a
//! count of what was left out), then the download size; or one JSON object.

use super::{outln, short};
use anyhow::Result;
use ostree_build_core::ops::diff::{Diff, Endpoint};
use ostree_build_core::report::human_bytes;

/// Entries shown per list in human output; JSON has them all.
const SHOWN: usize = 20;

pub fn print(d: &Diff, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(d)?);
        return Ok(());
    }
    outln!(
        "{} {}: {} -> {} ({} in the {} repository)",
        d.kind,
        d.name,
        endpoint(&d.from),
        endpoint(&d.to),
        d.ref_name,
        d.repository
    );
    let f = &d.files;
    outln!(
        "files: {} added, {} removed, {} modified",
        f.added.len(),
        f.removed.len(),
        f.modified.len()
    );
    list("A", f.added.iter().cloned());
    list("D", f.removed.iter().cloned());
    list(
        "M",
        f.modified
            .iter()
            .map(|m| format!("{} ({})", m.path, m.changed.join(", "))),
    );
    let p = &d.packages;
    outln!(
        "packages: {} added, {} removed, {} changed",
        p.added.len(),
        p.removed.len(),
        p.changed.len()
    );
    list("+", p.added.iter().cloned());
    list("-", p.removed.iter().cloned());
    list(
        "~",
        p.changed.iter().map(|c| match &c.arch {
            Some(a) => format!("{}.{a} {} -> {}", c.name, c.from, c.to),
            None => format!("{} {} -> {}", c.name, c.from, c.to),
        }),
    );
    let how = match d.download.kind {
        "static-delta" => "static delta",
        _ => "no static delta; objects the newer commit adds",
    };
    outln!("download: {} ({how})", human_bytes(d.download.bytes));
    Ok(())
}

fn endpoint(e: &Endpoint) -> String {
    match &e.version {
        Some(v) => format!("{v} ({})", short(&e.commit)),
        None => short(&e.commit).to_string(),
    }
}

fn list(mark: &str, items: impl ExactSizeIterator<Item = String>) {
    let total = items.len();
    for item in items.take(SHOWN) {
        outln!("  {mark} {item}");
    }
    if total > SHOWN {
        outln!(
            "  {mark} ... and {} more (--message-format json lists all)",
            total - SHOWN
        );
    }
}
