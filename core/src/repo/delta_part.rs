//! One static delta part in libostree's format (`static-delta-private.h`, 2022.7): a mode
//! table `a(uuu)` (uid, gid, mode, big-endian), an xattr table `aa(ayay)`, the raw data and
//! the operations, serialized as `(a(uuu)aa(ayay)ayay)`, compressed, and preceded by the
//! compression byte. Every object is one open-splice-and-close operation (`'S'`): for
//! metadata `length, offset`; for content `mode index, xattr index, length, offset`, as
//! LEB128 varints. A modified file may instead be a bsdiff patch against the file the client
//! has at its path (`delta_bsdiff.rs`): set-read-source, open, bspatch, close,
//! unset-read-source. The part's objects are listed in its header (type byte + binary
//! checksum) in the order the operations write them. The mode and xattr tables hold each
//! distinct value once per part. A part is LZMA-compressed, or, for data LZMA cannot
//! shrink, stored in an xz stream of uncompressed chunks (`delta_xz.rs`): both `'x'`.

use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;

/// The operation that writes one whole object from the raw data.
const OP_OPEN_SPLICE_AND_CLOSE: u8 = b'S';
/// The operations that write a file object by patching one the client has:
/// set-read-source, open, bspatch, close, unset-read-source.
const OP_SET_READ_SOURCE: u8 = b'r';
const OP_OPEN: u8 = b'o';
const OP_BSPATCH: u8 = b'B';
const OP_CLOSE: u8 = b'c';
const OP_UNSET_READ_SOURCE: u8 = b'R';

/// A part being filled, plain data only, so that it can be compressed on another thread.
#[derive(Default)]
pub(super) struct PartBuilder {
    /// Stored uncompressed (in the xz container) rather than LZMA-compressed.
    stored: bool,
    modes: Vec<(u32, u32, u32)>,
    mode_index: HashMap<(u32, u32, u32), u64>,
    /// Serialized `a(ayay)` values.
    xattrs: Vec<Vec<u8>>,
    xattr_index: HashMap<Vec<u8>, u64>,
    payload: Vec<u8>,
    ops: Vec<u8>,
    objects: Vec<u8>,
}

/// A content object's header fields: what the mode table holds, and its xattrs.
pub(super) struct ContentMeta {
    pub uid: u32,
    pub gid: u32,
    /// The whole `st_mode`, file type bits included.
    pub mode: u32,
    /// The serialized `a(ayay)`.
    pub xattrs: Vec<u8>,
}

/// A finished part: the file's bytes and what its header in the superblock says.
pub(super) struct Part {
    pub data: Vec<u8>,
    pub checksum: [u8; 32],
    /// The size of the objects it writes, uncompressed.
    pub usize: u64,
    /// Type byte + binary checksum per object.
    pub objects: Vec<u8>,
}

impl PartBuilder {
    /// An empty part, compressed or `stored` as it is.
    pub(super) fn new(stored: bool) -> PartBuilder {
        PartBuilder {
            stored,
            ..PartBuilder::default()
        }
    }

    /// The raw data held so far.
    pub(super) fn len(&self) -> usize {
        self.payload.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Add a metadata object (dirtree 2, dirmeta 3) from its serialized variant.
    pub(super) fn add_metadata(&mut self, objtype: u8, checksum: &str, data: &[u8]) -> Result<()> {
        self.push_object(objtype, checksum)?;
        let offset = self.payload.len() as u64;
        self.payload.extend_from_slice(data);
        self.ops.push(OP_OPEN_SPLICE_AND_CLOSE);
        write_varint(&mut self.ops, data.len() as u64);
        write_varint(&mut self.ops, offset);
        Ok(())
    }

    /// Add a file object: its content (a symlink's target) and header fields.
    pub(super) fn add_content(
        &mut self,
        checksum: &str,
        meta: ContentMeta,
        content: &[u8],
    ) -> Result<()> {
        self.push_object(1, checksum)?;
        let (mode, xattr) = self.header_indexes(meta);
        let offset = self.payload.len() as u64;
        self.payload.extend_from_slice(content);
        self.ops.push(OP_OPEN_SPLICE_AND_CLOSE);
        for n in [mode, xattr, content.len() as u64, offset] {
            write_varint(&mut self.ops, n);
        }
        Ok(())
    }

    /// Add a file object of `size` bytes the client makes by applying the bsdiff `patch`
    /// to file object `source`, which it has (libostree loads it from a bare repository).
    pub(super) fn add_patched(
        &mut self,
        checksum: &str,
        meta: ContentMeta,
        size: u64,
        source: &str,
        patch: &[u8],
    ) -> Result<()> {
        self.push_object(1, checksum)?;
        let (mode, xattr) = self.header_indexes(meta);
        let source_at = self.payload.len() as u64;
        self.payload.extend_from_slice(&checksum_bytes(source)?);
        let patch_at = self.payload.len() as u64;
        self.payload.extend_from_slice(patch);
        self.ops.push(OP_SET_READ_SOURCE);
        write_varint(&mut self.ops, source_at);
        self.ops.push(OP_OPEN);
        for n in [mode, xattr, size] {
            write_varint(&mut self.ops, n);
        }
        self.ops.push(OP_BSPATCH);
        write_varint(&mut self.ops, patch_at);
        write_varint(&mut self.ops, patch.len() as u64);
        self.ops.push(OP_CLOSE);
        self.ops.push(OP_UNSET_READ_SOURCE);
        Ok(())
    }

    /// The indexes of a file's header fields in the part's mode and xattr tables, adding
    /// them when new.
    fn header_indexes(&mut self, meta: ContentMeta) -> (u64, u64) {
        let key = (meta.uid.to_be(), meta.gid.to_be(), meta.mode.to_be());
        let mode = *self.mode_index.entry(key).or_insert_with(|| {
            self.modes.push(key);
            self.modes.len() as u64 - 1
        });
        let xattr = match self.xattr_index.get(&meta.xattrs) {
            Some(i) => *i,
            None => {
                self.xattrs.push(meta.xattrs.clone());
                self.xattr_index
                    .insert(meta.xattrs, self.xattrs.len() as u64 - 1);
                self.xattrs.len() as u64 - 1
            }
        };
        (mode, xattr)
    }

    fn push_object(&mut self, objtype: u8, checksum: &str) -> Result<()> {
        self.objects.push(objtype);
        self.objects.extend_from_slice(&checksum_bytes(checksum)?);
        Ok(())
    }

    /// Serialize, and compress unless stored (LZMA at `preset`), in the xz container.
    pub(super) fn finish(self, preset: u32) -> Result<Part> {
        let usize = self.payload.len() as u64;
        let serialized = self.serialize()?;
        let data = match self.stored {
            true => [&[b'x'][..], &super::delta_xz::stored(&serialized)].concat(),
            false => {
                let mut data = vec![b'x'];
                let mut xz = xz2::write::XzEncoder::new(&mut data, preset);
                xz.write_all(&serialized)
                    .and_then(|_| xz.finish().map(|_| ()))
                    .context("cannot compress a static delta part")?;
                data
            }
        };
        let checksum = Sha256::digest(&data).into();
        Ok(Part {
            data,
            checksum,
            usize,
            objects: self.objects,
        })
    }

    /// The `(a(uuu)aa(ayay)ayay)` variant's bytes.
    fn serialize(&self) -> Result<Vec<u8>> {
        use glib::prelude::*;
        let ty = glib::VariantTy::new("a(ayay)").map_err(|e| anyhow!("{e}"))?;
        let xattrs = self
            .xattrs
            .iter()
            .map(|x| glib::Variant::from_data_with_type(x.as_slice(), ty));
        let v = glib::Variant::tuple_from_iter([
            self.modes.to_variant(),
            glib::Variant::array_from_iter_with_type(ty, xattrs),
            glib::Variant::array_from_fixed_array(&self.payload),
            glib::Variant::array_from_fixed_array(&self.ops),
        ]);
        Ok(v.data().to_vec())
    }
}

/// libostree's varint (`_ostree_write_varuint64`), also xz's: 7 bits a byte, low first, high bit set
/// on all bytes but the last.
/// A checksum's 32 bytes.
fn checksum_bytes(checksum: &str) -> Result<Vec<u8>> {
    hex::decode(checksum)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| anyhow!("bad object checksum {checksum}"))
}

pub(super) fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_leb128() {
        let mut out = Vec::new();
        for n in [0, 127, 128, 300, 1 << 40] {
            write_varint(&mut out, n);
        }
        assert_eq!(
            out,
            [0, 127, 0x80, 1, 0xac, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]
        );
    }
}
