//! The check after triggers proves the object store was not written through a hardlink:
//! here the write bypasses rofiles-fuse on purpose, and the check must catch it.

use ostree_build_core::repo::{DevInoCache, NewCommit, Repo, RepoKind};
use ostree_build_core::triggers::check_objects_untouched;
use std::io::Write;

#[test]
fn in_place_write_to_a_hardlinked_object_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src/usr/bin");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("tool"), "original\n").unwrap();
    std::fs::write(src.join("other"), "other\n").unwrap();
    let repo = Repo::open_or_create(&dir.path().join("repo"), RepoKind::Build).unwrap();
    let commit = NewCommit {
        parent: None,
        subject: "t",
        metadata: &[],
        timestamp: 0,
    };
    let (c, _) = repo.import_dir(&dir.path().join("src"), &commit).unwrap();

    let tree = dir.path().join("tree");
    let cache = DevInoCache::new();
    repo.checkout_hardlinked(&c, &tree, &cache).unwrap();
    // A well-behaved change (new inode) passes.
    std::fs::remove_file(tree.join("usr/bin/other")).unwrap();
    std::fs::write(tree.join("usr/bin/other"), "replaced\n").unwrap();
    check_objects_untouched(&repo, &tree, &c).expect("replacing a file is fine");

    // Writing through the hardlink is caught and named.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(tree.join("usr/bin/tool"))
        .unwrap();
    f.write_all(b"evil\n").unwrap();
    drop(f);
    let err = check_objects_untouched(&repo, &tree, &c)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/usr/bin/tool"), "{err}");
    assert!(err.contains("in place"), "{err}");
}

#[test]
fn symlinks_climbing_out_of_the_root_are_detected() {
    use ostree_build_core::repo::escapes_root;
    assert!(escapes_root("/usr/link", "../../etc/shadow"));
    assert!(!escapes_root("/usr/lib/link", "../../etc/shadow"));
    assert!(!escapes_root("/usr/link", "/etc/shadow"));
    assert!(!escapes_root("/usr/bin/hi", "hello"));
    assert!(escapes_root("/link", ".."));
}
