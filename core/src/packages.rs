//! Package lists as backends report them (`name-version.arch` strings in the component
//! commit's `ostree-build.packages`): merging them for an image and saying what changed.

use std::collections::BTreeSet;

/// The sorted union of several package lists.
pub fn merge<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let set: BTreeSet<&String> = lists.into_iter().flatten().collect();
    set.into_iter().cloned().collect()
}

/// "N packages" and, when there was an earlier list, what was added and removed
/// (at most five of each named). Empty when there are no packages at all.
pub fn describe(old: Option<&[String]>, new: &[String]) -> String {
    if new.is_empty() && old.unwrap_or_default().is_empty() {
        return String::new();
    }
    let mut text = format!("{} packages", new.len());
    let Some(old) = old else { return text };
    let (old_set, new_set): (BTreeSet<&String>, BTreeSet<&String>) =
        (old.iter().collect(), new.iter().collect());
    let added: Vec<&&String> = new_set.difference(&old_set).collect();
    let removed: Vec<&&String> = old_set.difference(&new_set).collect();
    if added.is_empty() && removed.is_empty() {
        text.push_str(", unchanged");
        return text;
    }
    let show = |sign: char, items: &[&&String]| -> String {
        let mut parts: Vec<String> = items.iter().take(5).map(|p| format!("{sign}{p}")).collect();
        if items.len() > 5 {
            parts.push(format!("{sign}{} more", items.len() - 5));
        }
        parts.join(" ")
    };
    let mut changes = Vec::new();
    if !added.is_empty() {
        changes.push(show('+', &added));
    }
    if !removed.is_empty() {
        changes.push(show('-', &removed));
    }
    text.push_str(&format!(" ({})", changes.join(" ")));
    text
}

/// What changed between two package lists: entries matched by name and architecture.
#[derive(Debug, Default, PartialEq, serde::Serialize)]
pub struct PackageDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<PackageChange>,
}

/// One package in both lists with another version.
#[derive(Debug, PartialEq, serde::Serialize)]
pub struct PackageChange {
    pub name: String,
    pub arch: Option<String>,
    pub from: String,
    pub to: String,
}

/// The packages of `new` that are not in `old`, the reverse, and those whose version
/// changed.
pub fn diff(old: &[String], new: &[String]) -> PackageDiff {
    let (old_set, new_set): (BTreeSet<&String>, BTreeSet<&String>) =
        (old.iter().collect(), new.iter().collect());
    let gone: Vec<&String> = old_set.difference(&new_set).copied().collect();
    let came: Vec<&String> = new_set.difference(&old_set).copied().collect();
    let mut out = PackageDiff::default();
    let mut matched = BTreeSet::new();
    for entry in &came {
        let (name, version, arch) = split(entry);
        let before = gone.iter().find(|g| {
            let (n, _, a) = split(g);
            n == name && a == arch && !matched.contains(*g)
        });
        match before {
            Some(b) => {
                matched.insert(*b);
                out.changed.push(PackageChange {
                    name: name.to_string(),
                    arch: arch.map(str::to_string),
                    from: split(b).1.to_string(),
                    to: version.to_string(),
                });
            }
            None => out.added.push(entry.to_string()),
        }
    }
    out.removed = gone
        .into_iter()
        .filter(|g| !matched.contains(*g))
        .cloned()
        .collect();
    out
}

/// `name-version.arch` as (name, version, arch). The architecture is what follows the
/// last dot when it starts with a letter (`x86_64`, `noarch`, `amd64`); the version
/// starts at the first `-digit` after which at most one more `-` follows (RPM's
/// version-release, Debian's upstream-revision), so `gcc-12-12.2.0-14.amd64` is `gcc-12`.
pub fn split(entry: &str) -> (&str, &str, Option<&str>) {
    let (rest, arch) = match entry.rsplit_once('.') {
        Some((r, a)) if a.starts_with(|c: char| c.is_ascii_alphabetic()) => (r, Some(a)),
        _ => (entry, None),
    };
    let starts = rest
        .match_indices('-')
        .map(|(i, _)| i)
        .filter(|i| rest[i + 1..].starts_with(|c: char| c.is_ascii_digit()));
    for i in starts {
        let version = &rest[i + 1..];
        if version.matches('-').count() <= 1 {
            return (&rest[..i], version, arch);
        }
    }
    (rest, "", arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn describes_added_and_removed_packages() {
        let old = v(&["a-1.noarch", "b-1.noarch"]);
        let new = v(&["a-1.noarch", "b-2.noarch", "c-1.noarch"]);
        assert_eq!(
            describe(Some(&old), &new),
            "3 packages (+b-2.noarch +c-1.noarch -b-1.noarch)"
        );
        assert_eq!(describe(Some(&new), &new), "3 packages, unchanged");
        assert_eq!(describe(None, &new), "3 packages");
        assert_eq!(describe(None, &[]), "");
        assert_eq!(
            merge([&old[..], &new[..]]),
            v(&["a-1.noarch", "b-1.noarch", "b-2.noarch", "c-1.noarch"])
        );
    }

    #[test]
    fn splits_and_matches_packages_by_name_and_arch() {
        assert_eq!(
            split("gcc-12-12.2.0-14.amd64"),
            ("gcc-12", "12.2.0-14", Some("amd64"))
        );
        assert_eq!(
            split("kernel-core-6.5.6-300.fc39.x86_64"),
            ("kernel-core", "6.5.6-300.fc39", Some("x86_64"))
        );
        assert_eq!(split("hello-0.3.0"), ("hello", "0.3.0", None));
        let old = v(&["a-1.noarch", "b-1.noarch", "b-1.x86_64", "gone-2.noarch"]);
        let new = v(&["a-1.noarch", "b-2.noarch", "b-1.x86_64", "c-1.noarch"]);
        let d = diff(&old, &new);
        assert_eq!(d.added, v(&["c-1.noarch"]));
        assert_eq!(d.removed, v(&["gone-2.noarch"]));
        assert_eq!(
            d.changed,
            vec![PackageChange {
                name: "b".into(),
                arch: Some("noarch".into()),
                from: "1".into(),
                to: "2".into()
            }]
        );
    }
}
