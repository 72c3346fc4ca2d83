//! A real Debian image boots: a project made by `ostree-build new --template debian`
//! (bookworm from the mirror with mmdebstrap: kernel, systemd, dracut, ostree-boot), its
//! initramfs made by the built-in `initramfs` trigger, published, and booted with
//! `ostree-build boot --check` in QEMU (TCG). The template's own unit greets on the console;
//! a service the test adds to the template's overlay reports what a user would check (booted
//! through OSTree, /usr read-only, no failed units, the deployments) and powers off. A second
//! version then boots with the first as its rollback. Slow (a few minutes): it runs once.

use ostree_build_tests::*;

const CHECK_SCRIPT: &str = r#"#!/bin/sh
# Give the rest of the start-up a moment, then report and power off.
sleep 3
echo "CHECK booted=$(test -e /run/ostree-booted && echo yes || echo no)"
echo "CHECK usr-writable=$(touch /usr/.w 2>/dev/null && echo yes || echo no)"
# mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT ...": / is the deployment's directory.
echo "CHECK deployment-root=$(grep -q ' /ostree/deploy/debos/deploy/[^ ]* / ' /proc/self/mountinfo && echo yes || echo no)"
echo "CHECK failed=$(systemctl --failed --no-legend --plain | grep -v ostree-build-check | wc -l)"
systemctl --failed --no-legend --plain | sed 's/^/CHECK failed unit: /'
echo "CHECK version=$(cat /usr/share/check/version)"
ostree admin status | sed 's/^/CHECK status: /'
echo "CHECK done"
systemctl poweroff
"#;

const CHECK_UNIT: &str = "[Unit]
Description=ostree-build boot check
After=multi-user.target

[Service]
Type=simple
ExecStart=/usr/libexec/ostree-build-check
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
";

/// The check service, added to the template's `overlay` folder as a user adds files.
fn add_check(p: &Project, version: &str) {
    p.file(
        "overlay/usr/libexec/ostree-build-check",
        CHECK_SCRIPT,
        0o755,
    )
    .file(
        "overlay/usr/lib/systemd/system/ostree-build-check.service",
        CHECK_UNIT,
        0o644,
    )
    .file(
        "overlay/usr/share/check/version",
        &format!("{version}\n"),
        0o644,
    );
    let wants =
        p.p("overlay/usr/lib/systemd/system/multi-user.target.wants/ostree-build-check.service");
    if !wants.exists() {
        p.symlink(
            "overlay/usr/lib/systemd/system/multi-user.target.wants/ostree-build-check.service",
            "../ostree-build-check.service",
        );
    }
}

/// The `CHECK` lines the guest printed, without terminal colour codes.
fn checks(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|l| {
            l.split_once("CHECK ")
                .map(|(_, rest)| rest.trim().to_string())
        })
        .collect()
}

fn boot(p: &Project, fresh: bool) -> Vec<String> {
    let mut args = vec![
        "boot",
        "standard",
        "--check",
        "--timeout",
        "900",
        "--settle",
        "60",
    ];
    if fresh {
        args.push("--fresh");
    }
    let run = p.run(&args).ok();
    assert!(
        run.stdout.contains("reached multi-user.target"),
        "{}",
        run.stdout
    );
    let console = std::fs::read_to_string(p.p("build/.ostree-build/boot/standard/console.log"))
        .expect("the console log");
    let checks = checks(&console);
    assert!(
        checks.iter().any(|c| c == "done"),
        "the check service did not finish:\n{console}"
    );
    for expected in [
        "booted=yes",
        "usr-writable=no",
        "deployment-root=yes",
        "failed=0",
    ] {
        assert!(
            checks.iter().any(|c| c == expected),
            "no {expected:?} in {checks:#?}"
        );
    }
    assert!(
        !console.contains("already exists and is not a directory"),
        "tmpfiles errors at boot:\n{console}"
    );
    assert!(
        console.contains("Welcome to debos 1"),
        "the template's welcome.service did not greet:\n{console}"
    );
    checks
}

#[test]
fn a_debian_image_boots_and_upgrades_with_a_rollback() {
    // mmdebstrap runs rootless too, but the deployment keeps the image's owners only as root.
    if !require_root() {
        return;
    }
    let p = Project::from_template(&[
        "--template",
        "debian",
        "--os-name",
        "debos",
        "--version",
        "1",
    ]);
    add_check(&p, "1");
    let built = p.run(&["build"]).ok();
    assert!(
        built.stdout.contains("triggers: initramfs"),
        "{}",
        built.stdout
    );
    fsck(&p.export_repo());
    let first = boot(&p, true);
    assert!(first.iter().any(|c| c == "version=1"), "{first:#?}");
    let status: Vec<&String> = first.iter().filter(|c| c.starts_with("status:")).collect();
    assert_eq!(
        status.iter().filter(|c| c.contains("debos ")).count(),
        1,
        "one deployment: {status:#?}"
    );

    // Version 2: the kernel is unchanged, so the initramfs trigger's output is reused.
    add_check(&p, "2");
    let rebuilt = p.run(&["build"]).ok();
    assert!(
        rebuilt.stdout.contains("initramfs reused"),
        "{}",
        rebuilt.stdout
    );
    let second = boot(&p, false);
    assert!(second.iter().any(|c| c == "version=2"), "{second:#?}");
    let status: Vec<&String> = second.iter().filter(|c| c.starts_with("status:")).collect();
    let deployments: Vec<&&String> = status.iter().filter(|c| c.contains("debos ")).collect();
    assert_eq!(deployments.len(), 2, "two deployments: {status:#?}");
    assert!(
        deployments[0].contains("* debos"),
        "the new one is booted: {status:#?}"
    );
    assert!(
        status.iter().any(|c| c.contains("(rollback)")),
        "the first is the rollback: {status:#?}"
    );
}
