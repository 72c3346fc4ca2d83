//! Bootable images: the OSTree layout (/etc → /usr/etc, /var → tmpfiles.d, kernel into
//! /usr/lib/modules, top-level directories as symlinks into /var), its lint, and a client
//! deploying the result with `ostree admin`. Triggers with declared inputs and the sandbox.

use ostree_build_tests::*;
use std::path::Path;

const IMAGE: &str = "exampleos/x86_64/standard";
const KVER: &str = "6.1.0-test";

fn manifest(image_extra: &str) -> String {
    format!(
        r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.base]
backend = "dir"
path = "base"

[component.kernel]
backend = "dir"
path = "kernel"

[image.standard]
components = ["base", "kernel"]
bootable = true
version = "1.0"
{image_extra}
"#
    )
}

/// A small FHS tree: os-release, /etc, content in /var, /home and /root, a stand-in kernel.
fn project(image_extra: &str) -> Project {
    let p = Project::new(&manifest(image_extra));
    p.file(
        "base/usr/lib/os-release",
        "ID=exampleos\nNAME=ExampleOS\nVERSION_ID=1\n",
        0o644,
    )
    .symlink("base/etc/os-release", "../usr/lib/os-release")
    .file("base/etc/hostname", "example\n", 0o644)
    .file("base/usr/bin/hello", "#!/bin/sh\necho hello\n", 0o755)
    .file("base/var/lib/app/state", "seed\n", 0o600)
    .symlink("base/var/lib/dpkg", "../../usr/lib/sysimage/dpkg")
    .file("base/home/user/.profile", "PS1=x\n", 0o644)
    .file("base/root/.bashrc", "alias l=ls\n", 0o644)
    .file("base/tmp/leftover", "junk\n", 0o644)
    .file("base/run/leftover", "junk\n", 0o644)
    .symlink("base/vmlinuz", &format!("boot/vmlinuz-{KVER}"))
    .file(
        &format!("kernel/boot/vmlinuz-{KVER}"),
        "stand-in kernel\n",
        0o644,
    )
    .file(
        &format!("kernel/boot/initrd.img-{KVER}"),
        &stand_in_initramfs(),
        0o644,
    )
    .file(&format!("kernel/boot/config-{KVER}"), "CONFIG_X=y\n", 0o644)
    .file(
        &format!("kernel/boot/dtbs/{KVER}/board.dtb"),
        "dtb\n",
        0o644,
    )
    .file(
        &format!("kernel/usr/lib/modules/{KVER}/kernel/drivers/dummy.ko"),
        "module\n",
        0o644,
    );
    std::fs::create_dir_all(p.p("base/var/log")).unwrap();
    p
}

fn tree(repo: &Path) -> String {
    ostree(repo, &["ls", "-R", IMAGE])
}

#[test]
fn bootable_image_follows_the_ostree_layout() {
    let p = project("");
    p.run(&["build"]).ok();
    let export = p.export_repo();
    let all = tree(&export);
    // Kernel and initramfs where libostree looks first; /boot ships empty.
    assert_eq!(
        cat(&export, IMAGE, &format!("/usr/lib/modules/{KVER}/vmlinuz")),
        "stand-in kernel\n"
    );
    assert_eq!(
        cat(
            &export,
            IMAGE,
            &format!("/usr/lib/modules/{KVER}/initramfs.img")
        ),
        stand_in_initramfs()
    );
    assert_eq!(
        cat(&export, IMAGE, &format!("/usr/lib/modules/{KVER}/config")),
        "CONFIG_X=y\n"
    );
    assert_eq!(
        cat(
            &export,
            IMAGE,
            &format!("/usr/lib/modules/{KVER}/dtb/board.dtb")
        ),
        "dtb\n"
    );
    assert!(!all.contains("/boot/"), "{all}");
    assert!(!all.contains("/vmlinuz "), "{all}");
    // /etc is /usr/etc, symlinks kept.
    assert!(!all.lines().any(|l| l.ends_with(" /etc")), "{all}");
    assert_eq!(cat(&export, IMAGE, "/usr/etc/hostname"), "example\n");
    assert!(ls(&export, IMAGE, "/usr/etc/os-release").contains("-> ../usr/lib/os-release"));
    // Top-level directories point into /var; /var, /tmp and /run ship empty.
    for (link, target) in [
        ("/home", "var/home"),
        ("/root", "var/roothome"),
        ("/opt", "var/opt"),
        ("/srv", "var/srv"),
        ("/mnt", "var/mnt"),
        ("/usr/local", "../var/usrlocal"),
        ("/ostree", "sysroot/ostree"),
    ] {
        let line = ls(&export, IMAGE, link);
        assert!(
            line.starts_with('l') && line.contains(&format!("-> {target}")),
            "{line}"
        );
    }
    for dir in [
        "/var", "/tmp", "/run", "/proc", "/sys", "/dev", "/sysroot", "/boot",
    ] {
        assert!(ls(&export, IMAGE, dir).starts_with('d'), "{dir}: {all}");
        assert!(
            !all.contains(&format!(" {dir}/")),
            "{dir} is not empty: {all}"
        );
    }
    // /var content became tmpfiles.d lines; files are copied from /usr/share/factory.
    let conf = cat(&export, IMAGE, "/usr/lib/tmpfiles.d/ostree-build-var.conf");
    for line in [
        "d /var/lib/app 0755 ",
        "C /var/lib/app/state - - - - /usr/share/factory/var/lib/app/state",
        "L /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg",
        "d /var/log 0755 ",
        "d /var/home 0755 ",
        "C /var/home/user/.profile - - - - /usr/share/factory/var/home/user/.profile",
        "C /var/roothome/.bashrc - - - - /usr/share/factory/var/roothome/.bashrc",
        "d /var/usrlocal 0755 0 0 -",
    ] {
        assert!(conf.contains(line), "missing {line:?} in:\n{conf}");
    }
    assert_eq!(
        cat(&export, IMAGE, "/usr/share/factory/var/lib/app/state"),
        "seed\n"
    );
    assert!(ls(&export, IMAGE, "/usr/share/factory/var/lib/app/state").starts_with("-00600"));
    fsck(&export);
}

#[test]
fn systemd_tmpfiles_recreates_var_from_the_image() {
    let p = project("");
    // Names tmpfiles.d would misread unless escaped: a specifier, a quote, a space.
    p.file("base/var/lib/app/100%done", "percent\n", 0o644)
        .file("base/var/lib/app/it's here", "quote\n", 0o644)
        .symlink("base/var/lib/app/link%n", "../../usr/share/100%/x");
    p.run(&["build"]).ok();
    let root = p.p("checkout");
    command(
        "ostree",
        &[
            &format!("--repo={}", p.export_repo().display()),
            "checkout",
            IMAGE,
            root.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_dir(root.join("var")).unwrap().count(), 0);
    command(
        "systemd-tmpfiles",
        &[
            &format!("--root={}", root.display()),
            "--create",
            "ostree-build-var.conf",
        ],
    );
    let var = root.join("var/lib/app");
    assert_eq!(
        std::fs::read_to_string(var.join("state")).unwrap(),
        "seed\n"
    );
    assert_eq!(
        std::fs::read_to_string(var.join("100%done")).unwrap(),
        "percent\n"
    );
    assert_eq!(
        std::fs::read_to_string(var.join("it's here")).unwrap(),
        "quote\n"
    );
    assert_eq!(
        std::fs::read_link(var.join("link%n")).unwrap(),
        Path::new("../../usr/share/100%/x")
    );
    assert_eq!(
        std::fs::read_link(root.join("var/lib/dpkg")).unwrap(),
        Path::new("../../usr/lib/sysimage/dpkg")
    );
    assert_eq!(
        std::fs::read_to_string(root.join("var/home/user/.profile")).unwrap(),
        "PS1=x\n"
    );
}

/// systemd's own tmpfiles.d lines for /home, /srv and /root meet the symlinks the layout
/// leaves there; they are pointed at the directories in /var, so the first boot logs no
/// "already exists and is not a directory".
#[test]
fn systemd_tmpfiles_lines_for_moved_directories_follow_them_into_var() {
    let p = project("");
    // As systemd ships them (home.conf, provision.conf), plus one in /etc/tmpfiles.d.
    p.file(
        "base/usr/lib/tmpfiles.d/home.conf",
        "# home\nQ /home 0755 - - -\nq /srv 0755 - - -\n",
        0o644,
    )
    .file(
        "base/usr/lib/tmpfiles.d/provision.conf",
        "d- /root :0700 root :root -\nd- /root/.ssh :0700 root :root -\n",
        0o644,
    )
    .file(
        "base/etc/tmpfiles.d/local.conf",
        "d /usr/local/share/x 0755 - - -\n",
        0o600,
    );
    p.run(&["build"]).ok();
    let export = p.export_repo();
    assert_eq!(
        cat(&export, IMAGE, "/usr/lib/tmpfiles.d/home.conf"),
        "# home\nQ /var/home 0755 - - -\nq /var/srv 0755 - - -\n"
    );
    assert_eq!(
        cat(&export, IMAGE, "/usr/etc/tmpfiles.d/local.conf"),
        "d /var/usrlocal/share/x 0755 - - -\n"
    );
    assert!(ls(&export, IMAGE, "/usr/etc/tmpfiles.d/local.conf").starts_with("-00600"));
    let root = p.p("checkout");
    command(
        "ostree",
        &[
            &format!("--repo={}", export.display()),
            "checkout",
            IMAGE,
            root.to_str().unwrap(),
        ],
    );
    let out = std::process::Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.display()))
        .args([
            "--create",
            "ostree-build-var.conf",
            "home.conf",
            "provision.conf",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{}\n{stderr}",
        out.status
    );
    for dir in ["var/home/user", "var/srv", "var/roothome/.ssh"] {
        assert!(root.join(dir).is_dir(), "{dir} was not created");
    }
    assert_eq!(
        std::fs::read_link(root.join("home")).unwrap(),
        Path::new("var/home")
    );
}

/// The initramfs must be able to mount the deployment: one without ostree-prepare-root (or
/// none at all) is a lint error that says what to add; a compressed one with it, behind an
/// early microcode archive as distributions ship them, passes.
#[test]
fn an_initramfs_without_ostree_prepare_root_is_a_lint_error() {
    let initrd = format!("kernel/boot/initrd.img-{KVER}");
    let early = ostree_build_core::initramfs::newc_archive(&[(
        "kernel/x86/microcode/AuthenticAMD.bin",
        &[1u8; 100],
    )]);
    let gzip = |data: &[u8]| -> Vec<u8> {
        let mut child = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(data).unwrap();
        child.wait_with_output().unwrap().stdout
    };
    let plain = ostree_build_core::initramfs::newc_archive(&[("usr/bin/sh", b"sh")]);
    let good = ostree_build_core::initramfs::newc_archive(&[
        ("usr/bin/sh", b"sh"),
        ("usr/lib/ostree/ostree-prepare-root", b"\x7fELF"),
    ]);
    let p = project("");
    std::fs::write(p.p(&initrd), [early.clone(), gzip(&plain)].concat()).unwrap();
    let run = p.run(&["build"]).fails();
    assert!(
        run.stderr.contains("image 'standard': not bootable"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("has no ostree-prepare-root")
            && run.stderr.contains("[initramfs-ostree]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("name = \"initramfs\""),
        "{}",
        run.stderr
    );
    assert!(refs(&p.build_repo()).iter().all(|(r, _)| r != IMAGE));

    std::fs::remove_file(p.p(&initrd)).unwrap();
    let run = p.run(&["build"]).fails();
    assert!(run.stderr.contains("has no initramfs"), "{}", run.stderr);

    std::fs::write(p.p(&initrd), [early, gzip(&good)].concat()).unwrap();
    p.run(&["build"]).ok();
    fsck(&p.export_repo());
}

#[test]
fn lint_errors_name_every_problem_and_move_no_ref() {
    let p = Project::new(&manifest(""));
    p.file("base/usr/bin/hello", "hi\n", 0o755).file(
        "kernel/usr/share/doc/readme",
        "no kernel here\n",
        0o644,
    );
    let out = p.run(&["build"]).fails();
    assert!(
        out.stderr.contains("image 'standard': not bootable"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("no kernel") && out.stderr.contains("[no-kernel]"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("/usr/lib/os-release") && out.stderr.contains("[no-os-release]"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("lint.<rule> = \"warn\""),
        "{}",
        out.stderr
    );
    assert!(refs(&p.build_repo()).iter().all(|(r, _)| r != IMAGE));
    assert!(!p
        .export_repo()
        .join("refs/heads/exampleos/x86_64/standard")
        .exists());

    // Accepting both as warnings builds the image and says what was accepted.
    p.write_manifest(&manifest(
        r#"lint = { "no-kernel" = "warn", "no-os-release" = "allow" }"#,
    ));
    let ok = p.run(&["build"]).ok();
    let printed = format!("{}{}", ok.stdout, ok.stderr);
    assert!(
        printed.contains("warning: image 'standard': no kernel"),
        "{printed}"
    );
    assert!(!printed.contains("os-release"), "{printed}");
    assert_eq!(cat(&p.export_repo(), IMAGE, "/usr/bin/hello"), "hi\n");
}

#[test]
fn two_kernels_are_refused() {
    let p = project("");
    p.file(
        "base/usr/lib/modules/5.10.0-old/vmlinuz",
        "old kernel\n",
        0o644,
    );
    let out = p.run(&["build"]).fails();
    assert!(
        out.stderr
            .contains("more than one kernel: 5.10.0-old, 6.1.0-test"),
        "{}",
        out.stderr
    );
    assert!(refs(&p.build_repo()).iter().all(|(r, _)| r != IMAGE));
}

#[test]
fn etc_that_shadows_usr_etc_and_files_in_var_can_be_refused() {
    let p = project(r#"var-files = "error""#);
    p.file("kernel/usr/etc/hostname", "other\n", 0o644)
        .file("base/etc/ssh/sshd_config", "a file\n", 0o644)
        .file("kernel/usr/etc/ssh", "not a directory\n", 0o644);
    let before = refs(&p.build_repo());
    let out = p.run(&["build"]).fails();
    assert!(
        out.stderr
            .contains("/etc/hostname differs from /usr/etc/hostname: the image keeps /usr/etc's"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[etc-shadow]"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("/etc/ssh is a directory where there is a file /usr/etc/ssh"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("/var/lib/app/state: a file in /var would be lost"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("/var/home/user/.profile"),
        "{}",
        out.stderr
    );
    assert_eq!(refs(&p.build_repo()), before);
}

#[test]
fn unknown_lint_rule_and_unknown_named_trigger_are_named() {
    let p = project(r#"lint = { "no-kernal" = "warn" }"#);
    let out = p.run(&["build"]).fails();
    assert!(
        out.stderr.contains("unknown lint rule 'no-kernal'"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `no-kernel`?"),
        "{}",
        out.stderr
    );

    p.write_manifest(&manifest(
        r#"triggers = [{ name = "ldconfig" }, { name = "ldconfig", run = "true" }]"#,
    ));
    let out = p.run(&["build"]).fails();
    assert!(
        out.stderr
            .contains("image 'standard' has two triggers named 'ldconfig'"),
        "{}",
        out.stderr
    );

    p.write_manifest(&manifest(r#"triggers = [{ name = "ldconfg" }]"#));
    let out = p.run(&["build"]).fails();
    assert!(
        out.stderr
            .contains("trigger 'ldconfg' has no `run` and is not a built-in trigger"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `ldconfig`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn triggers_rerun_only_when_their_inputs_change() {
    let p = project(
        r#"triggers = [
  { name = "depmod" },
  { name = "doc-index", run = "ls usr/share/doc > usr/share/doc-index", inputs = ["/usr/share/doc"] },
  { name = "strip-debug", run = "rm -r usr/lib/debug", inputs = ["/usr/lib/debug"] },
]"#,
    );
    p.file("base/usr/share/doc/a", "a\n", 0o644).file(
        "base/usr/lib/debug/hello.debug",
        "symbols\n",
        0o644,
    );
    let first = p.run(&["build"]).ok();
    assert!(first.stdout.contains("depmod "), "{}", first.stdout);
    let export = p.export_repo();
    assert_eq!(cat(&export, IMAGE, "/usr/share/doc-index"), "a\n");
    let dep = cat(
        &export,
        IMAGE,
        &format!("/usr/lib/modules/{KVER}/modules.dep"),
    );
    assert!(dep.contains("kernel/drivers/dummy.ko:"), "{dep}");

    // A change outside both triggers' inputs: both outputs are reused, not re-run.
    p.file("base/usr/bin/hello", "#!/bin/sh\necho changed\n", 0o755);
    let second = p.run(&["build"]).ok();
    assert!(
        second.stdout.contains("depmod reused")
            && second.stdout.contains("doc-index reused")
            && second.stdout.contains("strip-debug reused"),
        "{}",
        second.stdout
    );
    // A reused deletion deletes again.
    assert!(
        !tree(&export).contains("/usr/lib/debug"),
        "{}",
        tree(&export)
    );
    assert_eq!(cat(&export, IMAGE, "/usr/share/doc-index"), "a\n");
    assert_eq!(
        cat(
            &export,
            IMAGE,
            &format!("/usr/lib/modules/{KVER}/modules.dep")
        ),
        dep
    );
    assert!(cat(&export, IMAGE, "/usr/bin/hello").contains("changed"));

    // A change to one trigger's inputs re-runs that trigger only.
    p.file("base/usr/share/doc/b", "b\n", 0o644);
    let third = p.run(&["build"]).ok();
    assert!(third.stdout.contains("depmod reused"), "{}", third.stdout);
    assert!(
        !third.stdout.contains("doc-index reused"),
        "{}",
        third.stdout
    );
    assert_eq!(cat(&export, IMAGE, "/usr/share/doc-index"), "a\nb\n");
    fsck(&p.build_repo());
    fsck(&export);
}

/// A TCP server on 127.0.0.1 that records every connection it accepts (the first bytes the
/// peer sends, waited for at most a second) and answers each with the byte `!`. It stops
/// by itself after two minutes, or when [`Witness::stop`] asks.
struct Witness {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Witness {
    fn start() -> Witness {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        use std::time::{Duration, Instant};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut seen = Vec::new();
            while !asked.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut peer, _)) => {
                        peer.set_nonblocking(false).unwrap();
                        peer.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                        let mut first = [0u8; 64];
                        let n = peer.read(&mut first).unwrap_or(0);
                        // Recorded before the answer: whoever got `!` is in `seen`.
                        seen.push(String::from_utf8_lossy(&first[..n]).into_owned());
                        let _ = peer.write_all(b"!");
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            seen
        });
        Witness { port, stop, thread }
    }

    /// Connect from this process, send `hello`, and get the answer: the server is up.
    fn reach(&self, hello: &str) {
        use std::io::{Read, Write};
        let mut peer = std::net::TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("the test cannot reach its own server: {e}"));
        peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        peer.write_all(hello.as_bytes()).unwrap();
        let mut answer = [0u8; 1];
        peer.read_exact(&mut answer)
            .expect("the server's answer to the test");
        assert_eq!(&answer, b"!");
    }

    /// Stop the server; the first bytes of every connection it accepted.
    fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().expect("the server thread")
    }
}

/// A `triggers = [...]` line with one trigger `name` running `run` in `sandbox`.
fn one_trigger(name: &str, sandbox: &str, run: &str) -> String {
    // A JSON string of ASCII text is a TOML basic string.
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    format!(
        "triggers = [{{ name = {}, sandbox = {}, run = {} }}]",
        quoted(name),
        quoted(sandbox),
        quoted(run)
    )
}

/// Things on the host a trigger must not see, named after this process and the sandbox
/// under test (tests run in parallel): a Unix socket a service listens on in /var/tmp, and
/// a file in the host's /tmp and in its /run. Removed on drop.
struct HostBait {
    socket: String,
    files: Vec<String>,
    _listener: std::os::unix::net::UnixListener,
}

impl HostBait {
    fn plant(sandbox: &str) -> HostBait {
        let name = format!("ostree-build-bait-{sandbox}-{}", std::process::id());
        let socket = format!("/var/tmp/{name}.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket)
            .unwrap_or_else(|e| panic!("the test cannot listen on {socket}: {e}"));
        let files: Vec<String> = ["/tmp", "/run"]
            .iter()
            .map(|dir| format!("{dir}/{name}.{}", &dir[1..]))
            .collect();
        for f in &files {
            std::fs::write(f, "host\n")
                .unwrap_or_else(|e| panic!("the test cannot write {f}: {e}"));
        }
        HostBait {
            socket,
            files,
            _listener: listener,
        }
    }
}

impl Drop for HostBait {
    fn drop(&mut self) {
        for f in self.files.iter().chain([&self.socket]) {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The probes a trigger runs in either sandbox: what it sees of the host and of the image,
/// and what it can change of the kernel's settings and limits.
fn probes(bait: &HostBait) -> Vec<(&'static str, String)> {
    vec![
        ("shadow", "cat /etc/shadow".to_string()),
        ("root", "ls -A /root".to_string()),
        ("home", "ls -A /home".to_string()),
        ("var", "ls /var/lib".to_string()),
        ("tmp-run", "ls -A /tmp /run".to_string()),
        ("socket", format!("test -e {} && echo visible", bait.socket)),
        (
            "sysctl",
            "v=$(cat /proc/sys/kernel/printk); echo \"$v\" > /proc/sys/kernel/printk".to_string(),
        ),
        (
            "nproc",
            "grep 'Max processes' /proc/self/limits".to_string(),
        ),
    ]
}

/// A build whose one trigger ran [`probes`] and then made /usr/bin/hello-suid setuid.
struct Probed<'a> {
    project: &'a Project,
    run: Run,
}

impl Probed<'_> {
    /// Build `p` with one trigger in `sandbox` that runs each probe; each leaves in the
    /// image what it printed and then `status <exit status>`.
    fn build<'a>(p: &'a Project, sandbox: &str, bait: &HostBait) -> Probed<'a> {
        let script: Vec<String> = probes(bait)
            .iter()
            .map(|(name, cmd)| {
                format!("({cmd}) > usr/share/probe/{name} 2>&1; echo status $? >> usr/share/probe/{name}")
            })
            .collect();
        let run = format!(
            "mkdir -p usr/share/probe; {}; cp usr/bin/hello usr/bin/hello-suid && chmod 4755 usr/bin/hello-suid",
            script.join("; ")
        );
        p.write_manifest(&manifest(&one_trigger("probe", sandbox, &run)));
        Probed {
            project: p,
            run: p.run(&["build"]).ok(),
        }
    }

    /// What the probe `name` printed, then its `status` line.
    fn said(&self, name: &str) -> String {
        cat(
            &self.project.export_repo(),
            IMAGE,
            &format!("/usr/share/probe/{name}"),
        )
    }

    /// What holds in every sandbox: the host's socket and its /tmp and /run are out of
    /// sight, kernel settings are read-only, the sandbox sets a process limit, and the
    /// setuid file is named in the build output.
    fn assert_confined(&self, bait: &HostBait) {
        let said = self.said("tmp-run") + &self.said("socket");
        for seen in bait.files.iter().chain([&bait.socket]) {
            let name = seen.rsplit('/').next().unwrap();
            assert!(
                !said.contains(name),
                "the trigger saw the host's {seen}:\n{said}"
            );
        }
        let said = self.said("sysctl");
        assert!(said.contains("Read-only file system"), "{said}");
        // A number, and not the limit the build itself inherited from this test (often a
        // number too): the sandbox set it.
        let limit = self.said("nproc");
        let own = std::fs::read_to_string("/proc/self/limits").unwrap();
        let soft = |limits: &str| {
            let line = limits.lines().find(|l| l.starts_with("Max processes"))?;
            line.split_whitespace().nth(2).map(str::to_string)
        };
        assert!(
            soft(&limit)
                .is_some_and(|n| n.parse::<u64>().is_ok() && Some(&n) != soft(&own).as_ref()),
            "no process limit of the trigger's own: {limit}(the build's is {:?})",
            soft(&own)
        );
        let out = &self.run.stdout;
        assert!(
            out.contains("trigger 'probe' made /usr/bin/hello-suid setuid or setgid"),
            "{out}"
        );
    }
}

/// A link out of the root, made by a trigger in `sandbox`, is refused like one in an input:
/// the build fails naming it and no ref moves.
fn assert_escaping_link_refused(p: &Project, sandbox: &str) {
    let before = refs(&p.build_repo());
    p.write_manifest(&manifest(&one_trigger(
        "link",
        sandbox,
        "ln -s ../../../etc/passwd usr/bin/escape",
    )));
    let failed = p.run(&["build"]).fails();
    assert!(
        failed
            .stderr
            .contains("usr/bin/escape: symlink to '../../../etc/passwd' points outside the root"),
        "{}",
        failed.stderr
    );
    assert_eq!(refs(&p.build_repo()), before);
    fsck(&p.build_repo());
}

/// A host-mode trigger sees the host's tools, not its secrets, homes, services' data and
/// sockets, and cannot change kernel settings; it runs under a process limit; a symlink it
/// creates that climbs out of the root is refused like an import's; setuid files it makes
/// are named in the build output.
#[test]
fn host_triggers_see_no_secrets_and_change_no_kernel_setting() {
    let p = project("");
    let bait = HostBait::plant("host");
    let probed = Probed::build(&p, "host", &bait);
    probed.assert_confined(&bait);
    // /dev/null stands in for it (opening that device on a nodev bind is refused): either
    // way no line of the host's file comes through.
    let shadow = probed.said("shadow");
    assert!(
        std::fs::read_to_string("/etc/shadow")
            .unwrap()
            .contains("root:")
            && !shadow.contains("root:"),
        "the host's /etc/shadow is readable: {shadow}"
    );
    for home in ["root", "home"] {
        let said = probed.said(home);
        assert!(
            said.contains("No such file") || said == "status 0\n",
            "{said}"
        );
    }
    let var = probed.said("var");
    assert!(var.contains("No such file"), "{var}");
    assert_escaping_link_refused(&p, "host");
}

/// [`project`] for `sandbox = "image"`: a statically linked busybox (the host's
/// /bin/busybox) in /usr/bin with a link per applet, `/bin -> usr/bin`, and an
/// /etc/shadow of the image's own.
fn busybox_project() -> Project {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "{} not found: apt-get install busybox-static (bash scripts/setup.sh)",
        busybox.display()
    );
    let p = project("");
    p.file("base/etc/shadow", "exampleos-image-shadow\n", 0o600)
        .symlink("base/bin", "usr/bin");
    std::fs::copy(busybox, p.p("base/usr/bin/busybox")).unwrap();
    for applet in command("/bin/busybox", &["--list"]).lines() {
        let link = p.p(&format!("base/usr/bin/{applet}"));
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    p
}

/// An image-mode trigger (the image is `/`, its own busybox shell runs) sees the image's
/// /etc/shadow, /root, /home and /var, and nothing of the host's: not its secrets, homes,
/// /tmp, /run, /var or a Unix socket a service listens on; it cannot change kernel
/// settings; it runs under a process limit the sandbox sets; a symlink it creates that
/// climbs out of the root is refused and no ref moves; setuid files it makes are named in
/// the build output.
#[test]
fn image_triggers_see_only_the_image_and_change_no_kernel_setting() {
    let p = busybox_project();
    let bait = HostBait::plant("image");
    let probed = Probed::build(&p, "image", &bait);
    probed.assert_confined(&bait);
    for (probe, image_has) in [
        ("shadow", "exampleos-image-shadow\n"),
        ("root", ".bashrc\n"),
        ("home", "user\n"),
        ("var", "app\ndpkg\n"),
    ] {
        assert_eq!(
            probed.said(probe),
            format!("{image_has}status 0\n"),
            "{probe}"
        );
    }
    assert_escaping_link_refused(&p, "image");
}

/// A trigger in `sandbox` runs `fetch(port)` against a local server that the test itself
/// reaches before and after the build: the server sees only the test's connections, the
/// build fails saying triggers have no network, and no ref moves. Returns the build's
/// stderr, for the tools' own messages.
fn assert_no_server_reached(
    p: &Project,
    sandbox: &str,
    fetch: impl FnOnce(u16) -> String,
) -> String {
    let server = Witness::start();
    server.reach("before");
    let before = refs(&p.build_repo());
    p.write_manifest(&manifest(&one_trigger(
        "fetch",
        sandbox,
        &fetch(server.port),
    )));
    let out = p.run(&["build"]);
    server.reach("after");
    let seen = server.stop();
    assert_eq!(
        seen,
        vec!["before", "after"],
        "the server saw connections other than the test's own: a trigger reached it\n{}",
        out.stderr
    );
    let error = out.fails().stderr;
    assert!(error.contains("trigger 'fetch' failed"), "{error}");
    assert!(error.contains("no network"), "{error}");
    assert_eq!(refs(&p.build_repo()), before);
    error
}

/// How a connection fails in a network namespace of its own: nothing listens on its
/// loopback, and there is no route anywhere else.
fn refused(line: &str) -> bool {
    line.contains("Connection refused") || line.contains("Network is unreachable")
}

#[test]
fn triggers_have_no_network_and_cannot_write_to_the_host() {
    // The project directory is readable in the sandbox, but not writable; the host is
    // read-only; remounting either writable needs capabilities triggers lack.
    let p = project("");
    let marker = p.p("written-by-trigger");
    // On the host, outside the project, in a directory host tools see (read-only); named
    // after this process so that concurrent runs keep out of each other's way.
    let host_marker = std::path::PathBuf::from(format!(
        "/usr/local/ostree-build-escape-{}",
        std::process::id()
    ));
    let host_marker = host_marker.as_path();
    // Both places are writable from outside the sandbox: a failure inside is the sandbox's.
    for m in [marker.as_path(), host_marker] {
        std::fs::write(m, "x").unwrap_or_else(|e| panic!("the test cannot write {m:?}: {e}"));
        std::fs::remove_file(m).unwrap();
    }
    // Each attempt leaves, in the image, what it printed and then its exit status.
    let attempts = [
        ("project", format!("echo x > '{}'", marker.display())),
        ("host", format!("echo x > '{}'", host_marker.display())),
        (
            "remount-host",
            format!(
                "mount -o remount,bind,rw / && echo x > '{}'",
                host_marker.display()
            ),
        ),
        (
            "remount-project",
            format!(
                "mount -o remount,bind,rw '{}' && echo x > '{}'",
                p.path().display(),
                marker.display()
            ),
        ),
    ];
    let script: Vec<String> = attempts
        .iter()
        .map(|(name, cmd)| {
            format!("({cmd}) 2> usr/share/escape/{name}; echo $? >> usr/share/escape/{name}")
        })
        .collect();
    p.write_manifest(&manifest(&format!(
        r#"triggers = [{{ name = "escape", run = "mkdir -p usr/share/escape; {}" }}]"#,
        script.join("; ")
    )));
    p.run(&["build"]).ok();
    let escaped = host_marker.exists();
    let _ = std::fs::remove_file(host_marker);
    assert!(!escaped, "a trigger wrote to the host");
    assert!(!marker.exists(), "a trigger wrote into the project");
    for (name, cmd) in &attempts {
        let said = cat(
            &p.export_repo(),
            IMAGE,
            &format!("/usr/share/escape/{name}"),
        );
        let status = said.lines().last().unwrap_or_default();
        assert!(
            !["0", "127"].contains(&status),
            "`{cmd}` in a trigger did not fail, or did not run (exit status {status}):\n{said}"
        );
        let reason = if name.starts_with("remount") {
            "mount: "
        } else {
            "Read-only file system"
        };
        assert!(
            said.contains(reason),
            "`{cmd}` in a trigger failed for another reason than {reason:?}:\n{said}"
        );
    }

    // The network: curl, then bash's /dev/tcp.
    let mut port = 0;
    let error = assert_no_server_reached(&p, "host", |server| {
        port = server;
        format!("curl -sS --max-time 5 http://127.0.0.1:{server}/from-a-trigger; echo curl exit $?; exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/{server} && printf trigger >&3 && head -c 1 <&3'")
    });
    // Both attempts ran and could not connect (curl's 7: "Failed to connect to host").
    assert!(error.contains("curl exit 7"), "{error}");
    assert!(
        error
            .lines()
            .any(|l| l.contains(&format!("/dev/tcp/127.0.0.1/{port}:")) && refused(l)),
        "bash's connection did not fail:\n{error}"
    );
}

/// An image-mode trigger has no network either: busybox's nc, run from the image, reaches
/// neither a server on the host's loopback nor any address outside (there is no route).
#[test]
fn image_triggers_have_no_network() {
    let p = busybox_project();
    let error = assert_no_server_reached(&p, "image", |port| {
        format!("nc -w 5 192.0.2.1 80 < /dev/null; echo nc exit $?; echo trigger | nc -w 5 127.0.0.1 {port}")
    });
    assert!(error.contains("nc exit 1"), "{error}");
    for address in ["(192.0.2.1)", "(127.0.0.1)"] {
        assert!(
            error
                .lines()
                .any(|l| l.contains("nc: can't connect") && l.contains(address) && refused(l)),
            "nc's connection to {address} did not fail:\n{error}"
        );
    }
}

#[test]
fn client_deploys_the_published_image_with_ostree_admin() {
    let p = project(
        r#"metadata = { "exampleos.channel" = "stable" }
triggers = [{ name = "systemd-presets" }]"#,
    );
    p.file(
        "base/usr/lib/systemd/system/exampled.service",
        "[Service]\nExecStart=/usr/bin/hello\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    )
    .file(
        "base/usr/lib/systemd/system-preset/90-exampleos.preset",
        "enable exampled.service\ndisable *\n",
        0o644,
    );
    p.run(&["build"]).ok();
    let server = HttpServer::start(&p.export_repo());
    let sysroot = p.p("sysroot");
    let deployment = deploy(&sysroot, &server.url, "exampleos", IMAGE);
    assert_eq!(
        std::fs::read_to_string(deployment.join("usr/bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(deployment.join("etc/hostname")).unwrap(),
        "example\n"
    );
    // The systemd-presets trigger enabled the unit; /etc came from /usr/etc.
    assert_eq!(
        std::fs::read_link(
            deployment.join("etc/systemd/system/multi-user.target.wants/exampled.service")
        )
        .unwrap(),
        Path::new("/usr/lib/systemd/system/exampled.service")
    );
    assert!(deployment.join("usr/etc/hostname").is_file());
    let entries = std::fs::read_dir(sysroot.join("boot/loader/entries"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(entries.contains(&format!("vmlinuz-{KVER}")), "{entries}");
    assert!(entries.contains("title exampleos 1.0"), "{entries}");
}

/// Two dir components and one trigger; the image is not bootable (the trigger is the point).
fn reuse_project(components: &str, trigger: &str) -> String {
    format!(
        r#"
[os]
name = "exampleos"
arch = "x86_64"

[component.a]
backend = "dir"
path = "a"

[component.b]
backend = "dir"
path = "b"

[image.standard]
components = [{components}]
triggers = [{trigger}]
"#
    )
}

#[test]
fn reused_trigger_output_equals_running_the_trigger() {
    let gen = r#"{ name = "gen", run = "mkdir -p gen && cat in/x > gen/out", inputs = ["/in"] }"#;
    let p = Project::new(&reuse_project(r#""a""#, gen));
    p.file("a/in/x", "input\n", 0o644)
        .file("b/gen/keep", "from b\n", 0o644);
    p.run(&["build"]).ok();
    let export = p.export_repo();
    assert_eq!(cat(&export, IMAGE, "/gen/out"), "input\n");

    // b now ships /gen/keep: the trigger's inputs did not change, but re-applying "a new
    // directory /gen" would drop b's file, so the trigger runs again.
    p.write_manifest(&reuse_project(r#""a", "b""#, gen));
    let out = p.run(&["build"]).ok();
    assert!(!out.stdout.contains("gen reused"), "{}", out.stdout);
    assert_eq!(cat(&export, IMAGE, "/gen/out"), "input\n");
    assert_eq!(cat(&export, IMAGE, "/gen/keep"), "from b\n");

    // A trigger that rewrites a file to what a component already ships records no change;
    // when the component's file changes, the trigger's output is not the stale one.
    let write = r#"{ name = "write", run = "cat in/x > gen/keep.new && mv gen/keep.new gen/keep", inputs = ["/in"] }"#;
    p.write_manifest(&reuse_project(r#""a", "b""#, write));
    p.file("b/gen/keep", "input\n", 0o644);
    p.run(&["build"]).ok();
    p.file("b/gen/keep", "stale\n", 0o644);
    let out = p.run(&["build"]).ok();
    assert!(!out.stdout.contains("write reused"), "{}", out.stdout);
    assert_eq!(cat(&export, IMAGE, "/gen/keep"), "input\n");

    // `--force` runs triggers whatever their inputs.
    let out = p.run(&["build", "--force"]).ok();
    assert!(!out.stdout.contains("reused"), "{}", out.stdout);
}

#[test]
fn trigger_inputs_are_followed_through_symlinks() {
    let index = r#"{ name = "index", run = "cat lib/data/x > index", inputs = ["/lib/data"] }"#;
    let p = Project::new(&reuse_project(r#""a""#, index));
    p.symlink("a/lib", "usr/lib")
        .file("a/usr/lib/data/x", "v1\n", 0o644);
    std::fs::create_dir_all(p.p("b")).unwrap();
    p.run(&["build"]).ok();
    assert_eq!(cat(&p.export_repo(), IMAGE, "/index"), "v1\n");
    p.file("a/usr/lib/data/x", "v2\n", 0o644);
    let out = p.run(&["build"]).ok();
    assert!(!out.stdout.contains("index reused"), "{}", out.stdout);
    assert_eq!(cat(&p.export_repo(), IMAGE, "/index"), "v2\n");
}
