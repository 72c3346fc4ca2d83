//! `log` and `diff`: a small image built and published three times with file, mode,
//! symlink and package changes, its history and differences checked against the `ostree`
//! CLI (`log`, `diff`, `static-delta list`), signatures made with a throwaway GPG key.

use ostree_build_tests::gpg::GpgKey;
use ostree_build_tests::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const IMAGE_REF: &str = "exampleos/x86_64/standard";

/// A backend that installs nothing but records the packages its `packages` option names.
const FAKE_PACKAGES: &str = r#"#!/usr/bin/env python3
import json, os, sys
INFO = {"name": "fakepkgs", "version": "1.0.0", "description": "records fake packages",
        "protocols": [1], "capabilities": [],
        "options": [{"name": "packages", "type": "list", "required": True, "help": "name-version.arch"}]}
arg = sys.argv[1] if len(sys.argv) > 1 else ""
if arg == "ostree-build-plugin-info":
    print(json.dumps(INFO)); sys.exit(0)
request = json.load(sys.stdin)
def send(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
send({"type": "hello", "protocol": 1})
packages = request["options"]["packages"]
if arg == "ostree-build-plugin-plan":
    send({"type": "plan", "plan": {"inputs": [], "fingerprint": json.dumps(packages)}}); sys.exit(0)
root = request["root"]
os.makedirs(os.path.join(root, "usr/share/fakepkgs"), exist_ok=True)
with open(os.path.join(root, "usr/share/fakepkgs/list"), "w") as f:
    f.write("\n".join(packages) + "\n")
send({"type": "output", "output": {"kind": "tree", "root": root, "packages": packages}})
"#;

fn manifest(packages: &[&str], image_extra: &str) -> String {
    let list: Vec<String> = packages.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "[os]\nname = \"exampleos\"\narch = \"x86_64\"\n\n\
         [component.base]\nbackend = \"dir\"\npath = \"files\"\n\n\
         [component.pkgs]\nbackend = \"fakepkgs\"\npackages = [{}]\n\n\
         [image.standard]\ncomponents = [\"base\", \"pkgs\"]\nversion = \"1.0\"\n{image_extra}\n",
        list.join(", ")
    )
}

struct Fixture {
    p: Project,
    plugins: std::path::PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let p = Project::new(&manifest(&[], ""));
        let plugins = p.p("plugins");
        script(&plugins.join("ostree-build-fakepkgs"), FAKE_PACKAGES);
        Fixture { p, plugins }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.p.run_env(
            args,
            &[("OSTREE_BUILD_PLUGIN_PATH", self.plugins.as_os_str())],
        )
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run(args).ok();
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    }

    /// Three published builds: 1.0, 1.0.1 (every kind of file change, packages changed),
    /// 1.0.2 (one file added).
    fn three_builds(&self, image_extra: &str) {
        let p = &self.p;
        p.file("files/etc/a", "a\n", 0o644)
            .file("files/etc/keep", "keep\n", 0o644)
            .file("files/usr/bin/tool", "#!/bin/sh\n", 0o644)
            .symlink("files/etc/link", "a");
        p.write_manifest(&manifest(
            &["a-1.0-1.noarch", "b-1.0-1.noarch", "c-2.0-1.x86_64"],
            image_extra,
        ));
        self.run(&["build"]).ok();
        p.file("files/etc/a", "a changed\n", 0o644)
            .file("files/opt/new/f", "new\n", 0o644)
            .file("files/usr/bin/tool", "#!/bin/sh\n", 0o755);
        std::fs::remove_file(p.p("files/etc/keep")).unwrap();
        std::fs::remove_file(p.p("files/etc/link")).unwrap();
        p.symlink("files/etc/link", "keep2");
        p.write_manifest(&manifest(
            &[
                "a-1.0-1.noarch",
                "b-1.1-1.noarch",
                "d-0.1-1.noarch",
                "e-3-1.x86_64",
            ],
            image_extra,
        ));
        self.run(&["build"]).ok();
        p.file("files/etc/third", "3\n", 0o644);
        self.run(&["build"]).ok();
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// `ostree diff A B` as (letter, path) pairs.
fn ostree_diff(repo: &Path, a: &str, b: &str) -> BTreeSet<(String, String)> {
    ostree(repo, &["diff", a, b])
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(k, p)| (k.to_string(), p.trim().to_string()))
        .collect()
}

fn ostree_log_commits(repo: &Path, rev: &str) -> Vec<String> {
    ostree(repo, &["log", rev])
        .lines()
        .filter_map(|l| l.strip_prefix("commit "))
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn log_lists_the_published_history_with_sizes_packages_and_signatures() {
    let f = Fixture::new();
    f.three_builds("");
    let export = f.p.export_repo();
    let log = f.json(&["log", "standard", "--message-format", "json"]);
    let commits: Vec<String> = log
        .iter()
        .map(|e| e["commit"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(commits, ostree_log_commits(&export, IMAGE_REF));
    assert_eq!(commits.len(), 3);
    let field = |k: &str| log.iter().map(|e| e[k].clone()).collect::<Vec<_>>();
    assert_eq!(field("version"), ["1.0.2", "1.0.1", "1.0"]);
    assert_eq!(field("packages"), [4, 4, 3]);
    assert_eq!(field("repository"), ["export", "export", "export"]);
    assert_eq!(field("history_pruned"), [false, false, false]);
    for e in &log {
        assert!(e["size"].as_u64().unwrap() > 0, "{e}");
        assert!(e["date"].as_str().unwrap().ends_with('Z'), "{e}");
        assert_eq!(e["signatures"], serde_json::json!([]), "{e}");
    }
    assert!(log[0]["new_size"].as_u64().unwrap() > 0);
    assert!(log[0]["new_size"].as_u64() < log[0]["size"].as_u64());
    assert!(
        log[2]["new_size"].is_null(),
        "the first commit has no parent"
    );
    // Sizes: the commit's objects as `ostree ls -R -C` names them, on disk.
    for (i, e) in log.iter().enumerate() {
        let objects = ostree_objects(&export, &commits[i]);
        assert_eq!(e["size"], objects_bytes(&export, &objects), "{e}");
        if i + 1 < log.len() {
            let parent = ostree_objects(&export, &commits[i + 1]);
            let new: BTreeSet<String> = objects.difference(&parent).cloned().collect();
            assert_eq!(e["new_size"], objects_bytes(&export, &new), "{e}");
        }
    }
    let dates: Vec<String> = ostree(&export, &["log", IMAGE_REF])
        .lines()
        .filter_map(|l| l.strip_prefix("Date:"))
        .map(|d| d.trim().replace(" +0000", "Z").replacen(' ', "T", 1))
        .collect();
    assert_eq!(field("date"), dates);
    assert_eq!(
        log[0]["subject"],
        ostree(&export, &["log", IMAGE_REF])
            .lines()
            .find(|l| l.starts_with("    "))
            .unwrap()
            .trim()
    );
    assert_eq!(
        f.json(&["log", "standard", "-n", "2", "--message-format", "json"])
            .len(),
        2
    );
    let human = f.run(&["log", "standard", "-n", "1"]).ok().stdout;
    assert!(
        human.contains("version 1.0.2") && human.contains("4 packages"),
        "{human}"
    );
    assert!(!human.contains("version 1.0.1"), "{human}");

    // Signed with a throwaway key: unverified while the export repository has no public
    // key file, verified once it has (as publish's signing writes it).
    if !require(
        "gpg",
        Command::new("gpg").arg("--version").output().is_ok(),
        "apt-get install gnupg",
    ) {
        return;
    }
    let signer = GpgKey::new(f.p.path(), "history-test", &[], "never");
    let other_signer = signer.another("other");
    let (home, key, other) = (&signer.home, &signer.fpr, &other_signer.fpr);
    let home_arg = format!("--gpg-homedir={}", home.display());
    ostree(&export, &["gpg-sign", &home_arg, &commits[0], key]);
    ostree(&export, &["gpg-sign", &home_arg, &commits[1], other]);
    let signed = f.json(&["log", "standard", "--message-format", "json"]);
    assert_eq!(signed[0]["signatures"][0]["key"], key.as_str());
    assert_eq!(signed[0]["signatures"][0]["verified"], false);
    let keyring = export.join("exampleos.gpg");
    let exported = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--export", key])
        .output()
        .unwrap();
    std::fs::write(&keyring, exported.stdout).unwrap();
    let signed = f.json(&["log", "standard", "--message-format", "json"]);
    assert_eq!(
        signed[0]["signatures"][0]["verified"], true,
        "{}",
        signed[0]
    );
    assert_eq!(signed[1]["signatures"][0]["key"], other.as_str());
    assert_eq!(signed[1]["signatures"][0]["verified"], false);
    assert_eq!(
        signed[1]["signatures"][0]["problem"],
        "public key not available"
    );
    let human = f.run(&["log", "standard", "-n", "2"]).ok().stdout;
    assert!(
        human.contains(&format!("signed by {key}: verified")),
        "{human}"
    );
    assert!(
        human.contains(&format!("signed by {other}: NOT verified")),
        "{human}"
    );
    fsck(&export);
}

/// The object files (`XX/YYYY.kind`) a commit reaches, from `ostree ls -R -C`.
fn ostree_objects(repo: &Path, commit: &str) -> BTreeSet<String> {
    let name = |checksum: &str, kind: &str| format!("{}/{}.{kind}", &checksum[..2], &checksum[2..]);
    let mut out = BTreeSet::from([name(commit, "commit")]);
    for line in ostree(repo, &["ls", "-R", "-C", commit]).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with('d') {
            out.insert(name(fields[4], "dirtree"));
            out.insert(name(fields[5], "dirmeta"));
        } else {
            out.insert(name(fields[4], "filez"));
        }
    }
    out
}

fn objects_bytes(repo: &Path, objects: &BTreeSet<String>) -> u64 {
    objects
        .iter()
        .map(|o| {
            std::fs::metadata(repo.join("objects").join(o))
                .unwrap()
                .len()
        })
        .sum()
}

#[test]
fn diff_lists_files_packages_and_the_delta_like_ostree() {
    let f = Fixture::new();
    f.three_builds("");
    let export = f.p.export_repo();
    let commits = ostree_log_commits(&export, IMAGE_REF);
    let d = &f.json(&[
        "diff",
        "standard",
        "1.0",
        "1.0.1",
        "--message-format",
        "json",
    ])[0];
    assert_eq!(d["from"]["commit"], commits[2].as_str());
    assert_eq!(d["to"]["commit"], commits[1].as_str());
    let files = &d["files"];
    let ours: BTreeSet<(String, String)> = [("A", "added"), ("D", "removed")]
        .iter()
        .flat_map(|(k, field)| {
            strings(&files[*field])
                .into_iter()
                .map(|p| (k.to_string(), p))
        })
        .chain(
            files["modified"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| ("M".to_string(), m["path"].as_str().unwrap().to_string())),
        )
        .collect();
    assert_eq!(ours, ostree_diff(&export, &commits[2], &commits[1]));
    assert_eq!(
        strings(&files["added"]),
        ["/opt", "/opt/new", "/opt/new/f"].map(String::from).into()
    );
    assert_eq!(strings(&files["removed"]), ["/etc/keep".to_string()].into());
    let modified: Vec<(String, Value)> = files["modified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap().to_string(),
                m["changed"].clone(),
            )
        })
        .collect();
    assert_eq!(
        modified,
        [
            ("/etc/a".to_string(), serde_json::json!(["content"])),
            ("/etc/link".to_string(), serde_json::json!(["target"])),
            ("/usr/bin/tool".to_string(), serde_json::json!(["mode"])),
            // The fake backend's record of its packages.
            (
                "/usr/share/fakepkgs/list".to_string(),
                serde_json::json!(["content"])
            ),
        ]
    );
    let packages = &d["packages"];
    assert_eq!(
        strings(&packages["added"]),
        ["d-0.1-1.noarch", "e-3-1.x86_64"].map(String::from).into()
    );
    assert_eq!(
        strings(&packages["removed"]),
        ["c-2.0-1.x86_64".to_string()].into()
    );
    assert_eq!(
        packages["changed"],
        serde_json::json!([{"name": "b", "arch": "noarch", "from": "1.0-1", "to": "1.1-1"}])
    );
    // Publish made a static delta from each published commit to the next.
    let deltas = ostree(&export, &["static-delta", "list"]);
    assert!(
        deltas.contains(&format!("{}-{}", commits[2], commits[1])),
        "{deltas}"
    );
    assert_eq!(d["download"]["kind"], "static-delta");
    let bytes = d["download"]["bytes"].as_u64().unwrap();
    let show = ostree(
        &export,
        &[
            "static-delta",
            "show",
            &format!("{}-{}", commits[2], commits[1]),
        ],
    );
    let parts: u64 = show
        .lines()
        .find_map(|l| l.strip_prefix("Total Size: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("Total Size line");
    // The parts, and the superblock beside them.
    assert!(bytes > parts, "{bytes} <= {parts}\n{show}");
    assert!(delta_dir_sizes(&export.join("deltas")).contains(&bytes));
    // No delta 1.0 -> 1.0.2: the objects 1.0.2 adds.
    let skip = &f.json(&[
        "diff",
        "standard",
        &commits[2][..10],
        "--message-format",
        "json",
    ])[0];
    assert_eq!(skip["to"]["version"], "1.0.2");
    assert_eq!(skip["download"]["kind"], "objects");
    assert!(skip["download"]["bytes"].as_u64().unwrap() > 0);
    // Defaults: the head against its parent.
    let head = &f.json(&["diff", "standard", "--message-format", "json"])[0];
    assert_eq!(head["from"]["version"], "1.0.1");
    assert_eq!(
        strings(&head["files"]["added"]),
        ["/etc/third".to_string()].into()
    );
    assert_eq!(head["packages"]["changed"], serde_json::json!([]));
    let human = f.run(&["diff", "standard", "1.0", "1.0.1"]).ok().stdout;
    assert!(
        human.contains("files: 3 added, 1 removed, 4 modified"),
        "{human}"
    );
    assert!(human.contains("  M /usr/bin/tool (mode)"), "{human}");
    assert!(human.contains("  ~ b.noarch 1.0-1 -> 1.1-1"), "{human}");
    assert!(human.contains("(static delta)"), "{human}");
}

/// The total size of the files of each static delta directory under `deltas`.
fn delta_dir_sizes(deltas: &Path) -> Vec<u64> {
    let mut out = Vec::new();
    for prefix in std::fs::read_dir(deltas).unwrap() {
        for delta in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let files = std::fs::read_dir(delta.unwrap().path()).unwrap();
            out.push(files.map(|f| f.unwrap().metadata().unwrap().len()).sum());
        }
    }
    out
}

#[test]
fn diff_and_log_refuse_unknown_versions_names_and_components() {
    let f = Fixture::new();
    f.three_builds("");
    let (export, build) = (f.p.export_repo(), f.p.build_repo());
    let before = (refs(&export), refs(&build));
    let out = f.run(&["diff", "standard", "9.9"]).fails();
    let error = out.one_line_error();
    assert!(
        error.contains("'standard'") && error.contains("'9.9'"),
        "{error}"
    );
    assert!(
        out.stderr
            .contains("help: known versions, newest first: 1.0.2, 1.0.1, 1.0"),
        "{}",
        out.stderr
    );
    let out = f.run(&["diff", "nope"]).fails();
    assert!(out.one_line_error().contains("'nope'"), "{}", out.stderr);
    assert!(
        out.stderr.contains("help: images: standard"),
        "{}",
        out.stderr
    );
    let out = f.run(&["log", "nope"]).fails();
    assert!(out.one_line_error().contains("'nope'"), "{}", out.stderr);
    let out = f.run(&["log", "standrad"]).fails();
    assert!(
        out.stderr.contains("help: did you mean 'standard'?"),
        "{}",
        out.stderr
    );
    let out = f.run(&["diff", "base"]).fails();
    assert!(
        out.one_line_error().contains("'base' is a component"),
        "{}",
        out.stderr
    );
    assert_eq!((refs(&export), refs(&build)), before);
    fsck(&export);
    fsck(&build);
}

#[test]
fn log_says_when_history_was_pruned_and_shows_components_and_promotions() {
    let f = Fixture::new();
    f.three_builds("");
    let export = f.p.export_repo();
    ostree(&export, &["prune", "--refs-only", "--depth=1"]);
    let log = f.json(&["log", "standard", "--message-format", "json"]);
    let pruned: Vec<&Value> = log.iter().map(|e| &e["history_pruned"]).collect();
    assert_eq!(pruned, [&Value::Bool(false), &Value::Bool(true)]);
    assert!(log[1]["new_size"].is_null());
    let human = f.run(&["log", "standard"]).ok().stdout;
    assert!(
        human.contains("history beyond this commit pruned"),
        "{human}"
    );
    let out = f.run(&["diff", "standard", "1.0"]).fails();
    assert!(out.stderr.contains("pruned"), "{}", out.stderr);
    // A component's history is in the build repository.
    let base = f.json(&["log", "base", "--message-format", "json"]);
    assert_eq!(base[0]["repository"], "build");
    assert_eq!(base[0]["kind"], "component");
    assert_eq!(
        base[0]["commit"],
        ostree(
            &f.p.build_repo(),
            &["rev-parse", "exampleos/x86_64/components/base"]
        )
        .trim()
    );
    let pkgs = f.json(&["log", "pkgs", "--message-format", "json"]);
    assert_eq!(pkgs[0]["packages"], 4);
    // Any other ref of the export repository by its full name: a promotion, made here
    // with the ostree CLI as `promote` records it.
    let head = ostree(&export, &["rev-parse", IMAGE_REF])
        .trim()
        .to_string();
    ostree(
        &export,
        &[
            "commit",
            "-b",
            "exampleos/x86_64/stable",
            &format!("--tree=ref={head}"),
            "--add-metadata-string=version=1.0.2",
            &format!("--add-metadata-string=ostree-build.promoted-from={head}"),
            "-s",
            "promoted",
        ],
    );
    let stable = f.json(&["log", "exampleos/x86_64/stable", "--message-format", "json"]);
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0]["kind"], "ref");
    assert_eq!(stable[0]["promoted_from"], head.as_str());
    assert_eq!(stable[0]["history_pruned"], false);
    let human = f.run(&["log", "exampleos/x86_64/stable"]).ok().stdout;
    assert!(human.contains(&format!("promoted from {head}")), "{human}");
}

#[test]
fn log_of_an_unpublished_image_shows_the_build_repository() {
    let f = Fixture::new();
    f.p.file("files/etc/a", "a\n", 0o644);
    f.p.write_manifest(&manifest(&["a-1-1.noarch"], "publish = false"));
    f.run(&["build"]).ok();
    let log = f.json(&["log", "standard", "--message-format", "json"]);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["repository"], "build");
    let human = f.run(&["log", "standard"]).ok().stdout;
    assert!(
        human.contains("in the build repository (not published yet)"),
        "{human}"
    );
}

/// A build that was not published leaves a gap in the published history: the next
/// published commit's parent is only in the build repository, and log says so.
#[test]
fn log_says_when_the_missing_parent_is_still_in_the_build_repository() {
    let f = Fixture::new();
    f.p.file("files/etc/a", "a\n", 0o644);
    f.p.write_manifest(&manifest(&["a-1-1.noarch"], ""));
    f.run(&["build"]).ok();
    f.p.file("files/etc/a", "b\n", 0o644);
    f.p.write_manifest(&manifest(&["a-1-1.noarch"], "publish = false"));
    f.run(&["build"]).ok();
    let gap = ostree(&f.p.build_repo(), &["rev-parse", IMAGE_REF])
        .trim()
        .to_string();
    f.p.file("files/etc/a", "c\n", 0o644);
    f.p.write_manifest(&manifest(&["a-1-1.noarch"], ""));
    f.run(&["build"]).ok();
    let log = f.json(&["log", "standard", "--message-format", "json"]);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["parent"], gap.as_str());
    assert_eq!(log[0]["history_pruned"], true);
    assert_eq!(log[0]["parent_in_build_repo"], true);
    let human = f.run(&["log", "standard"]).ok().stdout;
    assert!(human.contains("still in the build repository"), "{human}");
}

/// Owner and xattr changes are told apart from content changes (needs root for the
/// owner), and human output cuts a long list with a count while JSON keeps it whole.
#[test]
fn diff_tells_owner_and_xattr_changes_and_cuts_long_lists() {
    if !require_root() {
        return;
    }
    let f = Fixture::new();
    f.p.file("files/etc/a", "a\n", 0o644)
        .file("files/etc/c", "c\n", 0o644);
    f.p.write_manifest(&manifest(&["a-1-1.noarch"], ""));
    f.run(&["build"]).ok();
    command(
        "chown",
        &["1000:1000", f.p.p("files/etc/c").to_str().unwrap()],
    );
    command(
        "setfattr",
        &[
            "-n",
            "user.test",
            "-v",
            "1",
            f.p.p("files/etc/a").to_str().unwrap(),
        ],
    );
    for i in 0..25 {
        f.p.file(&format!("files/many/f{i:02}"), "x\n", 0o644);
    }
    f.run(&["build"]).ok();
    let d = &f.json(&["diff", "standard", "--message-format", "json"])[0];
    assert_eq!(
        d["files"]["modified"],
        serde_json::json!([
            {"path": "/etc/a", "changed": ["xattrs"]},
            {"path": "/etc/c", "changed": ["owner"]},
        ])
    );
    assert_eq!(d["files"]["added"].as_array().unwrap().len(), 26);
    let export = f.p.export_repo();
    let theirs = ostree_diff(&export, &format!("{IMAGE_REF}^"), IMAGE_REF);
    assert_eq!(theirs.iter().filter(|(k, _)| k == "A").count(), 26);
    assert_eq!(
        theirs
            .iter()
            .filter(|(k, _)| k == "M")
            .map(|(_, p)| p.as_str())
            .collect::<Vec<_>>(),
        ["/etc/a", "/etc/c"]
    );
    let human = f.run(&["diff", "standard"]).ok().stdout;
    assert_eq!(
        human.lines().filter(|l| l.starts_with("  A ")).count(),
        21,
        "{human}"
    );
    assert!(
        human.contains("  A ... and 6 more (--message-format json lists all)"),
        "{human}"
    );
}
