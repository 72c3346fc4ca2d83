//! `ostree-build new` and `init`: a project from a template. Everything that can be wrong
//! (the template, the names, the destination, the filled-in manifest) is checked before
//! anything is written. `new` writes into a folder beside the destination and renames it
//! into place; `init` writes into an existing folder and removes what it wrote if a write
//! fails. Either way an error leaves nothing half-written.

use crate::manifest::{Manifest, MANIFEST_NAME};
use crate::newdir::{self, NewFile};
use crate::template::vars::{VarOptions, Vars};
use crate::template::{self, Content, Template};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// What `new` and `init` are asked for.
#[derive(Debug, Clone, Default)]
pub struct NewOptions {
    /// `new`: the folder to create (absent, or empty). `init`: the folder to fill.
    pub path: PathBuf,
    /// A built-in template name or a path to a template folder; default [`template::DEFAULT`].
    pub template: Option<String>,
    pub vars: VarOptions,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Created {
    pub path: PathBuf,
    pub template: String,
    pub vars: Vars,
    /// Files and symlinks written.
    pub files: usize,
}

/// Create the project folder `options.path` from the template.
pub fn new(options: &NewOptions) -> Result<Created> {
    let name = folder_name(&options.path)?;
    let (template, vars, files) = prepare(&name, options)?;
    newdir::check_destination(
        &options.path,
        "choose another name, or run `ostree-build init` inside that folder to add a project to what it holds",
    )?;
    newdir::create(&options.path, &files)?;
    Ok(created(options, template, vars, &files))
}

/// Fill the existing folder `options.path` from the template, overwriting nothing.
pub fn init(options: &NewOptions) -> Result<Created> {
    let dir = &options.path;
    if !dir.is_dir() {
        bail!("`{}` is not a folder", dir.display());
    }
    let absolute = std::path::absolute(dir).context("cannot resolve the current folder")?;
    let name = folder_name(&absolute)?;
    let (template, vars, files) = prepare(&name, options)?;
    check_nothing_overwritten(dir, &files)?;
    newdir::fill(dir, &files)?;
    Ok(created(options, template, vars, &files))
}

fn created(options: &NewOptions, template: Template, vars: Vars, files: &[NewFile]) -> Created {
    Created {
        path: options.path.clone(),
        template: template.name,
        vars,
        files: files.len(),
    }
}

/// The template, the variables and every file filled in, checked, in memory.
fn prepare(name: &str, options: &NewOptions) -> Result<(Template, Vars, Vec<NewFile>)> {
    let template = template::resolve(options.template.as_deref().unwrap_or(template::DEFAULT))?;
    let vars = Vars::new(name, &options.vars)?;
    let files: Vec<NewFile> = template
        .files
        .iter()
        .map(|f| NewFile {
            path: f.path.clone(),
            mode: f.mode,
            content: render(&f.content, &vars),
        })
        .collect();
    check_manifest(&template, &files)?;
    Ok((template, vars, files))
}

/// Placeholders are filled in in text files; other files and symlinks are copied.
fn render(content: &Content, vars: &Vars) -> Content {
    match content {
        Content::File(data) => match std::str::from_utf8(data) {
            Ok(text) => Content::File(vars.render(text).into_bytes().into()),
            Err(_) => content.clone(),
        },
        Content::Symlink(_) => content.clone(),
    }
}

/// The filled-in manifest must parse, or the template (or a variable) is broken.
fn check_manifest(template: &Template, files: &[NewFile]) -> Result<()> {
    let manifest = files
        .iter()
        .find(|f| f.path == Path::new(MANIFEST_NAME))
        .and_then(|f| match &f.content {
            Content::File(data) => std::str::from_utf8(data).ok(),
            Content::Symlink(_) => None,
        })
        .ok_or_else(|| anyhow!("template '{}' has no {MANIFEST_NAME} file", template.name))?;
    Manifest::parse(Path::new(MANIFEST_NAME), manifest.to_string()).map_err(|e| {
        anyhow!(
            "template '{}' does not make a valid manifest: {e:#}\n  help: fix the template's {MANIFEST_NAME} (its placeholders, such as {{{{os-name}}}}, are filled in before it is read)",
            template.name,
        )
    })?;
    Ok(())
}

/// The last part of `path`: the project's name.
fn folder_name(path: &Path) -> Result<String> {
    let name = path
        .file_name()
        .ok_or_else(|| {
            anyhow!(
                "`{}` names no folder\n  help: give the new folder's name (`ostree-build new myos`), or run `ostree-build init` inside an existing folder",
                path.display()
            )
        })?;
    Ok(name.to_string_lossy().into_owned())
}

/// `init` writes no path that exists, and needs folders where the template has them.
fn check_nothing_overwritten(dir: &Path, files: &[NewFile]) -> Result<()> {
    let clashes: Vec<String> = files
        .iter()
        .filter(|f| blocked(dir, &f.path))
        .map(|f| f.path.display().to_string())
        .collect();
    if let Some(first) = clashes.first() {
        bail!(
            "`{}` already holds {}{}: nothing was written\n  help: move them away, or start a new folder with `ostree-build new NAME`",
            dir.display(),
            first,
            match clashes.len() {
                1 => String::new(),
                n => format!(" and {} more of the template's files", n - 1),
            }
        );
    }
    Ok(())
}

/// Whether writing `rel` under `dir` would overwrite something: the path itself exists, or
/// one of its parents exists and is not a folder.
fn blocked(dir: &Path, rel: &Path) -> bool {
    let full = dir.join(rel);
    if std::fs::symlink_metadata(&full).is_ok() {
        return true;
    }
    full.ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(dir) && *a != dir)
        .any(|a| std::fs::symlink_metadata(a).is_ok_and(|m| !m.is_dir()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_makes_a_valid_project_with_no_placeholder_left() {
        for (name, _) in template::list() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("myos");
            let options = NewOptions {
                path: path.clone(),
                template: Some(name.clone()),
                vars: VarOptions::default(),
            };
            let created = new(&options).unwrap();
            assert!(created.files > 5, "{name}");
            Manifest::load(&path.join(MANIFEST_NAME)).unwrap();
            for f in template::resolve(&name).unwrap().files {
                let full = path.join(&f.path);
                let text = std::fs::read(&full).unwrap_or_default();
                let text = String::from_utf8_lossy(&text);
                assert!(
                    !text.contains("{{"),
                    "{name}: {} keeps a placeholder",
                    f.path.display()
                );
            }
            assert!(!path.join(template::SETTINGS).exists());
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "{name}: the staging folder is gone");
        }
    }

    #[test]
    fn init_refuses_to_overwrite_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("myos");
        std::fs::create_dir_all(project.join("overlay")).unwrap();
        std::fs::write(project.join("notes.txt"), "mine").unwrap();
        std::fs::write(project.join("README.md"), "mine").unwrap();
        let options = NewOptions {
            path: project.clone(),
            ..Default::default()
        };
        let e = init(&options).unwrap_err().to_string();
        assert!(e.contains("already holds README.md"), "{e}");
        std::fs::remove_file(project.join("README.md")).unwrap();
        init(&options).unwrap();
        assert_eq!(
            std::fs::read_to_string(project.join("notes.txt")).unwrap(),
            "mine"
        );
        assert!(project.join("overlay/etc/hostname").is_file());
    }
}
