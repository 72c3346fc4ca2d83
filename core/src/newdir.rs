//! Writing new files for the scaffolding commands (`new`, `init`, `new-backend`), all or
//! nothing: `create` writes a new directory as a hidden sibling and renames it into place in
//! one step; `fill` writes into an existing directory and removes what it wrote when a
//! write fails. Either way an error (or a kill, for `create`) leaves nothing half-written.

use crate::template::Content;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One file (or symlink) to write: its path relative to the directory, its mode (the
/// permission bits of a file) and what goes there.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub path: PathBuf,
    pub mode: u32,
    pub content: Content,
}

/// Why `dir` cannot be created, if it cannot: it exists and is not an empty directory, or
/// its parent does not exist. `help` says what to do about a taken destination.
pub fn check_destination(dir: &Path, help: &str) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(md) if md.is_dir() => {
            let empty = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read {}", dir.display()))?
                .next()
                .is_none();
            if !empty {
                bail!(
                    "destination `{}` already exists and is not empty\n  help: {help}",
                    dir.display()
                );
            }
            Ok(())
        }
        Ok(_) => bail!(
            "destination `{}` already exists and is not a folder\n  help: {help}",
            dir.display()
        ),
        Err(_) if !parent_of(dir).is_dir() => bail!(
            "cannot create `{}`: its parent folder `{}` does not exist\n  help: create the parent folder first, or choose another place",
            dir.display(),
            parent_of(dir).display()
        ),
        Err(_) => Ok(()),
    }
}

/// Create `dir` (absent, or an empty directory: check it first with `check_destination`)
/// holding `files`, all or nothing.
pub fn create(dir: &Path, files: &[NewFile]) -> Result<()> {
    let staging = Staging::new(dir)?;
    write_all(&staging.path, files, &mut Written::default())?;
    std::fs::rename(&staging.path, dir)
        .with_context(|| format!("cannot move the new files into {}", dir.display()))?;
    staging.keep();
    Ok(())
}

/// Write `files` into the existing directory `dir`, where none of them exists; on a failed
/// write, remove what was written.
pub fn fill(dir: &Path, files: &[NewFile]) -> Result<()> {
    let mut written = Written::default();
    let result = write_all(dir, files, &mut written);
    if result.is_err() {
        written.undo(dir);
    }
    result
}

pub fn parent_of(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What was created, to remove it again when a later write fails.
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

fn write_all(root: &Path, files: &[NewFile], written: &mut Written) -> Result<()> {
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
    for part in rel.parent().into_iter().flat_map(|p| p.components()) {
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

fn write_one(path: &Path, f: &NewFile) -> std::io::Result<()> {
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

/// The hidden sibling the files are written into; removed unless kept.
struct Staging {
    path: PathBuf,
    kept: bool,
}

impl Staging {
    fn new(dir: &Path) -> Result<Staging> {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let parent = parent_of(dir);
        let path = parent.join(format!(".{name}.ostree-build-new.{}", std::process::id()));
        if std::fs::symlink_metadata(&path).is_ok() {
            crate::fsutil::remove_tree(&path)?;
        }
        std::fs::create_dir(&path)
            .with_context(|| format!("cannot create a folder in {}", parent.display()))?;
        Ok(Staging { path, kept: false })
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.kept {
            let _ = crate::fsutil::remove_tree(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> NewFile {
        NewFile {
            path: path.into(),
            mode: if path.ends_with(".sh") { 0o755 } else { 0o644 },
            content: Content::File(b"x\n".to_vec().into()),
        }
    }

    #[test]
    fn creates_all_files_or_none() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new");
        create(&dir, &[file("a/b.txt"), file("run.sh")]).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a/b.txt")).unwrap(), "x\n");
        let mode = std::fs::metadata(dir.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // A file that cannot be written (its parent is a file): nothing is left behind.
        let other = tmp.path().join("other");
        assert!(create(&other, &[file("f"), file("f/g")]).is_err());
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // The same for `fill`: what it wrote is removed again.
        let into = tempfile::tempdir().unwrap();
        assert!(fill(into.path(), &[file("a/b"), file("a/b/c")]).is_err());
        assert_eq!(std::fs::read_dir(into.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_empty_directory_is_used_and_anything_else_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        check_destination(&empty, "h").unwrap();
        create(&empty, &[file("a")]).unwrap();
        let err = check_destination(&empty, "choose another")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already exists and is not empty\n  help: choose another"),
            "{err}"
        );
        let err = check_destination(&tmp.path().join("no/such"), "h").unwrap_err();
        assert!(err.to_string().contains("parent folder"), "{err}");
    }
}
