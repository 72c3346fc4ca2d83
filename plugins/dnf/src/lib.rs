//! The `dnf` backend (also answering to `yum`): an RPM-based root filesystem installed with
//! `dnf --installroot` (or `yum`), with the installed package list.
//!
//! This module owns the backend's options, its plan (validation and the fingerprint over
//! options, .repo files and each repository's `repomd.xml`) and its run: a private dnf
//! configuration isolated from the host's, the package cache kept between runs, and the
//! tree handed to the core. `repos` reads repository definitions, `tool` finds and runs
//! dnf/yum and explains failures, `tree` fixes up the installed tree (rpm database
//! placement, cleanup, package list).

mod progress;
mod repos;
mod tool;
mod tree;

use anyhow::{anyhow, bail, Context, Result};
use ostree_build_sdk::{
    Backend, BackendInfo, EventSink, OptionSpec, Output, Plan, Request, PROTOCOL_VERSION,
};
use repos::RepoDef;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The same backend under its two names.
pub struct DnfBackend {
    pub name: &'static str,
}

impl DnfBackend {
    pub const DNF: DnfBackend = DnfBackend { name: "dnf" };
    pub const YUM: DnfBackend = DnfBackend { name: "yum" };

    /// The tools to look for, in order: `dnf` prefers dnf, `yum` prefers yum.
    fn tools(&self) -> &'static [&'static str] {
        if self.name == "yum" {
            &["yum", "dnf"]
        } else {
            &["dnf", "yum"]
        }
    }
}

const DEFAULT_TIMEOUT: u64 = 30;

/// A component's options, checked.
struct Config {
    packages: Vec<String>,
    /// .repo files with their text.
    repo_files: Vec<(PathBuf, String)>,
    /// Inline repositories from `repos`.
    inline: Vec<RepoDef>,
    /// Every enabled repository (files and inline).
    repos: Vec<RepoDef>,
    releasever: String,
    exclude: Vec<String>,
    weak_deps: bool,
    gpg_check: bool,
    docs: bool,
    timeout: u64,
}

/// rpm's name for the base architecture of `arch` (`$basearch` in repository URLs).
pub(crate) fn basearch(arch: &str) -> &str {
    match arch {
        "i386" | "i486" | "i586" | "i686" | "athlon" => "i386",
        "armv7hl" | "armv7hnl" => "armhfp",
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => other,
    }
}

/// The target architecture in rpm's spelling (a manifest may use Debian's names).
fn rpm_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "armhf" => "armv7hl",
        "i386" => "i686",
        "ppc64el" => "ppc64le",
        other => other,
    }
}

/// The host's architecture in rpm's spelling.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "i686",
        "arm" => "armv7hl",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    }
}

fn config(request: &Request) -> Result<Config> {
    let c = &request.component;
    let packages = request.list_option("packages")?;
    if packages.is_empty() {
        bail!("component '{c}': option 'packages' is empty; name at least one package to install");
    }
    let releasever = match request.str_option("releasever")? {
        Some(r) if !r.trim().is_empty() => r.trim().to_string(),
        _ => bail!(
            "component '{c}': option 'releasever' is required (the distribution release the repositories serve, e.g. \"41\" for Fedora 41)"
        ),
    };
    let timeout = match request.options.get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(v) => match v.as_u64() {
            Some(t) if t > 0 => t,
            _ => bail!(
                "component '{c}': option 'timeout' must be a positive number of seconds, got {v}"
            ),
        },
    };
    let repo_files =
        repos::read_repo_files(c, &request.project_dir, &request.list_option("repo-file")?)?;
    let inline = request
        .list_option("repos")?
        .iter()
        .map(|d| repos::parse_inline(d, &request.project_dir))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| anyhow!("component '{c}': {e:#}"))?;
    if repo_files.is_empty() && inline.is_empty() {
        bail!("component '{c}': no repository: set `repo-file` (.repo files) or `repos` (inline id=baseurl entries)");
    }
    let mut all: Vec<RepoDef> = Vec::new();
    for (path, text) in &repo_files {
        all.extend(
            repos::parse_repo_file(path, text).map_err(|e| anyhow!("component '{c}': {e:#}"))?,
        );
    }
    all.extend(inline.iter().cloned());
    for (i, r) in all.iter().enumerate() {
        if let Some(dup) = all[..i].iter().find(|o| o.id == r.id) {
            bail!(
                "component '{c}': repository id '{}' is defined twice ({} and {})",
                r.id,
                dup.origin,
                r.origin
            );
        }
    }
    if all.is_empty() {
        bail!("component '{c}': every repository in the .repo files is disabled (enabled=0)");
    }
    Ok(Config {
        packages,
        repo_files,
        inline,
        repos: all,
        releasever,
        exclude: request.list_option("exclude")?,
        weak_deps: request.bool_option("weak-deps", false)?,
        gpg_check: request.bool_option("gpg-check", true)?,
        docs: request.bool_option("docs", true)?,
        timeout,
    })
}

/// Where the tool keeps metadata and packages between runs. `dnf` and `yum` are one
/// backend, so the `yum` name shares the `dnf` cache when the core gives each backend
/// name its own sibling directory.
fn cache_root(name: &str, cache_dir: &Path) -> PathBuf {
    if name == "yum" && cache_dir.file_name().is_some_and(|f| f == "yum") {
        cache_dir.with_file_name("dnf")
    } else {
        cache_dir.to_path_buf()
    }
}

/// What the tool reads and writes outside the tree: a private configuration (removed when
/// this is dropped) and the package cache.
struct ToolDirs {
    conf: tempfile::TempDir,
    reposdir: PathBuf,
    home: PathBuf,
    persistdir: PathBuf,
    conf_file: PathBuf,
    cachedir: PathBuf,
}

impl ToolDirs {
    fn create(
        backend: &str,
        cfg: &Config,
        cache_dir: Option<&Path>,
        events: &mut dyn EventSink,
    ) -> Result<ToolDirs> {
        // A private configuration: nothing of the host's dnf.conf, repos, vars or plugins.
        let conf = tempfile::Builder::new()
            .prefix("ostree-build-dnf-")
            .tempdir()
            .context("cannot create a temporary directory for the dnf configuration")?;
        let reposdir = conf.path().join("repos.d");
        let home = conf.path().join("home");
        let persistdir = conf.path().join("persist");
        for d in [&reposdir, &home, &persistdir] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        write_reposdir(&reposdir, cfg)?;
        let conf_file = conf.path().join("dnf.conf");
        write_main_conf(&conf_file, cfg.gpg_check)?;
        // rpm reads ~/.rpmmacros: write the database where an OSTree system expects it
        // (Debian's rpm would use ~/.rpmdb, older rpms /var/lib/rpm).
        std::fs::write(
            home.join(".rpmmacros"),
            format!("%_dbpath /{}\n", tree::DBPATH),
        )
        .context("cannot write the rpm macros file")?;
        let cachedir = package_cache(backend, cache_dir, conf.path(), events)?;
        Ok(ToolDirs {
            conf,
            reposdir,
            home,
            persistdir,
            conf_file,
            cachedir,
        })
    }

    /// The tool's whole command line: installing `cfg.packages` into `root` for `arch`.
    fn command(
        &self,
        tool: &tool::Tool,
        cfg: &Config,
        root: &Path,
        arch: &str,
        events: &mut dyn EventSink,
    ) -> Result<Command> {
        let mut cmd = Command::new(&tool.path);
        cmd.env("HOME", &self.home)
            .env("LC_ALL", "C.UTF-8")
            .env("LANG", "C.UTF-8")
            .arg(format!("--installroot={}", root.display()))
            .arg(format!("--releasever={}", cfg.releasever))
            .arg(format!("--config={}", self.conf_file.display()))
            .arg(format!("--setopt=reposdir={}", self.reposdir.display()))
            .arg(format!("--setopt=cachedir={}", self.cachedir.display()))
            .arg(format!("--setopt=persistdir={}", self.persistdir.display()))
            .arg("--setopt=keepcache=True")
            // Check every run whether the repository changed (repomd.xml only).
            .arg("--setopt=metadata_expire=0")
            .arg(format!("--setopt=timeout={}", cfg.timeout))
            .arg("--setopt=retries=1")
            .arg(tool.no_plugins())
            .arg("-y");
        if tool.flavor != tool::Flavor::Yum3 {
            cmd.arg(format!(
                "--setopt=install_weak_deps={}",
                if cfg.weak_deps { "True" } else { "False" }
            ));
        }
        if !cfg.docs {
            cmd.arg("--setopt=tsflags=nodocs");
        }
        if !cfg.gpg_check {
            cmd.arg(tool.no_gpg_check());
        }
        cmd.args(force_arch(tool, arch, events)?);
        for x in &cfg.exclude {
            cmd.arg(format!("--exclude={x}"));
        }
        cmd.arg("install").arg("--").args(&cfg.packages);
        Ok(cmd)
    }

    /// Host paths dnf also creates under the installroot, for `tree::clean` to remove.
    fn host_paths(&self) -> [&Path; 3] {
        [&self.cachedir, &self.persistdir, self.conf.path()]
    }
}

/// The component's .repo files and inline repositories, as the tool's only reposdir.
fn write_reposdir(reposdir: &Path, cfg: &Config) -> Result<()> {
    for (i, (path, text)) in cfg.repo_files.iter().enumerate() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repos.repo".into());
        // Numbered, so two files of the same name from different directories both stay.
        let dest = reposdir.join(format!("{i:02}-{name}"));
        std::fs::write(&dest, text).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    if !cfg.inline.is_empty() {
        let dest = reposdir.join("ostree-build-inline.repo");
        std::fs::write(&dest, repos::inline_repo_file(&cfg.inline, cfg.gpg_check))
            .with_context(|| format!("cannot write {}", dest.display()))?;
    }
    Ok(())
}

/// The private dnf.conf, read instead of the host's.
fn write_main_conf(conf_file: &Path, gpg_check: bool) -> Result<()> {
    std::fs::write(
        conf_file,
        format!(
            "[main]\ngpgcheck={}\nskip_if_unavailable=False\nbest=True\ninstallonly_limit=0\nclean_requirements_on_remove=False\n",
            u8::from(gpg_check)
        ),
    )
    .with_context(|| format!("cannot write {}", conf_file.display()))
}

/// The package cache, kept between runs (no cache from an old core: a temporary one in
/// `scratch`).
fn package_cache(
    backend: &str,
    cache_dir: Option<&Path>,
    scratch: &Path,
    events: &mut dyn EventSink,
) -> Result<PathBuf> {
    let cachedir = match cache_dir {
        Some(d) => cache_root(
            backend,
            &std::path::absolute(d).context("cannot read the current directory")?,
        )
        .join("dnf-cache"),
        None => {
            events.warn(
                "no cache directory from the core: packages are downloaded again on every build",
            );
            scratch.join("cache")
        }
    };
    std::fs::create_dir_all(&cachedir)
        .with_context(|| format!("cannot create the package cache {}", cachedir.display()))?;
    Ok(cachedir)
}

/// `--forcearch` when the target is not the host's architecture (yum 3 has no such thing).
fn force_arch(tool: &tool::Tool, arch: &str, events: &mut dyn EventSink) -> Result<Option<String>> {
    if arch == host_arch() {
        return Ok(None);
    }
    if tool.flavor == tool::Flavor::Yum3 {
        bail!(
            "{} (yum 3) cannot install for another architecture ({arch} on a {} host); use dnf",
            tool.path.display(),
            host_arch()
        );
    }
    events.info(&format!(
        "target {arch} differs from the host ({}): --forcearch={arch}",
        host_arch()
    ));
    Ok(Some(format!("--forcearch={arch}")))
}

/// Run the tool; a failure is explained from what it printed.
fn install(
    tool: &tool::Tool,
    cfg: &Config,
    arch: &str,
    mut cmd: Command,
    events: &mut dyn EventSink,
) -> Result<()> {
    events.info(&format!(
        "{} {}: installing {} from {} for {arch}, releasever {}",
        tool.name,
        tool.path.display(),
        cfg.packages.join(" "),
        cfg.repos
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        cfg.releasever
    ));
    let (status, lines) = tool::run_streaming(&mut cmd, &tool.name, events)?;
    if !status.success() {
        return Err(tool::explain_failure(
            &tool.name, status, &lines, &cfg.repos,
        ));
    }
    Ok(())
}

/// What to install into `root`: with the previous build there (`Request::previous`) and only
/// packages added to `packages`, those packages into it (their scriptlets run as on a clean
/// install: they are new), `None` when none were added; else everything into an emptied
/// root.
fn extension(
    mut cfg: Config,
    request: &Request,
    root: &Path,
    events: &mut dyn EventSink,
) -> Result<Option<Config>> {
    let Some(previous) = &request.previous else {
        return Ok(Some(cfg));
    };
    match previous.only_added(request, "packages", &["timeout"]) {
        Some(added) if added.is_empty() => {
            events.info("the previous build has every package of `packages`: nothing to install");
            Ok(None)
        }
        Some(added) => {
            events.info(&format!(
                "extending the previous build: installing {} (only `packages` grew)",
                added.join(" ")
            ));
            cfg.packages = added;
            Ok(Some(cfg))
        }
        None => {
            events.info("installing from scratch, not extending the previous build: an option other than a package added to `packages` changed");
            ostree_build_sdk::empty_dir(root)?;
            Ok(Some(cfg))
        }
    }
}

/// The installed tree as the core takes it: the rpm database in place, the tool's leftovers
/// gone, the package list read back.
fn finish_tree(
    tool: &tool::Tool,
    root: &Path,
    host_paths: &[&Path],
    events: &mut dyn EventSink,
) -> Result<Output> {
    tree::place_rpmdb(root, events)?;
    tree::clean(root, host_paths, events)?;
    let packages = tree::installed_packages(root)?;
    if packages.is_empty() {
        bail!(
            "{} reported success but the rpm database in the tree lists no package",
            tool.name
        );
    }
    events.info(&format!("{} packages installed", packages.len()));
    Ok(Output::Tree {
        root: root.to_path_buf(),
        packages,
    })
}

impl Backend for DnfBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: self.name.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "an RPM root filesystem from dnf/yum repositories (dnf --installroot)"
                .into(),
            protocols: vec![PROTOCOL_VERSION],
            capabilities: vec![ostree_build_sdk::PREVIOUS_TREE.into()],
            options: vec![
                OptionSpec::new(
                    "packages",
                    "list",
                    true,
                    "packages to install, e.g. [\"bash\", \"systemd\"] (their dependencies come along)",
                ),
                OptionSpec::new(
                    "repo-file",
                    "list",
                    false,
                    ".repo files defining the repositories, relative to the manifest (this or `repos` is required)",
                ),
                OptionSpec::new(
                    "repos",
                    "list",
                    false,
                    "inline repositories as \"id=baseurl\", e.g. \"local=file:///srv/rpms\" (a baseurl without scheme is a directory relative to the manifest)",
                ),
                OptionSpec::new(
                    "releasever",
                    "string",
                    true,
                    "the release the repositories serve ($releasever), e.g. \"41\" for Fedora 41",
                ),
                OptionSpec::new(
                    "exclude",
                    "list",
                    false,
                    "packages never to install (names or globs), even as dependencies",
                ),
                OptionSpec::new(
                    "weak-deps",
                    "bool",
                    false,
                    "also install weak dependencies (Recommends); default false, for minimal OS trees",
                ),
                OptionSpec::new(
                    "gpg-check",
                    "bool",
                    false,
                    "check package signatures against the repositories' gpgkey (default true); false for unsigned repositories",
                ),
                OptionSpec::new(
                    "docs",
                    "bool",
                    false,
                    "install documentation (default true); false sets tsflags=nodocs",
                ),
                OptionSpec::new(
                    "timeout",
                    "integer",
                    false,
                    "seconds to wait for a repository's metadata (default 30)",
                ),
            ],
        }
    }

    fn plan(&self, request: &Request) -> Result<Plan> {
        let cfg = config(request)?;
        let arch = rpm_arch(&request.arch);
        let mut h = Sha256::new();
        let field = |h: &mut Sha256, label: &str, data: &[u8]| {
            h.update(label.as_bytes());
            h.update((data.len() as u64).to_le_bytes());
            h.update(data);
        };
        // The options are hashed by the core; this is what lies outside them. Keeping them
        // out lets the core offer the previous build when only options changed.
        field(&mut h, "dnf-backend v2", b"");
        field(&mut h, "arch", arch.as_bytes());
        for (path, text) in &cfg.repo_files {
            // Named relative to the project: the same on every clone, so a shared cache's
            // key does not depend on where the project sits.
            let shown = path.strip_prefix(&request.project_dir).unwrap_or(path);
            field(&mut h, "repo-file", shown.to_string_lossy().as_bytes());
            field(&mut h, "text", text.as_bytes());
        }
        for r in &cfg.repos {
            // One message, not a context chain: the core shows plan errors' outer message.
            let state = repos::state(r, &cfg.releasever, arch, cfg.timeout)
                .map_err(|e| anyhow!("component '{}': {e:#}", request.component))?;
            field(&mut h, "repo", r.id.as_bytes());
            field(&mut h, "repomd", &state);
        }
        Ok(Plan {
            inputs: cfg.repo_files.iter().map(|(p, _)| p.clone()).collect(),
            fingerprint: hex::encode(h.finalize()),
        })
    }

    fn run(&self, request: &Request, events: &mut dyn EventSink) -> Result<Output> {
        let cfg = config(request)?;
        let tool = tool::find(self.tools())?;
        let arch = rpm_arch(&request.arch);
        // dnf wants absolute paths; an ad hoc run may give relative ones.
        let root =
            &std::path::absolute(&request.root).context("cannot read the current directory")?;
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let dirs = ToolDirs::create(self.name, &cfg, request.cache_dir.as_deref(), events)?;
        let Some(cfg) = extension(cfg, request, root, events)? else {
            return finish_tree(&tool, root, &dirs.host_paths(), events);
        };
        let cmd = dirs.command(&tool, &cfg, root, arch, events)?;
        install(&tool, &cfg, arch, cmd, events)?;
        finish_tree(&tool, root, &dirs.host_paths(), events)
    }
}
