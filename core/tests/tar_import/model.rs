//! The oracle: tar_import/CONTRACT.md ("ostree-build's own tar import: the contract")
//! written as a small interpreter over the entries the test wrote. It predicts either the
//! committed tree or the ways the import may be refused.
//!
//! Where the contract leaves a choice open, the model accepts every reading (see
//! `Tree::root_metas`); the generators avoid the other open cases (listed in gen.rs).

use super::tar::{Entry, Kind, Text, XKey};
use std::collections::BTreeMap;

pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// One path of the committed tree: `mode` holds the permission bits only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: Xattrs,
}

/// Owner, mode and xattrs of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: Xattrs,
}

impl Meta {
    /// An autocreated directory's (and the default root's): 0755, no xattrs.
    fn autocreated(uid: u32, gid: u32) -> Meta {
        Meta {
            mode: 0o755,
            uid,
            gid,
            xattrs: Vec::new(),
        }
    }
    pub fn of(node: Node) -> Meta {
        Meta {
            mode: node.mode,
            uid: node.uid,
            gid: node.gid,
            xattrs: node.xattrs,
        }
    }
    fn dir(self) -> Node {
        let Meta {
            mode,
            uid,
            gid,
            xattrs,
        } = self;
        Node {
            kind: NodeKind::Dir,
            mode,
            uid,
            gid,
            xattrs,
        }
    }
}

/// The predicted tree: `/`-rooted paths (`/` itself included, with `root_metas[0]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
    /// Every metadata of the root the contract allows. It says missing parents are
    /// created with the owner of the entry that needed them, and the root is 0755
    /// root:root "if no entry and no autocreation gave it metadata", without saying when
    /// the root itself counts as missing: before any entry (the first entry sets it), only
    /// when a deeper parent is autocreated (libostree's moment), or never.
    pub root_metas: Vec<Meta>,
}

/// One acceptable way of refusing the archive.
#[derive(Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The first line names this entry, as written.
    Entry(Vec<u8>),
    /// The first line says the archive is truncated or corrupt.
    Stream,
    /// The first line says "not a tar archive".
    NotTar,
}

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Refusal::Entry(raw) => write!(f, "naming entry {:?}", Text(raw)),
            Refusal::Stream => write!(f, "truncated or corrupt"),
            Refusal::NotTar => write!(f, "not a tar archive"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Tree(Tree),
    /// Any of these refusals is right; `String` says why (for failure messages).
    Refused(Vec<Refusal>, String),
}

/// Where the stream breaks (a cut or a bad checksum) and whether the entry's main header
/// was intact by then (so the importer may refuse the entry itself first).
#[derive(Clone, Copy, Debug)]
pub struct Break {
    pub entry: usize,
    pub header_read: bool,
    /// The damage is in the archive's first block: "not a tar archive" is right too.
    pub first_block: bool,
}

pub const MAX_ID: u64 = 4_294_967_294;
const PERMISSIONS: u32 = 0o7777;

/// What the contract says importing `entries` (broken at `brk`) gives.
pub fn predict(entries: &[Entry], brk: Option<Break>) -> Outcome {
    let mut state = State::default();
    for (i, e) in entries.iter().enumerate() {
        if let Some(b) = brk.filter(|b| b.entry == i) {
            return broken(&state, e, b);
        }
        if let Err(why) = state.apply(e) {
            let why = format!("{:?} {why}", Text(&e.path));
            let mut ways = vec![Refusal::Entry(e.path.clone())];
            // A damaged stream further on may be found first by a reader that looks ahead.
            ways.extend(brk.map(|_| Refusal::Stream));
            return Outcome::Refused(ways, why);
        }
    }
    Outcome::Tree(state.finish())
}

/// The stream breaks at entry `e`: a stream error, or the entry's own one if its header
/// was read, or "not a tar archive" if the very first block is damaged.
fn broken(state: &State, e: &Entry, b: Break) -> Outcome {
    let mut ways = vec![Refusal::Stream];
    if b.first_block {
        ways.push(Refusal::NotTar);
    }
    let own = b
        .header_read
        .then(|| state.clone().apply(e).err())
        .flatten();
    if own.is_some() {
        ways.push(Refusal::Entry(e.path.clone()));
    }
    Outcome::Refused(
        ways,
        format!("stream breaks at {b:?} (entry's own error: {own:?})"),
    )
}

#[derive(Clone, Default)]
struct State {
    /// Normalised paths ("" is the root) to nodes; the root's node is added at the end.
    nodes: BTreeMap<String, Node>,
    /// The root's metadata under each reading: [first entry, deeper autocreation, never].
    root: [Option<Meta>; 3],
}

impl State {
    fn apply(&mut self, e: &Entry) -> Result<(), String> {
        let path = normalize(&e.path)?;
        check_pax_keys(e)?;
        let node = self.node_for(e, &path)?;
        if path.is_empty() {
            return self.set_root(node);
        }
        let (uid, gid) = owner(e)?;
        let autocreated = Meta::autocreated(uid, gid);
        self.root[0].get_or_insert(autocreated.clone());
        if self.make_parents(&path, uid, gid)? {
            self.root[1].get_or_insert(autocreated);
        }
        self.place(path, node)
    }

    /// The node an entry makes (the hardlink's target node, for a hardlink).
    fn node_for(&self, e: &Entry, path: &str) -> Result<Node, String> {
        let kind = match &e.kind {
            Kind::Hardlink { target, .. } => return self.hardlink_target(target),
            Kind::File { data, .. } => NodeKind::File(data.clone()),
            Kind::Sparse { size, chunks } => NodeKind::File(expand(*size, chunks)),
            Kind::Dir => NodeKind::Dir,
            Kind::Symlink(target) => NodeKind::Symlink(check_symlink(path, target)?),
            Kind::Special(_) => return Err("is a device node, fifo or unknown type".into()),
        };
        let (uid, gid) = owner(e)?;
        let xattrs = xattrs(e, kind == NodeKind::Dir)?;
        let mode = e.mode & PERMISSIONS;
        Ok(Node {
            kind,
            mode,
            uid,
            gid,
            xattrs,
        })
    }

    fn hardlink_target(&self, target: &[u8]) -> Result<Node, String> {
        let t = normalize(target).map_err(|e| format!("hardlink target: {e}"))?;
        match self.nodes.get(&t) {
            Some(n) if n.kind != NodeKind::Dir => Ok(n.clone()),
            Some(_) => Err(format!("hardlink to directory {t:?}")),
            None => Err(format!("hardlink to missing {t:?}")),
        }
    }

    fn set_root(&mut self, node: Node) -> Result<(), String> {
        if node.kind != NodeKind::Dir {
            return Err("non-directory entry for the root".into());
        }
        let meta = Meta::of(node);
        self.root = [Some(meta.clone()), Some(meta.clone()), Some(meta)];
        Ok(())
    }

    /// Creates the missing parents of `path`; whether it created any.
    fn make_parents(&mut self, path: &str, uid: u32, gid: u32) -> Result<bool, String> {
        let mut created = false;
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            match self.nodes.get(parent) {
                Some(n) if n.kind == NodeKind::Dir => {}
                Some(_) => return Err(format!("lies below non-directory {parent:?}")),
                None => {
                    let dir = Meta::autocreated(uid, gid).dir();
                    self.nodes.insert(parent.to_string(), dir);
                    created = true;
                }
            }
        }
        Ok(created)
    }

    fn place(&mut self, path: String, node: Node) -> Result<(), String> {
        let new_dir = node.kind == NodeKind::Dir;
        match self.nodes.get(&path).map(|n| n.kind == NodeKind::Dir) {
            Some(true) if !new_dir => Err("replaces a directory".into()),
            Some(false) if new_dir => Err("directory over a non-directory".into()),
            _ => {
                self.nodes.insert(path, node);
                Ok(())
            }
        }
    }

    fn finish(self) -> Tree {
        let mut root_metas: Vec<Meta> = Vec::new();
        for m in self.root.into_iter() {
            let m = m.unwrap_or(Meta::autocreated(0, 0));
            if !root_metas.contains(&m) {
                root_metas.push(m);
            }
        }
        let mut nodes: BTreeMap<String, Node> = self
            .nodes
            .into_iter()
            .map(|(p, n)| (format!("/{p}"), n))
            .collect();
        nodes.insert("/".into(), root_metas[0].clone().dir());
        Tree { nodes, root_metas }
    }
}

/// The path relative to the root, `.` and empty components dropped.
pub fn normalize(raw: &[u8]) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => continue,
            b".." => return Err("has a '..' component".into()),
            _ if c.len() > 255 => return Err("has a component over 255 bytes".into()),
            _ if c.contains(&0) => return Err("has a NUL".into()),
            _ => {}
        }
        parts.push(std::str::from_utf8(c).map_err(|_| "is not UTF-8".to_string())?);
    }
    let path = parts.join("/");
    if path.len() > 4095 {
        return Err("is longer than 4095 bytes".into());
    }
    Ok(path)
}

fn check_pax_keys(e: &Entry) -> Result<(), String> {
    if e.extra.iter().any(|(k, _)| k.starts_with(b"GNU.sparse.")) {
        return Err("has pax GNU.sparse keys".into());
    }
    Ok(())
}

fn owner(e: &Entry) -> Result<(u32, u32), String> {
    if e.uid > MAX_ID || e.gid > MAX_ID {
        return Err(format!("owner {}:{} out of range", e.uid, e.gid));
    }
    Ok((e.uid as u32, e.gid as u32))
}

/// The entry's xattrs: last of a name wins; sorted by name except on directories.
fn xattrs(e: &Entry, dir: bool) -> Result<Xattrs, String> {
    let mut out: Xattrs = Vec::new();
    for x in &e.xattrs {
        let name = match x.key {
            XKey::Rht => b"security.selinux".to_vec(),
            _ => x.name.clone(),
        };
        if name.is_empty() || name.contains(&0) {
            return Err(format!(
                "xattr name {:?} is empty or has a NUL",
                Text(&name)
            ));
        }
        out.retain(|(n, _)| *n != name);
        out.push((name, x.value.clone()));
    }
    if dir {
        out.reverse();
    } else {
        out.sort();
    }
    Ok(out)
}

/// The target, or why the symlink at `path` (normalised) cannot be committed.
fn check_symlink(path: &str, target: &[u8]) -> Result<String, String> {
    let t = std::str::from_utf8(target).map_err(|_| "target is not UTF-8".to_string())?;
    if t.is_empty() || t.contains('\0') || t.len() > 4095 {
        return Err(format!(
            "target of {} bytes, empty, long or with a NUL",
            t.len()
        ));
    }
    if !t.starts_with('/') && climbs_out(path, t) {
        return Err(format!("target {t:?} climbs out of the root"));
    }
    Ok(t.to_string())
}

/// Whether the relative `target` of a link at `path` goes above the root.
fn climbs_out(path: &str, target: &str) -> bool {
    let mut depth = path.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

/// A GNU sparse file's contents: zeros with the chunks in place.
pub fn expand(size: u64, chunks: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0; size as usize];
    for (off, bytes) in chunks {
        out[*off as usize..*off as usize + bytes.len()].copy_from_slice(bytes);
    }
    out
}
