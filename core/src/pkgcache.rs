//! Package caches under `.ostree-build/cache/<backend>/`: which `.deb` and `.rpm` files a
//! newer version of the same package (same directory, name and architecture) supersedes.
//! Versions are compared with Debian's algorithm (epoch, then upstream and revision
//! segments, `~` sorting first), which orders rpm's `version-release` the same way for
//! the versions distributions use.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A package file's identity and version, read from its name.
#[derive(Debug, PartialEq, Eq)]
pub struct PackageFile {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// `name_version_arch.deb` (an epoch written `%3a`) or `name-version-release.arch.rpm`.
pub fn parse_file_name(file: &str) -> Option<PackageFile> {
    if let Some(stem) = file.strip_suffix(".deb") {
        let mut parts = stem.splitn(3, '_');
        let (name, version, arch) = (parts.next()?, parts.next()?, parts.next()?);
        return Some(PackageFile {
            name: name.into(),
            version: version.replace("%3a", ":").replace("%3A", ":"),
            arch: arch.into(),
        });
    }
    let stem = file.strip_suffix(".rpm")?;
    let (rest, arch) = stem.rsplit_once('.')?;
    let (rest, release) = rest.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some(PackageFile {
        name: name.into(),
        version: format!("{version}-{release}"),
        arch: arch.into(),
    })
}

/// Debian version order: `[epoch:]upstream[-revision]`.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u.to_string(), r.to_string()),
            None => (epoch, rest.to_string(), String::new()),
        }
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(&ua, &ub))
        .then_with(|| compare_part(&ra, &rb))
}

/// dpkg's verrevcmp: alternate non-digit runs (letters before other characters, `~`
/// before everything, even the end) and numbers.
fn compare_part(a: &str, b: &str) -> Ordering {
    let order = |c: Option<char>| -> i32 {
        match c {
            None => 0,
            Some('~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    };
    let (mut a, mut b) = (a.chars().peekable(), b.chars().peekable());
    while a.peek().is_some() || b.peek().is_some() {
        loop {
            let (ca, cb) = (a.peek().copied(), b.peek().copied());
            let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
            if (ca.is_none() || digit(ca)) && (cb.is_none() || digit(cb)) {
                break;
            }
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            a.next();
            b.next();
        }
        let number = |it: &mut std::iter::Peekable<std::str::Chars>| {
            let mut digits = String::new();
            while let Some(c) = it.peek().copied().filter(char::is_ascii_digit) {
                digits.push(c);
                it.next();
            }
            let trimmed = digits.trim_start_matches('0').to_string();
            (trimmed.len(), trimmed)
        };
        let (na, nb) = (number(&mut a), number(&mut b));
        if na != nb {
            return na.cmp(&nb);
        }
    }
    Ordering::Equal
}

/// Package files under `dir` (recursively) that a newer version of the same package in
/// the same directory supersedes, each with the file that supersedes it.
pub fn superseded(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    type Key = (PathBuf, String, String);
    let mut groups: BTreeMap<Key, Vec<(String, PathBuf)>> = BTreeMap::new();
    for (path, p) in files {
        let key = (path.parent().unwrap_or(dir).to_path_buf(), p.name, p.arch);
        groups.entry(key).or_default().push((p.version, path));
    }
    let mut out = Vec::new();
    for mut versions in groups.into_values() {
        versions.sort_by(|a, b| compare_versions(&a.0, &b.0).then_with(|| a.1.cmp(&b.1)));
        if let Some((_, newest)) = versions.pop() {
            out.extend(versions.into_iter().map(|(_, old)| (old, newest.clone())));
        }
    }
    out.sort();
    out
}

fn collect(dir: &Path, out: &mut Vec<(PathBuf, PackageFile)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if md.is_dir() {
            collect(&path, out);
        } else if md.is_file() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if let Some(p) = parse_file_name(&name) {
                out.push((path, p));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn debian_order() {
        assert_eq!(compare_versions("1.0", "1.0"), Equal);
        assert_eq!(compare_versions("1.10", "1.9"), Greater);
        assert_eq!(compare_versions("1.0~rc1", "1.0"), Less);
        assert_eq!(compare_versions("1:0.9", "2.0"), Greater);
        assert_eq!(compare_versions("2.36-9+deb12u3", "2.36-9+deb12u10"), Less);
        assert_eq!(compare_versions("1.0a", "1.0"), Greater);
        assert_eq!(compare_versions("1.0-1", "1.0-1.1"), Less);
        // Cases checked against `dpkg --compare-versions`.
        for (a, b) in [
            ("1~~", "1~~a"),
            ("1~~a", "1~"),
            ("1~", "1"),
            ("1.0", "1.0+dfsg"),
            ("1.0", "1.0+b1"),
            ("1.2", "1.2.3"),
            ("1.0-1", "1.0-rc1"),
        ] {
            assert_eq!(compare_versions(a, b), Less, "{a} < {b}");
            assert_eq!(compare_versions(b, a), Greater, "{b} > {a}");
        }
        assert_eq!(compare_versions("0:1.0", "1.0"), Equal);
    }

    #[test]
    fn file_names() {
        let d = parse_file_name("libc6_2.36-9+deb12u3_amd64.deb").unwrap();
        assert_eq!(
            (d.name.as_str(), d.version.as_str()),
            ("libc6", "2.36-9+deb12u3")
        );
        let e = parse_file_name("bash_1%3a5.2-1_amd64.deb").unwrap();
        assert_eq!(e.version, "1:5.2-1");
        let r = parse_file_name("glibc-common-2.38-16.fc39.x86_64.rpm").unwrap();
        assert_eq!(
            (r.name.as_str(), r.version.as_str(), r.arch.as_str()),
            ("glibc-common", "2.38-16.fc39", "x86_64")
        );
        assert!(parse_file_name("Release").is_none());
    }
}
