//! Checking a tar archive's structure before libostree imports it: libostree 2022.7 stops
//! silently at an entry below a file or a symlink (the commit then lacks every later entry)
//! and aborts the process on a hardlink that climbs out of the archive. One streaming pass
//! (decompressed by the system's gzip, bzip2, xz or zstd; a missing one is an error, not a
//! skipped check) finds such entries first, so they are an error naming the entry, and
//! nothing is imported.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// What an archive entry is, as far as the entries below it care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::File => "regular file",
            Kind::Symlink => "symlink",
            Kind::Other => "special file",
        }
    }
}

/// Check every entry of the archive at `path`. A file that is no tar archive (plain or
/// gzip, bzip2, xz, zstd compressed) is refused: libostree's reader would accept other
/// formats unchecked. A stream that breaks off is left to libostree, which names it
/// truncated or corrupt.
pub fn check(path: &Path) -> Result<()> {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let tool = match &head[..n] {
        [0x1f, 0x8b, ..] => Some("gzip"),
        [b'B', b'Z', b'h', ..] => Some("bzip2"),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some("xz"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        h if h.len() >= 262 && &h[257..262] == b"ustar" => None,
        // An empty archive: only its end-of-archive blocks.
        h if h.len() == 512 && h.iter().all(|b| *b == 0) => return Ok(()),
        _ => bail!(
            "{}: not a tar archive (plain, gzip, bzip2, xz or zstd compressed): corrupt, or of another format\n  help: check that the file is a tar archive (optionally gz, bz2, xz or zst compressed)",
            path.display()
        ),
    };
    let file = std::fs::File::open(path)?;
    match tool {
        None => check_stream(file, path),
        Some(tool) => {
            // Without the tool the archive would go to libostree unchecked: refuse instead.
            let mut child = Command::new(tool)
                .arg("-dc")
                .stdin(file)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{}: cannot run {tool} to check the archive before importing it: {e}\n  help: apt-get install {}",
                        path.display(),
                        if tool == "xz" { "xz-utils" } else { tool }
                    )
                })?;
            let Some(stdout) = child.stdout.take() else {
                bail!("{tool} gave no output pipe");
            };
            let result = check_stream(stdout, path);
            let _ = child.kill();
            let _ = child.wait();
            result
        }
    }
}

fn check_stream(stream: impl Read, archive: &Path) -> Result<()> {
    let mut seen: HashMap<String, Kind> = HashMap::new();
    let mut tar = tar::Archive::new(stream);
    let Ok(entries) = tar.entries() else {
        return Ok(());
    };
    for entry in entries {
        let Ok(entry) = entry else {
            return Ok(());
        };
        let Ok(raw) = entry.path() else {
            return Ok(());
        };
        let raw = raw.to_string_lossy().into_owned();
        let Ok(path) = normalized(&raw) else {
            bail!(
                "{}: entry '{raw}' is refused: its path climbs out of the root with '..'\n  help: rebuild the archive with every path inside the root",
                archive.display()
            );
        };
        if path.is_empty() {
            continue;
        }
        if let Some((parent, kind)) = blocking_parent(&seen, &path) {
            bail!(
                "{}\n  help: an entry below a {} cannot be imported; rebuild the archive with /{parent} as a directory, or without the entries below it",
                refused(archive, &path, &format!("it is below /{parent}, which is a {}", kind.name())),
                kind.name()
            );
        }
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default();
                let target = String::from_utf8_lossy(&target);
                if let Some(problem) = crate::links::unsafe_link(&format!("/{path}"), &target) {
                    bail!("{}: refusing an unsafe entry: {problem}", archive.display());
                }
                Kind::Symlink
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default();
                let target = String::from_utf8_lossy(&target).into_owned();
                let known = normalized(&target).ok().and_then(|t| seen.get(&t).copied());
                if known != Some(Kind::File) {
                    bail!(
                        "{}\n  help: a hardlink must name a regular file that comes earlier in the same archive",
                        refused(archive, &path, &format!("it is a hardlink to '{target}', which is not an earlier regular file of the archive"))
                    );
                }
                Kind::File
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            _ => Kind::Other,
        };
        seen.insert(path, kind);
    }
    Ok(())
}

fn refused(archive: &Path, entry: &str, why: &str) -> String {
    format!("{}: entry /{entry} is refused: {why}", archive.display())
}

/// `path` relative to the root without `.` and empty parts; an error when `..` would climb
/// above it.
fn normalized(path: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!("'{path}' climbs out of the root");
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The nearest ancestor of `path` that the archive made something other than a directory.
fn blocking_parent<'a>(seen: &HashMap<String, Kind>, path: &'a str) -> Option<(&'a str, Kind)> {
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        let parent = &path[..end + i];
        if let Some(kind) = seen.get(parent).filter(|k| **k != Kind::Dir) {
            return Some((parent, *kind));
        }
        end += i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{blocking_parent, normalized, Kind};
    use std::collections::HashMap;

    #[test]
    fn paths_normalize_and_parents_block() {
        assert_eq!(normalized("./usr//bin/./sh").unwrap(), "usr/bin/sh");
        assert_eq!(normalized("usr/../etc").unwrap(), "etc");
        assert!(normalized("../../etc/passwd").is_err());
        let seen: HashMap<String, Kind> = [
            ("usr".into(), Kind::Dir),
            ("usr/lib/x".into(), Kind::Symlink),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            blocking_parent(&seen, "usr/lib/x/passwd"),
            Some(("usr/lib/x", Kind::Symlink))
        );
        assert_eq!(blocking_parent(&seen, "usr/lib/y"), None);
    }
}
