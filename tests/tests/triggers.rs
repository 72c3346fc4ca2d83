//! What triggers do to the composed tree is committed faithfully, through the worktree
//! kept between builds: moved and swapped directories keep their contents, renamed files
//! keep their owner, mode and xattrs, a `touch` of a hardlinked file is not mistaken for
//! an in-place write, a rewritten setuid file stays setuid; files replaced or edited every
//! way tools do land in the image while the objects behind the hardlinks stay intact.

use ostree_build_tests::*;

const IMAGE: &str = "exampleos/x86_64/standard";

const MANIFEST: &str = r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.base]
backend = "tarball"
path = "base.tar.gz"

[component.extra]
backend = "dir"
path = "extra"

[image.standard]
components = ["base", "extra"]
triggers = [{ name = "rearrange", run = """
set -e
mkdir -p usr/lib2 && mv usr/lib/modules usr/lib2/modules
mv swap-a t && mv swap-b swap-a && mv t swap-b
mv usr/bin/ping usr/bin/ping2
touch usr/bin/tool
sed -i 's/old/new/' usr/bin/su-script
""" }]
"#;

const BASE_TAR: &str = r#"
dir('usr'); dir('usr/bin'); dir('usr/lib'); dir('usr/lib/modules'); dir('usr/lib/modules/5.0')
dir('usr/lib/modules/5.0/sub'); dir('swap-a', 0o700); dir('swap-b', 0o755)
reg('usr/lib/modules/5.0/kernel.ko', b'module\n')
reg('usr/lib/modules/5.0/sub/a', b'a\n', 0o600, 7, 8)
reg('swap-a/fa', b'fa\n'); reg('swap-b/fb', b'fb\n')
ti = tarfile.TarInfo('usr/bin/ping'); ti.size = 5; ti.mode = 0o4755; ti.uid = 0; ti.gid = 11
ti.pax_headers = {'SCHILY.xattr.security.capability': '\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'}
t.addfile(ti, io.BytesIO(b'ping\n'))
reg('usr/bin/tool', b'tool\n', 0o755)
reg('usr/bin/su-script', b'old\n', 0o4755)
"#;

fn check_image(p: &Project) {
    let export = p.export_repo();
    let all = ostree(&export, &["ls", "-R", IMAGE]);
    assert_eq!(
        cat(&export, IMAGE, "/usr/lib2/modules/5.0/kernel.ko"),
        "module\n"
    );
    assert!(
        ls(&export, IMAGE, "/usr/lib2/modules/5.0/sub/a").starts_with("-00600 7 8"),
        "{all}"
    );
    assert!(!all.contains("/usr/lib/modules"), "{all}");
    // Swapped directories: contents and directory metadata travel with them.
    assert_eq!(cat(&export, IMAGE, "/swap-a/fb"), "fb\n");
    assert_eq!(cat(&export, IMAGE, "/swap-b/fa"), "fa\n");
    assert!(ls(&export, IMAGE, "/swap-b").starts_with("d00700"), "{all}");
    assert!(ls(&export, IMAGE, "/swap-a").starts_with("d00755"), "{all}");
    // A renamed setuid file with a capability keeps both and its group.
    let ping = ostree(&export, &["ls", "-X", IMAGE, "/usr/bin/ping2"]);
    assert!(ping.starts_with("-04755 0 11"), "{ping}");
    assert!(ping.contains("security.capability"), "{ping}");
    assert!(!all.contains("/usr/bin/ping\n"), "{all}");
    // A touched hardlinked file is the same object; a rewritten setuid file stays setuid.
    assert!(
        ls(&export, IMAGE, "/usr/bin/tool").starts_with("-00755 0 0"),
        "{all}"
    );
    assert_eq!(cat(&export, IMAGE, "/usr/bin/tool"), "tool\n");
    assert_eq!(cat(&export, IMAGE, "/usr/bin/su-script"), "new\n");
    assert!(
        ls(&export, IMAGE, "/usr/bin/su-script").starts_with("-04755 0 0"),
        "{all}"
    );
    assert!(!ostree(&export, &["ls", "-R", "-X", IMAGE]).contains("ostreemeta"));
    fsck(&p.build_repo());
    fsck(&export);
}

#[test]
fn trigger_changes_are_committed_faithfully_on_fresh_and_synced_worktrees() {
    let p = Project::new(MANIFEST);
    python_tar(&p.p("base.tar.gz"), BASE_TAR);
    p.file("extra/usr/share/extra", "v1\n", 0o644);
    let first = p.run(&["build"]).ok();
    assert!(
        first.stdout.contains("worktree checked out"),
        "{}",
        first.stdout
    );
    check_image(&p);

    // The next build syncs the worktree back to the union first: the trigger's `mv`s
    // would fail if the previous run's rearrangement were still there.
    p.file("extra/usr/share/extra", "v2\n", 0o644);
    let second = p.run(&["build"]).ok();
    assert!(
        second.stdout.contains("worktree synced"),
        "{}",
        second.stdout
    );
    assert_eq!(cat(&p.export_repo(), IMAGE, "/usr/share/extra"), "v2\n");
    check_image(&p);
}

/// Triggers may replace and edit files every way tools do (cp over, truncate, append,
/// sed -i, install, rename over): each lands in the image, and the component's objects
/// behind the worktree's hardlinks stay as they were.
#[test]
fn triggers_replace_and_edit_hardlinked_files() {
    let p = Project::new(&dir_components_manifest(
        &[("base", "base")],
        r#"triggers = [{ name = "edit", run = """
set -e
printf 'copied\n' > /tmp/new && cp /tmp/new usr/share/cp-over
printf 'truncated\n' > usr/share/truncate
printf 'appended\n' >> usr/share/append
sed -i 's/old/new/' usr/share/sed
printf 'installed\n' > /tmp/inst && install -m 0640 /tmp/inst usr/share/install
printf 'renamed\n' > usr/share/.tmp && mv usr/share/.tmp usr/share/rename
""" }]"#,
    ));
    for name in ["cp-over", "truncate", "append", "sed", "install", "rename"] {
        p.file(&format!("base/usr/share/{name}"), "old\n", 0o644);
    }
    p.run(&["build"]).ok();
    let expected = [
        ("cp-over", "copied\n"),
        ("truncate", "truncated\n"),
        ("append", "old\nappended\n"),
        ("sed", "new\n"),
        ("install", "installed\n"),
        ("rename", "renamed\n"),
    ];
    let component = "exampleos/x86_64/components/base";
    for (name, content) in expected {
        let path = format!("/usr/share/{name}");
        assert_eq!(cat(&p.export_repo(), IMAGE, &path), content, "{name}");
        assert_eq!(cat(&p.build_repo(), component, &path), "old\n", "{name}");
    }
    assert!(ls(&p.export_repo(), IMAGE, "/usr/share/install").starts_with("-00640"));
    fsck(&p.build_repo());
    fsck(&p.export_repo());
    // The worktree kept for the next build still holds the component's objects intact.
    p.run(&["build", "--force"]).ok();
    fsck(&p.build_repo());
    assert_eq!(
        cat(&p.export_repo(), IMAGE, "/usr/share/append"),
        "old\nappended\n"
    );
}
