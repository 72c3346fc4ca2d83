//! Package counts from the tool's transaction output, sent as progress (`3/118 packages
//! installed`): dnf 4 and yum 3 end each step's line with `n/N` (`  Installing : bash-5.2
//! 3/118`), dnf 5 starts it with `[ n/N]` (`[ 3/118] Installing bash-0:5.2...`).

/// The transaction steps that install a package (not scriptlets, verification, cleanup).
const INSTALLING: [&str; 4] = ["Installing", "Upgrading", "Reinstalling", "Downgrading"];

/// (done, total) of the packages installed, if `line` is an install step.
pub fn installed(line: &str) -> Option<(u64, u64)> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix('[') {
        // dnf 5: `[ 3/118] Installing NAME ...`
        let (count, step) = rest.split_once(']')?;
        return INSTALLING
            .iter()
            .any(|s| step.trim_start().starts_with(s))
            .then(|| fraction(count.trim()))?;
    }
    let (step, rest) = line.split_once(':')?;
    if !INSTALLING.contains(&step.trim()) {
        return None;
    }
    fraction(rest.split_whitespace().last()?)
}

/// `3/118` as (3, 118), when 3 <= 118.
fn fraction(text: &str) -> Option<(u64, u64)> {
    let (done, total) = text.split_once('/')?;
    let (done, total) = (done.trim().parse().ok()?, total.trim().parse().ok()?);
    (done <= total && total > 0).then_some((done, total))
}

#[cfg(test)]
mod tests {
    use super::installed;

    #[test]
    fn install_steps_of_dnf4_yum3_and_dnf5() {
        let dnf4 = "  Installing       : bash-5.2.15-3.fc38.x86_64                      3/118 ";
        assert_eq!(installed(dnf4), Some((3, 118)));
        assert_eq!(
            installed("  Installing : bash-4.2.46-34.el7.x86_64   1/3"),
            Some((1, 3))
        );
        assert_eq!(
            installed("  Upgrading        : glibc-2.37-1.x86_64   7/9"),
            Some((7, 9))
        );
        let dnf5 = "[ 3/118] Installing bash-0:5.2.26-3.fc40.x86_64 100% |  30.1 MiB/s";
        assert_eq!(installed(dnf5), Some((3, 118)));
        for other in [
            "  Running scriptlet: bash-5.2.15-3.fc38.x86_64                 3/118",
            "  Verifying        : bash-5.2.15-3.fc38.x86_64                 3/118",
            "Installing:",
            "Installed:",
            "[ 1/3] Verify package files 100% |",
            "Total download size: 1.2 M",
        ] {
            assert_eq!(installed(other), None, "{other}");
        }
    }
}
