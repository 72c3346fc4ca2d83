//! The dnf backend (also answering to `yum`) with the real dnf against a local RPM
//! repository built at test time from `tests/fixtures/rpm/*.spec` (rpmbuild +
//! createrepo_c; `bash scripts/setup.sh` installs them): installed files, the rpm database
//! where an OSTree system expects it, the package list in the commit metadata, weak
//! dependencies and excludes, the package cache between runs, and one-line errors that
//! leave refs alone. Checked with the `ostree` and `rpm` CLIs.

use ostree_build_tests::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BASE_REF: &str = "exampleos/x86_64/components/base";

/// The local RPM repository (exampleos-base, -lib, -extra), built once per test binary.
fn rpm_repo() -> &'static Path {
    static REPO: OnceLock<PathBuf> = OnceLock::new();
    REPO.get_or_init(|| build_rpm_repo(Path::new(env!("CARGO_TARGET_TMPDIR"))))
}

fn manifest(component: &str) -> String {
    format!("[os]\nname = \"exampleos\"\narch = \"x86_64\"\n\n{component}")
}

/// A `base` component installing exampleos-base from the local repository, inline.
fn base_component(extra: &str) -> String {
    format!(
        "[component.base]\nbackend = \"dnf\"\nrepos = [\"local=file://{}\"]\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\n{extra}",
        rpm_repo().display()
    )
}

fn packages_meta(repo: &Path, rev: &str) -> String {
    ostree(
        repo,
        &["show", "--print-metadata-key=ostree-build.packages", rev],
    )
    .trim()
    .to_string()
}

#[test]
fn manifest_build_installs_files_rpmdb_and_package_list() {
    let p = Project::new(&manifest(&base_component("gpg-check = false\n")));
    p.run(&["build"]).ok();
    let repo = p.build_repo();

    // Files with their content and modes.
    let hello = ls(&repo, BASE_REF, "/usr/bin/exampleos-hello");
    assert!(hello.starts_with("-00755 0 0"), "{hello}");
    assert_eq!(
        cat(&repo, BASE_REF, "/usr/bin/exampleos-hello"),
        "#!/bin/sh\necho hello from exampleos\n"
    );
    assert_eq!(
        cat(&repo, BASE_REF, "/etc/exampleos.conf"),
        "greeting = hello\n"
    );
    assert_eq!(
        cat(&repo, BASE_REF, "/usr/lib/exampleos/lib.txt"),
        "exampleos lib 1.0\n"
    );

    // Exactly the installed set; the weak dependency is not installed by default.
    assert_eq!(
        packages_meta(&repo, BASE_REF),
        "['exampleos-base-1.0-1.noarch', 'exampleos-lib-1.0-1.noarch']"
    );
    let all = ostree(&repo, &["ls", "-R", BASE_REF]);
    assert!(!all.contains("exampleos/extra.txt"), "{all}");

    // The rpm database where an OSTree system expects it, /var/lib/rpm a relative link.
    assert!(all.contains("/usr/lib/sysimage/rpm/rpmdb.sqlite"), "{all}");
    let link = ls(&repo, BASE_REF, "/var/lib/rpm");
    assert!(
        link.starts_with("l00777") && link.ends_with("/var/lib/rpm -> ../../usr/lib/sysimage/rpm"),
        "{link}"
    );
    // Nothing of dnf's own state, logs or the host cache path.
    for gone in [
        "/var/lib/dnf",
        "/var/log/dnf",
        "/var/cache/dnf",
        "hawkey.log",
        "/root/.rpmdb",
        "dnf-cache",
        "/etc/dnf",
        "/tmp",
    ] {
        assert!(!all.contains(gone), "{gone} in the tree:\n{all}");
    }
    fsck(&repo);

    // After a checkout, rpm reads the database at both paths.
    let co = p.p("checkout");
    ostree(&repo, &["checkout", "-U", BASE_REF, co.to_str().unwrap()]);
    for dbpath in ["/usr/lib/sysimage/rpm", "/var/lib/rpm"] {
        let root = co.to_str().unwrap();
        let listed = command(
            "rpm",
            &[
                "--root",
                root,
                "--dbpath",
                dbpath,
                "-qa",
                "--qf",
                "%{NAME}\\n",
            ],
        );
        let mut names: Vec<String> = listed.lines().map(str::to_string).collect();
        names.sort();
        assert_eq!(
            names,
            ["exampleos-base", "exampleos-lib"],
            "dbpath {dbpath}"
        );
    }
    let verify = Command::new("rpm")
        .arg("--root")
        .arg(&co)
        // OSTree does not keep mtimes.
        .args([
            "--dbpath",
            "/usr/lib/sysimage/rpm",
            "-V",
            "--nomtime",
            "exampleos-lib",
        ])
        .output()
        .expect("run rpm -V");
    assert!(
        verify.status.success(),
        "rpm -V: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn weak_deps_and_exclude() {
    let repo_line = format!("repos = [\"local=file://{}\"]", rpm_repo().display());
    let p = Project::new(&manifest(&format!(
        "[component.full]\nbackend = \"dnf\"\n{repo_line}\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\ngpg-check = false\nweak-deps = true\n\n\
         [component.trimmed]\nbackend = \"dnf\"\n{repo_line}\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\ngpg-check = false\nweak-deps = true\nexclude = [\"exampleos-extra\"]\ndocs = false\n"
    )));
    p.run(&["build"]).ok();
    let repo = p.build_repo();
    let full = "exampleos/x86_64/components/full";
    let trimmed = "exampleos/x86_64/components/trimmed";
    assert_eq!(
        packages_meta(&repo, full),
        "['exampleos-base-1.0-1.noarch', 'exampleos-extra-1.0-1.noarch', 'exampleos-lib-1.0-1.noarch']"
    );
    assert_eq!(
        cat(&repo, full, "/usr/share/exampleos/extra.txt"),
        "extra\n"
    );
    assert_eq!(
        packages_meta(&repo, trimmed),
        "['exampleos-base-1.0-1.noarch', 'exampleos-lib-1.0-1.noarch']"
    );
    assert!(!ostree(&repo, &["ls", "-R", trimmed]).contains("extra.txt"));
    fsck(&repo);
}

/// `python3 -m http.server` on a free port, logging requests to a file; killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl HttpServer {
    fn start(dir: &Path, log: PathBuf) -> HttpServer {
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3 http.server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no port in '{line}'"));
        HttpServer { child, port, log }
    }

    /// How many times an .rpm file was requested.
    fn rpm_downloads(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("GET ") && l.contains(".rpm "))
            .count()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cached_rpms(project: &Project) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![project.p(".ostree-build/cache")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rpm") {
                out.push((p.clone(), p.metadata().unwrap().modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn adhoc_dnf_and_yum_share_the_package_cache_and_rebuilds_are_noops() {
    let p = Project::new("");
    let server = HttpServer::start(rpm_repo(), p.p("http.log"));
    p.file(
        "local.repo",
        &format!(
            "[local]\nname=exampleos local\nbaseurl=http://127.0.0.1:{}/\ngpgcheck=0\n",
            server.port
        ),
        0o644,
    );
    let adhoc = |backend: &str, branch: &str| {
        p.run(&[
            backend,
            "--repo-file",
            "local.repo",
            "--releasever",
            "12",
            "--packages",
            "exampleos-base",
            "--branch",
            branch,
            "--repo",
            "R",
        ])
        .ok()
    };
    let expected = "['exampleos-base-1.0-1.noarch', 'exampleos-lib-1.0-1.noarch']";

    adhoc("dnf", "t/x86_64/base");
    assert_eq!(
        server.rpm_downloads(),
        2,
        "first build downloads both packages"
    );
    let cached = cached_rpms(&p);
    let names: Vec<String> = cached
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "exampleos-base-1.0-1.noarch.rpm",
            "exampleos-lib-1.0-1.noarch.rpm"
        ]
    );
    assert_eq!(packages_meta(&p.p("R"), "t/x86_64/base"), expected);

    // The old name: the same backend, the same cache (nothing downloaded again).
    let run = adhoc("yum", "t/x86_64/base-yum");
    assert_eq!(server.rpm_downloads(), 2, "yum build downloaded again");
    assert_eq!(cached_rpms(&p), cached, "cache changed");
    assert!(run.stdout.contains("yum:") || run.stderr.contains("yum:"));
    assert_eq!(packages_meta(&p.p("R"), "t/x86_64/base-yum"), expected);
    assert_eq!(
        cat(&p.p("R"), "t/x86_64/base-yum", "/usr/bin/exampleos-hello"),
        "#!/bin/sh\necho hello from exampleos\n"
    );
    fsck(&p.p("R"));

    // A manifest build from the same .repo file; a rebuild with nothing changed is a no-op.
    p.write_manifest(&manifest(
        "[component.base]\nbackend = \"yum\"\nrepo-file = [\"local.repo\"]\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\n",
    ));
    p.run(&["build"]).ok();
    let before = refs(&p.build_repo());
    assert_eq!(packages_meta(&p.build_repo(), BASE_REF), expected);
    // A project's cache lives beside its build repository (build/.ostree-build/cache), so
    // this build downloads once more, into the cache `yum` shares with `dnf`.
    assert_eq!(server.rpm_downloads(), 4);
    assert!(
        std::fs::read_dir(p.p("build/.ostree-build/cache/dnf/dnf-cache"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false),
        "the yum component did not use the dnf cache"
    );
    let again = p.run(&["build"]).ok();
    assert_eq!(refs(&p.build_repo()), before);
    let out = format!("{}{}", again.stdout, again.stderr);
    assert!(
        out.to_lowercase().contains("fresh"),
        "second build not fresh:\n{out}"
    );
    assert!(!out.contains("Installing"), "second build ran dnf:\n{out}");
    assert_eq!(server.rpm_downloads(), 4);
}

#[test]
fn repository_change_triggers_a_rebuild() {
    // A copy of the repository the test changes: its repomd.xml is in the fingerprint.
    let p = Project::new("");
    let local = p.p("rpms");
    std::fs::create_dir_all(&local).unwrap();
    for e in std::fs::read_dir(rpm_repo()).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), local.join(e.file_name())).unwrap();
        }
    }
    let status = Command::new("createrepo_c")
        .args(["--quiet", "rpms"])
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(status.success());
    p.write_manifest(&manifest(
        "[component.base]\nbackend = \"dnf\"\nrepos = [\"local=rpms\"]\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\ngpg-check = false\n",
    ));
    p.run(&["build"]).ok();
    let first = refs(&p.build_repo());
    p.run(&["build"]).ok();
    assert_eq!(refs(&p.build_repo()), first);
    // Drop the weak dependency from the repository: new metadata, a rebuild.
    std::fs::remove_file(local.join("exampleos-extra-1.0-1.noarch.rpm")).unwrap();
    let status = Command::new("createrepo_c")
        .args(["--quiet", "rpms"])
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(status.success());
    let dry = p.run(&["build", "--dry-run"]).ok();
    assert!(
        dry.stdout.contains("the dnf backend's fingerprint changed"),
        "{}",
        dry.stdout
    );
    let run = p.run(&["build"]).ok();
    assert_ne!(refs(&p.build_repo()), first, "{}{}", run.stdout, run.stderr);
}

#[test]
fn bad_input_fails_with_one_line_naming_it_and_keeps_refs() {
    let p = Project::new(&manifest(&base_component("gpg-check = false\n")));
    p.run(&["build"]).ok();
    let before = refs(&p.build_repo());
    assert_eq!(before.len(), 1);

    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            manifest(&format!(
                "[component.base]\nbackend = \"dnf\"\nrepos = [\"local=file://{}\"]\nreleasever = \"12\"\npackages = [\"exampleos-base\", \"no-such-package\"]\ngpg-check = false\n",
                rpm_repo().display()
            )),
            vec!["package 'no-such-package' not found in repositories local"],
        ),
        (
            manifest(
                "[component.base]\nbackend = \"dnf\"\nrepos = [\"bad=http://127.0.0.1:9/repo\"]\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\ngpg-check = false\n",
            ),
            vec!["repository 'bad'", "http://127.0.0.1:9/repo", "unreachable"],
        ),
        (
            manifest(&base_component("")),
            vec!["gpg check failed", "repository [local]"],
        ),
        (
            manifest(
                "[component.base]\nbackend = \"dnf\"\nrepo-file = [\"missing.repo\"]\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\n",
            ),
            vec!["missing.repo", "does not exist"],
        ),
        (
            manifest(
                "[component.base]\nbackend = \"dnf\"\nreleasever = \"12\"\npackages = [\"exampleos-base\"]\n",
            ),
            vec!["no repository", "repo-file", "repos"],
        ),
    ];
    for (m, wanted) in cases {
        p.write_manifest(&m);
        let t = Instant::now();
        let run = p.run(&["build"]).fails();
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "took {:?}",
            t.elapsed()
        );
        let line = run.one_line_error();
        for w in &wanted {
            assert!(
                line.contains(w),
                "'{w}' not in the error line:\n{line}\nstderr:\n{}",
                run.stderr
            );
        }
        if wanted[0] == "gpg check failed" {
            // The way out, on the help line.
            assert!(
                run.stderr
                    .lines()
                    .any(|l| l.starts_with("  help: ") && l.contains("gpg-check = false")),
                "{}",
                run.stderr
            );
        }
        assert_eq!(refs(&p.build_repo()), before, "refs changed for {wanted:?}");
    }
    fsck(&p.build_repo());
}

#[test]
fn missing_tool_is_one_line_and_other_backends_still_work() {
    let p = Project::new("");
    p.file(
        "local.repo",
        &format!(
            "[local]\nname=local\nbaseurl=file://{}\ngpgcheck=0\n",
            rpm_repo().display()
        ),
        0o644,
    )
    .file("tree/usr/share/hello", "hi\n", 0o644);
    // A PATH without dnf or yum (nor anything else).
    let empty = p.p("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let env = [("PATH", empty.as_os_str())];
    for backend in ["dnf", "yum"] {
        let run = p
            .run_env(
                &[
                    backend,
                    "--repo-file",
                    "local.repo",
                    "--releasever",
                    "12",
                    "--packages",
                    "exampleos-base",
                    "--branch",
                    "t/x86_64/base",
                    "--repo",
                    "R",
                ],
                &env,
            )
            .fails();
        let line = run.one_line_error();
        assert!(
            line.contains("neither dnf nor yum is installed")
                || line.contains("neither yum nor dnf is installed"),
            "{line}"
        );
        assert!(line.contains("apt-get install dnf"), "{line}");
    }
    assert_eq!(refs(&p.p("R")), vec![]);
    p.run_env(
        &[
            "dir",
            "--path",
            "tree",
            "--branch",
            "t/x86_64/dir",
            "--repo",
            "R",
        ],
        &env,
    )
    .ok();
    assert_eq!(cat(&p.p("R"), "t/x86_64/dir", "/usr/share/hello"), "hi\n");
}

/// `ostree ls -R -X -C` of a commit without the rpm database, whose sqlite pages differ
/// from one transaction history to another while the packages it lists are the same; so
/// directories are compared by type, mode, owner and xattrs, not by their checksums.
fn listing_but_rpmdb(repo: &Path, rev: &str) -> String {
    ostree(repo, &["ls", "-R", "-X", "-C", rev])
        .lines()
        .filter(|l| !l.contains("/usr/lib/sysimage/rpm/"))
        .map(|l| match l.starts_with('d') {
            true => l
                .split(' ')
                .filter(|w| w.len() != 64)
                .collect::<Vec<_>>()
                .join(" "),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn packages_added_extend_the_previous_tree_as_a_clean_install_would() {
    let component = |packages: &str| {
        base_component("gpg-check = false\n").replace(
            "packages = [\"exampleos-base\"]",
            &format!("packages = [{packages}]"),
        )
    };
    let p = Project::new(&manifest(&component(r#""exampleos-lib""#)));
    p.run(&["build"]).ok();
    let repo = p.build_repo();
    let first = ostree(&repo, &["rev-parse", BASE_REF]);
    // The tree is kept for the next build to change in place; without it (after `clean`)
    // the previous build is checked out instead, which this test goes through.
    let kept = p.p("build/.ostree-build/trees/base").join(first.trim());
    assert!(
        kept.join("usr/lib/exampleos/lib.txt").is_file(),
        "{}",
        kept.display()
    );
    let cleaned = p.run(&["clean"]).ok();
    assert!(
        cleaned.stdout.contains("component trees kept"),
        "{}",
        cleaned.stdout
    );
    assert!(!kept.exists());

    p.write_manifest(&manifest(&component(
        r#""exampleos-lib", "exampleos-base", "exampleos-extra""#,
    )));
    let extended = p.run(&["build"]).ok();
    assert!(
        extended
            .stdout
            .contains("extending the previous build: installing exampleos-base exampleos-extra"),
        "{}",
        extended.stdout
    );
    assert_eq!(
        ostree(&repo, &["rev-parse", &format!("{BASE_REF}^")]),
        first
    );
    let incremental = listing_but_rpmdb(&repo, BASE_REF);
    let packages = packages_meta(&repo, BASE_REF);
    assert_eq!(
        packages,
        "['exampleos-base-1.0-1.noarch', 'exampleos-extra-1.0-1.noarch', 'exampleos-lib-1.0-1.noarch']"
    );
    // rpm reads the extended database.
    let co = p.p("checkout");
    ostree(&repo, &["checkout", "-U", BASE_REF, co.to_str().unwrap()]);
    let listed = command(
        "rpm",
        &[
            "--root",
            co.to_str().unwrap(),
            "--dbpath",
            "/usr/lib/sysimage/rpm",
            "-qa",
            "--qf",
            "%{NAME}\\n",
        ],
    );
    assert_eq!(listed.lines().count(), 3, "{listed}");

    // From scratch: the same files, owners, modes, xattrs and contents, the same packages.
    let clean = p.run(&["build", "--force"]).ok();
    assert!(!clean.stdout.contains("extending"), "{}", clean.stdout);
    assert_eq!(listing_but_rpmdb(&repo, BASE_REF), incremental);
    assert_eq!(packages_meta(&repo, BASE_REF), packages);

    // A package taken out: from scratch, without it.
    p.write_manifest(&manifest(&component(
        r#""exampleos-lib", "exampleos-extra""#,
    )));
    let shrunk = p.run(&["build"]).ok();
    assert!(
        shrunk.stdout.contains("installing from scratch"),
        "{}",
        shrunk.stdout
    );
    assert_eq!(
        packages_meta(&repo, BASE_REF),
        "['exampleos-extra-1.0-1.noarch', 'exampleos-lib-1.0-1.noarch']"
    );
    assert!(!ostree(&repo, &["ls", "-R", BASE_REF]).contains("exampleos-hello"));
    fsck(&repo);

    // A component taken out of the manifest leaves no kept tree behind.
    let trees = p.p("build/.ostree-build/trees");
    assert!(trees.join("base").is_dir());
    p.write_manifest(&manifest(
        &component(r#""exampleos-lib""#).replace("component.base", "component.other"),
    ));
    p.run(&["build"]).ok();
    assert!(!trees.join("base").exists());
    assert!(trees.join("other").is_dir());
}
