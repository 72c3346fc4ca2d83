//! Bad input: every way a user can hand `ostree-build build` something wrong (manifest,
//! component inputs, tarball contents, conflicts, triggers, interruptions) must fail with a
//! message that names what is wrong, and must leave both repositories exactly as they were:
//! same refs, `ostree fsck` clean.

use ostree_build_tests::*;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BASE_REF: &str = "exampleos/x86_64/components/base";
const APP_REF: &str = "exampleos/x86_64/components/app";
const IMAGE_REF: &str = "exampleos/x86_64/standard";

/// Two dir components unioned into one image.
const DIR_MANIFEST: &str = r#"[os]
name = "exampleos"
arch = "x86_64"

[component.base]
backend = "dir"
path = "rootfs"

[component.app]
backend = "dir"
path = "app"

[image.standard]
components = ["base", "app"]
version = "1.0"
"#;

/// A dir component and a tarball component.
const TARBALL_MANIFEST: &str = r#"[os]
name = "exampleos"
arch = "x86_64"

[component.base]
backend = "dir"
path = "rootfs"

[component.app]
backend = "tarball"
path = "app.tar.gz"

[image.standard]
components = ["base", "app"]
version = "1.0"
"#;

/// The harmless trigger of the good trigger project; tests swap it for a bad one.
const GOOD_TRIGGER: &str =
    r#"triggers = [{ name = "stamp", run = "date > \"$OSTREE_BUILD_ROOT/usr/share/built\"" }]"#;

/// The entries of the good `app.tar.gz` (body for `python_tar`).
const GOOD_TAR: &str = "dir('usr')\ndir('usr/bin')\nreg('usr/bin/app', b'app\\n', 0o755)\n";

// ---------------------------------------------------------------------------------------
// Fixtures and checks shared by the tests.

fn base_files(p: &Project) {
    p.file("rootfs/usr/bin/hello", "hello\n", 0o755)
        .file("rootfs/usr/share/doc/base.txt", "base docs\n", 0o644)
        .symlink("rootfs/usr/bin/hi", "hello");
}

fn dir_project() -> Project {
    let p = Project::new(DIR_MANIFEST);
    base_files(&p);
    p.file("app/usr/bin/app", "app\n", 0o755);
    p
}

fn tarball_project() -> Project {
    let p = Project::new(TARBALL_MANIFEST);
    base_files(&p);
    python_tar(&p.p("app.tar.gz"), GOOD_TAR);
    p
}

fn trigger_project() -> Project {
    let p = Project::new(&format!("{DIR_MANIFEST}{GOOD_TRIGGER}\n"));
    base_files(&p);
    p.file("app/usr/bin/app", "app\n", 0o755);
    p
}

/// The refs (with commits) of both repositories.
#[derive(Debug, Clone, PartialEq)]
struct State {
    build: Vec<(String, String)>,
    export: Vec<(String, String)>,
}

fn state(p: &Project) -> State {
    State {
        build: refs(&p.build_repo()),
        export: refs(&p.export_repo()),
    }
}

/// `build` must succeed and publish the image; returns the refs it left.
fn build_ok(p: &Project) -> State {
    p.run(&["build"]).ok();
    let s = state(p);
    assert!(
        s.build.iter().any(|(r, _)| r == IMAGE_REF),
        "no image ref in the build repo: {s:?}"
    );
    assert!(
        s.export.iter().any(|(r, _)| r == IMAGE_REF),
        "no image ref in the export repo: {s:?}"
    );
    s
}

/// `build` must fail with an `error:` whose text contains every needle.
fn build_fails(p: &Project, needles: &[&str]) -> Run {
    let run = p.run(&["build"]).fails();
    assert!(
        run.stderr.starts_with("error: "),
        "stderr does not start with `error: `:\n{}",
        run.stderr
    );
    for n in needles {
        assert!(
            run.stderr.contains(n),
            "stderr does not mention {n:?}:\n{}",
            run.stderr
        );
    }
    run
}

fn fsck_if_exists(repo: &Path) {
    if repo.join("config").exists() {
        fsck(repo);
    }
}

/// Both repositories have the refs they had in `before` and pass `ostree fsck`.
fn assert_untouched(p: &Project, before: &State) {
    assert_eq!(
        &state(p),
        before,
        "a failed or interrupted build changed refs"
    );
    fsck_if_exists(&p.build_repo());
    fsck_if_exists(&p.export_repo());
}

/// The common scenario: build the good project, break it with `break_it`, then `build` must
/// fail mentioning every needle and leave both repositories as they were.
fn breaking_fails(p: &Project, break_it: impl FnOnce(&Project), needles: &[&str]) -> Run {
    let before = build_ok(p);
    break_it(p);
    let run = build_fails(p, needles);
    assert_untouched(p, &before);
    run
}

/// Replace the first `from` in the manifest (which must contain it) by `to`.
fn edit_manifest(p: &Project, from: &str, to: &str) {
    let text = std::fs::read_to_string(p.p("ostree-build.toml")).unwrap();
    assert!(text.contains(from), "manifest has no {from:?}:\n{text}");
    p.write_manifest(&text.replacen(from, to, 1));
}

/// `ostree-build.toml:LINE:` for the first manifest line containing `needle`.
fn manifest_line(p: &Project, needle: &str) -> String {
    let text = std::fs::read_to_string(p.p("ostree-build.toml")).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("manifest has no line with {needle:?}:\n{text}"));
    format!("ostree-build.toml:{}:", line + 1)
}

/// Deterministic junk bytes that are no known archive format.
fn junk(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The manifest.

#[test]
fn missing_manifest_is_reported() {
    let p = Project::new("");
    std::fs::remove_file(p.p("ostree-build.toml")).unwrap();
    build_fails(&p, &["could not find", "ostree-build.toml"]);
    assert!(
        !p.p("build").exists(),
        "a failed build without a manifest created build/"
    );
}

/// Every `ostree-build COMMAND` the help suggests must exist.
#[test]
fn missing_manifest_help_suggests_a_real_command() {
    let p = Project::new("");
    std::fs::remove_file(p.p("ostree-build.toml")).unwrap();
    let run = build_fails(&p, &["help:"]);
    for suggestion in run.stderr.split("`ostree-build ").skip(1) {
        let command = suggestion.split(['`', ' ']).next().unwrap_or("");
        let help = p.run(&[command, "--help"]);
        assert!(
            help.status.success(),
            "the help suggests `ostree-build {command}`, which does not exist:\n{}\n{}",
            run.stderr,
            help.stderr
        );
    }
}

#[test]
fn malformed_toml_names_the_line() {
    let p = dir_project();
    let run = breaking_fails(
        &p,
        |p| edit_manifest(p, "[image.standard]", "[image.standard"),
        &[],
    );
    assert_points_at(&run, &p, "[image.standard");
}

#[test]
fn unknown_image_key_names_the_line_and_suggests_the_key() {
    let p = dir_project();
    let run = breaking_fails(
        &p,
        |p| edit_manifest(p, "components = ", "compnents = "),
        &["unknown key `compnents`", "did you mean `components`?"],
    );
    assert_points_at(&run, &p, "compnents");
}

#[test]
fn unknown_component_key_names_the_component_and_suggests_the_key() {
    let p = dir_project();
    let run = breaking_fails(
        &p,
        |p| edit_manifest(p, "path = \"rootfs\"", "pth = \"rootfs\""),
        &[
            "component 'base'",
            "unknown key `pth`",
            "did you mean `path`?",
        ],
    );
    assert_points_at(&run, &p, "pth = ");
}

/// The error must point at the value and name the key, as the manifest module promises
/// ("every error names the file, line, column and key").
fn assert_names_key(run: &Run, spellings: &[&str]) {
    assert!(
        spellings.iter().any(|s| run.stderr.contains(s)),
        "stderr does not name the key (any of {spellings:?}):\n{}",
        run.stderr
    );
}

/// The error points at the manifest line holding `text`.
fn assert_points_at(run: &Run, p: &Project, text: &str) {
    let at = manifest_line(p, text);
    assert!(
        run.stderr.contains(&at),
        "stderr does not point at {at}:\n{}",
        run.stderr
    );
}

/// Replace `good` by `bad` in a good project's manifest: the build fails with a type
/// error located at the bad line that names the key.
fn assert_type_error_names_key(good: &str, bad: &str, spellings: &[&str]) {
    let p = dir_project();
    let run = breaking_fails(&p, |p| edit_manifest(p, good, bad), &["expected a string"]);
    assert_points_at(&run, &p, bad);
    assert_names_key(&run, spellings);
}

#[test]
fn wrong_type_for_image_version_names_the_key() {
    assert_type_error_names_key(
        "version = \"1.0\"",
        "version = 3",
        &["`version`", "image.standard.version", "'version'"],
    );
}

#[test]
fn wrong_type_for_os_name_names_the_key() {
    assert_type_error_names_key(
        "name = \"exampleos\"",
        "name = 3",
        &["`name`", "os.name", "'name'"],
    );
}

#[test]
fn wrong_type_for_component_options_names_the_key() {
    let p = dir_project();
    let before = build_ok(&p);

    edit_manifest(&p, "path = \"rootfs\"", "path = 3");
    let run = build_fails(&p, &["component 'base'", "`path` must be a path"]);
    assert_points_at(&run, &p, "path = 3");
    assert_untouched(&p, &before);

    p.write_manifest(&DIR_MANIFEST.replacen("backend = \"dir\"", "backend = 3", 1));
    let run = build_fails(&p, &["component.base.backend must be a string"]);
    assert_points_at(&run, &p, "backend = 3");
    assert_untouched(&p, &before);
}

// ---------------------------------------------------------------------------------------
// Component inputs.

#[test]
fn component_naming_a_missing_directory() {
    let p = dir_project();
    let run = breaking_fails(
        &p,
        |p| edit_manifest(p, "path = \"rootfs\"", "path = \"no-such-dir\""),
        &["component 'base'", "no-such-dir", "does not exist"],
    );
    assert_points_at(&run, &p, "no-such-dir");
}

#[test]
fn component_naming_a_missing_tarball() {
    let p = tarball_project();
    breaking_fails(
        &p,
        |p| std::fs::remove_file(p.p("app.tar.gz")).unwrap(),
        &["component 'app'", "app.tar.gz", "does not exist"],
    );
}

#[test]
fn unknown_backend_suggests_the_right_one() {
    let p = tarball_project();
    let run = breaking_fails(
        &p,
        |p| edit_manifest(p, "backend = \"tarball\"", "backend = \"tarbal\""),
        &["component 'app'", "no such backend: 'tarbal'", "'tarball'"],
    );
    assert_points_at(&run, &p, "\"tarbal\"");
}

// ---------------------------------------------------------------------------------------
// Broken and hostile tarballs.

/// The copy into the export repository checksums every object: one that no longer matches
/// its name in the build repository (disk corruption, a tampered cache) fails the publish,
/// and clients' repository gets neither the object nor a ref.
#[test]
fn corrupt_object_in_the_build_repository_is_not_published() {
    let p = dir_project();
    let before = build_ok(&p);
    std::fs::remove_dir_all(p.export_repo()).unwrap();
    let listing = ostree(&p.build_repo(), &["ls", "-C", IMAGE_REF, "/usr/bin/hello"]);
    let checksum = listing.split_whitespace().nth(4).unwrap().to_string();
    let object = p.build_repo().join(format!(
        "objects/{}/{}.file",
        &checksum[..2],
        &checksum[2..]
    ));
    std::fs::write(&object, "HELLO\n").unwrap();
    let run = build_fails(
        &p,
        &["cannot copy commit", "Corrupted file object", &checksum],
    );
    run.one_line_error();
    assert_eq!(refs(&p.build_repo()), before.build);
    assert!(refs(&p.export_repo()).is_empty());
    fsck(&p.export_repo());
}

#[test]
fn corrupt_tarball_is_refused() {
    let p = tarball_project();
    breaking_fails(
        &p,
        |p| std::fs::write(p.p("app.tar.gz"), junk(4096)).unwrap(),
        &["component 'app'", "app.tar.gz", "corrupt"],
    );
}

#[test]
fn truncated_tarball_is_refused() {
    let p = tarball_project();
    let run = breaking_fails(
        &p,
        |p| {
            // Incompressible content, so that half the file ends inside the tar stream.
            let body = format!(
                "import os\n{GOOD_TAR}for i in range(8):\n    reg('usr/share/blob%d' % i, os.urandom(1 << 16))\n"
            );
            python_tar(&p.p("app.tar.gz"), &body);
            let whole = std::fs::read(p.p("app.tar.gz")).unwrap();
            std::fs::write(p.p("app.tar.gz"), &whole[..whole.len() / 2]).unwrap();
        },
        &["component 'app'", "app.tar.gz"],
    );
    assert!(
        run.stderr.to_lowercase().contains("truncated"),
        "stderr does not say truncated:\n{}",
        run.stderr
    );
}

#[test]
fn tarball_with_device_node_is_refused() {
    let p = tarball_project();
    breaking_fails(
        &p,
        |p| {
            python_tar(
                &p.p("app.tar.gz"),
                &format!("{GOOD_TAR}dir('dev')\ndev('dev/null')\n"),
            )
        },
        &["component 'app'", "app.tar.gz", "'dev/null'", "device node"],
    );
}

#[test]
fn tarball_with_dotdot_entry_is_refused() {
    let p = tarball_project();
    let before = build_ok(&p);
    for entry in ["../evil", "usr/../../evil"] {
        python_tar(
            &p.p("app.tar.gz"),
            &format!("{GOOD_TAR}reg('{entry}', b'evil\\n')\n"),
        );
        build_fails(&p, &["component 'app'", "app.tar.gz", entry, "'..'"]);
        assert_untouched(&p, &before);
    }
}

#[test]
fn tarball_with_symlink_escaping_the_root_is_refused() {
    let p = tarball_project();
    breaking_fails(
        &p,
        |p| {
            python_tar(
                &p.p("app.tar.gz"),
                &format!("{GOOD_TAR}sym('usr/link', '../../../etc/shadow')\n"),
            )
        },
        &[
            "component 'app'",
            "app.tar.gz",
            "/usr/link",
            "../../../etc/shadow",
            "outside the root",
        ],
    );
}

/// An absolute member name is not an escape: libostree strips the leading `/`, so the file
/// lands at that path inside the tree. The build succeeds.
#[test]
fn tarball_with_absolute_entry_lands_inside_the_tree() {
    let p = tarball_project();
    build_ok(&p);
    python_tar(
        &p.p("app.tar.gz"),
        &format!(
            "{GOOD_TAR}dir('/etc')\nreg('/etc/passwd', b'root:x:0:0:root:/root:/bin/sh\\n')\n"
        ),
    );
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(p.p("app.tar.gz"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout)
            .lines()
            .any(|l| l == "/etc/passwd"),
        "the fixture has no absolute member"
    );
    p.run(&["build"]).ok();
    fsck(&p.build_repo());
    fsck(&p.export_repo());
    let passwd = "root:x:0:0:root:/root:/bin/sh\n";
    assert_eq!(cat(&p.build_repo(), APP_REF, "/etc/passwd"), passwd);
    assert_eq!(cat(&p.export_repo(), IMAGE_REF, "/etc/passwd"), passwd);
    assert_eq!(cat(&p.export_repo(), IMAGE_REF, "/usr/bin/app"), "app\n");
}

// ---------------------------------------------------------------------------------------
// Conflicts between components.

#[test]
fn conflicting_components_fail_then_last_wins() {
    let p = dir_project();
    let run = breaking_fails(
        &p,
        |p| {
            p.file("rootfs/usr/bin/tool", "tool from base\n", 0o755);
            p.file("app/usr/bin/tool", "tool from app\n", 0o755);
        },
        &[
            "/usr/bin/tool",
            "'base'",
            "'app'",
            "conflicts = \"last-wins\"",
        ],
    );
    assert_points_at(&run, &p, "components = ");

    edit_manifest(
        &p,
        "version = \"1.0\"",
        "version = \"1.0\"\nconflicts = \"last-wins\"",
    );
    p.run(&["build"]).ok();
    fsck(&p.build_repo());
    fsck(&p.export_repo());
    assert_eq!(
        cat(&p.build_repo(), IMAGE_REF, "/usr/bin/tool"),
        "tool from app\n"
    );
    assert_eq!(
        cat(&p.export_repo(), IMAGE_REF, "/usr/bin/tool"),
        "tool from app\n"
    );
    assert_eq!(
        cat(&p.build_repo(), BASE_REF, "/usr/bin/tool"),
        "tool from base\n"
    );
}

// ---------------------------------------------------------------------------------------
// Triggers.

#[test]
fn failing_trigger_is_named_and_changes_nothing() {
    let p = trigger_project();
    breaking_fails(
        &p,
        |p| {
            edit_manifest(
                p,
                GOOD_TRIGGER,
                r#"triggers = [{ name = "fail", run = "exit 3" }]"#,
            )
        },
        &[
            "image 'standard'",
            "trigger 'fail' failed",
            "exit status: 3",
            "exit 3",
        ],
    );
}

/// A trigger writing into a file in place (here `>>`) gets its own copy of it
/// (rofiles-fuse --copyup): the image has the change, the object the worktree hardlinked,
/// the component's commit and the source tree do not.
#[test]
fn trigger_writing_a_hardlinked_file_in_place_changes_only_the_image() {
    let p = trigger_project();
    build_ok(&p);
    edit_manifest(
        &p,
        GOOD_TRIGGER,
        r#"triggers = [{ name = "scribble", run = "echo more >> \"$OSTREE_BUILD_ROOT/usr/bin/hello\"" }]"#,
    );
    p.run(&["build"]).ok();
    fsck(&p.build_repo());
    fsck(&p.export_repo());
    assert_eq!(cat(&p.build_repo(), BASE_REF, "/usr/bin/hello"), "hello\n");
    assert_eq!(
        cat(&p.build_repo(), IMAGE_REF, "/usr/bin/hello"),
        "hello\nmore\n"
    );
    assert_eq!(
        cat(&p.export_repo(), IMAGE_REF, "/usr/bin/hello"),
        "hello\nmore\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.p("rootfs/usr/bin/hello")).unwrap(),
        "hello\n"
    );
}

// ---------------------------------------------------------------------------------------
// Doing nothing, and saying what would be done.

#[test]
fn second_build_is_a_noop_and_dry_run_names_the_changed_component() {
    let p = dir_project();
    let before = build_ok(&p);

    let again = p.run(&["build"]).ok();
    assert!(
        again.stdout.contains("nothing to do"),
        "second build was not a no-op:\n{}",
        again.stdout
    );
    assert_untouched(&p, &before);

    p.file("app/usr/bin/app", "app, version 2\n", 0o755);
    let dry = p.run(&["build", "--dry-run"]).ok();
    assert!(
        dry.stdout.contains("build component app: input changed"),
        "dry run does not say app is rebuilt because its input changed:\n{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("fresh component base"),
        "dry run does not say base is fresh:\n{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("image standard"),
        "dry run does not mention the image:\n{}",
        dry.stdout
    );
    assert_untouched(&p, &before);
}

// ---------------------------------------------------------------------------------------
// Interrupted builds.

const BIG_COMPONENTS: usize = 20;

fn big_names() -> Vec<String> {
    (0..BIG_COMPONENTS).map(|i| format!("c{i:02}")).collect()
}

/// 20 dir components, each with 200 small files and one 16 MiB file (the same in every
/// component, so it is one object), so that the component phase alone takes seconds.
fn big_project(triggers: &str) -> Project {
    let names = big_names();
    let components: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), n.as_str())).collect();
    let p = Project::new(&dir_components_manifest(&components, triggers));
    let big = vec![0u8; 16 << 20];
    for n in &names {
        for f in 0..200 {
            p.file(
                &format!("{n}/usr/share/{n}/d{}/f{f}", f % 10),
                &format!("{n} file {f}\n").repeat(20),
                0o644,
            );
        }
        std::fs::write(p.p(&format!("{n}/usr/share/{n}/big")), &big).unwrap();
    }
    p
}

/// Give every component of the big project new content. Its 16 MB file is touched too:
/// a rebuild re-reads only files whose stat changed (the stat cache), and these tests need
/// component builds that take a while.
fn change_every_component(p: &Project) {
    for n in big_names() {
        p.file(
            &format!("{n}/usr/share/{n}/d0/f0"),
            &format!("{n} changed\n"),
            0o644,
        );
        let big = std::fs::File::options()
            .write(true)
            .open(p.p(&format!("{n}/usr/share/{n}/big")))
            .unwrap();
        big.set_modified(std::time::SystemTime::now()).unwrap();
    }
}

/// What an interrupted run printed before it died.
struct Interrupted {
    status: ExitStatus,
    stdout: String,
}

/// Start `ostree-build build` in its own process group, wait until it prints a line
/// containing `wait_for`, wait `delay` more, then send `signal` to the whole group (like
/// Ctrl-C in a terminal for INT).
fn build_and_interrupt(
    p: &Project,
    wait_for: &str,
    delay: Duration,
    until: Option<&dyn Fn() -> bool>,
    signal: &str,
) -> Interrupted {
    let mut child = Command::new(binary())
        .arg("build")
        .current_dir(p.path())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ostree-build");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(wait_for) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("build never printed {wait_for:?} ({e})");
            }
        }
    }
    std::thread::sleep(delay);
    while let Some(until) = until {
        if until() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{}", child.id()))
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{signal} failed");
    let status = child.wait().unwrap();
    let stdout = reader.join().unwrap();
    Interrupted { status, stdout }
}

/// The run died of `signal` during the component phase or a trigger: before any image was
/// composed, so before any ref could move.
fn assert_interrupted_before_compose(run: &Interrupted, signal: i32) {
    assert_eq!(
        run.status.signal(),
        Some(signal),
        "the build was not killed by signal {signal} ({}); stdout:\n{}",
        run.status,
        run.stdout
    );
    assert!(
        !run.stdout.contains("Composed image"),
        "the signal came after the compose phase; the fixture is too small for this machine:\n{}",
        run.stdout
    );
}

/// After an interruption: a new build succeeds and publishes the new content, and the build
/// after it has nothing to do.
fn assert_recovers(p: &Project) {
    p.run(&["build"]).ok();
    fsck(&p.build_repo());
    fsck(&p.export_repo());
    let again = p.run(&["build"]).ok();
    assert!(
        again.stdout.contains("nothing to do"),
        "build after recovery was not a no-op:\n{}",
        again.stdout
    );
}

/// Lazily unmounts whatever a failed test left mounted below a project, so that the
/// temporary directory can be removed. Declare it after the project.
struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        for point in ostree_build_sdk::mounts::mount_points_below(&self.0) {
            let _ = Command::new("fusermount3")
                .arg("-uz")
                .arg(&point)
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn sigkill_during_component_builds_changes_no_ref() {
    let p = big_project("");
    let before = build_ok(&p);
    change_every_component(&p);
    let run = build_and_interrupt(
        &p,
        "Building component",
        Duration::from_millis(300),
        None,
        "KILL",
    );
    assert_interrupted_before_compose(&run, 9);
    assert_untouched(&p, &before);
    assert_recovers(&p);
    assert_ne!(state(&p), before);
    assert_eq!(
        cat(&p.export_repo(), IMAGE_REF, "/usr/share/c07/d0/f0"),
        "c07 changed\n"
    );
}

#[test]
fn sigint_during_first_build_leaves_no_ref_and_recovers() {
    let p = big_project("");
    let before = state(&p);
    assert_eq!(
        before,
        State {
            build: vec![],
            export: vec![]
        }
    );
    let run = build_and_interrupt(
        &p,
        "Building component",
        Duration::from_millis(300),
        None,
        "INT",
    );
    assert_interrupted_before_compose(&run, 2);
    assert_untouched(&p, &before);
    assert_recovers(&p);
    assert_eq!(
        cat(&p.export_repo(), IMAGE_REF, "/usr/share/c19/d9/f199"),
        "c19 file 199\n".repeat(20)
    );
}

#[test]
fn sigkill_during_a_trigger_changes_no_ref_and_leaves_no_mount() {
    let p = trigger_project();
    let _unmount = UnmountOnDrop(p.path().to_path_buf());
    let slow = p.p("slow");
    edit_manifest(
        &p,
        GOOD_TRIGGER,
        &format!(
            r#"triggers = [{{ name = "slow", run = "if [ -e '{}' ]; then sleep 60; fi; date > \"$OSTREE_BUILD_ROOT/usr/share/built\"" }}]"#,
            slow.display()
        ),
    );
    let before = build_ok(&p);
    p.file("app/usr/bin/app", "app, version 2\n", 0o755);
    std::fs::write(&slow, "").unwrap();
    let run = build_and_interrupt(
        &p,
        "Composing image",
        Duration::from_millis(500),
        None,
        "KILL",
    );
    assert_interrupted_before_compose(&run, 9);
    assert_untouched(&p, &before);

    std::fs::remove_file(&slow).unwrap();
    assert_recovers(&p);
    assert_eq!(
        cat(&p.export_repo(), IMAGE_REF, "/usr/bin/app"),
        "app, version 2\n"
    );
    let left = ostree_build_sdk::mounts::mount_points_below(p.path());
    assert!(
        left.is_empty(),
        "mounts left below the project after a successful build: {left:?}"
    );
}

/// The build repository's refs move (all together) before publishing starts; a kill while
/// publishing must leave the export repository, which clients pull from, as it was.
#[test]
fn sigkill_while_publishing_keeps_the_export_repo_unchanged() {
    let p = big_project("");
    let before = build_ok(&p);
    change_every_component(&p);
    // New files under the 1 MB fallback size (repo/delta_writer.rs) go into delta parts
    // compressed with xz, which makes the static delta slow enough to be interrupted: 12 MB
    // of distinct pseudo-random hex digits (xorshift), which xz cannot shortcut (~5 MB/s a
    // core) and which compress enough to be compressed at all (random bytes are stored).
    for i in 0..16u64 {
        let mut x = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i + 1);
        let noise: Vec<u8> = (0..768u32 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"0123456789abcdef"[(x >> 24) as usize & 15]
            })
            .collect();
        std::fs::write(p.p(&format!("c00/usr/share/c00/noise{i}")), noise).unwrap();
    }
    // Killed once the delta is being written (its directory below the repository's tmp/).
    let tmp = p.export_repo().join("tmp");
    let writing = || {
        walkdir_files(&tmp)
            .iter()
            .any(|f| f.to_string_lossy().contains("ostree-build-delta-"))
    };
    let run = build_and_interrupt(
        &p,
        "Publishing image",
        Duration::ZERO,
        Some(&writing),
        "KILL",
    );
    assert_eq!(
        run.status.signal(),
        Some(9),
        "the build was not killed ({}):\n{}",
        run.status,
        run.stdout
    );
    assert!(
        !run.stdout.contains("Published image"),
        "the kill came after publishing:\n{}",
        run.stdout
    );
    let after = state(&p);
    assert_eq!(
        after.export, before.export,
        "an interrupted publish moved an export ref"
    );
    assert_eq!(after.build.len(), before.build.len());
    for (old, new) in before.build.iter().zip(&after.build) {
        assert_eq!(old.0, new.0);
        assert_ne!(
            old.1, new.1,
            "build repo ref {} did not move with the others",
            old.0
        );
    }
    fsck(&p.build_repo());
    fsck(&p.export_repo());
    // No half delta: the first publish wrote none, and a delta appears whole or not at all.
    let deltas = p.export_repo().join("deltas");
    let files: Vec<_> = walkdir_files(&deltas);
    assert!(files.is_empty(), "a killed publish left {files:?}");
    assert_recovers(&p);
    assert_eq!(state(&p).export.len(), before.export.len());
    assert_eq!(
        cat(&p.export_repo(), IMAGE_REF, "/usr/share/c07/d0/f0"),
        "c07 changed\n"
    );
}

/// Every file below `dir` (none when it does not exist).
fn walkdir_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| match e.path().is_dir() {
            true => walkdir_files(&e.path()),
            false => vec![e.path()],
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// What the manifest checks before anything runs: refs, reserved metadata, repositories.

/// Replace `good` by `bad`: the build (and `--dry-run`) fails with one located error line
/// plus help, naming every `needles`, pointing at the line with `at`; nothing moves.
fn manifest_refused(good: &str, bad: &str, at: &str, needles: &[&str]) {
    let p = dir_project();
    let run = breaking_fails(&p, |p| edit_manifest(p, good, bad), needles);
    run.one_line_error();
    assert_points_at(&run, &p, at);
    let dry = p.run(&["build", "--dry-run"]).fails();
    assert_eq!(dry.stderr, run.stderr, "--dry-run says something else");
}

#[test]
fn refs_that_collide_or_libostree_refuses_are_named_where_they_are_set() {
    manifest_refused(
        "version = \"1.0\"",
        "version = \"1.0\"\nref = \"exampleos/x86_64/components/base\"",
        "ref = ",
        &["image 'standard' and component 'base' both write ref 'exampleos/x86_64/components/base'"],
    );
    manifest_refused(
        "version = \"1.0\"",
        "version = \"1.0\"\nref = \"exampleos/../x\"",
        "ref = ",
        &["image 'standard': ref 'exampleos/../x'"],
    );
    manifest_refused(
        "arch = \"x86_64\"",
        "arch = \"..\"",
        "arch = ",
        &["os.arch '..'"],
    );
    manifest_refused(
        "arch = \"x86_64\"",
        "arch = \"x86_64\"\nref-prefix = \"example os\"",
        "ref-prefix",
        &["os.ref-prefix 'example os'"],
    );
    // Two images on one ref.
    manifest_refused(
        "version = \"1.0\"",
        "version = \"1.0\"\n\n[image.other]\ncomponents = [\"base\"]\nref = \"exampleos/x86_64/standard\"",
        "ref = ",
        &["image 'other' and image 'standard' both write ref 'exampleos/x86_64/standard'"],
    );
}

#[test]
fn metadata_keys_the_tool_sets_are_reserved() {
    for key in ["version", "ostree-build.input-hash", "ostree.ref-binding"] {
        manifest_refused(
            "version = \"1.0\"",
            &format!("version = \"1.0\"\nmetadata = {{ \"{key}\" = \"x\" }}"),
            "metadata = ",
            &[&format!("metadata.{key}"), "exampleos.channel"],
        );
    }
}

#[test]
fn repositories_inside_a_source_and_empty_paths_are_refused() {
    manifest_refused(
        "path = \"rootfs\"",
        "path = \".\"",
        "path = \".\"",
        &[
            "component 'base'",
            "contains the build repository",
            "rootfs/",
        ],
    );
    manifest_refused(
        "path = \"rootfs\"",
        "path = \"rootfs/..\"",
        "path = \"rootfs/..\"",
        &["contains the build repository"],
    );
    manifest_refused(
        "path = \"rootfs\"",
        "path = \"\"",
        "path = \"\"",
        &["`path` is empty"],
    );
    manifest_refused(
        "[os]",
        "[repos]\nbuild = \"build/same\"\nexport = \"build/same\"\n\n[os]",
        "export = ",
        &["repos.build and repos.export are the same directory"],
    );
}

/// An ad-hoc run into a project's build repository waits for a build that holds the
/// project's lock, and its commit survives the build.
#[test]
fn an_ad_hoc_run_into_a_project_repository_takes_the_project_lock() {
    let p = Project::new(&format!(
        "{DIR_MANIFEST}triggers = [{{ name = \"slow\", run = \"sleep 3\" }}]\n"
    ));
    base_files(&p);
    p.file("app/usr/bin/app", "app\n", 0o755)
        .file("extra/usr/share/extra", "extra\n", 0o644);
    let mut build = std::process::Command::new(binary())
        .arg("build")
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The build holds the lock once it says it is composing (its trigger then sleeps).
    let mut out = std::io::BufReader::new(build.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("Composing image") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "the build ended before composing");
    }
    let adhoc = p
        .run(&[
            "dir",
            "--input",
            "extra",
            "--branch",
            "exampleos/x86_64/extra",
        ])
        .ok();
    assert!(build.wait().unwrap().success());
    assert!(adhoc.stdout.contains("Blocking"), "{}", adhoc.stdout);
    assert_eq!(
        cat(
            &p.build_repo(),
            "exampleos/x86_64/extra",
            "/usr/share/extra"
        ),
        "extra\n"
    );
    fsck(&p.build_repo());
}

/// Archives built to break the importer: each is refused with one line naming the entry,
/// the process is never killed by a signal, nothing moves and both repositories pass fsck.
#[test]
fn hostile_tarball_entries_are_refused_by_name() {
    let cases = [
        (
            "sym('usr/lib/x', '/etc')\nreg('usr/lib/x/passwd', b'evil')\nreg('usr/share/after', b'later')",
            "entry 'usr/lib/x/passwd' is refused: it lies below 'usr/lib/x', which is a symlink",
        ),
        (
            "reg('usr/bin/tool', b'tool')\nreg('usr/bin/tool/sub', b'below a file')",
            "entry 'usr/bin/tool/sub' is refused: it lies below 'usr/bin/tool', which is a regular file",
        ),
        (
            "hard('usr/bin/pw', '../../../../etc/passwd')",
            "entry 'usr/bin/pw' is refused: a hardlink to '../../../../etc/passwd': its path climbs out of the root with '..'",
        ),
        (
            "hard('usr/bin/later', 'usr/bin/not-yet')\nreg('usr/bin/not-yet', b'x')",
            "entry 'usr/bin/later' is refused: a hardlink to 'usr/bin/not-yet', which no earlier entry made",
        ),
        (
            "sym('usr/share/long', 'x' * 5000)",
            "/usr/share/long: symlink target of 5000 bytes (at most 4095)",
        ),
        (
            "reg('../../escape', b'x')",
            "entry '../../escape' is refused: its path climbs out of the root with '..'",
        ),
    ];
    for (entries, expected) in cases {
        let p = tarball_project();
        let run = breaking_fails(
            &p,
            |p| python_tar(&p.p("app.tar.gz"), &format!("{GOOD_TAR}{entries}\n")),
            &["component 'app'", "app.tar.gz", expected],
        );
        assert_eq!(run.status.code(), Some(1), "{entries}: {}", run.stderr);
        run.one_line_error();
    }
}
