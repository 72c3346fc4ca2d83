//! Worktrees and the object store: an in-place write through a hardlink (here bypassing
//! rofiles-fuse on purpose) is caught when the worktree is committed; replacing files is
//! fine; a worktree synced to another commit equals a fresh checkout of it.

use ostree_build_core::repo::{MetaFrom, NewCommit, Repo, RepoKind, Snapshot};
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
        .commit_touched(&tree, &c, &since, &new_commit(), MetaFrom::Base)
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
        .commit_touched(&tree, &c, &since, &new_commit(), MetaFrom::Base)
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
        .commit_touched(&tree, &cb, &since, &new_commit(), MetaFrom::Base)
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

/// As root: a tree checked out with its owners (a backend's previous build), changed in
/// place the way a package manager does (new files with owners, modes and xattrs, a file
/// replaced, one removed, a directory's mode changed), commits to the same tree as a full
/// import of the changed directory, while untouched files are not read again.
#[test]
fn an_owned_checkout_changed_in_place_commits_as_a_full_import_would() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (checkout with owners)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("usr/bin")).unwrap();
    std::fs::create_dir_all(src.join("var/mail")).unwrap();
    std::fs::write(src.join("usr/bin/keep"), "keep\n").unwrap();
    std::fs::write(src.join("usr/bin/old"), "old\n").unwrap();
    std::fs::write(src.join("usr/bin/gone"), "gone\n").unwrap();
    std::os::unix::fs::chown(src.join("var/mail"), Some(0), Some(8)).unwrap();
    let repo = Repo::open_or_create(&dir.path().join("repo"), RepoKind::Build).unwrap();
    let base = commit_dir(&repo, &src);

    let tree = dir.path().join("work/tree");
    std::fs::create_dir_all(dir.path().join("work")).unwrap();
    repo.checkout_owned(&base, &tree).unwrap();
    let md = std::fs::metadata(tree.join("var/mail")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&md), 8, "owners kept");
    let since = Snapshot::take(&tree, &dir.path().join("work")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(tree.join("usr/bin/new"), "new\n").unwrap();
    std::fs::set_permissions(tree.join("usr/bin/new"), PermissionsExt::from_mode(0o4755)).unwrap();
    std::os::unix::fs::chown(tree.join("usr/bin/new"), Some(0), Some(42)).unwrap();
    xattr::set(tree.join("usr/bin/new"), "user.test", b"cap").unwrap();
    std::fs::remove_file(tree.join("usr/bin/old")).unwrap();
    std::fs::write(tree.join("usr/bin/old"), "replaced\n").unwrap();
    std::fs::remove_file(tree.join("usr/bin/gone")).unwrap();
    std::fs::set_permissions(tree.join("var/mail"), PermissionsExt::from_mode(0o2775)).unwrap();
    std::os::unix::fs::symlink("new", tree.join("usr/bin/link")).unwrap();

    let done = repo
        .commit_touched(&tree, &base, &since, &new_commit(), MetaFrom::Disk)
        .unwrap();
    assert!(
        !done.files.contains(&"usr/bin/keep".to_string()),
        "{:?}",
        done.files
    );
    let full = commit_dir(&repo, &tree);
    assert_eq!(
        repo.commit_info(&done.commit).unwrap().tree,
        repo.commit_info(&full).unwrap().tree,
        "the changed checkout committed differently from a full import"
    );
}
