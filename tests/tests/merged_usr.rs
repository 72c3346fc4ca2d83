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

/// The seed's recipe on the build repository: each component checked out with `-U --union`
/// onto one directory (the filesystem follows the links), committed as branch `recipe`.
fn recipe_commit(p: &Project, components: &[&str]) {
    let (repo, co) = (p.build_repo(), p.p("recipe-checkout"));
    for c in components {
        let r = format!("exampleos/x86_64/components/{c}");
        ostree(
            &repo,
            &["checkout", "-U", "--union", &r, co.to_str().unwrap()],
        );
    }
    let tree = format!("dir={}", co.display());
    ostree(&repo, &["commit", "-b", "recipe", "--tree", &tree]);
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
    recipe_commit(&p, &["base", "pkg"]);
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

/// Real Debian packages over a real merged-/usr base: a bookworm minbase from the mirror
/// and four `.deb` payloads (extracted with `dpkg-deb -x`) that ship `/bin`, `/sbin` and
/// `/lib` as directories compose under `conflicts = "error"`; the links stay links, every
/// payload file is there, and the tree lists the same as the seed recipe's checkout onto a
/// filesystem, apart from what the recipe's user-mode checkout (`-U`) drops and the tool
/// keeps: owners, and the setuid and setgid bits (`/usr/bin/passwd` stays 04755).
#[test]
fn real_debian_packages_compose_over_a_merged_usr_base() {
    if !require_root() {
        return;
    }
    let packages = ["iproute2", "procps", "kmod", "iputils-ping"];
    let mut components = vec![("base", "base")];
    components.extend(packages.iter().map(|p| (*p, *p)));
    let mut manifest = dir_components_manifest(&components, "");
    manifest = manifest.replace(
        "[component.base]\nbackend = \"dir\"\npath = \"base\"",
        "[component.base]\nbackend = \"debootstrap\"\ntool = \"mmdebstrap\"\nsuite = \"bookworm\"\nvariant = \"minbase\"\nmirror = \"http://deb.debian.org/debian\"",
    );
    let p = Project::new(&manifest);
    let debs = p.p("debs");
    std::fs::create_dir_all(&debs).unwrap();
    let status = std::process::Command::new("apt-get")
        .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
        .args(packages)
        .current_dir(&debs)
        .status()
        .expect("apt-get download");
    assert!(status.success(), "apt-get download {packages:?} failed");
    let mut payload_files = Vec::new();
    for entry in std::fs::read_dir(&debs).unwrap() {
        let deb = entry.unwrap().path();
        let name = deb.file_name().unwrap().to_string_lossy().into_owned();
        let package = name.split('_').next().unwrap().to_string();
        command(
            "dpkg-deb",
            &["-x", deb.to_str().unwrap(), p.p(&package).to_str().unwrap()],
        );
        let listing = command("dpkg-deb", &["-c", deb.to_str().unwrap()]);
        for line in listing.lines().filter(|l| !l.starts_with('d')) {
            let path = line
                .split_whitespace()
                .nth(5)
                .unwrap()
                .trim_start_matches('.');
            payload_files.push(path.to_string());
        }
    }
    assert!(
        payload_files.iter().any(|f| f.starts_with("/bin/")),
        "{payload_files:?}"
    );
    p.run(&["build"]).ok();
    let repo = p.build_repo();
    for link in ["/bin", "/sbin", "/lib"] {
        assert!(
            ls(&repo, IMAGE, link).starts_with('l'),
            "{link} is no longer a link"
        );
    }
    assert!(ls(&repo, IMAGE, "/usr/bin/sh").ends_with("/usr/bin/sh -> dash"));
    let listing = ostree(&repo, &["ls", "-R", IMAGE]);
    for file in &payload_files {
        let merged = ["/bin/", "/sbin/", "/lib/"]
            .iter()
            .find(|d| file.starts_with(*d))
            .map_or(file.clone(), |_| format!("/usr{file}"));
        assert!(
            listing
                .lines()
                .any(|l| l.split_whitespace().nth(4) == Some(merged.as_str())),
            "{file} is not at {merged}"
        );
    }
    fsck(&repo);

    assert!(ls(&repo, IMAGE, "/usr/bin/passwd").starts_with("-04755 0 0"));
    // The seed's recipe, compared without owners and setuid/setgid bits.
    let names: Vec<&str> = components.iter().map(|(n, _)| *n).collect();
    recipe_commit(&p, &names);
    let without_owners = |rev: &str| -> Vec<String> {
        ostree(&repo, &["ls", "-R", rev])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (kind, mode) = f[0].split_at(1);
                let mode = u32::from_str_radix(mode, 8).unwrap() & !0o6000;
                format!("{kind}{mode:05o} {} {}", f[3], f[4..].join(" "))
            })
            .collect()
    };
    let (ours, recipe) = (without_owners(IMAGE), without_owners("recipe"));
    let only_ours: Vec<&String> = ours.iter().filter(|l| !recipe.contains(l)).collect();
    let only_recipe: Vec<&String> = recipe.iter().filter(|l| !ours.contains(l)).collect();
    assert!(
        only_ours.is_empty() && only_recipe.is_empty(),
        "only in the image: {only_ours:#?}\nonly in the recipe's: {only_recipe:#?}"
    );
}
