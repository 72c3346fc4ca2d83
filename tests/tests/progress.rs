//! Progress, never silent: a large tarball import reports the compressed bytes it read as
//! JSON `progress` events up to the file's size, and publishing the objects it copied; a
//! backend's own progress arrives as progress, not as log lines, and dnf counts the
//! packages it installs; a rebuild reports its trigger's time, the worktree sync and the
//! static delta; a person at a terminal sees a live line that `-q` hides, and a run
//! without a terminal has no carriage returns or escape codes in its output.

use ostree_build_tests::*;
use serde_json::Value;
use std::process::Command;

/// A project whose one component is a ~90 MB zstd tarball of 30,000 files of random data
/// (its import takes seconds: many progress reports) in an image, `publish`ed or not.
fn big_tarball_project(publish: bool) -> Project {
    let p = Project::new(&format!(
        "[os]\nname = \"exampleos\"\narch = \"x86_64\"\n\n[component.big]\nbackend = \"tarball\"\npath = \"big.tar.zst\"\n\n[image.standard]\ncomponents = [\"big\"]\npublish = {publish}\n",
    ));
    let tar = p.p("big.tar");
    python_tar(
        &tar,
        "import random\nr = random.Random(13)\nfor i in range(30000):\n    reg(f'usr/share/big/d{i % 100}/f{i}', r.randbytes(3000))",
    );
    let status = Command::new("zstd")
        .args(["-1", "-q", "--rm"])
        .arg(&tar)
        .status()
        .expect("zstd (scripts/setup.sh installs it)");
    assert!(status.success(), "zstd failed");
    p
}

/// The JSON events of a run.
fn events(out: &Run) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn progress_of<'a>(events: &'a [Value], step: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "progress" && e["step"] == step)
        .collect()
}

#[test]
fn a_tarball_import_reports_bytes_read_up_to_the_file_size() {
    let p = big_tarball_project(true);
    let size = std::fs::metadata(p.p("big.tar.zst")).unwrap().len();
    let out = p.run(&["build", "--message-format", "json"]).ok();
    let all = events(&out);
    let import = progress_of(&all, "import");
    assert!(import.len() >= 4, "too few import reports: {import:?}");
    let mut previous = 0;
    for e in &import {
        assert_eq!(e["kind"], "component", "{e}");
        assert_eq!(e["name"], "big", "{e}");
        assert_eq!(e["unit"], "bytes", "{e}");
        assert_eq!(e["total"], size, "{e}");
        let done = e["done"].as_u64().expect("done");
        assert!(done >= previous && done <= size, "{e} after {previous}");
        assert!(e["elapsed"].as_f64().is_some_and(|s| s >= 0.0), "{e}");
        previous = done;
    }
    let (last, before) = import.split_last().unwrap();
    assert_eq!(last["last"], true, "{last}");
    assert_eq!(last["done"], size, "{last}");
    assert!(before.iter().all(|e| e["last"] == false));
    assert!(
        before.iter().any(|e| e["done"].as_u64() < Some(size)),
        "no report before the end: {import:?}"
    );
    // The reports come while the component builds, before it is finished.
    let at = |pred: &dyn Fn(&Value) -> bool| all.iter().position(pred).unwrap();
    assert!(
        at(&|e| e["event"] == "progress")
            < at(&|e| e["event"] == "finished" && e["kind"] == "component")
    );
    // Publishing copies objects into the export repository, and says how many.
    let copies = progress_of(&all, "copy");
    let last_copy = copies
        .iter()
        .rev()
        .find(|e| e["item"].is_null())
        .expect("copy");
    assert_eq!(last_copy["unit"], "objects", "{last_copy}");
    assert_eq!(last_copy["last"], true, "{last_copy}");
    assert_eq!(last_copy["done"], last_copy["total"], "{last_copy}");
}

#[test]
fn a_backends_progress_arrives_as_progress_not_as_log_lines() {
    let p = Project::new(
        "[os]\nname = \"exampleos\"\narch = \"x86_64\"\n\n[component.slow]\nbackend = \"counter\"\n\n[image.standard]\ncomponents = [\"slow\"]\n",
    );
    let plugins = p.p("plugins");
    // Six packages, 0.4 s apart (each report due), then one that comes too soon to be
    // shown at once: it is shown as the last report.
    script(
        &plugins.join("ostree-build-counter"),
        "#!/usr/bin/env python3\nimport json, os, sys, time\ndef send(m):\n    print(json.dumps(m), flush=True)\nif sys.argv[1] == 'ostree-build-plugin-info':\n    print(json.dumps({'name': 'counter', 'version': '0.1', 'protocols': [1], 'options': []}))\n    sys.exit(0)\nrequest = json.load(sys.stdin)\nsend({'type': 'hello', 'protocol': 1})\nif sys.argv[1].endswith('plan'):\n    send({'type': 'plan', 'plan': {}})\n    sys.exit(0)\nfor i in range(6):\n    time.sleep(0.4 if i else 0)\n    send({'type': 'progress', 'done': i, 'total': 6, 'unit': 'packages'})\nsend({'type': 'progress', 'done': 6, 'total': 6, 'unit': 'packages'})\nsend({'type': 'log', 'level': 'info', 'message': 'all installed'})\nos.makedirs(request['root'] + '/usr/share/counter')\nsend({'type': 'output', 'output': {'kind': 'tree', 'root': request['root']}})\n",
    );
    let env = [("OSTREE_BUILD_PLUGIN_PATH", plugins.as_os_str())];
    let out = p.run_env(&["build", "--message-format", "json"], &env).ok();
    let all = events(&out);
    let backend = progress_of(&all, "backend");
    let done: Vec<u64> = backend
        .iter()
        .map(|e| e["done"].as_u64().unwrap())
        .collect();
    // Each count in order; 0.4 s apart, none is held back (a load that delays one line by
    // 0.25 s could merge two: at least five of the seven are required).
    assert!(done.windows(2).all(|w| w[0] < w[1]), "{backend:?}");
    assert!(done.len() >= 5 && done[0] == 0, "{backend:?}");
    assert_eq!(done.last(), Some(&6), "{backend:?}");
    for e in &backend {
        assert_eq!(
            (&e["kind"], &e["name"], &e["unit"], &e["total"]),
            (
                &"component".into(),
                &"slow".into(),
                &"packages".into(),
                &6.into()
            ),
            "{e}"
        );
    }
    assert_eq!(backend.last().unwrap()["last"], true);
    // Log lines stay log lines; progress is never one.
    let logs: Vec<&Value> = all.iter().filter(|e| e["event"] == "log").collect();
    assert!(
        logs.iter().any(|e| e["message"] == "all installed"),
        "{logs:?}"
    );
    assert!(
        !logs
            .iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains("packages")),
        "{logs:?}"
    );
    // The same ad hoc.
    let adhoc = p
        .run_env(
            &[
                "counter",
                "--branch",
                "exampleos/x86_64/counter",
                "--message-format",
                "json",
            ],
            &env,
        )
        .ok();
    let all = events(&adhoc);
    let backend = progress_of(&all, "backend");
    assert!(backend.len() >= 5, "{all:?}");
    assert_eq!(backend.last().unwrap()["done"], 6);
    assert_eq!(backend[0]["name"], "exampleos/x86_64/counter");
}

/// Run `ostree-build ARGS` in `p` with a terminal as its output (util-linux `script`).
fn on_a_terminal(p: &Project, args: &str) -> String {
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("{} {args}", binary().display()),
            "/dev/null",
        ])
        .current_dir(p.path())
        .env("COLUMNS", "100")
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn a_live_line_on_a_terminal_only_and_never_under_quiet() {
    let p = big_tarball_project(false);
    // No terminal: the lines people read, without carriage returns or escape codes.
    let out = p.run(&["build"]).ok();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(!text.contains(['\r', '\x1b']), "{text:?}");
    assert!(out.stdout.contains("Built component big"), "{}", out.stdout);
    assert!(!text.contains("Importing"), "{text}");
    // A terminal: the import's live line, rewritten in place, then the normal lines.
    let live = on_a_terminal(&p, "build --force");
    assert!(live.contains("Importing component big: "), "{live:?}");
    assert!(live.contains(" MiB, "), "{live:?}");
    assert!(live.contains('\r'), "{live:?}");
    assert!(live.contains("Built component big"), "{live:?}");
    // -q on a terminal: no progress at all.
    let quiet = on_a_terminal(&p, "-q build --force");
    assert!(!quiet.contains("Importing"), "{quiet:?}");
    assert!(!quiet.contains("Copying"), "{quiet:?}");
}

#[test]
fn dnf_reports_packages_installed_out_of_the_transaction() {
    let rpms = build_rpm_repo(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")));
    let p = Project::new(&format!(
        "[os]\nname = \"exampleos\"\narch = \"x86_64\"\n\n[component.base]\nbackend = \"dnf\"\nrepos = [\"local=file://{}\"]\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\ngpg-check = false\n",
        rpms.display()
    ));
    let out = p.run(&["build", "--message-format", "json"]).ok();
    let all = events(&out);
    let backend = progress_of(&all, "backend");
    let last = backend
        .last()
        .unwrap_or_else(|| panic!("no progress: {all:?}"));
    assert_eq!(last["unit"], "packages installed", "{last}");
    // exampleos-base and the exampleos-lib it requires.
    assert_eq!(
        (&last["done"], &last["total"]),
        (&2.into(), &2.into()),
        "{last}"
    );
    assert_eq!(last["last"], true, "{last}");
}

#[test]
fn publishing_reports_the_delta_and_composing_the_worktree_and_triggers() {
    let p = Project::new(&dir_components_manifest(
        &[("base", "base")],
        "publish = true\ntriggers = [{ name = \"slow\", run = \"sleep 1.5\" }]",
    ));
    p.file("base/usr/share/doc/a.txt", "one\n", 0o644);
    p.run(&["build"]).ok();
    p.file("base/usr/share/doc/a.txt", "two\n", 0o644);
    let all = events(&p.run(&["build", "--message-format", "json"]).ok());
    let step = |name: &str| progress_of(&all, name);
    // The trigger's running time, a tick a second, then its last report.
    let trigger = step("trigger");
    assert!(trigger.len() >= 2, "{trigger:?}");
    assert!(trigger
        .iter()
        .all(|e| e["item"] == "slow" && e["kind"] == "image"));
    assert!(trigger[0]["done"].as_u64() >= Some(1), "{trigger:?}");
    assert_eq!(trigger.last().unwrap()["last"], true);
    // The worktree sync before it: at least its last report.
    assert_eq!(step("worktree").last().expect("worktree")["last"], true);
    // The delta: a report as it starts (nothing done yet), and its last one with the parts
    // written (one: a one-file change).
    let delta = step("delta");
    assert!(delta.len() >= 2, "{delta:?}");
    assert_eq!(
        (&delta[0]["done"], &delta[0]["last"], &delta[0]["unit"]),
        (&0.into(), &false.into(), &"parts".into())
    );
    assert_eq!(delta.last().unwrap()["last"], true);
    assert_eq!(delta.last().unwrap()["done"], 1, "{delta:?}");
    assert_eq!(delta[0]["kind"], "publish");
}
