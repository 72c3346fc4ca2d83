//! Creating a directory of new files all at once, for the scaffolding commands: the files
//! are written into a hidden sibling and renamed into place in one step, so an error (or a
//! kill) never leaves a half-written directory where the user asked for one.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One file to create: its path relative to the new directory, its text, and whether it is
/// executable.
pub struct NewFile {
    pub path: String,
    pub text: String,
    pub executable: bool,
}

/// Why `dir` cannot be created, if it cannot: it exists and is not an empty directory, or
/// its parent does not exist. Each error is one line with a `help:` line.
pub fn check_destination(dir: &Path) -> Result<()> {
    if let Ok(md) = std::fs::symlink_metadata(dir) {
        let empty_dir = md.is_dir() && std::fs::read_dir(dir)?.next().is_none();
        if !empty_dir {
            bail!(
                "destination '{}' already exists\n  help: choose another directory with --path, or remove it",
                dir.display()
            );
        }
    }
    let parent = parent_of(dir);
    if !parent.is_dir() {
        bail!(
            "cannot create '{}': its parent directory '{}' does not exist\n  help: create it first, or choose another directory with --path",
            dir.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Create `dir` (absent, or an empty directory) holding `files`, all or nothing.
pub fn create(dir: &Path, files: &[NewFile]) -> Result<()> {
    check_destination(dir)?;
    let staging = Staging::new(dir)?;
    for file in files {
        staging.write(file)?;
    }
    std::fs::rename(&staging.path, dir)
        .with_context(|| format!("cannot move the new files into '{}'", dir.display()))?;
    staging.keep();
    Ok(())
}

fn parent_of(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
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
        let path = parent_of(dir).join(format!(".{name}.new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path)
            .with_context(|| format!("cannot create '{}'", path.display()))?;
        Ok(Staging { path, kept: false })
    }

    fn write(&self, file: &NewFile) -> Result<()> {
        let path = self.path.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.text)
            .with_context(|| format!("cannot write '{}'", path.display()))?;
        let mode = if file.executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> NewFile {
        NewFile {
            path: path.into(),
            text: "x\n".into(),
            executable: path.ends_with(".sh"),
        }
    }

    #[test]
    fn creates_all_files_or_none() {
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
    }

    #[test]
    fn an_empty_directory_is_used_and_anything_else_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        create(tmp.path(), &[file("a")]).unwrap_err();
        create(&empty, &[file("a")]).unwrap();
        let err = create(&empty, &[file("b")]).unwrap_err().to_string();
        assert!(err.contains("already exists\n  help: "), "{err}");
        let err = check_destination(&tmp.path().join("no/such")).unwrap_err();
        assert!(err.to_string().contains("parent directory"), "{err}");
    }
}
