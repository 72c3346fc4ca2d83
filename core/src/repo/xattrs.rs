//! Canonical (sorted) xattrs for content objects imported from tar archives.
//!
//! libostree before 2024.10 (ostree#3346) checksums an archive entry's xattrs in the order
//! the archive lists them, while a `bare` repository, the one every deployed system has,
//! reads them back sorted: an OpenEmbedded file with both an SELinux label and a
//! capability then fails `ostree fsck` on the device after a pull. So after an archive
//! import, every object whose xattrs are out of order is written again with them sorted.
//! Finding them costs one `getxattr` per distinct object of the bare-user build repository.

use super::tree::{commit_root, read_dirtree};
use super::worktree::object_meta;
use super::{gerr, Change, NewCommit, Repo, WriteStats, NO_CANCEL};
use anyhow::Result;
use gio::prelude::*;
use std::collections::HashMap;

fn sorted(xattrs: &glib::Variant) -> Option<glib::Variant> {
    let mut items: Vec<(Vec<u8>, glib::Variant)> = xattrs
        .iter()
        .map(|x| {
            (
                x.child_value(0)
                    .fixed_array::<u8>()
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
                x,
            )
        })
        .collect();
    if items.windows(2).all(|w| w[0].0 <= w[1].0) {
        return None;
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    Some(glib::Variant::array_from_iter_with_type(
        glib::VariantTy::new("(ayay)").expect("valid variant type"),
        items.into_iter().map(|(_, v)| v),
    ))
}

impl Repo {
    /// `commit` again, with the objects whose xattrs are out of order rewritten sorted;
    /// `commit` itself when there are none. Returns the commit and how many objects changed.
    pub(super) fn canonicalize_xattrs(
        &self,
        commit: &str,
        new: &NewCommit,
    ) -> Result<(String, usize)> {
        let (contents, _) = commit_root(&self.repo, commit)?;
        let mut files: Vec<(String, String)> = Vec::new();
        let mut dirs = vec![(String::new(), contents)];
        while let Some((dir, contents)) = dirs.pop() {
            let tree = read_dirtree(&self.repo, &contents)?;
            for (name, checksum) in tree.files {
                files.push((format!("{dir}/{name}"), checksum));
            }
            for (name, (c, _)) in tree.dirs {
                dirs.push((format!("{dir}/{name}"), c));
            }
        }
        let mut unsorted: HashMap<String, glib::Variant> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (_, checksum) in &files {
            if !seen.insert(checksum.as_str()) {
                continue;
            }
            if let Some(meta) = object_meta(&self.object_path(checksum))? {
                if let Some(fixed) = sorted(&meta.xattrs) {
                    unsorted.insert(checksum.clone(), fixed);
                }
            }
        }
        if unsorted.is_empty() {
            return Ok((commit.to_string(), 0));
        }
        let (rewritten, _) = self.in_transaction(|repo| {
            let mut rewritten = HashMap::new();
            for (checksum, xattrs) in &unsorted {
                let (input, info, _) = repo.load_file(checksum, NO_CANCEL).map_err(gerr)?;
                let input = input
                    .unwrap_or_else(|| gio::MemoryInputStream::new().upcast::<gio::InputStream>());
                let (stream, len) =
                    ostree::raw_file_to_content_stream(&input, &info, Some(xattrs), NO_CANCEL)
                        .map_err(gerr)?;
                let fixed = repo
                    .write_content(None, &stream, len, NO_CANCEL)
                    .map_err(gerr)?;
                rewritten.insert(checksum.clone(), fixed.to_hex());
            }
            Ok((rewritten, WriteStats::default()))
        })?;
        let changes: Vec<Change> = files
            .into_iter()
            .filter_map(|(path, checksum)| {
                rewritten.get(&checksum).map(|fixed| Change::File {
                    path: path.trim_start_matches('/').to_string(),
                    checksum: fixed.clone(),
                })
            })
            .collect();
        Ok((self.apply_changes(commit, &changes, new)?, rewritten.len()))
    }
}
