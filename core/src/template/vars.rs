//! The variables a template is filled in with, their checks, and the placeholder syntax.
//!
//! A placeholder is `{{` + a variable's name + `}}`, nothing else (no spaces): `{{name}}`,
//! `{{os-name}}`, `{{arch}}`, `{{ref-prefix}}`, `{{version}}`. Only these exact strings are
//! replaced, so shell (`${x}`, `$(x)`), dnf (`$releasever`), systemd (`%n`), TOML and CI
//! expressions (`${{ github.ref }}`, `{{ .Values }}`) pass through untouched. Every value
//! is checked to a character set that is safe in a TOML string, a shell word, os-release
//! and a ref, so filling in can never break the files it lands in.

use anyhow::{bail, Result};

/// The values of a new project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    /// The project's folder name (`{{name}}`; the README's title).
    pub name: String,
    /// `[os] name`, os-release's `ID` and the hostname (`{{os-name}}`).
    pub os_name: String,
    /// `[os] arch` (`{{arch}}`).
    pub arch: String,
    /// `[os] ref-prefix` (`{{ref-prefix}}`).
    pub ref_prefix: String,
    /// The image's version prefix and os-release's `VERSION_ID` (`{{version}}`).
    pub version: String,
}

/// What the caller chose; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct VarOptions {
    pub os_name: Option<String>,
    pub arch: Option<String>,
    pub ref_prefix: Option<String>,
    pub version: Option<String>,
}

/// The version a new project starts at.
pub const DEFAULT_VERSION: &str = "1.0";

/// OS names that are refused: the tools' own names, bootc's stateroot, and the IDs of the
/// distributions the templates build on (os-release would claim to be that distribution).
const RESERVED: &[&str] = &[
    "ostree",
    "ostree-build",
    "default",
    "debian",
    "fedora",
    "poky",
];

/// Longest OS name: it is also the hostname (at most 64 bytes).
const MAX_NAME: usize = 64;

impl Vars {
    /// The values for a project in a folder called `name`, with the caller's choices.
    pub fn new(name: &str, options: &VarOptions) -> Result<Vars> {
        let os_name = match &options.os_name {
            Some(n) => check_os_name(n, "")?,
            None => check_os_name(name, "; or keep the folder name and pass --os-name NAME")?,
        };
        let arch = match &options.arch {
            Some(a) => check_arch(a)?,
            None => std::env::consts::ARCH.to_string(),
        };
        let ref_prefix = match &options.ref_prefix {
            Some(p) => check_ref_prefix(p)?,
            None => format!("{os_name}/{arch}"),
        };
        let version = match &options.version {
            Some(v) => check_version(v)?,
            None => DEFAULT_VERSION.to_string(),
        };
        Ok(Vars {
            name: name.to_string(),
            os_name,
            arch,
            ref_prefix,
            version,
        })
    }

    /// Each placeholder and its value.
    pub fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            ("name", &self.name),
            ("os-name", &self.os_name),
            ("arch", &self.arch),
            ("ref-prefix", &self.ref_prefix),
            ("version", &self.version),
        ]
    }

    /// `text` with every `{{variable}}` replaced by its value; anything else is kept.
    pub fn render(&self, text: &str) -> String {
        fill(text, &self.pairs())
    }
}

/// `text` with every `{{key}}` of `pairs` replaced by its value, in one pass (a value is
/// never searched for placeholders); anything else is kept. The rule of every template:
/// distro templates here, backend templates in `backend_template`.
pub fn fill(text: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let hit = pairs
            .iter()
            .find(|(key, _)| after.starts_with(key) && after[key.len()..].starts_with("}}"));
        match hit {
            Some((key, value)) => {
                out.push_str(value);
                rest = &after[key.len() + 2..];
            }
            None => {
                out.push('{');
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lowercase letters, digits, `.`, `-`, `_`, starting with a letter or digit: a ref part,
/// an os-release `ID` and a hostname alike.
fn check_os_name(name: &str, more_help: &str) -> Result<String> {
    let rule = "use lowercase letters, digits, '.', '-' and '_', starting with a letter or digit";
    let why = "it is the first part of every ref, os-release's ID and the hostname";
    let bad = |problem: String| -> Result<String> {
        let example = match suggestion(name) {
            Some(s) => format!(", e.g. '{s}'"),
            None => String::new(),
        };
        bail!("invalid OS name '{name}': {problem}\n  help: {rule}{example} ({why}){more_help}")
    };
    if name.is_empty() {
        return bad("it is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')))
    {
        return bad(format!("{c:?} is not allowed"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("it must start with a letter or digit".into());
    }
    if name.len() > MAX_NAME {
        return bad(format!("it is longer than {MAX_NAME} characters"));
    }
    if RESERVED.contains(&name) {
        bail!(
            "invalid OS name '{name}': it is reserved\n  help: {}{more_help}",
            reserved_help(name)
        );
    }
    Ok(name.to_string())
}

/// `name` lowercased, with every other character outside the rule turned into `-`.
fn suggestion(name: &str) -> Option<String> {
    let mapped: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    (!s.is_empty() && s.len() <= MAX_NAME).then(|| s.to_string())
}

fn reserved_help(name: &str) -> String {
    match name {
        "debian" | "fedora" | "poky" => format!(
            "'{name}' is the ID of the distribution itself; to build on it, name your OS and pick the template: `ostree-build new myos --template {}`",
            if name == "poky" { "openembedded" } else { name }
        ),
        "default" => "'default' is the stateroot bootc installs into; choose a name of your own".into(),
        _ => format!("'{name}' is the name of a tool; choose a name of your own"),
    }
}

/// An architecture: a ref part (it is in every ref by default).
fn check_arch(arch: &str) -> Result<String> {
    let ok = !arch.is_empty()
        && arch.starts_with(|c: char| c.is_ascii_alphanumeric())
        && arch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok {
        bail!("invalid --arch '{arch}'\n  help: an architecture as the kernel names it: x86_64, aarch64, riscv64 (letters, digits, '.', '-', '_')");
    }
    Ok(arch.to_string())
}

/// A ref prefix libostree accepts (refs are `<prefix>/<image>`).
fn check_ref_prefix(prefix: &str) -> Result<String> {
    if let Err(e) = crate::repo::check_ref(&format!("{prefix}/x")) {
        bail!(
            "invalid --ref-prefix '{prefix}': {e}\n  help: refs take letters, digits, '.', '-' and '_' between slashes, and no part starts with '.' or '-' (e.g. myos/x86_64)"
        );
    }
    Ok(prefix.to_string())
}

/// A version prefix that is also a valid os-release `VERSION_ID`.
fn check_version(version: &str) -> Result<String> {
    let ok = version.starts_with(|c: char| c.is_ascii_alphanumeric())
        && version
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if !ok {
        bail!("invalid --version '{version}'\n  help: lowercase letters, digits, '.', '-' and '_', starting with a letter or digit (it is os-release's VERSION_ID), e.g. 1.0 or 2025.1");
    }
    Ok(version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str, options: VarOptions) -> Result<Vars> {
        Vars::new(name, &options)
    }

    #[test]
    fn defaults_follow_the_name() {
        let v = vars("myos", VarOptions::default()).unwrap();
        assert_eq!(v.os_name, "myos");
        assert_eq!(v.ref_prefix, format!("myos/{}", std::env::consts::ARCH));
        assert_eq!(v.version, "1.0");
        let v = vars(
            "My Folder",
            VarOptions {
                os_name: Some("acme".into()),
                arch: Some("aarch64".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (v.name.as_str(), v.ref_prefix.as_str()),
            ("My Folder", "acme/aarch64")
        );
    }

    #[test]
    fn bad_names_are_refused_with_a_hint() {
        for (name, says) in [
            ("My OS", "'M' is not allowed"),
            ("My OS", "e.g. 'my-os'"),
            ("-x", "must start with a letter or digit"),
            ("", "it is empty"),
            ("debian", "--template debian"),
            ("ostree", "reserved"),
        ] {
            let e = vars(name, VarOptions::default()).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("help: "), "{name}: {e}");
            assert!(e.contains("--os-name"), "{name}: {e}");
        }
        let bad = |o: VarOptions| vars("ok", o).unwrap_err().to_string();
        assert!(bad(VarOptions {
            arch: Some("x 86".into()),
            ..Default::default()
        })
        .contains("--arch"));
        assert!(bad(VarOptions {
            ref_prefix: Some("a//b".into()),
            ..Default::default()
        })
        .contains("--ref-prefix"));
        assert!(bad(VarOptions {
            version: Some("1 \"".into()),
            ..Default::default()
        })
        .contains("--version"));
    }

    #[test]
    fn only_exact_placeholders_are_replaced() {
        let v = vars(
            "myos",
            VarOptions {
                arch: Some("x86_64".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            v.render(
                "{{os-name}} {{ref-prefix}} ${{ github.ref }} {{ os-name }} $releasever {{other}}"
            ),
            "myos myos/x86_64 ${{ github.ref }} {{ os-name }} $releasever {{other}}"
        );
    }
}
