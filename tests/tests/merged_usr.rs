//! Union through directory symlinks (merged /usr): a later component's `/bin/...` goes
//! through the base's `/bin -> usr/bin` into `/usr/bin`, as the seed's `checkout --union`
//! onto a filesystem and dpkg do, but inside the image (an absolute link never reaches the
//! host); links to a file or to nothing stay conflicts; every conflict is reported.

use ostree_build_tests::*;

const IMAGE: &str = "exampleos/x86_64/standard";

/// Two dir components, `base` then `pkg`, in one image.
fn manifest(extra: &str) -> String {
    dir_components_manifest(&[("base", "base"), ("pkg", "pkg")], extra)
}

/// A merged-/usr base: /bin, /lib and /sbin are links into /usr. Relative ones only: the
/// recipe's checkout onto a filesystem would follow an absolute link out to the host.
fn merged_base(p: &Project) {
    p.file("base/usr/bin/sh", "#!shell\n", 0o755)
        .file("base/usr/lib/os-release", "ID=test\n", 0o644)
        .file("base/usr/sbin/init", "init\n", 0o755)
        .symlink("base/bin", "usr/bin")
        .symlink("base/lib", "usr/lib")
        .symlink("base/sbin", "usr/sbin");
}

#[test]
fn package_directories_go_through_the_base_symlinks_like_checkout_union() {
    let p = Project::new(&manifest(""));
    merged_base(&p);
    // A .deb-style payload: real /bin, /lib and /sbin directories.
    p.file("pkg/bin/bash", "#!bash\n", 0o755)
        .file("pkg/lib/systemd/systemd", "systemd\n", 0o755)
        .file("pkg/sbin/ldconfig", "ldconfig\n", 0o700)
        .symlink("pkg/bin/rbash", "bash")
        .file("pkg/usr/share/doc/bash/copyright", "GPL\n", 0o644);
    let run = p.run(&["build"]).ok();
    assert!(
        run.stdout.contains("Composed image standard"),
        "{}",
        run.stdout
    );
    let repo = p.build_repo();
    for (link, target) in [
        ("/bin", "usr/bin"),
        ("/lib", "usr/lib"),
        ("/sbin", "usr/sbin"),
    ] {
        let entry = ls(&repo, IMAGE, link);
        assert!(
            entry.starts_with('l') && entry.ends_with(&format!("{link} -> {target}")),
            "{entry}"
        );
    }
    assert_eq!(cat(&repo, IMAGE, "/usr/bin/sh"), "#!shell\n");
    assert_eq!(cat(&repo, IMAGE, "/usr/bin/bash"), "#!bash\n");
    assert_eq!(cat(&repo, IMAGE, "/usr/lib/systemd/systemd"), "systemd\n");
    assert_eq!(cat(&repo, IMAGE, "/usr/lib/os-release"), "ID=test\n");
    assert!(ls(&repo, IMAGE, "/usr/sbin/ldconfig").starts_with("-00700 0 0"));
    assert!(ls(&repo, IMAGE, "/usr/bin/rbash").ends_with("/usr/bin/rbash -> bash"));
    fsck(&repo);
    fsck(&p.export_repo());

    // The seed's recipe: check both components out with --union onto one directory (the
    // filesystem follows the links), commit it; the trees list the same entries.
    let co = p.p("recipe-checkout");
    for c in ["base", "pkg"] {
        let r = format!("exampleos/x86_64/components/{c}");
        ostree(
            &repo,
            &["checkout", "-U", "--union", &r, co.to_str().unwrap()],
        );
    }
    ostree(
        &repo,
        &[
            "commit",
            "-b",
            "recipe",
            "--tree",
            &format!("dir={}", co.display()),
        ],
    );
    let listing = |rev: &str| ostree(&repo, &["ls", "-R", rev]);
    assert_eq!(listing(IMAGE), listing("recipe"));
}

/// An absolute link resolves inside the image, never on the host (where the recipe's
/// checkout onto a filesystem would write).
#[test]
fn absolute_links_resolve_inside_the_image() {
    let p = Project::new(&manifest(""));
    p.file("base/usr/sbin/init", "init\n", 0o755)
        .symlink("base/sbin", "/usr/sbin")
        .symlink("base/usr/libexec", "/usr/lib/../lib")
        .file("base/usr/lib/placeholder", "", 0o644)
        .file("pkg/sbin/ostree-build-merged-usr-test", "tool\n", 0o755)
        .file("pkg/usr/libexec/helper", "helper\n", 0o755);
    p.run(&["build"]).ok();
    let repo = p.build_repo();
    assert_eq!(
        cat(&repo, IMAGE, "/usr/sbin/ostree-build-merged-usr-test"),
        "tool\n"
    );
    assert_eq!(cat(&repo, IMAGE, "/usr/lib/helper"), "helper\n");
    assert!(ls(&repo, IMAGE, "/sbin").ends_with("/sbin -> /usr/sbin"));
    assert!(!std::path::Path::new("/usr/sbin/ostree-build-merged-usr-test").exists());
}

#[test]
fn links_to_a_file_or_to_nothing_are_conflicts() {
    // (Links that climb above the root are refused when the component is imported.)
    for (link, target) in [
        ("bin", "usr/bin/sh"),
        ("bin", "/usr/bin/sh"),
        ("bin", "missing"),
    ] {
        let p = Project::new(&manifest(""));
        p.file("base/usr/bin/sh", "#!shell\n", 0o755)
            .symlink(&format!("base/{link}"), target)
            .file("pkg/bin/bash", "#!bash\n", 0o755);
        let run = p.run(&["build"]).fails();
        assert!(
            run.stderr
                .contains("/bin is provided differently by 'base' and 'pkg'"),
            "{link} -> {target}: {}",
            run.stderr
        );
        assert!(refs(&p.build_repo()).iter().all(|(r, _)| r != IMAGE));
    }
}

#[test]
fn a_later_symlink_over_an_earlier_directory_is_a_conflict() {
    let p = Project::new(&manifest(""));
    p.file("base/bin/sh", "#!shell\n", 0o755)
        .file("base/usr/bin/env", "env\n", 0o755)
        .symlink("pkg/bin", "usr/bin");
    let run = p.run(&["build"]).fails();
    assert!(
        run.stderr
            .contains("/bin is provided differently by 'base' and 'pkg'"),
        "{}",
        run.stderr
    );
}

#[test]
fn every_conflict_is_reported_in_a_file_and_in_json() {
    let p = Project::new(&manifest(""));
    for i in 0..28 {
        p.file(&format!("base/usr/share/f{i:02}"), "base\n", 0o644)
            .file(&format!("pkg/usr/share/f{i:02}"), "pkg\n", 0o644);
    }
    let run = p.run(&["build"]).fails();
    let shown = run.stderr.matches("is provided differently").count();
    assert_eq!(shown, 20, "{}", run.stderr);
    let list = p.p("build/.ostree-build/images/standard/conflicts.txt");
    assert!(
        run.stderr.contains(&format!(
            "... and 8 more; all 28 are listed in {}",
            list.display()
        )),
        "{}",
        run.stderr
    );
    let listed = std::fs::read_to_string(&list).unwrap();
    assert_eq!(listed.lines().count(), 28, "{listed}");
    assert!(listed.contains("/usr/share/f27 is provided differently by 'base' and 'pkg'"));

    let json = p.run(&["build", "--message-format", "json"]).fails();
    let event = json
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "conflicts")
        .unwrap_or_else(|| panic!("no conflicts event:\n{}", json.stdout));
    assert_eq!(event["image"], "standard");
    let all = event["conflicts"].as_array().unwrap();
    assert_eq!(all.len(), 28);
    assert_eq!(all[27]["path"], "/usr/share/f27");
    assert_eq!(all[27]["first"], "base");
    assert_eq!(all[27]["second"], "pkg");
}
