//! The tar import writes `bare-user` content objects itself (repo::loose): every object must
//! be the one libostree writes for the same archive, byte for byte and with the same
//! metadata (mode, mtime, `user.ostreemeta`), and an import leaves nothing in `tmp/`, a
//! refused one no object either, and a second import of the same archive writes nothing.
//! Needs the `ostree` CLI, `tar` and `attr` (`setfattr`, `getfattr`).

use ostree_build_core::repo::{NewCommit, Repo, RepoKind};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn commit() -> NewCommit<'static> {
    NewCommit {
        parent: None,
        subject: "t",
        metadata: &[],
        timestamp: 0,
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tree with what the object layout depends on: modes (setuid, group-writable,
/// world-writable), an xattr, a symlink, an empty file, the same content twice, a file over
/// the import's in-memory limit (streamed).
fn make_archive(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    let file = |path: &str, data: &[u8], mode: u32| {
        let p = root.join(path);
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    file("usr/bin/su", b"setuid", 0o4755);
    file("usr/bin/tool", b"tool", 0o775);
    file("usr/shared", b"anyone", 0o666);
    file("usr/empty", b"", 0o644);
    file("usr/copy-a", b"same", 0o644);
    file("usr/copy-b", b"same", 0o644);
    file("usr/big", &vec![7u8; 9 << 20], 0o600);
    run(Command::new("setfattr")
        .args(["-n", "user.note", "-v", "x\n\x01y"])
        .arg(root.join("usr/bin/tool")));
    std::os::unix::fs::symlink("bin/tool", root.join("usr/link")).unwrap();
    let archive = dir.join("a.tar.gz");
    run(Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=user.*",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
        ])
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&root)
        .arg("."));
    archive
}

/// Every object file of `repo`: (mode, mtime, user.ostreemeta, content) by path.
fn objects(repo: &Path) -> BTreeMap<String, (u32, i64, Vec<u8>, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for dir in std::fs::read_dir(repo.join("objects")).unwrap() {
        for entry in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".file") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let xattr = Command::new("getfattr")
                .args(["--only-values", "-n", "user.ostreemeta"])
                .arg(&path)
                .output()
                .unwrap()
                .stdout;
            out.insert(
                name,
                (
                    meta.mode(),
                    meta.mtime(),
                    xattr,
                    std::fs::read(&path).unwrap(),
                ),
            );
        }
    }
    out
}

fn leftovers(repo: &Path) -> Vec<String> {
    std::fs::read_dir(repo.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ostree-build-import"))
        .collect()
}

#[test]
fn objects_are_the_ones_libostree_writes() {
    let dir = tempfile::tempdir().unwrap();
    let archive = make_archive(dir.path());
    let ours = dir.path().join("ours");
    let repo = Repo::open_or_create(&ours, RepoKind::Build).unwrap();
    let (_, stats) = repo.import_archive(&archive, &commit()).unwrap();
    let theirs = dir.path().join("theirs");
    run(Command::new("ostree")
        .arg(format!("--repo={}", theirs.display()))
        .args(["init", "--mode=bare-user"]));
    run(Command::new("ostree")
        .arg(format!("--repo={}", theirs.display()))
        .args(["commit", "-b", "x"])
        .arg(format!("--tree=tar={}", archive.display())));
    let (a, b) = (objects(&ours), objects(&theirs));
    assert_eq!(a.len(), 7, "{:?}", a.keys());
    assert_eq!(a, b);
    // Counted once each, the duplicate content included.
    assert_eq!(stats.content_objects_written, 7);
    assert!(leftovers(&ours).is_empty(), "{:?}", leftovers(&ours));
    run(Command::new("ostree")
        .arg(format!("--repo={}", ours.display()))
        .args(["fsck"]));
    // Again: nothing is written, the objects in place keep their inodes.
    let inodes = |repo: &Path| -> Vec<u64> {
        let mut all: Vec<u64> = std::fs::read_dir(repo.join("objects"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .map(|e| e.unwrap().metadata().unwrap().ino())
            .collect();
        all.sort();
        all
    };
    let before = inodes(&ours);
    let (_, again) = repo.import_archive(&archive, &commit()).unwrap();
    assert_eq!(again.content_objects_written, 0);
    assert_eq!(inodes(&ours), before);
}

#[test]
fn a_refused_archive_leaves_no_objects_and_no_staging() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr")).unwrap();
    std::fs::write(root.join("usr/a"), b"written before the refusal").unwrap();
    std::os::unix::fs::symlink("../../../../etc", root.join("usr/escape")).unwrap();
    let archive = dir.path().join("bad.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&root)
        .args(["usr/a", "usr/escape"]));
    let path = dir.path().join("repo");
    let repo = Repo::open_or_create(&path, RepoKind::Build).unwrap();
    let err = repo.import_archive(&archive, &commit()).unwrap_err();
    assert!(format!("{err:#}").contains("usr/escape"), "{err:#}");
    assert!(objects(&path).is_empty());
    assert!(leftovers(&path).is_empty(), "{:?}", leftovers(&path));
}
