//! `ostree-build new` and `init`: a project from a template. Everything that can be wrong
//! (the template, the names, the destination, the filled-in manifest) is checked before
//! anything is written. `new` writes into a folder beside the destination and renames it
//! into place; `init` writes into an existing folder and removes what it wrote if a write
//! fails. Either way an error leaves nothing half-written.

use crate::manifest::{Manifest, MANIFEST_NAME};
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

/// A file ready to be written: its path in the project and what goes there.
struct Rendered {
    path: PathBuf,
    mode: u32,
    content: Content,
}

/// Create the project folder `options.path` from the template.
pub fn new(options: &NewOptions) -> Result<Created> {
    let name = folder_name(&options.path)?;
    let (template, vars, files) = prepare(&name, options)?;
    check_new_destination(&options.path)?;
    let parent = parent_of(&options.path);
    let staging = Staging::create(&parent, &name)?;
    write_tree(&staging.dir, &files)?;
    staging.rename_to(&options.path)?;
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
    let mut written = Written::default();
    if let Err(e) = write_files(dir, &files, &mut written) {
        written.undo(dir);
        return Err(e);
    }
    Ok(created(options, template, vars, &files))
}

fn created(options: &NewOptions, template: Template, vars: Vars, files: &[Rendered]) -> Created {
    Created {
        path: options.path.clone(),
        template: template.name,
        vars,
        files: files.len(),
    }
}

/// The template, the variables and every file filled in, checked, in memory.
fn prepare(name: &str, options: &NewOptions) -> Result<(Template, Vars, Vec<Rendered>)> {
    let template = template::resolve(options.template.as_deref().unwrap_or(template::DEFAULT))?;
    let vars = Vars::new(name, &options.vars)?;
    let files: Vec<Rendered> = template
        .files
        .iter()
        .map(|f| Rendered {
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
fn check_manifest(template: &Template, files: &[Rendered]) -> Result<()> {
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

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `new` creates its folder, or fills an empty one; its parent must exist.
fn check_new_destination(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let empty = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .next()
                .is_none();
            if !empty {
                bail!(
                    "destination `{}` already exists and is not empty\n  help: choose another name, or run `ostree-build init` inside that folder to add a project to what it holds",
                    path.display()
                );
            }
            Ok(())
        }
        Ok(_) => bail!(
            "destination `{}` already exists and is not a folder\n  help: choose another name",
            path.display()
        ),
        Err(_) if !parent_of(path).is_dir() => bail!(
            "cannot create `{}`: its parent folder `{}` does not exist\n  help: create the parent folder first",
            path.display(),
            parent_of(path).display()
        ),
        Err(_) => Ok(()),
    }
}

/// `init` writes no path that exists, and needs folders where the template has them.
fn check_nothing_overwritten(dir: &Path, files: &[Rendered]) -> Result<()> {
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

/// Write every file under `root`, which is new and removed by the caller on failure.
fn write_tree(root: &Path, files: &[Rendered]) -> Result<()> {
    write_files(root, files, &mut Written::default())
}

/// What `init` created, to remove it again when a later write fails.
#[derive(Default)]
struct Written {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Written {
    fn undo(&self, root: &Path) {
        for f in self.files.iter().rev() {
            let _ = std::fs::remove_file(root.join(f));
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(root.join(d));
        }
    }
}

fn write_files(root: &Path, files: &[Rendered], written: &mut Written) -> Result<()> {
    for f in files {
        make_parents(root, &f.path, written)?;
        write_one(&root.join(&f.path), f)
            .with_context(|| format!("cannot write {}", root.join(&f.path).display()))?;
        written.files.push(f.path.clone());
    }
    Ok(())
}

/// Create the folders above `rel` that do not exist yet, noting each.
fn make_parents(root: &Path, rel: &Path, written: &mut Written) -> Result<()> {
    let mut dir = PathBuf::new();
    let parents: Vec<_> = rel
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
        .collect();
    for part in parents {
        dir.push(part);
        let full = root.join(&dir);
        if !full.is_dir() {
            std::fs::create_dir(&full)
                .with_context(|| format!("cannot create {}", full.display()))?;
            written.dirs.push(dir.clone());
        }
    }
    Ok(())
}

fn write_one(path: &Path, f: &Rendered) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match &f.content {
        Content::Symlink(target) => std::os::unix::fs::symlink(target, path),
        Content::File(data) => {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(f.mode & 0o777)
                .open(path)?;
            out.write_all(data)?;
            out.sync_all()
        }
    }
}

/// A folder beside the destination that `new` fills, renamed into place at the end and
/// removed if that end is never reached.
struct Staging {
    dir: PathBuf,
    done: bool,
}

impl Staging {
    fn create(parent: &Path, name: &str) -> Result<Staging> {
        let dir = parent.join(format!(".{name}.ostree-build-new.{}", std::process::id()));
        if std::fs::symlink_metadata(&dir).is_ok() {
            crate::fsutil::remove_tree(&dir)?;
        }
        std::fs::create_dir(&dir)
            .with_context(|| format!("cannot create a folder in {}", parent.display()))?;
        Ok(Staging { dir, done: false })
    }

    /// Move the filled folder to `dest` (absent, or an empty folder rename replaces).
    fn rename_to(mut self, dest: &Path) -> Result<()> {
        std::fs::rename(&self.dir, dest)
            .with_context(|| format!("cannot create {}", dest.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = crate::fsutil::remove_tree(&self.dir);
        }
    }
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
    fn a_failed_write_leaves_nothing_behind() {
        let file = |path: &str| Rendered {
            path: PathBuf::from(path),
            mode: 0o644,
            content: Content::File(b"x".to_vec().into()),
        };
        // The second file needs a folder where the first one is a file.
        let files = [file("a/b"), file("a/b/c")];
        let dir = tempfile::tempdir().unwrap();
        let mut written = Written::default();
        assert!(write_files(dir.path(), &files, &mut written).is_err());
        written.undo(dir.path());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let staging = Staging::create(dir.path(), "myos").unwrap();
        assert!(write_tree(&staging.dir, &files).is_err());
        drop(staging);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
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
