//! "Did you mean" suggestions for mistyped names (keys, backends, triggers, suites): one
//! rule everywhere, so every error suggests the same way.

/// The closest candidate to `word`, if one is close enough to be a likely typo. `word`
/// itself is never suggested.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let names = ["debootstrap", "dnf", "dir", "tarball"];
        assert_eq!(did_you_mean("debootstarp", names), Some("debootstrap"));
        assert_eq!(did_you_mean("tarbal", names), Some("tarball"));
        assert_eq!(did_you_mean("xyzzy-frobnicate", names), None);
        assert_eq!(did_you_mean("dnf", ["dnf"]), None);
    }
}
