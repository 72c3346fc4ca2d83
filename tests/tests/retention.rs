//! Retention (`prune`, `[retention]`) and `clean`, checked with the `ostree` CLI: a dry
//! run changes nothing, a prune keeps exactly the newest commits of each published ref and
//! the deltas between them, both repositories stay `fsck` clean, a client still pulls, the
//! next build is incremental; a policy that keeps nothing deletes nothing; a failed build's
//! objects and old package-cache entries go; `clean` leaves a project that builds.

use ostree_build_tests::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const IMAGE: &str = "exampleos/x86_64/standard";

fn manifest(extra: &str) -> String {
    dir_components_manifest(&[("base", "base"), ("app", "app")], "version = \"1.0\"\n") + extra
}

/// A project built and published `n` times, each time with a changed `app`.
fn published(n: usize, extra: &str) -> Project {
    let p = Project::new(&manifest(extra));
    p.file("base/usr/bin/tool", "tool\n", 0o755);
    for i in 1..=n {
        change_app(&p, i);
        p.run(&["build", "-q"]).ok();
    }
    p
}

fn change_app(p: &Project, i: usize) {
    p.file("app/etc/conf", &format!("release {i}\n"), 0o644);
    p.file(&format!("app/etc/notes-{i}"), &"x".repeat(3000 + i), 0o644);
    let _ = std::fs::remove_file(p.p(&format!("app/etc/notes-{}", i.wrapping_sub(1))));
}

/// The commits `ostree log` shows for a ref, newest first.
fn log_commits(repo: &Path, r: &str) -> Vec<String> {
    ostree(repo, &["log", r])
        .lines()
        .filter_map(|l| l.strip_prefix("commit "))
        .map(str::to_string)
        .collect()
}

fn deltas(repo: &Path) -> Vec<String> {
    let out = ostree(repo, &["static-delta", "list"]);
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("(No"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Every file under `objects/`, by name.
fn objects(repo: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in std::fs::read_dir(repo.join("objects")).unwrap().flatten() {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            out.insert(format!(
                "{}{}",
                dir.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    out
}

/// What a user would compare before and after: refs, history, objects, deltas.
#[derive(Debug, PartialEq)]
struct Snapshot {
    refs: Vec<(String, String)>,
    build_refs: Vec<(String, String)>,
    log: Vec<String>,
    export_objects: BTreeSet<String>,
    build_objects: BTreeSet<String>,
    deltas: Vec<String>,
}

fn snapshot(p: &Project) -> Snapshot {
    Snapshot {
        refs: refs(&p.export_repo()),
        build_refs: refs(&p.build_repo()),
        log: log_commits(&p.export_repo(), IMAGE),
        export_objects: objects(&p.export_repo()),
        build_objects: objects(&p.build_repo()),
        deltas: deltas(&p.export_repo()),
    }
}

fn json_summary(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "prune-summary")
        .expect("a prune-summary line")
}

#[test]
fn prune_keeps_the_newest_commits_their_delta_and_a_working_repository() {
    let p = published(5, "");
    let before = snapshot(&p);
    assert_eq!(before.log.len(), 5, "{:?}", before.log);
    assert_eq!(before.deltas.len(), 4);

    let dry = p.run(&["prune", "--keep", "2", "--dry-run"]).ok();
    assert!(
        dry.stdout.contains("Would remove static delta"),
        "{}",
        dry.stdout
    );
    assert_eq!(snapshot(&p), before, "a dry run changed something");
    let dry_json = p
        .run(&[
            "prune",
            "--keep",
            "2",
            "--dry-run",
            "--message-format",
            "json",
        ])
        .ok();
    let predicted = json_summary(&dry_json.stdout);
    assert_eq!(snapshot(&p), before);

    let done = p
        .run(&["prune", "--keep", "2", "--message-format", "json"])
        .ok();
    let summary = json_summary(&done.stdout);
    let after = snapshot(&p);
    assert_eq!(
        after.log,
        before.log[..2].to_vec(),
        "ostree log after prune"
    );
    assert!(ostree(&p.export_repo(), &["log", IMAGE]).contains("History beyond this commit"));
    assert_eq!(after.refs, before.refs, "no ref moves");
    assert_eq!(after.build_refs, before.build_refs, "no build ref moves");
    assert_eq!(
        after.deltas,
        vec![format!("{}-{}", before.log[1], before.log[0])],
        "only the delta between the kept commits stays"
    );
    let summary_view = ostree(&p.export_repo(), &["summary", "--view"]);
    for old in &before.log[2..] {
        assert!(!summary_view.contains(old.as_str()), "{summary_view}");
    }
    // What the dry run announced is what went, counted independently on disk.
    let gone = before
        .export_objects
        .difference(&after.export_objects)
        .count();
    assert_eq!(summary["export"]["objects"], gone as u64);
    assert_eq!(predicted["export"], summary["export"]);
    assert_eq!(predicted["build"]["objects"], summary["build"]["objects"]);
    assert!(gone > 0 && summary["build"]["objects"].as_u64().unwrap() > 0);
    fsck(&p.export_repo());
    fsck(&p.build_repo());

    // A client still pulls what is published.
    let client = tempfile::tempdir().unwrap();
    ostree(client.path(), &["init", "--mode=archive"]);
    let export = p.export_repo();
    ostree(
        client.path(),
        &["pull-local", export.to_str().unwrap(), IMAGE],
    );
    let pulled = ostree(client.path(), &["rev-parse", IMAGE]);
    assert_eq!(pulled.trim(), before.log[0]);
    assert_eq!(cat(client.path(), IMAGE, "/etc/conf"), "release 5\n");

    // The next build is incremental and extends the kept history.
    change_app(&p, 6);
    let rebuild = p.run(&["build", "--message-format", "json"]).ok();
    let end = rebuild
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .expect("build summary");
    assert_eq!(end["built"], 1, "{}", rebuild.stdout);
    assert_eq!(end["fresh"], 1, "base stays fresh: {}", rebuild.stdout);
    assert_eq!(end["published"], 1);
    let log = log_commits(&p.export_repo(), IMAGE);
    assert_eq!(log[1..], before.log[..2]);
    fsck(&p.export_repo());
}

#[test]
fn a_policy_that_keeps_nothing_is_refused_and_deletes_nothing() {
    let p = published(2, "");
    let before = snapshot(&p);

    let none = p.run(&["prune"]).fails();
    assert!(
        none.stderr.contains("no retention policy"),
        "{}",
        none.stderr
    );
    assert!(
        none.stderr.contains("help: add `[retention]`"),
        "{}",
        none.stderr
    );

    p.write_manifest(&manifest("\n[retention]\nkeep = 0\n"));
    let zero = p.run(&["prune"]).fails();
    let line = zero.one_line_error().to_string();
    assert!(
        line.contains("ostree-build.toml:") && line.contains("retention.keep must be at least 1"),
        "{}",
        zero.stderr
    );
    assert!(zero.stderr.contains("help:"), "{}", zero.stderr);

    p.write_manifest(&manifest("\n[retention]\nkeep-younger-than = \"3 days\"\n"));
    let unit = p.run(&["prune", "--dry-run"]).fails();
    assert!(unit.stderr.contains("keep-younger-than"), "{}", unit.stderr);
    assert!(unit.stderr.contains("s, m, h, d or w"), "{}", unit.stderr);

    // The head is older than the policy allows: refused for every ref, nothing deleted.
    std::thread::sleep(std::time::Duration::from_secs(2));
    p.write_manifest(&manifest("\n[retention]\nkeep-younger-than = \"1s\"\n"));
    let old = p.run(&["prune"]).fails();
    let first = old.one_line_error();
    assert!(
        first.contains(IMAGE) && first.contains(&before.log[0][..12]) && first.contains("old"),
        "{}",
        old.stderr
    );
    assert!(old.stderr.contains("nothing was deleted"), "{}", old.stderr);
    assert_eq!(snapshot(&p), before);

    // Either rule keeps: keep = 1 rescues the head.
    p.write_manifest(&manifest(
        "\n[retention]\nkeep = 1\nkeep-younger-than = \"1s\"\n",
    ));
    p.run(&["prune"]).ok();
    assert_eq!(
        log_commits(&p.export_repo(), IMAGE),
        before.log[..1].to_vec()
    );
    fsck(&p.export_repo());
}

/// The commit objects of a repository, by checksum.
fn commit_objects(repo: &Path) -> BTreeSet<String> {
    objects(repo)
        .into_iter()
        .filter_map(|o| o.strip_suffix(".commit").map(str::to_string))
        .collect()
}

fn grep_objects(repo: &Path, needle: &str) -> bool {
    Command::new("grep")
        .args(["-rqF", needle])
        .arg(repo.join("objects"))
        .status()
        .unwrap()
        .success()
}

#[test]
fn a_failed_build_and_commits_without_a_ref_go_from_the_build_repository() {
    let trigger = "triggers = [{ name = \"check\", run = \"test ! -e etc/fail\" }]\n";
    let m = dir_components_manifest(&[("base", "base"), ("app", "app")], trigger);
    let p = Project::new(&m);
    p.file("base/usr/bin/tool", "tool\n", 0o755);
    p.file("app/etc/conf", "one\n", 0o644);
    p.run(&["build", "-q"]).ok();
    // A superseded build: its commits stay only as parents of the build refs' heads.
    p.file("app/etc/conf", "two\n", 0o644);
    p.run(&["build", "-q"]).ok();
    // The trigger fails after the component was imported and the union written.
    p.file("app/etc/fail", "failed-build-marker-7d1\n", 0o644);
    p.run(&["build", "-q"]).fails();
    let build = p.build_repo();
    assert!(grep_objects(&build, "failed-build-marker-7d1"));
    // A commit written without a ref.
    let orphan_dir = tempfile::tempdir().unwrap();
    std::fs::write(orphan_dir.path().join("f"), "orphan-marker-55a\n").unwrap();
    let tree = format!("--tree=dir={}", orphan_dir.path().display());
    let orphan = ostree(&build, &["commit", "--orphan", &tree]);
    let orphan = orphan.trim();
    let refs_before = refs(&build);

    p.run(&["prune", "--keep", "5"]).ok();
    assert!(!grep_objects(&build, "failed-build-marker-7d1"));
    assert!(!grep_objects(&build, "orphan-marker-55a"));
    assert!(!commit_objects(&build).contains(orphan));
    assert_eq!(refs(&build), refs_before);
    // What stays: the ref heads and the commit the trigger worktree reflects.
    let mut expected: BTreeSet<String> = refs_before.into_iter().map(|(_, c)| c).collect();
    let state = p.p("build/.ostree-build/images/standard/tree.commit");
    if let Ok(c) = std::fs::read_to_string(&state) {
        expected.insert(c.trim().to_string());
    }
    assert_eq!(commit_objects(&build), expected);
    fsck(&build);
    fsck(&p.export_repo());
    std::fs::remove_file(p.p("app/etc/fail")).unwrap();
    p.run(&["build", "-q"]).ok();
    fsck(&build);
}

fn touch_at(path: &Path, epoch: i64) {
    let ok = Command::new("touch")
        .arg("-d")
        .arg(format!("@{epoch}"))
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Fake package files: `(relative path, mtime)`; older versions get newer mtimes, so only
/// a version comparison picks the right ones.
fn fake_cache(p: &Project) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let cache = p.p("build/.ostree-build/cache");
    let old = [
        "dir/bookworm-amd64/libfoo_1.2-1_amd64.deb",
        "dir/bookworm-amd64/bar_2.0-1_all.deb",
        "dir/dnf-cache/fedora-1234/packages/glibc-2.38-9.fc39.x86_64.rpm",
        "debootstrap/bookworm-amd64/zlib_1.0_amd64.deb",
    ];
    let new = [
        "dir/bookworm-amd64/libfoo_1.10-1_amd64.deb",
        "dir/bookworm-amd64/libfoo_1.2-1_i386.deb",
        "dir/bookworm-amd64/bar_1%3a0.9-1_all.deb",
        "dir/dnf-cache/fedora-1234/packages/glibc-2.38-16.fc39.x86_64.rpm",
        "dir/bookworm-amd64/lock",
    ];
    let write = |rel: &str, t: i64| {
        let path = cache.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rel).unwrap();
        touch_at(&path, t);
        path
    };
    let old: Vec<PathBuf> = old.iter().map(|r| write(r, 2_000_000_000)).collect();
    let new: Vec<PathBuf> = new.iter().map(|r| write(r, 1_000_000_000)).collect();
    (old, new)
}

#[test]
fn old_package_cache_entries_and_unused_backend_caches_go() {
    let p = published(1, "\n[retention]\nkeep = 3\n");
    let (old, new) = fake_cache(&p);
    let dry = p.run(&["prune", "--dry-run"]).ok();
    for f in &old {
        assert!(f.exists(), "the dry run removed {}", f.display());
    }
    for f in &old[..3] {
        let line = dry
            .stdout
            .lines()
            .find(|l| l.contains(&f.display().to_string()))
            .unwrap_or_else(|| panic!("{} not listed: {}", f.display(), dry.stdout));
        assert!(line.contains("superseded by"), "{line}");
    }
    assert!(
        dry.stdout
            .contains("no component uses the backend 'debootstrap'"),
        "{}",
        dry.stdout
    );
    let out = p.run(&["prune", "--message-format", "json"]).ok();
    let summary = json_summary(&out.stdout);
    assert_eq!(summary["cache_entries"], 4, "{}", out.stdout);
    for f in &old {
        assert!(!f.exists(), "{} should be gone", f.display());
    }
    for f in &new {
        assert!(f.exists(), "{} should stay", f.display());
    }
    assert!(!p.p("build/.ostree-build/cache/debootstrap").exists());
}

#[test]
fn clean_removes_scratch_worktrees_and_caches_and_the_next_build_works() {
    let trigger = "triggers = [{ name = \"stamp\", run = \"echo made > etc/stamp\" }]\n";
    let m = dir_components_manifest(&[("base", "base"), ("app", "app")], trigger);
    let p = Project::new(&m);
    p.file("base/usr/bin/tool", "tool\n", 0o755);
    p.file("app/etc/conf", "one\n", 0o644);
    p.run(&["build", "-q"]).ok();
    fake_cache(&p);
    let state = p.p("build/.ostree-build");
    assert!(state.join("images/standard/tree").is_dir());
    let export_before = snapshot(&p);

    // A running build holds the lock: clean refuses at once and removes nothing.
    // `-o`: the lock is flock's own, released when it is killed.
    let holder = Command::new("flock")
        .arg("-o")
        .arg(state.join("lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let mut holder = KillOnDrop(holder);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let busy = p.run(&["clean"]).fails();
    assert!(
        busy.one_line_error().contains("holds the project lock"),
        "{}",
        busy.stderr
    );
    assert!(state.join("images/standard/tree").is_dir() && state.join("cache").is_dir());
    holder.stop();

    let dry = p.run(&["clean", "--dry-run"]).ok();
    assert!(dry.stdout.contains("Would remove"), "{}", dry.stdout);
    assert!(state.join("images/standard/tree").is_dir() && state.join("cache").is_dir());

    let done = p.run(&["clean"]).ok();
    assert!(done.stdout.contains("package caches"), "{}", done.stdout);
    assert!(!state.join("images").exists());
    assert!(!state.join("cache").exists());
    assert!(!state.join("work").exists());
    assert_eq!(snapshot(&p), export_before, "clean keeps both repositories");
    let status = p.run(&["status", "--check"]).ok();
    assert!(status.stdout.contains("fresh"), "{}", status.stdout);

    p.file("app/etc/conf", "two\n", 0o644);
    p.run(&["build", "-q"]).ok();
    assert_eq!(cat(&p.export_repo(), IMAGE, "/etc/stamp"), "made\n");
    assert_eq!(cat(&p.export_repo(), IMAGE, "/etc/conf"), "two\n");
    fsck(&p.export_repo());
}

struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn prune_keeps_what_the_next_build_reuses_from_the_trigger_state() {
    let triggers = r#"triggers = [
  { name = "index", run = "mkdir -p usr/share && ls usr/bin > usr/share/index", inputs = ["/usr/bin"] },
  { name = "stamp", run = "cat etc/conf > etc/stamp" },
]
"#;
    let m = dir_components_manifest(&[("base", "base"), ("app", "app")], triggers);
    let p = Project::new(&m);
    p.file("base/usr/bin/tool", "tool\n", 0o755);
    for conf in ["one\n", "two\n"] {
        p.file("app/etc/conf", conf, 0o644);
        p.run(&["build", "-q"]).ok();
    }
    let out = p.run(&["prune", "--keep", "1"]).ok();
    assert!(out.stdout.contains("removing 1"), "{}", out.stdout);
    fsck(&p.build_repo());
    p.file("app/etc/conf", "three\n", 0o644);
    let rebuild = p.run(&["build"]).ok();
    let all = format!("{}{}", rebuild.stdout, rebuild.stderr);
    assert!(all.contains("index reused"), "{all}");
    assert!(
        all.contains("worktree synced"),
        "the worktree was checked out afresh: {all}"
    );
    assert_eq!(cat(&p.export_repo(), IMAGE, "/etc/stamp"), "three\n");
    assert_eq!(cat(&p.export_repo(), IMAGE, "/usr/share/index"), "tool\n");
}

#[test]
fn other_refs_in_the_export_repository_are_kept_whole() {
    let p = published(5, "");
    let export = p.export_repo();
    let log = log_commits(&export, IMAGE);
    // A promoted ref at the fourth-newest commit: it and its parent stay.
    let stable = "exampleos/x86_64/stable";
    ostree(&export, &["refs", &format!("--create={stable}"), &log[3]]);
    p.run(&["prune", "--keep", "2"]).ok();
    assert_eq!(log_commits(&export, IMAGE), log[..2].to_vec());
    assert_eq!(log_commits(&export, stable), log[3..].to_vec());
    let mut expected = vec![
        format!("{}-{}", log[1], log[0]),
        format!("{}-{}", log[4], log[3]),
    ];
    expected.sort();
    assert_eq!(
        deltas(&export),
        expected,
        "deltas between kept commits only"
    );
    assert!(!commit_objects(&export).contains(&log[2]));
    fsck(&export);
}

#[test]
fn prune_waits_for_a_running_build() {
    let p = published(3, "");
    let lock = p.p("build/.ostree-build/lock");
    let holder = Command::new("flock")
        .arg("-o")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let mut holder = KillOnDrop(holder);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut prune = Command::new(binary())
        .args(["prune", "--keep", "1"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(prune.try_wait().unwrap().is_none(), "prune did not wait");
    assert_eq!(log_commits(&p.export_repo(), IMAGE).len(), 3);
    holder.stop();
    let out = prune.wait_with_output().unwrap();
    assert!(out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("waiting for another ostree-build run"),
        "{text}"
    );
    assert_eq!(log_commits(&p.export_repo(), IMAGE).len(), 1);
}
