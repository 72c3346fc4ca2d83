//! The shared component cache: an OSTree `archive` repository holding built components
//! under refs named by their cache key (`ostree-build/cache/<key>`), served over HTTP like
//! any published repository. Readers (`lookup`, `fetch`) ask its summary which stale
//! components it holds and pull them instead of building; workers send what they built
//! with `push`. Every failure to read the cache is a warning: the component is built here.

mod push;
mod ssh;

pub use push::{push, PushOptions, PushSummary};

use super::plan::{BuildPlan, ComponentPlan, META_CACHE_KEY};
use super::publish::signing_keys;
use crate::manifest::Manifest;
use crate::repo::{MetaValue, Recommit, RemoteRead, RemoteSpec, Repo};
use crate::report::{Event, Reporter};
use anyhow::Result;
use std::path::PathBuf;

/// The remote the build repository knows the cache by.
const REMOTE: &str = "ostree-build-cache";
/// Where a component's commit sits in the cache, by cache key.
pub const REF_PREFIX: &str = "ostree-build/cache/";
/// In a component commit taken from the cache: the cache's commit it was made from.
pub const META_FROM_CACHE: &str = "ostree-build.from-cache";

/// The cache ref of a component with cache key `key`.
pub fn cache_ref(key: &str) -> String {
    format!("{REF_PREFIX}{key}")
}

/// Mark each stale component the cache holds (`ComponentPlan::cached`). Without `[cache]
/// url`, or under `force`, nothing is asked. A cache that cannot be read is a warning.
pub fn lookup(manifest: &Manifest, plan: &mut BuildPlan, force: bool, rep: &mut dyn Reporter) {
    let Some(url) = manifest.cache_url() else {
        return;
    };
    let wanted = |p: &ComponentPlan| p.reason.is_some() && p.cache_key.is_some();
    if force || !plan.components.iter().any(wanted) {
        return;
    }
    let refs = Repo::open_or_create(&manifest.build_repo_path(), crate::repo::RepoKind::Build)
        .and_then(|repo| {
            configure(manifest, &repo).and_then(|_| repo.remote_refs(&read(manifest)))
        });
    let refs = match refs {
        Ok(refs) => refs,
        Err(e) => {
            rep.event(Event::Warning {
                message: format!(
                    "the component cache {url} cannot be read ({e:#}); stale components are built here"
                ),
            });
            return;
        }
    };
    for p in plan.components.iter_mut().filter(|p| wanted(p)) {
        let key = p.cache_key.as_deref().unwrap_or_default();
        p.cached = refs.get(&cache_ref(key)).cloned();
    }
}

fn read(manifest: &Manifest) -> RemoteRead<'static> {
    RemoteRead {
        name: REMOTE,
        stall: manifest.cache.stall_limit(),
    }
}

/// Configure the cache as a remote of the build repository `repo` (with signing keys,
/// their public half is the keyring every cache commit must be signed by).
fn configure(manifest: &Manifest, repo: &Repo) -> Result<()> {
    let keyring = cache_keyring(manifest, repo)?;
    let spec = RemoteSpec {
        url: manifest.cache_url().unwrap_or_default(),
        keyring: keyring.as_deref(),
    };
    repo.configure_remote(REMOTE, &spec)
}

/// With `[publish] gpg-sign`, the public keys cache commits are checked against.
pub(super) fn cache_keyring(manifest: &Manifest, repo: &Repo) -> Result<Option<PathBuf>> {
    let keys = signing_keys(manifest);
    if keys.is_empty() {
        return Ok(None);
    }
    let path = manifest.state_dir().join("cache-keyring.gpg");
    std::fs::create_dir_all(manifest.state_dir())?;
    repo.export_public_keys(&keys, &path)?;
    Ok(Some(path))
}

/// Take component `p` from the cache into `repo`: pull the cache's commit (checked), then
/// commit its tree again as this project's commit of the component, with this machine's
/// freshness metadata, so the next plan finds it fresh. Returns the new commit. The remote
/// is the one `lookup` configured (on disk: the pull reads it on a handle of its own).
pub fn fetch(
    manifest: &Manifest,
    repo: &Repo,
    p: &ComponentPlan,
    metadata: &[(String, MetaValue)],
) -> Result<String> {
    let cached = p.cached.as_deref().unwrap_or_default();
    repo.pull_remote_commit(&read(manifest), cached)?;
    // A commit (signed or not) recorded for another input hash is not this component.
    let key = p.cache_key.as_deref().unwrap_or_default();
    let recorded = repo
        .commit_info(cached)?
        .metadata
        .get(META_CACHE_KEY)
        .cloned();
    if recorded.as_deref() != Some(key) {
        anyhow::bail!(
            "the cache's commit {cached} records input hash {}, not {key}",
            recorded.as_deref().unwrap_or("none")
        );
    }
    let mut extra = metadata.to_vec();
    extra.push((
        META_FROM_CACHE.to_string(),
        MetaValue::Str(cached.to_string()),
    ));
    let subject = format!(
        "component {} ({} {}, from the cache)",
        p.name, p.backend.info.name, p.backend.info.version
    );
    repo.recommit(
        cached,
        &Recommit {
            parent: p.current.as_ref().map(|c| c.checksum.as_str()),
            subject: &subject,
            extra: &extra,
            timestamp: super::commit_time(),
        },
    )
}
