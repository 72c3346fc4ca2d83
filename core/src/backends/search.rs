//! Where backends are searched for and which files there are backends.
//!
//! Order: `$OSTREE_BUILD_PLUGIN_PATH`, the user data directory, the system libexec
//! directories, then `PATH` (executables only: loading a library runs its code). The first
//! file of a name wins; later ones, and files shadowed by a built-in, become warnings.
//! Files that look meant as backends but are not used (misnamed, not executable, a library
//! on PATH) and `$OSTREE_BUILD_PLUGIN_PATH` entries that are no directory are reported as
//! [`Ignored`], never passed over in silence.
//!
//! The search lists directories itself rather than asking the `which` crate (which the sdk
//! uses to look up one program): it enumerates every `ostree-build-*` file, including the
//! ones `which` would skip and the user must hear about.

use super::found::{Candidate, CandidateKind};
use super::names::{classify, FileName};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What the search found: the winning candidate for each name, shadowed names, and what was
/// ignored although it looks meant as a backend.
#[derive(Default)]
pub struct SearchResult {
    pub candidates: Vec<Candidate>,
    pub warnings: Vec<String>,
    pub ignored: Vec<Ignored>,
}

/// A file or a plugin path entry the search did not use although it was probably meant to be.
#[derive(Debug, Clone)]
pub struct Ignored {
    pub path: PathBuf,
    /// The backend it seems meant as, when that can be told.
    pub backend: Option<String>,
    /// What is wrong and what to do, naming the path.
    pub message: String,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Search every directory; names in `builtin_names` are taken already.
pub fn search(builtin_names: &[String]) -> SearchResult {
    let mut result = SearchResult {
        ignored: plugin_path_problems(),
        ..Default::default()
    };
    for (dir, plugin_dir) in search_dirs() {
        let (candidates, ignored) = scan_dir(&dir, plugin_dir);
        result.ignored.extend(ignored);
        for c in candidates {
            result.add(c, builtin_names);
        }
    }
    result
}

impl SearchResult {
    fn add(&mut self, c: Candidate, builtin_names: &[String]) {
        let Ok(md) = std::fs::metadata(&c.path) else {
            return;
        };
        if !md.is_file() {
            return;
        }
        let shown = c.path.display();
        if c.kind == CandidateKind::Executable && md.permissions().mode() & 0o111 == 0 {
            self.ignored.push(Ignored {
                message: format!(
                    "{shown} identified as a backend, but it is not executable (chmod +x it or remove it)"
                ),
                path: c.path.clone(),
                backend: Some(c.name),
            });
        } else if builtin_names.contains(&c.name) {
            self.warnings.push(format!(
                "{shown} is shadowed by built-in backend '{}'",
                c.name
            ));
        } else if let Some(first) = self.candidates.iter().find(|f| f.name == c.name) {
            self.warnings
                .push(format!("{shown} is shadowed by {}", first.path.display()));
        } else {
            self.candidates.push(c);
        }
    }
}

/// The files in `dir` named like backends (by name, a library before an executable of the
/// same name), and those that look meant as backends but cannot be used.
fn scan_dir(dir: &Path, plugin_dir: bool) -> (Vec<Candidate>, Vec<Ignored>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Default::default();
    };
    let mut found = Vec::new();
    let mut ignored = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        match classify(&file, plugin_dir, || is_executable_file(&path)) {
            FileName::Backend { name, kind } => found.push(Candidate { name, path, kind }),
            FileName::Misnamed {
                name,
                kind,
                expected,
            } if path.is_file() => ignored.push(misnamed(path, name, kind, &expected)),
            FileName::LibraryOutsidePluginDirs { name } if path.is_file() => {
                ignored.push(library_outside_plugin_dirs(dir, path, name))
            }
            _ => {}
        }
    }
    found.sort_by_key(|c: &Candidate| {
        (
            c.name.clone(),
            c.kind == CandidateKind::Executable,
            c.path.clone(),
        )
    });
    ignored.sort_by(|a, b| a.path.cmp(&b.path));
    (found, ignored)
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn misnamed(path: PathBuf, name: Option<String>, kind: CandidateKind, expected: &str) -> Ignored {
    let what = match kind {
        CandidateKind::Dylib => "plugin library",
        CandidateKind::Executable => "executable",
    };
    let of = match &name {
        Some(n) => format!("the {what} of backend '{n}'"),
        None => format!("a backend {what}"),
    };
    let rule = match name {
        Some(_) => String::new(),
        None => " (a backend name matches [a-z][a-z0-9-]*)".into(),
    };
    Ignored {
        message: format!(
            "{} looks like {of} but is not named like one, so it is ignored: name it {expected}{rule}",
            path.display()
        ),
        path,
        backend: name,
    }
}

fn library_outside_plugin_dirs(dir: &Path, path: PathBuf, name: Option<String>) -> Ignored {
    Ignored {
        message: format!(
            "{} is a plugin library on PATH, where libraries are never loaded (loading one runs its code): move it into a plugin directory such as ~/.local/share/ostree-build/backends, or add {} to $OSTREE_BUILD_PLUGIN_PATH",
            path.display(),
            dir.display()
        ),
        path,
        backend: name,
    }
}

/// `$OSTREE_BUILD_PLUGIN_PATH` entries that cannot be searched: missing, not a directory,
/// unreadable. (The other plugin directories are optional and not reported.)
fn plugin_path_problems() -> Vec<Ignored> {
    let Some(value) = std::env::var_os("OSTREE_BUILD_PLUGIN_PATH") else {
        return vec![];
    };
    std::env::split_paths(&value)
        .filter(|d| !d.as_os_str().is_empty())
        .filter_map(|dir| {
            let problem = match std::fs::metadata(&dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".into(),
                Err(e) => format!("cannot be read ({e})"),
                Ok(md) if !md.is_dir() => {
                    "is not a directory (name the directory that holds the backends)".into()
                }
                Ok(_) => match std::fs::read_dir(&dir) {
                    Err(e) => format!("cannot be read ({e})"),
                    Ok(_) => return None,
                },
            };
            Some(Ignored {
                message: format!(
                    "$OSTREE_BUILD_PLUGIN_PATH names {}, which {problem}",
                    dir.display()
                ),
                path: dir,
                backend: None,
            })
        })
        .collect()
}

/// The directories searched for backends, in order, without repeats, each with whether it
/// is a plugin directory (libraries are loaded only from those, never from PATH).
pub fn search_dirs() -> Vec<(PathBuf, bool)> {
    let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
    if let Some(p) = std::env::var_os("OSTREE_BUILD_PLUGIN_PATH") {
        dirs.extend(std::env::split_paths(&p).map(|d| (d, true)));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(d) = data {
        dirs.push((d.join("ostree-build/backends"), true));
    }
    dirs.push((
        PathBuf::from("/usr/local/libexec/ostree-build/backends"),
        true,
    ));
    dirs.push((PathBuf::from("/usr/libexec/ostree-build/backends"), true));
    if let Some(p) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&p).map(|d| (d, false)));
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|(d, _)| !d.as_os_str().is_empty() && seen.insert(d.clone()));
    dirs
}
