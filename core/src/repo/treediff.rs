//! The file-level difference between two commits of one repository for `diff`, with the
//! same entries as `ostree diff` (an added directory lists everything under it, a removed
//! one only itself, a directory is modified when its own metadata changes) and, for each
//! modified entry, what changed in it.
//!
//! The walk descends only into directories whose contents differ, and reads file objects
//! only for modified entries, so its cost follows the size of the change.

use super::tree::{commit_root, read_dirmeta, read_dirtree};
use super::Repo;
use anyhow::Result;
use gio::prelude::*;
use serde::Serialize;
use std::io::Read;

/// Files added, removed and modified between two commits; paths start with `/`.
#[derive(Debug, Default, Serialize)]
pub struct TreeDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<Modified>,
}

/// One modified path and what changed: any of "type", "content", "target" (of a
/// symlink), "mode", "owner", "xattrs".
#[derive(Debug, Serialize)]
pub struct Modified {
    pub path: String,
    pub changed: Vec<&'static str>,
}

impl Repo {
    /// What turns commit `from`'s tree into commit `to`'s.
    pub fn tree_diff(&self, from: &str, to: &str) -> Result<TreeDiff> {
        let (a, _) = commit_root(&self.repo, from)?;
        let (b, _) = commit_root(&self.repo, to)?;
        let mut out = TreeDiff::default();
        self.walk_diff("", &a, &b, &mut out)?;
        for list in [&mut out.added, &mut out.removed] {
            list.sort();
        }
        out.modified.sort_by(|x, y| x.path.cmp(&y.path));
        Ok(out)
    }

    fn walk_diff(&self, dir: &str, a: &str, b: &str, out: &mut TreeDiff) -> Result<()> {
        if a == b {
            return Ok(());
        }
        let (a, b) = (read_dirtree(&self.repo, a)?, read_dirtree(&self.repo, b)?);
        let join = |name: &str| format!("{dir}/{name}");
        for name in a.files.keys().chain(a.dirs.keys()) {
            if !b.files.contains_key(name) && !b.dirs.contains_key(name) {
                out.removed.push(join(name));
            }
        }
        for (name, checksum) in &b.files {
            match (a.files.get(name), a.dirs.contains_key(name)) {
                (Some(old), _) if old != checksum => out.modified.push(Modified {
                    path: join(name),
                    changed: self.file_changes(old, checksum)?,
                }),
                (None, true) => out.modified.push(Modified {
                    path: join(name),
                    changed: vec!["type"],
                }),
                (None, false) => out.added.push(join(name)),
                _ => {}
            }
        }
        for (name, (contents, meta)) in &b.dirs {
            match (a.dirs.get(name), a.files.contains_key(name)) {
                (Some((ac, am)), _) => {
                    if am != meta {
                        out.modified.push(Modified {
                            path: join(name),
                            changed: self.dir_changes(am, meta)?,
                        });
                    }
                    self.walk_diff(&join(name), ac, contents, out)?;
                }
                (None, true) => out.modified.push(Modified {
                    path: join(name),
                    changed: vec!["type"],
                }),
                (None, false) => {
                    out.added.push(join(name));
                    self.add_all(&join(name), contents, &mut out.added)?;
                }
            }
        }
        Ok(())
    }

    fn add_all(&self, dir: &str, contents: &str, added: &mut Vec<String>) -> Result<()> {
        let tree = read_dirtree(&self.repo, contents)?;
        added.extend(tree.files.keys().map(|n| format!("{dir}/{n}")));
        for (name, (c, _)) in &tree.dirs {
            added.push(format!("{dir}/{name}"));
            self.add_all(&format!("{dir}/{name}"), c, added)?;
        }
        Ok(())
    }

    fn dir_changes(&self, a: &str, b: &str) -> Result<Vec<&'static str>> {
        let (a, b) = (read_dirmeta(&self.repo, a)?, read_dirmeta(&self.repo, b)?);
        let mut changed = Vec::new();
        if a.mode != b.mode {
            changed.push("mode");
        }
        if (a.uid, a.gid) != (b.uid, b.gid) {
            changed.push("owner");
        }
        if a.xattrs != b.xattrs {
            changed.push("xattrs");
        }
        Ok(changed)
    }

    /// What differs between two file objects with different checksums.
    fn file_changes(&self, a: &str, b: &str) -> Result<Vec<&'static str>> {
        let (a_in, a_info, a_x) = self.load_file_object(a)?;
        let (b_in, b_info, b_x) = self.load_file_object(b)?;
        let mode = |i: &gio::FileInfo| i.attribute_uint32("unix::mode");
        let owner = |i: &gio::FileInfo| {
            (
                i.attribute_uint32("unix::uid"),
                i.attribute_uint32("unix::gid"),
            )
        };
        if a_info.file_type() != b_info.file_type() {
            return Ok(vec!["type"]);
        }
        let mut changed = Vec::new();
        if a_info.file_type() == gio::FileType::SymbolicLink {
            if a_info.symlink_target() != b_info.symlink_target() {
                changed.push("target");
            }
        } else if a_info.size() != b_info.size() || !same_content(a_in, b_in)? {
            changed.push("content");
        }
        for (what, differs) in [
            ("mode", mode(&a_info) & 0o7777 != mode(&b_info) & 0o7777),
            ("owner", owner(&a_info) != owner(&b_info)),
            ("xattrs", a_x != b_x),
        ] {
            if differs {
                changed.push(what);
            }
        }
        if changed.is_empty() {
            // Different checksums, yet nothing compared differs (the object header has
            // fields not compared here): never report an empty change.
            changed.push("content");
        }
        Ok(changed)
    }
}

/// Whether two streams (of equal length) have the same bytes.
fn same_content(a: Option<gio::InputStream>, b: Option<gio::InputStream>) -> Result<bool> {
    let (Some(a), Some(b)) = (a, b) else {
        return Ok(true);
    };
    let (mut a, mut b) = (a.into_read(), b.into_read());
    let (mut x, mut y) = (vec![0u8; 65536], vec![0u8; 65536]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
