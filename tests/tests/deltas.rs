//! Static deltas and the `[publish]` delta policy: a `bare-user` client pulling over HTTP
//! from `serve` goes through the delta (its log shows `/deltas/`) with large new files as
//! fallbacks, also when the delta is written after the ref moves; `delta = "never"` (and the
//! older `deltas = false`) writes none; `auto` drops a delta that saves nothing; bad values
//! are located errors. Checked with the `ostree` CLI.

use ostree_build_tests::gpg::{good_signature, verifying_client, GpgKey};
use ostree_build_tests::server::{pull, Server};
use ostree_build_tests::*;
use std::path::{Path, PathBuf};

const REF: &str = "exampleos/x86_64/standard";

/// Deterministic bytes that no compressor shrinks.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write(p: &Project, rel: &str, data: &[u8]) {
    let path = p.p(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// A built and published project whose `[publish]` section holds `publish`.
fn project(publish: &str) -> Project {
    let mut m = dir_components_manifest(&[("base", "rootfs")], "");
    m.push_str(&format!("[publish]\n{publish}\n"));
    let p = Project::new(&m);
    p.file("rootfs/etc/hostname", "exampleos\n", 0o644);
    for i in 0..20 {
        p.file(
            &format!("rootfs/usr/share/doc/f{i}"),
            &format!("document {i}\n").repeat(300),
            0o644,
        );
    }
    p.run(&["build"]).ok();
    p
}

/// A change a delta is worth it for: compressible text, and a new 1.5 MB binary (above
/// the 1 MB fallback size, below libostree's default of 4 MB).
fn compressible_change(p: &Project) -> Run {
    for i in 0..20 {
        p.file(
            &format!("rootfs/usr/share/doc/new{i}"),
            &format!("new document {i}\n").repeat(400),
            0o644,
        );
    }
    write(p, "rootfs/usr/lib/big.bin", &noise(7, 1_500_000));
    p.run(&["build"]).ok()
}

fn deltas(p: &Project) -> Vec<String> {
    ostree(&p.export_repo(), &["static-delta", "list"])
        .lines()
        .filter(|l| l.contains('-'))
        .map(str::to_string)
        .collect()
}

/// A `bare-user` client of `server`, without signature checks.
fn client(dir: &Path, server: &Server) -> PathBuf {
    let repo = dir.join("client");
    ostree(&repo, &["init", "--mode=bare-user"]);
    ostree(
        &repo,
        &["remote", "add", "--no-gpg-verify", "exampleos", &server.url],
    );
    repo
}

/// A client holding the first commit upgrades through the delta to the second, and has
/// every file of it.
fn assert_client_upgrades_through_delta(p: &Project, change: impl Fn(&Project) -> Run) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(p);
    let client = client(tmp.path(), &server);
    pull(&client, "exampleos", REF);
    change(p);
    let export = p.export_repo();
    let published = ostree(&export, &["rev-parse", REF]).trim().to_string();
    pull(&client, "exampleos", REF);
    let log = server.output_with(" /deltas/");
    assert!(log.contains(" /deltas/"), "no delta was used:\n{log}");
    let got = ostree(&client, &["rev-parse", &format!("exampleos:{REF}")]);
    assert_eq!(got.trim(), published);
    ostree(&client, &["fsck"]);
    let big = ls(&client, &published, "/usr/lib/big.bin");
    assert!(big.contains(" 1500000 "), "{big}");
}

#[test]
fn a_client_pulls_through_a_delta_with_large_files_as_fallbacks() {
    let p = project("");
    assert_client_upgrades_through_delta(&p, |p| {
        let run = compressible_change(p);
        assert!(run.stdout.contains("static delta from"), "{}", run.stdout);
        run
    });
    let list = deltas(&p);
    assert_eq!(list.len(), 1, "{list:?}");
    let show = ostree(&p.export_repo(), &["static-delta", "show", &list[0]]);
    assert!(
        show.contains("Number of fallback entries: 1"),
        "the 1.5 MB file is not a fallback:\n{show}"
    );
}

#[test]
fn after_ref_the_delta_follows_and_clients_use_it() {
    let p = project("delta-when = \"after-ref\"");
    assert_client_upgrades_through_delta(&p, |p| {
        let run = compressible_change(p);
        assert!(
            run.stdout.contains("after exampleos/x86_64/standard moved"),
            "{}",
            run.stdout
        );
        run
    });
    assert_eq!(deltas(&p).len(), 1);
    let summary = ostree(&p.export_repo(), &["summary", "--view"]);
    assert!(summary.contains("Static Deltas"), "{summary}");
}

#[test]
fn after_ref_a_signed_commit_reaches_a_verifying_client_through_the_delta() {
    let keys = tempfile::tempdir().unwrap();
    let key = GpgKey::new(keys.path(), "release", &[], "1y");
    let p = project(&format!(
        "delta-when = \"after-ref\"\ngpg-sign = [\"{}\"]\ngpg-homedir = \"{}\"",
        key.fpr,
        key.home.display()
    ));
    let server = Server::start(&p);
    let client = verifying_client(keys.path(), &p.export_repo(), &server.url);
    pull(&client, "exampleos", REF);
    compressible_change(&p);
    pull(&client, "exampleos", REF);
    let log = server.output_with(" /deltas/");
    assert!(log.contains(" /deltas/"), "no delta was used:\n{log}");
    good_signature(&client, REF);
}

#[test]
fn never_writes_no_delta_nor_does_the_older_deltas_false() {
    for publish in ["delta = \"never\"", "deltas = false"] {
        let p = project(publish);
        compressible_change(&p);
        assert!(deltas(&p).is_empty(), "{publish}: {:?}", deltas(&p));
    }
}

/// New files only, small (no fallbacks) and incompressible: a delta saves nothing.
fn incompressible_change(p: &Project) -> Run {
    for i in 0..4 {
        write(p, &format!("rootfs/opt/blob{i}"), &noise(i, 900_000));
    }
    p.run(&["build"]).ok()
}

#[test]
fn auto_drops_a_delta_that_saves_nothing_and_always_keeps_it() {
    let p = project("");
    let run = incompressible_change(&p);
    assert!(deltas(&p).is_empty(), "{:?}", deltas(&p));
    assert!(
        run.stdout.contains("no static delta from"),
        "{}",
        run.stdout
    );

    let p = project("delta = \"always\"");
    incompressible_change(&p);
    assert_eq!(deltas(&p).len(), 1);
}

fn manifest_line(p: &Project, needle: &str) -> String {
    let text = std::fs::read_to_string(p.p("ostree-build.toml")).unwrap();
    let line = text.lines().position(|l| l.contains(needle)).unwrap();
    format!("ostree-build.toml:{}:", line + 1)
}

#[test]
fn bad_delta_settings_are_located_errors() {
    for (bad, says) in [
        ("delta = \"sometimes\"", "sometimes"),
        ("delta-when = \"later\"", "later"),
        ("delta = true", "delta"),
        (
            "deltas = false\ndelta = \"auto\"",
            "`deltas` and `delta` are both set",
        ),
    ] {
        let mut m = dir_components_manifest(&[("base", "rootfs")], "");
        m.push_str(&format!("[publish]\n{bad}\n"));
        let p = Project::new(&m);
        p.file("rootfs/etc/hostname", "x\n", 0o644);
        let run = p.run(&["build"]).fails();
        let first = bad.lines().next().unwrap();
        let at = manifest_line(&p, first);
        assert!(
            run.stderr.contains(&at),
            "{bad}: not at {at}:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains(says), "{bad}:\n{}", run.stderr);
    }
}
