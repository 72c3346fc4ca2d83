//! The command line's conventions, as a user meets them: did-you-mean for a mistyped
//! command, `-q`, shell completions and the man page, `status --check` and `build --dry-run
//! --check` exit statuses for CI, and plugin discovery that names the files it ignores.

use ostree_build_tests::*;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// The exit status of `--check` when something is stale (documented in the README).
const STALE: i32 = 3;

/// A project with one `dir` component `base` and one image `standard`, built once.
fn built_project() -> Project {
    let p = Project::new(&dir_components_manifest(&[("base", "rootfs")], ""));
    p.file("rootfs/usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755);
    p.run(&["build"]).ok();
    p
}

fn code(run: &Run) -> Option<i32> {
    run.status.code()
}

// ---------------------------------------------------------------------------------------
// Did you mean.

#[test]
fn a_mistyped_command_suggests_the_command() {
    let p = Project::new("");
    for (typed, meant) in [
        ("biuld", "build"),
        ("stauts", "status"),
        ("tarbal", "tarball"),
    ] {
        let run = p.run(&[typed]).fails();
        assert_eq!(
            run.one_line_error(),
            format!("error: no such command or backend: '{typed}'"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains(&format!("  help: did you mean '{meant}'?")),
            "{}",
            run.stderr
        );
    }
    // `help` with a mistyped topic says the same.
    let help = p.run(&["help", "biuld"]).fails();
    assert!(
        help.stderr.contains("did you mean 'build'?"),
        "{}",
        help.stderr
    );
}

// ---------------------------------------------------------------------------------------
// -q

/// A Python backend `noisy` that logs an info line and a warning while it runs.
const NOISY: &str = r#"#!/usr/bin/env python3
import json, os, sys
if sys.argv[1] == 'ostree-build-plugin-info':
    print(json.dumps({'name': 'noisy', 'version': '1.0', 'protocols': [1], 'options': []}))
    sys.exit(0)
request = json.load(sys.stdin)
print(json.dumps({'type': 'hello', 'protocol': 1}), flush=True)
if sys.argv[1].endswith('plan'):
    print(json.dumps({'type': 'plan', 'plan': {'inputs': [], 'fingerprint': '1'}}))
    sys.exit(0)
print(json.dumps({'type': 'log', 'level': 'info', 'message': 'counting sheep'}), flush=True)
print(json.dumps({'type': 'log', 'level': 'warn', 'message': 'the sheep are loose'}), flush=True)
os.makedirs(request['root'] + '/usr/share/noisy')
open(request['root'] + '/usr/share/noisy/sheep', 'w').write('42\n')
print(json.dumps({'type': 'output', 'output': {'kind': 'tree', 'root': request['root']}}))
"#;

#[test]
fn quiet_builds_print_warnings_and_nothing_else() {
    let p = Project::new(&format!(
        "{}\n[component.sheep]\nbackend = \"noisy\"\n",
        dir_components_manifest(&[("base", "rootfs")], "")
    ));
    p.file("rootfs/usr/bin/hello", "hello\n", 0o755);
    script(&p.p("plugins/ostree-build-noisy"), NOISY);
    let plugins = p.p("plugins");
    let env = [("OSTREE_BUILD_PLUGIN_PATH", plugins.as_os_str())];

    let quiet = p.run_env(&["build", "-q"], &env).ok();
    assert_eq!(
        quiet.stdout.trim(),
        "warning: sheep: the sheep are loose",
        "stderr:\n{}",
        quiet.stderr
    );
    assert_eq!(quiet.stderr, "");
    assert_eq!(
        cat(
            &p.export_repo(),
            "exampleos/x86_64/standard",
            "/usr/bin/hello"
        ),
        "hello\n"
    );

    // Without -q the same kind of run says what it does; a quiet no-op says nothing at all.
    p.file("rootfs/usr/bin/hello", "hello again\n", 0o755);
    let loud = p.run_env(&["build"], &env).ok();
    for line in [
        "Building component base",
        "Built component base",
        "Finished",
    ] {
        assert!(loud.stdout.contains(line), "{line}:\n{}", loud.stdout);
    }
    let noop = p.run_env(&["-q", "build"], &env).ok();
    assert_eq!((noop.stdout.as_str(), noop.stderr.as_str()), ("", ""));
    let status = p.run_env(&["status", "--quiet"], &env).ok();
    assert_eq!(
        status.stdout, "",
        "a quiet status lists only what is not fresh"
    );
}

#[test]
fn quiet_ad_hoc_runs_print_nothing() {
    let p = Project::new("");
    p.file("rootfs/usr/bin/hello", "hello\n", 0o755);
    let args = ["--input", "rootfs", "--repo", "repo"];
    let before = p
        .run(&[&["dir", "--branch", "t/a"][..], &args].concat())
        .ok();
    assert!(before.stdout.contains("Built"), "{}", before.stdout);
    for quiet in [
        &["-q", "dir", "--branch", "t/b"][..],
        &["dir", "--branch", "t/c", "-q"][..],
    ] {
        let run = p.run(&[quiet, &args].concat()).ok();
        assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    }
    assert_eq!(refs(&p.p("repo")).len(), 3);
    // -q and -v contradict each other.
    let both = p.run(&["-q", "-v", "backends"]);
    assert_eq!(code(&both), Some(2), "{}", both.stderr);
}

// ---------------------------------------------------------------------------------------
// Completions and the man page.

#[test]
fn completions_for_bash_zsh_and_fish() {
    let p = Project::new("");
    for shell in ["bash", "zsh", "fish"] {
        let script = p.run(&["completions", shell]).ok().stdout;
        assert!(
            script.contains("build") && script.contains("status"),
            "{shell}:\n{script}"
        );
    }
    // bash, as a user's shell runs it: `ostree-build bu<TAB>` completes to `build`.
    let script = p.p("ostree-build.bash");
    std::fs::write(&script, p.run(&["completions", "bash"]).ok().stdout).unwrap();
    let completed = command(
        "bash",
        &[
            "-c",
            &format!(
                "source {}; COMP_WORDS=(ostree-build bu); COMP_CWORD=1; _ostree-build ostree-build bu ostree-build; echo \"${{COMPREPLY[@]}}\"",
                script.display()
            ),
        ],
    );
    assert_eq!(completed.trim(), "build");
    let bad = p.run(&["completions", "tcsh"]);
    assert_eq!(code(&bad), Some(2), "{}", bad.stderr);
}

#[test]
fn the_man_page_is_roff_with_a_title() {
    let p = Project::new("");
    let page = p.run(&["man"]).ok().stdout;
    let first_macro = page
        .lines()
        .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
        .unwrap_or_default();
    assert!(first_macro.starts_with(".TH ostree-build 1"), "{page}");
    assert!(
        page.contains("completions") && page.contains(r"\-\-quiet"),
        "{page}"
    );
    // One page per command, for packagers.
    let run = p.run(&["man", "--out", "man1"]).ok();
    for name in [
        "ostree-build",
        "ostree-build-build",
        "ostree-build-status",
        "ostree-build-man",
    ] {
        let file = p.p(&format!("man1/{name}.1"));
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            text.contains(&format!(".TH {name} 1")),
            "{name}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!("Wrote man1/{name}.1\n")),
            "{}",
            run.stdout
        );
    }
    // As `man` shows it, where man is installed.
    if Path::new("/usr/bin/man").exists() {
        let shown = Command::new("man")
            .args(["-l", "man1/ostree-build-status.1"])
            .env("MANWIDTH", "100")
            .current_dir(p.path())
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.contains("NAME") && shown.contains("--check"),
            "{shown}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// --check

#[test]
fn status_check_exits_3_when_something_is_stale() {
    let p = Project::new(&dir_components_manifest(&[("base", "rootfs")], ""));
    p.file("rootfs/usr/bin/hello", "hello\n", 0o755);
    // Never built: everything is missing.
    let missing = p.run(&["status", "--check"]);
    assert_eq!(
        code(&missing),
        Some(STALE),
        "{}{}",
        missing.stdout,
        missing.stderr
    );
    assert!(missing.stdout.contains("missing"), "{}", missing.stdout);
    assert_eq!(missing.stderr, "");

    p.run(&["build"]).ok();
    let fresh = p.run(&["status", "--check"]);
    assert_eq!(code(&fresh), Some(0), "{}{}", fresh.stdout, fresh.stderr);
    assert!(fresh.stdout.contains("fresh"), "{}", fresh.stdout);

    // A changed input: the component and its image are stale, and -q shows only those.
    p.file("rootfs/usr/bin/hello", "hello, changed\n", 0o755);
    let stale = p.run(&["-q", "status", "--check"]);
    assert_eq!(
        code(&stale),
        Some(STALE),
        "{}{}",
        stale.stdout,
        stale.stderr
    );
    let lines: Vec<Vec<&str>> = stale
        .stdout
        .lines()
        .map(|l| l.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(
        lines,
        [
            ["component", "base", "stale"],
            ["image", "standard", "stale"]
        ],
        "{}",
        stale.stdout
    );
}

#[test]
fn status_check_sees_a_changed_image_definition() {
    let p = built_project();
    p.write_manifest(&dir_components_manifest(
        &[("base", "rootfs")],
        "version = \"2.0\"",
    ));
    let stale = p.run(&["status", "--check"]);
    assert_eq!(
        code(&stale),
        Some(STALE),
        "{}{}",
        stale.stdout,
        stale.stderr
    );
    assert!(stale.stdout.contains("its definition"), "{}", stale.stdout);
    let dry = p.run(&["build", "--dry-run", "--check"]);
    assert_eq!(code(&dry), Some(STALE), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("compose image standard"),
        "{}",
        dry.stdout
    );
    p.run(&["build"]).ok();
    let fresh = p.run(&["status", "--check"]);
    assert_eq!(code(&fresh), Some(0), "{}", fresh.stdout);
}

#[test]
fn dry_run_check_exits_3_when_a_build_would_do_something() {
    let p = built_project();
    let fresh = p.run(&["build", "--dry-run", "--check"]);
    assert_eq!(code(&fresh), Some(0), "{}{}", fresh.stdout, fresh.stderr);
    assert!(
        fresh.stdout.contains("fresh component base"),
        "{}",
        fresh.stdout
    );
    assert!(
        fresh.stdout.contains("fresh image standard"),
        "{}",
        fresh.stdout
    );

    p.file("rootfs/usr/bin/hello", "hello, changed\n", 0o755);
    let stale = p.run(&["build", "--dry-run", "--check", "-q"]);
    assert_eq!(
        code(&stale),
        Some(STALE),
        "{}{}",
        stale.stdout,
        stale.stderr
    );
    assert!(
        stale.stdout.contains("build component base: input changed"),
        "{}",
        stale.stdout
    );
    assert!(
        !stale.stdout.contains("fresh"),
        "-q shows only what would change:\n{}",
        stale.stdout
    );
    // Nothing was built.
    let again = p.run(&["build", "--dry-run", "--check"]);
    assert_eq!(code(&again), Some(STALE));

    // An error is exit status 1, not "stale"; --check needs --dry-run.
    p.write_manifest("[os]\nname = \"exampleos\"\n[component.base]\nbackend = \"nope\"\n");
    let broken = p.run(&["build", "--dry-run", "--check"]);
    assert_eq!(code(&broken), Some(1), "{}", broken.stderr);
    let usage = p.run(&["build", "--check"]);
    assert_eq!(code(&usage), Some(2), "{}", usage.stderr);
    assert!(usage.stderr.contains("--dry-run"), "{}", usage.stderr);
}

#[test]
fn dry_run_check_counts_an_image_not_yet_published() {
    let p = built_project();
    std::fs::remove_dir_all(p.export_repo()).unwrap();
    let dry = p.run(&["build", "--dry-run", "--check"]);
    assert_eq!(code(&dry), Some(STALE), "{}", dry.stdout);
    assert!(
        dry.stdout
            .contains("publish image standard: not published yet"),
        "{}",
        dry.stdout
    );
    let status = p.run(&["status", "--check"]);
    assert_eq!(code(&status), Some(STALE), "{}", status.stdout);
}

// ---------------------------------------------------------------------------------------
// Plugin discovery tells the truth.

fn backends_with(p: &Project, env: &[(&str, &OsStr)]) -> Run {
    p.run_env(&["backends"], env).ok()
}

#[test]
fn misnamed_files_in_a_plugin_folder_are_named_with_the_right_name() {
    let p = Project::new("");
    let dir = p.p("plugins");
    for file in [
        "libostree_build_backend-foo.so",
        "ostree_build_backend_bar.so",
        "libostree-build-backend-baz.so",
    ] {
        p.file(&format!("plugins/{file}"), "not loaded\n", 0o644);
    }
    p.file("plugins/ostree-build-qux", "#!/bin/sh\n", 0o644);
    let env = [("OSTREE_BUILD_PLUGIN_PATH", dir.as_os_str())];
    let listed = backends_with(&p, &env);
    for (file, expected) in [
        (
            "libostree_build_backend-foo.so",
            "name it libostree_build_backend_foo.so",
        ),
        (
            "ostree_build_backend_bar.so",
            "name it libostree_build_backend_bar.so",
        ),
        (
            "libostree-build-backend-baz.so",
            "name it libostree_build_backend_baz.so",
        ),
        ("ostree-build-qux", "it is not executable (chmod +x it"),
    ] {
        let line = format!("warning: {}/{file} ", dir.display());
        let warning = listed.stderr.lines().find(|l| l.starts_with(&line));
        assert!(
            warning.is_some_and(|w| w.contains(expected)),
            "no warning for {file} saying {expected:?}:\n{}",
            listed.stderr
        );
    }
    // The error for the backend meant says which file and what to call it.
    let run = p.run_env(&["foo", "--branch", "t/x"], &env).fails();
    assert_eq!(
        run.one_line_error(),
        "error: no such command or backend: 'foo'"
    );
    assert!(
        run.stderr.contains(&format!(
            "  help: {}/libostree_build_backend-foo.so looks like the plugin library of backend 'foo' but is not named like one, so it is ignored: name it libostree_build_backend_foo.so",
            dir.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("3 more files look like backends of other names"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_plugin_library_on_path_is_named() {
    let p = Project::new("");
    let plugins = example_backends(p.path());
    let path = format!(
        "{}:{}",
        plugins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let listed = backends_with(&p, &[("PATH", OsStr::new(&path))]);
    let expected = format!(
        "warning: {}/libostree_build_backend_greet.so is a plugin library on PATH, where libraries are never loaded",
        plugins.display()
    );
    assert!(listed.stderr.contains(&expected), "{}", listed.stderr);
    assert!(
        listed.stderr.contains(&format!(
            "or add {} to $OSTREE_BUILD_PLUGIN_PATH",
            plugins.display()
        )),
        "{}",
        listed.stderr
    );
    // The executables in the same folder are found from PATH as ever.
    assert!(listed.stdout.contains("hello "), "{}", listed.stdout);
}

#[test]
fn a_plugin_path_entry_that_does_not_exist_is_named() {
    let p = Project::new(
        "[os]\nname = \"exampleos\"\narch = \"x86_64\"\n[component.base]\nbackend = \"hello\"\nmessage = \"hi\"\n[image.standard]\ncomponents = [\"base\"]\n",
    );
    let missing = p.p("plugins-typo");
    let env = [("OSTREE_BUILD_PLUGIN_PATH", missing.as_os_str())];
    let warning = format!(
        "$OSTREE_BUILD_PLUGIN_PATH names {}, which does not exist",
        missing.display()
    );
    let listed = backends_with(&p, &env);
    assert!(
        listed.stderr.contains(&format!("warning: {warning}")),
        "{}",
        listed.stderr
    );
    // The manifest's "no such backend" error says it too.
    let run = p.run_env(&["build"], &env).fails();
    let error = run.one_line_error();
    assert!(error.contains("no such backend: 'hello'"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("  help: {warning}")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_cargo_target_folder_as_plugin_path_warns_about_nothing_misnamed() {
    let p = Project::new("");
    let target = binary().parent().unwrap().to_path_buf();
    let listed = backends_with(&p, &[("OSTREE_BUILD_PLUGIN_PATH", target.as_os_str())]);
    assert!(
        !listed.stderr.contains("ignored") && !listed.stderr.contains("not executable"),
        "{}",
        listed.stderr
    );
    assert!(listed.stdout.contains("greet "), "{}", listed.stdout);
}
