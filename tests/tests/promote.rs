//! `ostree-build promote`: a published version becomes the next commit of a release ref in
//! the export repository, over the same tree; checked with the `ostree` CLI.

use ostree_build_tests::gpg::{good_signature, verifying_client, GpgKey};
use ostree_build_tests::*;

const IMAGE: &str = "exampleos/x86_64/standard";
const STABLE: &str = "exampleos/x86_64/stable";

/// A project published three times: versions 1.0, 1.1 and 1.2, each with its own file.
fn published_three_times() -> Project {
    let p = Project::new("");
    for v in ["1.0", "1.1", "1.2"] {
        p.write_manifest(&dir_components_manifest(
            &[("base", "rootfs")],
            &format!("version = \"{v}\""),
        ));
        p.file("rootfs/usr/share/version", &format!("{v}\n"), 0o644);
        p.run(&["build"]).ok();
    }
    p
}

fn meta(repo: &std::path::Path, rev: &str, key: &str) -> String {
    ostree(repo, &["show", rev, &format!("--print-metadata-key={key}")])
        .trim()
        .trim_matches('\'')
        .to_string()
}

/// The checksum of a commit's root directory contents, as `ostree ls -C` prints it.
fn root_tree(repo: &std::path::Path, rev: &str) -> String {
    let line = ostree(repo, &["ls", "-d", "-C", rev, "/"]);
    line.split_whitespace()
        .nth(4)
        .unwrap_or_default()
        .to_string()
}

fn commit_of_version(repo: &std::path::Path, version: &str) -> String {
    let log = ostree(repo, &["log", IMAGE]);
    let mut current = String::new();
    for line in log.lines() {
        if let Some(c) = line.strip_prefix("commit ") {
            current = c.trim().to_string();
        }
        if line.trim() == format!("Version: {version}") {
            return current;
        }
    }
    panic!("no version {version} in\n{log}");
}

#[test]
fn a_published_version_is_promoted_over_the_same_tree_with_history() {
    let p = published_three_times();
    let export = p.export_repo();
    let v11 = commit_of_version(&export, "1.1");

    let out = p
        .run(&["promote", "standard", "--to", STABLE, "--version", "1.1"])
        .ok();
    assert!(
        out.stdout.contains("Promoted standard 1.1"),
        "{}",
        out.stdout
    );
    let first = ostree(&export, &["rev-parse", STABLE]).trim().to_string();
    assert_ne!(first, v11, "a promotion is a new commit");
    assert_eq!(root_tree(&export, &first), root_tree(&export, &v11));
    assert_eq!(cat(&export, STABLE, "/usr/share/version"), "1.1\n");
    assert_eq!(meta(&export, STABLE, "version"), "1.1");
    assert_eq!(meta(&export, STABLE, "ostree-build.promoted-from"), v11);
    assert_eq!(
        meta(&export, STABLE, "ostree-build.promoted-from-ref"),
        IMAGE
    );

    // The newest by default; the release ref's history grows and a delta leads to it.
    p.run(&["promote", "standard", "--to", STABLE]).ok();
    let second = ostree(&export, &["rev-parse", STABLE]).trim().to_string();
    assert_eq!(cat(&export, STABLE, "/usr/share/version"), "1.2\n");
    assert_eq!(
        ostree(&export, &["rev-parse", &format!("{STABLE}^")]).trim(),
        first
    );
    let deltas = ostree(&export, &["static-delta", "list"]);
    assert!(deltas.contains(&format!("{first}-{second}")), "{deltas}");
    assert!(ostree(&export, &["summary", "--view"]).contains(STABLE));
    fsck(&export);

    // Again: nothing to do, the ref stays.
    let again = p.run(&["promote", "standard", "--to", STABLE]).ok();
    assert!(again.stdout.contains("already holds"), "{}", again.stdout);
    assert_eq!(ostree(&export, &["rev-parse", STABLE]).trim(), second);
    // The image's own ref never moved.
    assert_eq!(meta(&export, IMAGE, "version"), "1.2");
}

#[test]
fn no_history_starts_the_release_ref_afresh_and_json_says_what_was_done() {
    let p = published_three_times();
    let export = p.export_repo();
    p.run(&["promote", "standard", "--to", STABLE, "--version", "1.0"])
        .ok();
    let out = p
        .run(&[
            "promote",
            "standard",
            "--to",
            STABLE,
            "--no-history",
            "--message-format",
            "json",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["version"], "1.2");
    assert_eq!(v["ref"], STABLE);
    assert_eq!(v["changed"], true);
    assert!(v["parent"].is_null());
    let log = ostree(&export, &["log", STABLE]);
    assert_eq!(
        log.matches("\ncommit ").count() + log.starts_with("commit ") as usize,
        1,
        "{log}"
    );
    assert_eq!(v["commit"], ostree(&export, &["rev-parse", STABLE]).trim());
}

#[test]
fn bad_promotions_are_refused_and_change_nothing() {
    let p = published_three_times();
    let export = p.export_repo();
    p.run(&["promote", "standard", "--to", STABLE, "--version", "1.0"])
        .ok();
    let before = refs(&export);
    let cases: [(&[&str], &str); 6] = [
        (
            &["promote", "standard", "--to", STABLE, "--version", "9.9"],
            "no version or commit '9.9'",
        ),
        (
            &[
                "promote",
                "standard",
                "--to",
                "exampleos/x86_64/components/base",
            ],
            "component 'base'",
        ),
        (&["promote", "standard", "--to", IMAGE], "image 'standard'"),
        (
            &["promote", "standard", "--to", "bad ref!"],
            "not a valid ref",
        ),
        (
            &["promote", "standrad", "--to", STABLE],
            "no image 'standrad'",
        ),
        (
            &[
                "promote",
                "standard",
                "--to",
                "exampleos/x86_64/components/other",
            ],
            "components' refs",
        ),
    ];
    for (args, expected) in cases {
        let run = p.run(args).fails();
        let line = run.one_line_error();
        assert!(line.contains(expected), "{args:?}: {line}");
        assert_eq!(refs(&export), before, "{args:?} moved a ref");
    }
    let unknown = p
        .run(&["promote", "standard", "--to", STABLE, "--version", "9.9"])
        .fails();
    assert!(
        unknown.stderr.contains("1.2, 1.1, 1.0"),
        "{}",
        unknown.stderr
    );
    let typo = p.run(&["promote", "standrad", "--to", STABLE]).fails();
    assert!(
        typo.stderr.contains("did you mean 'standard'"),
        "{}",
        typo.stderr
    );
    fsck(&export);
}

#[test]
fn an_image_never_published_cannot_be_promoted() {
    let p = Project::new(&dir_components_manifest(
        &[("base", "rootfs")],
        "publish = false",
    ));
    p.file("rootfs/usr/share/version", "1\n", 0o644);
    p.run(&["build"]).ok();
    let run = p.run(&["promote", "standard", "--to", STABLE]).fails();
    assert!(
        run.one_line_error().contains("not published"),
        "{}",
        run.stderr
    );
    assert!(refs(&p.export_repo()).is_empty());
}

#[test]
fn a_signed_project_signs_its_promotions_for_verifying_clients() {
    let keys = tempfile::tempdir().unwrap();
    let key = GpgKey::new(keys.path(), "release", &[], "1y");
    let signing = format!(
        "\n[publish]\ngpg-sign = [\"{}\"]\ngpg-homedir = \"{}\"\n",
        key.fpr,
        key.home.display()
    );
    let p = Project::new("");
    for v in ["1.0", "1.1"] {
        let mut m = dir_components_manifest(&[("base", "rootfs")], &format!("version = \"{v}\""));
        m.push_str(&signing);
        p.write_manifest(&m);
        p.file("rootfs/usr/share/version", &format!("{v}\n"), 0o644);
        p.run(&["build"]).ok();
    }
    p.run(&["promote", "standard", "--to", STABLE, "--version", "1.0"])
        .ok();
    p.run(&["promote", "standard", "--to", STABLE]).ok();
    let export = p.export_repo();

    // A client that verifies commits and the summary with the published keys.
    let url = format!("file://{}", export.display());
    let client = verifying_client(keys.path(), &export, &url);
    ostree(&client, &["pull", "exampleos", STABLE]);
    let show = good_signature(&client, STABLE);
    assert!(show.contains("Version: 1.1"), "{show}");
    let summary = ostree(&client, &["remote", "summary", "exampleos"]);
    assert!(summary.contains(STABLE), "{summary}");
    assert!(summary.contains("Good signature"), "{summary}");
    fsck(&export);
}
