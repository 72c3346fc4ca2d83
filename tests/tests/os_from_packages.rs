//! The whole path, for real: a Debian minbase from the mirror (debootstrap), RPMs from a
//! local repository (dnf), an OpenEmbedded-style tarball with xattrs and setuid bits, and a
//! stand-in kernel, composed into one bootable image with triggers (one of them run inside
//! the image), published, pulled by a client over HTTP and deployed with `ostree admin`.
//! The deployment's /usr, /etc and package lists are checked.

use ostree_build_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const IMAGE: &str = "exampleos/x86_64/standard";
const KVER: &str = "6.1.0-exampleos";

const OE_TAR: &str = r#"
dir('usr'); dir('usr/bin'); dir('usr/lib'); dir('usr/lib/oe')
reg('usr/bin/oe-su', b'setuid tool\n', 0o4755)
hard('usr/bin/oe-su-alias', 'usr/bin/oe-su')
ti = tarfile.TarInfo('usr/bin/oe-ping'); ti.size = 5; ti.mode = 0o755
ti.pax_headers = {'SCHILY.xattr.security.capability': '\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00', 'SCHILY.xattr.security.selinux': 'system_u:object_r:ping_exec_t:s0'}
t.addfile(ti, io.BytesIO(b'ping\n'))
reg('usr/lib/oe/service.conf', b'owned\n', 0o640, 999, 998)
"#;

#[test]
fn debian_rpm_and_openembedded_components_make_an_image_a_client_deploys() {
    // The Debian component is built with debootstrap, which needs root.
    if !require_root() {
        return;
    }
    let rpms = build_rpm_repo(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let p = Project::new(&format!(
        r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.debian]
backend = "debootstrap"
suite = "bookworm"
variant = "minbase"

[component.rpms]
backend = "dnf"
repos = ["local=file://{rpms}"]
releasever = "12"
packages = ["exampleos-base"]
gpg-check = false

[component.oe]
backend = "tarball"
path = "oe.tar.gz"

[component.kernel]
backend = "dir"
path = "kernel"

[image.standard]
components = ["debian", "rpms", "oe", "kernel"]
bootable = true
version = "1.0"
triggers = [
  {{ name = "ldconfig" }},
  {{ name = "depmod" }},
  {{ name = "dpkg-list", run = "mkdir -p /usr/share/exampleos && dpkg-query -W -f '${{Package}}\n' > /usr/share/exampleos/dpkg-packages", sandbox = "image", inputs = ["/usr/lib/sysimage/dpkg"] }},
]
"#,
        rpms = rpms.display()
    ));
    python_tar(&p.p("oe.tar.gz"), OE_TAR);
    p.file(
        &format!("kernel/boot/vmlinuz-{KVER}"),
        "stand-in kernel\n",
        0o644,
    )
    .file(
        &format!("kernel/boot/initrd.img-{KVER}"),
        &stand_in_initramfs(),
        0o644,
    )
    .file(
        &format!("kernel/usr/lib/modules/{KVER}/kernel/dummy.ko"),
        "module\n",
        0o644,
    );
    let build = p.run(&["build"]).ok();
    assert!(
        build.stdout.contains("bootable: kernel 6.1.0-exampleos"),
        "{}",
        build.stdout
    );

    // The published image records every component's packages.
    let export = p.export_repo();
    let packages = ostree(
        &export,
        &["show", "--print-metadata-key=ostree-build.packages", IMAGE],
    );
    assert!(packages.contains("'dpkg-1.21"), "{packages}");
    assert!(packages.contains("'base-files-12"), "{packages}");
    assert!(
        packages.contains("'exampleos-base-1.0-1.noarch'"),
        "{packages}"
    );
    assert!(
        packages.contains("'exampleos-lib-1.0-1.noarch'"),
        "{packages}"
    );
    let status = p.run(&["status", "--packages"]).ok();
    assert!(
        status.stdout.contains("    exampleos-base-1.0-1.noarch"),
        "{}",
        status.stdout
    );
    fsck(&export);

    // A client pulls over HTTP and deploys.
    let server = HttpServer::start(&export);
    let sysroot = p.p("sysroot");
    let d = &deploy(&sysroot, &server.url, "exampleos", IMAGE);
    let client = format!("--repo={}/ostree/repo", sysroot.display());

    // /usr: Debian's, the RPMs', OpenEmbedded's (setuid, capability) and the kernel.
    assert!(d.join("usr/bin/dpkg").is_file());
    assert_eq!(
        std::fs::read_to_string(d.join("usr/lib/os-release"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("ID=")),
        Some("ID=debian")
    );
    let hello = d.join("usr/bin/exampleos-hello");
    assert_eq!(
        hello.metadata().unwrap().permissions().mode() & 0o7777,
        0o755
    );
    let su = d.join("usr/bin/oe-su").metadata().unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    let caps = command(
        "getfattr",
        &[
            "-n",
            "security.capability",
            "-e",
            "hex",
            d.join("usr/bin/oe-ping").to_str().unwrap(),
        ],
    );
    assert!(caps.contains("0x0100000200200000"), "{caps}");
    assert_eq!(
        std::fs::read_to_string(d.join(format!("usr/lib/modules/{KVER}/vmlinuz"))).unwrap(),
        "stand-in kernel\n"
    );
    assert!(
        std::fs::read_to_string(d.join(format!("usr/lib/modules/{KVER}/modules.dep")))
            .unwrap()
            .contains("kernel/dummy.ko:")
    );
    // /etc: deployed from /usr/etc, with Debian's and the RPM's files.
    assert!(std::fs::read_to_string(d.join("etc/debian_version"))
        .unwrap()
        .starts_with("12"));
    assert!(d.join("usr/etc/debian_version").is_file());
    assert!(d.join("etc/exampleos.conf").is_file());
    assert!(d.join("etc/ld.so.cache").is_file());
    // Package databases under /usr, readable with the distributions' own tools.
    let dpkg = command(
        "dpkg-query",
        &[
            &format!("--admindir={}", d.join("usr/lib/sysimage/dpkg").display()),
            "-W",
            "-f",
            "${Package}\n",
        ],
    );
    assert!(dpkg.lines().any(|l| l == "dpkg"), "{dpkg}");
    let from_trigger =
        std::fs::read_to_string(d.join("usr/share/exampleos/dpkg-packages")).unwrap();
    assert_eq!(from_trigger.trim(), dpkg.trim());
    // rpm opens its sqlite database read-write: query a copy, not the deployment's
    // hardlinks into the repository (a booted system has /usr read-only).
    let rpmdb = p.p("rpmdb-copy");
    command(
        "cp",
        &[
            "-a",
            d.join("usr/lib/sysimage/rpm").to_str().unwrap(),
            rpmdb.to_str().unwrap(),
        ],
    );
    let rpm = command(
        "rpm",
        &[
            "--dbpath",
            rpmdb.to_str().unwrap(),
            "-qa",
            "--qf",
            "%{NAME}\n",
        ],
    );
    assert!(rpm.lines().any(|l| l == "exampleos-base"), "{rpm}");
    // The tmpfiles.d conversion of /var points the package databases' old homes to /usr.
    let tmpfiles =
        std::fs::read_to_string(d.join("usr/lib/tmpfiles.d/ostree-build-var.conf")).unwrap();
    assert!(
        tmpfiles.contains("L /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg"),
        "{tmpfiles}"
    );
    assert!(
        tmpfiles.contains("L /var/lib/rpm - - - - ../../usr/lib/sysimage/rpm"),
        "{tmpfiles}"
    );
    command("ostree", &[&client, "fsck"]);
}
