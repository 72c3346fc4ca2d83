//! Reading committed trees without checking them out: dirtree objects as maps, dirmeta
//! objects as (uid, gid, mode, xattrs), and lookups of a path in a commit.

use super::{gerr, NO_CANCEL};
use anyhow::{anyhow, bail, Result};
use ostree::{MutableTree, ObjectType};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// A directory's entries: files by checksum, subdirectories by (contents, metadata) checksums.
#[derive(Default)]
pub(crate) struct DirTree {
    pub files: BTreeMap<String, String>,
    pub dirs: BTreeMap<String, (String, String)>,
}

pub(crate) fn read_dirtree(repo: &ostree::Repo, contents: &str) -> Result<DirTree> {
    let v = repo
        .load_variant(ObjectType::DirTree, contents)
        .map_err(gerr)?;
    let mut tree = DirTree::default();
    for f in v.child_value(0).iter() {
        let name: String = f.child_value(0).get().unwrap_or_default();
        tree.files.insert(
            name,
            ostree::checksum_from_bytes_v(&f.child_value(1)).to_string(),
        );
    }
    for d in v.child_value(1).iter() {
        let name: String = d.child_value(0).get().unwrap_or_default();
        tree.dirs.insert(
            name,
            (
                ostree::checksum_from_bytes_v(&d.child_value(1)).to_string(),
                ostree::checksum_from_bytes_v(&d.child_value(2)).to_string(),
            ),
        );
    }
    Ok(tree)
}

/// The root (contents, metadata) checksums of a commit.
pub(crate) fn commit_root(repo: &ostree::Repo, commit: &str) -> Result<(String, String)> {
    let (c, _) = repo
        .load_commit(commit)
        .map_err(gerr)
        .map_err(|e| anyhow!("cannot load commit {commit}: {e}"))?;
    Ok((
        ostree::checksum_from_bytes_v(&c.child_value(6)).to_string(),
        ostree::checksum_from_bytes_v(&c.child_value(7)).to_string(),
    ))
}

/// A directory's ownership, mode and xattrs.
pub(crate) struct DirMeta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: glib::Variant,
}

pub(crate) fn read_dirmeta(repo: &ostree::Repo, meta: &str) -> Result<DirMeta> {
    let v = repo.load_variant(ObjectType::DirMeta, meta).map_err(gerr)?;
    let field = |i: usize| -> Result<u32> {
        v.child_value(i)
            .get::<u32>()
            .map(u32::from_be)
            .ok_or_else(|| anyhow!("malformed dirmeta {meta}"))
    };
    Ok(DirMeta {
        uid: field(0)?,
        gid: field(1)?,
        mode: field(2)?,
        xattrs: v.child_value(3),
    })
}

/// Write a dirmeta object and return its checksum.
pub(crate) fn write_dirmeta(repo: &ostree::Repo, meta: &DirMeta) -> Result<String> {
    let info = gio::FileInfo::new();
    info.set_file_type(gio::FileType::Directory);
    info.set_attribute_uint32("unix::uid", meta.uid);
    info.set_attribute_uint32("unix::gid", meta.gid);
    info.set_attribute_uint32("unix::mode", meta.mode);
    let v = ostree::create_directory_metadata(&info, Some(&meta.xattrs));
    Ok(repo
        .write_metadata(ObjectType::DirMeta, None, &v, NO_CANCEL)
        .map_err(gerr)?
        .to_hex())
}

/// An empty xattr list (`a(ayay)`).
pub(crate) fn no_xattrs() -> glib::Variant {
    glib::Variant::array_from_iter_with_type(
        glib::VariantTy::new("(ayay)").expect("valid variant type"),
        std::iter::empty::<glib::Variant>(),
    )
}

/// What a path names in a committed tree.
#[derive(Clone)]
pub(crate) enum Entry {
    File(String),
    Dir { contents: String, meta: String },
}

impl Entry {
    /// Changes whenever what the entry names changes.
    pub fn id(&self) -> String {
        match self {
            Entry::File(c) => format!("file {c}"),
            Entry::Dir { contents, meta } => format!("dir {contents} {meta}"),
        }
    }
}

/// Where a path leads once symlinks are followed.
pub(crate) enum Resolved {
    /// The entry, and the path it is at with every symlink resolved.
    Found(String, Entry),
    Missing,
    /// Outside what the tree can say (a path `stop` names, a symlink loop).
    Unknown,
}

/// Path lookups in one commit, with loaded dirtrees cached.
pub(crate) struct TreeIndex {
    repo: ostree::Repo,
    root: (String, String),
    dirs: RefCell<HashMap<String, Rc<DirTree>>>,
    links: RefCell<HashMap<String, Option<String>>>,
}

impl TreeIndex {
    pub fn new(repo: &ostree::Repo, commit: &str) -> Result<TreeIndex> {
        Ok(TreeIndex::from_root(repo, commit_root(repo, commit)?))
    }

    /// An index of a tree that is not (yet) a commit's, by its root checksums.
    pub fn from_root(repo: &ostree::Repo, root: (String, String)) -> TreeIndex {
        TreeIndex {
            repo: repo.clone(),
            root,
            dirs: RefCell::new(HashMap::new()),
            links: RefCell::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &(String, String) {
        &self.root
    }

    fn dir(&self, contents: &str) -> Result<Rc<DirTree>> {
        if let Some(d) = self.dirs.borrow().get(contents) {
            return Ok(d.clone());
        }
        let d = Rc::new(read_dirtree(&self.repo, contents)?);
        self.dirs
            .borrow_mut()
            .insert(contents.to_string(), d.clone());
        Ok(d)
    }

    /// The entry at `path` ("/usr/bin/sh" or "usr/bin/sh"; "" is the root).
    pub fn lookup(&self, path: &str) -> Result<Option<Entry>> {
        let (mut contents, mut meta) = self.root.clone();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let dir = self.dir(&contents)?;
            if i + 1 == parts.len() {
                if let Some(c) = dir.files.get(*part) {
                    return Ok(Some(Entry::File(c.clone())));
                }
            }
            match dir.dirs.get(*part) {
                Some((c, m)) => {
                    contents = c.clone();
                    meta = m.clone();
                }
                None => return Ok(None),
            }
        }
        Ok(Some(Entry::Dir { contents, meta }))
    }
}

impl TreeIndex {
    /// The target of the symlink object `checksum`; `None` for a regular file.
    pub fn symlink_target(&self, checksum: &str) -> Result<Option<String>> {
        if let Some(t) = self.links.borrow().get(checksum) {
            return Ok(t.clone());
        }
        let (_, info, _) = self.repo.load_file(checksum, NO_CANCEL).map_err(gerr)?;
        let target = (info.file_type() == gio::FileType::SymbolicLink)
            .then(|| {
                info.symlink_target()
                    .map(|t| t.to_string_lossy().into_owned())
            })
            .flatten();
        self.links
            .borrow_mut()
            .insert(checksum.to_string(), target.clone());
        Ok(target)
    }

    /// Follow `path` through the tree as the kernel would: component by component, `..`
    /// after the symlinks before it, at most 40 links. `map` gives where a path is stored
    /// (a deployment sees `/usr/etc` at `/etc`); `stop` names paths the tree cannot answer
    /// for (run-time mounts).
    pub fn resolve(
        &self,
        path: &str,
        map: &dyn Fn(&str) -> String,
        stop: &dyn Fn(&str) -> bool,
    ) -> Result<Resolved> {
        let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
        let mut at: Vec<String> = Vec::new();
        let mut links = 0;
        let here = |at: &[String]| format!("/{}", at.join("/"));
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    at.pop();
                    continue;
                }
                _ => {}
            }
            at.push(part);
            let candidate = here(&at);
            if stop(&candidate) {
                return Ok(Resolved::Unknown);
            }
            match self.lookup(&map(&candidate))? {
                None => return Ok(Resolved::Missing),
                Some(Entry::Dir { .. }) => {}
                Some(Entry::File(checksum)) => match self.symlink_target(&checksum)? {
                    Some(target) => {
                        links += 1;
                        if links > 40 {
                            return Ok(Resolved::Unknown);
                        }
                        at.pop();
                        if target.starts_with('/') {
                            at.clear();
                        }
                        pending.extend(target.split('/').rev().map(str::to_string));
                    }
                    None if pending.iter().all(|p| p.is_empty() || p == ".") => {
                        return Ok(Resolved::Found(candidate, Entry::File(checksum)))
                    }
                    None => return Ok(Resolved::Missing),
                },
            }
        }
        let dir = here(&at);
        Ok(match self.lookup(&map(&dir))? {
            Some(entry) => Resolved::Found(dir, entry),
            None => Resolved::Missing,
        })
    }
}

/// A mutable tree's entry `name`: (file checksum, subdirectory), both `None` if absent.
pub(crate) fn lookup_entry(
    tree: &MutableTree,
    name: &str,
) -> Result<(Option<glib::GString>, Option<MutableTree>)> {
    match tree.lookup(name) {
        Ok(found) => Ok(found),
        Err(e) if e.matches(gio::IOErrorEnum::NotFound) => Ok((None, None)),
        Err(e) => Err(gerr(e)),
    }
}

/// Path-level edits of a mutable tree: what the bootable layout and re-applied trigger
/// output need. New directories get `default_meta`.
pub(crate) struct Editor<'a> {
    pub repo: &'a ostree::Repo,
    pub root: &'a MutableTree,
    pub default_meta: String,
}

fn split(path: &str) -> Vec<&str> {
    path.split('/').filter(|p| !p.is_empty()).collect()
}

impl Editor<'_> {
    /// The directory at `path`, created (with `meta`) where missing.
    pub fn ensure_dir(&self, path: &str, meta: &str) -> Result<MutableTree> {
        let mut dir = self.root.clone();
        for part in split(path) {
            let (file, sub) = lookup_entry(&dir, part)?;
            dir = match (file, sub) {
                (_, Some(sub)) => sub,
                (Some(_), None) => bail!("/{path}: /{part} is a file, not a directory"),
                (None, None) => {
                    let sub = dir.ensure_dir(part).map_err(gerr)?;
                    sub.set_metadata_checksum(meta);
                    sub
                }
            };
        }
        Ok(dir)
    }

    pub fn parent_and_name<'p>(&self, path: &'p str) -> Result<(MutableTree, &'p str)> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        Ok((self.ensure_dir(parent, &self.default_meta)?, name))
    }

    /// The directory at `path` if there is one; creates nothing.
    pub fn existing_dir(&self, path: &str) -> Result<Option<MutableTree>> {
        let mut dir = self.root.clone();
        for part in split(path) {
            match lookup_entry(&dir, part)? {
                (_, Some(sub)) => dir = sub,
                _ => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// Remove the entry at `path`, if there is one; creates nothing.
    pub fn remove(&self, path: &str) -> Result<()> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        match self.existing_dir(parent)? {
            Some(dir) => dir.remove(name, true).map_err(gerr),
            None => Ok(()),
        }
    }

    pub fn put_file(&self, path: &str, checksum: &str) -> Result<()> {
        let (parent, name) = self.parent_and_name(path)?;
        parent.remove(name, true).map_err(gerr)?;
        parent.replace_file(name, checksum).map_err(gerr)
    }

    pub fn put_dir(&self, path: &str, contents: &str, meta: &str) -> Result<()> {
        let (parent, name) = self.parent_and_name(path)?;
        parent.remove(name, true).map_err(gerr)?;
        let dir = parent.ensure_dir(name).map_err(gerr)?;
        dir.fill_empty_from_dirtree(self.repo, contents, meta);
        Ok(())
    }

    pub fn put_empty_dir(&self, path: &str, meta: &str) -> Result<()> {
        let (parent, name) = self.parent_and_name(path)?;
        parent.remove(name, true).map_err(gerr)?;
        let dir = parent.ensure_dir(name).map_err(gerr)?;
        dir.set_metadata_checksum(meta);
        Ok(())
    }

    pub fn put_symlink(&self, path: &str, target: &str) -> Result<()> {
        let checksum = self
            .repo
            .write_symlink(None, 0, 0, Some(&no_xattrs()), target, NO_CANCEL)
            .map_err(gerr)?;
        self.put_file(path, &checksum)
    }
}
