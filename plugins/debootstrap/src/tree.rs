//! The bootstrapped tree after the tool is done: what is removed or moved so that it can be
//! committed to OSTree (no device nodes, no host or run-time state, the dpkg database under
//! /usr), and the installed package list read from the dpkg status file.

use anyhow::{Context, Result};
use std::path::Path;

/// Where the dpkg database lives in the committed tree; `/var/lib/dpkg` links to it.
pub const DPKG_DB: &str = "usr/lib/sysimage/dpkg";
const DPKG_LINK_TARGET: &str = "../../usr/lib/sysimage/dpkg";

/// What [`tidy`] did, for the log.
#[derive(Default, Debug)]
pub struct Tidied {
    pub removed: usize,
    pub notes: Vec<String>,
}

/// Make a freshly bootstrapped `root` fit to commit. `host_etc` is the host's /etc, to
/// recognise files the tool copied from the host.
pub fn tidy(root: &Path, host_etc: &Path) -> Result<Tidied> {
    let mut t = Tidied::default();
    // Device nodes (and the rest of /dev): devtmpfs provides them at boot, and the core
    // refuses special files.
    t.removed += empty_dir(&root.join("dev"), |_| true)?;
    // Downloaded packages: kept in the backend's cache, not in the image.
    t.removed += empty_dir(&root.join("var/cache/apt/archives"), |p| {
        p.extension().is_some_and(|e| e == "deb")
    })?;
    t.removed += empty_dir(&root.join("var/cache/apt"), |p| {
        p.extension().is_some_and(|e| e == "bin")
    })?;
    // Caches that only make the result differ from run to run.
    t.removed += empty_dir(&root.join("var/cache/ldconfig"), |p| {
        p.ends_with("aux-cache")
    })?;
    t.removed += empty_dir(&root.join("var/cache/debconf"), |p| {
        p.to_string_lossy().ends_with("-old")
    })?;
    // Package indexes: large, stale at once; `apt update` fetches them.
    t.removed += empty_dir(&root.join("var/lib/apt/lists"), |_| true)?;
    // Logs of the bootstrap itself; directories stay (packages own them).
    t.removed += remove_files_below(&root.join("var/log"))?;
    // Run-time state.
    t.removed += empty_dir(&root.join("run"), |_| true)?;
    t.removed += empty_dir(&root.join("tmp"), |_| true)?;
    for name in ["resolv.conf", "hostname"] {
        let p = root.join("etc").join(name);
        if is_host_copy(&p, &host_etc.join(name)) {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
            t.removed += 1;
            t.notes
                .push(format!("removed /etc/{name} copied from the host"));
        }
    }
    // A machine id baked into an image would be shared by every machine booting it; empty
    // means "generate on first boot".
    let machine_id = root.join("etc/machine-id");
    if machine_id
        .symlink_metadata()
        .is_ok_and(|m| m.is_file() && m.len() > 0)
    {
        std::fs::write(&machine_id, "")
            .with_context(|| format!("cannot empty {}", machine_id.display()))?;
        t.notes.push("emptied /etc/machine-id".into());
    }
    let dbus_id = root.join("var/lib/dbus/machine-id");
    if dbus_id.symlink_metadata().is_ok_and(|m| m.is_file()) {
        std::fs::remove_file(&dbus_id)
            .with_context(|| format!("cannot remove {}", dbus_id.display()))?;
        t.removed += 1;
    }
    move_dpkg_db(root)?;
    t.notes.push(format!(
        "moved /var/lib/dpkg to /{DPKG_DB} (a symlink stays)"
    ));
    Ok(t)
}

/// Move `var/lib/dpkg` to `usr/lib/sysimage/dpkg` and leave a relative symlink behind.
fn move_dpkg_db(root: &Path) -> Result<()> {
    let old = root.join("var/lib/dpkg");
    let new = root.join(DPKG_DB);
    let meta = old.symlink_metadata().with_context(|| {
        format!(
            "{} is missing after the bootstrap: the tree has no dpkg database",
            old.display()
        )
    })?;
    if meta.file_type().is_symlink() {
        // Already a link (a tool or hook did it): leave it.
        return Ok(());
    }
    if let Some(parent) = new.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    if new.symlink_metadata().is_ok() {
        remove_any(&new)?;
    }
    std::fs::rename(&old, &new)
        .with_context(|| format!("cannot move {} to {}", old.display(), new.display()))?;
    std::os::unix::fs::symlink(DPKG_LINK_TARGET, &old)
        .with_context(|| format!("cannot create symlink {}", old.display()))?;
    Ok(())
}

/// Whether the tree's `file` is a byte-for-byte copy of the host's `host`.
fn is_host_copy(file: &Path, host: &Path) -> bool {
    if !file.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    match (std::fs::read(file), std::fs::read(host)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Remove the entries of `dir` (not `dir` itself) that `pick` selects; missing `dir` is
/// fine. Returns how many entries were removed.
fn empty_dir(dir: &Path, pick: impl Fn(&Path) -> bool) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut n = 0;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        if pick(&path) {
            remove_any(&path)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Remove every non-directory below `dir`, keeping the directories.
fn remove_files_below(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            n += remove_files_below(&path)?;
        } else {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

fn remove_any(path: &Path) -> Result<()> {
    let meta = path
        .symlink_metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
    .with_context(|| format!("cannot remove {}", path.display()))
}

/// Installed packages from the dpkg status file under `root`, as `name-version.arch`,
/// sorted.
pub fn packages(root: &Path) -> Result<Vec<String>> {
    let status = root.join(DPKG_DB).join("status");
    let text = std::fs::read_to_string(&status)
        .with_context(|| format!("cannot read the dpkg status file {}", status.display()))?;
    let mut out = parse_status(&text);
    out.sort();
    out.dedup();
    Ok(out)
}

fn parse_status(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut installed) = (None, None, None, false);
        for line in stanza.lines() {
            if line.starts_with(' ') || line.starts_with('\t') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "Package" => name = Some(value),
                "Version" => version = Some(value),
                "Architecture" => arch = Some(value),
                "Status" => installed = value.ends_with(" installed"),
                _ => {}
            }
        }
        if let (Some(n), Some(v), Some(a), true) = (name, version, arch, installed) {
            out.push(format!("{n}-{v}.{a}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file() {
        let text = "Package: dpkg\nEssential: yes\nStatus: install ok installed\nVersion: 1.21.22\nArchitecture: amd64\nDescription: x\n more\n\n\
                    Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: all\n\n\
                    Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u11\n";
        assert_eq!(
            parse_status(text),
            vec!["dpkg-1.21.22.amd64", "base-files-12.4+deb12u11.amd64"]
        );
    }

    #[test]
    fn tidies_a_tree() {
        let dir = std::env::temp_dir().join(format!("debootstrap-tidy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        let host = dir.join("host");
        for d in [
            "dev/pts",
            "var/cache/apt/archives/partial",
            "var/lib/apt/lists/partial",
            "var/lib/dpkg",
            "var/log/apt",
            "etc",
            "usr",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(root.join("var/cache/apt/archives/a_1_all.deb"), "x").unwrap();
        std::fs::write(root.join("var/cache/apt/pkgcache.bin"), "x").unwrap();
        std::fs::write(root.join("var/lib/apt/lists/x_Packages"), "x").unwrap();
        std::fs::write(root.join("var/log/apt/term.log"), "x").unwrap();
        std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
        std::fs::write(root.join("etc/resolv.conf"), "nameserver 1.1.1.1\n").unwrap();
        std::fs::write(host.join("resolv.conf"), "nameserver 1.1.1.1\n").unwrap();
        std::fs::write(root.join("etc/hostname"), "image\n").unwrap();
        std::fs::write(host.join("hostname"), "buildhost\n").unwrap();
        tidy(&root, &host).unwrap();
        assert!(!root.join("dev/pts").exists());
        assert!(root.join("dev").is_dir());
        assert!(!root.join("var/cache/apt/archives/a_1_all.deb").exists());
        assert!(!root.join("var/cache/apt/pkgcache.bin").exists());
        assert!(root.join("var/lib/apt/lists").is_dir());
        assert!(!root.join("var/lib/apt/lists/x_Packages").exists());
        assert!(root.join("var/log/apt").is_dir());
        assert!(!root.join("var/log/apt/term.log").exists());
        assert!(!root.join("etc/resolv.conf").exists());
        assert!(root.join("etc/hostname").exists());
        assert!(root.join("usr/lib/sysimage/dpkg/status").is_file());
        assert_eq!(
            std::fs::read_link(root.join("var/lib/dpkg")).unwrap(),
            Path::new(DPKG_LINK_TARGET)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
