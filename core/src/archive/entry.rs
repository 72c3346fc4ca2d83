//! One tar entry, checked on its own: its path made relative and validated, its type, owner,
//! mode, link target and xattrs (PAX `SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`,
//! `RHT.security.selinux`). What an entry means next to the others is `tree`'s business.

use super::stream::Raw;
use super::Refusal;
use base64::Engine as _;

/// Longest path component and path a checkout can create.
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4095;

/// Extended attributes as (name, value) pairs; names without their NUL.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Owner, full mode (type bits included) and xattrs of a file, symlink or directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// One per name, the last value, in the order of each name's last occurrence.
    pub xattrs: Xattrs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir(Meta),
    /// A regular file; its data follows in the archive.
    File(Meta),
    Symlink(Meta, String),
    /// A hardlink to the earlier entry at this (normalised) path.
    Hardlink(String),
}

/// A checked entry: `path` is relative to the root (`""` is the root itself), `shown` the
/// path as the archive wrote it, for messages.
#[derive(Debug)]
pub struct Entry {
    pub shown: String,
    pub path: String,
    /// uid and gid from the header, whatever the type (parents created for it get them).
    pub owner: (u32, u32),
    pub kind: Kind,
}

/// Check an entry as the stream read it.
pub fn check(raw: &Raw) -> Result<Entry, Refusal> {
    let shown = String::from_utf8_lossy(&raw.path).into_owned();
    let refuse = |why: String, help: &'static str| Refusal::entry(&shown, why, help);
    let path = relative_path(&raw.path).map_err(|why| refuse(why, PATH_HELP))?;
    let uid = owner_id(raw.uid, "uid").map_err(|why| refuse(why, OWNER_HELP))?;
    let gid = owner_id(raw.gid, "gid").map_err(|why| refuse(why, OWNER_HELP))?;
    let perms = raw
        .header
        .mode()
        .map_err(|e| refuse(format!("unreadable mode: {e}"), CORRUPT_HELP))?
        & 0o7777;
    let xattrs = xattrs(&raw.pax).map_err(|why| refuse(why, XATTR_HELP))?;
    let meta = |kind_bits: u32| Meta {
        uid,
        gid,
        mode: kind_bits | perms,
        xattrs: xattrs.clone(),
    };
    let link = raw.link.as_deref().unwrap_or_default();
    use tar::EntryType as T;
    let kind = match raw.header.entry_type() {
        T::Directory => Kind::Dir(meta(libc::S_IFDIR)),
        T::Regular | T::Continuous | T::GNUSparse => Kind::File(meta(libc::S_IFREG)),
        T::Symlink => {
            let target = symlink_target(&path, link).map_err(|why| refuse(why, LINK_HELP))?;
            Kind::Symlink(meta(libc::S_IFLNK), target)
        }
        T::Link => {
            let target = relative_path(link).map_err(|why| {
                refuse(
                    format!("a hardlink to '{}': {why}", String::from_utf8_lossy(link)),
                    "a hardlink must name an earlier entry inside the archive",
                )
            })?;
            Kind::Hardlink(target)
        }
        T::Char | T::Block | T::Fifo => {
            return Err(refuse(
                "a device node or fifo".to_string(),
                "device nodes are created at boot (devtmpfs); drop them from the archive",
            ))
        }
        other => {
            return Err(refuse(
                format!("an entry of unsupported type '{}'", other.as_byte() as char),
                "an image holds directories, regular files, symlinks and hardlinks only",
            ))
        }
    };
    if path.is_empty() && !matches!(kind, Kind::Dir(_)) {
        return Err(refuse(
            "the root directory as something other than a directory".to_string(),
            PATH_HELP,
        ));
    }
    Ok(Entry {
        shown,
        path,
        owner: (uid, gid),
        kind,
    })
}

const PATH_HELP: &str = "rebuild the archive with relative paths inside the root";
const OWNER_HELP: &str = "owners are 32-bit ids; rebuild the archive with valid ones";
const CORRUPT_HELP: &str = "the archive is corrupt; rebuild or re-download it";
const LINK_HELP: &str =
    "make such links absolute, or relative without climbing above the root, and shorter than 4096 bytes";
const XATTR_HELP: &str = "rebuild the archive without that extended attribute";

/// `raw` made relative to the root (libostree's rules: leading `/`, `.` and empty parts
/// dropped); `..`, invalid UTF-8, NUL and over-long names are refused.
pub fn relative_path(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "its path is not valid UTF-8".to_string())?;
    if text.contains('\0') {
        return Err("its path contains a NUL byte".to_string());
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("its path climbs out of the root with '..'".to_string()),
            p if p.len() > NAME_MAX => {
                return Err(format!(
                    "a path component of {} bytes (at most {NAME_MAX})",
                    p.len()
                ))
            }
            p => parts.push(p),
        }
    }
    let path = parts.join("/");
    if path.len() > PATH_MAX {
        return Err(format!(
            "a path of {} bytes (at most {PATH_MAX})",
            path.len()
        ));
    }
    Ok(path)
}

fn owner_id(id: u64, what: &str) -> Result<u32, String> {
    u32::try_from(id)
        .ok()
        .filter(|id| *id != u32::MAX)
        .ok_or_else(|| format!("{what} {id} is not a valid owner id"))
}

fn symlink_target(path: &str, raw: &[u8]) -> Result<String, String> {
    let target = std::str::from_utf8(raw)
        .map_err(|_| "a symlink whose target is not valid UTF-8".to_string())?;
    if target.is_empty() {
        return Err("a symlink with an empty target".to_string());
    }
    if target.contains('\0') {
        return Err("a symlink whose target contains a NUL byte".to_string());
    }
    match crate::links::unsafe_link(&format!("/{path}"), target) {
        Some(problem) => Err(problem),
        None => Ok(target.to_string()),
    }
}

/// The entry's xattrs from its PAX records, in archive order, later values replacing
/// earlier ones of the same name. Other keys are the stream's business or ignored.
fn xattrs(pax: &[(Vec<u8>, Vec<u8>)]) -> Result<Xattrs, String> {
    let mut out: Xattrs = Vec::new();
    for (key, value) in pax {
        let (name, value) = if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
            (name.to_vec(), value.clone())
        } else if let Some(name) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
            (percent_decoded(name)?, base64_decoded(value)?)
        } else if key == b"RHT.security.selinux" {
            (b"security.selinux".to_vec(), value.clone())
        } else if key.starts_with(b"GNU.sparse.") {
            return Err(
                "a sparse file in PAX format, which is not supported (create the archive with --format=gnu)"
                    .to_string(),
            );
        } else {
            continue;
        };
        if name.is_empty() || name.contains(&0) {
            return Err(format!(
                "an xattr with an invalid name '{}'",
                String::from_utf8_lossy(&name)
            ));
        }
        out.retain(|(n, _)| *n != name);
        out.push((name, value));
    }
    Ok(out)
}

fn percent_decoded(name: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        if name[i] == b'%' {
            let hex = name
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "an xattr name with a bad %-escape".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(name[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn base64_decoded(value: &[u8]) -> Result<Vec<u8>, String> {
    // libarchive writes the value without padding.
    let trimmed: Vec<u8> = value.iter().copied().filter(|b| *b != b'=').collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .map_err(|e| format!("an xattr value that is not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::{percent_decoded, relative_path};

    #[test]
    fn paths_are_made_relative_like_libostree() {
        assert_eq!(relative_path(b"./usr//bin/./sh/").unwrap(), "usr/bin/sh");
        assert_eq!(relative_path(b"/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(relative_path(b"./").unwrap(), "");
        assert!(relative_path(b"usr/../etc").is_err());
        assert!(relative_path(b"../../etc/passwd").is_err());
        assert!(relative_path(b"a/\xff").is_err());
        assert!(relative_path("a/".repeat(3000).as_bytes()).is_err());
        assert!(relative_path("x".repeat(256).as_bytes()).is_err());
    }

    #[test]
    fn libarchive_xattr_names_are_percent_decoded() {
        assert_eq!(percent_decoded(b"user.a%3Db").unwrap(), b"user.a=b");
        assert!(percent_decoded(b"user.%z").is_err());
    }
}
