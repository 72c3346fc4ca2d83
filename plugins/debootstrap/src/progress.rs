//! Package counts from the bootstrap tool's output, sent as progress (`3/118 packages
//! configured`). debootstrap says `I: Validating NAME VERSION` once per package it fetched
//! or found in its cache, then `I: Unpacking NAME...` and `I: Configuring NAME...` for each
//! (required packages first, then the base system): the validated count is the total of the
//! later phases. mmdebstrap passes dpkg's `Unpacking NAME (VERSION) ...` and `Setting up
//! NAME (VERSION) ...` lines through, with no total; apt, extending a previous build,
//! says how many it installs first (`2 newly installed`).

/// What the output said so far.
#[derive(Default)]
pub struct Packages {
    validated: u64,
    unpacked: u64,
    configured: u64,
}

impl Packages {
    /// The progress a line shows, if any: (done, total, unit).
    pub fn see(&mut self, line: &str) -> Option<(u64, Option<u64>, &'static str)> {
        // apt extending a tree: `0 upgraded, 17 newly installed, 0 to remove and ...`.
        if let Some((_, rest)) = line.split_once(" upgraded, ") {
            if let Some(n) = rest.split(' ').next().and_then(|n| n.parse().ok()) {
                self.validated = n;
            }
            return None;
        }
        if let Some(rest) = line.strip_prefix("I: Validating ") {
            // The indexes are validated too: `I: Validating Packages`.
            if rest.split_whitespace().count() < 2 {
                return None;
            }
            self.validated += 1;
            return Some((self.validated, None, "packages fetched"));
        }
        let (count, unit) = if is_package_step(line, "I: Unpacking ")
            || (line.starts_with("Unpacking ") && line.ends_with(") ..."))
        {
            (&mut self.unpacked, "packages unpacked")
        } else if is_package_step(line, "I: Configuring ")
            || (line.starts_with("Setting up ") && line.ends_with(") ..."))
        {
            (&mut self.configured, "packages configured")
        } else {
            return None;
        };
        *count += 1;
        let total = (self.validated >= *count).then_some(self.validated);
        Some((*count, total, unit))
    }
}

/// `I: Unpacking libc6:amd64...` (one package), not `I: Unpacking the base system...`.
fn is_package_step(line: &str, prefix: &str) -> bool {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix("..."))
        .is_some_and(|name| !name.is_empty() && !name.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debootstrap_output_counts_packages_against_those_fetched() {
        let mut p = Packages::default();
        let lines = [
            "I: Retrieving Packages",
            "I: Validating Packages",
            "I: Retrieving libc6 2.36-9+deb12u4",
            "I: Validating libc6 2.36-9+deb12u4",
            "I: Validating base-files 12.4+deb12u5",
            "I: Unpacking required packages...",
            "I: Unpacking libc6:amd64...",
            "I: Configuring required packages...",
            "I: Configuring libc6:amd64...",
            "I: Configuring base-files...",
            "I: Base system installed successfully.",
        ];
        let seen: Vec<_> = lines.iter().filter_map(|l| p.see(l)).collect();
        assert_eq!(
            seen,
            [
                (1, None, "packages fetched"),
                (2, None, "packages fetched"),
                (1, Some(2), "packages unpacked"),
                (1, Some(2), "packages configured"),
                (2, Some(2), "packages configured"),
            ]
        );
    }

    #[test]
    fn mmdebstrap_passes_dpkg_lines_without_a_total() {
        let mut p = Packages::default();
        assert_eq!(
            p.see("Setting up libc6:amd64 (2.36-9+deb12u4) ..."),
            Some((1, None, "packages configured"))
        );
        assert_eq!(p.see("Setting up the system"), None);
    }

    #[test]
    fn apt_says_how_many_packages_it_installs() {
        let mut p = Packages::default();
        assert_eq!(
            p.see("0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded."),
            None
        );
        assert_eq!(
            p.see("Unpacking less (590-2.1~deb12u2) ..."),
            Some((1, Some(2), "packages unpacked"))
        );
        assert_eq!(
            p.see("Setting up less (590-2.1~deb12u2) ..."),
            Some((1, Some(2), "packages configured"))
        );
    }
}
