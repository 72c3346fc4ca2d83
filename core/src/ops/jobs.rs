//! `plan`: the build as a job graph for a CI engine people already run (a GitHub Actions
//! matrix, a GitLab child pipeline, a Kubernetes Indexed Job). One job per component that
//! must be built here and per image to compose, each with its portable input hash, its
//! dependencies and the command that runs it; components the shared cache holds are not
//! jobs (the compose pulls them). The same inputs give the same graph on every machine.

use super::plan::{plan, BuildPlan, PlanOptions};
use crate::backends::Registry;
use crate::manifest::Manifest;
use crate::repo::Repo;
use crate::report::Reporter;
use anyhow::Result;
use serde::Serialize;

/// The version of the graph's shape; it changes only when a field changes meaning.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Serialize)]
pub struct JobGraph {
    pub schema: u32,
    pub os: String,
    /// `[cache] url`, when set.
    pub cache: Option<String>,
    /// The work to do, components first.
    pub jobs: Vec<Job>,
    /// Ids of the units that need no work here.
    pub fresh: Vec<String>,
    /// Ids of the components the shared cache provides.
    pub cached: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Job {
    /// `component/NAME` or `image/NAME`.
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    /// The component's backend; `None` for an image.
    pub backend: Option<String>,
    /// The portable input hash: a component's cache key; an image's definition and the
    /// cache keys of its components.
    pub input_hash: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// "stale" (or "missing": never built here).
    pub state: &'static str,
    pub reason: String,
    /// Ids of the jobs of this graph that must finish first.
    pub depends_on: Vec<String>,
    pub command: Vec<String>,
}

pub fn job_graph(
    manifest: &Manifest,
    registry: &Registry,
    rep: &mut dyn Reporter,
) -> Result<JobGraph> {
    let repo = Repo::open_existing(&manifest.build_repo_path())?;
    let scratch = manifest.state_dir().join("work").join("components");
    let options = PlanOptions {
        force: false,
        cache_keys: true,
    };
    let mut plan = plan(manifest, registry, repo.as_ref(), options, &scratch)?;
    super::cache::lookup(manifest, &mut plan, false, rep);
    let mut graph = JobGraph {
        schema: SCHEMA,
        os: manifest.os.name.clone(),
        cache: manifest.cache_url().map(str::to_string),
        jobs: Vec::new(),
        fresh: Vec::new(),
        cached: Vec::new(),
    };
    component_jobs(&plan, &mut graph);
    image_jobs(manifest, &plan, &mut graph)?;
    Ok(graph)
}

fn component_jobs(plan: &BuildPlan, graph: &mut JobGraph) {
    for p in &plan.components {
        let id = format!("component/{}", p.name);
        match (&p.reason, &p.cached) {
            (None, _) => graph.fresh.push(id),
            (Some(_), Some(_)) => graph.cached.push(id),
            (Some(reason), None) => graph.jobs.push(Job {
                id,
                kind: "component",
                name: p.name.clone(),
                backend: Some(p.backend.info.name.clone()),
                input_hash: p.cache_key.clone().unwrap_or_default(),
                ref_name: p.ref_name.clone(),
                state: if p.current.is_some() {
                    "stale"
                } else {
                    "missing"
                },
                reason: reason.clone(),
                depends_on: Vec::new(),
                command: command(&["build", "--component", &p.name]),
            }),
        }
    }
}

fn image_jobs(manifest: &Manifest, plan: &BuildPlan, graph: &mut JobGraph) -> Result<()> {
    for ip in &plan.images {
        let id = format!("image/{}", ip.name);
        let Some(reason) = &ip.reason else {
            graph.fresh.push(id);
            continue;
        };
        let section = &manifest.images[&ip.name];
        let mut keys = Vec::new();
        let mut depends_on = Vec::new();
        for c in &section.components {
            let c = c.get_ref();
            let p = plan.components.iter().find(|p| &p.name == c);
            keys.push((
                c.clone(),
                p.and_then(|p| p.cache_key.clone()).unwrap_or_default(),
            ));
            let dep = format!("component/{c}");
            if graph.jobs.iter().any(|j| j.id == dep) && !depends_on.contains(&dep) {
                depends_on.push(dep);
            }
        }
        graph.jobs.push(Job {
            id,
            kind: "image",
            name: ip.name.clone(),
            backend: None,
            input_hash: super::compose::image_cache_key(&ip.name, section, &keys)?,
            ref_name: ip.ref_name.clone(),
            state: if ip.current.is_some() {
                "stale"
            } else {
                "missing"
            },
            reason: reason.clone(),
            depends_on,
            command: command(&["build", "--image", &ip.name]),
        });
    }
    Ok(())
}

fn command(args: &[&str]) -> Vec<String> {
    std::iter::once("ostree-build")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect()
}
