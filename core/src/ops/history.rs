//! Whose history `log` and `diff` show, and walking it: an image's published history in
//! the export repository (its build repository ref until it is first published), a
//! component's in the build repository, or any other ref of the export repository named
//! in full (promotion targets). Read-only: no lock, nothing written.

use super::plan::META_VERSION;
use crate::manifest::Manifest;
use crate::repo::{CommitInfo, Repo};
use anyhow::{anyhow, Result};
use std::path::PathBuf;

/// One image's or component's history, opened.
pub struct History {
    /// "image", "component" or "ref".
    pub kind: &'static str,
    pub name: String,
    pub ref_name: String,
    /// "export" or "build": which repository holds the history shown.
    pub repository: &'static str,
    pub repo_path: PathBuf,
    pub repo: Repo,
    pub head: String,
}

/// The commits of a history, newest first.
pub struct Walk {
    pub commits: Vec<CommitInfo>,
    /// The oldest listed commit names a parent the repository no longer has (pruned).
    pub pruned: bool,
}

impl History {
    /// The history of image or component `name`.
    pub fn open(manifest: &Manifest, name: &str) -> Result<History> {
        let (kind, ref_name, places) = if manifest.images.contains_key(name) {
            let places = vec![
                ("export", manifest.export_repo_path()),
                ("build", manifest.build_repo_path()),
            ];
            ("image", manifest.image_ref(name), places)
        } else if manifest.components.contains_key(name) {
            let places = vec![("build", manifest.build_repo_path())];
            ("component", manifest.component_ref(name), places)
        } else if let Some(h) = Self::export_ref(manifest, name)? {
            return Ok(h);
        } else {
            return Err(unknown_name(manifest, name));
        };
        for (repository, path) in places {
            let Some(repo) = Repo::open_existing(&path)? else {
                continue;
            };
            if let Some(head) = repo.resolve(&ref_name)? {
                return Ok(History {
                    kind,
                    name: name.to_string(),
                    ref_name,
                    repository,
                    repo_path: path,
                    repo,
                    head,
                });
            }
        }
        Err(anyhow!(
            "{kind} '{name}' has no commits yet: ref {ref_name} is in no repository of {}\n  help: run `ostree-build build` first",
            manifest.path.display()
        ))
    }

    /// Any other ref of the export repository (a promotion target such as
    /// `exampleos/x86_64/stable`), named in full.
    fn export_ref(manifest: &Manifest, name: &str) -> Result<Option<History>> {
        let path = manifest.export_repo_path();
        let Some(repo) = Repo::open_existing(&path)? else {
            return Ok(None);
        };
        if crate::repo::check_ref(name).is_err() {
            return Ok(None);
        }
        Ok(repo.resolve(name)?.map(|head| History {
            kind: "ref",
            name: name.to_string(),
            ref_name: name.to_string(),
            repository: "export",
            repo_path: path,
            repo,
            head,
        }))
    }

    /// Up to `limit` commits from the head, following parents while they are present.
    pub fn walk(&self, limit: Option<usize>) -> Result<Walk> {
        let mut commits: Vec<CommitInfo> = Vec::new();
        let mut next = Some(self.head.clone());
        let mut pruned = false;
        while let Some(checksum) = next.take() {
            if limit.is_some_and(|n| commits.len() >= n) {
                break;
            }
            let info = self.repo.commit_info(&checksum)?;
            if let Some(parent) = &info.parent {
                // A parent seen before would be a loop: stop rather than walk forever.
                let seen = commits.iter().any(|c| &c.checksum == parent);
                if self.repo.has_commit(parent)? && !seen {
                    next = Some(parent.clone());
                } else {
                    pruned = !seen;
                }
            }
            commits.push(info);
        }
        Ok(Walk { commits, pruned })
    }

    /// "image 'standard' (ref R in the export repository P)", for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} '{}' (ref {} in the {} repository {})",
            self.kind,
            self.name,
            self.ref_name,
            self.repository,
            self.repo_path.display()
        )
    }
}

fn unknown_name(manifest: &Manifest, name: &str) -> anyhow::Error {
    let list = |names: Vec<&String>| match names.is_empty() {
        true => "none".to_string(),
        false => names
            .into_iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let known = manifest.images.keys().chain(manifest.components.keys());
    let suggestion = ostree_build_sdk::suggest::did_you_mean(name, known.map(String::as_str))
        .map(|s| format!("\n  help: did you mean '{s}'?"))
        .unwrap_or_default();
    anyhow!(
        "no image or component named '{name}' in {}, and no such ref in the export repository{suggestion}\n  help: images: {}\n  help: components: {}",
        manifest.path.display(),
        list(manifest.images.keys().collect()),
        list(manifest.components.keys().collect()),
    )
}

/// A commit time as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn utc_date(timestamp: u64) -> String {
    let (days, secs) = (timestamp / 86400, timestamp % 86400);
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The commit `rev` names in `walk`: the newest with that version, else the one
/// checksum (or unique hex prefix) it starts.
pub fn find<'w>(history: &History, walk: &'w Walk, rev: &str) -> Result<&'w CommitInfo> {
    if let Some(c) = walk
        .commits
        .iter()
        .find(|c| c.metadata.get(META_VERSION).map(String::as_str) == Some(rev))
    {
        return Ok(c);
    }
    let hex = !rev.is_empty() && rev.chars().all(|c| c.is_ascii_hexdigit());
    let matches: Vec<&CommitInfo> = walk
        .commits
        .iter()
        .filter(|c| hex && c.checksum.starts_with(&rev.to_ascii_lowercase()))
        .collect();
    match matches.len() {
        1 => Ok(matches[0]),
        0 => Err(anyhow!(
            "{} has no version or commit '{rev}' in its history\n  help: known versions, newest first: {}{}",
            history.describe(),
            known_versions(walk),
            pruned_hint(walk)
        )),
        n => Err(anyhow!(
            "'{rev}' matches {n} commits of {}\n  help: give more characters of the checksum, or a version: {}",
            history.describe(),
            known_versions(walk)
        )),
    }
}

/// The versions in `walk`, newest first, for error hints.
pub fn known_versions(walk: &Walk) -> String {
    let versions: Vec<&str> = walk
        .commits
        .iter()
        .filter_map(|c| c.metadata.get(META_VERSION).map(String::as_str))
        .collect();
    if versions.is_empty() {
        "none (no commit records a version; use checksums)".to_string()
    } else {
        versions.join(", ")
    }
}

fn pruned_hint(walk: &Walk) -> &'static str {
    if walk.pruned {
        "\n  help: history older than the last version listed was pruned"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_utc_iso() {
        assert_eq!(super::utc_date(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc_date(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc_date(1_795_815_709), "2026-11-27T21:41:49Z");
    }
}
