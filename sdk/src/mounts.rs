//! The mount table of this process (`/proc/self/mountinfo`), for cleaning up mounts a killed
//! run left behind before deleting through them.

use std::path::{Path, PathBuf};

/// Mount points at or below `dir`, deepest first (the order to unmount them in). `dir` is
/// compared as given and canonicalized, since mountinfo holds resolved paths.
pub fn mount_points_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(&dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
}

/// Undo the octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash)
/// that mountinfo uses in paths.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(super::unescape("/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(super::unescape("/plain\\"), "/plain\\");
        assert_eq!(super::unescape("/end\\04"), "/end\\04");
    }

    #[test]
    fn the_root_mount_is_below_slash() {
        assert!(super::mount_points_below(std::path::Path::new("/"))
            .iter()
            .any(|p| p == std::path::Path::new("/")));
    }
}
