//! The `debootstrap` backend: a Debian or Ubuntu root filesystem from a mirror, made by
//! debootstrap (or mmdebstrap when asked for), with the installed package list.
//!
//! This module owns the backend's options (validation, defaults, the architecture name
//! mapping), the checks `plan` makes before anything is built (tool installed, root, mirror
//! and suite reachable), the fingerprint (options plus the suite's `Release` file, so a
//! component rebuilds when the mirror publishes and not otherwise), and the tool's command
//! line, including the package cache kept between runs. `mirror` finds the default mirror
//! and fetches `Release`; `runner` runs the tool; `tree` makes the result fit to commit and
//! reads the package list.

mod extend;
mod mirror;
mod progress;
mod runner;
mod tree;

use anyhow::{bail, Context, Result};
use ostree_build_sdk::{
    require_exists, Backend, BackendInfo, EventSink, OptionSpec, Output, Plan, Request,
    PROTOCOL_VERSION,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct DebootstrapBackend;

/// Past this, the tool is killed: a minbase bootstrap takes minutes, a large one with a
/// slow mirror well under an hour.
const TOOL_LIMIT: Duration = Duration::from_secs(2 * 60 * 60);
const DEFAULT_TIMEOUT: u64 = 20;
/// What mmdebstrap writes into the scratch directory.
const ROOTFS_TAR: &str = "rootfs.tar";
const DEBOOTSTRAP_VARIANTS: &[&str] = &["minbase", "buildd", "fakechroot"];
const MMDEBSTRAP_VARIANTS: &[&str] = &[
    "extract",
    "custom",
    "essential",
    "apt",
    "required",
    "minbase",
    "buildd",
    "important",
    "debootstrap",
    "standard",
];
/// ostree-build architecture names and their Debian names.
const ARCHES: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("aarch64", "arm64"),
    ("i686", "i386"),
    ("i586", "i386"),
    ("i386", "i386"),
    ("armv7", "armhf"),
    ("armv7l", "armhf"),
    ("armv7hl", "armhf"),
    ("ppc64le", "ppc64el"),
    ("s390x", "s390x"),
    ("riscv64", "riscv64"),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tool {
    Debootstrap,
    Mmdebstrap,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Debootstrap => "debootstrap",
            Tool::Mmdebstrap => "mmdebstrap",
        }
    }
}

/// One `extra-sources` line.
#[derive(Debug, Clone)]
struct ExtraSource {
    line: String,
    /// The `Release` URL to fingerprint (`deb` lines only).
    release_url: Option<String>,
}

/// A request's options, checked, with defaults filled in.
#[derive(Debug)]
struct Config {
    component: String,
    suite: String,
    mirror: String,
    /// Where the mirror came from, for the log.
    mirror_from: String,
    variant: String,
    components: Vec<String>,
    include: Vec<String>,
    exclude: Vec<String>,
    keyring: Option<PathBuf>,
    extra_sources: Vec<ExtraSource>,
    tool: Tool,
    timeout: u64,
    debarch: String,
}

impl Config {
    fn from_request(r: &Request) -> Result<Config> {
        let c = &r.component;
        let suite = suite_option(r)?;
        let (mirror, mirror_from) = resolve_mirror(r)?;
        let tool = tool_option(r)?;
        let variant = variant_option(r, tool)?;
        let components = components_option(r)?;
        let (include, exclude) = package_options(r, tool)?;
        let keyring = r.path_option("keyring")?;
        if let Some(k) = &keyring {
            require_exists(c, "keyring", k)?;
        }
        let mut extra_sources = Vec::new();
        for line in r.list_option("extra-sources")? {
            extra_sources.push(parse_source_line(c, &line)?);
        }
        let timeout = timeout_option(r)?;
        let debarch = debian_arch(r)?;
        Ok(Config {
            component: c.clone(),
            suite,
            mirror,
            mirror_from,
            variant,
            components,
            include,
            exclude,
            keyring,
            extra_sources,
            tool,
            timeout,
            debarch,
        })
    }
}

fn suite_option(r: &Request) -> Result<String> {
    let c = &r.component;
    let suite = r
        .str_option("suite")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "component '{c}': missing option 'suite'\n  help: the release to bootstrap, e.g. suite = \"bookworm\""
            )
        })?
        .to_string();
    if !suite
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
    {
        bail!("component '{c}': suite '{suite}' is not a suite name (letters, digits, '.', '_', '-'), e.g. bookworm");
    }
    Ok(suite)
}

/// The mirror and where it came from: the manifest, else the host's apt configuration,
/// else the built-in default.
fn resolve_mirror(r: &Request) -> Result<(String, String)> {
    let c = &r.component;
    let (mirror, mirror_from) = match r.str_option("mirror")? {
        Some(m) => (
            m.trim().trim_end_matches('/').to_string(),
            "manifest".to_string(),
        ),
        None => match mirror::host_mirror(Path::new("/etc/apt")) {
            Some((m, file)) => (m, format!("host apt configuration, {file}")),
            None => (
                mirror::FALLBACK_MIRROR.to_string(),
                "built-in default".to_string(),
            ),
        },
    };
    if !["http://", "https://", "file://"]
        .iter()
        .any(|s| mirror.starts_with(s))
        || mirror.contains(char::is_whitespace)
    {
        bail!("component '{c}': mirror '{mirror}' is not an http://, https:// or file:// URL\n  help: e.g. mirror = \"http://deb.debian.org/debian\"");
    }
    Ok((mirror, mirror_from))
}

fn tool_option(r: &Request) -> Result<Tool> {
    let c = &r.component;
    Ok(match r.str_option("tool")?.unwrap_or("debootstrap") {
        "debootstrap" => Tool::Debootstrap,
        "mmdebstrap" => Tool::Mmdebstrap,
        other => bail!(
            "component '{c}': tool '{other}' is not supported\n  help: use \"debootstrap\" (the default) or \"mmdebstrap\""
        ),
    })
}

fn variant_option(r: &Request, tool: Tool) -> Result<String> {
    let c = &r.component;
    let variant = r.str_option("variant")?.unwrap_or("minbase").to_string();
    let variants = match tool {
        Tool::Debootstrap => DEBOOTSTRAP_VARIANTS,
        Tool::Mmdebstrap => MMDEBSTRAP_VARIANTS,
    };
    if !variants.contains(&variant.as_str()) {
        bail!(
            "component '{c}': variant '{variant}' is not a {} variant\n  help: use one of {}",
            tool.name(),
            variants.join(", ")
        );
    }
    Ok(variant)
}

fn components_option(r: &Request) -> Result<Vec<String>> {
    let c = &r.component;
    let mut components = r.list_option("components")?;
    if components.is_empty() {
        components.push("main".into());
    }
    for comp in &components {
        if comp.is_empty()
            || !comp
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_/".contains(ch))
        {
            bail!("component '{c}': '{comp}' in `components` is not an archive area (e.g. main, contrib, non-free, non-free-firmware)");
        }
    }
    Ok(components)
}

/// `include` and `exclude`, checked as the tool reads them.
fn package_options(r: &Request, tool: Tool) -> Result<(Vec<String>, Vec<String>)> {
    let c = &r.component;
    let include = r.list_option("include")?;
    let exclude = r.list_option("exclude")?;
    for (key, list) in [("include", &include), ("exclude", &exclude)] {
        for p in list.iter() {
            let ok = match tool {
                Tool::Debootstrap => is_package_name(p),
                // apt also takes name=version, name/suite and patterns.
                Tool::Mmdebstrap => {
                    !p.is_empty() && !p.contains(|ch: char| ch.is_whitespace() || ch == ',')
                }
            };
            if !ok {
                bail!("component '{c}': '{p}' in `{key}` is not a package name");
            }
        }
    }
    if tool == Tool::Mmdebstrap && !exclude.is_empty() {
        bail!(
            "component '{c}': `exclude` is only supported with tool = \"debootstrap\"\n  help: with mmdebstrap pick a smaller variant (e.g. essential or apt) and `include` what you need"
        );
    }
    Ok((include, exclude))
}

fn timeout_option(r: &Request) -> Result<u64> {
    let c = &r.component;
    let timeout = match r.options.get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
        Some(other) => {
            bail!("component '{c}': option 'timeout' must be an integer (seconds), got {other}")
        }
    };
    if !(1..=3600).contains(&timeout) {
        bail!("component '{c}': option 'timeout' must be a number of seconds from 1 to 3600");
    }
    Ok(timeout)
}

/// The request's architecture in Debian's spelling.
fn debian_arch(r: &Request) -> Result<String> {
    ARCHES
        .iter()
        .find(|(a, _)| *a == r.arch)
        .map(|(_, d)| d.to_string())
        .ok_or_else(|| {
            let known: Vec<&str> = ARCHES.iter().map(|(a, _)| *a).collect();
            anyhow::anyhow!(
                "component '{}': architecture '{}' has no Debian name known to this backend\n  help: use one of {}",
                r.component,
                r.arch,
                known.join(", ")
            )
        })
}

/// Debian package names: lower case letters, digits, `+`, `-`, `.`; at least two long.
fn is_package_name(p: &str) -> bool {
    p.len() >= 2
        && p.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && p.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "+-.".contains(ch))
}

/// `deb [options] URI suite [components...]` (or `deb-src ...`).
fn parse_source_line(component: &str, line: &str) -> Result<ExtraSource> {
    let bad = || {
        anyhow::anyhow!(
            "component '{component}': extra source '{line}' is not an apt source line\n  help: write \"deb URI SUITE COMPONENTS\", e.g. \"deb http://deb.debian.org/debian bookworm-backports main\""
        )
    };
    let line = line.trim();
    let (kind, rest) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
    if kind != "deb" && kind != "deb-src" {
        return Err(bad());
    }
    let mut rest = rest.trim_start();
    if rest.starts_with('[') {
        let end = rest.find(']').ok_or_else(bad)?;
        rest = rest[end + 1..].trim_start();
    }
    let mut words = rest.split_whitespace();
    let (uri, suite) = match (words.next(), words.next()) {
        (Some(u), Some(s)) if u.contains("://") => (u.trim_end_matches('/'), s),
        _ => return Err(bad()),
    };
    let release_url = (kind == "deb").then(|| match suite.strip_suffix('/') {
        // A flat repository: `deb URI path/`.
        Some(path) if words.next().is_none() => {
            format!("{uri}/{}/Release", path.trim_matches('/')).replace("//Release", "/Release")
        }
        _ => format!("{uri}/dists/{suite}/Release"),
    });
    Ok(ExtraSource {
        line: line.to_string(),
        release_url,
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and has no side effects.
    unsafe { libc::geteuid() == 0 }
}

/// The tool to run: root for debootstrap, then the executable on PATH.
fn check_tool(cfg: &Config) -> Result<PathBuf> {
    let c = &cfg.component;
    if cfg.tool == Tool::Debootstrap && !is_root() {
        bail!(
            "component '{c}': debootstrap needs root (running as uid {})\n  help: run ostree-build as root, or set tool = \"mmdebstrap\" (--tool mmdebstrap), which runs without root",
            // SAFETY: as above.
            unsafe { libc::geteuid() }
        );
    }
    let name = cfg.tool.name();
    ostree_build_sdk::which(name).ok_or_else(|| {
        let elsewhere = ["/usr/sbin", "/sbin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file());
        match elsewhere {
            Some(p) => anyhow::anyhow!(
                "component '{c}': {name} is not on PATH (PATH does not include {})\n  help: add {} to PATH, or install the Debian package '{name}' (apt-get install {name})",
                p.display(),
                p.parent().map(|d| d.display().to_string()).unwrap_or_default()
            ),
            None => anyhow::anyhow!(
                "component '{c}': {name} is not installed (not found on PATH)\n  help: install the Debian package '{name}': apt-get install {name}"
            ),
        }
    })
}

/// Quote `s` for a POSIX shell (and for mmdebstrap's shellwords-split special hooks).
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// PATH for the tool: the caller's, plus the sbin directories debootstrap needs (chroot,
/// ldconfig...), which a user's PATH often lacks.
fn tool_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(PathBuf::from(d));
        }
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn command(cfg: &Config, exe: &Path, root: &Path, cache: Option<&Path>) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("PATH", tool_path());
    cmd.arg(format!("--variant={}", cfg.variant))
        .arg(format!("--arch={}", cfg.debarch))
        .arg(format!("--components={}", cfg.components.join(",")));
    if !cfg.include.is_empty() {
        cmd.arg(format!("--include={}", cfg.include.join(",")));
    }
    if let Some(k) = &cfg.keyring {
        cmd.arg(format!("--keyring={}", k.display()));
    }
    match cfg.tool {
        Tool::Debootstrap => {
            if !cfg.exclude.is_empty() {
                cmd.arg(format!("--exclude={}", cfg.exclude.join(",")));
            }
            if let Some(cache) = cache {
                cmd.arg(format!("--cache-dir={}", cache.display()));
            }
            cmd.arg(&cfg.suite).arg(root).arg(&cfg.mirror);
        }
        Tool::Mmdebstrap => {
            // A tarball, not a directory: without root (unshare mode) the directory would
            // belong to subordinate ids this process cannot read; the tar carries owners as
            // they are in the image, and the core streams it in. Device nodes stay out.
            cmd.args(["--mode=auto", "--format=tar", "--skip=output/dev"]);
            if let Some(cache) = cache {
                let cache = sh_quote(&cache.to_string_lossy());
                // Keep the packages of the essential set in /var/cache/apt/archives so
                // that sync-out sees them all.
                cmd.arg("--skip=essential/unlink")
                    .arg("--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives")
                    .arg(format!(
                        "--setup-hook=sync-in {cache} /var/cache/apt/archives/"
                    ))
                    .arg(format!(
                        "--customize-hook=sync-out /var/cache/apt/archives {cache}"
                    ));
            }
            cmd.arg(format!(
                "--customize-hook=set -- \"$1\" hook\n{}",
                tree::TIDY_SCRIPT
            ))
            .arg(format!(
                "--customize-hook=copy-out /{}/status {}",
                tree::DPKG_DB,
                sh_quote(&root.to_string_lossy())
            ));
            cmd.arg(&cfg.suite)
                .arg(root.join(ROOTFS_TAR))
                .arg(&cfg.mirror);
            // Extra sources take part in resolving packages.
            for s in &cfg.extra_sources {
                cmd.arg(&s.line);
            }
        }
    }
    cmd
}

/// An exclusive lock on the package cache `dir` (a file next to it, so that mmdebstrap's
/// sync-in does not copy it into the tree), held until the returned file is dropped.
fn lock_cache(dir: &Path, events: &mut dyn EventSink) -> Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let path = dir.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the cache lock {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        events.info(&format!(
            "waiting for another bootstrap using the package cache {}",
            dir.display()
        ));
        // SAFETY: as above; blocks until the other holder is done.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    Ok(file)
}

/// The error for a failed run: missing packages by name, else the tool's last words.
fn failure(cfg: &Config, ran: &runner::Ran, root: &Path) -> anyhow::Error {
    let tool = cfg.tool.name();
    let missing = missing_packages(ran);
    if !missing.is_empty() {
        return anyhow::anyhow!(
            "component '{}': package{} not found in suite '{}' at {} ({}): {}\n  help: check the names in `include` (packages.debian.org lists what each suite has) and `components` (now: {})",
            cfg.component,
            if missing.len() == 1 { "" } else { "s" },
            cfg.suite,
            cfg.mirror,
            cfg.components.join(","),
            missing.join(", "),
            cfg.components.join(", ")
        );
    }
    let Some(status) = ran.status else {
        return anyhow::anyhow!(
            "component '{}': {tool} did not finish within {} minutes and was killed",
            cfg.component,
            TOOL_LIMIT.as_secs() / 60
        );
    };
    let shown = last_output(ran, root);
    let summary = ran
        .errors
        .last()
        .cloned()
        .or_else(|| ran.tail.back().cloned())
        .unwrap_or_else(|| "no output".into());
    anyhow::anyhow!(
        "component '{}': {tool} failed ({status}): {summary}\n  last output:\n{}",
        cfg.component,
        shown.join("\n")
    )
}

/// The packages the tool or apt said it could not find, sorted, once each.
fn missing_packages(ran: &runner::Ran) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for line in &ran.errors {
        if let Some(list) = line.split("Couldn't find these debs:").nth(1) {
            missing.extend(list.split_whitespace().map(str::to_string));
        }
        for marker in ["Unable to locate package ", "Package '"] {
            if let Some(rest) = line.split(marker).nth(1) {
                let name = rest
                    .split(|ch: char| ch.is_whitespace() || ch == '\'')
                    .next()
                    .unwrap_or("");
                if !name.is_empty()
                    && (marker != "Package '" || line.contains("no installation candidate"))
                {
                    missing.push(name.to_string());
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    missing
}

/// The last 20 lines of output to quote, indented, with the end of debootstrap's log.
fn last_output(ran: &runner::Ran, root: &Path) -> Vec<String> {
    let mut lines: Vec<String> = ran.tail.iter().cloned().collect();
    // debootstrap says "See <root>/debootstrap/debootstrap.log"; that file goes away with
    // the scratch root, so quote its end.
    let log = root.join("debootstrap/debootstrap.log");
    if let Ok(text) = std::fs::read_to_string(&log) {
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        lines.push(format!("--- end of {}:", log.display()));
        lines.extend(tail.into_iter().rev().map(str::to_string));
    }
    lines
        .iter()
        .rev()
        .take(20)
        .rev()
        .map(|l| format!("    {l}"))
        .collect()
}

/// `--skip=output/dev` leaves /dev out of mmdebstrap's tarball altogether; put back the
/// empty directory (root-owned, 0755) that every other tree has as a mount point.
fn append_empty_dev(tar: &Path, scratch: &Path) -> Result<()> {
    let dir = scratch.join("empty-dev");
    std::fs::create_dir_all(dir.join("dev"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let out = Command::new("tar")
        .arg("--append")
        .arg("--file")
        .arg(tar)
        .args([
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mode=0755",
            "-C",
        ])
        .arg(&dir)
        .arg("./dev")
        .output()
        .context("cannot run tar to add /dev to mmdebstrap's tarball")?;
    if !out.status.success() {
        bail!(
            "cannot add /dev to {}: {}",
            tar.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Write the extra sources into the tree (debootstrap; mmdebstrap keeps them in
/// /etc/apt/sources.list, where it puts every source it installs from).
fn write_extra_sources(cfg: &Config, root: &Path) -> Result<()> {
    if cfg.extra_sources.is_empty() {
        return Ok(());
    }
    let dir = root.join("etc/apt/sources.list.d");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut text = String::from("# Written by ostree-build (option extra-sources).\n");
    for s in &cfg.extra_sources {
        text.push_str(&s.line);
        text.push('\n');
    }
    let file = dir.join("ostree-build.list");
    std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))
}

/// The package cache for the suite and architecture, kept between runs (none from an old
/// core).
fn package_cache(
    cfg: &Config,
    cache_dir: Option<&Path>,
    events: &mut dyn EventSink,
) -> Result<Option<PathBuf>> {
    Ok(match cache_dir {
        Some(dir) => {
            let dir = std::path::absolute(dir)
                .context("cannot read the current directory")?
                .join(format!("{}-{}", cfg.suite, cfg.debarch));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the package cache {}", dir.display()))?;
            Some(dir)
        }
        None => {
            events.warn("no cache directory from the core: packages are downloaded every time");
            None
        }
    })
}

/// Run the tool into `root`; mounts it leaves behind are detached whether it worked or not.
fn bootstrap(
    cfg: &Config,
    exe: &Path,
    root: &Path,
    cache: Option<&Path>,
    events: &mut dyn EventSink,
) -> Result<()> {
    events.info(&format!(
        "{} {} {} for {} from {} ({}){}",
        cfg.tool.name(),
        cfg.variant,
        cfg.suite,
        cfg.debarch,
        cfg.mirror,
        cfg.mirror_from,
        cache
            .map(|c| format!("; package cache {}", c.display()))
            .unwrap_or_default()
    ));
    let ran = runner::run(command(cfg, exe, root, cache), events, TOOL_LIMIT);
    let unmounted = runner::unmount_below(root);
    if !unmounted.is_empty() {
        events.warn(&format!(
            "detached mounts the tool left behind: {}",
            unmounted.join(", ")
        ));
    }
    let ran = ran?;
    if !matches!(ran.status, Some(s) if s.success()) {
        return Err(failure(cfg, &ran, root));
    }
    Ok(())
}

/// mmdebstrap's tarball, tidied by the customize hook; the status file was copied out next
/// to it.
fn mmdebstrap_output(root: &Path, events: &mut dyn EventSink) -> Result<Output> {
    append_empty_dev(&root.join(ROOTFS_TAR), root)?;
    let packages = tree::packages(&root.join("status"))?;
    events.info(&format!("{} packages installed", packages.len()));
    Ok(Output::Archive {
        path: root.join(ROOTFS_TAR),
        packages,
    })
}

/// debootstrap's directory, made fit to commit; the core gets it back as it named it
/// (`request_root`).
fn debootstrap_output(
    cfg: &Config,
    root: &Path,
    request_root: &Path,
    cache: Option<&Path>,
    events: &mut dyn EventSink,
) -> Result<Output> {
    write_extra_sources(cfg, root)?;
    if let Some(cache) = cache {
        extend::keep_indexes(cfg, root, cache)
            .context("cannot keep the package indexes for later extensions")?;
    }
    let tidied = tree::tidy(root).context("cannot prepare the bootstrapped tree for committing")?;
    events.info(&format!("tidied the tree: {tidied}"));
    let packages = tree::packages(&root.join(tree::DPKG_DB).join("status"))?;
    events.info(&format!("{} packages installed", packages.len()));
    Ok(Output::Tree {
        root: request_root.to_path_buf(),
        packages,
    })
}

impl Backend for DebootstrapBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "debootstrap".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "a Debian/Ubuntu root filesystem from a mirror (debootstrap, mmdebstrap)".into(),
            protocols: vec![PROTOCOL_VERSION],
            capabilities: vec![ostree_build_sdk::PREVIOUS_TREE.into()],
            options: vec![
                OptionSpec::new("suite", "string", true, "the release to bootstrap, e.g. bookworm, trixie, sid"),
                OptionSpec::new("mirror", "string", false, "archive URL (http, https, file); default: the host's first Debian apt source, else http://deb.debian.org/debian"),
                OptionSpec::new("variant", "string", false, "package selection: minbase (default), buildd, fakechroot; mmdebstrap also essential, apt, required, important, standard"),
                OptionSpec::new("components", "list", false, "archive areas, default main (e.g. main,contrib,non-free-firmware)"),
                OptionSpec::new("include", "list", false, "extra packages to install"),
                OptionSpec::new("exclude", "list", false, "packages to leave out (debootstrap only)"),
                OptionSpec::new("keyring", "path", false, "OpenPGP keyring to check the mirror's Release file with"),
                OptionSpec::new("extra-sources", "list", false, "more apt source lines (\"deb URI SUITE COMPONENTS\"), written to /etc/apt/sources.list.d/ostree-build.list (debootstrap) or used to install from and kept in /etc/apt/sources.list (mmdebstrap)"),
                OptionSpec::new("tool", "string", false, "debootstrap (default, needs root) or mmdebstrap (also runs without root)"),
                OptionSpec::new("timeout", "integer", false, "seconds to wait for the mirror when checking it, default 20"),
            ],
        }
    }

    fn plan(&self, request: &Request) -> Result<Plan> {
        let cfg = Config::from_request(request)?;
        check_tool(&cfg)?;
        let release = mirror::fetch_release(&cfg.mirror, &cfg.suite, cfg.timeout)
            .map_err(|e| anyhow::anyhow!("component '{}': {e:#}", cfg.component))?;
        // The options are hashed by the core; this is what lies outside them: the mirror
        // as resolved (the host's apt sources when unset) and its state. Keeping options
        // out lets the core offer the previous build when only options changed.
        let mut h = Sha256::new();
        h.update(b"ostree-build debootstrap fingerprint v2\0");
        h.update(cfg.mirror.as_bytes());
        h.update(b"\0");
        h.update(cfg.debarch.as_bytes());
        h.update(b"\0");
        h.update(&release);
        for s in &cfg.extra_sources {
            if let Some(url) = &s.release_url {
                let body = mirror::fetch_url(url, cfg.timeout).map_err(|e| {
                    anyhow::anyhow!(
                        "component '{}': extra source '{}': {e:#}",
                        cfg.component,
                        s.line
                    )
                })?;
                h.update(b"\0");
                h.update(url.as_bytes());
                h.update(b"\0");
                h.update(&body);
            }
        }
        Ok(Plan {
            inputs: cfg.keyring.iter().cloned().collect(),
            fingerprint: hex::encode(h.finalize()),
        })
    }

    fn run(&self, request: &Request, events: &mut dyn EventSink) -> Result<Output> {
        let cfg = Config::from_request(request)?;
        let exe = check_tool(&cfg)?;
        let root =
            std::path::absolute(&request.root).context("cannot read the current directory")?;
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let cache = package_cache(&cfg, request.cache_dir.as_deref(), events)?;
        // Components of one project run in parallel and share the cache: one at a time.
        let _lock = match &cache {
            Some(dir) => Some(lock_cache(dir, events)?),
            None => None,
        };
        if let Some(previous) = &request.previous {
            match extend::added_packages(&cfg, request, previous) {
                Ok(added) => {
                    extend::extend(&cfg, &root, cache.as_deref(), &added, events)?;
                    return debootstrap_output(
                        &cfg,
                        &root,
                        &request.root,
                        cache.as_deref(),
                        events,
                    );
                }
                Err(why) => {
                    events.info(&format!(
                        "bootstrapping from scratch, not extending the previous build: {why}"
                    ));
                    ostree_build_sdk::empty_dir(&root)?;
                }
            }
        }
        bootstrap(&cfg, &exe, &root, cache.as_deref(), events)?;
        match cfg.tool {
            Tool::Mmdebstrap => mmdebstrap_output(&root, events),
            Tool::Debootstrap => {
                debootstrap_output(&cfg, &root, &request.root, cache.as_deref(), events)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn request(options: serde_json::Value) -> Request {
        Request {
            protocol: PROTOCOL_VERSION,
            component: "base".into(),
            arch: "x86_64".into(),
            project_dir: PathBuf::from("/nonexistent"),
            root: PathBuf::from("/nonexistent/root"),
            options: options.as_object().cloned().unwrap_or_default(),
            cache_dir: None,
            previous: None,
        }
    }

    #[test]
    fn defaults() {
        let cfg = Config::from_request(&request(serde_json::json!({"suite": "bookworm"}))).unwrap();
        assert_eq!(cfg.variant, "minbase");
        assert_eq!(cfg.components, vec!["main"]);
        assert_eq!(cfg.debarch, "amd64");
        assert_eq!(cfg.tool, Tool::Debootstrap);
        assert_eq!(cfg.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_options() {
        for (opts, needle) in [
            (serde_json::json!({}), "suite"),
            (
                serde_json::json!({"suite": "bookworm", "tool": "cdebootstrap"}),
                "tool 'cdebootstrap'",
            ),
            (
                serde_json::json!({"suite": "bookworm", "variant": "huge"}),
                "variant 'huge'",
            ),
            (
                serde_json::json!({"suite": "bookworm", "include": "Bad Name"}),
                "'Bad Name'",
            ),
            (
                serde_json::json!({"suite": "bookworm", "mirror": "ftp://x/debian"}),
                "ftp://x/debian",
            ),
            (
                serde_json::json!({"suite": "bookworm", "timeout": 0}),
                "timeout",
            ),
            (
                serde_json::json!({"suite": "bookworm", "extra-sources": ["http://x bookworm main"]}),
                "extra source",
            ),
            (
                serde_json::json!({"suite": "bookworm", "tool": "mmdebstrap", "exclude": ["a1"]}),
                "exclude",
            ),
        ] {
            let e = Config::from_request(&request(opts))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn source_lines() {
        let s = parse_source_line(
            "c",
            "deb [signed-by=/k] http://x.org/debian/ bookworm-backports main",
        )
        .unwrap();
        assert_eq!(
            s.release_url.as_deref(),
            Some("http://x.org/debian/dists/bookworm-backports/Release")
        );
        let s = parse_source_line("c", "deb file:///srv/repo ./").unwrap();
        assert_eq!(s.release_url.as_deref(), Some("file:///srv/repo/./Release"));
    }

    #[test]
    fn mmdebstrap_cache_hooks_are_quoted() {
        let cfg = Config::from_request(&request(
            serde_json::json!({"suite": "bookworm", "tool": "mmdebstrap"}),
        ))
        .unwrap();
        let cmd = command(
            &cfg,
            Path::new("mmdebstrap"),
            Path::new("/r"),
            Some(Path::new("/c/it's")),
        );
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.contains(
                &"--setup-hook=sync-in '/c/it'\\''s' /var/cache/apt/archives/".to_string()
            ),
            "{args:?}"
        );
        assert!(args.contains(&"--skip=essential/unlink".to_string()));
    }
}
