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
        let target = symlink_target(&self.repo, checksum)?;
        self.links
            .borrow_mut()
            .insert(checksum.to_string(), target.clone());
        Ok(target)
    }

    /// Follow `path` through the tree as the kernel would (see [`walk`]). `map` gives where
    /// a path is stored (a deployment sees `/usr/etc` at `/etc`); `stop` names paths the
    /// tree cannot answer for (run-time mounts).
    pub fn resolve(
        &self,
        path: &str,
        map: &dyn Fn(&str) -> String,
        stop: &dyn Fn(&str) -> bool,
    ) -> Result<Resolved> {
        let mut node_at = |candidate: &str| -> Result<Option<Node>> {
            if stop(candidate) {
                return Ok(Some(Node::Unknown));
            }
            Ok(match self.lookup(&map(candidate))? {
                None => None,
                Some(Entry::Dir { .. }) => Some(Node::Dir),
                Some(Entry::File(checksum)) => Some(match self.symlink_target(&checksum)? {
                    Some(target) => Node::Symlink(target),
                    None => Node::File,
                }),
            })
        };
        Ok(match walk(path, AboveRoot::StayAtRoot, &mut node_at)? {
            Walked::Found(at) => match self.lookup(&map(&at))? {
                Some(entry) => Resolved::Found(at, entry),
                None => Resolved::Missing,
            },
            Walked::Missing => Resolved::Missing,
            Walked::Unknown | Walked::Escapes => Resolved::Unknown,
        })
    }
}

/// The target of the symlink object `checksum`; `None` for a regular file.
pub(crate) fn symlink_target(repo: &ostree::Repo, checksum: &str) -> Result<Option<String>> {
    let (_, info, _) = repo.load_file(checksum, NO_CANCEL).map_err(gerr)?;
    Ok((info.file_type() == gio::FileType::SymbolicLink)
        .then(|| info.symlink_target())
        .flatten()
        .map(|t| t.to_string_lossy().into_owned()))
}

/// What a path names, as [`walk`] needs to know it.
pub(crate) enum Node {
    Dir,
    File,
    Symlink(String),
    /// Something the caller cannot answer for: the walk stops.
    Unknown,
}

/// Where [`walk`] ended.
pub(crate) enum Walked {
    /// The path with every symlink resolved (`/usr/bin`; `/` is the root).
    Found(String),
    Missing,
    /// A `Node::Unknown` on the way, or more than 40 links.
    Unknown,
    /// `..` above the root (only with [`AboveRoot::Escapes`]).
    Escapes,
}

/// What `..` at the root means: the kernel inside a chroot stays at the root; a union that
/// must not follow links out of the image calls it an escape.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum AboveRoot {
    StayAtRoot,
    Escapes,
}

/// Follow `path` component by component as the kernel does: a symlink is replaced by its
/// target (relative to its directory, absolute from the root), `..` undoes the component
/// before it after links are resolved, at most 40 links. A regular file with more to walk
/// below it is `Missing`.
pub(crate) fn walk(
    path: &str,
    above_root: AboveRoot,
    node_at: &mut dyn FnMut(&str) -> Result<Option<Node>>,
) -> Result<Walked> {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
    let mut at: Vec<String> = Vec::new();
    let mut links = 0;
    let here = |at: &[String]| format!("/{}", at.join("/"));
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." if at.pop().is_none() && above_root == AboveRoot::Escapes => {
                return Ok(Walked::Escapes)
            }
            ".." => continue,
            _ => {}
        }
        at.push(part);
        match node_at(&here(&at))? {
            None => return Ok(Walked::Missing),
            Some(Node::Unknown) => return Ok(Walked::Unknown),
            Some(Node::Dir) => {}
            Some(Node::File) if pending.iter().all(|p| p.is_empty() || p == ".") => {}
            Some(Node::File) => return Ok(Walked::Missing),
            Some(Node::Symlink(target)) => {
                links += 1;
                if links > 40 {
                    return Ok(Walked::Unknown);
                }
                at.pop();
                if target.starts_with('/') {
                    at.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_string));
            }
        }
    }
    Ok(Walked::Found(here(&at)))
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

/// The content of the regular file object `checksum`; `None` for a symlink or a file over
/// `max` bytes.
pub(crate) fn read_file(repo: &ostree::Repo, checksum: &str, max: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let (input, info, _) = repo.load_file(checksum, NO_CANCEL).map_err(gerr)?;
    let size = u64::try_from(info.size()).unwrap_or(u64::MAX);
    let (Some(input), gio::FileType::Regular) = (input, info.file_type()) else {
        return Ok(None);
    };
    if size > max {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    gio::prelude::InputStreamExtManual::into_read(input).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// The content of the regular file object `checksum` as text; `None` for a symlink, a file
/// over 1 MiB or one that is not UTF-8 (nothing a configuration edit should touch).
pub(crate) fn read_text_file(repo: &ostree::Repo, checksum: &str) -> Result<Option<String>> {
    Ok(read_file(repo, checksum, 1 << 20)?.and_then(|b| String::from_utf8(b).ok()))
}

/// A new file object with `content` and the owner, mode and xattrs of object `checksum`.
pub(crate) fn rewrite_file(repo: &ostree::Repo, checksum: &str, content: &[u8]) -> Result<String> {
    let (_, info, xattrs) = repo.load_file(checksum, NO_CANCEL).map_err(gerr)?;
    let attr = |name: &str| info.attribute_uint32(name);
    let written = repo
        .write_regfile_inline(
            None,
            attr("unix::uid"),
            attr("unix::gid"),
            attr("unix::mode"),
            Some(&xattrs),
            content,
            NO_CANCEL,
        )
        .map_err(gerr)?;
    Ok(written.to_string())
}

#[cfg(test)]
mod walk_tests {
    use super::{walk, AboveRoot, Node, Walked};

    /// A tiny tree: /usr/bin (dir), /usr/bin/sh (file), /bin -> usr/bin, /up -> ../usr,
    /// /loop -> loop, /abs -> /usr/bin/sh.
    fn walked(path: &str, above_root: AboveRoot) -> String {
        let mut node_at = |p: &str| -> anyhow::Result<Option<Node>> {
            Ok(match p {
                "/usr" | "/usr/bin" => Some(Node::Dir),
                "/usr/bin/sh" => Some(Node::File),
                "/bin" => Some(Node::Symlink("usr/bin".into())),
                "/up" => Some(Node::Symlink("../usr".into())),
                "/loop" => Some(Node::Symlink("loop".into())),
                "/abs" => Some(Node::Symlink("/usr/bin/sh".into())),
                _ => None,
            })
        };
        match walk(path, above_root, &mut node_at).unwrap() {
            Walked::Found(p) => p,
            Walked::Missing => "missing".into(),
            Walked::Unknown => "unknown".into(),
            Walked::Escapes => "escapes".into(),
        }
    }

    #[test]
    fn links_resolve_like_the_kernel_inside_a_root() {
        let stay = AboveRoot::StayAtRoot;
        assert_eq!(walked("/bin/sh", stay), "/usr/bin/sh");
        assert_eq!(walked("/bin/../bin", stay), "/usr/bin");
        assert_eq!(walked("/abs", stay), "/usr/bin/sh");
        assert_eq!(walked("/usr/bin/sh/x", stay), "missing");
        assert_eq!(walked("/nothing", stay), "missing");
        assert_eq!(walked("/loop", stay), "unknown");
        assert_eq!(walked("/up/bin", stay), "/usr/bin");
        assert_eq!(walked("/up/bin", AboveRoot::Escapes), "escapes");
        assert_eq!(walked("/", stay), "/");
    }
}
