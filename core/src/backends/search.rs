//! Where backends are searched for and which files there are backends.
//!
//! Order: `$OSTREE_BUILD_PLUGIN_PATH`, the user data directory, the system libexec
//! directories, then `PATH` (executables only: loading a library runs its code). The first
//! file of a name wins; later ones, and files shadowed by a built-in, become warnings.

use super::found::{Candidate, CandidateKind};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// What the search found: the winning candidate for each name, and what the user should
/// know (shadowed names, files that are not executable).
#[derive(Default)]
pub struct SearchResult {
    pub candidates: Vec<Candidate>,
    pub warnings: Vec<String>,
}

/// Search every directory; names in `builtin_names` are taken already.
pub fn search(builtin_names: &[String]) -> SearchResult {
    let mut result = SearchResult::default();
    for (dir, plugin_dir) in search_dirs() {
        for c in backend_files(&dir, plugin_dir) {
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
            self.warnings.push(format!(
                "{shown} identified as a backend, but it is not executable (chmod +x it or remove it)"
            ));
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

/// The files in `dir` named like backends: by name, a library before an executable of the
/// same name.
fn backend_files(dir: &std::path::Path, plugin_dir: bool) -> Vec<Candidate> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut found: Vec<Candidate> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let (name, kind) = match file
                .strip_prefix("libostree_build_backend_")
                .and_then(|f| f.strip_suffix(".so"))
            {
                Some(n) if plugin_dir => (n.replace('_', "-"), CandidateKind::Dylib),
                Some(_) => return None,
                None => (
                    file.strip_prefix("ostree-build-")?.to_string(),
                    CandidateKind::Executable,
                ),
            };
            valid_name(&name).then(|| Candidate {
                name,
                path: e.path(),
                kind,
            })
        })
        .collect();
    let order = |c: &Candidate| {
        (
            c.name.clone(),
            c.kind == CandidateKind::Executable,
            c.path.clone(),
        )
    };
    found.sort_by_key(order);
    found
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
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
