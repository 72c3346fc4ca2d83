//! `ostree-build new` and `init`: every built-in template is scaffolded and built
//! (`minimal` and `openembedded` offline, `fedora` against a local RPM repository the test
//! creates; `debian` is built and booted by boot.rs), checked with the `ostree` CLI; a
//! template folder and `init` work; bad names, an existing destination, an unknown template
//! and a template that does not make a valid manifest are one-line errors that write nothing.

use ostree_build_tests::*;
use std::path::{Path, PathBuf};

/// Every entry of `dir`, sorted, to compare before and after a command.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `ostree-build ARGS` in `dir` fails with one error line containing `says` (and, when
/// given, a help line containing `hint`), and `dir` is as it was.
fn refused(dir: &Path, args: &[&str], says: &str, hint: &str) {
    let before = listing(dir);
    let run = run_in(dir, args).fails();
    let error = run.one_line_error();
    assert!(error.contains(says), "{args:?}: {error}");
    assert!(run.stderr.contains("  help: "), "{args:?}: {}", run.stderr);
    assert!(run.stderr.contains(hint), "{args:?}: {}", run.stderr);
    assert_eq!(listing(dir), before, "{args:?} wrote something");
}

/// The export repository of the project in `dir` and the ref of its image.
fn image(dir: &Path, os: &str) -> (PathBuf, String) {
    (dir.join("build/repo"), format!("{os}/x86_64/standard"))
}

/// Both repositories pass fsck and hold the refs of the components and the image.
fn check_refs(dir: &Path, os: &str, components: &[&str]) {
    let (build, export) = (dir.join("build/cache-repo"), dir.join("build/repo"));
    fsck(&build);
    fsck(&export);
    let built: Vec<String> = refs(&build).into_iter().map(|(r, _)| r).collect();
    for c in components {
        let r = format!("{os}/x86_64/components/{c}");
        assert!(built.contains(&r), "no {r} in {built:?}");
    }
    let published: Vec<String> = refs(&export).into_iter().map(|(r, _)| r).collect();
    assert_eq!(published, [format!("{os}/x86_64/standard")]);
}

/// The overlay's files are in the image: os-release (over the base's), hostname, the unit.
fn check_overlay(dir: &Path, os: &str) {
    let (repo, rev) = image(dir, os);
    let release = cat(&repo, &rev, "/usr/lib/os-release");
    assert!(release.contains(&format!("\nID={os}\n")), "{release}");
    assert_eq!(cat(&repo, &rev, "/usr/etc/hostname"), format!("{os}\n"));
    let unit = cat(&repo, &rev, "/usr/lib/systemd/system/welcome.service");
    assert!(unit.contains(&format!("Welcome to {os}")), "{unit}");
    let wants = ls(
        &repo,
        &rev,
        "/usr/lib/systemd/system/multi-user.target.wants/welcome.service",
    );
    assert!(wants.ends_with("-> ../welcome.service"), "{wants}");
}

#[test]
fn list_shows_every_template_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_in(tmp.path(), &["new", "--list"]).ok();
    let names: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["debian", "fedora", "minimal", "openembedded"]);
    assert!(run
        .stdout
        .lines()
        .any(|l| l.starts_with("minimal") && l.ends_with("(default)")));
    assert!(listing(tmp.path()).is_empty());
}

#[test]
fn minimal_is_the_default_and_builds_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_in(tmp.path(), &["new", "acme", "--arch", "x86_64"]).ok();
    assert!(
        run.stdout.contains("from the minimal template"),
        "{}",
        run.stdout
    );
    assert_eq!(listing(tmp.path()), ["acme"], "no staging folder left");
    let gitignore = std::fs::read_to_string(tmp.path().join("acme/.gitignore")).unwrap();
    assert_eq!(gitignore, "/build/\n");
    let readme = std::fs::read_to_string(tmp.path().join("acme/README.md")).unwrap();
    assert!(readme.starts_with("# acme\n"), "{readme}");

    let dir = tmp.path().join("acme");
    let built = run_in(&dir, &["build"]).ok();
    assert!(
        built.stdout.contains("kernel 6.1.0-stand-in"),
        "{}",
        built.stdout
    );
    check_refs(&dir, "acme", &["rootfs", "kernel", "overlay"]);
    check_overlay(&dir, "acme");
    let (repo, rev) = image(&dir, "acme");
    assert_eq!(
        cat(&repo, &rev, "/usr/bin/hello"),
        "#!/bin/sh\necho \"hello from acme 1.0\"\n"
    );
    assert!(ls(&repo, &rev, "/usr/bin/hello").starts_with("-00755"));
    assert!(ostree(
        &repo,
        &["ls", &rev, "/usr/lib/modules/6.1.0-stand-in/vmlinuz"]
    )
    .contains("vmlinuz"));
    let again = run_in(&dir, &["build"]).ok();
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
    // Its stand-in kernel deploys but cannot boot: `boot` says so before making a disk.
    if is_root() {
        let boot = run_in(&dir, &["boot", "standard", "--check"]).fails();
        let line = boot.one_line_error();
        assert!(line.contains("not an x86 Linux kernel"), "{}", boot.stderr);
        assert!(boot.stderr.contains("--template debian"), "{}", boot.stderr);
    }
}

#[test]
fn openembedded_imports_the_image_tarball() {
    let p = Project::from_template(&[
        "--template",
        "openembedded",
        "--os-name",
        "acme-oe",
        "--arch",
        "x86_64",
        "--version",
        "2025.1",
    ]);
    // Before the tarball is there, the build says which file it wants.
    let missing = p.run(&["build"]).fails();
    assert!(
        missing.stderr.contains("rootfs.tar.zst"),
        "{}",
        missing.stderr
    );

    // What bitbake writes for a bootable image: its own os-release and hostname, a setuid
    // tool, a kernel and an initramfs with ostree-prepare-root in /boot.
    let initramfs = p.p("initramfs.img");
    std::fs::write(&initramfs, stand_in_initramfs()).unwrap();
    let tar = p.p("rootfs.tar");
    python_tar(
        &tar,
        &format!(
            "dir('./etc'); reg('./etc/hostname', b'qemux86-64\\n')\n\
             dir('./usr'); dir('./usr/lib'); reg('./usr/lib/os-release', b'ID=poky\\nNAME=Poky\\n')\n\
             dir('./usr/bin'); reg('./usr/bin/oe-su', b'#!/bin/sh\\n', 0o4755)\n\
             dir('./boot'); reg('./boot/bzImage-6.1.0-yocto', b'kernel')\n\
             reg('./boot/initramfs-6.1.0-yocto.img', open({:?}, 'rb').read())\n\
             sym('./boot/bzImage', 'bzImage-6.1.0-yocto')",
            initramfs.to_str().unwrap()
        ),
    );
    command("zstd", &["-q", "--rm", tar.to_str().unwrap()]);
    p.run(&["build"]).ok();
    check_refs(p.path(), "acme-oe", &["rootfs", "overlay"]);
    check_overlay(p.path(), "acme-oe");
    let (repo, rev) = image(p.path(), "acme-oe");
    assert!(ls(&repo, &rev, "/usr/bin/oe-su").starts_with("-04755"));
    assert_eq!(
        cat(&repo, &rev, "/usr/lib/modules/6.1.0-yocto/vmlinuz"),
        "kernel"
    );
    let release = cat(&repo, &rev, "/usr/lib/os-release");
    assert!(release.contains("VERSION_ID=2025.1"), "{release}");
    let version = ostree(&repo, &["show", "--print-metadata-key=version", &rev]);
    assert_eq!(version.trim(), "'2025.1'");
}

/// Replace the TOML array `key = [ ... ]` (over several lines) in `text`.
fn replace_array(text: &str, key: &str, with: &str) -> String {
    let start = text
        .find(&format!("\n{key} = ["))
        .unwrap_or_else(|| panic!("no {key} array in\n{text}"))
        + 1;
    let end = start + text[start..].find("\n]\n").expect("closing ]") + 3;
    format!("{}{with}{}", &text[..start], &text[end..])
}

#[test]
fn fedora_builds_from_a_local_rpm_repository() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rpms = build_rpm_repo(tmp.path());
    let p = Project::from_template(&[
        "--template",
        "fedora",
        "--os-name",
        "acme-fedora",
        "--arch",
        "x86_64",
    ]);
    // What a user does to build from a mirror or a local copy: point fedora.repo at it.
    std::fs::write(
        p.p("fedora.repo"),
        format!(
            "[local]\nname=local copy\nbaseurl=file://{}\nenabled=1\ngpgcheck=0\n",
            rpms.display()
        ),
    )
    .unwrap();
    // The fixture repository has three small packages: no kernel and no dracut. Install
    // them, and give the image the stand-in kernel and initramfs instead of the trigger.
    let manifest = std::fs::read_to_string(p.p("ostree-build.toml")).unwrap();
    let manifest = replace_array(&manifest, "packages", "packages = [\"exampleos-base\"]\n");
    let manifest = replace_array(&manifest, "triggers", "");
    p.write_manifest(&manifest);
    p.file("overlay/boot/vmlinuz-6.1.0-stand-in", "kernel", 0o644)
        .file(
            "overlay/boot/initrd.img-6.1.0-stand-in",
            &stand_in_initramfs(),
            0o644,
        );

    p.run(&["build"]).ok();
    check_refs(p.path(), "acme-fedora", &["base", "overlay"]);
    check_overlay(p.path(), "acme-fedora");
    let (repo, rev) = image(p.path(), "acme-fedora");
    assert_eq!(
        cat(&repo, &rev, "/usr/bin/exampleos-hello"),
        "#!/bin/sh\necho hello from exampleos\n"
    );
    let packages = ostree(
        &repo,
        &["show", "--print-metadata-key=ostree-build.packages", &rev],
    );
    assert!(
        packages.contains("exampleos-base-1.0-1.noarch"),
        "{packages}"
    );
    assert!(ostree(&repo, &["ls", "-R", &rev]).contains("/usr/lib/sysimage/rpm/rpmdb.sqlite"));
}

#[test]
fn a_template_folder_is_filled_in_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("my-template");
    std::fs::create_dir_all(t.join("files/usr/share/doc")).unwrap();
    std::fs::create_dir_all(t.join("build/repo")).unwrap();
    std::fs::write(t.join("build/repo/junk"), "not copied").unwrap();
    std::fs::write(t.join("template.toml"), "description = \"mine\"\n").unwrap();
    std::fs::write(
        t.join("ostree-build.toml"),
        "[os]\nname = \"{{os-name}}\"\narch = \"{{arch}}\"\nref-prefix = \"{{ref-prefix}}\"\n\n[component.files]\nbackend = \"dir\"\npath = \"files\"\n\n[image.standard]\ncomponents = [\"files\"]\nversion = \"{{version}}\"\n",
    )
    .unwrap();
    std::fs::write(
        t.join("files/usr/share/doc/about"),
        "{{name}} is {{os-name}} on {{arch}}; ${{ github.ref }} and $HOME stay\n",
    )
    .unwrap();
    run_in(
        tmp.path(),
        &[
            "new",
            "Acme Project",
            "--template",
            "./my-template",
            "--os-name",
            "acme",
            "--ref-prefix",
            "acme/dev",
            "--arch",
            "x86_64",
        ],
    )
    .ok();
    let project = tmp.path().join("Acme Project");
    assert_eq!(listing(&project), ["files", "ostree-build.toml"]);
    assert_eq!(
        std::fs::read_to_string(project.join("files/usr/share/doc/about")).unwrap(),
        "Acme Project is acme on x86_64; ${{ github.ref }} and $HOME stay\n"
    );
    run_in(&project, &["build"]).ok();
    let repo = project.join("build/repo");
    assert_eq!(refs(&repo).len(), 1);
    assert_eq!(ostree(&repo, &["refs"]).trim(), "acme/dev/standard");
    fsck(&repo);

    // A template that does not fill in to a valid manifest writes nothing.
    std::fs::write(t.join("ostree-build.toml"), "[os]\nname = {{os-name}}\n").unwrap();
    refused(
        tmp.path(),
        &["new", "other", "--template", "./my-template"],
        "does not make a valid manifest",
        "",
    );
}

#[test]
fn init_fills_the_current_folder_and_overwrites_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("acme");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine\n").unwrap();
    let run = run_in(&dir, &["init", "--template", "debian"]).ok();
    assert!(
        run.stdout
            .contains("a project here from the debian template"),
        "{}",
        run.stdout
    );
    let manifest = std::fs::read_to_string(dir.join("ostree-build.toml")).unwrap();
    assert!(manifest.contains("name = \"acme\"") && manifest.contains("backend = \"debootstrap\""));
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine\n"
    );
    refused(&dir, &["init"], "already holds", "ostree-build new");
    let overlay = dir.join("overlay/etc/hostname");
    assert_eq!(std::fs::read_to_string(overlay).unwrap(), "acme\n");
}

#[test]
fn bad_names_destinations_and_templates_are_refused_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    refused(
        dir,
        &["new", "My OS"],
        "invalid OS name 'My OS'",
        "e.g. 'my-os'",
    );
    refused(
        dir,
        &["new", "x", "--os-name=-x"],
        "invalid OS name '-x'",
        "e.g. 'x'",
    );
    refused(
        dir,
        &["new", "ok", "--os-name", ".hidden"],
        "invalid OS name '.hidden'",
        "start",
    );
    refused(dir, &["new", "debian"], "reserved", "--template debian");
    refused(dir, &["new", "ostree"], "reserved", "a name of your own");
    refused(
        dir,
        &["new", "acme", "--ref-prefix", "a//b"],
        "invalid --ref-prefix",
        "refs take",
    );
    refused(
        dir,
        &["new", "acme", "--version", "1 0"],
        "invalid --version",
        "VERSION_ID",
    );
    refused(
        dir,
        &["new", "acme", "--template", "debain"],
        "no template named 'debain'",
        "did you mean `debian`?",
    );
    refused(
        dir,
        &["new", "acme", "--template", "./nowhere"],
        "has no ostree-build.toml",
        "a template is a project folder",
    );
    refused(
        dir,
        &["new", "missing/acme"],
        "parent folder",
        "create the parent",
    );

    std::fs::create_dir(dir.join("acme")).unwrap();
    std::fs::write(dir.join("acme/keep.txt"), "mine").unwrap();
    refused(
        dir,
        &["new", "acme"],
        "already exists and is not empty",
        "ostree-build init",
    );
    assert_eq!(listing(&dir.join("acme")), ["keep.txt"]);
    std::fs::write(dir.join("file"), "").unwrap();
    refused(
        dir,
        &["new", "file"],
        "already exists and is not a folder",
        "another name",
    );
}
