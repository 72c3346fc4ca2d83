//! What `log` and `diff` read about published commits: the objects a commit reaches and
//! their storage size, GPG signatures in the detached metadata, and static delta sizes.
//! All read-only, stat-only where possible (nothing is decompressed or cached).

use super::{gerr, Repo, NO_CANCEL};
use anyhow::{Context, Result};
use ostree::ObjectName;
use std::collections::HashSet;
use std::path::Path;

/// The objects one commit reaches (itself, its dirtrees, dirmetas and files; not its
/// parents).
pub struct Objects(pub(super) HashSet<ObjectName>);

/// One GPG signature found on a commit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Signature {
    /// The fingerprint gpg reports; only the key id when the key is not in the keyring.
    pub key: String,
    /// The signature checks out against a key of the keyring.
    pub verified: bool,
    /// Why not, when it does not: "public key not available", "signature expired",
    /// "key expired", "key revoked" or "bad signature".
    pub problem: Option<String>,
}

impl Repo {
    /// Every object `commit` reaches.
    pub fn objects(&self, commit: &str) -> Result<Objects> {
        self.repo
            .traverse_commit(commit, 0, NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot walk commit {commit} in {}", self.path.display()))
            .map(Objects)
    }

    /// Bytes on disk of the objects of `objects` that `except` does not have (all of them
    /// without `except`): what a client without a static delta downloads from an
    /// `archive` repository.
    pub fn storage_size(&self, objects: &Objects, except: Option<&Objects>) -> Result<u64> {
        let mut total = 0;
        for o in &objects.0 {
            if except.is_some_and(|e| e.0.contains(o)) {
                continue;
            }
            total += self
                .repo
                .query_object_storage_size(o.object_type(), o.checksum(), NO_CANCEL)
                .map_err(gerr)
                .with_context(|| format!("cannot stat object {}", o.checksum()))?;
        }
        Ok(total)
    }

    /// The GPG signatures on `commit`, each checked against the keys of `keyring` (a
    /// binary `gpg --export` file) when it exists. libostree also trusts its global
    /// keyring directory and the `*.gpg` files at the repository root.
    pub fn signatures(&self, commit: &str, keyring: Option<&Path>) -> Result<Vec<Signature>> {
        if !self.has_signatures(commit)? {
            return Ok(vec![]);
        }
        let keyring = keyring.filter(|k| k.is_file()).map(gio::File::for_path);
        let result = self
            .repo
            .verify_commit_ext(commit, None::<&gio::File>, keyring.as_ref(), NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot check the signatures of commit {commit}"))?;
        Ok((0..result.count_all())
            .map(|i| signature(&result.all(i)))
            .collect())
    }

    /// Whether `commit`'s detached metadata holds any GPG signature.
    pub(super) fn has_signatures(&self, commit: &str) -> Result<bool> {
        let detached = self
            .repo
            .read_commit_detached_metadata(commit, NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot read the detached metadata of {commit}"))?;
        Ok(detached
            .and_then(|d| glib::VariantDict::new(Some(&d)).lookup_value("ostree.gpgsigs", None))
            .is_some_and(|s| s.n_children() > 0))
    }

    /// The size of the static delta `from` -> `to` (the sum of its files), if the
    /// repository has it.
    pub fn static_delta_size(&self, from: &str, to: &str) -> Result<Option<u64>> {
        let names = self
            .repo
            .list_static_delta_names(NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot list the static deltas of {}", self.path.display()))?;
        let wanted = format!("{from}-{to}");
        if !names.iter().any(|n| n.as_str() == wanted) {
            return Ok(None);
        }
        let (Some(from64), Some(to64)) = (b64(from), b64(to)) else {
            return Ok(None);
        };
        let dir = self
            .path
            .join("deltas")
            .join(&from64[..2])
            .join(format!("{}-{to64}", &from64[2..]));
        let mut total = 0;
        for entry in std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read static delta {}", dir.display()))?
        {
            let meta = entry?.metadata()?;
            if meta.is_file() {
                total += meta.len();
            }
        }
        Ok(Some(total))
    }
}

/// One entry of `ostree_gpg_verify_result_get_all`: (valid, sig expired, key expired,
/// key revoked, key missing, fingerprint, ...).
fn signature(v: &glib::Variant) -> Signature {
    let flag = |i: usize| v.child_value(i).get::<bool>().unwrap_or(false);
    let key: String = v.child_value(5).get().unwrap_or_default();
    let problem = if flag(0) {
        None
    } else if flag(4) {
        Some("public key not available")
    } else if flag(1) {
        Some("signature expired")
    } else if flag(2) {
        Some("key expired")
    } else if flag(3) {
        Some("key revoked")
    } else {
        Some("bad signature")
    };
    Signature {
        key,
        verified: flag(0),
        problem: problem.map(str::to_string),
    }
}

/// libostree's "modified base64" of a checksum, as static delta paths use it.
fn b64(checksum: &str) -> Option<String> {
    let bytes = hex::decode(checksum).ok().filter(|b| b.len() == 32)?;
    Some(
        glib::base64_encode(&bytes)
            .trim_end_matches('=')
            .replace('/', "_"),
    )
}
