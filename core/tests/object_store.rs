//! Worktrees and the object store: an in-place write through a hardlink (here bypassing
//! rofiles-fuse on purpose) is caught when the worktree is committed; replacing files is
//! fine; a worktree synced to another commit equals a fresh checkout of it.

use ostree_build_core::repo::{NewCommit, Repo, RepoKind, Snapshot};
use std::io::Write;
use std::path::Path;

fn commit_dir(repo: &Repo, dir: &Path) -> String {
    let commit = NewCommit {
        parent: None,
        subject: "t",
        metadata: &[],
        timestamp: 0,
    };
    repo.import_dir(dir, &commit).unwrap().0
}

fn new_commit() -> NewCommit<'static> {
    NewCommit {
        parent: None,
        subject: "t",
        metadata: &[],
        timestamp: 0,
    }
}

#[test]
fn in_place_write_to_a_hardlinked_object_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src/usr/bin");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("tool"), "original\n").unwrap();
    std::fs::write(src.join("other"), "other\n").unwrap();
    let repo = Repo::open_or_create(&dir.path().join("repo"), RepoKind::Build).unwrap();
    let c = commit_dir(&repo, &dir.path().join("src"));

    let tree = dir.path().join("tree");
    repo.sync_checkout(&tree, None, &c).unwrap();
    let since = Snapshot::take(&tree, dir.path()).unwrap();
    // A well-behaved change (a new inode) is committed.
    std::fs::remove_file(tree.join("usr/bin/other")).unwrap();
    std::fs::write(tree.join("usr/bin/other"), "replaced\n").unwrap();
    let done = repo
        .commit_touched(&tree, &c, &since, &new_commit())
        .unwrap();
    assert_eq!(done.stats.content_objects_written, 1);
    assert_eq!(done.files, vec!["usr/bin/other".to_string()]);

    // Writing through the hardlink is caught and named.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(tree.join("usr/bin/tool"))
        .unwrap();
    f.write_all(b"evil\n").unwrap();
    drop(f);
    let err = repo
        .commit_touched(&tree, &c, &since, &new_commit())
        .unwrap_err()
        .to_string();
    assert!(err.contains("/usr/bin/tool"), "{err}");
    assert!(err.contains("in place"), "{err}");
}

#[test]
fn synced_worktree_equals_a_fresh_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for (root, variant) in [(&a, "a"), (&b, "b")] {
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/same")).unwrap();
        std::fs::write(root.join("usr/share/same/f"), "same\n").unwrap();
        std::fs::write(root.join("usr/bin/changed"), format!("{variant}\n")).unwrap();
        std::fs::create_dir_all(root.join(format!("only-{variant}/sub"))).unwrap();
        std::fs::write(root.join(format!("only-{variant}/sub/f")), variant).unwrap();
        std::os::unix::fs::symlink(format!("target-{variant}"), root.join("usr/bin/link")).unwrap();
    }
    // A path that is a file in one commit and a directory in the other.
    std::fs::write(a.join("usr/flip"), "file").unwrap();
    std::fs::create_dir_all(b.join("usr/flip")).unwrap();
    std::fs::write(b.join("usr/flip/inside"), "dir").unwrap();

    let repo = Repo::open_or_create(&dir.path().join("repo"), RepoKind::Build).unwrap();
    let ca = commit_dir(&repo, &a);
    let cb = commit_dir(&repo, &b);
    let tree = dir.path().join("tree");
    repo.sync_checkout(&tree, None, &ca).unwrap();
    let stats = repo.sync_checkout(&tree, Some(&ca), &cb).unwrap();
    assert!(!stats.fresh);
    assert!(!tree.join("only-a").exists());
    assert_eq!(
        std::fs::read_to_string(tree.join("only-b/sub/f")).unwrap(),
        "b"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/bin/changed")).unwrap(),
        "b\n"
    );
    assert_eq!(
        std::fs::read_link(tree.join("usr/bin/link"))
            .unwrap()
            .to_str(),
        Some("target-b")
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("usr/flip/inside")).unwrap(),
        "dir"
    );
    // Committing the synced tree with nothing touched gives b's tree exactly.
    let since = Snapshot::take(&tree, dir.path()).unwrap();
    let done = repo
        .commit_touched(&tree, &cb, &since, &new_commit())
        .unwrap();
    let c = done.commit;
    assert_eq!(
        (done.stats.content_objects_written, done.files.len()),
        (0, 0)
    );
    assert_eq!(
        repo.commit_info(&c).unwrap().tree,
        repo.commit_info(&cb).unwrap().tree
    );
    // On disk, the synced tree is what a fresh checkout of b gives.
    let fresh = dir.path().join("fresh");
    repo.sync_checkout(&fresh, None, &cb).unwrap();
    assert_eq!(listing(&tree, &tree), listing(&fresh, &fresh));
}

/// (path, kind, mode, content or link target) of every entry under `dir`, sorted.
fn listing(root: &Path, dir: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let mode = md.permissions().mode();
        if md.file_type().is_symlink() {
            out.push((
                rel,
                format!("link {}", std::fs::read_link(&p).unwrap().display()),
            ));
        } else if md.is_dir() {
            out.push((rel, format!("dir {mode:o}")));
            out.extend(listing(root, &p));
        } else {
            out.push((
                rel,
                format!("file {mode:o} {}", std::fs::read_to_string(&p).unwrap()),
            ));
        }
    }
    out
}

#[test]
fn symlinks_climbing_out_of_the_root_are_detected() {
    use ostree_build_core::links::escapes_root;
    assert!(escapes_root("/usr/link", "../../etc/shadow"));
    assert!(!escapes_root("/usr/lib/link", "../../etc/shadow"));
    assert!(!escapes_root("/usr/link", "/etc/shadow"));
    assert!(!escapes_root("/usr/bin/hi", "hello"));
    assert!(escapes_root("/link", ".."));
}
