//! Backend file names: which files are backends (`ostree-build-<name>`,
//! `libostree_build_backend_<name>.so`), and which look meant as one but are not, so that the
//! search can say so instead of passing over them in silence.
//!
//! "Meant as one" is kept narrow, so that pointing `$OSTREE_BUILD_PLUGIN_PATH` at a cargo
//! target directory (its `.d`, `.rlib` and the `ostree-build` binary) warns about nothing:
//! a `.so` whose name, read with `-` as `_` and without a leading `lib`, starts with
//! `ostree_build_`; an executable file whose name starts with `ostree_build_` that way.

use super::found::CandidateKind;

/// How a backend executable is named: this, then the backend's name.
pub const EXECUTABLE_PREFIX: &str = "ostree-build-";
/// How a plugin library is named: this, the backend's name with `_` for `-`, then `.so`.
pub const LIBRARY_PREFIX: &str = "libostree_build_backend_";

/// What a file's name says about it.
#[derive(Debug, PartialEq, Eq)]
pub enum FileName {
    /// Named like a backend.
    Backend { name: String, kind: CandidateKind },
    /// Looks meant as a backend of this kind, but the name is wrong. `name` is the backend
    /// it seems to mean, if that is a valid name; `expected` what the file should be called.
    Misnamed {
        name: Option<String>,
        kind: CandidateKind,
        expected: String,
    },
    /// A plugin library outside the plugin directories (on PATH), where none is loaded.
    LibraryOutsidePluginDirs { name: Option<String> },
    /// Nothing to do with backends.
    Other,
}

/// Classify `file` (a file name) found in a plugin directory or not (PATH).
/// `executable` is asked only for a name that may be a misnamed executable.
pub fn classify(file: &str, plugin_dir: bool, executable: impl FnOnce() -> bool) -> FileName {
    if let Some(stem) = file.strip_suffix(".so") {
        return library(stem, plugin_dir);
    }
    if let Some(name) = file.strip_prefix(EXECUTABLE_PREFIX) {
        if valid_name(name) {
            return FileName::Backend {
                name: name.to_string(),
                kind: CandidateKind::Executable,
            };
        }
    }
    match meant_name(file) {
        Some(name) if plugin_dir && executable() => FileName::Misnamed {
            expected: format!("{EXECUTABLE_PREFIX}{}", name.as_deref().unwrap_or("<name>")),
            name,
            kind: CandidateKind::Executable,
        },
        _ => FileName::Other,
    }
}

/// A `.so` file, named `stem.so`.
fn library(stem: &str, plugin_dir: bool) -> FileName {
    let Some(meant) = meant_name(stem) else {
        return FileName::Other;
    };
    if !plugin_dir {
        return FileName::LibraryOutsidePluginDirs { name: meant };
    }
    if let Some(name) = stem
        .strip_prefix(LIBRARY_PREFIX)
        .map(|n| n.replace('_', "-"))
    {
        if valid_name(&name) {
            return FileName::Backend {
                name,
                kind: CandidateKind::Dylib,
            };
        }
    }
    FileName::Misnamed {
        expected: library_file(meant.as_deref().unwrap_or("<name>")),
        name: meant,
        kind: CandidateKind::Dylib,
    }
}

/// The file name of the plugin library of backend `name`.
pub fn library_file(name: &str) -> String {
    format!("{LIBRARY_PREFIX}{}.so", name.replace('-', "_"))
}

/// `Some` when `file` looks meant as a backend: read with `-` as `_`, without a leading
/// `lib`, it starts with `ostree_build_`. Inside: the backend name it seems to mean (after
/// an optional `backend_`, up to the first `.`, lower case, `_` as `-`), if valid.
fn meant_name(file: &str) -> Option<Option<String>> {
    let normal = file.replace('-', "_");
    let rest = normal
        .strip_prefix("lib")
        .unwrap_or(&normal)
        .strip_prefix("ostree_build_")?;
    let rest = rest.strip_prefix("backend_").unwrap_or(rest);
    let guess = rest
        .split('.')
        .next()
        .unwrap_or_default()
        .replace('_', "-")
        .to_lowercase();
    Some(valid_name(&guess).then_some(guess))
}

/// Backend names: `[a-z][a-z0-9-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::{classify, CandidateKind, FileName};

    fn in_plugin_dir(file: &str, executable: bool) -> FileName {
        classify(file, true, || executable)
    }

    fn misnamed(name: &str, kind: CandidateKind, expected: &str) -> FileName {
        FileName::Misnamed {
            name: Some(name.into()),
            kind,
            expected: expected.into(),
        }
    }

    #[test]
    fn backends_are_named_by_the_two_rules() {
        let exe = in_plugin_dir("ostree-build-my-pkgs", false);
        assert_eq!(
            exe,
            FileName::Backend {
                name: "my-pkgs".into(),
                kind: CandidateKind::Executable
            }
        );
        let lib = in_plugin_dir("libostree_build_backend_my_pkgs.so", false);
        assert_eq!(
            lib,
            FileName::Backend {
                name: "my-pkgs".into(),
                kind: CandidateKind::Dylib
            }
        );
    }

    #[test]
    fn misnamed_libraries_name_the_file_they_should_be() {
        let want = misnamed(
            "foo",
            CandidateKind::Dylib,
            "libostree_build_backend_foo.so",
        );
        for file in [
            "libostree_build_backend-foo.so",
            "ostree_build_backend_foo.so",
            "libostree-build-backend-foo.so",
            "libostree_build_foo.so",
        ] {
            assert_eq!(in_plugin_dir(file, false), want, "{file}");
        }
    }

    #[test]
    fn misnamed_executables_count_only_when_executable() {
        let want = misnamed("foo", CandidateKind::Executable, "ostree-build-foo");
        for file in [
            "ostree_build_foo",
            "ostree-build-foo.py",
            "ostree-build-Foo",
        ] {
            assert_eq!(in_plugin_dir(file, true), want, "{file}");
            assert_eq!(in_plugin_dir(file, false), FileName::Other, "{file}");
        }
    }

    #[test]
    fn a_cargo_target_directory_holds_nothing_misnamed() {
        // The binary is executable; what cargo writes beside it is not.
        assert_eq!(in_plugin_dir("ostree-build", true), FileName::Other);
        for file in [
            "ostree-build.d",
            "ostree-build-hello.d",
            "libostree_build_backend_greet.d",
            "libostree_build_core.rlib",
            "libgreet.so",
        ] {
            assert_eq!(in_plugin_dir(file, false), FileName::Other, "{file}");
        }
    }

    #[test]
    fn libraries_on_path_are_reported_whatever_their_name() {
        for file in ["libostree_build_backend_foo.so", "ostree_build_foo.so"] {
            assert_eq!(
                classify(file, false, || true),
                FileName::LibraryOutsidePluginDirs {
                    name: Some("foo".into())
                }
            );
        }
        assert_eq!(classify("libc.so", false, || true), FileName::Other);
    }
}
