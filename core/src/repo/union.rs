//! The in-memory union of component trees: no checkout, no file read.
//!
//! A directory only one component has is linked lazily (`fill_empty_from_dirtree`, O(1));
//! only directories that several components share are walked, so the cost follows the
//! overlap between components, not the size of the tree.

use super::tree::{commit_root, lookup_entry, read_dirtree};
use super::{gerr, write_commit_from_mtree, NewCommit, Repo, WriteStats};
use anyhow::Result;
use ostree::MutableTree;
use std::collections::HashMap;

/// Conflicting paths between components of one image.
#[derive(Debug)]
pub struct ComposeConflict(pub Vec<String>);

impl std::fmt::Display for ComposeConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.join("\n  "))
    }
}

impl std::error::Error for ComposeConflict {}

impl Repo {
    /// Union the root trees of `commits` ((name, commit) in order) and write the result
    /// as a commit. Identical files are fine; a path provided differently is a
    /// [`ComposeConflict`] unless `last_wins`. Directory metadata: the first one wins.
    pub fn union_commit(
        &self,
        commits: &[(String, String)],
        last_wins: bool,
        commit: &NewCommit,
    ) -> Result<(String, WriteStats)> {
        self.in_transaction(|repo| {
            let root = MutableTree::new();
            let mut union = Union {
                repo,
                owners: HashMap::new(),
                linked: HashMap::new(),
                conflicts: Vec::new(),
                last_wins,
            };
            for (index, (_, checksum)) in commits.iter().enumerate() {
                let (contents, meta) = commit_root(repo, checksum)?;
                if index == 0 {
                    root.fill_empty_from_dirtree(repo, &contents, &meta);
                    union.owners.insert(String::new(), 0);
                    union.linked.insert(String::new(), contents);
                } else if union.linked.get("") != Some(&contents) {
                    union.linked.remove("");
                    union.merge(&root, &contents, "", index)?;
                }
            }
            if !union.conflicts.is_empty() {
                let names: Vec<&str> = commits.iter().map(|(n, _)| n.as_str()).collect();
                let mut lines: Vec<String> = union
                    .conflicts
                    .iter()
                    .take(5)
                    .map(|(path, a, b)| {
                        format!(
                            "{path} is provided differently by '{}' and '{}'",
                            names[*a], names[*b]
                        )
                    })
                    .collect();
                if union.conflicts.len() > 5 {
                    lines.push(format!("... and {} more", union.conflicts.len() - 5));
                }
                return Err(ComposeConflict(lines).into());
            }
            write_commit_from_mtree(repo, &root, commit)
        })
    }
}

struct Union<'a> {
    repo: &'a ostree::Repo,
    /// Which component provided a path (files, and directories linked lazily).
    owners: HashMap<String, usize>,
    /// Directories linked lazily from one component's tree, with that tree's checksum.
    linked: HashMap<String, String>,
    conflicts: Vec<(String, usize, usize)>,
    last_wins: bool,
}

impl Union<'_> {
    fn owner_of(&self, path: &str) -> usize {
        let mut p = path;
        loop {
            if let Some(o) = self.owners.get(p) {
                return *o;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return self.owners.get("").copied().unwrap_or(0),
            }
        }
    }

    /// Forget what was recorded below `path` (its directory was replaced by a file).
    fn forget_below(&mut self, path: &str) {
        let prefix = format!("{path}/");
        self.owners.retain(|k, _| !k.starts_with(&prefix));
        self.linked
            .retain(|k, _| k != path && !k.starts_with(&prefix));
    }

    /// Record a conflict at `path` with component `index`; true if `index` takes the path.
    fn conflict(&mut self, path: &str, index: usize) -> bool {
        if self.last_wins {
            self.owners.insert(path.to_string(), index);
            true
        } else {
            let owner = self.owner_of(path);
            self.conflicts.push((path.to_string(), owner, index));
            false
        }
    }

    fn link_dir(
        &mut self,
        dst: &MutableTree,
        name: &str,
        path: String,
        contents: &str,
        meta: &str,
        index: usize,
    ) -> Result<()> {
        let sub = dst.ensure_dir(name).map_err(gerr)?;
        sub.fill_empty_from_dirtree(self.repo, contents, meta);
        self.linked.insert(path.clone(), contents.to_string());
        self.owners.insert(path, index);
        Ok(())
    }

    fn merge(&mut self, dst: &MutableTree, contents: &str, path: &str, index: usize) -> Result<()> {
        let tree = read_dirtree(self.repo, contents)?;
        for (name, csum) in &tree.files {
            let child = format!("{path}/{name}");
            match lookup_entry(dst, name)? {
                (None, None) => {
                    dst.replace_file(name, csum).map_err(gerr)?;
                    self.owners.insert(child, index);
                }
                (Some(existing), _) if existing.as_str() == csum => {}
                (Some(_), _) => {
                    if self.conflict(&child, index) {
                        dst.replace_file(name, csum).map_err(gerr)?;
                    }
                }
                (None, Some(_)) => {
                    if self.conflict(&child, index) {
                        dst.remove(name, false).map_err(gerr)?;
                        self.forget_below(&child);
                        dst.replace_file(name, csum).map_err(gerr)?;
                    }
                }
            }
        }
        for (name, (sub_contents, sub_meta)) in &tree.dirs {
            let child = format!("{path}/{name}");
            match lookup_entry(dst, name)? {
                (None, None) => self.link_dir(dst, name, child, sub_contents, sub_meta, index)?,
                (None, Some(sub)) => {
                    // Identical subtrees need no walk.
                    if self.linked.get(&child) != Some(sub_contents) {
                        self.linked.remove(&child);
                        self.merge(&sub, sub_contents, &child, index)?;
                    }
                }
                (Some(_), _) => {
                    if self.conflict(&child, index) {
                        dst.remove(name, false).map_err(gerr)?;
                        self.link_dir(dst, name, child, sub_contents, sub_meta, index)?;
                    }
                }
            }
        }
        Ok(())
    }
}
