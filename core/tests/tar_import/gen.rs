//! Proptest strategies: archives of mostly plausible entries drawn from a small name pool
//! (so duplicates, entries below files, directories over files and hardlinks to earlier
//! entries happen often), some of them made hostile (`Hostile`), sometimes damaged and
//! compressed; and well-formed archives for the comparison with `ostree commit`.
//!
//! Left out on purpose, because the contract does not settle them: a trailing `/` on a
//! non-directory (libarchive and GNU tar make it a directory, the contract drops it), the
//! same xattr name twice on a directory (which position wins), hostile owners or xattrs on
//! hardlink entries (checked or ignored), a stream that ends at a block boundary without
//! end-of-archive blocks, newlines and `->` in names (`ostree ls` prints them raw).

use super::model::MAX_ID;
use super::tar::{Compression, Entry, Kind, Via, XKey, Xattr};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use std::collections::BTreeMap;

const NAMES: &[&str] = &["a", "b", "usr", "etc", "é", "sp ace", "x.y", "日本", "-"];
const TARGETS: &[&str] = &[
    "a",
    "b/c",
    "../a",
    "../../etc",
    "..",
    ".",
    "/usr/bin/a",
    "/",
    "./é",
];
const BAD_TARGETS: &[&[u8]] = &[b"", b"a\0b", b"\xff\xfe"];
const XNAMES: &[&str] = &[
    "user.a",
    "user.b",
    "security.selinux",
    "security.capability",
    "trusted.t",
    "user.é",
    "user.sp ace",
    "user.%x",
];
const MODES: &[u32] = &[
    0o644, 0o755, 0o600, 0o640, 0o4755, 0o2755, 0o1777, 0o000, 0o777, 0o100644, 0o40755,
];
const IDS: &[u64] = &[0, 0, 0, 1000, 999, 998, 65534, 2_097_151, 2_097_152, MAX_ID];
const IGNORED_KEYS: &[(&str, &str)] = &[
    ("mtime", "1700000000.5"),
    ("atime", "1"),
    ("ctime", "2"),
    ("comment", "a=b\nc"),
    ("SCHILY.acl.access", "user::rw-\ngroup::r--\nother::r--\n"),
    ("uname", "root"),
    ("gname", "wheel"),
    ("SCHILY.dev", "2049"),
    ("SCHILY.ino", "1234"),
    ("SCHILY.nlink", "2"),
    ("LIBARCHIVE.creationtime", "5"),
];

/// A generated archive: entries, an optional damage and the compression.
#[derive(Clone, Debug)]
pub struct Case {
    pub entries: Vec<Entry>,
    pub damage: Option<Damage>,
    pub compression: Compression,
}

/// Where to damage the written stream: which entry, a cut or a bad checksum, and where.
#[derive(Clone, Copy, Debug)]
pub struct Damage {
    pub entry: Index,
    pub cut: bool,
    pub at: Index,
}

/// What makes an entry hostile (or a boundary case that must pass).
#[derive(Clone, Debug)]
pub enum Hostile {
    DotDot(&'static str),
    NonUtf8,
    NulInPaxPath,
    LongComponent(usize),
    LongPath,
    HugeId(bool, u64),
    MaxId,
    LongTarget(bool),
    BadTarget(&'static [u8]),
    EscapingTarget,
    BadXattrName(bool),
    SparseKeys(usize),
    Global(Vec<(&'static str, &'static str)>),
    Special(u8),
    LinkDotDot,
}

/// An entry before its hardlink target (`link`) is tied to an earlier entry.
#[derive(Clone, Debug)]
pub struct Gen {
    entry: Entry,
    link: Option<Index>,
    hostile: Option<Hostile>,
}

pub fn case() -> impl Strategy<Value = Case> {
    (
        vec(gen_entry(), 0..10),
        prop::option::weighted(0.1, damage()),
        compression(),
    )
        .prop_map(|(gens, damage, compression)| Case {
            entries: tie(gens),
            damage,
            compression,
        })
}

fn damage() -> impl Strategy<Value = Damage> {
    (any::<Index>(), any::<bool>(), any::<Index>()).prop_map(|(entry, cut, at)| Damage {
        entry,
        cut,
        at,
    })
}

pub fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        6 => Just(Compression::None),
        1 => Just(Compression::Gzip),
        1 => Just(Compression::Bzip2),
        1 => Just(Compression::Xz),
        1 => Just(Compression::Zstd),
    ]
}

/// Hardlinks get an earlier entry's path (sometimes spelt differently); then hostility.
fn tie(gens: Vec<Gen>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for g in gens {
        let mut e = g.entry;
        if let (Kind::Hardlink { target, .. }, Some(pick)) = (&mut e.kind, g.link) {
            *target = match out.len() {
                0 => b"missing".to_vec(),
                n => respell(&out[pick.index(n * 2) / 2].path, pick.index(2) == 1),
            };
        }
        if let Some(h) = g.hostile {
            make_hostile(&mut e, h);
        }
        out.push(e);
    }
    out
}

fn respell(path: &[u8], absolute: bool) -> Vec<u8> {
    let trimmed = path.strip_prefix(b"./").unwrap_or(path);
    match absolute {
        true => [b"/", trimmed].concat(),
        false => trimmed.to_vec(),
    }
}

fn gen_entry() -> impl Strategy<Value = Gen> {
    let spelling = (path_spelling(), any::<bool>());
    let looks = look(select(MODES), select(IDS));
    let extra = vec(select(IGNORED_KEYS), 0..2);
    let hostile = prop::option::weighted(0.12, hostile());
    (spelling, kind(), looks, extra, hostile).prop_map(
        |((spell, trailing), (kind, link), look, extra, hostile)| {
            let path = spell.bytes(kind == Kind::Dir && trailing);
            let mut entry = look.apply(Entry::new(path, kind));
            entry.extra = records(&extra);
            Gen {
                entry,
                link,
                hostile,
            }
        },
    )
}

fn records(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

/// Mode, owner, xattrs and spellings of an entry.
#[derive(Clone, Debug)]
pub struct Look {
    mode: u32,
    uid: u64,
    gid: u64,
    xattrs: Vec<Xattr>,
    vias: (Via, Via, Via),
    gnu_magic: bool,
}

fn look(
    modes: impl Strategy<Value = u32>,
    ids: impl Strategy<Value = u64> + Clone,
) -> impl Strategy<Value = Look> {
    let spelling = (vias(), any::<bool>());
    (modes, ids.clone(), ids, vec(xattr(), 0..3), spelling).prop_map(
        |(mode, uid, gid, xattrs, (vias, gnu_magic))| Look {
            mode,
            uid,
            gid,
            xattrs,
            vias,
            gnu_magic,
        },
    )
}

impl Look {
    /// Gives `e` this look: hardlinks get owner 0 and no xattrs (what the contract leaves
    /// open), directories no xattr name twice.
    fn apply(&self, mut e: Entry) -> Entry {
        (e.mode, e.uid, e.gid, e.gnu_magic) = (self.mode, self.uid, self.gid, self.gnu_magic);
        (e.name_via, e.link_via, e.ids_via) = self.vias;
        e.xattrs = match e.kind {
            Kind::Hardlink { .. } => {
                (e.uid, e.gid) = (0, 0);
                Vec::new()
            }
            Kind::Dir => dedup(self.xattrs.clone()),
            _ => self.xattrs.clone(),
        };
        e
    }
}

fn dedup(xattrs: Vec<Xattr>) -> Vec<Xattr> {
    let mut out: Vec<Xattr> = Vec::new();
    for x in xattrs {
        if !out.iter().any(|o| o.name == x.name) {
            out.push(x);
        }
    }
    out
}

fn vias() -> impl Strategy<Value = (Via, Via, Via)> {
    let via = || select(&[Via::Header, Via::Header, Via::Gnu, Via::Pax][..]);
    (via(), via(), via())
}

/// A path as the archive spells it: components from the pool (none: the root), a prefix
/// (`./`, `/`, `//`), separators (`/`, `//`, `/./`) and maybe a trailing `/`.
#[derive(Clone, Debug)]
pub struct Spelling {
    comps: Vec<&'static str>,
    prefix: &'static str,
    seps: Vec<&'static str>,
}

impl Spelling {
    fn bytes(&self, trailing: bool) -> Vec<u8> {
        let mut out = self.prefix.to_string();
        for (i, c) in self.comps.iter().enumerate() {
            if i > 0 {
                out.push_str(self.seps[i % self.seps.len()]);
            }
            out.push_str(c);
        }
        if trailing {
            out.push('/');
        }
        out.into_bytes()
    }
}

fn path_spelling() -> impl Strategy<Value = Spelling> {
    let comps = prop_oneof![19 => vec(select(NAMES), 1..4), 1 => Just(Vec::new())];
    let prefix = select(&["", "", "", "./", "/", "//"][..]);
    let seps = vec(select(&["/", "/", "/", "//", "/./"][..]), 1..3);
    (comps, prefix, seps).prop_map(|(comps, prefix, seps)| Spelling {
        comps,
        prefix,
        seps,
    })
}

/// The entry's kind, and for a hardlink which earlier entry it names.
fn kind() -> impl Strategy<Value = (Kind, Option<Index>)> {
    let flag = select(&[b'0', b'0', b'\0', b'7'][..]);
    prop_oneof![
        30 => (flag, data()).prop_map(|(flag, data)| (Kind::File { flag, data }, None)),
        18 => Just((Kind::Dir, None)),
        12 => select(TARGETS).prop_map(|t| (Kind::Symlink(t.into()), None)),
        10 => (any::<Index>(), prop::option::weighted(0.2, data())).prop_map(|(i, data)| {
            let kind = Kind::Hardlink { target: Vec::new(), data: data.unwrap_or_default() };
            (kind, Some(i))
        }),
        4 => sparse().prop_map(|k| (k, None)),
    ]
}

pub fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..64),
        1 => vec(any::<u8>(), 500..1600),
    ]
}

/// A GNU sparse file: up to 7 block-aligned chunks (more than 4 need an extension block).
pub fn sparse() -> impl Strategy<Value = Kind> {
    let chunk = (0u64..3, 1usize..3, any::<u8>());
    (vec(chunk, 0..7), 0u64..3).prop_map(|(parts, tail)| {
        let mut end = 0;
        let mut chunks = Vec::new();
        for (gap, blocks, byte) in parts {
            let bytes: Vec<u8> = (0..blocks * 512)
                .map(|i| byte.wrapping_add(i as u8))
                .collect();
            chunks.push((end + gap * 512, bytes));
            end += gap * 512 + blocks as u64 * 512;
        }
        Kind::Sparse {
            size: end + tail * 512,
            chunks,
        }
    })
}

pub fn xattr() -> impl Strategy<Value = Xattr> {
    let key = prop_oneof![
        3 => Just(XKey::Schily),
        2 => any::<bool>().prop_map(|pad| XKey::Libarchive { pad }),
        1 => Just(XKey::Rht),
    ];
    (select(XNAMES), vec(any::<u8>(), 0..24), key).prop_map(|(name, value, key)| {
        let name = if key == XKey::Rht {
            "security.selinux"
        } else {
            name
        };
        Xattr {
            name: name.into(),
            value,
            key,
        }
    })
}

const HUGE_IDS: &[u64] = &[
    MAX_ID + 1,
    1 << 32,
    1 << 40,
    (1 << 56) - 1,
    1 << 60,
    u64::MAX,
];
const GLOBAL_RECORDS: &[(&str, &str)] = &[
    ("path", "../../evil"),
    ("uid", "99999999999"),
    ("SCHILY.xattr.user.g", "x"),
    ("linkpath", "/etc/shadow"),
    ("GNU.sparse.major", "1"),
];

fn hostile() -> impl Strategy<Value = Hostile> {
    let huge = (any::<bool>(), select(HUGE_IDS));
    let global = vec(select(GLOBAL_RECORDS), 1..3);
    prop_oneof![
        select(&["../", "a/../", "/../", "./../", "x/.."][..]).prop_map(Hostile::DotDot),
        Just(Hostile::NonUtf8),
        Just(Hostile::NulInPaxPath),
        (256usize..300).prop_map(Hostile::LongComponent),
        Just(Hostile::LongPath),
        huge.prop_map(|(uid, v)| Hostile::HugeId(uid, v)),
        Just(Hostile::MaxId),
        any::<bool>().prop_map(Hostile::LongTarget),
        select(BAD_TARGETS).prop_map(Hostile::BadTarget),
        Just(Hostile::EscapingTarget),
        any::<bool>().prop_map(Hostile::BadXattrName),
        (0usize..3).prop_map(Hostile::SparseKeys),
        global.prop_map(Hostile::Global),
        select(&b"346VMNDZ9q"[..]).prop_map(Hostile::Special),
        Just(Hostile::LinkDotDot),
    ]
}

/// Makes `e` hostile in the way `h` says.
pub fn make_hostile(e: &mut Entry, h: Hostile) {
    match h {
        Hostile::DotDot(p) => e.path = [p.as_bytes(), &e.path].concat(),
        Hostile::NonUtf8 => e.path.extend_from_slice(b"/\xff\xfe"),
        Hostile::NulInPaxPath => e.path.extend_from_slice(b"/nul\0x"),
        Hostile::LongComponent(n) => e.path.extend([b"/".to_vec(), vec![b'c'; n]].concat()),
        Hostile::LongPath => e.path = [&b"d/".repeat(2100)[..], &e.path].concat(),
        Hostile::SparseKeys(style) => e.extra.extend(sparse_keys(style, &e.path)),
        Hostile::Global(pairs) => e.global = records(&pairs),
        other => hostile_kind_or_meta(e, other),
    }
}

/// The hostile kinds and metadata (hostile owners and xattrs spare hardlinks).
fn hostile_kind_or_meta(e: &mut Entry, h: Hostile) {
    let link = matches!(e.kind, Kind::Hardlink { .. });
    match h {
        Hostile::HugeId(_, _) | Hostile::BadXattrName(_) if link => {}
        Hostile::HugeId(true, v) => e.uid = v,
        Hostile::HugeId(false, v) => e.gid = v,
        Hostile::MaxId => (e.uid, e.gid) = (MAX_ID, MAX_ID),
        Hostile::BadXattrName(empty) => e.xattrs.push(bad_xattr(empty)),
        Hostile::LongTarget(ok) => {
            let n = if ok { 2047 } else { 2048 };
            e.kind = Kind::Symlink([&b"a/".repeat(n)[..], b"a"].concat());
        }
        Hostile::BadTarget(t) => e.kind = Kind::Symlink(t.to_vec()),
        Hostile::EscapingTarget => e.kind = Kind::Symlink(b"../../../../../../../../etc".to_vec()),
        Hostile::Special(flag) => e.kind = Kind::Special(flag),
        Hostile::LinkDotDot => {
            let target = match &e.kind {
                Kind::Hardlink { target, .. } => [b"../", &target[..]].concat(),
                _ => b"../a".to_vec(),
            };
            e.kind = Kind::Hardlink {
                target,
                data: Vec::new(),
            };
        }
        _ => unreachable!("make_hostile handles {h:?}"),
    }
}

fn bad_xattr(empty: bool) -> Xattr {
    match empty {
        true => Xattr {
            name: Vec::new(),
            value: b"v".to_vec(),
            key: XKey::Schily,
        },
        false => Xattr {
            name: b"user.a\0b".to_vec(),
            value: b"v".to_vec(),
            key: XKey::Libarchive { pad: true },
        },
    }
}

/// PAX sparse keys of GNU tar's formats 0.0, 0.1 and 1.0.
pub fn sparse_keys(style: usize, path: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let pairs: Vec<(&str, &[u8])> = match style {
        0 => vec![
            ("GNU.sparse.size", b"100"),
            ("GNU.sparse.numblocks", b"1"),
            ("GNU.sparse.offset", b"0"),
            ("GNU.sparse.numbytes", b"0"),
        ],
        1 => vec![("GNU.sparse.size", b"100"), ("GNU.sparse.map", b"0,0")],
        _ => vec![
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", path),
            ("GNU.sparse.realsize", b"100"),
        ],
    };
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.to_vec()))
        .collect()
}

/// Well-formed archives: every directory before its contents, no duplicates, unique
/// xattrs (ordered as `with_look` says), no device nodes, hardlinks to earlier regular
/// files, safe symlinks. No GNU sparse files: libostree 2022.7 imports none ("Unexpected
/// EOF"), not even GNU tar's own.
pub fn well_formed() -> impl Strategy<Value = Vec<Entry>> {
    let root = prop::option::weighted(0.7, wf_look());
    let leaf = (vec(select(NAMES), 1..4), wf_kind(), wf_look());
    (root, vec(leaf, 0..14), any::<bool>()).prop_map(|(root, leaves, dot)| {
        let prefix = if dot { "./" } else { "" };
        lower_well_formed(root, leaves, prefix)
    })
}

/// A well-formed entry's look: sorted unique xattrs.
fn wf_look() -> impl Strategy<Value = Look> {
    let ids = select(&[0u64, 0, 1000, 999, 998, 65534][..]);
    let modes = select(
        &[
            0o644, 0o755, 0o600, 0o640, 0o4755, 0o2755, 0o1777, 0o444, 0o777,
        ][..],
    );
    look(modes, ids).prop_map(|mut look| {
        look.xattrs = dedup(look.xattrs);
        look.xattrs.sort_by(|a, b| a.name.cmp(&b.name));
        look
    })
}

fn wf_kind() -> impl Strategy<Value = (Kind, Option<Index>)> {
    let target = select(&["a", "b/c", "/usr/bin/a", "/", "./é", "x.y"][..]);
    prop_oneof![
        5 => data().prop_map(|data| (Kind::File { flag: b'0', data }, None)),
        2 => Just((Kind::Dir, None)),
        2 => target.prop_map(|t| (Kind::Symlink(t.into()), None)),
        2 => any::<Index>().prop_map(|i| (Kind::Hardlink { target: Vec::new(), data: Vec::new() }, Some(i))),
    ]
}

type Leaf = (Vec<&'static str>, (Kind, Option<Index>), Look);

fn lower_well_formed(root: Option<Look>, leaves: Vec<Leaf>, prefix: &str) -> Vec<Entry> {
    let mut tree: BTreeMap<Vec<&str>, (Kind, Option<Index>, Look)> = BTreeMap::new();
    for (comps, (kind, link), look) in leaves {
        for n in 1..comps.len() {
            let dir_look = Look {
                mode: 0o755,
                xattrs: Vec::new(),
                ..look.clone()
            };
            let slot = tree
                .entry(comps[..n].to_vec())
                .or_insert((Kind::Dir, None, dir_look));
            slot.0 = Kind::Dir;
        }
        tree.entry(comps).or_insert((kind, link, look));
    }
    let mut out: Vec<Entry> = root
        .into_iter()
        .map(|l| with_look(Entry::dir("./"), &l))
        .collect();
    for (comps, (kind, link, look)) in tree {
        let path = format!(
            "{prefix}{}{}",
            comps.join("/"),
            if kind == Kind::Dir { "/" } else { "" }
        );
        let kind = match (kind, link) {
            (Kind::Hardlink { .. }, Some(i)) => earlier_file(&out, i),
            (kind, _) => kind,
        };
        out.push(with_look(Entry::new(path, kind), &look));
    }
    if let Some(first) = out.first_mut().filter(|e| e.path != b"./") {
        (first.uid, first.gid) = (0, 0);
    }
    out
}

/// A hardlink to an earlier regular file, or a file when there is none.
fn earlier_file(out: &[Entry], pick: Index) -> Kind {
    let files: Vec<&Entry> = out
        .iter()
        .filter(|e| matches!(e.kind, Kind::File { .. }))
        .collect();
    match files.len() {
        0 => Kind::File {
            flag: b'0',
            data: b"no file to link to".to_vec(),
        },
        n => Kind::Hardlink {
            target: files[pick.index(n)].path.clone(),
            data: Vec::new(),
        },
    }
}

/// Gives `e` the look `l`. libostree gets an entry's xattrs from libarchive, which lists
/// them in reverse archive order; the contract stores them sorted on files and, like
/// libostree, in reverse archive order on directories. So files list theirs reverse-sorted
/// (libostree then stores them sorted too); directories keep any order.
fn with_look(e: Entry, l: &Look) -> Entry {
    let mut e = l.apply(e);
    if !matches!(e.kind, Kind::Dir) {
        e.xattrs = e.xattrs.into_iter().rev().collect();
    }
    e
}
