//! Static deltas: writing one (our writer, `delta_writer.rs`: libostree's format at the
//! cost of the change, see ARCHITECTURE.md, "Deltas"), and what a delta saves a client,
//! read from its superblock.

use super::{gerr, Delta, Repo, NO_CANCEL};
use anyhow::{Context, Result};

/// What one HTTP request for an object costs a client beside the object, counted in bytes
/// (request and response headers; a round trip is worth more, so this favours the delta):
/// tiny changes make deltas a little larger than their objects yet save requests.
pub const REQUEST_BYTES: u64 = 256;

/// What a static delta costs a client against what it replaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaSize {
    /// The superblock and the parts: what the delta adds to the download.
    pub delta_bytes: u64,
    /// What a client downloads instead: the objects the parts carry as stored in this
    /// repository, the commit and its detached metadata (the superblock embeds both), and
    /// [`REQUEST_BYTES`] per object for the request that fetches it.
    pub replaced_bytes: u64,
    /// Objects left out of the parts (fetched as plain objects either way).
    pub fallbacks: usize,
}

impl DeltaSize {
    /// Whether a client downloads at least a tenth less through the delta than through
    /// the objects. Less is not worth a delta's disk space and time: new files that do not
    /// compress come out of LZMA a few bytes smaller than out of zlib, and no more.
    pub fn saves(&self) -> bool {
        self.delta_bytes.saturating_mul(10) <= self.replaced_bytes.saturating_mul(9)
    }
}

/// The superblock's type (`OSTREE_STATIC_DELTA_SUPERBLOCK_FORMAT`): metadata, timestamp,
/// from, to, the commit, parents, part headers `(version, checksum, size, usize, objects)`
/// and fallbacks.
pub(super) const SUPERBLOCK: &str = "(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))";

impl Repo {
    /// Generate the static delta `from` -> `to`, replacing one that exists.
    pub fn generate_delta(&self, from: &str, to: &str) -> Result<()> {
        self.write_delta(from, to)
            .with_context(|| format!("cannot generate static delta {from} -> {to}"))
    }

    /// The size of the delta `from` -> `to` against the objects its parts carry.
    pub fn delta_size(&self, from: &str, to: &str) -> Result<DeltaSize> {
        let delta = Delta {
            from: Some(from.to_string()),
            to: to.to_string(),
        };
        let dir = self.path.join(super::prune::delta_dir(&delta)?);
        let path = dir.join("superblock");
        let data =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let ty = glib::VariantTy::new(SUPERBLOCK).map_err(|e| anyhow::anyhow!("{e}"))?;
        let sb = glib::Variant::from_data_with_type(data.as_slice(), ty);
        let mut size = DeltaSize {
            delta_bytes: data.len() as u64,
            fallbacks: sb.child_value(7).n_children(),
            ..DeltaSize::default()
        };
        let parts = sb.child_value(6);
        for i in 0..parts.n_children() {
            let part = parts.child_value(i);
            size.delta_bytes += part.child_value(2).get::<u64>().unwrap_or(0);
            size.replaced_bytes += self.objects_storage_size(&part.child_value(4))?;
        }
        size.replaced_bytes += self.commit_bytes(to);
        Ok(size)
    }

    /// The storage size of the objects a part header lists (33 bytes each: the object
    /// type, then the binary checksum).
    fn objects_storage_size(&self, objects: &glib::Variant) -> Result<u64> {
        let bytes = objects.data();
        let mut total = 0;
        for entry in bytes.chunks_exact(33) {
            total += REQUEST_BYTES;
            let objtype = object_type(entry[0])?;
            let checksum = hex::encode(&entry[1..]);
            total += self
                .repo
                .query_object_storage_size(objtype, &checksum, NO_CANCEL)
                .map_err(gerr)
                .with_context(|| format!("cannot stat object {checksum}"))?;
        }
        Ok(total)
    }

    /// The stored size of a commit and its detached metadata (signatures), as a client
    /// without the delta fetches them (0 for what is missing).
    fn commit_bytes(&self, commit: &str) -> u64 {
        [ostree::ObjectType::Commit, ostree::ObjectType::CommitMeta]
            .into_iter()
            .filter_map(|t| {
                self.repo
                    .query_object_storage_size(t, commit, NO_CANCEL)
                    .ok()
            })
            .map(|n| n + REQUEST_BYTES)
            .sum()
    }

    /// How many delta parts this process has written into this repository so far (any
    /// thread), for progress while deltas are written.
    pub fn delta_parts_written(&self) -> u64 {
        super::progress::delta_parts_written(&self.path)
    }

    /// Remove the static delta `from` -> `to`.
    pub fn delete_delta(&self, from: &str, to: &str) -> Result<()> {
        self.delete_static_delta(&Delta {
            from: Some(from.to_string()),
            to: to.to_string(),
        })
    }
}

/// libostree's object type numbers (`OstreeObjectType`) that a delta part carries.
fn object_type(n: u8) -> Result<ostree::ObjectType> {
    Ok(match n {
        1 => ostree::ObjectType::File,
        2 => ostree::ObjectType::DirTree,
        3 => ostree::ObjectType::DirMeta,
        4 => ostree::ObjectType::Commit,
        6 => ostree::ObjectType::CommitMeta,
        _ => anyhow::bail!("unexpected object type {n} in a static delta part"),
    })
}
