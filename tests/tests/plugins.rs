//! Third-party backends as `ostree-build-<name>` executables: a Rust one built against the
//! sdk only (`tests/backends/hello`) and a Python one (`tests/backends/ostree-build-pyfiles`),
//! each in a manifest build and ad hoc; discovery, listing and shadowing; and every way an
//! executable can misbehave, each failing clearly with no ref moved.

use ostree_build_tests::*;
use std::ffi::OsStr;
use std::path::Path;

const IMAGE: &str = "exampleos/x86_64/standard";

const MANIFEST: &str = r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.greeting]
backend = "hello"
message = "hello from a plugin"

[component.notes]
backend = "pyfiles"
files = ["a.txt=alpha", "b.txt=beta"]

[image.standard]
components = ["greeting", "notes"]
"#;

fn plugin_env(dir: &Path) -> Vec<(&'static str, &OsStr)> {
    vec![("OSTREE_BUILD_PLUGIN_PATH", dir.as_os_str())]
}

#[test]
fn executable_backends_build_components_of_a_manifest() {
    let p = Project::new(MANIFEST);
    let plugins = example_backends(p.path());
    let out = p.run_env(&["build"], &plugin_env(&plugins)).ok();
    assert!(
        out.stdout.contains("Built component greeting"),
        "{}",
        out.stdout
    );
    let export = p.export_repo();
    assert_eq!(
        cat(&export, IMAGE, "/usr/share/hello/message.txt"),
        "hello from a plugin\n"
    );
    assert!(ls(&export, IMAGE, "/usr/share/hello/message.txt").starts_with("-00644 0 0"));
    assert_eq!(cat(&export, IMAGE, "/usr/share/pyfiles/a.txt"), "alpha\n");
    assert_eq!(cat(&export, IMAGE, "/usr/share/pyfiles/b.txt"), "beta\n");
    // The backends' metadata and package lists are in the component commits.
    let build = p.build_repo();
    let meta = |component: &str, key: &str| {
        ostree(
            &build,
            &[
                "show",
                &format!("--print-metadata-key={key}"),
                &format!("exampleos/x86_64/components/{component}"),
            ],
        )
        .trim()
        .to_string()
    };
    assert_eq!(meta("greeting", "ostree-build.backend-version"), "'0.3.0'");
    assert_eq!(meta("greeting", "ostree-build.packages"), "['hello-0.3.0']");
    assert_eq!(meta("notes", "ostree-build.packages"), "['pyfiles-1.2.0']");
    // Fresh on a second run: plan answered by the executables, nothing rebuilt.
    let again = p.run_env(&["build"], &plugin_env(&plugins)).ok();
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
    // An option change rebuilds only that component.
    p.write_manifest(&MANIFEST.replace("hello from a plugin", "changed"));
    let changed = p.run_env(&["build"], &plugin_env(&plugins)).ok();
    assert!(
        changed.stdout.contains("Built component greeting"),
        "{}",
        changed.stdout
    );
    assert!(
        !changed.stdout.contains("Built component notes"),
        "{}",
        changed.stdout
    );
    assert!(
        changed.stdout.contains("options changed"),
        "{}",
        changed.stdout
    );
    fsck(&build);
    fsck(&export);
}

#[test]
fn executable_backends_run_ad_hoc() {
    let p = Project::new("");
    std::fs::remove_file(p.p("ostree-build.toml")).unwrap();
    let plugins = example_backends(p.path());
    let env = plugin_env(&plugins);
    p.run_env(
        &[
            "hello",
            "--message",
            "ad hoc",
            "--mode",
            "384",
            "--branch",
            "exampleos/x86_64/hello",
            "--repo",
            "repo",
        ],
        &env,
    )
    .ok();
    assert_eq!(
        cat(
            &p.p("repo"),
            "exampleos/x86_64/hello",
            "/usr/share/hello/message.txt"
        ),
        "ad hoc\n"
    );
    assert!(ls(
        &p.p("repo"),
        "exampleos/x86_64/hello",
        "/usr/share/hello/message.txt"
    )
    .starts_with("-00600"));
    p.run_env(
        &[
            "pyfiles",
            "--files",
            "x=1,y=2",
            "--branch",
            "exampleos/x86_64/py",
        ],
        &env,
    )
    .ok();
    // Without --repo and outside a project: ./build-repo.
    assert_eq!(
        cat(
            &p.p("build-repo"),
            "exampleos/x86_64/py",
            "/usr/share/pyfiles/y"
        ),
        "2\n"
    );
    // The backend's own help.
    let help = p.run_env(&["help", "hello"], &env).ok();
    assert!(
        help.stdout.contains("--message") && help.stdout.contains("(required)"),
        "{}",
        help.stdout
    );
    fsck(&p.p("repo"));
}

#[test]
fn backends_lists_every_source_and_warns_about_shadowing() {
    let p = Project::new("");
    let plugins = example_backends(p.path());
    // The same name in a later directory, a built-in name, and a file that is not executable.
    let later = p.p("later");
    script(&later.join("ostree-build-hello"), "#!/bin/sh\nexit 2\n");
    script(&later.join("ostree-build-dir"), "#!/bin/sh\nexit 2\n");
    // A file on PATH that is not executable.
    let on_path = p.p("on-path");
    std::fs::create_dir_all(&on_path).unwrap();
    std::fs::write(on_path.join("ostree-build-broken"), "#!/bin/sh\n").unwrap();
    let path = std::env::join_paths([plugins.as_path(), later.as_path()]).unwrap();
    let system_path = format!(
        "{}:{}",
        on_path.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = p
        .run_env(
            &["backends"],
            &[
                ("OSTREE_BUILD_PLUGIN_PATH", path.as_os_str()),
                ("PATH", OsStr::new(&system_path)),
            ],
        )
        .ok();
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", out.stdout))
            .to_string()
    };
    assert!(line("dir").contains("built-in"));
    assert!(line("tarball").contains("built-in"));
    assert!(
        line("hello").contains("0.3.0") && line("hello").contains("plugins/ostree-build-hello")
    );
    assert!(line("pyfiles").contains("1.2.0"));
    assert!(
        out.stderr
            .contains("later/ostree-build-hello is shadowed by"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("later/ostree-build-dir is shadowed by built-in backend 'dir'"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("ostree-build-broken identified as a backend, but it is not executable"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_executable_that_does_not_answer_the_probe_is_an_external_command() {
    let p = Project::new("");
    let dir = p.p("bin");
    script(
        &dir.join("ostree-build-greet"),
        "#!/bin/sh\n[ \"$1\" = ostree-build-plugin-info ] && exit 1\necho \"args: $*\"\necho \"host: $OSTREE_BUILD\"\n",
    );
    let out = p
        .run_env(
            &["greet", "a", "b"],
            &[("OSTREE_BUILD_PLUGIN_PATH", dir.as_os_str())],
        )
        .ok();
    assert!(out.stdout.contains("args: greet a b"), "{}", out.stdout);
    assert!(out.stdout.contains("host: /"), "{}", out.stdout);
}

/// A manifest build that uses a misbehaving backend `bad` after a good build: it must fail
/// with `expected` in stderr and change no ref.
fn misbehaving_backend(body: &str, expected: &[&str], env_extra: &[(&str, &str)]) {
    let p = Project::new(MANIFEST);
    let plugins = example_backends(p.path());
    p.run_env(&["build"], &plugin_env(&plugins)).ok();
    let before = (refs(&p.build_repo()), refs(&p.export_repo()));
    script(&plugins.join("ostree-build-bad"), body);
    p.write_manifest(&format!(
        "{MANIFEST}\n[component.broken]\nbackend = \"bad\"\n\n[image.other]\ncomponents = [\"broken\"]\n"
    ));
    let mut env = plugin_env(&plugins);
    for (k, v) in env_extra {
        env.push((k, OsStr::new(v)));
    }
    let run = p.run_env(&["build"], &env).fails();
    for e in expected {
        assert!(
            run.stderr.contains(e),
            "stderr lacks {e:?}:\n{}",
            run.stderr
        );
    }
    assert_eq!(before, (refs(&p.build_repo()), refs(&p.export_repo())));
    fsck(&p.build_repo());
    fsck(&p.export_repo());
}

/// A Python backend answering the probe, then doing `run_body` for plan and run.
fn python_backend(run_body: &str) -> String {
    format!(
        "#!/usr/bin/env python3\nimport json, sys, time\nif sys.argv[1] == 'ostree-build-plugin-info':\n    print(json.dumps({{'name': 'bad', 'version': '0.1', 'protocols': [1], 'options': []}}))\n    sys.exit(0)\nrequest = json.load(sys.stdin)\n{run_body}\n"
    )
}

#[test]
fn malformed_json_from_a_backend() {
    misbehaving_backend(
        &python_backend(
            "print('{\"type\": \"hello\", \"protocol\": 1}')\nprint('this is not json')",
        ),
        &["backend 'bad' sent malformed JSON", "this is not json"],
        &[],
    );
}

#[test]
fn a_backend_that_exits_non_zero() {
    misbehaving_backend(
        &python_backend("print('{\"type\": \"hello\", \"protocol\": 1}')\nsys.exit(3)"),
        &["backend 'bad' exited (exit status: 3) without an answer"],
        &[],
    );
}

#[test]
fn a_backend_that_reports_an_error() {
    misbehaving_backend(
        &python_backend("print('{\"type\": \"hello\", \"protocol\": 1}')\nprint(json.dumps({'type': 'error', 'message': 'mirror unreachable', 'hint': 'check the network'}))\nsys.exit(1)"),
        &["mirror unreachable", "help: check the network"],
        &[],
    );
}

#[test]
fn a_backend_that_hangs_is_stopped() {
    misbehaving_backend(
        &python_backend(
            "print('{\"type\": \"hello\", \"protocol\": 1}', flush=True)\ntime.sleep(60)",
        ),
        &[
            "backend 'bad' did not finish within 2s",
            "OSTREE_BUILD_BACKEND_TIMEOUT",
        ],
        &[("OSTREE_BUILD_BACKEND_TIMEOUT", "2")],
    );
}

#[test]
fn a_backend_that_never_says_hello() {
    misbehaving_backend(
        &python_backend("print(json.dumps({'type': 'plan', 'plan': {}}))"),
        &["backend 'bad' did not send a hello message"],
        &[],
    );
}

#[test]
fn a_backend_for_another_protocol() {
    misbehaving_backend(
        "#!/bin/sh\necho '{\"name\": \"bad\", \"version\": \"9\", \"protocols\": [7]}'\n",
        &[
            "backend 'bad'",
            "speaks protocol [7]",
            "rebuild the backend",
        ],
        &[],
    );
}

#[test]
fn a_panicking_backend_is_an_error() {
    let p = Project::new(&MANIFEST.replace("hello from a plugin", "panic"));
    let plugins = example_backends(p.path());
    let run = p.run_env(&["build"], &plugin_env(&plugins)).fails();
    assert!(
        run.stderr.contains("the backend panicked"),
        "{}",
        run.stderr
    );
    assert!(refs(&p.build_repo()).is_empty());
}

#[test]
fn a_cdylib_plugin_builds_a_component_and_runs_ad_hoc() {
    let p = Project::new(
        r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.greeting]
backend = "greet"
who = "world"

[image.standard]
components = ["greeting"]
"#,
    );
    let plugins = example_backends(p.path());
    let env = plugin_env(&plugins);
    let listed = p.run_env(&["backends"], &env).ok();
    let greet = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("greet "))
        .expect("greet listed");
    assert!(
        greet.contains("0.2.0") && greet.contains("libostree_build_backend_greet.so"),
        "{greet}"
    );

    let out = p.run_env(&["build"], &env).ok();
    assert!(
        out.stdout.contains("greeting written"),
        "plugin events reach the output:\n{}",
        out.stdout
    );
    assert_eq!(
        cat(&p.export_repo(), IMAGE, "/usr/share/greet/greeting"),
        "hello, world\n"
    );
    assert_eq!(
        ostree(
            &p.build_repo(),
            &[
                "show",
                "--print-metadata-key=ostree-build.packages",
                "exampleos/x86_64/components/greeting"
            ]
        )
        .trim(),
        "['greet-0.2.0']"
    );
    p.run_env(
        &[
            "greet", "--who", "you", "--branch", "t/greet", "--repo", "adhoc",
        ],
        &env,
    )
    .ok();
    assert_eq!(
        cat(&p.p("adhoc"), "t/greet", "/usr/share/greet/greeting"),
        "hello, you\n"
    );

    // A panic inside the plugin is an error, not a crash, and moves no ref.
    let before = refs(&p.p("adhoc"));
    let run = p
        .run_env(
            &[
                "greet", "--who", "panic", "--branch", "t/greet", "--repo", "adhoc",
            ],
            &env,
        )
        .fails();
    assert!(
        run.stderr.contains("the backend panicked"),
        "{}",
        run.stderr
    );
    assert_eq!(before, refs(&p.p("adhoc")));
}

#[test]
fn plugins_load_only_from_plugin_directories() {
    let p = Project::new("");
    let plugins = example_backends(p.path());
    // The same library on PATH is never loaded.
    let path = format!(
        "{}:{}",
        plugins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = p
        .run_env(
            &["greet", "--who", "x", "--branch", "t/x"],
            &[("PATH", OsStr::new(&path))],
        )
        .fails();
    assert!(
        run.stderr.contains("no such command or backend: 'greet'"),
        "{}",
        run.stderr
    );
    // ... and the error says where it is and why it is not loaded.
    assert!(
        run.stderr.contains(&format!(
            "help: {}/libostree_build_backend_greet.so is a plugin library on PATH, where libraries are never loaded",
            plugins.display()
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused_in_one_line() {
    let p = Project::new("");
    let dir = p.p("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("libostree_build_backend_fake.so"), "not a library").unwrap();
    let run = p
        .run_env(
            &["fake", "--branch", "t/x"],
            &[("OSTREE_BUILD_PLUGIN_PATH", dir.as_os_str())],
        )
        .fails();
    let error = run.one_line_error();
    assert!(error.contains("cannot load plugin"), "{}", run.stderr);
    assert!(
        error.contains("libostree_build_backend_fake.so"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_first_party_dir_backend_runs_as_a_cdylib_plugin() {
    let p = Project::new(
        r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.base]
backend = "dir"
path = "rootfs"

[image.standard]
components = ["base"]
"#,
    );
    p.file("rootfs/usr/bin/tool", "tool\n", 0o4755);
    let plugins = p.p("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let so = binary()
        .parent()
        .unwrap()
        .join("libostree_build_backend_dir.so");
    std::fs::copy(&so, plugins.join("libostree_build_backend_dir.so")).unwrap();
    let env = [
        ("OSTREE_BUILD_PLUGIN_PATH", plugins.as_os_str()),
        ("OSTREE_BUILD_BUILTIN_BACKENDS", OsStr::new("none")),
    ];
    let listed = p.run_env(&["backends"], &env).ok();
    let dir = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("dir "))
        .expect("dir listed");
    assert!(dir.contains("libostree_build_backend_dir.so"), "{dir}");
    p.run_env(&["build"], &env).ok();
    assert_eq!(cat(&p.export_repo(), IMAGE, "/usr/bin/tool"), "tool\n");
    assert!(ls(&p.export_repo(), IMAGE, "/usr/bin/tool").starts_with("-04755 0 0"));
    fsck(&p.export_repo());
}

#[test]
fn a_backend_whose_tree_escapes_the_root_is_refused() {
    misbehaving_backend(
        &python_backend(
            "import os\nprint('{\"type\": \"hello\", \"protocol\": 1}')\nif sys.argv[1].endswith('plan'):\n    print(json.dumps({'type': 'plan', 'plan': {}}))\n    sys.exit(0)\nroot = request['root']\nos.makedirs(root + '/usr', exist_ok=True)\nos.symlink('../../../etc/shadow', root + '/usr/evil')\nprint(json.dumps({'type': 'output', 'output': {'kind': 'tree', 'root': root}}))",
        ),
        &["/usr/evil: symlink to '../../../etc/shadow' points outside the root"],
        &[],
    );
}

#[test]
fn a_cdylib_plugin_for_another_protocol_is_refused_in_one_line() {
    let p = Project::new("");
    let plugins = example_backends(p.path());
    let run = p
        .run_env(
            &["greet", "--who", "x", "--branch", "t/x"],
            &[
                ("OSTREE_BUILD_PLUGIN_PATH", plugins.as_os_str()),
                ("GREET_FAKE_PROTOCOL", OsStr::new("7")),
            ],
        )
        .fails();
    let error = run.one_line_error();
    assert!(error.contains("backend 'greet'"), "{}", run.stderr);
    assert!(error.contains("speaks protocol [7]"), "{}", run.stderr);
    assert!(run.stderr.contains("rebuild the backend"), "{}", run.stderr);
    assert!(!p.p("build-repo").exists());
}

/// A Python backend whose `run` answers with `output` (a JSON object literal in Python).
fn answering_backend(prelude: &str, output: &str) -> String {
    python_backend(&format!(
        "print('{{\"type\": \"hello\", \"protocol\": 1}}', flush=True)\nif sys.argv[1].endswith('plan'):\n    print(json.dumps({{'type': 'plan', 'plan': {{}}}}))\n    sys.exit(0)\nroot = request['root']\n{prelude}\nprint(json.dumps({{'type': 'output', 'output': {output}}}), flush=True)"
    ))
}

#[test]
fn a_backend_answering_with_a_host_directory_is_refused() {
    misbehaving_backend(
        &answering_backend("", "{'kind': 'tree', 'root': '/etc'}"),
        &["backend 'bad' answered with tree /etc, outside the scratch root"],
        &[],
    );
}

#[test]
fn a_backend_answering_with_a_device_as_archive_is_refused() {
    misbehaving_backend(
        &answering_backend("", "{'kind': 'archive', 'path': '/dev/zero'}"),
        &["backend 'bad' answered with archive /dev/zero, which is not a regular file"],
        &[],
    );
}

#[test]
fn a_backend_answering_twice_is_refused() {
    misbehaving_backend(
        &answering_backend(
            "import os\nos.makedirs(root + '/usr', exist_ok=True)\nprint(json.dumps({'type': 'output', 'output': {'kind': 'tree', 'root': root}}))",
            "{'kind': 'tree', 'root': root}",
        ),
        &["backend 'bad' answered twice"],
        &[],
    );
}

/// Whether a process whose command line contains `marker` is alive.
fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(marker))
            .unwrap_or(false)
    })
}

/// A backend that leaves a child holding its stdout: the run ends when the backend exits
/// (not at the timeout), and the child is killed with it.
#[test]
fn a_backend_that_exits_leaving_a_child_on_stdout_finishes_and_the_child_dies() {
    let marker = format!("ostree-build-leftover-{}", std::process::id());
    let p = Project::new(MANIFEST);
    let plugins = example_backends(p.path());
    script(
        &plugins.join("ostree-build-bad"),
        &answering_backend(
            &format!("import os, subprocess\nos.makedirs(root + '/usr/share', exist_ok=True)\nopen(root + '/usr/share/x', 'w').write('x')\nsubprocess.Popen(['sh', '-c', 'sleep 120; : {marker}'])"),
            "{'kind': 'tree', 'root': root}",
        ),
    );
    p.write_manifest(&format!(
        "{MANIFEST}\n[component.left]\nbackend = \"bad\"\n\n[image.other]\ncomponents = [\"left\"]\n"
    ));
    let mut env = plugin_env(&plugins);
    env.push(("OSTREE_BUILD_BACKEND_TIMEOUT", OsStr::new("30")));
    let start = std::time::Instant::now();
    p.run_env(&["build"], &env).ok();
    assert!(
        start.elapsed().as_secs() < 25,
        "the build waited for the leftover child"
    );
    assert!(!running(&marker), "the backend's child outlived it");
}

/// On a timeout the whole process group goes, not only the backend.
#[test]
fn a_backend_that_hangs_is_stopped_with_its_children() {
    let marker = format!("ostree-build-hung-child-{}", std::process::id());
    misbehaving_backend(
        &python_backend(&format!(
            "import subprocess\nprint('{{\"type\": \"hello\", \"protocol\": 1}}', flush=True)\nsubprocess.Popen(['sh', '-c', 'sleep 120; : {marker}'], stdout=subprocess.DEVNULL)\ntime.sleep(60)"
        )),
        &["backend 'bad' did not finish within 2s"],
        &[("OSTREE_BUILD_BACKEND_TIMEOUT", "2")],
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!running(&marker), "the hung backend's child outlived it");
}

/// A probe that starts a JSON answer must finish it: invalid info is an error naming the
/// backend and why, not a silent "external command".
#[test]
fn an_info_probe_with_invalid_json_is_an_error_not_a_command() {
    let p = Project::new("");
    let dir = p.p("plugins");
    script(
        &dir.join("ostree-build-typo"),
        "#!/bin/sh\necho '{\"name\": \"typo\", \"version\": \"1\", \"protocol\": [1]}'\n",
    );
    let env = [("OSTREE_BUILD_PLUGIN_PATH", dir.as_os_str())];
    let run = p.run_env(&["typo", "--branch", "x/y"], &env).fails();
    let error = run.one_line_error();
    assert!(
        error.contains("backend 'typo'")
            && error.contains("invalid info")
            && error.contains("protocols"),
        "{}",
        run.stderr
    );
    let listed = p.run_env(&["backends"], &env);
    assert!(listed.stderr.contains("invalid info"), "{}", listed.stderr);
}

#[test]
fn an_info_probe_that_does_not_answer_in_time_is_an_error() {
    let p = Project::new("");
    let dir = p.p("plugins");
    script(&dir.join("ostree-build-slow"), "#!/bin/sh\nsleep 30\n");
    let env = [
        ("OSTREE_BUILD_PLUGIN_PATH", dir.as_os_str()),
        ("OSTREE_BUILD_BACKEND_TIMEOUT", OsStr::new("1")),
    ];
    let run = p.run_env(&["slow", "--branch", "x/y"], &env).fails();
    assert!(
        run.stderr.contains("backend 'slow'") && run.stderr.contains("did not answer"),
        "{}",
        run.stderr
    );
}
