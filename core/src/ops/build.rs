//! `ostree-build build`: components -> images -> publish, doing only what changed.
//!
//! Order of effects, for atomicity: component and image commits are written as objects
//! first; the build repository's refs move together in one transaction only once every
//! component and image succeeded; then each image is copied to the export repository,
//! its delta generated, and only then its export ref moved and the summary regenerated.

use super::plan::*;
use super::{compose, publish};
use crate::backends::Registry;
use crate::lock::ProjectLock;
use crate::manifest::Manifest;
use crate::repo::{MetaValue, NewCommit, Repo, RepoKind, WriteStats};
use crate::report::{Event, Kind, Reporter};
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
}

/// What a build did.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    pub built: Vec<String>,
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
    let mut phases = Vec::new();
    let lock = if options.dry_run {
        None
    } else {
        Some(ProjectLock::acquire(&manifest.state_dir(), || {
            rep.event(Event::Waiting {
                message: "waiting for another ostree-build run on this project to finish".into(),
            })
        })?)
    };
    let build_path = manifest.build_repo_path();
    let repo = if options.dry_run {
        Repo::open_existing(&build_path)?
    } else {
        Some(Repo::open_or_create(&build_path, RepoKind::Build)?)
    };
    let scratch_root = manifest.state_dir().join("work").join("components");
    let plan = plan(
        manifest,
        registry,
        repo.as_ref(),
        options.force,
        &scratch_root,
    )?;
    report_plan(&plan, rep);
    let mut summary = BuildSummary::default();
    let (Some(repo), Some(lock)) = (repo, lock) else {
        return Ok(summary);
    };
    compose::remove_stale_worktrees(manifest, &lock)?;

    // The export repository receives the objects of components and unions while the rest
    // of the build runs (see `Prefetch`); its refs move only in `publish`.
    let mut prefetch = publish::Prefetch::default();
    let published = |component: &str| {
        manifest
            .images
            .values()
            .any(|i| i.publish && i.components.iter().any(|c| c.get_ref() == component))
    };
    if manifest.images.values().any(|i| i.publish) {
        Repo::open_or_create(&manifest.export_repo_path(), RepoKind::Export)?
            .ensure_zlib_level(manifest.publish.zlib_level.as_ref().map(|l| *l.get_ref()))?;
    }

    // Components, in parallel, each in its own transaction; no ref moves yet.
    let t = Instant::now();
    let mut commits: BTreeMap<String, String> = BTreeMap::new();
    let mut new_refs: Vec<(String, String)> = Vec::new();
    for p in &plan.components {
        if let (None, Some(c)) = (&p.reason, &p.current) {
            commits.insert(p.name.clone(), c.checksum.clone());
            summary.fresh += 1;
        }
    }
    let todo: Vec<&ComponentPlan> = plan
        .components
        .iter()
        .filter(|p| p.reason.is_some())
        .collect();
    if !todo.is_empty() {
        lock.scratch("components")?;
        let mut on_built = |name: &str, commit: &str| {
            if published(name) {
                prefetch.start(&build_path, &manifest.export_repo_path(), commit);
            }
        };
        for (p, commit) in build_components(manifest, &todo, options.jobs, rep, &mut on_built)? {
            commits.insert(p.name.clone(), commit.clone());
            new_refs.push((p.ref_name.clone(), commit));
            summary.built.push(p.name.clone());
        }
    }
    phases.push(("components".to_string(), t.elapsed().as_secs_f64()));

    // Images: union in memory; with triggers, a worktree kept between builds. The union is
    // copied to the export repository in the background while the triggers run.
    let t = Instant::now();
    let mut image_commits: BTreeMap<String, String> = BTreeMap::new();
    for ip in &plan.images {
        let section = &manifest.images[&ip.name];
        let inputs: Vec<(String, String)> = section
            .components
            .iter()
            .map(|c| (c.get_ref().clone(), commits[c.get_ref()].clone()))
            .collect();
        let input_hash = compose::image_input_hash(&repo, &ip.name, section, &inputs)?;
        if let Some(cur) = &ip.current {
            if !options.force && cur.metadata.get(META_INPUT_HASH) == Some(&input_hash) {
                image_commits.insert(ip.name.clone(), cur.checksum.clone());
                summary.fresh += 1;
                continue;
            }
        }
        let reason = ip
            .reason
            .clone()
            .unwrap_or_else(|| "definition changed".into());
        rep.event(Event::Started {
            kind: Kind::Image,
            name: ip.name.clone(),
        });
        let ts = Instant::now();
        let job = compose::ComposeJob {
            ip,
            section,
            inputs: &inputs,
            input_hash: &input_hash,
            force: options.force,
        };
        let mut warnings = Vec::new();
        let composed = compose::compose_image(
            manifest,
            &repo,
            &lock,
            &job,
            &mut |union| {
                if section.publish {
                    prefetch.start(&build_path, &manifest.export_repo_path(), union);
                }
            },
            &mut warnings,
        );
        for w in warnings {
            rep.event(Event::Warning {
                message: format!("image '{}': {w}", ip.name),
            });
        }
        let (commit, detail) = composed
            .with_context(|| format!("image '{}' was not composed; no ref was changed", ip.name))?;
        rep.event(Event::Finished {
            kind: Kind::Image,
            name: ip.name.clone(),
            commit: commit.clone(),
            seconds: ts.elapsed().as_secs_f64(),
            detail: format!("{reason}; {detail}"),
        });
        new_refs.push((ip.ref_name.clone(), commit.clone()));
        image_commits.insert(ip.name.clone(), commit);
        summary.composed.push(ip.name.clone());
    }
    repo.set_refs(&new_refs)?;
    phases.push(("compose".to_string(), t.elapsed().as_secs_f64()));

    let t = Instant::now();
    summary.published = publish::publish(manifest, &build_path, &image_commits, prefetch, rep)?;
    phases.push(("publish".to_string(), t.elapsed().as_secs_f64()));

    rep.event(Event::Summary {
        built: summary.built.len(),
        composed: summary.composed.len(),
        published: summary.published.len(),
        fresh: summary.fresh,
        seconds: start.elapsed().as_secs_f64(),
        phases,
    });
    Ok(summary)
}

fn report_plan(plan: &BuildPlan, rep: &mut dyn Reporter) {
    for p in &plan.components {
        rep.event(Event::Plan {
            kind: Kind::Component,
            name: p.name.clone(),
            action: if p.reason.is_some() { "build" } else { "fresh" }.into(),
            reason: p
                .reason
                .clone()
                .unwrap_or_else(|| "input hash unchanged".into()),
        });
    }
    for p in &plan.images {
        rep.event(Event::Plan {
            kind: Kind::Image,
            name: p.name.clone(),
            action: if p.reason.is_some() {
                "compose"
            } else {
                "check"
            }
            .into(),
            reason: p.reason.clone().unwrap_or_else(|| {
                "components fresh; recomposed only if its definition changed".into()
            }),
        });
    }
}

/// Forwards backend events from a worker thread to the reporter on the main thread.
struct ChannelSink {
    name: String,
    tx: mpsc::Sender<Event>,
}

impl EventSink for ChannelSink {
    fn event(&mut self, event: ostree_build_sdk::Event) {
        let _ = self.tx.send(Event::Log {
            name: self.name.clone(),
            message: event.text(),
        });
    }
}

/// Build `todo` with up to `jobs` threads, each with its own repository handle and
/// transaction. Returns the new commit of each component, or the first error.
fn build_components<'a>(
    manifest: &Manifest,
    todo: &[&'a ComponentPlan],
    jobs: Option<usize>,
    rep: &mut dyn Reporter,
    on_built: &mut dyn FnMut(&str, &str),
) -> Result<Vec<(&'a ComponentPlan, String)>> {
    let jobs = jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .clamp(1, todo.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<String>>>> =
        Mutex::new((0..todo.len()).map(|_| None).collect());
    let build_path = manifest.build_repo_path();
    let (tx, rx) = mpsc::channel::<Event>();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, results, build_path) = (&next, &results, &build_path);
            s.spawn(move || {
                let repo = Repo::open_or_create(build_path, RepoKind::Build);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = todo.get(i) else { break };
                    let _ = tx.send(Event::Started {
                        kind: Kind::Component,
                        name: p.name.clone(),
                    });
                    let t = Instant::now();
                    let res = match &repo {
                        Ok(repo) => build_component(repo, p, &tx),
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
                            seconds: t.elapsed().as_secs_f64(),
                            detail: format!(
                                "{}; {} objects written, {}{}",
                                p.reason.as_deref().unwrap_or(""),
                                stats.content_objects_written,
                                human_bytes(stats.content_bytes_written),
                                if packages.is_empty() {
                                    String::new()
                                } else {
                                    format!("; {packages}")
                                }
                            ),
                        });
                    }
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(res.map(|(c, _, _)| c));
                    }
                }
            });
        }
        drop(tx);
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
    let results = results
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

fn build_component(
    repo: &Repo,
    p: &ComponentPlan,
    tx: &mpsc::Sender<Event>,
) -> Result<(String, WriteStats, String)> {
    let mut sink = ChannelSink {
        name: p.name.clone(),
        tx: tx.clone(),
    };
    crate::fsutil::remove_tree(&p.request.root)?;
    std::fs::create_dir_all(&p.request.root)?;
    let output = p
        .backend
        .backend
        .run(&p.request, &mut sink)
        .with_context(|| format!("backend '{}' failed", p.backend.info.name))?;
    let mut metadata = vec![
        (META_COMPONENT.to_string(), MetaValue::Str(p.name.clone())),
        (
            META_BACKEND.to_string(),
            MetaValue::Str(p.backend.info.name.clone()),
        ),
        (
            META_BACKEND_VERSION.to_string(),
            MetaValue::Str(p.backend.info.version.clone()),
        ),
        (
            META_INPUT_HASH.to_string(),
            MetaValue::Str(p.input_hash.clone()),
        ),
        (
            META_SOURCES_HASH.to_string(),
            MetaValue::Str(p.sources_hash.clone()),
        ),
        (
            META_OPTIONS_HASH.to_string(),
            MetaValue::Str(p.options_hash.clone()),
        ),
    ];
    if !p.fingerprint.is_empty() {
        metadata.push((
            META_FINGERPRINT.to_string(),
            MetaValue::Str(p.fingerprint.clone()),
        ));
    }
    if !output.packages().is_empty() {
        metadata.push((
            META_PACKAGES.to_string(),
            MetaValue::StrList(output.packages().to_vec()),
        ));
    }
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
    let result = match &output {
        Output::Tree { root, .. } => repo.import_dir(root, &commit),
        Output::Archive { path, .. } => repo.import_archive(path, &commit),
    };
    let _ = crate::fsutil::remove_tree(&p.request.root);
    let packages = crate::packages::describe(
        p.current
            .as_ref()
            .map(|c| c.lists.get(META_PACKAGES).map_or(&[][..], |l| &l[..])),
        output.packages(),
    );
    result.map(|(c, stats)| (c, stats, packages))
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
