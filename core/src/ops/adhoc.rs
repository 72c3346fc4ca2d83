//! `ostree-build <backend> --branch B [--OPTION VALUE]...`: run one backend ad hoc, the
//! seed's `$pkginstallroot /tmpdir && ostree commit -b B --tree=dir=/tmpdir`, with or
//! without a manifest: populate a fresh root, commit it to the branch (creating the
//! repository if needed) and clean up.

use crate::backends::Found;
use crate::lock::ProjectLock;
use crate::ops::plan::{META_BACKEND, META_BACKEND_VERSION, META_PACKAGES};
use crate::progress::BackendEvents;
use crate::repo::{MetaValue, NewCommit, Repo, RepoKind};
use crate::report::{Event, Kind, Reporter};
use anyhow::{anyhow, bail, Context, Result};
use ostree_build_sdk::suggest::did_you_mean;
use ostree_build_sdk::{EventSink, OptionSpec, Output, Request, PROTOCOL_VERSION};
use std::path::PathBuf;
use std::time::Instant;

/// One ad-hoc run.
pub struct AdHoc {
    pub branch: String,
    /// A `bare-user` repository, created if absent.
    pub repo: PathBuf,
    pub subject: Option<String>,
    /// `--KEY VALUE` pairs as given on the command line.
    pub options: Vec<(String, String)>,
}

struct Forward<'a>(&'a mut dyn Reporter, BackendEvents);

impl EventSink for Forward<'_> {
    fn event(&mut self, event: ostree_build_sdk::Event) {
        if let Some(e) = self.1.convert(&event) {
            self.0.event(e);
        }
    }
}

/// Turn `--KEY VALUE` pairs into the backend's typed options, refusing unknown keys.
fn options(
    found: &Found,
    given: &[(String, String)],
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let specs = &found.info.options;
    let mut out = serde_json::Map::new();
    for (key, value) in given {
        // `--input` is the common spelling of a backend's `path`.
        let key = if key == "input" && !specs.iter().any(|s| s.name == "input") {
            "path"
        } else {
            key.as_str()
        };
        let spec = option_spec(found, key)?;
        out.insert(key.to_string(), option_value(spec, key, value)?);
    }
    for spec in specs.iter().filter(|s| s.required) {
        if !out.contains_key(&spec.name) {
            bail!(
                "backend '{}' needs --{} ({})",
                found.info.name,
                spec.name,
                spec.help
            );
        }
    }
    Ok(out)
}

/// The backend's declaration of `--key`; an undeclared one is an error with a did-you-mean.
fn option_spec<'a>(found: &'a Found, key: &str) -> Result<&'a OptionSpec> {
    let specs = &found.info.options;
    if let Some(spec) = specs.iter().find(|s| s.name == key) {
        return Ok(spec);
    }
    let valid: Vec<String> = specs.iter().map(|s| format!("--{}", s.name)).collect();
    let hint = match did_you_mean(key, specs.iter().map(|s| s.name.as_str())) {
        Some(s) => format!(
            "did you mean --{s}? options of '{}': {}",
            found.info.name,
            valid.join(", ")
        ),
        None => format!(
            "options of '{}': {} (see `ostree-build help {}`)",
            found.info.name,
            valid.join(", "),
            found.info.name
        ),
    };
    bail!(
        "backend '{}' has no option --{key}\n  help: {hint}",
        found.info.name
    );
}

/// A command-line value as the JSON type the option declares; a list is comma-separated.
fn option_value(spec: &OptionSpec, key: &str, value: &str) -> Result<serde_json::Value> {
    Ok(match spec.kind.as_str() {
        "bool" => serde_json::Value::Bool(match value {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            other => bail!("--{key} takes true or false, not '{other}'"),
        }),
        "integer" => serde_json::Value::from(
            value
                .parse::<i64>()
                .map_err(|_| anyhow!("--{key} takes an integer, not '{value}'"))?,
        ),
        "list" => serde_json::Value::from(
            value
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>(),
        ),
        _ => serde_json::Value::from(value.to_string()),
    })
}

/// Run `found` once and commit its result to `adhoc.branch`. Returns the commit.
pub fn run(found: &Found, adhoc: &AdHoc, rep: &mut dyn Reporter) -> Result<String> {
    let start = Instant::now();
    crate::repo::check_ref(&adhoc.branch)
        .map_err(|e| anyhow!("--branch '{}': {e}\n  help: use letters, digits, '.', '-', '_' and '/' (e.g. exampleos/x86_64/base)", adhoc.branch))?;
    let request = request(found, adhoc)?;
    // The backend checks its options (and says "needs root", "not installed") before
    // anything is created on disk.
    found.backend.plan(&request)?;
    // The lock of the project whose build repository this is (the state directory beside
    // it), so a concurrent `build` neither replaces this commit nor clears its scratch.
    let state_dir = request
        .root
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", request.root.display()))?;
    let _lock = ProjectLock::acquire(state_dir, || {
        rep.event(Event::Waiting {
            message: "waiting for another ostree-build run on this repository to finish".into(),
        })
    })?;
    let repo = Repo::open_or_create(&adhoc.repo, RepoKind::Build)?;
    let scratch = &request.root;
    crate::fsutil::remove_tree(scratch)?;
    std::fs::create_dir_all(scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    rep.event(Event::Started {
        kind: Kind::Component,
        name: adhoc.branch.clone(),
    });
    let result = build_and_commit(found, adhoc, &request, &repo, rep);
    let _ = crate::fsutil::remove_tree(scratch);
    let checksum = result.with_context(|| format!("branch '{}' was not changed", adhoc.branch))?;
    rep.event(Event::Finished {
        kind: Kind::Component,
        name: adhoc.branch.clone(),
        commit: checksum.clone(),
        seconds: start.elapsed().as_secs_f64(),
        detail: format!(
            "{} {}, {}",
            found.info.name,
            found.info.version,
            adhoc.repo.display()
        ),
    });
    Ok(checksum)
}

/// The request for one run: the typed options, and a scratch root and cache beside the
/// repository.
fn request(found: &Found, adhoc: &AdHoc) -> Result<Request> {
    let options = options(found, &adhoc.options)?;
    let cwd = std::env::current_dir()?;
    // Absolute, so backends that run tools elsewhere get usable paths.
    let repo_path = cwd.join(&adhoc.repo);
    let state_dir = repo_path.parent().unwrap_or(&cwd).join(".ostree-build");
    Ok(Request {
        protocol: PROTOCOL_VERSION,
        component: found.info.name.clone(),
        arch: std::env::consts::ARCH.to_string(),
        project_dir: cwd,
        // Not under work/, which a locked `build` of the same project clears.
        root: state_dir.join(format!("adhoc-{}", std::process::id())),
        options,
        previous: None,
        cache_dir: Some(
            state_dir
                .join("cache")
                .join(crate::manifest::escape_ref_part(&found.info.name)),
        ),
    })
}

/// Run the backend and commit what it produced to the branch. The caller removes the
/// request's root, whether this succeeds or not.
fn build_and_commit(
    found: &Found,
    adhoc: &AdHoc,
    request: &Request,
    repo: &Repo,
    rep: &mut dyn Reporter,
) -> Result<String> {
    let events = BackendEvents::new(Kind::Component, &adhoc.branch, &found.info.name);
    let mut forward = Forward(rep, events);
    let output = found.backend.run(request, &mut forward);
    if let Some(last) = forward.1.finish() {
        rep.event(last);
    }
    let output = output.with_context(|| format!("backend '{}' failed", found.info.name))?;
    found.check_output(request, &output)?;
    let metadata = commit_metadata(found, &output);
    let subject = adhoc.subject.clone().unwrap_or_else(|| {
        format!(
            "{} ({} {})",
            adhoc.branch, found.info.name, found.info.version
        )
    });
    let parent = repo.resolve(&adhoc.branch)?;
    let commit = NewCommit {
        parent: parent.as_deref(),
        subject: &subject,
        metadata: &metadata,
        timestamp: super::commit_time(),
    };
    let (checksum, _) = super::build::import(
        repo,
        &output,
        super::build::TreeImport::Full,
        &commit,
        &adhoc.branch,
        &mut |e| rep.event(e),
    )?;
    repo.set_refs(&[(adhoc.branch.clone(), checksum.clone())])?;
    Ok(checksum)
}

/// Which backend made the commit and, if it says, from which packages.
fn commit_metadata(found: &Found, output: &Output) -> Vec<(String, MetaValue)> {
    let mut metadata = vec![
        (
            META_BACKEND.to_string(),
            MetaValue::Str(found.info.name.clone()),
        ),
        (
            META_BACKEND_VERSION.to_string(),
            MetaValue::Str(found.info.version.clone()),
        ),
    ];
    if !output.packages().is_empty() {
        metadata.push((
            META_PACKAGES.to_string(),
            MetaValue::StrList(output.packages().to_vec()),
        ));
    }
    metadata
}
