//! `ostree-build status`: every component and image with its ref, commit, version and
//! whether it is up to date, read-only.

use super::plan::{plan, PlanOptions, META_BACKEND, META_PACKAGES, META_VERSION};
use crate::backends::Registry;
use crate::manifest::Manifest;
use crate::repo::Repo;
use crate::report::Reporter;
use anyhow::Result;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct UnitStatus {
    pub kind: &'static str,
    pub name: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub commit: Option<String>,
    pub backend: Option<String>,
    pub version: Option<String>,
    /// "fresh", "stale", "missing", or "cached" (stale or missing here, and the shared
    /// cache has it: a build pulls it).
    pub state: String,
    pub reason: Option<String>,
    /// For images: the commit the export repository serves.
    pub published: Option<String>,
    /// Installed packages (`name-version.arch`) recorded in the commit, if the backend
    /// reports them; an image has those of its components.
    pub packages: Vec<String>,
}

/// Every unit's status; warnings (a cache that cannot be read) go to `rep`.
pub fn status(
    manifest: &Manifest,
    registry: &Registry,
    rep: &mut dyn Reporter,
) -> Result<Vec<UnitStatus>> {
    let repo = Repo::open_existing(&manifest.build_repo_path())?;
    let export = Repo::open_existing(&manifest.export_repo_path())?;
    let scratch = manifest.state_dir().join("work").join("components");
    let mut plan = plan(
        manifest,
        registry,
        repo.as_ref(),
        PlanOptions::default(),
        &scratch,
    )?;
    super::cache::lookup(manifest, &mut plan, false, rep);
    let mut out = Vec::new();
    for c in plan.components {
        out.push(UnitStatus {
            kind: "component",
            name: c.name,
            ref_name: c.ref_name,
            commit: c.current.as_ref().map(|i| i.checksum.clone()),
            backend: c
                .current
                .as_ref()
                .and_then(|i| i.metadata.get(META_BACKEND).cloned()),
            version: None,
            state: match c.cached {
                Some(_) => "cached".into(),
                None => state(c.current.is_some(), c.reason.is_some()),
            },
            reason: match (c.reason, &c.cached) {
                (Some(r), Some(_)) => Some(format!("{r}; the cache has it")),
                (r, _) => r,
            },
            published: None,
            packages: packages(c.current.as_ref()),
        });
    }
    for i in plan.images {
        let published = match &export {
            Some(e) => e.resolve(&i.ref_name)?,
            None => None,
        };
        let commit = i.current.as_ref().map(|c| c.checksum.clone());
        let mut reason = i.reason.clone();
        if reason.is_none()
            && commit.is_some()
            && published != commit
            && manifest.images[&i.name].publish
        {
            reason = Some("not published yet".into());
        }
        let packages = packages(i.current.as_ref());
        out.push(UnitStatus {
            kind: "image",
            packages,
            state: state(commit.is_some(), reason.is_some()),
            name: i.name,
            ref_name: i.ref_name,
            version: i
                .current
                .as_ref()
                .and_then(|c| c.metadata.get(META_VERSION).cloned()),
            commit,
            backend: None,
            reason,
            published,
        });
    }
    Ok(out)
}

fn packages(commit: Option<&crate::repo::CommitInfo>) -> Vec<String> {
    commit
        .and_then(|c| c.lists.get(META_PACKAGES).cloned())
        .unwrap_or_default()
}

fn state(exists: bool, stale: bool) -> String {
    match (exists, stale) {
        (false, _) => "missing",
        (true, true) => "stale",
        (true, false) => "fresh",
    }
    .into()
}
