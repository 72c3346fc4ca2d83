//! `cache push`: send this project's built components to a shared cache, each under its
//! cache key. Objects go first, then the refs, then the summary, so a reader never sees a
//! ref whose objects are missing; refs and summary are written under the cache's lock, so
//! pushes of different components never lose each other's refs. The first commit pushed
//! for a key stays: a reader that already took it keeps seeing the same one.

use super::{cache_ref, ssh};
use crate::backends::Registry;
use crate::cache_config::{parse_dest, PushDest};
use crate::lock::{ExportLock, ProjectLock};
use crate::manifest::Manifest;
use crate::ops::plan::META_CACHE_KEY;
use crate::ops::plan::{plan, PlanOptions};
use crate::ops::publish::signing_keys;
use crate::repo::{MetaValue, Recommit, Repo, RepoKind};
use crate::report::{Event, Reporter};
use anyhow::{anyhow, Result};

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// A path or `ssh://host/path`; `None`: `[cache] push`.
    pub dest: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushSummary {
    pub dest: String,
    /// Components sent, with their cache keys.
    pub pushed: Vec<(String, String)>,
    /// Components the cache had already.
    pub present: Vec<String>,
    /// Components not sent, and why (not built here, or stale).
    pub skipped: Vec<(String, String)>,
}

/// Components not sent, each with why.
type NotSent = Vec<(String, String)>;

/// One component to send: its name, cache key and commit in the build repository.
pub(super) struct Item {
    pub name: String,
    pub key: String,
    pub commit: String,
}

pub fn push(
    manifest: &Manifest,
    registry: &Registry,
    options: &PushOptions,
    rep: &mut dyn Reporter,
) -> Result<PushSummary> {
    let dest = destination(manifest, options)?;
    let _lock = ProjectLock::acquire_keeping_scratch(&manifest.state_dir(), || {
        rep.event(Event::Waiting {
            message: "waiting for another ostree-build run on this project to finish".into(),
        })
    })?;
    let repo = Repo::open_existing(&manifest.build_repo_path())?.ok_or_else(|| {
        anyhow!(
            "nothing is built in {} yet; nothing was pushed\n  help: run `ostree-build build` (or `build --component NAME`) first",
            manifest.build_repo_path().display()
        )
    })?;
    let (items, skipped) = pushable(manifest, registry, &repo)?;
    if items.is_empty() {
        let why: Vec<String> = skipped.iter().map(|(n, w)| format!("{n}: {w}")).collect();
        return Err(anyhow!(
            "nothing to push to {dest}: no component is built and fresh here ({}); nothing was pushed\n  help: build one first (`ostree-build build --component NAME`)",
            why.join("; ")
        ));
    }
    let keys = signing_keys(manifest);
    if !keys.is_empty() {
        // A key that cannot sign fails before anything is sent.
        repo.gpg_probe(&keys)?;
    }
    let (pushed, present) = match &dest {
        PushDest::Path(path) => push_local(manifest, &repo, path, &items, rep)?,
        PushDest::Ssh(ssh) => ssh::push(manifest, &repo, ssh, &items, rep)?,
    };
    Ok(PushSummary {
        dest: dest.to_string(),
        pushed: pushed
            .iter()
            .map(|i| (i.name.clone(), i.key.clone()))
            .collect(),
        present,
        skipped,
    })
}

fn destination(manifest: &Manifest, options: &PushOptions) -> Result<PushDest> {
    let text = match (&options.dest, &manifest.cache.push) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.get_ref().clone(),
        (None, None) => {
            return Err(anyhow!(
                "no cache to push to\n  help: give one (`ostree-build cache push DEST`, {}), or set [cache] push in {}",
                crate::cache_config::DEST_HINT,
                manifest.path.display()
            ))
        }
    };
    let cwd = std::env::current_dir()?;
    let base = if options.dest.is_some() {
        &cwd
    } else {
        &manifest.dir
    };
    parse_dest(&text, base).map_err(|e| anyhow!("{e}\n  help: {}", crate::cache_config::DEST_HINT))
}

/// The components built here and fresh (their commit is what their inputs give now), and
/// the others with why they are not sent.
fn pushable(manifest: &Manifest, registry: &Registry, repo: &Repo) -> Result<(Vec<Item>, NotSent)> {
    let scratch = manifest.state_dir().join("work").join("components");
    let options = PlanOptions {
        force: false,
        cache_keys: true,
    };
    let plan = plan(manifest, registry, Some(repo), options, &scratch)?;
    let (mut items, mut skipped) = (Vec::new(), Vec::new());
    for p in plan.components {
        match (&p.current, &p.reason, p.cache_key) {
            (Some(current), None, Some(key)) => items.push(Item {
                commit: bound_to_key(repo, current, &key)?,
                name: p.name,
                key,
            }),
            (None, _, _) => skipped.push((p.name, "not built here".to_string())),
            (_, reason, _) => skipped.push((
                p.name,
                format!("stale here ({})", reason.as_deref().unwrap_or("?")),
            )),
        }
    }
    Ok((items, skipped))
}

/// The commit to send for `current` under `key`: itself when it records the key (every
/// component built or pulled with a cache configured does), else the same tree committed
/// again with the key added, the rest kept (same parent, subject and time, so the same
/// commit at every push). Readers refuse a cache commit that does not record the key they
/// asked for, so a signed commit cannot be replayed under another input hash.
fn bound_to_key(repo: &Repo, current: &crate::repo::CommitInfo, key: &str) -> Result<String> {
    if current.metadata.get(META_CACHE_KEY).map(String::as_str) == Some(key) {
        return Ok(current.checksum.clone());
    }
    repo.recommit(
        &current.checksum,
        &Recommit {
            parent: current.parent.as_deref(),
            subject: &current.subject,
            extra: &[(META_CACHE_KEY.to_string(), MetaValue::Str(key.to_string()))],
            timestamp: current.timestamp,
        },
    )
}

/// Push into a repository on this machine (created as `archive` when missing).
fn push_local<'a>(
    manifest: &Manifest,
    repo: &Repo,
    dest: &std::path::Path,
    items: &'a [Item],
    rep: &mut dyn Reporter,
) -> Result<(Vec<&'a Item>, Vec<String>)> {
    let cache = open_cache(dest)?;
    let (mut new, mut present) = (Vec::new(), Vec::new());
    for item in items {
        if cache.resolve(&cache_ref(&item.key))?.is_some() {
            present.push(item.name.clone());
            continue;
        }
        new.push(item);
    }
    if new.is_empty() {
        return Ok((new, present));
    }
    send_objects(manifest, repo, &cache, &new)?;
    let _lock = ExportLock::acquire(
        dest,
        Some(&mut |holder: &str| {
            rep.event(Event::Waiting {
                message: format!("waiting for {holder} to finish writing the cache"),
            })
        }),
    )?;
    // Another worker may have pushed the same key meanwhile: the first one stays.
    let mut refs = Vec::new();
    let mut won = Vec::new();
    for item in new {
        match cache.resolve(&cache_ref(&item.key))? {
            Some(_) => present.push(item.name.clone()),
            None => {
                refs.push((cache_ref(&item.key), item.commit.clone()));
                won.push(item);
            }
        }
    }
    cache.set_refs(&refs)?;
    cache.regenerate_summary()?;
    Ok((won, present))
}

/// The cache repository at `dest`: an existing `archive` repository, or a new one in a
/// missing or empty directory. Anything else is refused before anything is written.
fn open_cache(dest: &std::path::Path) -> Result<Repo> {
    let refuse = |why: &str| {
        anyhow!(
            "cache {}: {why}; nothing was pushed\n  help: push to an archive repository (served over HTTP), or to a missing or empty directory",
            dest.display()
        )
    };
    match Repo::open_existing(dest)? {
        Some(repo) if repo.is_archive() => return Ok(repo),
        Some(_) => return Err(refuse("is an OSTree repository, but not an archive one")),
        None => {}
    }
    let empty = std::fs::read_dir(dest).map_or(true, |mut d| d.next().is_none());
    if !empty {
        return Err(refuse(
            "is a directory with other files, not an OSTree repository",
        ));
    }
    Repo::open_or_create(dest, RepoKind::Export)
}

/// Copy components' commits and objects into the `archive` repository `cache` (each
/// object checksummed on the way), and sign them there when keys are configured.
pub(super) fn send_objects(
    manifest: &Manifest,
    repo: &Repo,
    cache: &Repo,
    items: &[&Item],
) -> Result<()> {
    let keyring = super::cache_keyring(manifest, cache)?;
    for item in items {
        cache
            .pull_commit_from(repo.path(), &item.commit)
            .map_err(|e| {
                anyhow!(
                    "component '{}': {e:#}; nothing of it was made visible in the cache",
                    item.name
                )
            })?;
        if let Some(keyring) = &keyring {
            cache.sign_commit(&item.commit, &signing_keys(manifest), keyring)?;
        }
    }
    Ok(())
}
