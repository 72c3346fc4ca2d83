//! `status` output: one line per component and image, or one JSON object per line. Under
//! `-q`, lines only for what is not fresh.

use super::{outln, short};
use anyhow::Result;
use ostree_build_core::ops::status::UnitStatus;

pub fn print(units: &[UnitStatus], json: bool, packages: bool) -> Result<()> {
    for u in units {
        if json {
            outln!("{}", serde_json::to_string(u)?);
            continue;
        }
        if super::quiet() && u.state == "fresh" {
            continue;
        }
        outln!("{}", status_line(u));
        if packages {
            for p in &u.packages {
                outln!("    {p}");
            }
        }
    }
    Ok(())
}

fn status_line(u: &UnitStatus) -> String {
    let commit = u.commit.as_deref().map(short).unwrap_or("-");
    let mut line = format!(
        "{:<9} {:<20} {:<7} {:<12} {}",
        u.kind, u.name, u.state, commit, u.ref_name
    );
    if let Some(v) = &u.version {
        line.push_str(&format!("  version {v}"));
    }
    if let Some(b) = &u.backend {
        line.push_str(&format!("  ({b})"));
    }
    if !u.packages.is_empty() {
        line.push_str(&format!("  {} packages", u.packages.len()));
    }
    if let Some(r) = &u.reason {
        line.push_str(&format!("  [{r}]"));
    }
    if u.kind == "image" {
        line.push_str(&format!(
            "  published: {}",
            u.published.as_deref().map(short).unwrap_or("no")
        ));
    }
    line
}
