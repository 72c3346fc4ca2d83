//! Modified files in a static delta as bsdiff patches against the file the client already
//! has at the same path (libostree's `'B'` operation; its bspatch reads mendsley's raw
//! format, which the `bsdiff` crate writes). A patch is used only when it is worth it: its
//! weight (control blocks, non-zero difference bytes and extra bytes: what survives LZMA)
//! is at most a quarter of the new file. Regenerated compressed files (an initramfs)
//! weigh about as much as the file and go in whole.

/// Pairs larger than this (old + new) are not diffed: bsdiff's time and memory (about nine
/// times the old file) grow faster than the file.
pub(super) const MAX_PAIR_BYTES: u64 = 32_000_000;

/// Files smaller than this go in whole: a patch saves little and costs a read of the old.
pub(super) const MIN_FILE_BYTES: u64 = 4096;

/// The bsdiff patch turning `old` into `new`, when it is worth sending instead of `new`.
pub(super) fn patch(old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    let mut patch = Vec::new();
    bsdiff::diff(old, new, &mut patch).ok()?;
    (weight(&patch)? <= new.len() / 4).then_some(patch)
}

/// What of a patch LZMA cannot squeeze away: 24 bytes per control block, the difference
/// bytes that are not zero, and the extra bytes. `None` when the patch is malformed.
fn weight(patch: &[u8]) -> Option<usize> {
    let (mut at, mut weight) = (0usize, 0usize);
    while at < patch.len() {
        let ctrl = patch.get(at..at + 24)?;
        let len = |i: usize| -> Option<usize> {
            let raw = i64::from_le_bytes(ctrl[i * 8..i * 8 + 8].try_into().ok()?);
            // Sign and magnitude; lengths are never negative.
            usize::try_from(raw).ok()
        };
        let (diff, extra) = (len(0)?, len(1)?);
        at += 24;
        let diff_bytes = patch.get(at..at.checked_add(diff)?)?;
        at += diff;
        patch.get(at..at.checked_add(extra)?)?;
        at += extra;
        weight += 24 + diff_bytes.iter().filter(|b| **b != 0).count() + extra;
    }
    Some(weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_few_changed_bytes_make_a_light_patch_that_applies() {
        let old = pseudo_random(200_000, 1);
        let mut new = old.clone();
        for i in (0..new.len()).step_by(2048) {
            new[i] ^= 0x5a;
        }
        let p = patch(&old, &new).expect("worth a patch");
        let mut patched = Vec::new();
        bsdiff::patch(&old, &mut p.as_slice(), &mut patched).unwrap();
        assert_eq!(patched, new);
        assert!(
            weight(&p).unwrap() < new.len() / 20,
            "{}",
            weight(&p).unwrap()
        );
    }

    #[test]
    fn unrelated_content_is_not_worth_a_patch() {
        let old = pseudo_random(100_000, 1);
        let new = pseudo_random(100_000, 2);
        assert!(patch(&old, &new).is_none());
    }

    #[test]
    fn a_malformed_patch_has_no_weight() {
        assert_eq!(weight(&[0u8; 10]), None);
        let mut p = vec![0u8; 24];
        p[0] = 100; // 100 difference bytes announced, none there
        assert_eq!(weight(&p), None);
    }
}
