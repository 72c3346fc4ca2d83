//! Extending the previous build in place (the sdk's `previous-tree` capability): when only
//! `include` grew, the packages added are installed by apt in a chroot of the previous
//! tree, which the core checked out into the root. The result equals a clean bootstrap of
//! the new list (a test compares them file by file): apt runs with the indexes debootstrap
//! used (kept in the cache, keyed by the suite's `Release`), services are not started
//! (debootstrap's fake start-stop-daemon, here a `policy-rc.d`), /dev holds only the
//! harmless nodes (null, zero, full, random, urandom, tty), and what apt leaves that
//! debootstrap does not is put back: no `extended_states`, dpkg's `available` as
//! debootstrap writes it (the index stanzas of every installed package, in index order).
//! Anything else (another suite, mirror, variant, a package removed, mmdebstrap) is built
//! from scratch.

use crate::{runner, tree, Config, Tool, TOOL_LIMIT};
use anyhow::{bail, Context, Result};
use ostree_build_sdk::{EventSink, Previous, Request};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where apt keeps its indexes in the tree.
const LISTS: &str = "var/lib/apt/lists";
/// What stops maintainer scripts from starting services (invoke-rc.d asks it).
const POLICY_RC_D: &str = "usr/sbin/policy-rc.d";
const EXTENDED_STATES: &str = "var/lib/apt/extended_states";

/// The packages to add to the previous build when extending it gives what a clean
/// bootstrap would (same options but for `include`, which only grew); else why not.
pub fn added_packages(
    cfg: &Config,
    request: &Request,
    previous: &Previous,
) -> Result<Vec<String>, &'static str> {
    if cfg.tool != Tool::Debootstrap {
        return Err("mmdebstrap always builds from scratch");
    }
    previous
        .only_added(request, "include", &["timeout"])
        .ok_or("an option other than a package added to `include` changed")
}

/// Save the indexes debootstrap left in `root` under `cache`, keyed by the suite's
/// `Release` file, for a later extension (before the tree is tidied).
pub fn keep_indexes(cfg: &Config, root: &Path, cache: &Path) -> Result<()> {
    let lists = root.join(LISTS);
    let Some(release) = release_file(cfg, &lists) else {
        return Ok(());
    };
    let key = release_key(cfg, &std::fs::read(&release)?);
    let dest = indexes_dir(cache).join(key);
    if dest.exists() {
        return Ok(());
    }
    let tmp = indexes_dir(cache).join(format!(".new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    for entry in std::fs::read_dir(&lists)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != "lock" {
            std::fs::copy(entry.path(), tmp.join(entry.file_name()))?;
        }
    }
    std::fs::rename(&tmp, &dest).with_context(|| format!("cannot create {}", dest.display()))
}

/// The suite's `Release` among debootstrap's indexes
/// (`deb.debian.org_debian_dists_bookworm_Release`).
fn release_file(cfg: &Config, lists: &Path) -> Option<PathBuf> {
    let suffix = format!("_dists_{}_Release", cfg.suite);
    std::fs::read_dir(lists)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(&suffix))
}

/// Beside the package cache `cache`, which apt sees as its archives directory.
fn indexes_dir(cache: &Path) -> PathBuf {
    cache.parent().unwrap_or(cache).join("indexes")
}

fn release_key(cfg: &Config, release: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(cfg.mirror.as_bytes());
    h.update(b"\0");
    // debootstrap keeps the Release it extracted from InRelease, without the last newline.
    h.update(release.trim_ascii_end());
    format!(
        "{}-{}-{}",
        cfg.suite,
        cfg.debarch,
        &hex::encode(h.finalize())[..16]
    )
}

/// Install `added` into the previous tree at `root` and make it equal a clean bootstrap.
pub fn extend(
    cfg: &Config,
    root: &Path,
    cache: Option<&Path>,
    added: &[String],
    events: &mut dyn EventSink,
) -> Result<()> {
    if added.is_empty() {
        events.info("the previous build has every package of `include`: nothing to install");
        return Ok(());
    }
    events.info(&format!(
        "extending the previous build: installing {} with apt (only `include` grew)",
        added.join(", ")
    ));
    let had_resolv = std::fs::symlink_metadata(root.join("etc/resolv.conf")).is_ok();
    let had_states = std::fs::read(root.join(EXTENDED_STATES)).ok();
    let indexes = restore_indexes(cfg, root, cache)?;
    let ran = in_chroot(cfg, root, cache, added, indexes, had_resolv, events);
    runner::unmount_below(root);
    let _ = std::fs::remove_file(root.join(POLICY_RC_D));
    if !had_resolv {
        let _ = std::fs::remove_file(root.join("etc/resolv.conf"));
    }
    ran?;
    match had_states {
        Some(bytes) => std::fs::write(root.join(EXTENDED_STATES), bytes)?,
        None => {
            let _ = std::fs::remove_file(root.join(EXTENDED_STATES));
        }
    }
    write_available(cfg, root)
}

/// Put the indexes of this `Release` back into the tree; false when none are kept (apt
/// then fetches them).
fn restore_indexes(cfg: &Config, root: &Path, cache: Option<&Path>) -> Result<bool> {
    let Some(cache) = cache else { return Ok(false) };
    let release = crate::mirror::fetch_release(&cfg.mirror, &cfg.suite, cfg.timeout)?;
    let kept = indexes_dir(cache).join(release_key(cfg, &release));
    if !kept.is_dir() {
        return Ok(false);
    }
    let lists = root.join(LISTS);
    std::fs::create_dir_all(&lists)?;
    for entry in std::fs::read_dir(&kept)? {
        let entry = entry?;
        std::fs::copy(entry.path(), lists.join(entry.file_name()))
            .with_context(|| format!("cannot copy {} into the tree", entry.path().display()))?;
    }
    Ok(true)
}

/// Mount what apt and maintainer scripts need, then run apt in the chroot.
fn in_chroot(
    cfg: &Config,
    root: &Path,
    cache: Option<&Path>,
    added: &[String],
    have_indexes: bool,
    had_resolv: bool,
    events: &mut dyn EventSink,
) -> Result<()> {
    std::fs::write(root.join(POLICY_RC_D), "#!/bin/sh\nexit 101\n")?;
    std::fs::set_permissions(
        root.join(POLICY_RC_D),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    if !had_resolv {
        std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"))
            .context("cannot copy /etc/resolv.conf into the tree for apt")?;
    }
    mount(Some("proc"), &root.join("proc"), Some("proc"), 0)?;
    minimal_dev(&root.join("dev"))?;
    if let Some(cache) = cache {
        // The packages go to the backend's cache, not into the tree.
        mount(
            Some(&cache.to_string_lossy()),
            &root.join("var/cache/apt/archives"),
            None,
            libc::MS_BIND,
        )?;
    }
    if !have_indexes {
        events.info("no indexes kept for this Release: apt-get update");
        apt(cfg, root, &["update"], events)?;
    }
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(added.iter().map(String::as_str));
    apt(cfg, root, &args, events)
}

/// The device nodes apt and maintainer scripts use, bound from the host into a tmpfs: not
/// the host's disks.
fn minimal_dev(dev: &Path) -> Result<()> {
    mount(Some("tmpfs"), dev, Some("tmpfs"), 0)?;
    std::fs::create_dir_all(dev.join("shm"))?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(node);
        std::fs::write(&target, b"")
            .with_context(|| format!("cannot create {}", target.display()))?;
        mount(Some(&format!("/dev/{node}")), &target, None, libc::MS_BIND)?;
    }
    Ok(())
}

fn apt(cfg: &Config, root: &Path, args: &[&str], events: &mut dyn EventSink) -> Result<()> {
    let mut cmd = Command::new("chroot");
    cmd.arg(root)
        .arg("apt-get")
        .args(["-o", "Dpkg::Use-Pty=0", "-o", "APT::Install-Suggests=0"])
        .args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    let ran = runner::run(cmd, events, TOOL_LIMIT)?;
    if !matches!(ran.status, Some(s) if s.success()) {
        return Err(crate::failure(cfg, &ran, root));
    }
    Ok(())
}

fn mount(source: Option<&str>, target: &Path, fstype: Option<&str>, flags: u64) -> Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).context("a path with a NUL byte");
    if !target.exists() {
        std::fs::create_dir_all(target)?;
    }
    let source = source.map(c).transpose()?;
    let fstype = fstype.map(c).transpose()?;
    let target_c = c(&target.to_string_lossy())?;
    let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: NUL-terminated strings (or null where mount(2) allows it), no data argument.
    let rc = unsafe {
        libc::mount(
            ptr(&source),
            target_c.as_ptr(),
            ptr(&fstype),
            flags,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot mount {} for apt", target.display()));
    }
    Ok(())
}

/// dpkg's `available` as debootstrap writes it: the index stanza of every installed
/// package, in the order of the indexes (suite, then component).
fn write_available(cfg: &Config, root: &Path) -> Result<()> {
    let installed: BTreeSet<String> = tree::installed_names(&root.join("var/lib/dpkg/status"))?;
    let lists = root.join(LISTS);
    let mut out = String::new();
    let mut done = BTreeSet::new();
    for component in &cfg.components {
        let suffix = format!(
            "_dists_{}_{}_binary-{}_Packages",
            cfg.suite, component, cfg.debarch
        );
        let Some(index) = std::fs::read_dir(&lists)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(&suffix))
        else {
            bail!("apt left no index for {component} in {}", lists.display());
        };
        let text = std::fs::read_to_string(&index)
            .with_context(|| format!("cannot read {}", index.display()))?;
        for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
            let name = stanza
                .lines()
                .find_map(|l| l.strip_prefix("Package: "))
                .unwrap_or("");
            if installed.contains(name) && done.insert(name.to_string()) {
                out.push_str(stanza.trim_start_matches('\n'));
                out.push_str("\n\n");
            }
        }
    }
    let path = root.join("var/lib/dpkg/available");
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What `added_packages` says for a build with `new` options after one with `old`.
    fn added(old: serde_json::Value, new: serde_json::Value) -> Result<Vec<String>, &'static str> {
        let base = json!({"suite": "bookworm", "mirror": "http://deb.debian.org/debian"});
        let with = |extra: serde_json::Value| {
            let mut o = base.clone();
            o.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            o
        };
        let request = crate::tests::request(with(new));
        let previous = Previous {
            options: with(old).as_object().unwrap().clone(),
            ..Default::default()
        };
        added_packages(
            &Config::from_request(&request).unwrap(),
            &request,
            &previous,
        )
    }

    #[test]
    fn only_a_grown_include_extends_the_previous_build() {
        assert_eq!(
            added(
                json!({"include": ["less"]}),
                json!({"include": ["vim-tiny", "less", "curl"]})
            ),
            Ok(vec!["vim-tiny".to_string(), "curl".to_string()])
        );
        assert_eq!(
            added(json!({}), json!({"include": ["less"]})),
            Ok(vec!["less".into()])
        );
        assert_eq!(
            added(json!({"include": ["less"]}), json!({"include": ["less"]})),
            Ok(vec![])
        );
        assert!(added(
            json!({"include": ["less", "curl"]}),
            json!({"include": ["less"]})
        )
        .is_err());
        assert!(added(json!({}), json!({"include": ["less"], "variant": "buildd"})).is_err());
        assert!(added(json!({}), json!({"include": ["less"], "exclude": ["apt"]})).is_err());
        assert!(added(
            json!({}),
            json!({"include": ["less"], "components": ["main", "contrib"]})
        )
        .is_err());
        assert!(added(
            json!({}),
            json!({"include": ["less"], "tool": "mmdebstrap"})
        )
        .is_err());
        assert!(added(json!({"suite": "trixie"}), json!({"include": ["less"]})).is_err());
        // The timeout does not change the tree.
        assert_eq!(
            added(json!({}), json!({"include": ["less"], "timeout": 5})),
            Ok(vec!["less".into()])
        );
    }
}
