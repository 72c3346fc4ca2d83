//! Publishing: copying images into the `archive` export repository (in the background
//! while the build goes on, then what is left), static deltas from the previously
//! published commit, GPG signatures, the export refs and the summary with its signature.
//! Shared by `build` (which waits for another publish into the same export repository)
//! and `publish` (which fails at once); [`sign_commit`] and [`write_summary`] are the
//! entry points for other commands that move export refs.

use super::delta;
use crate::lock::ExportLock;
use crate::manifest::{DeltaWhen, Manifest};
use crate::progress::StepMeter;
use crate::repo::{Cancel, GpgKeys, Repo, RepoKind};
use crate::report::{Event, Kind, Reporter, Step};
use crate::ticker::INTERVAL;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// Copies of component and union commits into the export repository, made in the
/// background by one worker while other components import and triggers run: compressing
/// into the archive repository is the most expensive step of a cold build, and the image
/// shares nearly all its objects with them. Only an optimisation: publish copies the image
/// in any case, so failures here are ignored. Dropped on an error path, the worker is
/// cancelled and waited for.
#[derive(Default)]
pub(super) struct Prefetch {
    cancel: crate::repo::Cancel,
    queue: Option<mpsc::Sender<(String, Option<String>)>>,
    worker: Option<std::thread::JoinHandle<()>>,
    /// Objects copied so far, for the progress of [`Prefetch::finish_reporting`].
    copied: Arc<AtomicU64>,
}

impl Prefetch {
    /// Queue `commit` for copying; `base` (a ref or commit of the export repository) is
    /// what it most likely shares its directories with (see [`copy_commit`]).
    pub(super) fn start(
        &mut self,
        build: &std::path::Path,
        export: &std::path::Path,
        commit: &str,
        base: Option<String>,
    ) {
        if self.queue.is_none() {
            let (tx, rx) = mpsc::channel::<(String, Option<String>)>();
            let (build, export, cancel, copied) = (
                build.to_path_buf(),
                export.to_path_buf(),
                self.cancel.clone(),
                self.copied.clone(),
            );
            self.worker = Some(std::thread::spawn(move || {
                let Ok(Some(export)) = Repo::open_existing(&export) else {
                    return;
                };
                // One syncfs per copied component would flush the whole filesystem each
                // time; publish's own synced transactions make these objects durable
                // before any export ref moves.
                export.skip_fsync();
                for (commit, base) in rx {
                    let before = copied.load(Ordering::Relaxed);
                    let mut count = |done, _| copied.store(before + done, Ordering::Relaxed);
                    let base = base.as_deref();
                    if copy_commit(&export, &build, &commit, base, &cancel, &mut count).is_err() {
                        return;
                    }
                }
            }));
            self.queue = Some(tx);
        }
        if let Some(q) = &self.queue {
            let _ = q.send((commit.to_string(), base));
        }
    }

    fn finish(&mut self) {
        self.queue = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }

    /// [`Prefetch::finish`], reporting the objects copied as a `copy` step of publishing
    /// `name` (the images to publish) while it waits.
    fn finish_reporting(&mut self, name: &str, rep: &mut dyn Reporter) {
        self.queue = None;
        let Some(worker) = self.worker.take() else {
            return;
        };
        let mut meter =
            StepMeter::new(Kind::Publish, name, Step::Copy, "objects").item("background");
        let copied = self.copied.clone();
        let mut tick = || {
            if let Some(e) = meter.report(copied.load(Ordering::Relaxed), None, false) {
                rep.event(e)
            }
        };
        let _ = crate::ticker::ticking(INTERVAL, || worker.join(), &mut tick);
        let done = copied.load(Ordering::Relaxed);
        if let Some(e) = meter.report(done, Some(done), true) {
            rep.event(e)
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.cancel.cancel();
            self.finish();
        }
    }
}

/// How the publish step of `build` treats a publish already running into the same export
/// repository, and what the standalone `publish` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenLocked {
    /// Wait for it, saying so (`build`).
    Wait,
    /// Fail at once, changing nothing (`publish`).
    Fail,
}

/// Copy images into the export repository and sign them, write the static deltas from the
/// previously published commits (`[publish] delta`), move the refs and replace the summary
/// and its signature (with `delta-when = "after-ref"`, the deltas come last and the summary
/// is written again). Returns the images published (an image already published whose
/// commit only gained a signature is not counted).
pub(super) fn publish(
    manifest: &Manifest,
    build_path: &std::path::Path,
    image_commits: &BTreeMap<String, String>,
    mut prefetch: Prefetch,
    when_locked: WhenLocked,
    rep: &mut dyn Reporter,
) -> Result<Vec<String>> {
    let wanted: Vec<(&String, &String)> = image_commits
        .iter()
        .filter(|(name, _)| manifest.images[*name].publish)
        .collect();
    // First the background copies, then what is left.
    if prefetch.worker.is_some() {
        rep.event(Event::Log {
            name: "publish".into(),
            message: format!(
                "finishing the background copy into {}",
                manifest.export_repo_path().display()
            ),
        });
    }
    let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    prefetch.finish_reporting(&names.join(", "), rep);
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    let export = Repo::open_or_create(&manifest.export_repo_path(), RepoKind::Export)?;
    let _lock = lock_export(&export, when_locked, rep)?;
    let keys = prepare_keys(manifest, &export)?;
    export.ensure_zlib_level(manifest.publish.zlib_level.as_ref().map(|l| *l.get_ref()))?;
    let (mut staged, mut resigned) = (Vec::new(), false);
    for (name, commit) in wanted {
        match stage_one(manifest, &export, build_path, name, commit, &keys, rep)? {
            Outcome::Staged(s) => staged.push(*s),
            Outcome::Resigned => resigned = true,
            Outcome::Unchanged => {}
        }
    }
    let after_ref = manifest.publish.delta_when == DeltaWhen::AfterRef;
    if !after_ref {
        write_deltas(manifest, &export, &mut staged, rep)?;
    }
    let published = move_refs(manifest, &export, &mut staged, resigned, rep)?;
    if after_ref && write_deltas(manifest, &export, &mut staged, rep)? && manifest.publish.summary {
        // Again, so that the summary lists the deltas written since.
        write_summary(manifest, &export)?;
    }
    Ok(published)
}

/// Move the staged images' refs, then replace the summary pair if anything changed (or a
/// signature is missing from it). Returns the images published.
fn move_refs(
    manifest: &Manifest,
    export: &Repo,
    staged: &mut [Staged],
    resigned: bool,
    rep: &mut dyn Reporter,
) -> Result<Vec<String>> {
    let mut published = Vec::new();
    for s in staged {
        finish_one(export, s, rep)?;
        published.push(s.name.clone());
    }
    let keys = signing_keys(manifest);
    let resign = resigned
        || (!keys.is_empty() && !export.summary_signed_by(&keys, &keyring_path(manifest))?);
    if manifest.publish.summary && (!published.is_empty() || resign || export.summary_is_stale()?) {
        write_summary(manifest, export)?;
    }
    Ok(published)
}

/// Write the deltas the staged images want, several at once, and note each in its image's
/// summary line (after the ref moved: in a log line of its own). Returns whether any
/// delta was kept.
fn write_deltas(
    manifest: &Manifest,
    export: &Repo,
    staged: &mut [Staged],
    rep: &mut dyn Reporter,
) -> Result<bool> {
    let jobs: Vec<(usize, delta::DeltaJob)> = staged
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.delta.clone().map(|j| (i, j)))
        .collect();
    if jobs.is_empty() {
        return Ok(false);
    }
    let names: Vec<&str> = jobs.iter().map(|(i, _)| staged[*i].name.as_str()).collect();
    rep.event(Event::Log {
        name: "publish".into(),
        message: format!("writing static deltas for {}", names.join(", ")),
    });
    let pairs: Vec<delta::DeltaJob> = jobs.iter().map(|(_, j)| j.clone()).collect();
    let why = match staged.iter().any(|s| s.finished) {
        true => "the static delta was not written; the images are published without it",
        false => "the static delta was not written; no export ref was changed",
    };
    let path = export.path().to_path_buf();
    let done = with_delta_progress(export, &names.join(", "), rep, || {
        delta::write_all(manifest, &path, &pairs)
    })
    .context(why)?;
    let mut kept = false;
    for ((i, job), d) in jobs.iter().zip(done) {
        let s = &mut staged[*i];
        kept |= d.kept;
        if s.finished {
            rep.event(Event::Log {
                name: s.name.clone(),
                message: format!(
                    "{} in {:.2}s, after {} moved",
                    d.describe(&job.from),
                    d.seconds,
                    s.ref_name
                ),
            });
        } else {
            s.detail.push_str(&format!(", {}", d.describe(&job.from)));
            s.timer.record("delta", d.seconds);
        }
    }
    Ok(kept)
}

/// Take the export repository's publish lock, waiting or failing as asked.
pub(super) fn lock_export(
    export: &Repo,
    when_locked: WhenLocked,
    rep: &mut dyn Reporter,
) -> Result<ExportLock> {
    let mut say = |holder: &str| {
        rep.event(Event::Waiting {
            message: format!(
                "waiting for {holder} to finish publishing into {}",
                export.path().display()
            ),
        })
    };
    match when_locked {
        WhenLocked::Wait => ExportLock::acquire(export.path(), Some(&mut say)),
        WhenLocked::Fail => ExportLock::acquire(export.path(), None),
    }
}

/// The signing keys of the manifest, probed (before anything is copied or any ref moves)
/// and their public part exported beside the repository for clients.
pub fn prepare_keys(manifest: &Manifest, export: &Repo) -> Result<GpgKeys> {
    let keys = signing_keys(manifest);
    if !keys.is_empty() {
        export.gpg_probe(&keys)?;
        export.export_public_keys(&keys, &keyring_path(manifest))?;
    }
    Ok(keys)
}

/// Try every configured key (see `Repo::gpg_probe`) without writing anything.
pub fn probe_keys(manifest: &Manifest, export: &Repo) -> Result<()> {
    let keys = signing_keys(manifest);
    match keys.is_empty() {
        true => Ok(()),
        false => export.gpg_probe(&keys),
    }
}

/// The keys `[publish] gpg-sign` names, in `gpg-homedir`.
pub fn signing_keys(manifest: &Manifest) -> GpgKeys {
    GpgKeys {
        keys: manifest.gpg_keys(),
        homedir: manifest.gpg_homedir(),
    }
}

/// Where clients find the public keys: `<export>/<os.name>.gpg`.
pub fn keyring_path(manifest: &Manifest) -> std::path::PathBuf {
    manifest
        .export_repo_path()
        .join(format!("{}.gpg", manifest.os.name))
}

/// Sign `commit` in the export repository with every configured key that has not signed
/// it yet (after [`prepare_keys`]). Returns how many signatures were added.
pub fn sign_commit(manifest: &Manifest, export: &Repo, commit: &str) -> Result<usize> {
    let keys = signing_keys(manifest);
    if keys.is_empty() {
        return Ok(0);
    }
    export.sign_commit(commit, &keys, &keyring_path(manifest))
}

/// Replace the export repository's summary, and its signature when keys are configured,
/// together (see `repo::summary`). The caller holds the export lock.
pub fn write_summary(manifest: &Manifest, export: &Repo) -> Result<()> {
    export.write_summary_pair(&signing_keys(manifest))
}

/// What [`stage_one`] did.
enum Outcome {
    /// Copied (and signed): its ref moves in [`finish_one`].
    Staged(Box<Staged>),
    /// The published commit got signatures it lacked (and its deltas were regenerated).
    Resigned,
    Unchanged,
}

/// An image copied into the export repository whose ref has not moved yet.
struct Staged {
    name: String,
    commit: String,
    ref_name: String,
    delta: Option<delta::DeltaJob>,
    detail: String,
    timer: super::PhaseTimer,
    start: Instant,
    finished: bool,
}

/// Copy an image into the export repository and sign it; an image already published only
/// gets the signatures it lacks.
fn stage_one(
    manifest: &Manifest,
    export: &Repo,
    build_path: &std::path::Path,
    name: &str,
    commit: &str,
    keys: &GpgKeys,
    rep: &mut dyn Reporter,
) -> Result<Outcome> {
    let ref_name = manifest.image_ref(name);
    let previous = export.resolve(&ref_name)?;
    let not_published =
        || format!("image '{name}' was not published; the export ref was not changed");
    if previous.as_deref() == Some(commit) {
        return resign(manifest, export, name, commit, rep);
    }
    rep.event(Event::Started {
        kind: Kind::Publish,
        name: name.to_string(),
    });
    let start = Instant::now();
    let mut timer = super::PhaseTimer::start();
    copy(export, build_path, name, (commit, previous.as_deref()), rep)
        .with_context(not_published)?;
    timer.lap("copy");
    let mut detail = String::from("copied");
    // Signed before the delta: its superblock carries the commit's detached metadata, and
    // a client pulling through the delta takes the signatures from there.
    if !keys.is_empty() {
        sign_commit(manifest, export, commit).with_context(not_published)?;
        detail.push_str(&format!(", signed ({})", keys.keys.join(", ")));
        timer.lap("sign");
    }
    Ok(Outcome::Staged(Box::new(Staged {
        name: name.to_string(),
        commit: commit.to_string(),
        delta: delta::wanted(manifest, export, previous.as_deref(), commit)?,
        ref_name,
        detail,
        timer,
        start,
        finished: false,
    })))
}

/// Move a staged image's ref and report it published.
fn finish_one(export: &Repo, s: &mut Staged, rep: &mut dyn Reporter) -> Result<()> {
    export.set_refs(&[(s.ref_name.clone(), s.commit.clone())])?;
    s.timer.lap("ref");
    s.finished = true;
    rep.event(Event::Finished {
        kind: Kind::Publish,
        name: s.name.clone(),
        commit: s.commit.clone(),
        seconds: s.start.elapsed().as_secs_f64(),
        detail: format!("{} -> {}; {}", s.detail, s.ref_name, s.timer.report()),
    });
    Ok(())
}

/// Copy `commit` of image `name` into the export repository, reporting the objects copied.
fn copy(
    export: &Repo,
    build_path: &std::path::Path,
    name: &str,
    (commit, base): (&str, Option<&str>),
    rep: &mut dyn Reporter,
) -> Result<()> {
    let mut meter = StepMeter::new(Kind::Publish, name, Step::Copy, "objects");
    let mut latest = (0, None);
    let mut progress = |done, total| {
        latest = (done, total);
        if let Some(e) = meter.report(done, total, false) {
            rep.event(e)
        }
    };
    let result = copy_commit(
        export,
        build_path,
        commit,
        base,
        &Cancel::default(),
        &mut progress,
    );
    if let Some(e) = meter.report(latest.0, latest.1, true) {
        rep.event(e)
    }
    result
}

/// Copy `commit` from the build repository into `export`: only the objects of the
/// directories that differ from `base` (a ref or commit) when both repositories hold all
/// of it (`Repo::copy_commit_since`), else a full local pull. Either way every object
/// copied is checked against its checksum.
pub(super) fn copy_commit(
    export: &Repo,
    build_path: &std::path::Path,
    commit: &str,
    base: Option<&str>,
    cancel: &Cancel,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<()> {
    let base = base.and_then(|b| export.resolve(b).ok().flatten());
    if let (Some(base), Ok(Some(build))) = (base, Repo::open_existing(build_path)) {
        if base != commit && export.has_complete_commit(&base) && build.has_complete_commit(&base) {
            export.copy_commit_since(&build, commit, &base, &mut |n| progress(n, None))?;
            return Ok(());
        }
    }
    export.pull_commit_with(build_path, commit, cancel, progress)
}

/// Run `write` (the deltas of `names`) reporting, every tick, the time it takes and the
/// parts written so far.
fn with_delta_progress<T: Send>(
    export: &Repo,
    names: &str,
    rep: &mut dyn Reporter,
    write: impl FnOnce() -> T + Send,
) -> T {
    let mut meter = StepMeter::new(Kind::Publish, names, Step::Delta, "parts");
    let before = export.delta_parts_written();
    let mut parts = 0;
    if let Some(e) = meter.report(parts, None, false) {
        rep.event(e)
    }
    let result = crate::ticker::ticking(crate::ticker::TICK, write, &mut || {
        parts = export.delta_parts_written() - before;
        if let Some(e) = meter.report(parts, None, false) {
            rep.event(e)
        }
    });
    parts = export.delta_parts_written() - before;
    if let Some(e) = meter.report(parts, None, true) {
        rep.event(e)
    }
    result
}

/// An image already published: sign its commit with the keys that have not signed it yet,
/// and regenerate the deltas leading to it so they carry the new signatures.
fn resign(
    manifest: &Manifest,
    export: &Repo,
    name: &str,
    commit: &str,
    rep: &mut dyn Reporter,
) -> Result<Outcome> {
    let added = sign_commit(manifest, export, commit)?;
    if added == 0 {
        return Ok(Outcome::Unchanged);
    }
    let deltas = export.regenerate_deltas_to(commit)?;
    rep.event(Event::Log {
        name: name.to_string(),
        message: format!(
            "{}: added {added} signature(s) to {}, {deltas} delta(s) regenerated to carry them",
            manifest.image_ref(name),
            &commit[..12.min(commit.len())]
        ),
    });
    Ok(Outcome::Resigned)
}

/// `ostree-build publish`: (re)publish what the build repository holds for every image
/// with `publish = true`, without building. Fails at once if another publish into the
/// same export repository is running.
pub fn publish_built(manifest: &Manifest, rep: &mut dyn Reporter) -> Result<Vec<String>> {
    let build_path = manifest.build_repo_path();
    let build = Repo::open_existing(&build_path)?;
    let mut commits = BTreeMap::new();
    for (name, section) in &manifest.images {
        if !section.publish {
            continue;
        }
        let ref_name = manifest.image_ref(name);
        let commit = match &build {
            Some(b) => b.resolve(&ref_name)?,
            None => None,
        };
        let commit = commit.ok_or_else(|| {
            anyhow!(
                "image '{name}' is not built yet (no ref {ref_name} in {}); nothing was published\n  help: run ostree-build build",
                build_path.display()
            )
        })?;
        commits.insert(name.clone(), commit);
    }
    if commits.is_empty() {
        bail!(
            "no image of {} has publish = true; nothing to publish\n  help: set publish = true in an [image.NAME] section",
            manifest.path.display()
        );
    }
    publish(
        manifest,
        &build_path,
        &commits,
        Prefetch::default(),
        WhenLocked::Fail,
        rep,
    )
}
