//! The summary and its signature, replaced together so that a client verifying the summary
//! (`gpg-verify-summary=true`) finds a matching pair at every instant of a publish.
//!
//! libostree's `regenerate_summary` rewrites `summary` in place and then deletes
//! `summary.sig`: between the two, and until someone signs again, clients see a summary
//! without (or with a stale) signature. So the new summary is generated in a shadow
//! repository (a directory under the export repository's `tmp/` whose objects, refs and
//! deltas are symlinks to the real ones), and published in three atomic steps:
//! 1. `summary.sig` := signatures over the served summary AND over the new one;
//! 2. (after a short pause) the new summary is renamed over `summary`;
//! 3. `summary.sig` := signatures over the new summary only.
//!
//! A libostree client reads `summary.sig` first, then `summary`, and accepts a signature
//! blob if any signature in it is valid. The one window left: a client that fetched the
//! old `summary.sig` before step 1 and the summary after step 2; the pause makes that a
//! client taking longer than [`SETTLE`] between its two requests.

use super::sign::{signature_valid, GpgKeys};
use super::{gerr, Repo, NO_CANCEL};
use anyhow::{Context, Result};

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pause between publishing the double signature and the new summary.
pub const SETTLE: Duration = Duration::from_millis(1000);

impl Repo {
    /// Regenerate the summary: signed with every key of `keys` as a pair replaced together
    /// (see the module comment), or libostree's plain regenerate (which drops a stale
    /// `summary.sig`) when there are no keys.
    pub fn write_summary_pair(&self, keys: &GpgKeys) -> Result<()> {
        if keys.is_empty() {
            return self.regenerate_summary();
        }
        let new = self.generate_shadow_summary()?;
        let (summary, sig_path) = (self.path.join("summary"), self.path.join("summary.sig"));
        let old = std::fs::read(&summary).ok();
        let sign = |data: &[u8], previous: Option<glib::Bytes>| {
            self.repo
                .gpg_sign_data(
                    &glib::Bytes::from(data),
                    previous.as_ref(),
                    &keys.keys.iter().map(String::as_str).collect::<Vec<_>>(),
                    keys.homedir
                        .as_ref()
                        .map(|h| h.to_string_lossy())
                        .as_deref(),
                    NO_CANCEL,
                )
                .map_err(gerr)
                .context("cannot sign the summary; the served summary was not changed")
        };
        let new_only = sign(&new.bytes, None)?;
        if let Some(old) = old.filter(|o| *o != new.bytes) {
            let both = sign(&new.bytes, Some(sign(&old, None)?))?;
            crate::fsutil::replace_file(&sig_path, &both)?;
            std::thread::sleep(SETTLE);
        }
        std::fs::rename(&new.path, &summary)
            .with_context(|| format!("cannot replace {}", summary.display()))?;
        std::fs::File::open(&self.path)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", self.path.display()))?;
        crate::fsutil::replace_file(&sig_path, &new_only)?;
        new.remove();
        Ok(())
    }

    /// Whether the served summary carries a valid signature by every key (checked against
    /// the exported public keys in `keyring`).
    pub fn summary_signed_by(&self, keys: &GpgKeys, keyring: &Path) -> Result<bool> {
        let (Ok(summary), Ok(sig)) = (
            std::fs::read(self.path.join("summary")),
            std::fs::read(self.path.join("summary.sig")),
        ) else {
            return Ok(false);
        };
        let sig = glib::Variant::from_bytes::<glib::VariantDict>(&glib::Bytes::from(&sig));
        let Some(blobs) = glib::VariantDict::new(Some(&sig)).lookup_value("ostree.gpgsigs", None)
        else {
            return Ok(false);
        };
        let mut raw = Vec::new();
        for blob in blobs.iter() {
            raw.extend_from_slice(blob.data());
        }
        let keyring = gio::File::for_path(keyring);
        let result = self.repo.gpg_verify_data(
            None,
            &glib::Bytes::from(&summary),
            &glib::Bytes::from(&raw),
            gio::File::NONE,
            Some(&keyring),
            NO_CANCEL,
        );
        Ok(result.is_ok_and(|r| keys.keys.iter().all(|k| signature_valid(&r, k))))
    }

    /// Generate the summary of this repository's current refs and deltas without touching
    /// the served one: in a shadow repository sharing the objects, refs and deltas.
    fn generate_shadow_summary(&self) -> Result<ShadowSummary> {
        let shadow = self.path.join("tmp").join("ostree-build-summary");
        let _ = std::fs::remove_dir_all(&shadow);
        let setup = || -> std::io::Result<()> {
            std::fs::create_dir_all(&shadow)?;
            std::fs::copy(self.path.join("config"), shadow.join("config"))?;
            for dir in ["objects", "refs", "deltas", "delta-indexes"] {
                std::fs::create_dir_all(self.path.join(dir))?;
                std::os::unix::fs::symlink(self.path.join(dir), shadow.join(dir))?;
            }
            std::fs::create_dir_all(shadow.join("tmp"))?;
            std::fs::create_dir_all(shadow.join("state"))
        };
        setup().with_context(|| format!("cannot prepare {}", shadow.display()))?;
        let repo = ostree::Repo::new_for_path(&shadow);
        repo.open(NO_CANCEL)
            .and_then(|()| repo.regenerate_summary(None, NO_CANCEL))
            .map_err(gerr)
            .context("cannot regenerate the summary")?;
        let path = shadow.join("summary");
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read the new summary {}", path.display()))?;
        Ok(ShadowSummary {
            dir: shadow,
            path,
            bytes,
        })
    }
}

/// A summary generated in the shadow repository, not served yet.
struct ShadowSummary {
    dir: PathBuf,
    path: PathBuf,
    bytes: Vec<u8>,
}

impl ShadowSummary {
    fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
