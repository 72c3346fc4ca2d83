//! Writing tar streams by hand, 512-byte header by header, so that the tests can produce
//! what no well-behaved writer (the `tar` crate's `Builder` included) would: ustar and GNU
//! headers, GNU long names and links (`L`/`K`), pax `x` and `g` headers with any keys,
//! base-256 numbers, GNU sparse files, unknown type letters, then damage (a cut, a wrong
//! header checksum) and compression by the system's tools.

use std::io::Write;
use std::process::{Command, Stdio};

pub const BLOCK: usize = 512;
/// What the header's name field holds when the real path is in a pax `path` record.
pub const PAX_NAME_PLACEHOLDER: &[u8] = b"pax-placeholder-name";
const PAX_LINK_PLACEHOLDER: &[u8] = b"pax-placeholder-link";

/// What an entry is, with what its type needs.
#[derive(Clone, PartialEq)]
pub enum Kind {
    /// Type `0`, `\0` or `7`.
    File {
        flag: u8,
        data: Vec<u8>,
    },
    Dir,
    Symlink(Vec<u8>),
    /// Type `1`; `data` is carried (the header's size) and must be ignored.
    Hardlink {
        target: Vec<u8>,
        data: Vec<u8>,
    },
    /// Devices, fifos and unknown type letters: a header with no data.
    Special(u8),
    /// GNU `S` (old GNU sparse format): `chunks` are (offset, bytes) in a file of `size`,
    /// in order; GNU tar reads each chunk from a block of its own, so offsets and lengths
    /// should be multiples of 512.
    Sparse {
        size: u64,
        chunks: Vec<(u64, Vec<u8>)>,
    },
}

/// Where a name, a link target or the owner is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The header's own field (ustar prefix split for long names, base-256 for big ids),
    /// falling back to GNU long names when the field cannot hold it.
    Header,
    /// A GNU `L`/`K` header (for ids: base-256 even when octal fits).
    Gnu,
    /// A pax `x` record (`path`, `linkpath`, `uid`, `gid`).
    Pax,
}

/// How an xattr is spelt in the pax header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XKey {
    /// `SCHILY.xattr.NAME=raw value`
    Schily,
    /// `LIBARCHIVE.xattr.%-ENCODED-NAME=base64 value`, with or without `=` padding.
    Libarchive { pad: bool },
    /// `RHT.security.selinux=raw value` (the name must be `security.selinux`).
    Rht,
}

#[derive(Clone, PartialEq)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    pub key: XKey,
}

/// One archive entry as the test means it: the path as written, and how it is spelt.
#[derive(Clone, PartialEq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: Kind,
    /// The header's mode field, written as is (type bits and all).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub gnu_magic: bool,
    pub name_via: Via,
    pub link_via: Via,
    pub ids_via: Via,
    pub xattrs: Vec<Xattr>,
    /// Other pax records of the entry (ignored keys, `GNU.sparse.*`).
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
    /// Records of a pax global (`g`) header written just before the entry, if any.
    pub global: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    pub fn new(path: impl AsRef<[u8]>, kind: Kind) -> Entry {
        let mode = match kind {
            Kind::Dir => 0o755,
            Kind::Symlink(_) => 0o777,
            _ => 0o644,
        };
        Entry {
            path: path.as_ref().to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            gnu_magic: false,
            name_via: Via::Header,
            link_via: Via::Header,
            ids_via: Via::Header,
            xattrs: Vec::new(),
            extra: Vec::new(),
            global: Vec::new(),
        }
    }
    pub fn file(path: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Entry {
        Entry::new(
            path,
            Kind::File {
                flag: b'0',
                data: data.as_ref().to_vec(),
            },
        )
    }
    pub fn dir(path: impl AsRef<[u8]>) -> Entry {
        Entry::new(path, Kind::Dir)
    }
    pub fn symlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Entry {
        Entry::new(path, Kind::Symlink(target.as_ref().to_vec()))
    }
    pub fn hardlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Entry {
        let target = target.as_ref().to_vec();
        Entry::new(
            path,
            Kind::Hardlink {
                target,
                data: Vec::new(),
            },
        )
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        (self.uid, self.gid) = (uid, gid);
        self
    }
    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = mode;
        self
    }
    pub fn xattr(mut self, name: &str, value: impl AsRef<[u8]>, key: XKey) -> Entry {
        let (name, value) = (name.as_bytes().to_vec(), value.as_ref().to_vec());
        self.xattrs.push(Xattr { name, value, key });
        self
    }
    pub fn pax(mut self, key: &str, value: impl AsRef<[u8]>) -> Entry {
        self.extra
            .push((key.as_bytes().to_vec(), value.as_ref().to_vec()));
        self
    }
    pub fn name_via(mut self, via: Via) -> Entry {
        self.name_via = via;
        self
    }
    pub fn link_via(mut self, via: Via) -> Entry {
        self.link_via = via;
        self
    }
    pub fn ids_via(mut self, via: Via) -> Entry {
        self.ids_via = via;
        self
    }
}

/// Bytes as an escaped string, long ones shortened: what a failure report needs.
pub struct Text<'a>(pub &'a [u8]);

impl std::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let shown = self.0.escape_ascii().to_string();
        match shown.len() > 120 {
            true => write!(f, "\"{}...\" ({} bytes)", &shown[..100], self.0.len()),
            false => write!(f, "\"{shown}\""),
        }
    }
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Kind::File { flag, data } => write!(f, "File({:?}, {:?})", *flag as char, Text(data)),
            Kind::Dir => write!(f, "Dir"),
            Kind::Symlink(t) => write!(f, "Symlink({:?})", Text(t)),
            Kind::Hardlink { target, data } => {
                write!(f, "Hardlink({:?}, data {:?})", Text(target), Text(data))
            }
            Kind::Special(flag) => write!(f, "Special({:?})", *flag as char),
            Kind::Sparse { size, chunks } => {
                let map: Vec<_> = chunks.iter().map(|(o, b)| (o, b.len())).collect();
                write!(f, "Sparse(size {size}, chunks {map:?})")
            }
        }
    }
}

impl std::fmt::Debug for Xattr {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{:?}={:?} as {:?}",
            Text(&self.name),
            Text(&self.value),
            self.key
        )
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{:?} {:?} mode {:o} owner {}:{}",
            Text(&self.path),
            self.kind,
            self.mode,
            self.uid,
            self.gid
        )?;
        write!(
            f,
            " via name {:?} link {:?} ids {:?}",
            self.name_via, self.link_via, self.ids_via
        )?;
        if self.gnu_magic {
            write!(f, " gnu")?;
        }
        if !self.xattrs.is_empty() {
            write!(f, " xattrs {:?}", self.xattrs)?;
        }
        if !self.extra.is_empty() {
            write!(f, " pax {}", show_records(&self.extra))?;
        }
        if !self.global.is_empty() {
            write!(f, " after global {}", show_records(&self.global))?;
        }
        Ok(())
    }
}

fn show_records(records: &[(Vec<u8>, Vec<u8>)]) -> String {
    let shown: Vec<String> = records
        .iter()
        .map(|(k, v)| format!("{:?}={:?}", Text(k), Text(v)))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// Where each entry landed in the stream.
#[derive(Clone, Debug, Default)]
pub struct Span {
    /// Offset of each header block of the entry (pre-headers first, the main one last).
    pub headers: Vec<usize>,
    /// Offset of the main header.
    pub main: usize,
    pub data_start: usize,
    pub data_end: usize,
}

/// A written archive: the bytes and where each entry is.
pub struct Written {
    pub bytes: Vec<u8>,
    pub spans: Vec<Span>,
}

/// The archive holding `entries`, ended by two zero blocks.
pub fn write(entries: &[Entry]) -> Written {
    let mut out = Written {
        bytes: Vec::new(),
        spans: Vec::new(),
    };
    for e in entries {
        let span = write_entry(&mut out.bytes, e);
        out.spans.push(span);
    }
    out.bytes.extend_from_slice(&[0; 2 * BLOCK]);
    out
}

fn write_entry(out: &mut Vec<u8>, e: &Entry) -> Span {
    let mut span = Span::default();
    if !e.global.is_empty() {
        let data: Vec<u8> = e
            .global
            .iter()
            .flat_map(|(k, v)| pax_record(k, v))
            .collect();
        push_member(
            out,
            &mut span,
            special_header(b"pax_global_header", b'g', &data),
            &data,
        );
    }
    let mut pax = e
        .extra
        .iter()
        .flat_map(|(k, v)| pax_record(k, v))
        .collect::<Vec<_>>();
    let mut main = Header::new(e.gnu_magic || matches!(e.kind, Kind::Sparse { .. }));
    place_name(out, &mut span, &mut pax, &mut main, e);
    place_link(out, &mut span, &mut pax, &mut main, e);
    place_ids(&mut pax, &mut main, e);
    pax.extend(e.xattrs.iter().flat_map(xattr_record));
    if !pax.is_empty() {
        let header = special_header(b"PaxHeaders/entry", b'x', &pax);
        push_member(out, &mut span, header, &pax);
    }
    let data = fill_main(&mut main, e);
    span.main = out.len();
    push_member(out, &mut span, main.finish(), &[]);
    span.data_start = out.len();
    out.extend_from_slice(&data);
    span.data_end = out.len();
    pad(out);
    span
}

/// A header block followed by its data, padded to a block.
fn push_member(out: &mut Vec<u8>, span: &mut Span, header: [u8; BLOCK], data: &[u8]) {
    span.headers.push(out.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    pad(out);
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
}

/// A header of a pax or GNU long-name member carrying `data`.
fn special_header(name: &[u8], flag: u8, data: &[u8]) -> [u8; BLOCK] {
    let mut h = Header::new(matches!(flag, b'L' | b'K'));
    h.bytes(0, 100, name);
    h.number(100, 8, 0o644);
    h.number(124, 12, data.len() as u64);
    h.0[156] = flag;
    h.finish()
}

fn gnu_long(out: &mut Vec<u8>, span: &mut Span, flag: u8, value: &[u8]) {
    let mut data = value.to_vec();
    data.push(0);
    push_member(
        out,
        span,
        special_header(b"././@LongLink", flag, &data),
        &data,
    );
}

fn place_name(out: &mut Vec<u8>, span: &mut Span, pax: &mut Vec<u8>, h: &mut Header, e: &Entry) {
    let p = &e.path;
    let via = if p.contains(&0) { Via::Pax } else { e.name_via };
    match via {
        Via::Pax => {
            pax.extend(pax_record(b"path", p));
            h.bytes(0, 100, PAX_NAME_PLACEHOLDER);
        }
        Via::Header if p.len() <= 100 => h.bytes(0, 100, p),
        Via::Header if !h.gnu() && ustar_split(p).is_some() => {
            let at = ustar_split(p).unwrap_or_default();
            h.bytes(345, 155, &p[..at]);
            h.bytes(0, 100, &p[at + 1..]);
        }
        Via::Header | Via::Gnu => {
            gnu_long(out, span, b'L', p);
            h.bytes(0, 100, &p[..p.len().min(100)]);
        }
    }
}

/// Where a long path can be cut into ustar prefix and name.
fn ustar_split(p: &[u8]) -> Option<usize> {
    (1..p.len().min(156))
        .rev()
        .find(|&i| p[i] == b'/' && p.len() - i - 1 <= 100 && p.len() - i - 1 > 0)
}

fn place_link(out: &mut Vec<u8>, span: &mut Span, pax: &mut Vec<u8>, h: &mut Header, e: &Entry) {
    let t = match &e.kind {
        Kind::Symlink(t) | Kind::Hardlink { target: t, .. } => t,
        _ => return,
    };
    let via = if t.contains(&0) { Via::Pax } else { e.link_via };
    match via {
        Via::Pax => {
            pax.extend(pax_record(b"linkpath", t));
            h.bytes(157, 100, PAX_LINK_PLACEHOLDER);
        }
        Via::Header if t.len() <= 100 => h.bytes(157, 100, t),
        Via::Header | Via::Gnu => {
            gnu_long(out, span, b'K', t);
            h.bytes(157, 100, &t[..t.len().min(100)]);
        }
    }
}

fn place_ids(pax: &mut Vec<u8>, h: &mut Header, e: &Entry) {
    const BASE256_MAX: u64 = (1 << 56) - 1;
    if e.ids_via == Via::Pax || e.uid.max(e.gid) > BASE256_MAX {
        pax.extend(pax_record(b"uid", e.uid.to_string().as_bytes()));
        pax.extend(pax_record(b"gid", e.gid.to_string().as_bytes()));
        h.number(108, 8, 0o7777777);
        h.number(116, 8, 0o7777777);
    } else if e.ids_via == Via::Gnu {
        h.base256(108, 8, e.uid);
        h.base256(116, 8, e.gid);
    } else {
        h.number(108, 8, e.uid);
        h.number(116, 8, e.gid);
    }
}

/// Type, mode, size (and the sparse map) of the main header; returns the entry's data.
fn fill_main(h: &mut Header, e: &Entry) -> Vec<u8> {
    let (flag, data) = match &e.kind {
        Kind::File { flag, data } => (*flag, data.clone()),
        Kind::Dir => (b'5', Vec::new()),
        Kind::Symlink(_) => (b'2', Vec::new()),
        Kind::Hardlink { data, .. } => (b'1', data.clone()),
        Kind::Special(flag) => (*flag, Vec::new()),
        Kind::Sparse { size, chunks } => (b'S', sparse_map(h, *size, chunks)),
    };
    h.0[156] = flag;
    h.number(100, 8, e.mode as u64);
    h.number(136, 12, 1_700_000_000);
    if flag != b'S' {
        h.number(124, 12, data.len() as u64);
    }
    data
}

/// Writes the sparse map of a GNU `S` header (up to 4 chunks in the header, 21 in each
/// extension block, which go in front of the data) and its size (the stored chunks, not
/// the extension blocks); returns extension blocks + data.
fn sparse_map(h: &mut Header, size: u64, chunks: &[(u64, Vec<u8>)]) -> Vec<u8> {
    h.number(483, 12, size);
    // Like GNU tar, a file ending in a hole gets an empty chunk at its end.
    let end = chunks.last().map_or(0, |(off, b)| off + b.len() as u64);
    let terminal = (end < size || chunks.is_empty()).then(|| (size, Vec::new()));
    let chunks: Vec<(u64, Vec<u8>)> = chunks.iter().cloned().chain(terminal).collect();
    for (i, (off, bytes)) in chunks.iter().take(4).enumerate() {
        h.number(386 + i * 24, 12, *off);
        h.number(386 + i * 24 + 12, 12, bytes.len() as u64);
    }
    h.0[482] = u8::from(chunks.len() > 4);
    let rest: Vec<_> = chunks.iter().skip(4).collect();
    let mut out = Vec::new();
    for (n, group) in rest.chunks(21).enumerate() {
        let mut ext = Header([0; BLOCK], true);
        for (i, (off, bytes)) in group.iter().enumerate() {
            ext.number(i * 24, 12, *off);
            ext.number(i * 24 + 12, 12, bytes.len() as u64);
        }
        ext.0[504] = u8::from((n + 1) * 21 < rest.len());
        out.extend_from_slice(&ext.0);
    }
    let stored: Vec<u8> = chunks.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    h.number(124, 12, stored.len() as u64);
    out.extend(stored);
    out
}

fn xattr_record(x: &Xattr) -> Vec<u8> {
    match x.key {
        XKey::Schily => pax_record(&[b"SCHILY.xattr.", &x.name[..]].concat(), &x.value),
        XKey::Libarchive { pad } => pax_record(
            &[b"LIBARCHIVE.xattr.", &percent_encode(&x.name)[..]].concat(),
            base64(&x.value, pad).as_bytes(),
        ),
        XKey::Rht => pax_record(b"RHT.security.selinux", &x.value),
    }
}

/// One pax record, `LEN key=value\n`, LEN counting the whole record.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    [len.to_string().as_bytes(), b" ", key, b"=", value, b"\n"].concat()
}

/// libarchive's xattr-name encoding: `%XX` for anything but letters, digits and `._-`.
pub fn percent_encode(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in name {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            out.push(b);
        } else {
            out.extend(format!("%{b:02X}").bytes());
        }
    }
    out
}

pub fn base64(data: &[u8], pad: bool) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, b)| v | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(DIGITS[(v >> (18 - 6 * i) & 0x3f) as usize] as char);
        }
        if pad {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// A header block being filled; `.1` says GNU magic (no ustar prefix field).
struct Header([u8; BLOCK], bool);

impl Header {
    fn new(gnu: bool) -> Header {
        let mut h = Header([0; BLOCK], gnu);
        h.bytes(257, 8, if gnu { b"ustar  \0" } else { b"ustar\x0000" });
        h
    }
    fn bytes(&mut self, at: usize, len: usize, value: &[u8]) {
        let n = value.len().min(len);
        self.0[at..at + n].copy_from_slice(&value[..n]);
    }
    /// Octal with a NUL when it fits, base-256 otherwise.
    fn number(&mut self, at: usize, len: usize, value: u64) {
        let digits = format!("{value:0w$o}", w = len - 1);
        if digits.len() < len {
            self.bytes(at, len, digits.as_bytes());
            self.0[at + len - 1] = 0;
        } else {
            self.base256(at, len, value);
        }
    }
    fn base256(&mut self, at: usize, len: usize, value: u64) {
        let be = value.to_be_bytes();
        let field = &mut self.0[at..at + len];
        field.fill(0);
        let n = be.len().min(len - 1);
        field[len - n..].copy_from_slice(&be[be.len() - n..]);
        field[0] |= 0x80;
    }
    fn gnu(&self) -> bool {
        self.1
    }
    fn finish(mut self) -> [u8; BLOCK] {
        self.0[148..156].fill(b' ');
        let sum: u32 = self.0.iter().map(|b| *b as u32).sum();
        self.bytes(148, 8, format!("{sum:06o}\0 ").as_bytes());
        self.0
    }
}

/// Replaces the checksum of the header at `at` by one that matches neither the unsigned
/// nor the signed sum of its bytes.
pub fn corrupt_checksum(bytes: &mut [u8], at: usize) {
    let block = &mut bytes[at..at + BLOCK];
    block[148..156].fill(b' ');
    let unsigned: i64 = block.iter().map(|b| *b as i64).sum();
    let signed: i64 = block.iter().map(|b| *b as i8 as i64).sum();
    let wrong = (unsigned + 1..).find(|v| *v != signed).unwrap_or_default();
    block[148..156].copy_from_slice(format!("{wrong:06o}\0 ").as_bytes());
}

/// How the archive file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// The bytes compressed by the system's tool.
pub fn compress(bytes: &[u8], how: Compression) -> Vec<u8> {
    let tool = match how {
        Compression::None => return bytes.to_vec(),
        Compression::Gzip => "gzip",
        Compression::Bzip2 => "bzip2",
        Compression::Xz => "xz",
        Compression::Zstd => "zstd",
    };
    let mut child = Command::new(tool)
        .args(["-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("compressor output");
    writer.join().expect("writer").expect("write to compressor");
    assert!(out.status.success(), "{tool} failed");
    out.stdout
}
