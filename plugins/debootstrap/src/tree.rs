//! The bootstrapped tree after the tool is done: what is removed or moved so that it can be
//! committed to OSTree (no device nodes, no host or run-time state, the dpkg database under
//! /usr), and the installed package list read from the dpkg status file.

use anyhow::{Context, Result};
use std::path::Path;

/// Where the dpkg database lives in the committed tree; `/var/lib/dpkg` links to it.
pub const DPKG_DB: &str = "usr/lib/sysimage/dpkg";

/// What makes a bootstrapped tree fit to commit, as one POSIX shell script so that the
/// same steps run after debootstrap (on the directory, `$2` = `exited`) and inside
/// mmdebstrap as a customize hook (`$2` = `hook`, where /dev, /proc and /sys may still be
/// mounted and the tool cleans /run and /tmp itself). `$1` is the tree. Steps:
/// downloaded packages go (they are in the backend's cache), caches and backups that only
/// make runs differ (dpkg's `status-old` is the status before its last write), package indexes (large, stale at once), the bootstrap's logs (directories stay:
/// packages own them), run-time state and device nodes (devtmpfs provides them), /etc files
/// copied from the host, the machine ids (an image must not share one: empty means
/// "generate at first boot"), and the dpkg database moves under /usr with a symlink left.
pub const TIDY_SCRIPT: &str = r#"set -eu
r="$1"; mode="${2:-exited}"
rm -f "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/cache/ldconfig/aux-cache "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/status-old "$r"/var/lib/dpkg/available-old
if [ -d "$r/var/lib/apt/lists" ]; then find "$r/var/lib/apt/lists" -mindepth 1 -delete; fi
if [ -d "$r/var/log" ]; then find "$r/var/log" ! -type d -delete; fi
if [ "$mode" = exited ]; then
  for d in dev run tmp; do
    if [ -d "$r/$d" ]; then find "$r/$d" -mindepth 1 -delete; fi
  done
fi
for f in resolv.conf hostname; do
  if [ -f "$r/etc/$f" ] && [ ! -L "$r/etc/$f" ] && cmp -s "$r/etc/$f" "/etc/$f"; then
    rm -f "$r/etc/$f"; echo "I: removed /etc/$f copied from the host"
  fi
done
if [ -f "$r/etc/machine-id" ] && [ ! -L "$r/etc/machine-id" ] && [ -s "$r/etc/machine-id" ]; then
  : > "$r/etc/machine-id"; echo "I: emptied /etc/machine-id"
fi
if [ -f "$r/var/lib/dbus/machine-id" ] && [ ! -L "$r/var/lib/dbus/machine-id" ]; then
  rm -f "$r/var/lib/dbus/machine-id"
fi
if [ ! -L "$r/var/lib/dpkg" ]; then
  if [ ! -d "$r/var/lib/dpkg" ]; then
    echo "E: /var/lib/dpkg is missing after the bootstrap: the tree has no dpkg database" >&2
    exit 1
  fi
  mkdir -p "$r/usr/lib/sysimage"
  rm -rf "$r/usr/lib/sysimage/dpkg"
  mv "$r/var/lib/dpkg" "$r/usr/lib/sysimage/dpkg"
  ln -s ../../usr/lib/sysimage/dpkg "$r/var/lib/dpkg"
  echo "I: moved /var/lib/dpkg to /usr/lib/sysimage/dpkg (a symlink stays)"
fi
"#;

/// Run [`TIDY_SCRIPT`] on the directory `root` a tool has finished with.
pub fn tidy(root: &Path) -> Result<String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(TIDY_SCRIPT)
        .arg("sh")
        .arg(root)
        .arg("exited")
        .output()
        .context("cannot run sh to tidy the bootstrapped tree")?;
    if !out.status.success() {
        anyhow::bail!(
            "tidying {} failed: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .replace('\n', "; "))
}

/// Installed packages from the dpkg status file `status`, as `name-version.arch`, sorted.
pub fn packages(status: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = parse_status(&read_status(status)?)
        .into_iter()
        .map(|(n, v, a)| format!("{n}-{v}.{a}"))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The names of the packages installed, per the dpkg status file `status`.
pub fn installed_names(status: &Path) -> Result<std::collections::BTreeSet<String>> {
    Ok(parse_status(&read_status(status)?)
        .into_iter()
        .map(|(n, _, _)| n.to_string())
        .collect())
}

fn read_status(status: &Path) -> Result<String> {
    std::fs::read_to_string(status)
        .with_context(|| format!("cannot read the dpkg status file {}", status.display()))
}

/// (name, version, architecture) of each installed package.
fn parse_status(text: &str) -> Vec<(&str, &str, &str)> {
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
            out.push((n, v, a));
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
            vec![
                ("dpkg", "1.21.22", "amd64"),
                ("base-files", "12.4+deb12u11", "amd64")
            ]
        );
    }

    #[test]
    fn tidies_a_tree() {
        let dir = std::env::temp_dir().join(format!("debootstrap-tidy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
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
        std::fs::write(root.join("var/cache/apt/archives/a_1_all.deb"), "x").unwrap();
        std::fs::write(root.join("var/cache/apt/pkgcache.bin"), "x").unwrap();
        std::fs::write(root.join("var/lib/apt/lists/x_Packages"), "x").unwrap();
        std::fs::write(root.join("var/log/apt/term.log"), "x").unwrap();
        std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
        // A copy of the host's file goes; the host's own /etc is the reference.
        if let Ok(host_resolv) = std::fs::read("/etc/resolv.conf") {
            std::fs::write(root.join("etc/resolv.conf"), host_resolv).unwrap();
        }
        std::fs::write(root.join("etc/hostname"), "image-only name\n").unwrap();
        tidy(&root).unwrap();
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
        assert!(root.join("var/lib/apt/lists").is_dir());
        assert!(root.join("usr/lib/sysimage/dpkg/status").is_file());
        assert_eq!(
            std::fs::read_link(root.join("var/lib/dpkg")).unwrap(),
            Path::new("../../usr/lib/sysimage/dpkg")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
