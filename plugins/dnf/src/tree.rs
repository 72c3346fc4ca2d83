//! The installed tree after the tool ran: the rpm database moved where an OSTree system
//! expects it (`/usr/lib/sysimage/rpm`, with `/var/lib/rpm` a relative symlink to it), the
//! tool's own caches, logs and history removed, special files dropped, and the list of
//! installed packages read back from the rpm database.

use anyhow::{bail, Context, Result};
use ostree_build_sdk::EventSink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The rpm database inside the tree (Fedora and rpm-ostree's location).
pub const DBPATH: &str = "usr/lib/sysimage/rpm";
/// The compatibility symlink and its target.
const VAR_LIB_RPM: &str = "var/lib/rpm";
const VAR_LIB_RPM_TARGET: &str = "../../usr/lib/sysimage/rpm";

fn has_rpmdb(dir: &Path) -> bool {
    !dir.symlink_metadata()
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(true)
        && ["rpmdb.sqlite", "Packages", "Packages.db"]
            .iter()
            .any(|f| dir.join(f).is_file())
}

/// The host rpm's default database path (Debian's rpm: `~/.rpmdb`; Fedora:
/// `/usr/lib/sysimage/rpm`; older: `/var/lib/rpm`), relative to `/`.
fn host_dbpath() -> Option<PathBuf> {
    let out = Command::new("rpm")
        .args(["--eval", "%_dbpath"])
        .env("LC_ALL", "C.UTF-8")
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let rel = p.trim_start_matches('/');
    (out.status.success() && !rel.is_empty()).then(|| PathBuf::from(rel))
}

fn move_dir_contents(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let e = e?;
        let dest = to.join(e.file_name());
        if dest.symlink_metadata().is_err() {
            std::fs::rename(e.path(), &dest).with_context(|| {
                format!("cannot move {} to {}", e.path().display(), dest.display())
            })?;
        }
    }
    std::fs::remove_dir_all(from).with_context(|| format!("cannot remove {}", from.display()))
}

/// Put the rpm database at `usr/lib/sysimage/rpm` and make `var/lib/rpm` a relative
/// symlink to it. The tool is told to write it there (see `rpm_macros`); this also moves a
/// database the host's rpm put elsewhere.
pub fn place_rpmdb(root: &Path, events: &mut dyn EventSink) -> Result<()> {
    let target = root.join(DBPATH);
    if !has_rpmdb(&target) {
        let mut candidates: Vec<PathBuf> = host_dbpath().into_iter().collect();
        candidates.extend([PathBuf::from(VAR_LIB_RPM), PathBuf::from("root/.rpmdb")]);
        let Some(found) = candidates.iter().find(|c| has_rpmdb(&root.join(c))) else {
            bail!(
                "the tool left no rpm database in the tree (looked in /{DBPATH} and {})",
                candidates
                    .iter()
                    .map(|c| format!("/{}", c.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        events.info(&format!(
            "moving the rpm database from /{} to /{DBPATH}",
            found.display()
        ));
        move_dir_contents(&root.join(found), &target)?;
    }
    let link = root.join(VAR_LIB_RPM);
    match link.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => {
            if std::fs::read_link(&link)
                .map(|t| t == Path::new(VAR_LIB_RPM_TARGET))
                .unwrap_or(false)
            {
                return Ok(());
            }
            std::fs::remove_file(&link)?;
        }
        Ok(m) if m.is_dir() => move_dir_contents(&link, &target)?,
        Ok(_) => std::fs::remove_file(&link)?,
        Err(_) => {}
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::os::unix::fs::symlink(VAR_LIB_RPM_TARGET, &link)
        .with_context(|| format!("cannot create the symlink {}", link.display()))
}

fn remove_any(path: &Path) -> Result<bool> {
    match path.symlink_metadata() {
        Err(_) => Ok(false),
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            Ok(true)
        }
        Ok(_) => {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            Ok(true)
        }
    }
}

/// Whether a package in the tree's rpm database owns `/rel`.
fn owned(root: &Path, rel: &Path) -> bool {
    Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .arg(format!("--dbpath=/{DBPATH}"))
        .args(["-qf", "--qf", ""])
        .arg(Path::new("/").join(rel))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        // Without rpm, keep the directory.
        .unwrap_or(true)
}

/// Remove `rel` and then its parents while they are empty and no package owns them.
fn prune_empty(root: &Path, rel: &Path) {
    let mut dir = Some(rel);
    while let Some(d) = dir {
        if d.as_os_str().is_empty() {
            break;
        }
        let p = root.join(d);
        let empty = std::fs::read_dir(&p)
            .map(|mut e| e.next().is_none())
            .unwrap_or(false);
        if !empty || owned(root, d) || std::fs::remove_dir(&p).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Remove what the tool leaves that belongs to the build, not to the OS (call it once the
/// rpm database is in place: directories a package owns are kept even when empty):
/// - dnf/yum logs (`var/log/dnf*.log`, `hawkey.log`, `yum.log`), caches (`var/cache/dnf`,
///   `var/cache/yum`) and history (`var/lib/dnf`, `var/lib/yum`);
/// - the copies of host paths (the shared cache directory) dnf creates under the root;
/// - the directories these leave empty, and dnf's empty `etc/dnf/modules.d`, unless a
///   package owns them;
/// - device nodes, fifos and sockets (created at boot; the core refuses them).
pub fn clean(root: &Path, host_paths: &[&Path], events: &mut dyn EventSink) -> Result<()> {
    let mut emptied: Vec<PathBuf> = vec![PathBuf::from("etc/dnf/modules.d")];
    for rel in [
        "var/log/dnf.log",
        "var/log/dnf.rpm.log",
        "var/log/dnf.librepo.log",
        "var/log/hawkey.log",
        "var/log/yum.log",
        "var/log/dnf5.log",
        "var/cache/dnf",
        "var/cache/yum",
        "var/cache/libdnf5",
        "var/lib/dnf",
        "var/lib/yum",
    ] {
        if remove_any(&root.join(rel))? {
            emptied.extend(Path::new(rel).parent().map(Path::to_path_buf));
        }
    }
    for host in host_paths {
        let rel = host.strip_prefix("/").unwrap_or(host);
        if !rel.as_os_str().is_empty() && remove_any(&root.join(rel))? {
            emptied.extend(rel.parent().map(Path::to_path_buf));
        }
    }
    for rel in &emptied {
        prune_empty(root, rel);
    }
    let mut special = Vec::new();
    remove_special(root, root, &mut special)?;
    if !special.is_empty() {
        events.info(&format!(
            "dropped {} device node(s), fifo(s) or socket(s) (created at boot): {}",
            special.len(),
            special.join(", ")
        ));
    }
    Ok(())
}

fn remove_special(root: &Path, dir: &Path, found: &mut Vec<String>) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            remove_special(root, &e.path(), found)?;
        } else if t.is_block_device() || t.is_char_device() || t.is_fifo() || t.is_socket() {
            std::fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
            let rel = e.path();
            found.push(format!(
                "/{}",
                rel.strip_prefix(root).unwrap_or(&rel).display()
            ));
        }
    }
    Ok(())
}

/// The installed packages as name-version-release.arch, sorted, without gpg-pubkey entries.
pub fn installed_packages(root: &Path) -> Result<Vec<String>> {
    let out = Command::new("rpm")
        .arg(format!("--root={}", root.display()))
        .arg(format!("--dbpath=/{DBPATH}"))
        .args(["-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n"])
        .env("LC_ALL", "C.UTF-8")
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run rpm to list the installed packages ({e}); install it (Debian: apt-get install rpm)"
            )
        })?;
    if !out.status.success() {
        bail!(
            "rpm -qa on the installed tree failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut pkgs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("gpg-pubkey-"))
        .map(str::to_string)
        .collect();
    pkgs.sort();
    Ok(pkgs)
}
