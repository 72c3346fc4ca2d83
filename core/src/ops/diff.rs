//! `ostree-build diff IMAGE [FROM [TO]]`: what changed between two commits of an image's
//! history: files, packages, and what a client downloads to update. Read-only.

use super::history::{find, known_versions, History, Walk};
use super::plan::{META_PACKAGES, META_VERSION};
use crate::manifest::Manifest;
use crate::packages::PackageDiff;
use crate::repo::{CommitInfo, TreeDiff};
use anyhow::{anyhow, bail, Result};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Diff {
    /// "image", or "ref" for another ref of the export repository.
    pub kind: &'static str,
    pub name: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// "export" or "build".
    pub repository: &'static str,
    pub from: Endpoint,
    pub to: Endpoint,
    pub files: TreeDiff,
    pub packages: PackageDiff,
    pub download: Download,
}

#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub commit: String,
    pub version: Option<String>,
}

/// What a client updating from `from` to `to` downloads.
#[derive(Debug, Serialize)]
pub struct Download {
    /// "static-delta": the delta the export repository has (the sum of its files);
    /// "objects": no such delta, the objects `to` has that `from` lacks.
    pub kind: &'static str,
    pub bytes: u64,
}

/// Compare `from` (default: `to`'s parent) with `to` (default: the head) of image `name`
/// (or a ref of the export repository); each a version, a commit checksum or a unique
/// prefix of one.
pub fn diff(manifest: &Manifest, name: &str, from: Option<&str>, to: Option<&str>) -> Result<Diff> {
    if manifest.components.contains_key(name) && !manifest.images.contains_key(name) {
        bail!(
            "'{name}' is a component: diff compares the commits of an image\n  help: `ostree-build log {name}` shows the component's history\n  help: images: {}",
            manifest.images.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let history = History::open(manifest, name)?;
    let walk = history.walk(None)?;
    let to = match to {
        Some(rev) => find(&history, &walk, rev)?,
        None => &walk.commits[0],
    };
    let from = match from {
        Some(rev) => find(&history, &walk, rev)?,
        None => parent_in(&history, &walk, to)?,
    };
    let repo = &history.repo;
    let download = match repo.static_delta_size(&from.checksum, &to.checksum)? {
        Some(bytes) => Download {
            kind: "static-delta",
            bytes,
        },
        None => {
            let (a, b) = (repo.objects(&from.checksum)?, repo.objects(&to.checksum)?);
            Download {
                kind: "objects",
                bytes: repo.storage_size(&b, Some(&a))?,
            }
        }
    };
    let packages = |c: &CommitInfo| c.lists.get(META_PACKAGES).cloned().unwrap_or_default();
    Ok(Diff {
        kind: history.kind,
        name: history.name.clone(),
        ref_name: history.ref_name.clone(),
        repository: history.repository,
        files: repo.tree_diff(&from.checksum, &to.checksum)?,
        packages: crate::packages::diff(&packages(from), &packages(to)),
        from: endpoint(from),
        to: endpoint(to),
        download,
    })
}

fn endpoint(c: &CommitInfo) -> Endpoint {
    Endpoint {
        commit: c.checksum.clone(),
        version: c.metadata.get(META_VERSION).cloned(),
    }
}

/// The commit of the history that `rev` names: a version (the newest commit with it),
/// else a checksum or a unique prefix of one.
fn parent_in<'w>(history: &History, walk: &'w Walk, to: &CommitInfo) -> Result<&'w CommitInfo> {
    let parent = to
        .parent
        .as_deref()
        .and_then(|p| walk.commits.iter().find(|c| c.checksum == p));
    parent.ok_or_else(|| {
        let what = to.metadata.get(META_VERSION).unwrap_or(&to.checksum);
        anyhow!(
            "{what} of {} has no parent commit to compare with{}\n  help: name the commit to compare with: `ostree-build diff {} FROM [TO]`; known versions: {}",
            history.describe(),
            if to.parent.is_some() { " (pruned)" } else { "" },
            history.name,
            known_versions(walk)
        )
    })
}
