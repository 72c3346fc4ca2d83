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
}
