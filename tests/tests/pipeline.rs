//! The pipeline end to end: components from a directory and a tarball, unioned with a
//! trigger, published, pulled by a client over HTTP; checked with the `ostree` CLI.

use ostree_build_tests::*;
use std::process::{Command, Stdio};

const IMAGE: &str = "exampleos/x86_64/standard";

const MANIFEST: &str = r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.base]
backend = "dir"
path = "rootfs"

[component.app]
backend = "dir"
path = "app"

[component.oe]
backend = "tarball"
path = "oe.tar.gz"

[image.standard]
components = ["base", "app", "oe"]
version = "1.0"
metadata = { "exampleos.channel" = "stable" }
triggers = [
  { name = "stamp", run = "mkdir -p usr/share/stamp && ls usr/bin > usr/share/stamp/bins" },
  { name = "prune", run = "rm usr/share/remove-me && echo run >> usr/share/stamp/log" },
]
"#;

fn project() -> Project {
    let p = Project::new(MANIFEST);
    p.file("rootfs/usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755)
        .file("rootfs/etc/hostname", "exampleos\n", 0o644)
        .file("rootfs/usr/bin/passwd", "setuid\n", 0o4755)
        .file("rootfs/usr/share/empty", "", 0o600)
        .file(
            "rootfs/usr/share/remove-me",
            "a trigger deletes this\n",
            0o644,
        )
        .symlink("rootfs/usr/bin/hi", "hello")
        .file("app/usr/lib/libapp.so.1", "app library\n", 0o644)
        .file("app/usr/bin/app", "#!/bin/sh\necho app\n", 0o750);
    std::os::unix::fs::chown(p.p("app/usr/bin/app"), Some(1000), Some(1000)).unwrap();
    python_tar(
        &p.p("oe.tar.gz"),
        "dir('usr'); dir('usr/sbin')\nreg('usr/sbin/oe-su', b'oe setuid\\n', 0o4755)\nhard('usr/sbin/oe-su-alias', 'usr/sbin/oe-su')\nsym('usr/sbin/oe-link', 'oe-su')\nreg('usr/sbin/owned', b'owned\\n', 0o640, 1000, 1000)",
    );
    p
}

#[test]
fn builds_composes_and_publishes_every_component() {
    let p = project();
    let out = p.run(&["build"]).ok();
    assert!(
        out.stdout.contains("Built component base"),
        "{}",
        out.stdout
    );
    let export = p.export_repo();
    // A file from every component, with content, mode, ownership and symlink targets.
    assert_eq!(
        cat(&export, IMAGE, "/usr/bin/hello"),
        "#!/bin/sh\necho hello\n"
    );
    assert!(ls(&export, IMAGE, "/usr/bin/hello").starts_with("-00755 0 0"));
    assert!(ls(&export, IMAGE, "/usr/bin/passwd").starts_with("-04755 0 0"));
    assert!(ls(&export, IMAGE, "/usr/bin/hi").ends_with("/usr/bin/hi -> hello"));
    assert!(ls(&export, IMAGE, "/usr/share/empty").starts_with("-00600 0 0      0"));
    assert_eq!(cat(&export, IMAGE, "/usr/lib/libapp.so.1"), "app library\n");
    assert!(ls(&export, IMAGE, "/usr/bin/app").starts_with("-00750 1000 1000"));
    assert_eq!(cat(&export, IMAGE, "/usr/sbin/oe-su"), "oe setuid\n");
    assert!(ls(&export, IMAGE, "/usr/sbin/oe-su").starts_with("-04755 0 0"));
    assert!(ls(&export, IMAGE, "/usr/sbin/oe-su-alias").starts_with("-04755 0 0"));
    assert!(ls(&export, IMAGE, "/usr/sbin/oe-link").ends_with("-> oe-su"));
    assert!(ls(&export, IMAGE, "/usr/sbin/owned").starts_with("-00640 1000 1000"));
    // The trigger saw the whole union and its output is in the image.
    let bins = cat(&export, IMAGE, "/usr/share/stamp/bins");
    for b in ["app", "hello", "hi", "passwd"] {
        assert!(
            bins.lines().any(|l| l == b),
            "trigger output lacks {b}: {bins}"
        );
    }
    // Metadata: version and user metadata.
    assert_eq!(
        ostree(&export, &["show", "--print-metadata-key=version", IMAGE]).trim(),
        "'1.0'"
    );
    assert_eq!(
        ostree(
            &export,
            &["show", "--print-metadata-key=exampleos.channel", IMAGE]
        )
        .trim(),
        "'stable'"
    );
    // Each component on its own branch of the build repo, with its backend recorded.
    let build = p.build_repo();
    assert_eq!(
        ostree(
            &build,
            &[
                "show",
                "--print-metadata-key=ostree-build.backend",
                "exampleos/x86_64/components/oe"
            ]
        )
        .trim(),
        "'tarball'"
    );
    fsck(&build);
    fsck(&export);
    // The export repository has a summary listing the image.
    assert!(ostree(&export, &["summary", "--view"]).contains(IMAGE));
}

#[test]
fn second_build_is_a_no_op_and_writes_nothing() {
    let p = project();
    p.run(&["build"]).ok();
    let before = (refs(&p.build_repo()), refs(&p.export_repo()));
    let objects_before = count_files(&p.build_repo().join("objects"))
        + count_files(&p.export_repo().join("objects"));
    let summary = std::fs::metadata(p.export_repo().join("summary"))
        .unwrap()
        .modified()
        .unwrap();
    let out = p.run(&["build"]).ok();
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);
    assert!(!out.stdout.contains("Built"), "{}", out.stdout);
    assert_eq!(before, (refs(&p.build_repo()), refs(&p.export_repo())));
    assert_eq!(
        objects_before,
        count_files(&p.build_repo().join("objects"))
            + count_files(&p.export_repo().join("objects"))
    );
    assert_eq!(
        summary,
        std::fs::metadata(p.export_repo().join("summary"))
            .unwrap()
            .modified()
            .unwrap()
    );
}

#[test]
fn composed_tree_equals_a_plain_commit_of_the_same_files() {
    let p = project();
    p.run(&["build"]).ok();
    assert_equals_plain_commit(&p, "checkout-1");
}

/// Check the image out as root (keeping ownership and modes), commit it plainly, and
/// compare the root trees: the composed commit must be exactly that.
fn assert_equals_plain_commit(p: &Project, name: &str) {
    let tree = p.p(name);
    ostree(
        &p.export_repo(),
        &["checkout", IMAGE, tree.to_str().unwrap()],
    );
    let plain = p.p(&format!("{name}-repo"));
    ostree(&plain, &["init", "--mode=bare"]);
    ostree(
        &plain,
        &[
            "commit",
            "-b",
            "plain",
            &format!("--tree=dir={}", tree.display()),
        ],
    );
    let composed = content_checksum(&p.build_repo(), IMAGE);
    assert_eq!(
        composed,
        content_checksum(&plain, "plain"),
        "composed tree differs from a plain commit:\ncomposed:\n{}\nplain:\n{}",
        ostree(&p.build_repo(), &["ls", "-R", "-X", IMAGE]),
        ostree(&plain, &["ls", "-R", "-X", "plain"])
    );
    // No libostree-internal xattr leaked into the image.
    assert!(!ostree(&p.build_repo(), &["ls", "-R", "-X", IMAGE]).contains("ostreemeta"));
}

#[test]
fn changing_one_component_rebuilds_only_it_and_the_image() {
    let p = project();
    p.run(&["build"]).ok();
    let first = ostree(&p.export_repo(), &["rev-parse", IMAGE])
        .trim()
        .to_string();
    let base_before = ostree(
        &p.build_repo(),
        &["rev-parse", "exampleos/x86_64/components/base"],
    );
    let oe_before = ostree(
        &p.build_repo(),
        &["rev-parse", "exampleos/x86_64/components/oe"],
    );

    p.file("app/usr/lib/libapp.so.1", "app library v2\n", 0o644);
    // A trigger output must not pile up in the worktree kept between builds, and a file
    // a trigger removed must be back for the triggers of the next build.
    let dry = p.run(&["build", "--dry-run"]).ok();
    assert!(
        dry.stdout.contains("build component app: input changed"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("fresh component base"),
        "{}",
        dry.stdout
    );

    let out = p.run(&["build"]).ok();
    assert!(out.stdout.contains("Built component app"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("Built component base"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("Built component oe"), "{}", out.stdout);
    assert_eq!(
        base_before,
        ostree(
            &p.build_repo(),
            &["rev-parse", "exampleos/x86_64/components/base"]
        )
    );
    assert_eq!(
        oe_before,
        ostree(
            &p.build_repo(),
            &["rev-parse", "exampleos/x86_64/components/oe"]
        )
    );

    let export = p.export_repo();
    let second = ostree(&export, &["rev-parse", IMAGE]).trim().to_string();
    assert_ne!(first, second);
    assert_eq!(
        cat(&export, IMAGE, "/usr/lib/libapp.so.1"),
        "app library v2\n"
    );
    // History: the new commit's parent is the previous one, the version moved on.
    assert_eq!(
        ostree(&export, &["rev-parse", &format!("{IMAGE}^")]).trim(),
        first
    );
    assert_eq!(
        ostree(&export, &["show", "--print-metadata-key=version", IMAGE]).trim(),
        "'1.0.1'"
    );
    // A static delta from the previous commit was generated.
    let deltas = ostree(&export, &["static-delta", "list"]);
    assert!(deltas.contains(&format!("{first}-{second}")), "{deltas}");
    fsck(&p.build_repo());
    fsck(&export);
}

#[test]
fn client_pulls_the_published_branch_over_http_using_the_delta() {
    let p = project();
    p.run(&["build"]).ok();
    let server = HttpServer::start(&p.export_repo());
    let client = p.p("client");
    // A device repository (bare-user): libostree applies static deltas only to bare modes.
    ostree(&client, &["init", "--mode=bare-user"]);
    ostree(
        &client,
        &["remote", "add", "--no-gpg-verify", "origin", &server.url],
    );
    ostree(&client, &["pull", "origin", IMAGE]);

    p.file("rootfs/usr/bin/hello", "#!/bin/sh\necho hello v2\n", 0o755);
    p.run(&["build"]).ok();
    ostree(&client, &["pull", "origin", IMAGE]);
    let log = server.log();
    assert!(
        log.contains("/deltas/"),
        "the client did not use a static delta:\n{log}"
    );
    assert_eq!(
        ostree(&client, &["rev-parse", &format!("origin:{IMAGE}")]),
        ostree(&p.export_repo(), &["rev-parse", IMAGE])
    );
    let tree = p.p("client-tree");
    ostree(
        &client,
        &[
            "checkout",
            "-U",
            &format!("origin:{IMAGE}"),
            tree.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/bin/hello")).unwrap(),
        "#!/bin/sh\necho hello v2\n"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/lib/libapp.so.1")).unwrap(),
        "app library\n"
    );
    // The whole tree, with modes, owners, sizes and checksums, is the published one.
    assert_eq!(
        ostree(&client, &["ls", "-R", "-C", &format!("origin:{IMAGE}")]),
        ostree(&p.export_repo(), &["ls", "-R", "-C", IMAGE])
    );
    fsck(&client);
}

/// `ostree-build build` running in the background, its stdout read as it comes.
struct Background {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<String>>,
}

impl Background {
    fn build(p: &Project) -> Background {
        let mut child = Command::new(binary())
            .arg("build")
            .current_dir(p.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ostree-build");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        Background {
            child,
            lines,
            seen: Default::default(),
        }
    }

    /// Wait (at most a minute) for a line containing `marker`.
    fn wait_for(&self, marker: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            let found = line.contains(marker);
            self.seen.borrow_mut().push(line);
            if found {
                return;
            }
        }
        panic!(
            "no line with {marker:?} in:\n{}",
            self.seen.borrow().join("\n")
        );
    }

    /// Wait for the run to end: its status and everything it printed.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let mut seen = self.seen.into_inner();
        seen.extend(self.lines.try_iter());
        (status, seen.join("\n"))
    }
}

fn content_checksum(repo: &std::path::Path, rev: &str) -> String {
    ostree(repo, &["show", rev])
        .lines()
        .find_map(|l| {
            l.strip_prefix("ContentChecksum:")
                .map(|s| s.trim().to_string())
        })
        .expect("ContentChecksum line")
}

fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            n += if p.is_dir() { count_files(&p) } else { 1 };
        }
    }
    n
}

#[test]
fn status_shows_fresh_stale_and_published() {
    let p = project();
    let before = p.run(&["status"]).ok();
    assert!(
        before
            .stdout
            .lines()
            .any(|l| l.starts_with("component base") && l.contains("missing")),
        "{}",
        before.stdout
    );
    p.run(&["build"]).ok();
    let commit = ostree(&p.export_repo(), &["rev-parse", IMAGE]);
    let fresh = p.run(&["status"]).ok();
    let image = fresh
        .stdout
        .lines()
        .find(|l| l.starts_with("image"))
        .unwrap();
    assert!(image.contains("fresh"), "{image}");
    assert!(image.contains("version 1.0"), "{image}");
    assert!(
        image.contains(&format!("published: {}", &commit[..12])),
        "{image}"
    );

    p.file("app/usr/lib/libapp.so.1", "changed\n", 0o644);
    let stale = p.run(&["status"]).ok();
    let app = stale
        .stdout
        .lines()
        .find(|l| l.starts_with("component app"))
        .unwrap();
    assert!(
        app.contains("stale") && app.contains("input changed"),
        "{app}"
    );
    let base = stale
        .stdout
        .lines()
        .find(|l| l.starts_with("component base"))
        .unwrap();
    assert!(base.contains("fresh"), "{base}");
    let image = stale
        .stdout
        .lines()
        .find(|l| l.starts_with("image"))
        .unwrap();
    assert!(
        image.contains("stale") && image.contains("component 'app'"),
        "{image}"
    );
}

#[test]
fn json_messages_are_one_object_per_line() {
    let p = project();
    let out = p.run(&["build", "--message-format", "json"]).ok();
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary event");
    assert_eq!(summary["built"], 3);
    assert_eq!(summary["composed"], 1);
    assert_eq!(summary["published"], 1);
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "finished" && e["kind"] == "component")
        .collect();
    assert_eq!(finished.len(), 3);
    assert!(finished
        .iter()
        .all(|e| e["commit"].as_str().is_some_and(|c| c.len() == 64)));

    // A failure is an error event and a non-zero exit.
    p.write_manifest(&MANIFEST.replace("path = \"app\"", "path = \"nowhere\""));
    let failed = p.run(&["build", "--message-format", "json"]).fails();
    let last: serde_json::Value =
        serde_json::from_str(failed.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "error");
    assert!(
        last["message"].as_str().unwrap().contains("nowhere"),
        "{last}"
    );
}

#[test]
fn two_runs_on_one_project_are_serialised() {
    let p = project();
    p.write_manifest(&MANIFEST.replace(
        "{ name = \"prune\",",
        "{ name = \"slow\", run = \"sleep 2\" },\n  { name = \"prune\",",
    ));
    let first = Background::build(&p);
    first.wait_for("Composing image");
    let second = p.run(&["build"]).ok();
    let (status, _) = first.finish();
    assert!(status.success());
    assert!(second.stdout.contains("Blocking"), "{}", second.stdout);
    // The second run saw the first one's result and had nothing left to do.
    assert!(second.stdout.contains("nothing to do"), "{}", second.stdout);
    fsck(&p.build_repo());
    fsck(&p.export_repo());
}

#[test]
fn component_names_that_are_not_ref_characters_are_escaped() {
    let p = Project::new(
        r#"
[os]
name = "exampleos"
arch = "x86_64"

[component."libstdc++6"]
backend = "dir"
path = "libstdc"

[image.standard]
components = ["libstdc++6"]
"#,
    );
    p.file("libstdc/usr/lib/libstdc++.so.6", "c++\n", 0o644);
    p.run(&["build"]).ok();
    let refs = refs(&p.build_repo());
    assert!(
        refs.iter()
            .any(|(r, _)| r == "exampleos/x86_64/components/libstdc_2B_2B6"),
        "{refs:?}"
    );
    assert_eq!(
        cat(&p.export_repo(), IMAGE, "/usr/lib/libstdc++.so.6"),
        "c++\n"
    );
    let status = p.run(&["status"]).ok();
    assert!(status.stdout.contains("libstdc++6"), "{}", status.stdout);
}

#[test]
fn a_summary_left_stale_by_an_interrupted_publish_is_regenerated() {
    let p = project();
    p.run(&["build"]).ok();
    // As if a run had died between moving the export ref and writing the summary.
    std::fs::remove_file(p.export_repo().join("summary")).unwrap();
    let out = p.run(&["build"]).ok();
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);
    assert!(ostree(&p.export_repo(), &["summary", "--view"]).contains(IMAGE));
}

#[test]
fn interrupting_a_run_that_waits_for_the_lock_leaves_the_other_run_alone() {
    let p = project();
    p.write_manifest(&MANIFEST.replace(
        "{ name = \"prune\",",
        "{ name = \"slow\", run = \"sleep 2 && echo late > \\\"$OSTREE_BUILD_ROOT/usr/share/late\\\"\" },\n  { name = \"prune\",",
    ));
    let first = Background::build(&p);
    first.wait_for("Composing image");
    let waiting = Background::build(&p);
    waiting.wait_for("Blocking");
    let signalled = Command::new("kill")
        .args(["-INT", &waiting.child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let (waited, _) = waiting.finish();
    assert!(!waited.success(), "the interrupted run did not stop");
    let (status, output) = first.finish();
    assert!(status.success(), "{output}");
    assert_eq!(cat(&p.export_repo(), IMAGE, "/usr/share/late"), "late\n");
}

/// What a pipe holds before its writer blocks (Linux's default).
const PIPE_CAPACITY: usize = 64 << 10;

/// A project whose `status` and `build --dry-run` print several pipes full: a thousand dir
/// components with long names, all from one small directory. Nothing is built.
fn wordy_project() -> Project {
    let names: Vec<String> = (0..1000)
        .map(|i| format!("c{i:04}-{}", "x".repeat(100)))
        .collect();
    let components: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "tree")).collect();
    let p = Project::new(&dir_components_manifest(
        &components,
        "conflicts = \"last-wins\"",
    ));
    p.file("tree/usr/share/f", "f\n", 0o644);
    p
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let p = wordy_project();
    for args in [
        &["status", "--packages", "--message-format", "json"][..],
        &["status", "--packages"],
        &["build", "--dry-run"],
    ] {
        // With a reader, the command prints more than a pipe holds, so a reader that stops
        // early leaves it writing into a closed pipe.
        let open = p.run(args).ok();
        assert!(
            open.stdout.len() > 2 * PIPE_CAPACITY,
            "{args:?} printed only {} bytes",
            open.stdout.len()
        );
        // `ostree-build status | head -c 100`
        let (status, stderr) = into_closed_pipe(&p, args, 100);
        // The tool itself ends, with success (not killed by SIGPIPE, no panic's 101), and
        // says nothing: its reader went away, nothing failed.
        assert!(
            status.success(),
            "ostree-build {args:?} into a closed pipe ended with {status}\nstderr:\n{stderr}"
        );
        assert!(
            stderr.is_empty(),
            "ostree-build {args:?} into a closed pipe printed on stderr:\n{stderr}"
        );
    }
}

/// Run `ostree-build ARGS`, read `first` bytes of its output, close the pipe and wait:
/// the tool's own exit status and what it printed on stderr.
fn into_closed_pipe(
    p: &Project,
    args: &[&str],
    first: usize,
) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(p.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ostree-build");
    let mut reader = child.stdout.take().unwrap();
    let mut start = vec![0u8; first];
    reader
        .read_exact(&mut start)
        .expect("the start of the output");
    drop(reader);
    let out = child.wait_with_output().expect("wait for ostree-build");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A reader that goes away ends the output, not the build: the work is done, and a failure
/// is still a failure.
#[test]
fn a_closed_pipe_neither_stops_a_build_nor_hides_its_failure() {
    let p = project();
    let (status, stderr) = into_closed_pipe(&p, &["build", "--message-format", "json"], 0);
    assert!(status.success(), "{status}\n{stderr}");
    assert_eq!(
        cat(&p.export_repo(), IMAGE, "/usr/bin/app"),
        "#!/bin/sh\necho app\n"
    );

    p.write_manifest(&MANIFEST.replace("path = \"app\"", "path = \"no-such-dir\""));
    std::fs::write(p.p("rootfs/usr/bin/hello"), "changed\n").unwrap();
    let before = refs(&p.build_repo());
    let (status, stderr) = into_closed_pipe(&p, &["build", "--message-format", "json"], 0);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no-such-dir"), "{stderr}");
    assert_eq!(refs(&p.build_repo()), before);
}
