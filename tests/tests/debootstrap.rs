//! The built-in `debootstrap` backend against the real Debian mirror
//! (http://deb.debian.org/debian): ad hoc and from a manifest, debootstrap and mmdebstrap,
//! the package cache kept between runs, the fingerprint that keeps a fresh component from
//! being rebuilt, and each bad input failing with one clear line and no ref moved.
//!
//! Needs root (debootstrap; the rootless mmdebstrap test creates a user with subordinate
//! ids), network, and debootstrap, mmdebstrap, uidmap and curl
//! (`bash scripts/setup.sh`). Without root, the tests that need it fail unless
//! `OSTREE_BUILD_TESTS_SKIP=root`.

use ostree_build_tests::*;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

const MIRROR: &str = "http://deb.debian.org/debian";

/// `--repo` for ad hoc runs in `p`: the backend's cache is then `<p>/.ostree-build/cache`.
fn repo(p: &Project) -> String {
    p.p("repo").display().to_string()
}

fn adhoc(p: &Project, branch: &str, extra: &[&str]) -> Run {
    let repo = repo(p);
    let mut args = vec![
        "debootstrap",
        "--branch",
        branch,
        "--repo",
        &repo,
        "--mirror",
        MIRROR,
    ];
    args.extend_from_slice(extra);
    p.run(&args)
}

/// Package downloads debootstrap reports (`I: Retrieving <pkg> <version>`), not indexes.
fn package_downloads(out: &str) -> usize {
    out.lines()
        .filter_map(|l| l.split("I: Retrieving ").nth(1))
        .filter(|what| !["InRelease", "Release", "Packages"].contains(&what.trim()))
        .count()
}

/// What a user checks in a minbase Debian 12 commit.
fn check_bookworm_tree(repo: &Path, rev: &str) {
    let dpkg = ls(repo, rev, "/usr/bin/dpkg");
    assert!(dpkg.starts_with("-00755 0 0"), "{dpkg}");
    assert!(
        cat(repo, rev, "/etc/debian_version").starts_with("12"),
        "not Debian 12"
    );
    let link = ls(repo, rev, "/var/lib/dpkg");
    assert!(link.starts_with('l'), "{link}");
    assert!(
        link.ends_with("/var/lib/dpkg -> ../../usr/lib/sysimage/dpkg"),
        "{link}"
    );
    assert!(cat(repo, rev, "/usr/lib/sysimage/dpkg/status").contains("Package: dpkg\n"));
    // Nothing from the bootstrap that must not be in an image.
    let dev = ostree(repo, &["ls", rev, "/dev"]);
    assert_eq!(dev.lines().count(), 1, "/dev is not empty:\n{dev}");
    // Package indexes are gone; apt's own empty `lock` and `partial/` may stay.
    let lists = ostree(repo, &["ls", rev, "/var/lib/apt/lists"]);
    let left: Vec<&str> = lists
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with("/lock") && !l.ends_with("/partial"))
        .collect();
    assert!(left.is_empty(), "apt lists left:\n{lists}");
    let archives = ostree(repo, &["ls", "-R", rev, "/var/cache/apt/archives"]);
    assert!(!archives.contains(".deb"), "{archives}");
    let packages = ostree(
        repo,
        &["show", "--print-metadata-key=ostree-build.packages", rev],
    );
    assert!(packages.contains("'dpkg-"), "{packages}");
    assert!(packages.contains("'base-files-12"), "{packages}");
    fsck(repo);
}

fn cache_debs(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".deb"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().unwrap().modified().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn ad_hoc_minbase_is_committed_and_a_second_run_downloads_nothing() {
    if !require_root() {
        return;
    }
    let p = Project::new("");
    std::fs::remove_file(p.p("ostree-build.toml")).unwrap();
    let branch = "t/x86_64/base";
    let first = adhoc(&p, branch, &["--suite", "bookworm", "--variant", "minbase"]).ok();
    assert!(
        first.stdout.contains("Built component t/x86_64/base"),
        "{}",
        first.stdout
    );
    let r = p.p("repo");
    check_bookworm_tree(&r, branch);
    let cache = p.p(".ostree-build/cache/debootstrap/bookworm-amd64");
    let debs = cache_debs(&cache);
    assert!(debs.len() > 50, "cache: {debs:?}");
    assert!(package_downloads(&first.stdout) > 50, "{}", first.stdout);

    let second = adhoc(&p, branch, &["--suite", "bookworm", "--variant", "minbase"]).ok();
    assert_eq!(
        package_downloads(&second.stdout),
        0,
        "the second run downloaded packages:\n{}",
        second.stdout
    );
    assert_eq!(cache_debs(&cache), debs, "the cache changed");
    check_bookworm_tree(&r, branch);
    // The new commit follows the first.
    let log = ostree(&r, &["log", branch]);
    assert_eq!(log.matches("commit ").count(), 2, "{log}");
}

/// A manifest with one bookworm minbase component `base` including `include` (TOML list
/// items).
fn minbase(include: &str) -> String {
    format!(
        r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.base]
backend = "debootstrap"
suite = "bookworm"
variant = "minbase"
mirror = "{MIRROR}"
include = [{include}]
"#
    )
}

#[test]
fn a_manifest_component_is_not_rebuilt_while_the_release_file_is_unchanged() {
    if !require_root() {
        return;
    }
    let p = Project::new(&minbase(r#""ca-certificates""#));
    let first = p.run(&["build"]).ok();
    assert!(
        first.stdout.contains("Built component base"),
        "{}",
        first.stdout
    );
    let build = p.build_repo();
    let rev = "exampleos/x86_64/components/base";
    check_bookworm_tree(&build, rev);
    assert!(ls(&build, rev, "/etc/ssl/certs/ca-certificates.crt").starts_with('-'));
    let packages = ostree(
        &build,
        &["show", "--print-metadata-key=ostree-build.packages", rev],
    );
    assert!(packages.contains("'ca-certificates-"), "{packages}");
    let before = refs(&build);

    let second = p.run(&["build"]).ok();
    assert!(
        !second.stdout.contains("Built component"),
        "rebuilt although the mirror did not change:\n{}",
        second.stdout
    );
    assert!(second.stdout.contains("nothing to do"), "{}", second.stdout);
    assert_eq!(refs(&build), before);

    // An option change rebuilds it.
    p.write_manifest(
        &std::fs::read_to_string(p.p("ostree-build.toml"))
            .unwrap()
            .replace(
                "include = [\"ca-certificates\"]",
                "include = [\"ca-certificates\", \"less\"]",
            ),
    );
    let dry = p.run(&["build", "--dry-run"]).ok();
    assert!(dry.stdout.contains("options changed"), "{}", dry.stdout);
}

/// `ostree ls -R -X -C` of a commit: every path with its type, mode, owner, xattrs and
/// checksum (a directory's contents and metadata checksums included).
fn listing(repo: &Path, rev: &str) -> String {
    ostree(repo, &["ls", "-R", "-X", "-C", rev])
}

#[test]
fn a_package_added_to_include_extends_the_previous_tree_as_a_clean_bootstrap_would() {
    if !require_root() {
        return;
    }
    let p = Project::new(&minbase(r#""less""#));
    p.run(&["build"]).ok();
    let build = p.build_repo();
    let rev = "exampleos/x86_64/components/base";
    let first = ostree(&build, &["rev-parse", rev]);

    // iputils-ping's postinst gives /usr/bin/ping a file capability (an xattr);
    // ca-certificates runs a trigger that writes /etc/ssl/certs.
    p.write_manifest(&minbase(r#""less", "iputils-ping", "ca-certificates""#));
    let extended = p.run(&["build", "--message-format", "json"]).ok();
    assert!(
        extended.stdout.contains("extending the previous build"),
        "{}",
        extended.stdout
    );
    assert!(
        !extended.stdout.contains("I: Unpacking the base system"),
        "bootstrapped again:\n{}",
        extended.stdout
    );
    assert!(
        extended.stdout.contains(r#""unit":"packages configured""#),
        "no package progress: {}",
        extended.stdout
    );
    let incremental = ostree(&build, &["rev-parse", rev]);
    assert_ne!(incremental, first);
    let parent = ostree(&build, &["rev-parse", &format!("{rev}^")]);
    assert_eq!(
        parent, first,
        "the extended build's parent is the previous one"
    );
    check_bookworm_tree(&build, rev);
    let ping = ostree(&build, &["ls", "-X", rev, "/usr/bin/ping"]);
    assert!(ping.contains("security.capability"), "{ping}");
    let extended_list = listing(&build, rev);
    let extended_packages = ostree(
        &build,
        &["show", "--print-metadata-key=ostree-build.packages", rev],
    );
    assert!(
        extended_packages.contains("'iputils-ping-"),
        "{extended_packages}"
    );

    // The same package list bootstrapped from scratch: the same files, owners, modes,
    // xattrs and contents, and the same packages.
    let clean = p.run(&["build", "--force"]).ok();
    assert!(
        clean.stdout.contains("I: Unpacking the base system"),
        "{}",
        clean.stdout
    );
    let clean_rev = ostree(&build, &["rev-parse", rev]);
    assert_ne!(clean_rev, incremental);
    assert_eq!(ostree(&build, &["diff", &incremental, &clean_rev]), "");
    assert_eq!(listing(&build, rev), extended_list);
    assert_eq!(
        ostree(
            &build,
            &["show", "--print-metadata-key=ostree-build.packages", rev],
        ),
        extended_packages
    );
    fsck(&build);
}

#[test]
fn mmdebstrap_builds_a_minbase_tree() {
    if !require_root() {
        return;
    }
    let p = Project::new("");
    std::fs::remove_file(p.p("ostree-build.toml")).unwrap();
    let out = adhoc(
        &p,
        "t/x86_64/mm",
        &["--suite", "bookworm", "--tool", "mmdebstrap"],
    )
    .ok();
    assert!(out.stdout.contains("mmdebstrap"), "{}", out.stdout);
    check_bookworm_tree(&p.p("repo"), "t/x86_64/mm");
    let debs = cache_debs(&p.p(".ostree-build/cache/debootstrap/bookworm-amd64"));
    assert!(
        debs.len() > 50,
        "mmdebstrap did not fill the cache: {debs:?}"
    );
}

/// Run a failing ad hoc build; it must fail with one error line (plus help) naming every
/// `needles`, and create no ref.
fn fails(p: &Project, args: &[&str], env: &[(&str, &OsStr)], needles: &[&str]) -> Run {
    let repo = repo(p);
    let mut all = vec!["debootstrap", "--branch", "t/x86_64/bad", "--repo", &repo];
    all.extend_from_slice(args);
    let run = p.run_env(&all, env).fails();
    let error = run.one_line_error();
    for n in needles {
        assert!(error.contains(n), "'{n}' not in: {}", run.stderr);
    }
    assert!(
        refs(&p.p("repo")).is_empty(),
        "a ref was created: {:?}",
        refs(&p.p("repo"))
    );
    run
}

#[test]
fn an_unknown_suite_is_named_with_the_mirror() {
    let p = Project::new("");
    let run = fails(
        &p,
        &["--suite", "bookwrom", "--mirror", MIRROR],
        &[],
        &["suite 'bookwrom' is unknown", MIRROR],
    );
    assert!(
        run.stderr.contains("did you mean 'bookworm'"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unknown_package_is_named_with_suite_and_mirror() {
    if !require_root() {
        return;
    }
    let p = Project::new("");
    fails(
        &p,
        &[
            "--suite",
            "bookworm",
            "--mirror",
            MIRROR,
            "--include",
            "no-such-package-xyz",
        ],
        &[],
        &["no-such-package-xyz", "'bookworm'", MIRROR],
    );
}

#[test]
fn an_unreachable_mirror_fails_fast() {
    let p = Project::new("");
    let start = std::time::Instant::now();
    fails(
        &p,
        &[
            "--suite",
            "bookworm",
            "--mirror",
            "http://127.0.0.1:9/debian",
        ],
        &[],
        &["unreachable", "http://127.0.0.1:9/debian"],
    );
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
}

#[test]
fn a_mirror_that_never_answers_times_out() {
    // Accepts connections (the kernel's backlog) and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror = format!("http://{}/debian", listener.local_addr().unwrap());
    let p = Project::new("");
    let start = std::time::Instant::now();
    fails(
        &p,
        &["--suite", "bookworm", "--mirror", &mirror, "--timeout", "2"],
        &[],
        &["unreachable", &mirror, "2s"],
    );
    let took = start.elapsed().as_secs_f64();
    assert!((1.5..10.0).contains(&took), "took {took}s");
    drop(listener);
}

#[test]
fn a_missing_tool_names_the_package_to_install() {
    // A PATH with curl but neither debootstrap nor mmdebstrap.
    let p = Project::new("");
    let bin = p.p("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let curl = ["/usr/bin/curl", "/bin/curl"]
        .iter()
        .find(|c| Path::new(c).exists())
        .expect("curl installed");
    std::os::unix::fs::symlink(curl, bin.join("curl")).unwrap();
    let check = |tool: &str| {
        let run = fails(
            &p,
            &["--suite", "bookworm", "--mirror", MIRROR, "--tool", tool],
            &[("PATH", bin.as_os_str())],
            &[&format!("{tool} is not")],
        );
        assert!(
            run.stderr.contains(&format!("apt-get install {tool}")),
            "{}",
            run.stderr
        );
    };
    check("mmdebstrap");
    // Without root, debootstrap stops at "needs root" before it looks for the tool.
    if !require_root() {
        return;
    }
    check("debootstrap");
}

#[test]
fn debootstrap_without_root_points_at_mmdebstrap() {
    if !is_root() {
        // Already not root: no need to drop privileges.
        let p = Project::new("");
        fails(
            &p,
            &["--suite", "bookworm", "--mirror", MIRROR],
            &[],
            &["debootstrap needs root", "mmdebstrap"],
        );
        return;
    }
    // A directory user nobody can write to (the ad hoc repository and scratch live there).
    let p = Project::new("");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(binary_for_anyone(&p))
        .args([
            "debootstrap",
            "--branch",
            "t/x86_64/bad",
            "--repo",
            &repo(&p),
            "--suite",
            "bookworm",
            "--mirror",
            MIRROR,
        ])
        .current_dir(p.path())
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let error = one_line_error(&stderr);
    assert!(error.contains("debootstrap needs root"), "{stderr}");
    assert!(stderr.contains("mmdebstrap"), "{stderr}");
    assert!(refs(&p.p("repo")).is_empty());
}

/// A copy of the binary inside the project, which an unprivileged user can run wherever the
/// checkout lives (CI may build under a directory only root can enter).
fn binary_for_anyone(p: &Project) -> std::path::PathBuf {
    let copy = p.p("ostree-build");
    std::fs::copy(binary(), &copy).expect("copy the binary");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// A user with subordinate ids (what mmdebstrap's unshare mode needs), created when
/// missing. Returns its name.
fn unprivileged_builder() -> &'static str {
    const USER: &str = "ostree-build-test";
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        command("useradd", &["--create-home", "--shell", "/bin/sh", USER]);
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
            std::fs::write(file, format!("{text}{USER}:300000:65536\n")).unwrap();
        }
    }
    USER
}

#[test]
fn mmdebstrap_builds_without_root() {
    // Creating the test user needs root.
    if !require_root() {
        return;
    }
    let user = unprivileged_builder();
    let p = Project::new("");
    std::fs::remove_file(p.p("ostree-build.toml")).unwrap();
    let bin = binary_for_anyone(&p);
    command("chown", &["-R", user, p.path().to_str().unwrap()]);
    let out = Command::new("runuser")
        .args(["-u", user, "--"])
        .arg(bin)
        .args([
            "debootstrap",
            "--branch",
            "t/x86_64/rootless",
            "--repo",
            &repo(&p),
            "--mirror",
            MIRROR,
            "--suite",
            "bookworm",
            "--tool",
            "mmdebstrap",
        ])
        .current_dir(p.path())
        .output()
        .expect("runuser");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Built by a user, owned as in the image: root's files, setuid bits, group shadow.
    let repo = p.p("repo");
    check_bookworm_tree(&repo, "t/x86_64/rootless");
    assert!(ls(&repo, "t/x86_64/rootless", "/usr/bin/su").starts_with("-04755 0 0"));
    assert!(ls(&repo, "t/x86_64/rootless", "/etc/shadow").starts_with("-00640 0 42"));
    let owner = std::fs::metadata(repo.join("config")).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid()
    });
    assert_ne!(
        owner.unwrap(),
        0,
        "the repository was not written by the user"
    );
}
