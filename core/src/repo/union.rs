//! The in-memory union of component trees: no checkout, no file read.
//!
//! A directory only one component has is linked lazily (`fill_empty_from_dirtree`, O(1));
//! only directories that several components share are walked, so the cost follows the
//! overlap between components, not the size of the tree.
//!
//! A later component's directory at a path where the union already has a symlink that
//! resolves, inside the image, to a directory goes through the link (merged /usr: a
//! package's `/bin/bash` lands in `/usr/bin` when the base has `/bin -> usr/bin`), as
//! `checkout --union` onto a filesystem and dpkg do. A symlink that leaves the image (`..`
//! above the root) or names a non-directory is a conflict, as is a later symlink over an
//! earlier directory.

use super::tree::{
    commit_root, lookup_entry, read_dirtree, symlink_target, walk, AboveRoot, Node, Walked,
};
use super::{gerr, write_commit_from_mtree, NewCommit, Repo, WriteStats};
use anyhow::Result;
use ostree::MutableTree;
use std::collections::HashMap;

/// One path two components provide differently.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Conflict {
    pub path: String,
    /// The component that provided it first, and the one that provides it differently.
    pub first: String,
    pub second: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is provided differently by '{}' and '{}'",
            self.path, self.first, self.second
        )
    }
}

/// Every conflicting path between the components of one image, in union order.
#[derive(Debug)]
pub struct ComposeConflict(pub Vec<Conflict>);

impl std::fmt::Display for ComposeConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(Conflict::to_string).collect();
        write!(f, "{}", lines.join("\n  "))
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
                root: root.clone(),
                link_targets: HashMap::new(),
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
                let name = |i: usize| commits[i].0.clone();
                let conflicts = union
                    .conflicts
                    .iter()
                    .map(|(path, a, b)| Conflict {
                        path: path.clone(),
                        first: name(*a),
                        second: name(*b),
                    })
                    .collect();
                return Err(ComposeConflict(conflicts).into());
            }
            write_commit_from_mtree(repo, &root, commit)
        })
    }
}

struct Union<'a> {
    repo: &'a ostree::Repo,
    /// The union so far, for resolving symlinks.
    root: MutableTree,
    /// Symlink targets by file checksum (`None`: a regular file).
    link_targets: HashMap<String, Option<String>>,
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
                (Some(file), _) => match self.dir_behind_link(&child, &file)? {
                    Some((target, target_dir)) => {
                        self.merge_into(&target_dir, sub_contents, &target, index)?
                    }
                    None => {
                        if self.conflict(&child, index) {
                            dst.remove(name, false).map_err(gerr)?;
                            self.link_dir(dst, name, child, sub_contents, sub_meta, index)?;
                        }
                    }
                },
            }
        }
        Ok(())
    }

    /// Merge into a directory reached through a symlink: what was linked lazily there, or
    /// above it, no longer equals one component's tree.
    fn merge_into(
        &mut self,
        dir: &MutableTree,
        contents: &str,
        path: &str,
        index: usize,
    ) -> Result<()> {
        self.linked
            .retain(|k, _| path != k && !path.starts_with(&format!("{k}/")));
        self.merge(dir, contents, path, index)
    }

    /// When the file `checksum` at `path` is a symlink that resolves, inside the union, to
    /// a directory: that directory's path (`/usr/bin`; the root is "") and tree.
    fn dir_behind_link(
        &mut self,
        path: &str,
        checksum: &str,
    ) -> Result<Option<(String, MutableTree)>> {
        let Some(target) = self.link_target(checksum)? else {
            return Ok(None);
        };
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        let full = match target.starts_with('/') {
            true => target,
            false => format!("{parent}/{target}"),
        };
        let mut node_at = |p: &str| self.node_at(p);
        let Walked::Found(resolved) = walk(&full, AboveRoot::Escapes, &mut node_at)? else {
            return Ok(None);
        };
        let resolved = if resolved == "/" {
            String::new()
        } else {
            resolved
        };
        Ok(self.dir_at(&resolved)?.map(|dir| (resolved, dir)))
    }

    /// What `path` names in the union so far.
    fn node_at(&mut self, path: &str) -> Result<Option<Node>> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let Some(dir) = self.dir_at(parent)? else {
            return Ok(None);
        };
        Ok(match lookup_entry(&dir, name)? {
            (None, None) => None,
            (None, Some(_)) => Some(Node::Dir),
            (Some(file), _) => Some(match self.link_target(&file)? {
                Some(target) => Node::Symlink(target),
                None => Node::File,
            }),
        })
    }

    /// The directory at `path` ("" is the root), without following symlinks.
    fn dir_at(&self, path: &str) -> Result<Option<MutableTree>> {
        let mut dir = self.root.clone();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match lookup_entry(&dir, part)? {
                (None, Some(sub)) => dir = sub,
                _ => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// The target of the symlink object `checksum`; `None` for a regular file.
    fn link_target(&mut self, checksum: &str) -> Result<Option<String>> {
        if let Some(t) = self.link_targets.get(checksum) {
            return Ok(t.clone());
        }
        let target = symlink_target(self.repo, checksum)?;
        self.link_targets
            .insert(checksum.to_string(), target.clone());
        Ok(target)
    }
}
