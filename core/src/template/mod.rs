//! Distro templates for `ostree-build new` and `init`: the built-in ones, compiled into
//! the library from the workspace's `templates/` by `build.rs`, and any folder given by
//! path. A template is a project folder (an `ostree-build.toml` and what it names) plus an
//! optional `template.toml` (its one-line description; never copied). `vars` fills in the
//! `{{name}}`-style placeholders.

pub mod vars;

use anyhow::{anyhow, bail, Context, Result};
use ostree_build_sdk::suggest::did_you_mean;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The template `ostree-build new` uses when none is named.
pub const DEFAULT: &str = "minimal";

/// A template's own settings file, read and never copied.
pub const SETTINGS: &str = "template.toml";

/// A template compiled into the binary.
struct Embedded {
    name: &'static str,
    files: &'static [EmbeddedFile],
}

/// One file or symlink of a compiled-in template.
struct EmbeddedFile {
    path: &'static str,
    mode: u32,
    link: Option<&'static str>,
    data: &'static [u8],
}

static BUILTIN: &[Embedded] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// What a template holds at one path.
#[derive(Debug, Clone)]
pub enum Content {
    /// A regular file's bytes (placeholders are filled in when they are UTF-8 text).
    File(Cow<'static, [u8]>),
    /// A symlink's target, copied as it is.
    Symlink(String),
}

/// One entry of a template: a path relative to the project folder, its mode and content.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub path: PathBuf,
    pub mode: u32,
    pub content: Content,
}

/// A template, ready to be filled in.
#[derive(Debug, Clone)]
pub struct Template {
    /// The built-in name, or the folder as given.
    pub name: String,
    pub description: String,
    /// Every file and symlink, `template.toml` left out.
    pub files: Vec<TemplateFile>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    description: String,
}

/// The built-in templates: `(name, description)`, sorted by name.
pub fn list() -> Vec<(String, String)> {
    BUILTIN
        .iter()
        .map(|t| {
            let template = from_embedded(t)?;
            Ok((template.name, template.description))
        })
        .collect::<Result<Vec<_>>>()
        .expect("built-in templates have valid settings (checked by a unit test)")
}

/// The template `spec` names: a built-in name, or, when it contains a `/`, a folder.
pub fn resolve(spec: &str) -> Result<Template> {
    if spec.contains('/') {
        return from_dir(Path::new(spec));
    }
    match BUILTIN.iter().find(|t| t.name == spec) {
        Some(t) => from_embedded(t),
        None => Err(unknown(spec)),
    }
}

/// "no template", with a did-you-mean, or the hint that a folder needs a `/`.
fn unknown(spec: &str) -> anyhow::Error {
    let names = BUILTIN.iter().map(|t| t.name);
    let help = if let Some(s) = did_you_mean(spec, names) {
        format!("did you mean `{s}`? (`ostree-build new --list` shows every template)")
    } else if Path::new(spec)
        .join(crate::manifest::MANIFEST_NAME)
        .is_file()
    {
        format!("to use the folder `{spec}` as a template, write `--template ./{spec}`")
    } else {
        "`ostree-build new --list` shows the built-in templates; a folder is given by a path (`./my-template`)".into()
    };
    anyhow!("no template named '{spec}'\n  help: {help}")
}

fn from_embedded(t: &Embedded) -> Result<Template> {
    let mut settings = Settings::default();
    let mut files = Vec::new();
    for f in t.files {
        if f.path == SETTINGS {
            settings = parse_settings(f.data, Path::new(t.name))?;
            continue;
        }
        let content = match f.link {
            Some(target) => Content::Symlink(target.to_string()),
            None => Content::File(Cow::Borrowed(f.data)),
        };
        files.push(TemplateFile {
            path: PathBuf::from(f.path),
            mode: f.mode,
            content,
        });
    }
    Ok(Template {
        name: t.name.to_string(),
        description: settings.description,
        files,
    })
}

fn parse_settings(data: &[u8], template: &Path) -> Result<Settings> {
    let text = std::str::from_utf8(data).unwrap_or_default();
    toml::from_str(text).map_err(|e| {
        anyhow!(
            "{}: {}",
            template.join(SETTINGS).display(),
            e.message().replace('\n', " ")
        )
    })
}

/// A template folder on disk. Its `.git/` and `build/` (a project's output) are left out.
fn from_dir(dir: &Path) -> Result<Template> {
    if !dir.join(crate::manifest::MANIFEST_NAME).is_file() {
        bail!(
            "template folder `{}` has no {}\n  help: a template is a project folder: an {} and the files it names (plus an optional {SETTINGS})",
            dir.display(),
            crate::manifest::MANIFEST_NAME,
            crate::manifest::MANIFEST_NAME
        );
    }
    let settings_path = dir.join(SETTINGS);
    let settings = match std::fs::read(&settings_path) {
        Ok(data) => parse_settings(&data, dir)?,
        Err(_) => Settings::default(),
    };
    let mut files = Vec::new();
    read_dir_files(dir, Path::new(""), &mut files)?;
    files.retain(|f| f.path != Path::new(SETTINGS));
    Ok(Template {
        name: dir.display().to_string(),
        description: settings.description,
        files,
    })
}

fn read_dir_files(base: &Path, rel: &Path, out: &mut Vec<TemplateFile>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = base.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read template folder {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = rel.join(entry.file_name());
        if rel.as_os_str().is_empty()
            && matches!(entry.file_name().to_str(), Some(".git" | "build"))
        {
            continue;
        }
        let full = base.join(&path);
        let meta = std::fs::symlink_metadata(&full)?;
        let mode = meta.permissions().mode() & 0o777;
        let content = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&full)?;
            Content::Symlink(target.to_string_lossy().into_owned())
        } else if meta.is_dir() {
            read_dir_files(base, &path, out)?;
            continue;
        } else if meta.is_file() {
            Content::File(Cow::Owned(std::fs::read(&full)?))
        } else {
            bail!(
                "template file {} is not a file, folder or symlink\n  help: templates hold plain files (device nodes and fifos cannot be committed anyway)",
                full.display()
            );
        };
        out.push(TemplateFile {
            path,
            mode,
            content,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_templates_are_listed_with_descriptions() {
        let names: Vec<String> = list()
            .into_iter()
            .map(|(n, d)| {
                assert!(!d.is_empty(), "{n} has no description");
                n
            })
            .collect();
        assert_eq!(names, ["debian", "fedora", "minimal", "openembedded"]);
        assert!(names.contains(&DEFAULT.to_string()));
    }

    #[test]
    fn templates_keep_modes_and_symlinks() {
        let t = resolve("minimal").unwrap();
        let hello = t
            .files
            .iter()
            .find(|f| f.path == Path::new("rootfs/usr/bin/hello"))
            .unwrap();
        assert_eq!(hello.mode & 0o111, 0o111);
        assert!(t
            .files
            .iter()
            .any(|f| matches!(&f.content, Content::Symlink(s) if s == "../welcome.service")));
        assert!(!t.files.iter().any(|f| f.path == Path::new(SETTINGS)));
    }

    #[test]
    fn unknown_names_get_a_did_you_mean() {
        let e = resolve("debain").unwrap_err().to_string();
        assert!(
            e.contains("no template named 'debain'") && e.contains("did you mean `debian`?"),
            "{e}"
        );
    }
}
