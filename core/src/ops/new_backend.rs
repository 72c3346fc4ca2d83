//! `ostree-build new-backend`: a new backend from the compiled-in templates
//! (`backend_template`), checked first (the name against the registry's rules and the names
//! taken, the destination), then written all at once (`newdir`). The report says where the
//! built backend appears and what to point `OSTREE_BUILD_PLUGIN_PATH` at.

use crate::backend_template::{self, BackendKind};
use crate::backends::names::valid_name;
use crate::backends::search::search;
use crate::newdir::{self, NewFile};
use crate::template::Content;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What to scaffold, and the names it may not take.
pub struct NewBackendOptions {
    pub name: String,
    pub kind: BackendKind,
    /// The directory to create; default `./ostree-build-backend-<name>`.
    pub path: Option<PathBuf>,
    /// Where the Rust kinds get `ostree-build-sdk` from.
    pub sdk: SdkSource,
    /// The built-in backends' names: a plugin of one of these names would never run.
    pub builtin_backends: Vec<String>,
    /// ostree-build's commands: `ostree-build <command>` never reaches a backend.
    pub commands: Vec<String>,
}

/// Where a scaffolded crate's `ostree-build-sdk` dependency points, besides its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// The `sdk/` directory of an ostree-build checkout.
    Path(PathBuf),
    /// crates.io only (works once the sdk is published).
    Registry,
}

/// What was created, and how to build and find it.
pub struct NewBackend {
    pub name: String,
    pub kind: BackendKind,
    pub dir: PathBuf,
    pub files: Vec<String>,
    /// The directory the built backend lands in: what `OSTREE_BUILD_PLUGIN_PATH` names.
    pub plugin_dir: PathBuf,
    /// Shell commands, in order: build and test, make it found, list it.
    pub steps: Vec<String>,
    pub warnings: Vec<String>,
}

/// Scaffold the backend `opts` describes: all files or none.
pub fn new_backend(opts: &NewBackendOptions) -> Result<NewBackend> {
    check_name(opts)?;
    let dir = destination(opts)?;
    let vars = variables(opts)?;
    let files = render(opts.kind, &vars);
    newdir::check_destination(&dir, "choose another directory with --path, or remove it")?;
    newdir::create(&dir, &files)?;
    let plugin_dir = plugin_dir(opts.kind, &dir);
    Ok(NewBackend {
        name: opts.name.clone(),
        kind: opts.kind,
        files: files
            .into_iter()
            .map(|f| f.path.display().to_string())
            .collect(),
        steps: steps(opts.kind, &dir, &plugin_dir),
        warnings: warnings(opts),
        plugin_dir,
        dir,
    })
}

/// The registry's name rule, and no name that is taken: a one-line error with a hint.
fn check_name(opts: &NewBackendOptions) -> Result<()> {
    let name = opts.name.as_str();
    if let Some(rest) = name.strip_prefix("ostree-build-").filter(|r| valid_name(r)) {
        bail!("backend name '{name}' repeats the 'ostree-build-' its files get anyway\n  help: name it '{rest}': its executable is then ostree-build-{rest}");
    }
    if !valid_name(name) {
        bail!(
            "'{name}' is not a valid backend name: {}\n  help: use lowercase letters, digits and '-', starting with a letter{}",
            name_problem(name),
            name_suggestion(name)
                .map(|s| format!(" (e.g. '{s}')"))
                .unwrap_or_default()
        );
    }
    if opts.builtin_backends.iter().any(|b| b == name) {
        bail!("'{name}' is a built-in backend, and a built-in cannot be shadowed: ostree-build would never run this one\n  help: choose another name, e.g. 'my-{name}'");
    }
    if opts.commands.iter().any(|c| c == name) {
        bail!("'{name}' is an ostree-build command: `ostree-build {name}` would never reach the backend\n  help: choose another name, e.g. '{name}-backend'");
    }
    Ok(())
}

/// What is wrong with a name [`valid_name`] refuses.
fn name_problem(name: &str) -> String {
    match name.chars().next() {
        None => "it is empty".into(),
        Some(c) if !c.is_ascii_lowercase() => {
            format!("it starts with '{c}', not a lowercase letter")
        }
        _ => {
            let bad = name
                .chars()
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
                .unwrap_or(' ');
            format!("'{bad}' is not allowed")
        }
    }
}

/// The name made valid, if that is simple: lowercase, `_`, `.` and spaces as `-`.
fn name_suggestion(name: &str) -> Option<String> {
    let s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if matches!(c, '_' | '.' | ' ') { '-' } else { c })
        .collect();
    let s = s
        .trim_start_matches(|c: char| !c.is_ascii_lowercase())
        .to_string();
    valid_name(&s).then_some(s)
}

/// The directory to create, absolute.
fn destination(opts: &NewBackendOptions) -> Result<PathBuf> {
    let dir = opts
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("ostree-build-backend-{}", opts.name)));
    Ok(std::env::current_dir()?.join(dir))
}

/// The template variables.
fn variables(opts: &NewBackendOptions) -> Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("name", opts.name.clone()),
        ("lib-name", opts.name.replace('-', "_")),
        ("type-name", type_name(&opts.name)),
        ("sdk-version", sdk_requirement()),
        ("sdk-dependency", sdk_dependency(&opts.sdk, opts.kind)?),
        ("protocol", ostree_build_sdk::PROTOCOL_VERSION.to_string()),
    ])
}

/// `acme-pkgs` -> `AcmePkgsBackend` (the suffix keeps it clear of the sdk's type names).
fn type_name(name: &str) -> String {
    let mut out: String = name
        .split('-')
        .filter(|w| !w.is_empty())
        .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
        .collect();
    out.push_str("Backend");
    out
}

/// The version requirement matching this sdk: `0.minor` while it is 0.x, else `major`.
fn sdk_requirement() -> String {
    let mut parts = ostree_build_sdk::VERSION.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}"),
        (Some(major), _) => major.to_string(),
        _ => ostree_build_sdk::VERSION.to_string(),
    }
}

/// The `ostree-build-sdk = { ... }` line of a scaffolded Cargo.toml.
fn sdk_dependency(sdk: &SdkSource, kind: BackendKind) -> Result<String> {
    let mut fields = vec![format!("version = \"{}\"", sdk_requirement())];
    if let SdkSource::Path(path) = sdk {
        let path = path
            .to_str()
            .with_context(|| format!("the sdk path '{}' is not UTF-8", path.display()))?;
        fields.push(format!("path = {}", toml::Value::from(path)));
    }
    if kind == BackendKind::Cdylib {
        fields.push("features = [\"dylib\"]".into());
    }
    Ok(format!("ostree-build-sdk = {{ {} }}", fields.join(", ")))
}

/// Every file of the kind's template, rendered.
fn render(kind: BackendKind, vars: &[(&str, String)]) -> Vec<NewFile> {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    backend_template::files(kind)
        .iter()
        .map(|f| NewFile {
            path: backend_template::target_path(f, &vars).into(),
            mode: if f.executable { 0o755 } else { 0o644 },
            content: Content::File(backend_template::render(f.text, &vars).into_bytes().into()),
        })
        .collect()
}

/// Where the built backend lands: cargo's target directory (`$CARGO_TARGET_DIR` if set)
/// for the Rust kinds, the directory itself for a script.
fn plugin_dir(kind: BackendKind, dir: &Path) -> PathBuf {
    if kind == BackendKind::Script {
        return dir.to_path_buf();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|t| !t.is_empty())
        .map(|t| dir.join(t))
        .unwrap_or_else(|| dir.join("target"));
    target.join("debug")
}

fn steps(kind: BackendKind, dir: &Path, plugin_dir: &Path) -> Vec<String> {
    let build = match kind {
        BackendKind::Script => "./test.sh",
        _ => "cargo build && cargo test",
    };
    vec![
        format!("cd {}", shell_quote(dir)),
        build.into(),
        format!(
            "export OSTREE_BUILD_PLUGIN_PATH={}",
            shell_quote(plugin_dir)
        ),
        "ostree-build backends".into(),
    ]
}

/// A path as a shell word.
fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A backend of that name already on the search path, and an sdk that cannot build today.
fn warnings(opts: &NewBackendOptions) -> Vec<String> {
    let mut out: Vec<String> = search(&[])
        .candidates
        .iter()
        .filter(|c| c.name == opts.name)
        .map(|c| format!("a backend named '{}' is already found at {}; the first one on the search path wins (see `ostree-build backends`)", c.name, c.path.display()))
        .collect();
    if opts.sdk == SdkSource::Registry && opts.kind != BackendKind::Script {
        out.push("this ostree-build's sdk sources were not found, so Cargo.toml depends on ostree-build-sdk from crates.io; until it is published there, pass --sdk-path DIR (the sdk/ of an ostree-build checkout)".into());
    }
    out
}

impl SdkSource {
    /// The sdk this ostree-build was built from, if its sources are still where they were;
    /// else crates.io.
    pub fn of_this_build() -> SdkSource {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        Self::path(&dir).unwrap_or(SdkSource::Registry)
    }

    /// The sdk in `dir`, checked: its `Cargo.toml` must be `ostree-build-sdk`'s.
    pub fn path(dir: &Path) -> Result<SdkSource> {
        let not_sdk = || {
            format!(
                "--sdk-path '{}' is not the ostree-build-sdk crate\n  help: give the sdk/ directory of an ostree-build checkout",
                dir.display()
            )
        };
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let name = toml::from_str::<toml::Value>(&manifest)
            .ok()
            .and_then(|v| v.get("package")?.get("name")?.as_str().map(String::from));
        match (name.as_deref(), dir.canonicalize()) {
            (Some("ostree-build-sdk"), Ok(dir)) => Ok(SdkSource::Path(dir)),
            _ => bail!(not_sdk()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_without_a_placeholder_left() {
        for (kind, _, _) in crate::backend_template::KINDS {
            let opts = NewBackendOptions {
                name: "acme-pkgs".into(),
                kind,
                path: None,
                sdk: SdkSource::Registry,
                builtin_backends: vec![],
                commands: vec![],
            };
            for file in render(kind, &variables(&opts).unwrap()) {
                let path = file.path.display().to_string();
                let Content::File(data) = &file.content else {
                    panic!("{path}: a backend template holds files only");
                };
                let text = String::from_utf8_lossy(data).into_owned();
                for text in [&text, &path] {
                    let left = text.split("{{").skip(1).find(|after| {
                        let key = after.split("}}").next().unwrap_or_default();
                        !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    });
                    assert!(
                        left.is_none(),
                        "{kind} {path}: {{{{{}",
                        left.unwrap_or_default()
                    );
                }
                assert!(!path.ends_with(".in"), "{path}");
            }
        }
    }

    #[test]
    fn names_become_rust_names() {
        assert_eq!(type_name("acme"), "AcmeBackend");
        assert_eq!(type_name("my-pkgs2"), "MyPkgs2Backend");
    }

    #[test]
    fn invalid_names_get_a_valid_suggestion() {
        assert_eq!(name_suggestion("Acme_Pkgs").as_deref(), Some("acme-pkgs"));
        assert_eq!(name_suggestion("2fast").as_deref(), Some("fast"));
        assert_eq!(name_problem("acme/x"), "'/' is not allowed");
        assert_eq!(
            name_problem("Acme"),
            "it starts with 'A', not a lowercase letter"
        );
    }

    #[test]
    fn the_sdk_dependency_keeps_its_version() {
        let path = SdkSource::Path("/src/ostree-build/sdk".into());
        let line = sdk_dependency(&path, BackendKind::Cdylib).unwrap();
        assert_eq!(
            line,
            format!(
                "ostree-build-sdk = {{ version = \"{}\", path = \"/src/ostree-build/sdk\", features = [\"dylib\"] }}",
                sdk_requirement()
            )
        );
        assert!(sdk_requirement().starts_with("0."));
        assert!(SdkSource::path(Path::new("/")).is_err());
        assert!(matches!(SdkSource::of_this_build(), SdkSource::Path(_)));
    }
}
