//! Symlink targets an image may hold: none that climbs above the root (a checkout would
//! point outside it) and none longer than a symlink can be. One rule for imports, archive
//! checks and what triggers create.

/// Why the symlink at `path` to `target` cannot be committed, if it cannot: a target that
/// climbs above the root, or one longer than a symlink may be (libostree writes longer ones,
/// and `fsck` then rejects the object).
pub fn unsafe_link(path: &str, target: &str) -> Option<String> {
    if target.len() >= 4096 {
        return Some(format!(
            "{path}: symlink target of {} bytes (at most 4095)",
            target.len()
        ));
    }
    escapes_root(path, target)
        .then(|| format!("{path}: symlink to '{target}' points outside the root"))
}

/// Whether a relative symlink at `path` (absolute within the root) climbs above the root.
/// Absolute targets resolve inside the deployed root, so they are fine.
pub fn escapes_root(path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth: i64 = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .count() as i64
        - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}
