//! Planning: for every component and image, decide whether it is fresh or must be
//! (re)built, and say why. `build`, `build --dry-run` and `status` all start here.

use crate::backends::{Found, Registry};
use crate::inputs::{stamp_inputs, Hasher};
use crate::manifest::{ComponentSection, ImageSection, Manifest};
use crate::repo::{CommitInfo, Repo};
use anyhow::Result;
use ostree_build_sdk::{OptionSpec, Plan, Previous, Request, PREVIOUS_TREE, PROTOCOL_VERSION};
use std::path::{Path, PathBuf};

pub const META_COMPONENT: &str = "ostree-build.component";
pub const META_IMAGE: &str = "ostree-build.image";
pub const META_BACKEND: &str = "ostree-build.backend";
pub const META_BACKEND_VERSION: &str = "ostree-build.backend-version";
pub const META_INPUT_HASH: &str = "ostree-build.input-hash";
pub const META_SOURCES_HASH: &str = "ostree-build.sources-hash";
pub const META_OPTIONS_HASH: &str = "ostree-build.options-hash";
/// The component's portable input hash (`ComponentPlan::cache_key`), when it was computed.
pub const META_CACHE_KEY: &str = "ostree-build.cache-key";
/// The component's options as JSON, for the backend to compare with (`Request::previous`).
pub const META_OPTIONS: &str = "ostree-build.options";
/// The backend's own fingerprint (a mirror's Release file, repositories' metadata).
pub const META_FINGERPRINT: &str = "ostree-build.fingerprint";
pub const META_PACKAGES: &str = "ostree-build.packages";
pub const META_COMPONENTS: &str = "ostree-build.components";
pub const META_VERSION: &str = "version";

/// One component's plan.
pub struct ComponentPlan {
    pub name: String,
    pub ref_name: String,
    pub backend: Found,
    pub request: Request,
    /// The key deciding whether the component is fresh: backend, options and sources.
    pub input_hash: String,
    /// The part of `input_hash` from what the backend builds from: the stamps of its input
    /// files and its fingerprint.
    pub sources_hash: String,
    /// The part of `input_hash` from the component's options and arch.
    pub options_hash: String,
    /// The backend's fingerprint from its plan.
    pub fingerprint: String,
    /// What the backend reads (from its plan).
    pub inputs: Vec<PathBuf>,
    /// The key of this input in a shared cache: `input_hash` with the inputs hashed by
    /// content and relative path, so it is the same on every machine. Computed only when a
    /// cache is configured or the plan is asked for keys.
    pub cache_key: Option<String>,
    /// The commit the shared cache holds for `cache_key`, when the component is stale here
    /// and the cache was asked (`ops::cache::lookup`).
    pub cached: Option<String>,
    /// The commit the ref points at now, if any.
    pub current: Option<CommitInfo>,
    /// Why it must be built; `None` when it is fresh.
    pub reason: Option<String>,
}

impl ComponentPlan {
    /// Whether a later build of this component may be handed this one's tree, so it is
    /// worth keeping.
    pub fn offers_previous(&self) -> bool {
        can_offer_previous(&self.backend)
    }
}

/// One image's plan, as far as it can be known before components are built (a component
/// rebuilt to identical content does not recompose it after all).
pub struct ImagePlan {
    pub name: String,
    pub ref_name: String,
    pub current: Option<CommitInfo>,
    /// Why it must be composed (new, forced, a component rebuilds, its input hash changed);
    /// `None` when it is fresh.
    pub reason: Option<String>,
}

pub struct BuildPlan {
    pub components: Vec<ComponentPlan>,
    pub images: Vec<ImagePlan>,
}

/// What a plan is asked for besides freshness.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Treat every component and image as stale (`build --force`).
    pub force: bool,
    /// Compute the cache key of every component even without `[cache] url`.
    pub cache_keys: bool,
}

/// Work out what a build would do. `repo` is the build repository if it exists.
pub fn plan(
    manifest: &Manifest,
    registry: &Registry,
    repo: Option<&Repo>,
    options: PlanOptions,
    scratch_root: &Path,
) -> Result<BuildPlan> {
    let force = options.force;
    let keys = options.cache_keys || manifest.cache_url().is_some();
    // Backends plan one by one; their inputs are then stamped together on all cores.
    let mut prepared = Vec::new();
    for (name, section) in &manifest.components {
        let backend = registry.backend(&section.backend).map_err(|e| {
            manifest.error_at(
                section.backend_span.start,
                &format!("component '{name}': {e}"),
                None,
            )
        })?;
        let request = component_request(manifest, name, section, &backend, scratch_root)?;
        let backend_plan = backend_plan(manifest, section, &backend, &request)?;
        prepared.push((name, backend, request, backend_plan));
    }
    let inputs: Vec<&[PathBuf]> = prepared.iter().map(|p| &p.3.inputs[..]).collect();
    let mut stamps = on_all_cores(&inputs, |paths| stamp_inputs(paths)).into_iter();
    let mut components = Vec::new();
    for (name, backend, request, backend_plan) in prepared {
        let stamp = stamps
            .next()
            .unwrap_or_else(|| Err(anyhow::anyhow!("no stamp")))?;
        let parts = (backend, request, backend_plan, stamp);
        components.push(plan_component(manifest, name, parts, repo, force)?);
    }
    if keys {
        // A build needs the keys of stale components only (to look them up); `plan` and
        // `cache push` need every key.
        let all = options.cache_keys;
        fill_cache_keys(manifest, &mut components, force, all)?;
    }
    let mut images = Vec::new();
    for (name, section) in &manifest.images {
        images.push(plan_image(
            manifest,
            name,
            section,
            &components,
            repo,
            force,
        )?);
    }
    Ok(BuildPlan { components, images })
}

fn plan_image(
    manifest: &Manifest,
    name: &str,
    section: &ImageSection,
    components: &[ComponentPlan],
    repo: Option<&Repo>,
    force: bool,
) -> Result<ImagePlan> {
    let ref_name = manifest.image_ref(name);
    let current = current_commit(repo, &ref_name)?;
    let reason = match (&current, repo) {
        _ if force => Some("forced".to_string()),
        (Some(cur), Some(repo)) => image_reason(repo, name, section, components, cur)?,
        _ => Some("new".to_string()),
    };
    Ok(ImagePlan {
        name: name.to_string(),
        ref_name,
        current,
        reason,
    })
}

/// Why an image that exists must be composed again: a component is rebuilt or, all of them
/// fresh, its input hash changed (its definition, or this tool's version); `None`: fresh.
fn image_reason(
    repo: &Repo,
    name: &str,
    section: &ImageSection,
    components: &[ComponentPlan],
    current: &CommitInfo,
) -> Result<Option<String>> {
    let mut inputs = Vec::new();
    for c in &section.components {
        let fresh = components
            .iter()
            .find(|p| &p.name == c.get_ref() && p.reason.is_none())
            .and_then(|p| p.current.as_ref());
        match fresh {
            Some(commit) => inputs.push((c.get_ref().clone(), commit.checksum.clone())),
            None => return Ok(Some(format!("component '{}' is rebuilt", c.get_ref()))),
        }
    }
    let hash = super::compose::image_input_hash(repo, name, section, &inputs)?;
    let changed = current.metadata.get(META_INPUT_HASH) != Some(&hash);
    Ok(changed.then(|| "its definition (or ostree-build's version) changed".to_string()))
}

fn current_commit(repo: Option<&Repo>, ref_name: &str) -> Result<Option<CommitInfo>> {
    let Some(repo) = repo else { return Ok(None) };
    match repo.resolve(ref_name)? {
        Some(c) => Ok(Some(repo.commit_info(&c)?)),
        None => Ok(None),
    }
}

/// `work` on every item, each on one of up to `available_parallelism` threads: stamping
/// stats every input file, which at 60,000 files is most of a one-file build's planning
/// (bench/scale.sh), and a first digest reads every one.
fn on_all_cores<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<R>>>> =
        items.iter().map(|_| Default::default()).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let result = work(item);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(anyhow::anyhow!("a planning step was not computed")))
        })
        .collect()
}

/// The cache key of every stale component (of every one, with `all`) that has none yet:
/// those fresh by their stamps took the key their commit records; the others digest their
/// inputs by content. A stale one whose key is the one its commit records only got new
/// times (a checkout, `touch`): it is fresh after all. Its stamps stay changed, so each
/// plan digests it again (a stat per file with the digest cache warm) until it is rebuilt.
fn fill_cache_keys(
    manifest: &Manifest,
    components: &mut [ComponentPlan],
    force: bool,
    all: bool,
) -> Result<()> {
    let digests = manifest.state_dir().join("digests");
    let todo: Vec<(usize, &[PathBuf], String)> = components
        .iter()
        .enumerate()
        .filter(|(_, p)| p.cache_key.is_none() && (all || p.reason.is_some()))
        .map(|(i, p)| (i, &p.inputs[..], crate::manifest::escape_ref_part(&p.name)))
        .collect();
    let results = on_all_cores(&todo, |(_, paths, store)| {
        digest_with_cache(paths, &manifest.dir, &digests.join(store))
    });
    let indices: Vec<usize> = todo.iter().map(|t| t.0).collect();
    for (i, digest) in indices.into_iter().zip(results) {
        let p = &mut components[i];
        let portable = sources_hash(&digest?, &p.fingerprint);
        let key = component_key(
            "component cache key v1",
            &p.backend,
            &p.options_hash,
            &portable,
        );
        let recorded = p
            .current
            .as_ref()
            .and_then(|c| c.metadata.get(META_CACHE_KEY));
        if !force && recorded == Some(&key) {
            p.reason = None;
            p.request.previous = None;
        }
        p.cache_key = Some(key);
    }
    Ok(())
}

fn digest_with_cache(paths: &[PathBuf], project_dir: &Path, store: &Path) -> Result<String> {
    let mut cache = crate::input_digest::DigestCache::load(store);
    let digest = crate::input_digest::digest_inputs(paths, project_dir, &mut cache)?;
    // Only a cache: a state directory that cannot be written costs a re-read next time.
    let _ = cache.save(store);
    Ok(digest)
}

fn plan_component(
    manifest: &Manifest,
    name: &str,
    (backend, mut request, backend_plan, stamp): (Found, Request, Plan, String),
    repo: Option<&Repo>,
    force: bool,
) -> Result<ComponentPlan> {
    let options_hash = options_hash(&request)?;
    let sources_hash = sources_hash(&stamp, &backend_plan.fingerprint);
    let input_hash = input_hash(&backend, &options_hash, &sources_hash);
    let ref_name = manifest.component_ref(name);
    let current = current_commit(repo, &ref_name)?;
    let reason = rebuild_reason(
        force,
        current.as_ref(),
        &backend,
        &backend_plan,
        &input_hash,
        &options_hash,
        &manifest.dir,
    );
    // Fresh by its stamps: its inputs are as when the recorded key was computed.
    let cache_key = match &reason {
        None => current
            .as_ref()
            .and_then(|c| c.metadata.get(META_CACHE_KEY).cloned()),
        Some(_) => None,
    };
    if reason.is_some() && !force {
        request.previous = offer_previous(&backend, current.as_ref(), &sources_hash);
    }
    Ok(ComponentPlan {
        name: name.to_string(),
        ref_name,
        backend,
        request,
        input_hash,
        sources_hash,
        options_hash,
        fingerprint: backend_plan.fingerprint.clone(),
        inputs: backend_plan.inputs,
        cache_key,
        cached: None,
        current,
        reason,
    })
}

/// Whether the core may hand `backend` its previous build: it says it can change one in
/// place (`PREVIOUS_TREE`) and this runs as root (the checkout keeps owners).
fn can_offer_previous(backend: &Found) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && backend.info.capabilities.iter().any(|c| c == PREVIOUS_TREE)
}

/// The last build to hand to a backend that can change it in place: only when the same
/// backend version built it from the same sources (so only options changed) and its
/// options were recorded.
fn offer_previous(
    backend: &Found,
    current: Option<&CommitInfo>,
    sources_hash: &str,
) -> Option<Previous> {
    let current = current?;
    let recorded = |key: &str| current.metadata.get(key).map(String::as_str);
    let same = recorded(META_BACKEND) == Some(&backend.info.name)
        && recorded(META_BACKEND_VERSION) == Some(&backend.info.version)
        && recorded(META_SOURCES_HASH) == Some(sources_hash);
    if !(can_offer_previous(backend) && same) {
        return None;
    }
    let options = serde_json::from_str(recorded(META_OPTIONS)?).ok()?;
    Some(Previous {
        commit: current.checksum.clone(),
        options,
        packages: current
            .lists
            .get(META_PACKAGES)
            .cloned()
            .unwrap_or_default(),
    })
}

/// What the backend is asked to build: the checked options, a scratch root of its own and
/// a cache shared by every component of the same backend.
fn component_request(
    manifest: &Manifest,
    name: &str,
    section: &ComponentSection,
    backend: &Found,
    scratch_root: &Path,
) -> Result<Request> {
    let options = check_options(manifest, name, section, backend)?;
    Ok(Request {
        protocol: PROTOCOL_VERSION,
        component: name.to_string(),
        arch: manifest.os.arch.clone(),
        project_dir: manifest.dir.clone(),
        root: scratch_root.join(crate::manifest::escape_ref_part(name)),
        options,
        previous: None,
        cache_dir: Some(
            manifest
                .state_dir()
                .join("cache")
                .join(crate::manifest::escape_ref_part(&section.backend)),
        ),
    })
}

/// Ask the backend for its plan; its errors are about the component's options, so they
/// point at the component's first option in the manifest.
fn backend_plan(
    manifest: &Manifest,
    section: &ComponentSection,
    backend: &Found,
    request: &Request,
) -> Result<Plan> {
    backend.backend.plan(request).map_err(|e| {
        let at = section
            .option_key_spans
            .values()
            .next()
            .map(|s| s.start)
            .unwrap_or(section.backend_span.start);
        let message = format!("{e:#}");
        // A backend that says what to do (install a tool, check a mirror) is not second-guessed.
        let hint =
            (!message.contains("help:")).then_some("fix the component's options in the manifest");
        manifest.error_at(at, &message, hint)
    })
}

/// What the backend builds from: its inputs (stamped or digested) and its fingerprint.
fn sources_hash(inputs: &str, fingerprint: &str) -> String {
    let mut h = Hasher::new("inputs");
    h.str(inputs).str(fingerprint);
    h.finish()
}

fn options_hash(request: &Request) -> Result<String> {
    let mut h = Hasher::new("options");
    h.str(&serde_json::to_string(&request.options)?)
        .str(&request.arch);
    Ok(h.finish())
}

fn input_hash(backend: &Found, options_hash: &str, sources_hash: &str) -> String {
    component_key("component v1", backend, options_hash, sources_hash)
}

/// A component's key in `domain`: its backend and version, options and sources.
fn component_key(domain: &str, backend: &Found, options_hash: &str, sources_hash: &str) -> String {
    let mut h = Hasher::new(domain);
    h.str(&backend.info.name)
        .str(&backend.info.version)
        .str(options_hash)
        .str(sources_hash);
    h.finish()
}

/// Why the component must be built, given the commit its ref points at; `None` when it is
/// fresh.
fn rebuild_reason(
    force: bool,
    current: Option<&CommitInfo>,
    backend: &Found,
    backend_plan: &Plan,
    input_hash: &str,
    options_hash: &str,
    project_dir: &Path,
) -> Option<String> {
    match current {
        _ if force => Some("forced".to_string()),
        None => Some("new".to_string()),
        Some(c) if c.metadata.get(META_INPUT_HASH).map(String::as_str) == Some(input_hash) => None,
        Some(c) => Some(what_changed(
            c,
            backend,
            backend_plan,
            options_hash,
            project_dir,
        )),
    }
}

/// Which part of the input hash differs from the one recorded in `current`, checked from
/// the backend outwards to the files it reads.
fn what_changed(
    current: &CommitInfo,
    backend: &Found,
    backend_plan: &Plan,
    options_hash: &str,
    project_dir: &Path,
) -> String {
    let recorded = |key: &str| current.metadata.get(key).map(String::as_str);
    if recorded(META_BACKEND) != Some(&backend.info.name) {
        format!(
            "backend changed ({} -> {})",
            recorded(META_BACKEND).unwrap_or("?"),
            backend.info.name
        )
    } else if recorded(META_BACKEND_VERSION) != Some(&backend.info.version) {
        format!(
            "backend version changed ({} -> {})",
            recorded(META_BACKEND_VERSION).unwrap_or("?"),
            backend.info.version
        )
    } else if recorded(META_OPTIONS_HASH) != Some(options_hash) {
        "options changed".to_string()
    } else if recorded(META_FINGERPRINT).is_some_and(|f| f != backend_plan.fingerprint) {
        format!(
            "the {} backend's fingerprint changed (what it builds from was updated)",
            backend.info.name
        )
    } else {
        inputs_changed_reason(&backend_plan.inputs, project_dir)
    }
}

/// The fallback reason: something the backend reads changed, named relative to the project.
fn inputs_changed_reason(inputs: &[PathBuf], project_dir: &Path) -> String {
    let names: Vec<String> = inputs
        .iter()
        .map(|p| {
            p.strip_prefix(project_dir)
                .unwrap_or(p)
                .display()
                .to_string()
        })
        .collect();
    if names.is_empty() {
        "input changed".to_string()
    } else {
        format!("input changed ({})", names.join(", "))
    }
}

/// Check a component's options against what its backend declares, and turn them into JSON.
fn check_options(
    manifest: &Manifest,
    name: &str,
    section: &ComponentSection,
    backend: &Found,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::new();
    for (key, value) in &section.options {
        let spec = option_spec(manifest, name, section, backend, key)?;
        if !has_kind(&spec.kind, value.get_ref()) {
            return Err(manifest.error_at(
                value.span().start,
                &format!(
                    "component '{name}': `{key}` must be {} {}",
                    if spec.kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                        "an"
                    } else {
                        "a"
                    },
                    spec.kind
                ),
                (!spec.help.is_empty()).then_some(spec.help.as_str()),
            ));
        }
        if spec.kind == "path" {
            check_source_path(manifest, name, key, value)?;
        }
        out.insert(key.clone(), serde_json::to_value(value.get_ref())?);
    }
    check_required_options(manifest, name, section, backend)?;
    Ok(out)
}

/// The backend's declaration of option `key`; a key it does not declare is an error at the
/// key, with a did-you-mean.
fn option_spec<'a>(
    manifest: &Manifest,
    name: &str,
    section: &ComponentSection,
    backend: &'a Found,
    key: &str,
) -> Result<&'a OptionSpec> {
    let specs = &backend.info.options;
    if let Some(spec) = specs.iter().find(|s| s.name == key) {
        return Ok(spec);
    }
    let span = section
        .option_key_spans
        .get(key)
        .map(|s| s.start)
        .unwrap_or(0);
    let valid: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let hint = match ostree_build_sdk::suggest::did_you_mean(key, valid.iter().copied()) {
        Some(s) => format!(
            "did you mean `{s}`? options of '{}': {}",
            backend.info.name,
            valid.join(", ")
        ),
        None => format!(
            "options of '{}': backend, {}",
            backend.info.name,
            valid.join(", ")
        ),
    };
    Err(manifest.error_at(
        span,
        &format!(
            "component '{name}': unknown key `{key}` for backend '{}'",
            backend.info.name
        ),
        Some(&hint),
    ))
}

/// Whether a manifest value has the type an option declares (`OptionSpec::kind`).
/// A source path is not empty, and does not contain the project's own repositories or
/// state: they would be imported into the component, and change under it at every build.
fn check_source_path(
    manifest: &Manifest,
    name: &str,
    key: &str,
    value: &toml::Spanned<toml::Value>,
) -> Result<()> {
    let given = value.get_ref().as_str().unwrap_or_default();
    let at = value.span().start;
    if given.is_empty() {
        return Err(manifest.error_at(
            at,
            &format!("component '{name}': `{key}` is empty"),
            Some("name a file or directory, relative to the manifest"),
        ));
    }
    let source = crate::manifest::normalize(&manifest.dir.join(given));
    let ours = [
        ("the build repository", manifest.build_repo_path()),
        ("the export repository", manifest.export_repo_path()),
        ("ostree-build's state", manifest.state_dir()),
    ];
    for (what, path) in ours {
        if crate::manifest::normalize(&path).starts_with(&source) {
            return Err(manifest.error_at(
                at,
                &format!(
                    "component '{name}': `{key}` = \"{given}\" contains {what} ({}), which would be imported into the component",
                    path.display()
                ),
                Some("point it at a directory of its own (e.g. rootfs/), or move [repos] out of it"),
            ));
        }
    }
    Ok(())
}

fn has_kind(kind: &str, value: &toml::Value) -> bool {
    match (kind, value) {
        ("string" | "path", toml::Value::String(_)) => true,
        ("bool", toml::Value::Boolean(_)) => true,
        ("integer", toml::Value::Integer(_)) => true,
        ("list", toml::Value::Array(a)) => a.iter().all(|v| v.is_str()),
        _ => false,
    }
}

fn check_required_options(
    manifest: &Manifest,
    name: &str,
    section: &ComponentSection,
    backend: &Found,
) -> Result<()> {
    for spec in backend.info.options.iter().filter(|s| s.required) {
        if !section.options.contains_key(&spec.name) {
            return Err(manifest.error_at(
                section.backend_span.start,
                &format!(
                    "component '{name}': backend '{}' needs `{}`",
                    backend.info.name, spec.name
                ),
                Some(&format!("add {} = ... ({})", spec.name, spec.help)),
            ));
        }
    }
    Ok(())
}

impl BuildPlan {
    /// Keep only what a worker's `build --component` / `build --image` asks for: the named
    /// components (and no image), or the named images and the components they are made of.
    /// Nothing named: everything stays.
    pub fn select(
        &mut self,
        manifest: &Manifest,
        components: &[String],
        images: &[String],
    ) -> Result<()> {
        let known = |name: &str, kind: &str, names: Vec<&String>| -> Result<()> {
            if names.iter().any(|n| *n == name) {
                return Ok(());
            }
            let list: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            let hint = match ostree_build_sdk::suggest::did_you_mean(name, list.iter().copied()) {
                Some(s) => format!("did you mean '{s}'?"),
                None => format!("the manifest's {kind}s: {}", list.join(", ")),
            };
            anyhow::bail!(
                "no {kind} '{name}' in {}\n  help: {hint}",
                manifest.path.display()
            )
        };
        for c in components {
            known(c, "component", manifest.components.keys().collect())?;
        }
        for i in images {
            known(i, "image", manifest.images.keys().collect())?;
        }
        if components.is_empty() && images.is_empty() {
            return Ok(());
        }
        let mut wanted: Vec<&str> = components.iter().map(String::as_str).collect();
        for i in images {
            wanted.extend(
                manifest.images[i]
                    .components
                    .iter()
                    .map(|c| c.get_ref().as_str()),
            );
        }
        self.components
            .retain(|p| wanted.contains(&p.name.as_str()));
        self.images.retain(|p| images.contains(&p.name));
        Ok(())
    }
}
