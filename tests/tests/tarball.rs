//! The tarball backend: every compression the issue names, and what OpenEmbedded images
//! carry (xattrs such as file capabilities, setuid bits, hardlinks, ownership, symlinks)
//! surviving into the published image, through the trigger worktree as well.

use ostree_build_tests::*;
use std::process::Command;

const IMAGE: &str = "exampleos/x86_64/standard";

/// One small rootfs tar per compression; each provides /usr/share/formats/<suffix>.
fn compressed_tarballs(p: &Project) -> Vec<(&'static str, String)> {
    let formats = [
        ("tar", None),
        ("tar.gz", Some("gzip")),
        ("tar.bz2", Some("bzip2")),
        ("tar.xz", Some("xz")),
        ("tar.zst", Some("zstd")),
    ];
    let mut out = Vec::new();
    for (i, (suffix, tool)) in formats.iter().enumerate() {
        let plain = p.p(&format!("c{i}.tar"));
        python_tar(
            &plain,
            &format!("dir('usr'); dir('usr/share'); dir('usr/share/formats')\nreg('usr/share/formats/{suffix}', b'from {suffix}\\n')"),
        );
        if let Some(tool) = tool {
            let status = Command::new(tool)
                .args(["-q", "-f"])
                .arg(&plain)
                .status()
                .unwrap_or_else(|e| panic!("{tool}: {e} (scripts/setup.sh installs it)"));
            assert!(status.success(), "{tool} failed");
            // zstd keeps its input; the others replace it.
            let _ = std::fs::remove_file(&plain);
        }
        out.push((*suffix, format!("c{i}.{suffix}")));
    }
    out
}

#[test]
fn every_compression_is_imported() {
    let p = Project::new("");
    let tarballs = compressed_tarballs(&p);
    let mut manifest = String::from("[os]\nname = \"exampleos\"\narch = \"x86_64\"\n\n");
    for (i, (_, file)) in tarballs.iter().enumerate() {
        manifest.push_str(&format!(
            "[component.c{i}]\nbackend = \"tarball\"\npath = \"{file}\"\n\n"
        ));
    }
    let names: Vec<String> = (0..tarballs.len()).map(|i| format!("\"c{i}\"")).collect();
    manifest.push_str(&format!(
        "[image.standard]\ncomponents = [{}]\n",
        names.join(", ")
    ));
    p.write_manifest(&manifest);
    p.run(&["build"]).ok();
    for (suffix, _) in &tarballs {
        assert_eq!(
            cat(
                &p.export_repo(),
                IMAGE,
                &format!("/usr/share/formats/{suffix}")
            ),
            format!("from {suffix}\n")
        );
    }
    fsck(&p.export_repo());
}

const OE_MANIFEST: &str = r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.oe]
backend = "tarball"
path = "oe.tar.gz"

[image.standard]
components = ["oe"]
triggers = [{ name = "ldconfig" }]
"#;

/// An OpenEmbedded-style image: a setuid binary with a hardlink, a file capability, an
/// SELinux label and a user xattr, files owned by a service user, a symlink.
const OE_TAR: &str = r#"
dir('usr'); dir('usr/bin'); dir('usr/lib'); dir('etc')
reg('usr/bin/su', b'su binary\n', 0o4755)
hard('usr/bin/su-alias', 'usr/bin/su')
ti = tarfile.TarInfo('usr/bin/ping'); ti.size = 5; ti.mode = 0o755
ti.pax_headers = {'SCHILY.xattr.security.capability': '\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00', 'SCHILY.xattr.user.origin': 'oe', 'SCHILY.xattr.security.selinux': 'system_u:object_r:ping_exec_t:s0'}
t.addfile(ti, io.BytesIO(b'ping\n'))
reg('usr/lib/service.conf', b'owned\n', 0o640, 999, 998)
sym('usr/lib/libfoo.so', 'libfoo.so.1')
reg('usr/lib/libfoo.so.1', b'lib\n', 0o755)
"#;

#[test]
fn openembedded_metadata_survives_into_the_published_image() {
    let p = Project::new(OE_MANIFEST);
    python_tar(&p.p("oe.tar.gz"), OE_TAR);
    p.run(&["build"]).ok();
    for repo in [p.build_repo(), p.export_repo()] {
        assert!(ls(&repo, IMAGE, "/usr/bin/su").starts_with("-04755 0 0"));
        assert!(ls(&repo, IMAGE, "/usr/bin/su-alias").starts_with("-04755 0 0"));
        let ping = ostree(&repo, &["ls", "-X", IMAGE, "/usr/bin/ping"]);
        assert!(ping.contains("security.capability"), "{ping}");
        assert!(ping.contains("user.origin"), "{ping}");
        assert!(ping.contains("security.selinux"), "{ping}");
        let label: Vec<String> = "system_u:object_r:ping_exec_t:s0"
            .bytes()
            .map(|b| format!("0x{b:02x}"))
            .collect();
        assert!(ping.contains(&label.join(", ")), "{ping}");
        assert!(ls(&repo, IMAGE, "/usr/lib/service.conf").starts_with("-00640 999 998"));
        assert!(ls(&repo, IMAGE, "/usr/lib/libfoo.so").ends_with("-> libfoo.so.1"));
        // The trigger ran on the composed tree.
        assert!(ls(&repo, IMAGE, "/etc/ld.so.cache").starts_with("-00644 0 0"));
    }
    // Hardlinked paths share one object.
    let checksums = ostree(&p.export_repo(), &["ls", "-C", IMAGE, "/usr/bin"]);
    let of = |name: &str| {
        checksums
            .lines()
            .find(|l| l.ends_with(&format!("/usr/bin/{name}")))
            .and_then(|l| l.split_whitespace().nth(4))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no {name} in {checksums}"))
    };
    assert_eq!(of("su"), of("su-alias"));
    fsck(&p.build_repo());
    fsck(&p.export_repo());
    // A device's repository is `bare`: xattrs live on the files and are read back sorted,
    // so the objects must have been checksummed with sorted xattrs.
    let device = p.p("device-repo");
    ostree(&device, &["init", "--mode=bare"]);
    ostree(
        &device,
        &["pull-local", p.export_repo().to_str().unwrap(), IMAGE],
    );
    fsck(&device);
}
