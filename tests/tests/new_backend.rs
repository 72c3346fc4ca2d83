//! `ostree-build new-backend`: each kind scaffolds a backend that builds (the Rust kinds with
//! cargo, offline, in one target directory kept between runs under CARGO_TARGET_TMPDIR),
//! passes its own test, is listed by `backends` and builds a component of a manifest. Bad
//! names, taken names, an existing destination and an unknown kind are one-line errors
//! with a hint that write nothing.

use ostree_build_tests::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory to work in: a project without a manifest.
fn workdir() -> Project {
    let p = Project::new("");
    std::fs::remove_file(p.p("ostree-build.toml")).unwrap();
    p
}

/// The target directory the scaffolded crates share, kept between test runs.
fn cargo_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-backend-target")
}

/// `cargo ARGS --offline` in `dir` with the shared target directory; must succeed.
fn cargo(dir: &Path, args: &[&str]) {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", cargo_target())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scaffold `name` of `kind` into the work directory (or `path`), checking what it printed.
fn scaffold(w: &Project, name: &str, kind: &str, path: Option<&str>) -> PathBuf {
    let mut args = vec!["new-backend", name, "--kind", kind];
    args.extend(path.map(|p| ["--path", p]).into_iter().flatten());
    let out = w.run_env(&args, &[("CARGO_TARGET_DIR", cargo_target().as_os_str())]);
    let out = out.ok();
    let dir = w.p(path.unwrap_or(&format!("ostree-build-backend-{name}")));
    assert!(
        out.stdout
            .contains(&format!("Created {kind} backend `{name}`")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("export OSTREE_BUILD_PLUGIN_PATH="),
        "{}",
        out.stdout
    );
    dir
}

/// Build a scaffolded Rust crate and run its own tests; pinned to the workspace's
/// dependency versions (what is in ~/.cargo), so it builds offline.
fn build_rust(dir: &Path) {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
    cargo(dir, &["build"]);
    cargo(dir, &["test"]);
}

/// `backends --message-format json` with `env`: the entry named `name`.
fn listed(w: &Project, name: &str, env: &[(&str, &std::ffi::OsStr)]) -> serde_json::Value {
    let out = w
        .run_env(&["backends", "--message-format", "json"], env)
        .ok();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed:\n{}\n{}", out.stdout, out.stderr))
}

/// A manifest with one component built by `backend`, in an image; build it and check the
/// refs and the file the backend wrote.
fn builds_a_component(w: &Project, backend: &str, env: &[(&str, &std::ffi::OsStr)]) {
    let project = w.p("project");
    std::fs::create_dir(&project).unwrap();
    let manifest = format!(
        "[os]\nname = \"exampleos\"\narch = \"x86_64\"\n\n[component.greeting]\nbackend = \"{backend}\"\ngreeting = \"built by {backend}\"\n\n[image.standard]\ncomponents = [\"greeting\"]\n"
    );
    std::fs::write(project.join("ostree-build.toml"), manifest).unwrap();
    let mut cmd = Command::new(binary());
    cmd.arg("build").current_dir(&project);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refs: Vec<String> = refs(&project.join("build/cache-repo"))
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    let component = "exampleos/x86_64/components/greeting";
    assert!(refs.iter().any(|r| r == component), "{refs:?}");
    let file = format!("/usr/share/{backend}/greeting");
    let text = cat(
        &project.join("build/repo"),
        "exampleos/x86_64/standard",
        &file,
    );
    assert_eq!(text, format!("built by {backend}\n"));
}

#[test]
fn an_exec_backend_builds_passes_its_test_is_listed_and_builds_a_component() {
    let w = workdir();
    let dir = scaffold(&w, "nb-exec", "exec", None);
    build_rust(&dir);
    let plugins = cargo_target().join("debug");
    let env = [("OSTREE_BUILD_PLUGIN_PATH", plugins.as_os_str())];
    let entry = listed(&w, "nb-exec", &env);
    assert_eq!(entry["version"], "0.1.0");
    assert_eq!(
        entry["source"]["path"],
        plugins.join("ostree-build-nb-exec").to_str().unwrap()
    );
    builds_a_component(&w, "nb-exec", &env);
}

#[test]
fn a_cdylib_backend_builds_passes_its_test_is_listed_and_builds_a_component() {
    let w = workdir();
    let dir = scaffold(&w, "nb-cdylib", "cdylib", None);
    build_rust(&dir);
    let plugins = cargo_target().join("debug");
    let env = [("OSTREE_BUILD_PLUGIN_PATH", plugins.as_os_str())];
    let entry = listed(&w, "nb-cdylib", &env);
    assert_eq!(entry["source"]["kind"], "plugin");
    assert_eq!(
        entry["source"]["path"],
        plugins
            .join("libostree_build_backend_nb_cdylib.so")
            .to_str()
            .unwrap()
    );
    builds_a_component(&w, "nb-cdylib", &env);
}

#[test]
fn a_script_backend_passes_its_test_is_found_on_path_and_builds_a_component() {
    let w = workdir();
    // An empty directory is a fine destination.
    std::fs::create_dir(w.p("script")).unwrap();
    let dir = scaffold(&w, "nb-script", "script", Some("script"));
    let out = Command::new(dir.join("test.sh")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut path = OsString::from(dir.as_os_str());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let env = [("PATH", path.as_os_str())];
    let entry = listed(&w, "nb-script", &env);
    assert_eq!(entry["source"]["kind"], "executable");
    builds_a_component(&w, "nb-script", &env);
}

/// Every entry under `dir`, recursively, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            out.extend(tree(&e.path()));
        }
    }
    out.sort();
    out
}

/// `new-backend ARGS` fails in one line with a hint containing `help`, writing nothing.
fn refused(w: &Project, args: &[&str], error: &str, help: &str) {
    let before = tree(w.path());
    let out = w.run(&[&["new-backend"], args].concat()).fails();
    let line = out.one_line_error();
    assert!(line.contains(error), "{args:?}: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!("  help: {help}")),
        "{args:?}: {}",
        out.stderr
    );
    assert_eq!(tree(w.path()), before, "{args:?} wrote something");
}

#[test]
fn bad_and_taken_names_are_refused_with_a_hint() {
    let w = workdir();
    let invalid = "is not a valid backend name";
    refused(
        &w,
        &["Acme_Pkgs"],
        invalid,
        "use lowercase letters, digits and '-', starting with a letter (e.g. 'acme-pkgs')",
    );
    refused(
        &w,
        &["acme.pkgs", "--kind", "script"],
        "'.' is not allowed",
        "use lowercase",
    );
    refused(&w, &["9lives"], "it starts with '9'", "use lowercase");
    refused(&w, &[""], "it is empty", "use lowercase");
    refused(
        &w,
        &["ostree-build-acme"],
        "repeats the 'ostree-build-'",
        "name it 'acme'",
    );
    for builtin in ["dir", "tarball", "debootstrap", "dnf", "yum"] {
        refused(
            &w,
            &[builtin, "--kind", "cdylib"],
            "is a built-in backend",
            "choose another name",
        );
    }
    for command in ["build", "status", "backends", "boot", "help", "new-backend"] {
        refused(
            &w,
            &[command],
            "is an ostree-build command",
            "choose another name",
        );
    }
}

#[test]
fn an_existing_destination_an_unknown_kind_and_a_missing_parent_are_refused() {
    let w = workdir();
    w.file("ostree-build-backend-acme/notes.txt", "mine\n", 0o644);
    refused(
        &w,
        &["acme"],
        "already exists",
        "choose another directory with --path",
    );
    w.file("taken", "a file\n", 0o644);
    refused(
        &w,
        &["acme", "--path", "taken"],
        "already exists",
        "choose another",
    );
    refused(
        &w,
        &["acme", "--kind", "exe"],
        "unknown backend kind 'exe'",
        "did you mean 'exec'?",
    );
    refused(
        &w,
        &["acme", "--kind", "rust"],
        "unknown backend kind",
        "--kind is one of exec",
    );
    refused(
        &w,
        &["acme", "--path", "no/such/dir"],
        "parent folder",
        "create the parent folder first",
    );
    refused(
        &w,
        &["acme", "--sdk-path", "."],
        "is not the ostree-build-sdk crate",
        "give the sdk/",
    );
    assert_eq!(
        std::fs::read_to_string(w.p("ostree-build-backend-acme/notes.txt")).unwrap(),
        "mine\n"
    );
}
