//! Signed publishing, `publish`, `serve` and the summary pair: throwaway GPG keys, a client
//! with gpg-verify=true and gpg-verify-summary=true pulling over HTTP from `serve`, bad keys
//! and two publishes at once. Checked with the `ostree` and `gpg` CLIs.

use ostree_build_tests::gpg::{good_signature, verifying_client, GpgKey};
use ostree_build_tests::server::Server;
use ostree_build_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const REF: &str = "exampleos/x86_64/standard";

fn manifest(keys: &[&GpgKey], export: &str) -> String {
    let mut m = dir_components_manifest(&[("base", "rootfs")], "");
    m.push_str(&format!("[repos]\nexport = \"{export}\"\n\n[publish]\n"));
    if let Some(k) = keys.first() {
        let ids: Vec<String> = keys.iter().map(|k| format!("\"{}\"", k.fpr)).collect();
        m.push_str(&format!(
            "gpg-sign = [{}]\ngpg-homedir = \"{}\"\n",
            ids.join(", "),
            k.home.display()
        ));
    }
    m
}

fn project(keys: &[&GpgKey]) -> Project {
    let p = Project::new(&manifest(keys, "build/repo"));
    p.file("rootfs/etc/hostname", "exampleos\n", 0o644).file(
        "rootfs/usr/share/data",
        &"payload line\n".repeat(2000),
        0o644,
    );
    p
}

/// Change the image and build it again (which publishes it).
fn rebuild(p: &Project, n: usize) {
    p.file(
        "rootfs/usr/share/release",
        &format!("release {n}\n{}", "x".repeat(n * 100)),
        0o644,
    );
    p.run(&["build"]).ok();
}

/// A client of `server` verifying commits and summary (see [`verifying_client`]).
fn client(dir: &Path, server: &Server, p: &Project) -> PathBuf {
    verifying_client(dir, &p.export_repo(), &server.url)
}

fn pull(client: &Path) -> std::process::Output {
    Command::new("ostree")
        .arg(format!("--repo={}", client.display()))
        .args(["pull", "exampleos", REF])
        .output()
        .unwrap()
}

fn pull_ok(client: &Path) {
    let out = pull(client);
    assert!(
        out.status.success(),
        "pull failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pull_fails(client: &Path) -> String {
    let out = pull(client);
    assert!(!out.status.success(), "pull unexpectedly succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn rev(repo: &Path, r: &str) -> String {
    ostree(repo, &["rev-parse", r]).trim().to_string()
}

#[test]
fn signed_publish_is_pulled_through_a_delta_by_a_verifying_client() {
    let keys = tempfile::tempdir().unwrap();
    let key = GpgKey::new(keys.path(), "release", &[], "1y");
    let p = project(&[&key]);
    p.run(&["build"]).ok();
    let export = p.export_repo();
    assert!(export.join("exampleos.gpg").is_file());
    assert!(export.join("summary.sig").is_file());
    let server = Server::start(&p);
    let client = client(keys.path(), &server, &p);
    pull_ok(&client);
    rebuild(&p, 1);
    pull_ok(&client);
    assert_eq!(rev(&client, &format!("exampleos:{REF}")), rev(&export, REF));
    let log = server.output_with(" /deltas/");
    assert!(
        log.contains(" /deltas/"),
        "the upgrade did not go through a delta:\n{log}"
    );
    let show = good_signature(&client, REF);
    assert!(show.contains(&key.fpr[key.fpr.len() - 16..]), "{show}");

    // What `serve` refuses: paths outside the repository, missing files.
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args([
                "-s",
                "--path-as-is",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .arg(format!("{}{path}", server.url))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("config"), "200");
    assert_eq!(curl("../ostree-build.toml"), "404");
    assert_eq!(curl("%2e%2e/ostree-build.toml"), "404");
    assert_eq!(curl("no-such-file"), "404");
    let head = Command::new("curl")
        .args(["-sI", &format!("{}config", server.url)])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).into_owned();
    let size = std::fs::metadata(export.join("config")).unwrap().len();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("Content-Length: {size}")), "{head}");
    let log = server.output_with("HEAD /config 200 0");
    assert!(log.contains("HEAD /config 200 0"), "{log}");
}

#[test]
fn a_verifying_client_rejects_tampering() {
    let keys = tempfile::tempdir().unwrap();
    let key = GpgKey::new(keys.path(), "release", &[], "1y");
    let other = GpgKey::new(keys.path(), "other", &[], "1y");
    let p = project(&[&key]);
    p.run(&["build"]).ok();
    let export = p.export_repo();
    let server = Server::start(&p);
    let client = client(keys.path(), &server, &p);
    pull_ok(&client);

    // A summary without its signature.
    let sig = export.join("summary.sig");
    std::fs::rename(&sig, keys.path().join("sig")).unwrap();
    let err = pull_fails(&client);
    assert!(err.contains("summary.sig"), "{err}");
    std::fs::rename(keys.path().join("sig"), &sig).unwrap();

    // The next commit, served without deltas so that its objects are fetched one by one.
    p.file("rootfs/usr/share/new", "only in the second commit\n", 0o644);
    p.run(&["build"]).ok();
    let commit = rev(&export, REF);
    std::fs::remove_dir_all(export.join("deltas")).unwrap();
    ostree(
        &export,
        &[
            "summary",
            "-u",
            &format!("--gpg-sign={}", key.fpr),
            &format!("--gpg-homedir={}", key.home.display()),
        ],
    );

    // A tampered object.
    let file = ostree(&export, &["ls", "-C", REF, "/usr/share/new"]);
    let checksum = file
        .split_whitespace()
        .find(|w| w.len() == 64)
        .expect("checksum")
        .to_string();
    let object = export
        .join("objects")
        .join(&checksum[..2])
        .join(format!("{}.filez", &checksum[2..]));
    let good = std::fs::read(&object).unwrap();
    // A well-formed object with other content: only its checksum gives it away.
    let hostname = ostree(&export, &["ls", "-C", REF, "/etc/hostname"]);
    let other_object = hostname.split_whitespace().find(|w| w.len() == 64).unwrap();
    let other_object = export
        .join("objects")
        .join(&other_object[..2])
        .join(format!("{}.filez", &other_object[2..]));
    std::fs::copy(&other_object, &object).unwrap();
    let err = pull_fails(&client);
    assert!(err.contains("Corrupted file object"), "{err}");
    std::fs::write(&object, &good).unwrap();

    // A commit signed only with another key.
    let meta = export
        .join("objects")
        .join(&commit[..2])
        .join(format!("{}.commitmeta", &commit[2..]));
    let signed = std::fs::read(&meta).unwrap();
    std::fs::remove_file(&meta).unwrap();
    ostree(
        &export,
        &[
            "gpg-sign",
            &format!("--gpg-homedir={}", other.home.display()),
            &commit,
            &other.fpr,
        ],
    );
    let err = pull_fails(&client);
    assert!(err.contains("GPG") || err.contains("signature"), "{err}");

    // Put back as published, the same client pulls it.
    std::fs::write(&meta, signed).unwrap();
    pull_ok(&client);
    assert_eq!(rev(&client, &format!("exampleos:{REF}")), commit);
}

#[test]
fn pulls_during_republishes_all_succeed() {
    let keys = tempfile::tempdir().unwrap();
    let key = GpgKey::new(keys.path(), "release", &[], "1y");
    let p = project(&[&key]);
    p.run(&["build"]).ok();
    let server = Server::start(&p);
    let client = client(keys.path(), &server, &p);
    pull_ok(&client);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let puller = {
        let (client, done) = (client.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut pulls, mut failures) = (0, Vec::new());
            while pulls < 30 || !done.load(std::sync::atomic::Ordering::SeqCst) {
                let out = pull(&client);
                if !out.status.success() {
                    failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
                pulls += 1;
            }
            (pulls, failures)
        })
    };
    let summary = p.export_repo().join("summary");
    let mut summaries = std::collections::BTreeSet::new();
    for n in 1..=5 {
        rebuild(&p, n);
        summaries.insert(std::fs::read(&summary).unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (pulls, failures) = puller.join().unwrap();
    assert_eq!(summaries.len(), 5, "each republish changes the summary");
    assert!(pulls >= 30, "{pulls} pulls");
    eprintln!(
        "{pulls} pulls during 5 republishes, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {pulls} pulls failed: {failures:?}",
        failures.len()
    );
    pull_ok(&client);
    assert_eq!(
        rev(&client, &format!("exampleos:{REF}")),
        rev(&p.export_repo(), REF)
    );
}

#[test]
fn publish_without_build_signs_with_an_added_key_and_is_otherwise_a_no_op() {
    let keys = tempfile::tempdir().unwrap();
    let first = GpgKey::new(keys.path(), "first", &[], "1y");
    let second = first.another("second");
    let p = project(&[]);
    let err = p.run(&["publish"]).fails();
    assert!(
        err.one_line_error().contains("'standard' is not built yet"),
        "{}",
        err.stderr
    );
    assert!(err.stderr.contains("help: run ostree-build build"));
    p.run(&["build"]).ok();
    let export = p.export_repo();
    let commit = rev(&export, REF);
    assert!(!export.join("summary.sig").exists());

    // Signing turned on: the published commit gets signed, the summary too.
    p.write_manifest(&manifest(&[&first], "build/repo"));
    p.run(&["publish"]).ok();
    assert_eq!(rev(&export, REF), commit);
    // `ostree show --gpg-homedir=DIR` verifies with the keyrings (*.gpg) found in DIR: the
    // export repository holds exampleos.gpg.
    let gpg_dir = format!("--gpg-homedir={}", export.display());
    let verify = |key: &GpgKey| {
        let text = ostree(&export, &["show", &gpg_dir, &commit]);
        let id = &key.fpr[key.fpr.len() - 16..];
        text.lines()
            .skip_while(|l| !l.contains(id))
            .nth(1)
            .is_some_and(|l| l.contains("Good signature"))
    };
    assert!(verify(&first));
    let sig = std::fs::read(export.join("summary.sig")).unwrap();

    // Again: nothing changes.
    p.run(&["publish"]).ok();
    assert!(
        std::fs::read(export.join("summary.sig")).unwrap() == sig,
        "summary re-signed"
    );

    // A second key: the commit gains its signature, the summary is signed again.
    p.write_manifest(&manifest(&[&first, &second], "build/repo"));
    p.run(&["publish"]).ok();
    assert_eq!(rev(&export, REF), commit);
    assert!(verify(&first) && verify(&second));
    assert!(
        std::fs::read(export.join("summary.sig")).unwrap() != sig,
        "summary not re-signed"
    );
    let show = ostree(&export, &["show", &gpg_dir, &commit]);
    assert!(
        show.contains("Found 2 signatures"),
        "no duplicate signature: {show}"
    );
    let fsck = ostree(&export, &["fsck"]);
    assert!(fsck.contains("no errors"), "{fsck}");
}

#[test]
fn bad_keys_are_clear_errors_and_change_nothing() {
    let keys = tempfile::tempdir().unwrap();
    let good = GpgKey::new(keys.path(), "good", &[], "1y");
    let expired = GpgKey::new(
        keys.path(),
        "expired",
        &["--faked-system-time", "20200101T000000"],
        "1d",
    );
    let public = good.public_only(keys.path(), "public");
    let revoked = GpgKey::new(keys.path(), "revoked", &[], "1y");
    revoked.revoke();
    let p = project(&[&good]);
    p.run(&["build"]).ok();
    let export = p.export_repo();
    let published = rev(&export, REF);
    let summary = std::fs::read(export.join("summary")).unwrap();
    let missing = GpgKey {
        home: keys.path().join("no-such-dir"),
        fpr: good.fpr.clone(),
    };
    let unknown = GpgKey {
        home: good.home.clone(),
        fpr: "0123456789ABCDEF".into(),
    };
    let cases: [(&GpgKey, &str); 5] = [
        (&unknown, "not found in"),
        (&missing, "does not exist"),
        (&expired, "has expired"),
        (&public, "has no secret part"),
        (&revoked, "is revoked"),
    ];
    let built = rev(&p.build_repo(), REF);
    p.file(
        "rootfs/usr/share/next",
        "a commit waiting to be published\n",
        0o644,
    );
    for (i, (key, says)) in cases.iter().enumerate() {
        p.write_manifest(&manifest(&[key], "build/repo"));
        // `build` fails at its publish step, then `publish` alone, the same way.
        let run = if i == 0 {
            p.run(&["build"])
        } else {
            p.run(&["publish"])
        }
        .fails();
        let err = run.one_line_error();
        assert!(err.contains(says), "expected '{says}': {}", run.stderr);
        assert!(err.contains(&key.fpr) || *says == "does not exist", "{err}");
        assert!(err.contains(&key.home.display().to_string()), "{err}");
        assert!(run.stderr.contains("help: "), "{}", run.stderr);
        assert_eq!(rev(&export, REF), published, "the export ref moved");
        if i == 0 {
            // `build` tries the keys before building anything; then the commit is built
            // without publishing it, for `publish` to try.
            assert_eq!(rev(&p.build_repo(), REF), built, "the build ref moved");
            let unpublished = manifest(&[&good], "build/repo")
                .replace("[image.standard]", "[image.standard]\npublish = false");
            p.write_manifest(&unpublished);
            p.run(&["build"]).ok();
            assert_ne!(rev(&p.build_repo(), REF), built);
        }
        assert!(
            std::fs::read(export.join("summary")).unwrap() == summary,
            "summary changed"
        );
    }
    let fsck = ostree(&export, &["fsck"]);
    assert!(fsck.contains("no errors"), "{fsck}");
    // The same project with its good key publishes the waiting commit.
    p.write_manifest(&manifest(&[&good], "build/repo"));
    p.run(&["publish"]).ok();
    assert_ne!(rev(&export, REF), published);
}

#[test]
fn ed25519_is_refused_with_a_pointer_to_gpg() {
    let mut m = dir_components_manifest(&[("base", "rootfs")], "");
    m.push_str("[publish]\nsign-ed25519 = \"secret.key\"\n");
    let p = Project::new(&m);
    let run = p.run(&["publish"]).fails();
    assert!(run.one_line_error().contains("ed25519"), "{}", run.stderr);
    assert!(
        run.stderr.contains("help: sign with GPG instead: gpg-sign"),
        "{}",
        run.stderr
    );
}

#[test]
fn two_publishes_at_once_one_fails_clearly_the_other_succeeds() {
    let keys = tempfile::tempdir().unwrap();
    let key = GpgKey::new(keys.path(), "release", &[], "1y");
    let shared = keys.path().join("shared-repo");
    let shared = shared.to_str().unwrap();
    // Two projects publishing into one export repository (different refs).
    let a = project(&[&key]);
    let b = project(&[&key]);
    let b_manifest =
        |export: &str| manifest(&[&key], export).replace("[image.standard]", "[image.other]");
    a.write_manifest(&manifest(&[&key], shared));
    b.write_manifest(&b_manifest(shared));
    a.run(&["build"]).ok();
    b.run(&["build"]).ok();
    let refs = || -> Vec<String> {
        ["standard", "other"]
            .iter()
            .map(|i| rev(Path::new(shared), &format!("exampleos/x86_64/{i}")))
            .collect()
    };
    let spawn = |p: &Project| {
        Command::new(binary())
            .arg("publish")
            .current_dir(p.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Started together, the second normally finds the first holding the lock (a signed
    // publish holds it for over a second); on a machine so loaded that they did not
    // overlap, both succeed and the race is run again.
    let mut raced = None;
    for attempt in 1..=5 {
        // Both build something new without publishing it there...
        a.write_manifest(&manifest(&[&key], "build/repo"));
        b.write_manifest(&b_manifest("build/repo"));
        rebuild(&a, 2 * attempt);
        rebuild(&b, 2 * attempt + 1);
        a.write_manifest(&manifest(&[&key], shared));
        b.write_manifest(&b_manifest(shared));
        let before = refs();
        // ... then publish at the same time.
        let (ca, cb) = (spawn(&a), spawn(&b));
        let outs = [
            ca.wait_with_output().unwrap(),
            cb.wait_with_output().unwrap(),
        ];
        let ok: Vec<bool> = outs.iter().map(|o| o.status.success()).collect();
        assert!(ok[0] || ok[1], "both publishes failed: {outs:?}");
        if ok[0] && ok[1] {
            continue;
        }
        let loser = if ok[0] { 1 } else { 0 };
        let stderr = String::from_utf8_lossy(&outs[loser].stderr).into_owned();
        raced = Some((loser, stderr, before, refs()));
        break;
    }
    let (loser, stderr, before, after) = raced.expect("the two publishes never overlapped");
    let err = one_line_error(&stderr);
    assert!(
        err.contains(shared) && err.contains("is being published by pid"),
        "{err}"
    );
    assert_eq!(
        after[loser], before[loser],
        "the refused publish changed nothing"
    );
    assert_ne!(after[1 - loser], before[1 - loser]);
    // `build` waits for a running publish instead of failing.
    let holder = Command::new("flock")
        .arg(Path::new(shared).join(".ostree-build-publish.lock"))
        .args(["sleep", "2"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    a.file("rootfs/usr/share/release", "release 99\n", 0o644);
    let run = a.run(&["build"]).ok();
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("waiting for") && said.contains(shared),
        "{said}"
    );
    let mut holder = holder;
    let _ = holder.wait();
    assert_ne!(rev(Path::new(shared), REF), after[0]);
    let fsck = ostree(Path::new(shared), &["fsck"]);
    assert!(fsck.contains("no errors"), "{fsck}");
}

#[test]
fn a_key_added_later_reaches_clients_pulling_through_the_delta() {
    let keys = tempfile::tempdir().unwrap();
    let first = GpgKey::new(keys.path(), "first", &[], "1y");
    let second = first.another("second");
    let p = project(&[&first]);
    p.run(&["build"]).ok();
    let export = p.export_repo();
    let old = rev(&export, REF);
    rebuild(&p, 1);
    p.write_manifest(&manifest(&[&first, &second], "build/repo"));
    let run = p.run(&["publish"]).ok();
    assert!(
        run.stdout.contains("1 delta(s) regenerated"),
        "{}",
        run.stdout
    );
    // A client that trusts only the second key, holding the previous commit.
    let server = Server::start(&p);
    let client = keys.path().join("client");
    ostree(&client, &["init", "--mode=bare-user"]);
    ostree(&client, &["pull-local", export.to_str().unwrap(), &old]);
    let public = keys.path().join("second.gpg");
    let out = Command::new("gpg")
        .arg("--homedir")
        .arg(&second.home)
        .args(["--batch", "--export", &second.fpr])
        .output()
        .unwrap();
    std::fs::write(&public, out.stdout).unwrap();
    ostree(
        &client,
        &[
            "remote",
            "add",
            "--set=gpg-verify=true",
            "--set=gpg-verify-summary=true",
            &format!("--gpg-import={}", public.display()),
            "exampleos",
            &server.url,
        ],
    );
    ostree(
        &client,
        &["refs", &format!("--create=exampleos:{REF}"), &old],
    );
    pull_ok(&client);
    assert_eq!(rev(&client, &format!("exampleos:{REF}")), rev(&export, REF));
    let log = server.output_with(" /deltas/");
    assert!(log.contains(" /deltas/"), "{log}");
}
