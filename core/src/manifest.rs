//! The manifest, `ostree-build.toml`: strict parsing into typed sections.
//!
//! Every error names the file, line, column and key, with a did-you-mean where one fits.
//! Backend options are kept as spanned TOML values here and checked against the backend's
//! declared options by the planner (`ops::plan::check_options`), with the same error format.
//! Trigger and layout settings deserialize into the types their modules own
//! (`triggers::Trigger`, `repo::{LintLevel, VarFiles}`), so those modules never import this one.

use crate::cache_config::CacheSection;
use crate::repo::{LintLevel, VarFiles};
use crate::retention::RetentionSection;
use crate::triggers::Trigger;
use anyhow::{anyhow, Result};
use ostree_build_sdk::suggest::did_you_mean;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

pub const MANIFEST_NAME: &str = "ostree-build.toml";

/// A parsed manifest plus what is needed to point at its lines.
#[derive(Debug)]
pub struct Manifest {
    pub path: PathBuf,
    pub dir: PathBuf,
    source: String,
    pub os: OsSection,
    pub repos: ReposSection,
    pub components: BTreeMap<String, ComponentSection>,
    pub images: BTreeMap<String, ImageSection>,
    pub publish: PublishSection,
    pub retention: RetentionSection,
    pub cache: CacheSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    os: OsSection,
    #[serde(default)]
    repos: ReposSection,
    #[serde(default)]
    component: BTreeMap<String, BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    #[serde(default)]
    image: BTreeMap<String, ImageSection>,
    #[serde(default)]
    publish: PublishSection,
    #[serde(default)]
    retention: RetentionSection,
    #[serde(default)]
    cache: CacheSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OsSection {
    /// The OS name, first part of every ref (`exampleos`).
    pub name: String,
    /// Target architecture; defaults to the host's.
    #[serde(default = "host_arch")]
    pub arch: String,
    /// Prefix of every ref; defaults to `{name}/{arch}`.
    #[serde(default)]
    pub ref_prefix: Option<String>,
}

fn host_arch() -> String {
    std::env::consts::ARCH.to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReposSection {
    /// The `bare-user` build repository (a cache; fsync off).
    #[serde(default = "default_build_repo")]
    pub build: PathBuf,
    /// The `archive` repository clients pull from.
    #[serde(default = "default_export_repo")]
    pub export: PathBuf,
}

fn default_build_repo() -> PathBuf {
    PathBuf::from("build/cache-repo")
}
fn default_export_repo() -> PathBuf {
    PathBuf::from("build/repo")
}

impl Default for ReposSection {
    fn default() -> Self {
        ReposSection {
            build: default_build_repo(),
            export: default_export_repo(),
        }
    }
}

/// A component: which backend produces it and that backend's options.
#[derive(Debug, Clone)]
pub struct ComponentSection {
    pub backend: String,
    /// Where `backend = ...` is written, for errors.
    pub backend_span: std::ops::Range<usize>,
    /// Every other key of the table, passed to the backend.
    pub options: BTreeMap<String, Spanned<toml::Value>>,
    /// Where each option key is written, for errors.
    pub option_key_spans: BTreeMap<String, std::ops::Range<usize>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// A path two components provide differently is an error.
    #[default]
    Error,
    /// The component listed later wins.
    LastWins,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageSection {
    /// Components in union order.
    pub components: Vec<Spanned<String>>,
    #[serde(default)]
    pub conflicts: ConflictPolicy,
    /// Version prefix; each new commit gets `version`, then `version.1`, `version.2`, ...
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    /// Extra commit metadata (string, integer or boolean values).
    #[serde(default)]
    pub metadata: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// Lay the tree out for `ostree admin deploy` and lint it before committing.
    #[serde(default)]
    pub bootable: bool,
    #[serde(default)]
    pub var_files: VarFiles,
    /// Lint rules whose level differs from their default.
    #[serde(default)]
    pub lint: BTreeMap<Spanned<String>, LintLevel>,
    /// Override of the image's ref (default `{ref-prefix}/{image}`).
    #[serde(default, rename = "ref")]
    pub ref_name: Option<String>,
    /// Whether `build` publishes this image to the export repository.
    #[serde(default = "yes")]
    pub publish: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PublishSection {
    /// Whether to write a static delta from the previously published commit (see
    /// [`DeltaPolicy`]); unset: `auto`.
    #[serde(default)]
    pub delta: Option<Spanned<String>>,
    /// The older spelling: `deltas = false` is `delta = "never"`, `true` the default.
    #[serde(default)]
    pub deltas: Option<Spanned<bool>>,
    /// Whether clients see a new commit before its delta is written.
    #[serde(default)]
    pub delta_when: DeltaWhen,
    /// Regenerate the summary file after publishing.
    #[serde(default = "yes")]
    pub summary: bool,
    /// zlib level (1-9) of the archive repository; unset keeps libostree's default (6).
    #[serde(default)]
    pub zlib_level: Option<Spanned<u8>>,
    /// GPG key ids or fingerprints: every published commit and the summary are signed with
    /// each of them.
    #[serde(default)]
    pub gpg_sign: Vec<Spanned<String>>,
    /// The GnuPG home directory holding those keys, relative to the manifest; unset: gpg's own.
    #[serde(default)]
    pub gpg_homedir: Option<PathBuf>,
    /// Accepted only to be refused with a clear message: Debian's libostree 2022.7 has no
    /// ed25519 engine (see `check_publish`).
    #[serde(default, alias = "ed25519-sign")]
    pub sign_ed25519: Option<Spanned<toml::Value>>,
}

fn yes() -> bool {
    true
}

/// `[publish] delta`: whether publish and promote write a static delta from the commit the
/// ref pointed at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeltaPolicy {
    /// Write it, and keep it only if clients download less through it than through the
    /// objects its parts carry (poorly compressible new files make deltas that save nothing).
    #[default]
    Auto,
    /// Write it and keep it.
    Always,
    /// Write none: clients fetch the new objects one by one.
    Never,
}

/// `[publish] delta-when`: where the delta is written relative to moving the ref.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeltaWhen {
    /// Before: the first client to see the commit can use the delta.
    #[default]
    BeforeRef,
    /// After the ref moves and the summary is written (clients see the commit at once and
    /// fetch objects until the delta exists), then the summary is written again.
    AfterRef,
}

impl DeltaPolicy {
    fn parse(s: &str) -> Option<DeltaPolicy> {
        match s {
            "auto" => Some(DeltaPolicy::Auto),
            "always" => Some(DeltaPolicy::Always),
            "never" => Some(DeltaPolicy::Never),
            _ => None,
        }
    }
}

impl PublishSection {
    /// The delta policy, from `delta` (checked by `check_publish`) or the older `deltas`.
    pub fn delta_policy(&self) -> DeltaPolicy {
        match (&self.delta, &self.deltas) {
            (Some(p), _) => DeltaPolicy::parse(p.get_ref()).unwrap_or_default(),
            (None, Some(d)) if !*d.get_ref() => DeltaPolicy::Never,
            _ => DeltaPolicy::Auto,
        }
    }
}

impl Default for PublishSection {
    fn default() -> Self {
        PublishSection {
            delta: None,
            deltas: None,
            delta_when: DeltaWhen::default(),
            summary: true,
            zlib_level: None,
            gpg_sign: Vec::new(),
            gpg_homedir: None,
            sign_ed25519: None,
        }
    }
}

impl Manifest {
    /// Find `ostree-build.toml` in `start` or its parents, like cargo does.
    pub fn find(start: &Path) -> Result<PathBuf> {
        let mut dir = Some(start);
        while let Some(d) = dir {
            let candidate = d.join(MANIFEST_NAME);
            if candidate.is_file() {
                return Ok(candidate);
            }
            dir = d.parent();
        }
        Err(anyhow!(
            "could not find `{}` in `{}` or any parent directory\n  help: run this inside a project (or create one: `ostree-build new NAME`, `ostree-build init`), or pass --manifest-path",
            MANIFEST_NAME,
            start.display()
        ))
    }

    pub fn load(path: &Path) -> Result<Manifest> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            anyhow!(
                "{}: cannot read the manifest: {}\n  help: pass --manifest-path to point at an ostree-build.toml",
                path.display(),
                e
            )
        })?;
        Self::parse(path, source)
    }

    pub fn parse(path: &Path, source: String) -> Result<Manifest> {
        let raw: RawManifest = toml::from_str(&source).map_err(|e| {
            let (mut msg, hint) = explain_toml_error(e.message());
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            if msg.starts_with("invalid type") || msg.starts_with("invalid value") {
                if let Some(key) = key_at(&source, offset) {
                    msg = format!("`{key}`: {msg}");
                }
            }
            located(path, location(&source, offset), &msg, hint.as_deref())
        })?;
        let dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let dir = dir.canonicalize().unwrap_or(dir);
        let mut m = Manifest {
            path: path.to_path_buf(),
            dir,
            source,
            os: raw.os,
            repos: raw.repos,
            components: BTreeMap::new(),
            images: raw.image,
            publish: raw.publish,
            retention: raw.retention,
            cache: raw.cache,
        };
        for (name, table) in raw.component {
            let section = m.component_section(&name, table)?;
            m.components.insert(name, section);
        }
        m.validate()?;
        Ok(m)
    }

    fn component_section(
        &self,
        name: &str,
        table: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    ) -> Result<ComponentSection> {
        let mut backend = None;
        let mut options = BTreeMap::new();
        let mut option_key_spans = BTreeMap::new();
        for (key, value) in table {
            if key.get_ref() == "backend" {
                match value.get_ref() {
                    toml::Value::String(s) => backend = Some((s.clone(), value.span())),
                    _ => {
                        return Err(self.error_at(
                            value.span().start,
                            &format!("component.{name}.backend must be a string"),
                            Some("e.g. backend = \"dir\""),
                        ))
                    }
                }
            } else {
                option_key_spans.insert(key.get_ref().clone(), key.span());
                options.insert(key.into_inner(), value);
            }
        }
        let (backend, backend_span) = backend.ok_or_else(|| {
            let at = self.table_header(&format!("component.{name}"));
            self.error_at(
                at,
                &format!("component '{name}' has no `backend` key"),
                Some("add e.g. backend = \"dir\" (see `ostree-build backends`)"),
            )
        })?;
        Ok(ComponentSection {
            backend,
            backend_span,
            options,
            option_key_spans,
        })
    }

    /// What serde cannot check: names usable in refs, values in range, and that what an
    /// image names (components, triggers, lint rules) exists. Stops at the first problem.
    fn validate(&self) -> Result<()> {
        self.check_os()?;
        self.check_repos()?;
        self.check_refs()?;
        self.check_publish()?;
        self.check_retention()?;
        self.check_cache()?;
        for (image, section) in &self.images {
            self.check_image(image, section)?;
        }
        Ok(())
    }

    fn check_os(&self) -> Result<()> {
        check_ref_part(&self.os.name)
            .map_err(|e| self.error_at(self.find_text("name"), &format!("os.name: {e}"), None))
    }

    /// Two distinct, non-empty repository paths.
    fn check_repos(&self) -> Result<()> {
        for (key, path) in [("build", &self.repos.build), ("export", &self.repos.export)] {
            if path.as_os_str().is_empty() {
                return Err(self.error_at(
                    self.find_text(&format!("{key} =")),
                    &format!("repos.{key} is empty"),
                    Some("name a directory, or leave the key out for the default"),
                ));
            }
        }
        if normalize(&self.build_repo_path()) == normalize(&self.export_repo_path()) {
            return Err(self.error_at(
                self.find_text("export ="),
                "repos.build and repos.export are the same directory",
                Some("the build repository is bare-user and the export repository archive: give them two paths"),
            ));
        }
        Ok(())
    }

    /// Every ref the project writes is one libostree accepts (`os.arch`, `os.ref-prefix`,
    /// image names and `ref` overrides end up in them), and no two components or images
    /// write the same ref: they would overwrite each other and builds would never settle.
    fn check_refs(&self) -> Result<()> {
        let bad = |at: usize, what: String, e: String| {
            self.error_at(
                at,
                &format!("{what}: {e}"),
                Some("refs take letters, digits, '.', '-' and '_' between slashes, and no part starts with '.' or '-'"),
            )
        };
        let prefix = self.ref_prefix();
        crate::repo::check_ref(&format!("{prefix}/x")).map_err(|e| match &self.os.ref_prefix {
            Some(p) => bad(
                self.find_text("ref-prefix"),
                format!("os.ref-prefix '{p}'"),
                e,
            ),
            None => bad(
                self.find_text("arch"),
                format!("os.arch '{}' (in the refs {prefix}/...)", self.os.arch),
                e,
            ),
        })?;
        let mut owners: BTreeMap<String, String> = self
            .components
            .keys()
            .map(|c| (self.component_ref(c), format!("component '{c}'")))
            .collect();
        // Images on their default ref first, so a collision is blamed on an explicit `ref`.
        let mut images: Vec<_> = self.images.iter().collect();
        images.sort_by_key(|(_, section)| section.ref_name.is_some());
        for (image, section) in images {
            let r = self.image_ref(image);
            let at = match &section.ref_name {
                Some(name) => self.find_text(&format!("\"{name}\"")),
                None => self.table_header(&format!("image.{image}")),
            };
            crate::repo::check_ref(&r)
                .map_err(|e| bad(at, format!("image '{image}': ref '{r}'"), e))?;
            if let Some(other) = owners.insert(r.clone(), format!("image '{image}'")) {
                return Err(self.error_at(
                    at,
                    &format!("image '{image}' and {other} both write ref '{r}'"),
                    Some(&format!("give the image a ref of its own (ref = \"...\"), or leave `ref` out for {prefix}/{image}")),
                ));
            }
        }
        Ok(())
    }

    fn check_publish(&self) -> Result<()> {
        if let Some(p) = self.publish.delta.as_ref() {
            if DeltaPolicy::parse(p.get_ref()).is_none() {
                return Err(self.error_at(
                    p.span().start,
                    &format!("publish.delta: unknown policy '{}'", p.get_ref()),
                    Some("use \"auto\" (keep a delta when it saves downloads), \"always\" or \"never\""),
                ));
            }
        }
        if let (Some(_), Some(old)) = (&self.publish.delta, &self.publish.deltas) {
            return Err(self.error_at(
                old.span().start,
                "publish: `deltas` and `delta` are both set",
                Some("keep only `delta` (\"auto\", \"always\" or \"never\"); `deltas = false` is `delta = \"never\"`"),
            ));
        }
        if let Some(level) = &self.publish.zlib_level {
            if !(1..=9).contains(level.get_ref()) {
                return Err(self.error_at(
                    level.span().start,
                    "publish.zlib-level must be between 1 and 9",
                    Some("1 is fastest, 6 is libostree's default, 9 is smallest"),
                ));
            }
        }
        if let Some(v) = &self.publish.sign_ed25519 {
            let why = crate::repo::sign::ed25519_unavailable()
                .unwrap_or_else(|| "ed25519 signing is not supported by ostree-build yet".into());
            return Err(self.error_at(
                v.span().start,
                &format!("publish: {why}"),
                Some("sign with GPG instead: gpg-sign = [\"KEYID\"] (and gpg-homedir = \"DIR\")"),
            ));
        }
        for key in &self.publish.gpg_sign {
            if key.get_ref().trim().is_empty() || key.get_ref().contains(char::is_whitespace) {
                return Err(self.error_at(
                    key.span().start,
                    &format!("publish.gpg-sign: '{}' is not a key id", key.get_ref()),
                    Some("give key ids or fingerprints as `gpg --list-secret-keys --keyid-format long` shows them"),
                ));
            }
        }
        Ok(())
    }

    /// The GnuPG home directory to sign with (None: gpg's default).
    pub fn gpg_homedir(&self) -> Option<PathBuf> {
        self.publish
            .gpg_homedir
            .as_ref()
            .map(|h| normalize(&self.dir.join(h)))
    }

    /// The configured signing key ids.
    pub fn gpg_keys(&self) -> Vec<String> {
        self.publish
            .gpg_sign
            .iter()
            .map(|k| k.get_ref().clone())
            .collect()
    }

    fn check_retention(&self) -> Result<()> {
        if let Some(keep) = &self.retention.keep {
            if *keep.get_ref() < 1 {
                return Err(self.error_at(
                    keep.span().start,
                    "retention.keep must be at least 1: a policy that keeps no commit would delete every published version",
                    Some("keep = 1 keeps only the newest commit of each published ref"),
                ));
            }
        }
        if let Some(age) = &self.retention.keep_younger_than {
            if let Err(e) = crate::retention::parse_age(age.get_ref()) {
                return Err(self.error_at(
                    age.span().start,
                    &format!("retention.keep-younger-than: {e}"),
                    Some(crate::retention::AGE_HINT),
                ));
            }
        }
        Ok(())
    }

    fn check_cache(&self) -> Result<()> {
        if let Some(url) = &self.cache.url {
            if let Some(e) = crate::cache_config::check_url(url.get_ref()) {
                return Err(self.error_at(
                    url.span().start,
                    &e,
                    Some(crate::cache_config::URL_HINT),
                ));
            }
        }
        if let Some(t) = self.cache.timeout.as_ref().filter(|t| *t.get_ref() == 0) {
            return Err(self.error_at(
                t.span().start,
                "cache.timeout must be at least 1 (seconds without data before the cache is given up on)",
                Some("leave it out for the default, 30"),
            ));
        }
        if let Some(dest) = &self.cache.push {
            if let Err(e) = crate::cache_config::parse_dest(dest.get_ref(), &self.dir) {
                return Err(self.error_at(
                    dest.span().start,
                    &format!("cache.push: {e}"),
                    Some(crate::cache_config::DEST_HINT),
                ));
            }
        }
        Ok(())
    }

    /// The shared component cache's address, if `[cache] url` is set.
    pub fn cache_url(&self) -> Option<&str> {
        self.cache.url.as_ref().map(|u| u.get_ref().as_str())
    }

    /// The checked `[retention]` policy (empty when the section is absent).
    pub fn retention_policy(&self) -> crate::retention::Policy {
        let r = &self.retention;
        crate::retention::Policy {
            keep: r.keep.as_ref().map(|k| (*k.get_ref()).max(1) as usize),
            younger_than: r
                .keep_younger_than
                .as_ref()
                .and_then(|a| crate::retention::parse_age(a.get_ref()).ok()),
        }
    }

    fn check_image(&self, image: &str, section: &ImageSection) -> Result<()> {
        check_ref_part(image).map_err(|e| {
            self.error_at(
                self.table_header(&format!("image.{image}")),
                &format!("image name '{image}': {e}"),
                None,
            )
        })?;
        self.check_image_components(image, &section.components)?;
        self.check_image_metadata(image, &section.metadata)?;
        self.check_triggers(image, &section.triggers)?;
        self.check_lint_rules(image, &section.lint)
    }

    /// An image lists at least one component, each declared and listed once.
    fn check_image_components(&self, image: &str, components: &[Spanned<String>]) -> Result<()> {
        if components.is_empty() {
            return Err(self.error_at(
                self.table_header(&format!("image.{image}")),
                &format!("image '{image}' lists no components"),
                Some("add components = [\"...\"]"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in components {
            if !self.components.contains_key(c.get_ref()) {
                let hint = did_you_mean(c.get_ref(), self.components.keys().map(|s| s.as_str()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "declare it as [component.NAME]".into());
                return Err(self.error_at(
                    c.span().start,
                    &format!(
                        "image '{image}' names component '{}', which is not declared",
                        c.get_ref()
                    ),
                    Some(&hint),
                ));
            }
            if !seen.insert(c.get_ref().clone()) {
                return Err(self.error_at(
                    c.span().start,
                    &format!("image '{image}' lists component '{}' twice", c.get_ref()),
                    None,
                ));
            }
        }
        Ok(())
    }

    /// Compose writes these as scalar commit metadata, which has no form for arrays, tables
    /// or dates.
    fn check_image_metadata(
        &self,
        image: &str,
        metadata: &BTreeMap<String, Spanned<toml::Value>>,
    ) -> Result<()> {
        for (key, value) in metadata {
            if key == "version" || key.starts_with("ostree-build.") || key.starts_with("ostree.") {
                return Err(self.error_at(
                    value.span().start,
                    &format!("image.{image}.metadata.{key}: this key is ostree-build's or libostree's to set"),
                    Some(&format!("the version comes from `version = ...` in [image.{image}]; put your own keys in a namespace of yours, e.g. {}.channel", self.os.name)),
                ));
            }
            if matches!(
                value.get_ref(),
                toml::Value::Array(_) | toml::Value::Table(_) | toml::Value::Datetime(_)
            ) {
                return Err(self.error_at(
                    value.span().start,
                    &format!("image.{image}.metadata.{key}: values must be strings, integers, floats or booleans"),
                    None,
                ));
            }
        }
        Ok(())
    }

    fn check_triggers(&self, image: &str, triggers: &[Trigger]) -> Result<()> {
        let mut trigger_names = std::collections::BTreeSet::new();
        for t in triggers {
            if !trigger_names.insert(t.name.as_str()) {
                return Err(self.error_at(
                    self.find_text(&t.name),
                    &format!("image '{image}' has two triggers named '{}'", t.name),
                    Some("give each trigger its own name: its last output is kept by name"),
                ));
            }
            self.check_trigger_run(image, t)?;
            self.check_trigger_inputs(image, t)?;
        }
        Ok(())
    }

    /// A trigger either gives a command or is one of the built-in ones.
    fn check_trigger_run(&self, image: &str, t: &Trigger) -> Result<()> {
        match &t.run {
            Some(run) if run.trim().is_empty() => Err(self.error_at(
                self.find_text(&t.name),
                &format!("image '{image}': trigger '{}' has an empty `run`", t.name),
                None,
            )),
            Some(_) => Ok(()),
            None if crate::triggers::builtin(&t.name).is_none() => {
                let names = crate::triggers::BUILTIN_NAMES;
                Err(self.error_at(
                    self.find_text(&t.name),
                    &format!(
                        "image '{image}': trigger '{}' has no `run` and is not a built-in trigger",
                        t.name
                    ),
                    Some(&match did_you_mean(&t.name, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`? built-in triggers: {} (see `ostree-build help triggers`)", names.join(", ")),
                        None => format!("built-in triggers: {}; or give a command with run = \"...\" (see `ostree-build help triggers`)", names.join(", ")),
                    }),
                ))
            }
            None => Ok(()),
        }
    }

    fn check_trigger_inputs(&self, image: &str, t: &Trigger) -> Result<()> {
        for input in t.inputs.iter().flatten() {
            if !input.starts_with('/') {
                return Err(self.error_at(
                    self.find_text(input),
                    &format!("image '{image}': trigger '{}': input '{input}' is not an absolute path in the image", t.name),
                    Some("write inputs as paths in the image, e.g. \"/usr/lib\""),
                ));
            }
        }
        Ok(())
    }

    fn check_lint_rules(
        &self,
        image: &str,
        lint: &BTreeMap<Spanned<String>, LintLevel>,
    ) -> Result<()> {
        for rule in lint.keys() {
            if !crate::repo::LINT_RULES.contains(&rule.get_ref().as_str()) {
                let names = crate::repo::LINT_RULES;
                return Err(self.error_at(
                    rule.span().start,
                    &format!("image '{image}': unknown lint rule '{}'", rule.get_ref()),
                    Some(&match did_you_mean(rule.get_ref(), names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`? rules: {}", names.join(", ")),
                        None => format!("rules: {}", names.join(", ")),
                    }),
                ));
            }
        }
        Ok(())
    }

    /// The prefix of every ref this project writes.
    pub fn ref_prefix(&self) -> String {
        self.os
            .ref_prefix
            .clone()
            .unwrap_or_else(|| format!("{}/{}", self.os.name, self.os.arch))
    }

    pub fn component_ref(&self, component: &str) -> String {
        format!(
            "{}/components/{}",
            self.ref_prefix(),
            escape_ref_part(component)
        )
    }

    pub fn image_ref(&self, image: &str) -> String {
        self.images
            .get(image)
            .and_then(|i| i.ref_name.clone())
            .unwrap_or_else(|| format!("{}/{}", self.ref_prefix(), image))
    }

    /// The image named `name`, or an error naming the manifest with a did-you-mean.
    pub fn image(&self, name: &str) -> Result<&ImageSection> {
        if let Some(section) = self.images.get(name) {
            return Ok(section);
        }
        let names: Vec<&str> = self.images.keys().map(String::as_str).collect();
        let hint = match did_you_mean(name, names.iter().copied()) {
            Some(s) => format!("did you mean '{s}'? images: {}", names.join(", ")),
            None => format!("images: {}", names.join(", ")),
        };
        Err(anyhow!(
            "no image '{name}' in {}\n  help: {hint}",
            self.path.display()
        ))
    }

    pub fn build_repo_path(&self) -> PathBuf {
        self.dir.join(&self.repos.build)
    }

    pub fn export_repo_path(&self) -> PathBuf {
        self.dir.join(&self.repos.export)
    }

    /// The project's state directory (lock, scratch space), beside the build repository.
    pub fn state_dir(&self) -> PathBuf {
        let build = self.build_repo_path();
        build
            .parent()
            .map(|p| p.join(".ostree-build"))
            .unwrap_or_else(|| self.dir.join(".ostree-build"))
    }

    /// An error located at a byte offset of the manifest.
    pub fn error_at(&self, offset: usize, msg: &str, hint: Option<&str>) -> anyhow::Error {
        located(&self.path, location(&self.source, offset), msg, hint)
    }

    pub fn table_header(&self, dotted: &str) -> usize {
        self.source.find(&format!("[{dotted}]")).unwrap_or(0)
    }

    fn find_text(&self, needle: &str) -> usize {
        self.source.find(needle).unwrap_or(0)
    }
}

/// `path` with `.` and `..` resolved lexically (no filesystem access: the paths may not
/// exist yet).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn located(
    path: &Path,
    (line, col): (usize, usize),
    msg: &str,
    hint: Option<&str>,
) -> anyhow::Error {
    match hint {
        Some(h) => anyhow!(
            "{}:{}:{}: {}\n  help: {}",
            path.display(),
            line,
            col,
            msg,
            h
        ),
        None => anyhow!("{}:{}:{}: {}", path.display(), line, col, msg),
    }
}

/// 1-based line and column of a byte offset.
fn location(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

/// The dotted key (`os.name`) whose value starts at `offset`, read from the source: the
/// key before `=` on that line, under the last `[table]` header above it.
fn key_at(source: &str, offset: usize) -> Option<String> {
    let before = &source[..offset.min(source.len())];
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = &source[line_start..];
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || line_start + line.find('=')? > offset {
        return None;
    }
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_string(),
    })
}

/// Turn serde's "unknown field `x`, expected one of `a`, `b`" into a one-line message and a
/// did-you-mean hint.
fn explain_toml_error(message: &str) -> (String, Option<String>) {
    let message = message.trim().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, tail)) = rest.split_once('`') {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let hint = match did_you_mean(field, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? valid keys: {}", expected.join(", ")),
                None => format!("valid keys: {}", expected.join(", ")),
            };
            return (format!("unknown key `{field}`"), Some(hint));
        }
    }
    if message.starts_with("missing field `") {
        let field = message.split('`').nth(1).unwrap_or("");
        return (
            format!("missing key `{field}`"),
            Some(format!("add `{field} = ...` to this table")),
        );
    }
    (message.replace('\n', " "), None)
}

/// Characters libostree accepts in a ref part.
fn check_ref_part(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!(
            "'{c}' is not allowed in a ref (use letters, digits, '.', '-', '_')"
        ));
    }
    Ok(())
}

/// Escape a component name into a valid ref part: every character outside
/// `[A-Za-z0-9.-]` (and `_` itself) becomes `_XX` (hex), so `libstdc++6` is `libstdc_2B_2B6`.
pub fn escape_ref_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Manifest> {
        Manifest::parse(Path::new("ostree-build.toml"), s.to_string())
    }

    #[test]
    fn unknown_key_names_line_and_suggests() {
        let err = parse("[os]\nname = \"x\"\n[image.a]\ncompnents = [\"b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("ostree-build.toml:4:1: unknown key `compnents`"),
            "{err}"
        );
        assert!(err.contains("did you mean `components`?"), "{err}");
    }

    #[test]
    fn image_with_unknown_component_is_located() {
        let err = parse(
            "[os]\nname = \"x\"\n[component.base]\nbackend = \"dir\"\npath = \"r\"\n[image.a]\ncomponents = [\"bsae\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("ostree-build.toml:7:15:"), "{err}");
        assert!(err.contains("did you mean `base`?"), "{err}");
    }

    #[test]
    fn wrong_type_is_located() {
        let err = parse("[os]\nname = 3\n").unwrap_err().to_string();
        assert!(
            err.starts_with("ostree-build.toml:2:8: `os.name`: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn escapes_component_names() {
        assert_eq!(escape_ref_part("libstdc++6"), "libstdc_2B_2B6");
        assert_eq!(escape_ref_part("a_b"), "a_5Fb");
        assert_eq!(escape_ref_part("bash-5.2"), "bash-5.2");
    }

    #[test]
    fn components_keep_backend_options() {
        let m = parse("[os]\nname = \"x\"\narch = \"aarch64\"\n[component.base]\nbackend = \"dir\"\npath = \"r\"\n")
            .unwrap();
        assert_eq!(m.components["base"].backend, "dir");
        assert!(m.components["base"].options.contains_key("path"));
        assert_eq!(m.component_ref("base"), "x/aarch64/components/base");
    }
}
