//! `ostree-build build`: components -> images -> publish, doing only what changed.
//!
//! Order of effects, for atomicity: component and image commits are written as objects
//! first; the build repository's refs move together in one transaction only once every
//! component and image succeeded; then each image is copied to the export repository,
//! its delta generated, and only then its export ref moved and the summary regenerated.

use super::kept_tree::KeptTrees;
use super::plan::*;
use super::{compose, publish};
use crate::backends::Registry;
use crate::lock::ProjectLock;
use crate::manifest::Manifest;
use crate::progress::{BackendEvents, StepMeter};
use crate::repo::{
    ComposeConflict, MetaFrom, MetaValue, NewCommit, Repo, RepoKind, Snapshot, WriteStats,
};
use crate::report::{Event, Kind, Reporter, Step};
use anyhow::{anyhow, Context, Result};
use ostree_build_sdk::{EventSink, Output};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Say what would be done, do nothing.
    pub dry_run: bool,
    /// Rebuild everything regardless of input hashes.
    pub force: bool,
    /// Parallel component builds; default: available cores.
    pub jobs: Option<usize>,
    /// Only these components (a worker's job): no image is composed or published.
    pub components: Vec<String>,
    /// Only these images, and the components they are made of.
    pub images: Vec<String>,
}

/// What a build did.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    pub built: Vec<String>,
    /// Components taken from the shared cache instead of built.
    pub pulled: Vec<String>,
    pub composed: Vec<String>,
    pub published: Vec<String>,
    pub fresh: usize,
}

pub fn build(
    manifest: &Manifest,
    registry: &Registry,
    options: &BuildOptions,
    rep: &mut dyn Reporter,
) -> Result<BuildSummary> {
    let start = Instant::now();
    let lock = match options.dry_run {
        true => None,
        false => Some(ProjectLock::acquire(&manifest.state_dir(), || {
            rep.event(Event::Waiting {
                message: "waiting for another ostree-build run on this project to finish".into(),
            })
        })?),
    };
    let build_path = manifest.build_repo_path();
    let repo = match options.dry_run {
        true => Repo::open_existing(&build_path)?,
        false => Some(Repo::open_or_create(&build_path, RepoKind::Build)?),
    };
    let scratch_root = manifest.state_dir().join("work").join("components");
    let plan_options = PlanOptions {
        force: options.force,
        cache_keys: false,
    };
    let mut plan = plan(
        manifest,
        registry,
        repo.as_ref(),
        plan_options,
        &scratch_root,
    )?;
    plan.select(manifest, &options.components, &options.images)?;
    super::cache::lookup(manifest, &mut plan, options.force, rep);
    report_plan(&plan, rep);
    if options.dry_run {
        report_unpublished(manifest, &plan, rep)?;
    }
    let (Some(repo), Some(lock)) = (repo, lock) else {
        return Ok(BuildSummary::default());
    };
    compose::remove_stale_worktrees(manifest, &lock)?;
    KeptTrees::new(&manifest.state_dir()).retain(manifest.components.keys())?;
    if plan.images.iter().any(|i| manifest.images[&i.name].publish) {
        let export = Repo::open_or_create(&manifest.export_repo_path(), RepoKind::Export)?;
        export.ensure_zlib_level(manifest.publish.zlib_level.as_ref().map(|l| *l.get_ref()))?;
        // A key that cannot sign fails the build now, not after building everything.
        publish::probe_keys(manifest, &export)?;
    }
    let mut run = Builder {
        manifest,
        repo: &repo,
        lock: &lock,
        options,
        prefetch: publish::Prefetch::default(),
        new_refs: Vec::new(),
        summary: BuildSummary::default(),
    };
    let mut timer = super::PhaseTimer::start();
    let commits = run.components(&plan, rep)?;
    timer.lap("components");
    let image_commits = run.images(&plan, &commits, rep)?;
    repo.set_refs(&run.new_refs)?;
    timer.lap("compose");
    let mut summary = run.summary;
    summary.published = publish::publish(
        manifest,
        &build_path,
        &image_commits,
        run.prefetch,
        publish::WhenLocked::Wait,
        rep,
    )?;
    timer.lap("publish");
    rep.event(Event::Summary {
        built: summary.built.len(),
        pulled: summary.pulled.len(),
        composed: summary.composed.len(),
        published: summary.published.len(),
        fresh: summary.fresh,
        seconds: start.elapsed().as_secs_f64(),
        phases: timer.laps(),
    });
    Ok(summary)
}

/// One locked, non-dry-run build after planning: what it has done so far.
struct Builder<'a> {
    manifest: &'a Manifest,
    repo: &'a Repo,
    lock: &'a ProjectLock,
    options: &'a BuildOptions,
    /// The export repository receives the objects of components and unions while the rest
    /// of the build runs; its refs move only in `publish`.
    prefetch: publish::Prefetch,
    /// Build-repository refs to move together once everything succeeded.
    new_refs: Vec<(String, String)>,
    summary: BuildSummary,
}

impl Builder<'_> {
    /// Build the stale components in parallel, each in its own transaction; no ref moves.
    /// Returns every component's commit, fresh ones included.
    fn components(
        &mut self,
        plan: &BuildPlan,
        rep: &mut dyn Reporter,
    ) -> Result<BTreeMap<String, String>> {
        let mut commits = BTreeMap::new();
        for p in &plan.components {
            if let (None, Some(c)) = (&p.reason, &p.current) {
                commits.insert(p.name.clone(), c.checksum.clone());
                self.summary.fresh += 1;
            }
        }
        let todo: Vec<&ComponentPlan> = plan
            .components
            .iter()
            .filter(|p| p.reason.is_some())
            .collect();
        if todo.is_empty() {
            return Ok(commits);
        }
        let todo = self.pull_cached(plan, todo, &mut commits, rep)?;
        if todo.is_empty() {
            return Ok(commits);
        }
        self.lock.scratch("components")?;
        let (manifest, prefetch) = (self.manifest, &mut self.prefetch);
        let mut on_built = |name: &str, commit: &str| {
            prefetch_if_published(manifest, plan, prefetch, name, commit);
        };
        let built = build_components(manifest, &todo, self.options, rep, &mut on_built)?;
        for (p, commit) in built {
            commits.insert(p.name.clone(), commit.clone());
            self.new_refs.push((p.ref_name.clone(), commit));
            self.summary.built.push(p.name.clone());
        }
        Ok(commits)
    }

    /// Take the components the shared cache holds from it; returns those left to build
    /// (with the ones whose pull failed, after a warning).
    fn pull_cached<'p>(
        &mut self,
        plan: &BuildPlan,
        todo: Vec<&'p ComponentPlan>,
        commits: &mut BTreeMap<String, String>,
        rep: &mut dyn Reporter,
    ) -> Result<Vec<&'p ComponentPlan>> {
        let mut left = Vec::new();
        for p in todo {
            if p.cached.is_none() {
                left.push(p);
                continue;
            }
            let start = Instant::now();
            let metadata = component_metadata(p, &[]);
            let key = p.cache_key.as_deref().unwrap_or_default();
            match super::cache::fetch(self.manifest, self.repo, p, &metadata) {
                Ok(commit) => {
                    rep.event(Event::Pulled {
                        name: p.name.clone(),
                        commit: commit.clone(),
                        seconds: start.elapsed().as_secs_f64(),
                        detail: format!(
                            "{}; input hash {} from the cache",
                            p.reason.as_deref().unwrap_or(""),
                            key.get(..12).unwrap_or(key)
                        ),
                    });
                    let prefetch = &mut self.prefetch;
                    prefetch_if_published(self.manifest, plan, prefetch, &p.name, &commit);
                    commits.insert(p.name.clone(), commit.clone());
                    self.new_refs.push((p.ref_name.clone(), commit));
                    self.summary.pulled.push(p.name.clone());
                }
                Err(e) => {
                    rep.event(Event::Warning {
                        message: format!(
                            "component '{}' could not be taken from the cache ({e:#}); building it here",
                            p.name
                        ),
                    });
                    left.push(p);
                }
            }
        }
        Ok(left)
    }

    /// Compose every image whose input hash changed: a union in memory; with triggers, a
    /// worktree kept between builds. Returns every image's commit.
    fn images(
        &mut self,
        plan: &BuildPlan,
        commits: &BTreeMap<String, String>,
        rep: &mut dyn Reporter,
    ) -> Result<BTreeMap<String, String>> {
        let mut image_commits = BTreeMap::new();
        for ip in &plan.images {
            let section = &self.manifest.images[&ip.name];
            let inputs: Vec<(String, String)> = section
                .components
                .iter()
                .map(|c| (c.get_ref().clone(), commits[c.get_ref()].clone()))
                .collect();
            let input_hash = compose::image_input_hash(self.repo, &ip.name, section, &inputs)?;
            let fresh = ip.current.as_ref().filter(|cur| {
                !self.options.force && cur.metadata.get(META_INPUT_HASH) == Some(&input_hash)
            });
            let commit = match fresh {
                Some(cur) => {
                    self.summary.fresh += 1;
                    cur.checksum.clone()
                }
                None => self.compose(ip, &inputs, &input_hash, rep)?,
            };
            image_commits.insert(ip.name.clone(), commit);
        }
        Ok(image_commits)
    }

    /// Compose one image; its union goes to the export repository in the background while
    /// its triggers run.
    fn compose(
        &mut self,
        ip: &ImagePlan,
        inputs: &[(String, String)],
        input_hash: &str,
        rep: &mut dyn Reporter,
    ) -> Result<String> {
        let (manifest, name) = (self.manifest, &ip.name);
        let section = &manifest.images[name];
        rep.event(Event::Started {
            kind: Kind::Image,
            name: name.clone(),
        });
        let start = Instant::now();
        let job = compose::ComposeJob {
            ip,
            section,
            inputs,
            input_hash,
            force: self.options.force,
        };
        let prefetch = &mut self.prefetch;
        let mut union_ready = |union: &str| {
            if section.publish {
                // The image as published last shares all but the change with its union.
                prefetch.start(
                    &manifest.build_repo_path(),
                    &manifest.export_repo_path(),
                    union,
                    Some(manifest.image_ref(name)),
                );
            }
        };
        let mut warnings = Vec::new();
        let composed = compose::compose_image(
            manifest,
            self.repo,
            self.lock,
            &job,
            &mut union_ready,
            &mut warnings,
            rep,
        )
        .map_err(|e| {
            // Every conflict, for CI; the error message shows the first ones.
            if let Some(conflict) = e.downcast_ref::<ComposeConflict>() {
                rep.event(Event::Conflicts {
                    image: name.clone(),
                    conflicts: conflict.0.clone(),
                });
            }
            compose::conflict_error(manifest, name, e)
        });
        for w in warnings {
            rep.event(Event::Warning {
                message: format!("image '{name}': {w}"),
            });
        }
        let (commit, detail) = composed
            .with_context(|| format!("image '{name}' was not composed; no ref was changed"))?;
        let reason = ip.reason.as_deref().unwrap_or("definition changed");
        rep.event(Event::Finished {
            kind: Kind::Image,
            name: name.clone(),
            commit: commit.clone(),
            seconds: start.elapsed().as_secs_f64(),
            detail: format!("{reason}; {detail}"),
        });
        self.new_refs.push((ip.ref_name.clone(), commit.clone()));
        self.summary.composed.push(name.clone());
        Ok(commit)
    }
}

/// Start copying a new component commit into the export repository while the build goes
/// on, when an image this run composes publishes it (`build --component` composes none).
/// Its previous commit is what the export repository most likely shares with it.
fn prefetch_if_published(
    manifest: &Manifest,
    plan: &BuildPlan,
    prefetch: &mut publish::Prefetch,
    name: &str,
    commit: &str,
) {
    let published = plan.images.iter().any(|i| {
        let image = &manifest.images[&i.name];
        image.publish && image.components.iter().any(|c| c.get_ref() == name)
    });
    if !published {
        return;
    }
    let previous = plan
        .components
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.current.as_ref())
        .map(|c| c.checksum.clone());
    prefetch.start(
        &manifest.build_repo_path(),
        &manifest.export_repo_path(),
        commit,
        previous,
    );
}

fn report_plan(plan: &BuildPlan, rep: &mut dyn Reporter) {
    for p in &plan.components {
        rep.event(Event::Plan {
            kind: Kind::Component,
            name: p.name.clone(),
            action: match (&p.reason, &p.cached) {
                (None, _) => "fresh",
                (Some(_), Some(_)) => "pull",
                (Some(_), None) => "build",
            }
            .into(),
            reason: match (&p.reason, &p.cached) {
                (Some(r), Some(_)) => format!("{r}; the cache has it"),
                (Some(r), None) => r.clone(),
                (None, _) => "input hash unchanged".into(),
            },
        });
    }
    for p in &plan.images {
        rep.event(Event::Plan {
            kind: Kind::Image,
            name: p.name.clone(),
            action: if p.reason.is_some() {
                "compose"
            } else {
                "fresh"
            }
            .into(),
            reason: p
                .reason
                .clone()
                .unwrap_or_else(|| "input hash unchanged".into()),
        });
    }
}

/// For a dry run: the images that are fresh but not what the export repository serves,
/// which a build would publish (as `status` says "not published yet").
fn report_unpublished(manifest: &Manifest, plan: &BuildPlan, rep: &mut dyn Reporter) -> Result<()> {
    let export = Repo::open_existing(&manifest.export_repo_path())?;
    for ip in &plan.images {
        if ip.reason.is_some() || !manifest.images[&ip.name].publish {
            continue;
        }
        let published = match &export {
            Some(e) => e.resolve(&ip.ref_name)?,
            None => None,
        };
        if published.as_deref() != ip.current.as_ref().map(|c| c.checksum.as_str()) {
            rep.event(Event::Plan {
                kind: Kind::Publish,
                name: ip.name.clone(),
                action: "publish".into(),
                reason: "not published yet".into(),
            });
        }
    }
    Ok(())
}

/// Forwards backend events from a worker thread to the reporter on the main thread.
struct ChannelSink {
    events: BackendEvents,
    tx: mpsc::Sender<Event>,
}

impl EventSink for ChannelSink {
    fn event(&mut self, event: ostree_build_sdk::Event) {
        if let Some(e) = self.events.convert(&event) {
            let _ = self.tx.send(e);
        }
    }
}

/// Build `todo` with up to `jobs` threads, each with its own repository handle and
/// transaction. Returns the new commit of each component, or the first error.
fn build_components<'a>(
    manifest: &Manifest,
    todo: &[&'a ComponentPlan],
    options: &BuildOptions,
    rep: &mut dyn Reporter,
    on_built: &mut dyn FnMut(&str, &str),
) -> Result<Vec<(&'a ComponentPlan, String)>> {
    let jobs = options
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .clamp(1, todo.len());
    let queue = WorkQueue {
        todo,
        next: AtomicUsize::new(0),
        results: Mutex::new((0..todo.len()).map(|_| None).collect()),
        build_path: manifest.build_repo_path(),
        kept: KeptTrees::new(&manifest.state_dir()),
        stat_caches: super::dircache::cache_dir(&manifest.state_dir()),
        force: options.force,
    };
    let (tx, rx) = mpsc::channel::<Event>();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let (tx, queue) = (tx.clone(), &queue);
            s.spawn(move || queue.work(&tx));
        }
        drop(tx);
        // Events reach the reporter on this thread, as they happen.
        for event in rx {
            if let Event::Finished {
                kind: Kind::Component,
                name,
                commit,
                ..
            } = &event
            {
                on_built(name, commit);
            }
            rep.event(event);
        }
    });
    let results = queue
        .results
        .into_inner()
        .map_err(|_| anyhow!("a component build thread panicked"))?;
    let mut out = Vec::new();
    for (p, r) in todo.iter().zip(results) {
        out.push((
            *p,
            r.ok_or_else(|| anyhow!("component '{}' was not built", p.name))??,
        ));
    }
    Ok(out)
}

/// Components shared out to the build threads, and what became of each.
struct WorkQueue<'a, 'p> {
    todo: &'a [&'p ComponentPlan],
    next: AtomicUsize,
    results: Mutex<Vec<Option<Result<String>>>>,
    build_path: std::path::PathBuf,
    kept: KeptTrees,
    /// Where directory components keep their stat caches (`ops::dircache`).
    stat_caches: std::path::PathBuf,
    /// `build --force`: full imports, no cache read.
    force: bool,
}

impl WorkQueue<'_, '_> {
    /// One build thread: take the next component until none is left.
    fn work(&self, tx: &mpsc::Sender<Event>) {
        let repo = Repo::open_or_create(&self.build_path, RepoKind::Build);
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            let Some(p) = self.todo.get(i) else { break };
            let _ = tx.send(Event::Started {
                kind: Kind::Component,
                name: p.name.clone(),
            });
            let start = Instant::now();
            let res = match &repo {
                Ok(repo) => build_component(repo, p, tx, self),
                Err(e) => Err(anyhow!("{e:#}")),
            };
            let res = res.with_context(|| {
                format!("component '{}' was not built; no ref was changed", p.name)
            });
            if let Ok((commit, stats, packages)) = &res {
                let _ = tx.send(Event::Finished {
                    kind: Kind::Component,
                    name: p.name.clone(),
                    commit: commit.clone(),
                    seconds: start.elapsed().as_secs_f64(),
                    detail: built_detail(p, stats, packages),
                });
            }
            if let Ok(mut r) = self.results.lock() {
                r[i] = Some(res.map(|(c, _, _)| c));
            }
        }
    }
}

/// Why a component was built, what it wrote, and how its package list changed.
fn built_detail(p: &ComponentPlan, stats: &WriteStats, packages: &str) -> String {
    let packages = match packages {
        "" => String::new(),
        p => format!("; {p}"),
    };
    format!(
        "{}; {} objects written, {}{packages}",
        p.reason.as_deref().unwrap_or(""),
        stats.content_objects_written,
        crate::report::human_bytes(stats.content_bytes_written),
    )
}

fn build_component(
    repo: &Repo,
    p: &ComponentPlan,
    tx: &mpsc::Sender<Event>,
    queue: &WorkQueue,
) -> Result<(String, WriteStats, String)> {
    let mut sink = ChannelSink {
        events: BackendEvents::new(Kind::Component, &p.name, &p.name),
        tx: tx.clone(),
    };
    crate::fsutil::remove_tree(&p.request.root)?;
    let before = prepare_root(repo, p, &queue.kept)?;
    let output = p.backend.backend.run(&p.request, &mut sink);
    if let Some(last) = sink.events.finish() {
        let _ = tx.send(last);
    }
    let output = output.with_context(|| format!("backend '{}' failed", p.backend.info.name))?;
    p.backend.check_output(&p.request, &output)?;
    let metadata = component_metadata(p, output.packages());
    let subject = format!(
        "component {} ({} {})",
        p.name, p.backend.info.name, p.backend.info.version
    );
    let commit = NewCommit {
        parent: p.current.as_ref().map(|c| c.checksum.as_str()),
        subject: &subject,
        metadata: &metadata,
        timestamp: super::commit_time(),
    };
    let how = match (&before, &p.request.previous, &output) {
        // The previous tree, changed in place: commit what the backend touched.
        (Some(before), Some(prev), Output::Tree { root, .. }) if *root == p.request.root => {
            TreeImport::Touched {
                base: &prev.commit,
                before,
            }
        }
        _ if super::dircache::applies(p) => TreeImport::Cached(super::dircache::Cached {
            plan: p,
            dir: &queue.stat_caches,
            full: queue.force,
        }),
        _ => TreeImport::Full,
    };
    let result = import(repo, &output, how, &commit, &p.name, &mut |e| {
        let _ = tx.send(e);
    });
    let keep = match (&result, &output) {
        (Ok((commit, _)), Output::Tree { root, .. }) if p.offers_previous() => {
            (*root == p.request.root).then_some(commit)
        }
        _ => None,
    };
    // Kept for the next build to change in place; else removed. Keeping is an
    // optimisation: when it fails, the next build checks the commit out.
    let kept_now = keep.is_some_and(|c| queue.kept.keep(&p.name, c, &p.request.root).is_ok());
    if !kept_now {
        let _ = crate::fsutil::remove_tree(&p.request.root);
    }
    let packages = crate::packages::describe(
        p.current
            .as_ref()
            .map(|c| c.lists.get(META_PACKAGES).map_or(&[][..], |l| &l[..])),
        output.packages(),
    );
    result.map(|(c, stats)| (c, stats, packages))
}

/// An empty root for the backend, or, when the plan offers the component's last build, that
/// build checked out into it and the snapshot its changes are found by.
fn prepare_root(repo: &Repo, p: &ComponentPlan, kept: &KeptTrees) -> Result<Option<Snapshot>> {
    let root = &p.request.root;
    let Some(previous) = &p.request.previous else {
        std::fs::create_dir_all(root)?;
        return Ok(None);
    };
    let scratch = root.parent().unwrap_or(root);
    std::fs::create_dir_all(scratch)?;
    if !kept.take(&p.name, &previous.commit, root) {
        repo.checkout_owned(&previous.commit, root)?;
    }
    Snapshot::take(root, scratch).map(Some)
}

/// How a directory a backend produced is read into the repository.
pub(super) enum TreeImport<'a> {
    /// Every file read (libostree's directory import).
    Full,
    /// A checkout of `base` the backend changed in place after `before` was taken: only
    /// what was touched since is read.
    Touched { base: &'a str, before: &'a Snapshot },
    /// A directory component with a stat cache: only files whose stat changed are read.
    Cached(super::dircache::Cached<'a>),
}

/// Import what a backend produced as a commit, reporting the import's progress: compressed
/// bytes read of a tarball, files of a directory.
pub(super) fn import(
    repo: &Repo,
    output: &Output,
    how: TreeImport,
    commit: &NewCommit,
    name: &str,
    send: &mut dyn FnMut(Event),
) -> Result<(String, WriteStats)> {
    let unit = match output {
        Output::Tree { .. } => "files",
        Output::Archive { .. } => "bytes",
    };
    let mut meter = StepMeter::new(Kind::Component, name, Step::Import, unit);
    let mut latest = (0, None);
    let mut progress = |done: u64, total: Option<u64>| {
        latest = (done, total);
        if let Some(e) = meter.report(done, total, false) {
            send(e);
        }
    };
    let result = match (output, how) {
        (Output::Tree { root, .. }, TreeImport::Touched { base, before }) => repo
            .commit_touched(root, base, before, commit, MetaFrom::Disk)
            .map(|t| {
                progress(t.files.len() as u64, None);
                (t.commit, t.stats)
            }),
        (Output::Tree { root, .. }, TreeImport::Cached(cache)) => {
            cache.import(repo, root, commit, &mut |n| progress(n, None))
        }
        (Output::Tree { root, .. }, TreeImport::Full) => {
            repo.import_dir_with(root, commit, &mut |n| progress(n, None))
        }
        (Output::Archive { path, .. }, _) => {
            repo.import_archive_with(path, commit, &mut |n, size| progress(n, Some(size)))
        }
    };
    // The whole input was read: a tarball's last report is its size (what follows the
    // end-of-archive blocks is not always read), a directory's the files counted.
    let (done, total) = match (&result, latest) {
        (Ok(_), (_, Some(size))) => (size, Some(size)),
        (Ok(_), (files, None)) => (files, Some(files)),
        (Err(_), latest) => latest,
    };
    if let Some(e) = meter.report(done, total, true) {
        send(e);
    }
    result
}

/// The commit metadata of a built component: what built it and the hashes that decide
/// when it is fresh, its backend's fingerprint and its package list.
fn component_metadata(p: &ComponentPlan, packages: &[String]) -> Vec<(String, MetaValue)> {
    let info = &p.backend.info;
    let mut metadata: Vec<(String, MetaValue)> = [
        (META_COMPONENT, &p.name),
        (META_BACKEND, &info.name),
        (META_BACKEND_VERSION, &info.version),
        (META_INPUT_HASH, &p.input_hash),
        (META_SOURCES_HASH, &p.sources_hash),
        (META_OPTIONS_HASH, &p.options_hash),
        (
            META_OPTIONS,
            &serde_json::to_string(&p.request.options).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), MetaValue::Str(v.clone())))
    .collect();
    if let Some(key) = &p.cache_key {
        metadata.push((META_CACHE_KEY.to_string(), MetaValue::Str(key.clone())));
    }
    if !p.fingerprint.is_empty() {
        metadata.push((
            META_FINGERPRINT.to_string(),
            MetaValue::Str(p.fingerprint.clone()),
        ));
    }
    if !packages.is_empty() {
        metadata.push((
            META_PACKAGES.to_string(),
            MetaValue::StrList(packages.to_vec()),
        ));
    }
    metadata
}
