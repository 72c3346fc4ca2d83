//! `ostree-build promote`: a published image version becomes a new commit on another ref
//! of the export repository (a release channel such as `exampleos/x86_64/stable`), over
//! the same tree, as the OSTree manual's "promoting content along branches" describes.

use super::delta;
use super::history::{find, History};
use super::plan::META_VERSION;
use super::publish::{prepare_keys, sign_commit, write_summary};
use crate::lock::ExportLock;
use crate::manifest::{DeltaWhen, Manifest};
use crate::repo::{CommitInfo, MetaValue, Recommit, Repo};
use anyhow::{bail, Result};
use serde::Serialize;

/// Metadata of a promoted commit: the commit it was made from, and that commit's ref.
pub const META_PROMOTED_FROM: &str = "ostree-build.promoted-from";
pub const META_PROMOTED_FROM_REF: &str = "ostree-build.promoted-from-ref";

pub struct PromoteOptions {
    pub image: String,
    /// The ref to promote to.
    pub to: String,
    /// Which published version of the image (its `version`, or a commit checksum prefix);
    /// the newest when absent.
    pub version: Option<String>,
    /// Make the new commit a root (no parent) instead of the next commit of `to`.
    pub no_history: bool,
    pub subject: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Promotion {
    pub image: String,
    #[serde(rename = "from-ref")]
    pub from_ref: String,
    /// The published commit promoted.
    pub source: String,
    pub version: Option<String>,
    #[serde(rename = "ref")]
    pub to: String,
    /// The new commit at `to` (the existing one when nothing had to change).
    pub commit: String,
    pub parent: Option<String>,
    /// False when `to` already held a promotion of the same commit.
    pub changed: bool,
}

pub fn promote(manifest: &Manifest, opts: &PromoteOptions) -> Result<Promotion> {
    manifest.image(&opts.image)?;
    check_target(manifest, &opts.to)?;
    let from_ref = manifest.image_ref(&opts.image);
    let (export, source) = pick(manifest, opts)?;
    let version = source.metadata.get(META_VERSION).cloned();
    let _lock = ExportLock::acquire(export.path(), None)?;
    prepare_keys(manifest, &export)?;
    let current = export.resolve(&opts.to)?;
    let mut done = Promotion {
        image: opts.image.clone(),
        from_ref,
        source: source.checksum.clone(),
        version,
        to: opts.to.clone(),
        commit: String::new(),
        parent: None,
        changed: false,
    };
    match current.as_deref() {
        Some(c) if already_promoted(&export, c, &source)? => {
            done.commit = c.to_string();
            resign(manifest, &export, c)?;
        }
        _ => {
            done.parent = current.filter(|_| !opts.no_history);
            done.commit = write_promotion(&export, opts, &done)?;
            done.changed = true;
            move_ref(manifest, &export, &done)?;
        }
    }
    Ok(done)
}

/// Sign the new commit, write the delta from the ref's previous commit, move the ref and
/// replace the summary, in that order (a delta's superblock carries the commit's
/// signatures, and clients see the ref only once both exist); with `delta-when =
/// "after-ref"` the delta comes last, and the summary is written again.
fn move_ref(manifest: &Manifest, export: &Repo, done: &Promotion) -> Result<()> {
    sign_commit(manifest, export, &done.commit)?;
    let job = delta::wanted(manifest, export, done.parent.as_deref(), &done.commit)?;
    let jobs: Vec<_> = job.into_iter().collect();
    let after_ref = manifest.publish.delta_when == DeltaWhen::AfterRef;
    if !after_ref {
        delta::write_all(manifest, export.path(), &jobs)?;
    }
    export.set_refs(&[(done.to.clone(), done.commit.clone())])?;
    if manifest.publish.summary {
        write_summary(manifest, export)?;
    }
    if after_ref && !jobs.is_empty() {
        let kept = delta::write_all(manifest, export.path(), &jobs)?;
        if manifest.publish.summary && kept.iter().any(|d| d.kept) {
            write_summary(manifest, export)?;
        }
    }
    Ok(())
}

/// A promotion already in place gets the signatures of keys added since, as publish does.
fn resign(manifest: &Manifest, export: &Repo, commit: &str) -> Result<()> {
    if sign_commit(manifest, export, commit)? > 0 {
        export.regenerate_deltas_to(commit)?;
        write_summary(manifest, export)?;
    }
    Ok(())
}

/// `to` must be a valid ref that the build does not write: promoting onto a component's
/// or an image's ref would be undone (or break) at the next build.
fn check_target(manifest: &Manifest, to: &str) -> Result<()> {
    if let Err(e) = crate::repo::check_ref(to) {
        bail!(
            "'{to}' is not a valid ref: {e}\n  help: refs look like {}/stable",
            manifest.ref_prefix()
        );
    }
    let help = format!(
        "help: promote to a release ref of its own, such as {}/stable",
        manifest.ref_prefix()
    );
    if let Some(c) = manifest
        .components
        .keys()
        .find(|c| manifest.component_ref(c) == to)
    {
        bail!("cannot promote to {to}: it is component '{c}''s ref, which builds write\n  {help}");
    }
    if to.starts_with(&format!("{}/components/", manifest.ref_prefix())) {
        bail!(
            "cannot promote to {to}: refs under {}/components/ are components' refs\n  {help}",
            manifest.ref_prefix()
        );
    }
    if let Some(i) = manifest.images.keys().find(|i| manifest.image_ref(i) == to) {
        bail!("cannot promote to {to}: it is image '{i}''s ref, which builds and publishes write\n  {help}");
    }
    Ok(())
}

/// The published commit asked for (a version or checksum prefix, else the newest), from
/// the image's history in the export repository.
fn pick(manifest: &Manifest, opts: &PromoteOptions) -> Result<(Repo, CommitInfo)> {
    let history = History::open(manifest, &opts.image)?;
    if history.repository != "export" {
        bail!(
            "image '{}' is not published: {} has no ref {}\n  help: run `ostree-build publish` (or `build`) first",
            opts.image,
            manifest.export_repo_path().display(),
            history.ref_name
        );
    }
    let walk = history.walk(None)?;
    let source = match &opts.version {
        Some(rev) => find(&history, &walk, rev)?.clone(),
        None => walk.commits[0].clone(),
    };
    Ok((history.repo, source))
}

/// Whether `current` (the target ref's commit) is already a promotion of `source`.
fn already_promoted(export: &Repo, current: &str, source: &CommitInfo) -> Result<bool> {
    let info = export.commit_info(current)?;
    Ok(info.tree == source.tree && info.metadata.get(META_PROMOTED_FROM) == Some(&source.checksum))
}

fn write_promotion(export: &Repo, opts: &PromoteOptions, p: &Promotion) -> Result<String> {
    let subject = opts.subject.clone().unwrap_or_else(|| match &p.version {
        Some(v) => format!("Promote {} {v} to {}", opts.image, p.to),
        None => format!("Promote {} {} to {}", opts.image, &p.source[..12], p.to),
    });
    let extra = [
        (
            META_PROMOTED_FROM.to_string(),
            MetaValue::Str(p.source.clone()),
        ),
        (
            META_PROMOTED_FROM_REF.to_string(),
            MetaValue::Str(p.from_ref.clone()),
        ),
    ];
    export.recommit(
        &p.source,
        &Recommit {
            parent: p.parent.as_deref(),
            subject: &subject,
            extra: &extra,
            timestamp: super::commit_time(),
        },
    )
}
