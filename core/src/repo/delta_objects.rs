//! The objects a static delta carries: those commit `to` has and commit `from` lacks, found
//! by the same pruned walk as `treediff.rs` (only into directories whose contents checksums
//! differ), so a one-file change costs the change, not the tree.
//!
//! "Lacks" is judged against the directories of `from` the walk reads: an object that
//! `from` holds only in a directory that did not change (a file moved there from elsewhere)
//! is carried again, which costs bytes, never correctness.

use super::tree::{commit_root, read_dirtree};
use super::Repo;
use anyhow::Result;
use std::collections::{HashMap, HashSet};

/// New objects in the order a client should write them: metadata, then content.
#[derive(Debug, Default)]
pub(super) struct NewObjects {
    pub dirtrees: Vec<String>,
    pub dirmetas: Vec<String>,
    /// File objects, each once (hardlinked duplicates share a checksum).
    pub files: Vec<String>,
    /// For a file that replaces another at the same path: the one it replaces, which the
    /// client has (a bsdiff source).
    pub replaced: HashMap<String, String>,
}

/// The walk's state: what `from` holds in the directories read, what `to` adds.
#[derive(Default)]
struct Walk {
    old: HashSet<String>,
    seen: HashSet<String>,
    new: NewObjects,
}

impl Walk {
    fn add(&mut self, list: fn(&mut NewObjects) -> &mut Vec<String>, checksum: &str) {
        if self.seen.insert(checksum.to_string()) {
            list(&mut self.new).push(checksum.to_string());
        }
    }

    /// Drop what `from` turned out to hold after all.
    fn finish(mut self) -> NewObjects {
        for list in [
            &mut self.new.dirtrees,
            &mut self.new.dirmetas,
            &mut self.new.files,
        ] {
            list.retain(|c| !self.old.contains(c));
        }
        self.new
    }
}

impl Repo {
    /// The objects of commit `to` (besides the commit itself) that `from` lacks.
    pub(super) fn new_objects(&self, from: &str, to: &str) -> Result<NewObjects> {
        let (a, am) = commit_root(&self.repo, from)?;
        let (b, bm) = commit_root(&self.repo, to)?;
        let mut walk = Walk::default();
        walk.old.insert(am);
        walk.add(|n| &mut n.dirmetas, &bm);
        self.walk_new(Some(&a), &b, &mut walk)?;
        Ok(walk.finish())
    }

    /// Walk `to`'s directory `b` against `from`'s `a` (None: the directory is new).
    fn walk_new(&self, a: Option<&str>, b: &str, walk: &mut Walk) -> Result<()> {
        if a == Some(b) {
            return Ok(());
        }
        walk.add(|n| &mut n.dirtrees, b);
        let old = match a {
            Some(a) => {
                walk.old.insert(a.to_string());
                read_dirtree(&self.repo, a)?
            }
            None => Default::default(),
        };
        walk.old.extend(old.files.values().cloned());
        walk.old.extend(old.dirs.values().map(|(_, m)| m.clone()));
        let new = read_dirtree(&self.repo, b)?;
        for (name, checksum) in &new.files {
            walk.add(|n| &mut n.files, checksum);
            if let Some(before) = old.files.get(name).filter(|c| *c != checksum) {
                walk.new
                    .replaced
                    .entry(checksum.clone())
                    .or_insert_with(|| before.clone());
            }
        }
        for (name, (contents, meta)) in &new.dirs {
            walk.add(|n| &mut n.dirmetas, meta);
            let before = old.dirs.get(name).map(|(c, _)| c.as_str());
            self.walk_new(before, contents, walk)?;
        }
        Ok(())
    }
}
