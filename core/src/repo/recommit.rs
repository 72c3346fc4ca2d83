//! A new commit over an existing commit's tree (promotion): the tree and its objects are
//! shared, only the commit object is new, so promoting costs one small write however large
//! the image is.

use super::{gerr, MetaValue, Repo, WriteStats, NO_CANCEL};
use anyhow::{anyhow, Context, Result};
use gio::prelude::*;
use ostree::RepoFile;

/// Metadata keys that bind a commit to the ref or collection it was made for: copied onto
/// another ref they would make a verifying client refuse the promoted commit.
const BINDINGS: [&str; 2] = ["ostree.ref-binding", "ostree.collection-binding"];

/// What the new commit says about itself; its metadata is the source's plus `extra`.
pub struct Recommit<'a> {
    pub parent: Option<&'a str>,
    pub subject: &'a str,
    pub extra: &'a [(String, MetaValue)],
    pub timestamp: u64,
}

impl Repo {
    /// Write a commit of `source`'s root tree with `source`'s metadata (less any ref or
    /// collection binding) overridden by `new.extra`. Returns its checksum; no ref moves.
    pub fn recommit(&self, source: &str, new: &Recommit) -> Result<String> {
        let (root, _) = self
            .repo
            .read_commit(source, NO_CANCEL)
            .map_err(gerr)
            .with_context(|| format!("cannot read commit {source}"))?;
        let root = root
            .downcast::<RepoFile>()
            .map_err(|_| anyhow!("libostree returned a root that is not a repository file"))?;
        let metadata = self.carried_metadata(source, new.extra)?;
        let (checksum, _) = self.in_transaction(|repo| {
            let checksum = repo
                .write_commit_with_time(
                    new.parent,
                    Some(new.subject),
                    None,
                    Some(&metadata),
                    &root,
                    new.timestamp,
                    NO_CANCEL,
                )
                .map_err(gerr)
                .with_context(|| format!("cannot write a commit over the tree of {source}"))?;
            Ok((checksum.to_string(), WriteStats::default()))
        })?;
        Ok(checksum)
    }

    fn carried_metadata(
        &self,
        source: &str,
        extra: &[(String, MetaValue)],
    ) -> Result<glib::Variant> {
        let (commit, _) = self
            .repo
            .load_commit(source)
            .map_err(gerr)
            .with_context(|| format!("cannot load commit {source}"))?;
        let dict = glib::VariantDict::new(Some(&commit.child_value(0)));
        for key in BINDINGS {
            dict.remove(key);
        }
        for (key, value) in extra {
            dict.insert_value(key, &value.to_variant());
        }
        Ok(dict.end())
    }
}
