//! The tree an archive describes, built entry by entry as `tar -x` would extract it onto an
//! empty directory: later entries replace earlier files and directory metadata, missing
//! parents are created (0755, owned like the entry that needed them: libostree's rule), and
//! every entry that cannot mean one thing is refused by name: one below a file or symlink,
//! a directory over a file or the reverse, a hardlink to nothing earlier.
//! Files and symlinks are object numbers here; the caller writes the objects.

use super::entry::{Entry, Kind, Meta};
use super::Refusal;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir(Meta),
    /// A regular file or symlink: the caller's object number.
    Leaf {
        object: usize,
        symlink: bool,
    },
}

#[derive(Default)]
pub struct Tree {
    /// Every path but the root's, relative, without a leading `/`.
    nodes: HashMap<String, Node>,
    root: Option<Meta>,
}

const STRUCTURE_HELP: &str =
    "an archive must describe one tree: rebuild it without the conflicting entries";

impl Tree {
    /// Add `entry`. A file or symlink becomes object number `object`.
    pub fn place(&mut self, entry: &Entry, object: usize) -> Result<(), Refusal> {
        let refuse = |why: String| Refusal::entry(&entry.shown, why, STRUCTURE_HELP);
        if entry.path.is_empty() {
            if let Kind::Dir(meta) = &entry.kind {
                self.root = Some(meta.clone());
            }
            return Ok(());
        }
        self.ensure_parents(entry)?;
        let existing = self.nodes.get(&entry.path);
        let node = match &entry.kind {
            Kind::Dir(meta) => {
                if let Some(Node::Leaf { symlink, .. }) = existing {
                    return Err(refuse(format!(
                        "a directory where an earlier entry made a {}",
                        leaf_name(*symlink)
                    )));
                }
                Node::Dir(meta.clone())
            }
            Kind::File(_) | Kind::Symlink(..) => Node::Leaf {
                object,
                symlink: matches!(entry.kind, Kind::Symlink(..)),
            },
            Kind::Hardlink(target) => match self.nodes.get(target) {
                Some(leaf @ Node::Leaf { .. }) => leaf.clone(),
                Some(Node::Dir(_)) => {
                    return Err(refuse(format!(
                        "a hardlink to '{target}', which is a directory"
                    )))
                }
                None => {
                    return Err(refuse(format!(
                        "a hardlink to '{target}', which no earlier entry made"
                    )))
                }
            },
        };
        if matches!(existing, Some(Node::Dir(_))) && !matches!(node, Node::Dir(_)) {
            return Err(refuse(
                "a file where an earlier entry made a directory".to_string(),
            ));
        }
        self.nodes.insert(entry.path.clone(), node);
        Ok(())
    }

    /// Create the missing directories above `entry`; refuse one below a file or symlink.
    /// Every directory's ancestors are directories, so the walk up stops at the first one
    /// that exists (one lookup for most entries).
    fn ensure_parents(&mut self, entry: &Entry) -> Result<(), Refusal> {
        let mut missing = Vec::new();
        let mut at = entry.path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            match self.nodes.get(parent) {
                Some(Node::Dir(_)) => break,
                Some(Node::Leaf { symlink, .. }) => {
                    return Err(Refusal::entry(
                        &entry.shown,
                        format!("it lies below '{parent}', which is a {}", leaf_name(*symlink)),
                        "an entry below a file or symlink cannot be imported; rebuild the archive with that path as a directory, or without the entries below it",
                    ))
                }
                None => missing.push(parent.to_string()),
            }
            at = parent;
        }
        if missing.is_empty() {
            return Ok(());
        }
        for parent in missing {
            self.nodes
                .insert(parent, Node::Dir(parent_meta(entry.owner)));
        }
        if self.root.is_none() {
            self.root = Some(parent_meta(entry.owner));
        }
        Ok(())
    }

    /// The root's metadata: from its entry, else from the first autocreation, else 0755
    /// root:root (libostree's default).
    pub fn root_meta(&self) -> Meta {
        self.root.clone().unwrap_or_else(|| parent_meta((0, 0)))
    }

    /// Every node but the root, parents before their children.
    pub fn sorted(&self) -> Vec<(&str, &Node)> {
        let mut all: Vec<(&str, &Node)> = self.nodes.iter().map(|(p, n)| (p.as_str(), n)).collect();
        // A parent is a prefix of its children, so it sorts first.
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }
}

fn leaf_name(symlink: bool) -> &'static str {
    if symlink {
        "symlink"
    } else {
        "regular file"
    }
}

fn parent_meta((uid, gid): (u32, u32)) -> Meta {
    Meta {
        uid,
        gid,
        mode: libc::S_IFDIR | 0o755,
        xattrs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry {
            shown: path.to_string(),
            path: path.to_string(),
            owner: (7, 8),
            kind,
        }
    }

    fn meta(mode: u32) -> Meta {
        Meta {
            uid: 0,
            gid: 0,
            mode,
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn entries_below_links_and_type_changes_are_refused() {
        let mut t = Tree::default();
        t.place(&entry("usr", Kind::Dir(meta(0o40700))), 0).unwrap();
        t.place(
            &entry("usr/lib/x", Kind::Symlink(meta(0o120777), "/etc".into())),
            1,
        )
        .unwrap();
        let below = t
            .place(&entry("usr/lib/x/passwd", Kind::File(meta(0o100644))), 2)
            .unwrap_err();
        assert!(below.why.contains("'usr/lib/x'"), "{below:?}");
        assert!(t
            .place(&entry("usr/lib/x", Kind::Dir(meta(0o40755))), 3)
            .is_err());
        assert!(t
            .place(&entry("usr", Kind::File(meta(0o100644))), 4)
            .is_err());
        assert!(t
            .place(&entry("usr/h", Kind::Hardlink("usr/nothing".into())), 5)
            .is_err());
        // The autocreated parent is owned like the entry; the existing one keeps its mode.
        assert_eq!(
            t.nodes.get("usr/lib"),
            Some(&Node::Dir(Meta {
                uid: 7,
                gid: 8,
                mode: 0o40755,
                xattrs: vec![]
            }))
        );
        assert_eq!(t.nodes.get("usr"), Some(&Node::Dir(meta(0o40700))));
        assert_eq!(t.root_meta().uid, 7);
    }

    #[test]
    fn hardlinks_take_the_target_of_the_moment_and_files_are_replaced() {
        let mut t = Tree::default();
        t.place(&entry("a", Kind::File(meta(0o100644))), 0).unwrap();
        t.place(&entry("b", Kind::Hardlink("a".into())), 1).unwrap();
        t.place(&entry("a", Kind::File(meta(0o100600))), 2).unwrap();
        let sorted = t.sorted();
        assert_eq!(
            sorted,
            vec![
                (
                    "a",
                    &Node::Leaf {
                        object: 2,
                        symlink: false
                    }
                ),
                (
                    "b",
                    &Node::Leaf {
                        object: 0,
                        symlink: false
                    }
                )
            ]
        );
        assert_eq!(t.root_meta(), meta(0o40755));
    }
}
