//! What a trigger changed in a tree, recorded as path-level changes so that the same
//! output can be re-applied to a later tree when the trigger's inputs have not changed.
//!
//! The diff walks two committed trees side by side and descends only into directories
//! whose contents differ, so its cost follows the size of the change.

use super::tree::{commit_root, read_dirtree, Editor, Resolved, TreeIndex};
use super::{gerr, write_commit_from_mtree, NewCommit, Repo, WriteStats, NO_CANCEL};
use anyhow::Result;
use ostree::{MutableTree, ObjectType};
use serde::{Deserialize, Serialize};

/// One change between two trees, by path (no leading slash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// A file or symlink added or replaced.
    File {
        path: String,
        checksum: String,
    },
    /// A directory added (or replacing a file), with all it contains.
    Dir {
        path: String,
        contents: String,
        meta: String,
    },
    /// A directory whose owner, mode or xattrs changed.
    DirMeta {
        path: String,
        meta: String,
    },
    Deleted {
        path: String,
    },
}

impl Change {
    pub fn path(&self) -> &str {
        match self {
            Change::File { path, .. }
            | Change::Dir { path, .. }
            | Change::DirMeta { path, .. }
            | Change::Deleted { path } => path,
        }
    }
}

impl Repo {
    /// The changes that turn commit `from` into commit `to`.
    pub fn tree_changes(&self, from: &str, to: &str) -> Result<Vec<Change>> {
        let (a, a_meta) = commit_root(&self.repo, from)?;
        let (b, b_meta) = commit_root(&self.repo, to)?;
        let mut out = Vec::new();
        if a_meta != b_meta {
            out.push(Change::DirMeta {
                path: String::new(),
                meta: b_meta,
            });
        }
        self.diff_dirs("", &a, &b, &mut out)?;
        Ok(out)
    }

    fn diff_dirs(&self, dir: &str, a: &str, b: &str, out: &mut Vec<Change>) -> Result<()> {
        if a == b {
            return Ok(());
        }
        let (a, b) = (read_dirtree(&self.repo, a)?, read_dirtree(&self.repo, b)?);
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            }
        };
        for name in a.files.keys() {
            if !b.files.contains_key(name) && !b.dirs.contains_key(name) {
                out.push(Change::Deleted { path: join(name) });
            }
        }
        for name in a.dirs.keys() {
            if !b.dirs.contains_key(name) && !b.files.contains_key(name) {
                out.push(Change::Deleted { path: join(name) });
            }
        }
        for (name, checksum) in &b.files {
            if a.files.get(name) != Some(checksum) {
                out.push(Change::File {
                    path: join(name),
                    checksum: checksum.clone(),
                });
            }
        }
        for (name, (contents, meta)) in &b.dirs {
            match a.dirs.get(name) {
                Some((ac, am)) => {
                    if am != meta {
                        out.push(Change::DirMeta {
                            path: join(name),
                            meta: meta.clone(),
                        });
                    }
                    self.diff_dirs(&join(name), ac, contents, out)?;
                }
                None => out.push(Change::Dir {
                    path: join(name),
                    contents: contents.clone(),
                    meta: meta.clone(),
                }),
            }
        }
        Ok(())
    }

    /// Whether every object `changes` names is still in the repository.
    pub fn changes_available(&self, changes: &[Change]) -> Result<bool> {
        let has = |kind, checksum: &str| self.repo.has_object(kind, checksum, NO_CANCEL);
        for c in changes {
            let present = match c {
                Change::File { checksum, .. } => has(ObjectType::File, checksum),
                Change::Dir { contents, meta, .. } => Ok(has(ObjectType::DirTree, contents)
                    .map_err(gerr)?
                    && has(ObjectType::DirMeta, meta).map_err(gerr)?),
                Change::DirMeta { meta, .. } => has(ObjectType::DirMeta, meta),
                Change::Deleted { .. } => Ok(true),
            }
            .map_err(gerr)?;
            if !present {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Commit `base` with `changes` applied. New parent directories get the root's
    /// metadata.
    pub fn apply_changes(
        &self,
        base: &str,
        changes: &[Change],
        commit: &NewCommit,
    ) -> Result<String> {
        self.in_transaction(|repo| {
            let (contents, meta) = TreeIndex::new(repo, base)?.root().clone();
            let root = MutableTree::new();
            root.fill_empty_from_dirtree(repo, &contents, &meta);
            let edit = Editor {
                repo,
                root: &root,
                default_meta: meta,
            };
            for change in changes {
                match change {
                    Change::File { path, checksum } => edit.put_file(path, checksum)?,
                    Change::Dir {
                        path,
                        contents,
                        meta,
                    } => edit.put_dir(path, contents, meta)?,
                    // Only where the directory still is: its metadata alone creates nothing.
                    Change::DirMeta { path, meta } => {
                        if let Some(dir) = edit.existing_dir(path)? {
                            dir.set_metadata_checksum(meta);
                        }
                    }
                    Change::Deleted { path } => edit.remove(path)?,
                }
            }
            let (checksum, _) = write_commit_from_mtree(repo, &root, commit)?;
            Ok((checksum, WriteStats::default()))
        })
        .map(|(c, _)| c)
    }
}

impl Repo {
    /// One identifier per path of `commit` that changes whenever what the path names
    /// changes (checksums; `-` when absent). With `follow`, symlinks on the way and at the
    /// end are followed (`/lib/x` on a merged-/usr tree is `/usr/lib/x`), and the
    /// resolved path is part of the identifier.
    pub fn path_ids(&self, commit: &str, paths: &[String], follow: bool) -> Result<Vec<String>> {
        let index = TreeIndex::new(&self.repo, commit)?;
        paths
            .iter()
            .map(|p| {
                if follow {
                    Ok(
                        match index.resolve(p, &|p: &str| p.to_string(), &|_: &str| false)? {
                            Resolved::Found(at, entry) => format!("{at} {}", entry.id()),
                            Resolved::Missing => "-".to_string(),
                            Resolved::Unknown => "?".to_string(),
                        },
                    )
                } else {
                    Ok(index.lookup(p)?.map_or_else(|| "-".to_string(), |e| e.id()))
                }
            })
            .collect()
    }
}
