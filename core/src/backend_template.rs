//! The templates `ostree-build new-backend` scaffolds from, compiled into the binary from
//! `templates/backends/<kind>/` (no `template.toml`, so `new` does not list them), with the
//! distro templates' placeholder rule (`template::vars::fill`): `{{name}}`, `{{lib-name}}`,
//! `{{type-name}}`, `{{sdk-dependency}}`, `{{sdk-version}}`, `{{protocol}}`, nothing else
//! replaced. A unit test of `ops::new_backend` renders every file of every kind and checks
//! that none is left.

use anyhow::{bail, Result};
use ostree_build_sdk::suggest::did_you_mean;

/// The kinds of backend there are templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// A Rust crate building the `ostree-build-<name>` executable (`exec::main`).
    Exec,
    /// A Rust crate building `libostree_build_backend_<name>.so` (`export_backend!`).
    Cdylib,
    /// A Python script `ostree-build-<name>` speaking the JSON-lines protocol.
    Script,
}

/// Every kind, with one line saying what it is (for help and errors).
pub const KINDS: [(BackendKind, &str, &str); 3] = [
    (BackendKind::Exec, "exec", "a Rust executable"),
    (BackendKind::Cdylib, "cdylib", "a Rust plugin library"),
    (BackendKind::Script, "script", "a Python script"),
];

impl std::str::FromStr for BackendKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<BackendKind> {
        if let Some((kind, _, _)) = KINDS.iter().find(|(_, name, _)| *name == s) {
            return Ok(*kind);
        }
        let mut msg = format!("unknown backend kind '{s}'");
        if let Some(close) = did_you_mean(s, KINDS.iter().map(|(_, name, _)| *name)) {
            msg.push_str(&format!("\n  help: did you mean '{close}'?"));
        }
        let all: Vec<String> = KINDS
            .iter()
            .map(|(_, n, what)| format!("{n} ({what})"))
            .collect();
        msg.push_str(&format!("\n  help: --kind is one of {}", all.join(", ")));
        bail!(msg)
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = KINDS.iter().find(|(k, _, _)| k == self).map(|(_, n, _)| *n);
        f.write_str(name.unwrap_or_default())
    }
}

/// One file of a template: its path (placeholders allowed; a `.in` suffix is dropped, so a
/// template's `Cargo.toml` is no manifest in this repository), its text, and whether it is
/// made executable.
pub struct TemplateFile {
    pub path: &'static str,
    pub text: &'static str,
    pub executable: bool,
}

macro_rules! template_file {
    ($kind:literal, $path:literal, $executable:literal) => {
        TemplateFile {
            path: $path,
            text: include_str!(concat!("../../templates/backends/", $kind, "/", $path)),
            executable: $executable,
        }
    };
}

const EXEC: &[TemplateFile] = &[
    template_file!("exec", "Cargo.toml.in", false),
    template_file!("exec", ".gitignore", false),
    template_file!("exec", "README.md", false),
    template_file!("exec", "src/main.rs", false),
    template_file!("exec", "tests/protocol.rs", false),
];

const CDYLIB: &[TemplateFile] = &[
    template_file!("cdylib", "Cargo.toml.in", false),
    template_file!("cdylib", ".gitignore", false),
    template_file!("cdylib", "README.md", false),
    template_file!("cdylib", "src/lib.rs", false),
];

const SCRIPT: &[TemplateFile] = &[
    template_file!("script", "ostree-build-{{name}}", true),
    template_file!("script", "README.md", false),
    template_file!("script", "test.sh", true),
];

/// The files of `kind`'s template.
pub fn files(kind: BackendKind) -> &'static [TemplateFile] {
    match kind {
        BackendKind::Exec => EXEC,
        BackendKind::Cdylib => CDYLIB,
        BackendKind::Script => SCRIPT,
    }
}

/// The path a template file gets: placeholders filled, `.in` dropped.
pub fn target_path(file: &TemplateFile, vars: &[(&str, &str)]) -> String {
    let path = render(file.path, vars);
    path.strip_suffix(".in").unwrap_or(&path).to_string()
}

/// `text` with every `{{variable}}` of `vars` filled in.
pub fn render(text: &str, vars: &[(&str, &str)]) -> String {
    crate::template::vars::fill(text, vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every file under `templates/backends/<kind>/`, relative to it, sorted.
    fn on_disk(kind: BackendKind) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), base, out);
                } else {
                    let rel = e.path().strip_prefix(base).unwrap().to_owned();
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let base = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../templates/backends")
            .join(kind.to_string());
        let mut out = vec![];
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    #[test]
    fn every_template_file_is_compiled_in() {
        for (kind, _, _) in KINDS {
            let mut listed: Vec<String> = files(kind).iter().map(|f| f.path.into()).collect();
            listed.sort();
            assert_eq!(listed, on_disk(kind), "templates/backends/{kind}");
        }
    }

    #[test]
    fn placeholders_are_filled_and_anything_else_kept() {
        let vars = [("name", "acme"), ("type-name", "AcmeBackend")];
        assert_eq!(
            render("a {{name}} b{{type-name}}", &vars),
            "a acme bAcmeBackend"
        );
        let other = "${{ github.ref }} {{ name }} {{other}} format!(\"{{}}\") {{{name}}";
        assert_eq!(render(other, &vars), other.replace("{{{name}}", "{acme"));
    }

    #[test]
    fn kinds_parse_and_unknown_ones_get_a_hint() {
        assert_eq!(
            "cdylib".parse::<BackendKind>().unwrap(),
            BackendKind::Cdylib
        );
        let err = "exe".parse::<BackendKind>().unwrap_err().to_string();
        assert!(err.starts_with("unknown backend kind 'exe'\n  help: did you mean 'exec'?"));
    }
}
