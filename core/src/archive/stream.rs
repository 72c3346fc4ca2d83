//! A tar stream, header by header: ustar, GNU (long names, sparse files) and PAX. The `tar`
//! crate parses each header's fields; the framing is ours because the crate's PAX reader
//! splits records at newlines instead of by their length, so a binary xattr value (a file
//! capability with a 0x0a byte) broke every record after it, and a crafted value could
//! forge a `path` or `size` record that another reader would not see.

use std::io::Read;

const BLOCK: u64 = 512;

/// PAX records as (key, value) pairs, in archive order.
pub type PaxRecords = Vec<(Vec<u8>, Vec<u8>)>;

/// PAX records and GNU long names of one entry may hold at most this much: they are kept in
/// memory, so a small compressed archive cannot make the reader allocate without bound.
pub const EXTENSION_MAX: u64 = 1 << 20;

/// One entry as the archive states it, its extension headers applied.
pub struct Raw {
    pub header: tar::Header,
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    pub uid: u64,
    pub gid: u64,
    /// The content's size (a sparse file's expanded size).
    pub size: u64,
    /// Every PAX record of the entry, in order.
    pub pax: PaxRecords,
    /// How the content is laid out: data from the archive, or zeros (sparse holes).
    chunks: Vec<Chunk>,
}

#[derive(Clone, Copy)]
enum Chunk {
    Data(u64),
    Zeros(u64),
}

/// The entries of a tar stream. `next_entry` skips what the previous entry's reader left.
pub struct Stream<R> {
    inner: R,
    /// Bytes of the current entry's data (and padding) not read yet.
    pending: u64,
}

#[derive(Default)]
struct Extensions {
    pax: PaxRecords,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

impl<R: Read> Stream<R> {
    pub fn new(inner: R) -> Stream<R> {
        Stream { inner, pending: 0 }
    }

    /// The stream after the end of the archive, for draining.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry; `None` at the end-of-archive block.
    pub fn next_entry(&mut self) -> Result<Option<Raw>, String> {
        self.skip_pending()?;
        let mut ext = Extensions::default();
        loop {
            let Some(header) = self.header()? else {
                if ext.pax.is_empty() && ext.long_name.is_none() && ext.long_link.is_none() {
                    return Ok(None);
                }
                return Err("the archive ends after an extension header".to_string());
            };
            let kind = header.entry_type();
            let extended = header.as_ustar().is_some() || header.as_gnu().is_some();
            if extended && kind.is_pax_local_extensions() {
                ext.pax.extend(pax_records(&self.extension(&header)?)?);
            } else if extended && kind.is_pax_global_extensions() {
                self.extension(&header)?;
            } else if extended && kind.is_gnu_longname() {
                ext.long_name = Some(trim_nul(self.extension(&header)?));
            } else if extended && kind.is_gnu_longlink() {
                ext.long_link = Some(trim_nul(self.extension(&header)?));
            } else {
                return self.entry(header, ext).map(Some);
            }
        }
    }

    /// The content of `raw`, the entry `next_entry` just returned.
    pub fn data<'s>(&'s mut self, raw: &Raw) -> Data<'s, R> {
        Data {
            stream: self,
            chunks: raw.chunks.clone(),
            at: 0,
        }
    }

    fn entry(&mut self, header: tar::Header, ext: Extensions) -> Result<Raw, String> {
        let number = |key: &str, from_header: std::io::Result<u64>| -> Result<u64, String> {
            match pax_value(&ext.pax, key) {
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| format!("a PAX '{key}' that is not a number")),
                None => from_header.map_err(|e| format!("an unreadable {key}: {e}")),
            }
        };
        let stored = number("size", header.entry_size())?;
        let uid = number("uid", header.uid())?;
        let gid = number("gid", header.gid())?;
        let path = pax_value(&ext.pax, "path")
            .map(<[u8]>::to_vec)
            .or(ext.long_name)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let link = pax_value(&ext.pax, "linkpath")
            .map(<[u8]>::to_vec)
            .or(ext.long_link)
            .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        let (size, chunks) = if header.entry_type().is_gnu_sparse() {
            self.sparse_layout(&header, stored)?
        } else {
            (stored, vec![Chunk::Data(stored)])
        };
        self.pending = padded(stored)?;
        Ok(Raw {
            header,
            path,
            link,
            uid,
            gid,
            size,
            pax: ext.pax,
            chunks,
        })
    }

    /// A GNU sparse file: the chunks its header (and extension blocks) list, holes between.
    fn sparse_layout(
        &mut self,
        header: &tar::Header,
        stored: u64,
    ) -> Result<(u64, Vec<Chunk>), String> {
        let gnu = header
            .as_gnu()
            .ok_or("a sparse entry without a GNU header")?;
        let real = gnu
            .real_size()
            .map_err(|e| format!("an unreadable sparse size: {e}"))?;
        let mut blocks: Vec<(u64, u64)> = Vec::new();
        let mut add = |b: &tar::GnuSparseHeader| -> Result<(), String> {
            if !b.is_empty() {
                let off = b
                    .offset()
                    .map_err(|e| format!("an unreadable sparse map: {e}"))?;
                let len = b
                    .length()
                    .map_err(|e| format!("an unreadable sparse map: {e}"))?;
                blocks.push((off, len));
            }
            Ok(())
        };
        gnu.sparse.iter().try_for_each(&mut add)?;
        let mut extended = gnu.is_extended();
        while extended {
            let mut ext = tar::GnuExtSparseHeader::new();
            if !read_block(&mut self.inner, ext.as_mut_bytes())? {
                return Err("the archive ends inside a sparse map".to_string());
            }
            ext.sparse().iter().try_for_each(&mut add)?;
            extended = ext.is_extended();
        }
        let mut chunks = Vec::new();
        let (mut at, mut data) = (0u64, 0u64);
        for (off, len) in blocks {
            if off < at {
                return Err("a sparse map with overlapping or unordered chunks".to_string());
            }
            chunks.push(Chunk::Zeros(off - at));
            chunks.push(Chunk::Data(len));
            at = off.checked_add(len).ok_or("a sparse map past 2^64 bytes")?;
            data = data
                .checked_add(len)
                .ok_or("a sparse map past 2^64 bytes")?;
        }
        if data != stored || at > real {
            return Err("a sparse map that does not match the entry's sizes".to_string());
        }
        chunks.push(Chunk::Zeros(real - at));
        Ok((real, chunks))
    }

    /// The data of an extension header, at most `EXTENSION_MAX` bytes.
    fn extension(&mut self, header: &tar::Header) -> Result<Vec<u8>, String> {
        let size = header
            .entry_size()
            .map_err(|e| format!("an unreadable extension header: {e}"))?;
        if size > EXTENSION_MAX {
            return Err(format!(
                "an extension header of {size} bytes (at most {EXTENSION_MAX})"
            ));
        }
        let mut data = Vec::with_capacity(size as usize);
        (&mut self.inner)
            .take(size)
            .read_to_end(&mut data)
            .map_err(|e| e.to_string())?;
        if data.len() as u64 != size {
            return Err("the archive ends inside an extension header".to_string());
        }
        self.pending = padded(size)? - size;
        self.skip_pending()?;
        Ok(data)
    }

    /// The next header block; `None` at an all-zero block or the end of the stream.
    fn header(&mut self) -> Result<Option<tar::Header>, String> {
        let mut block = [0u8; BLOCK as usize];
        if !read_block(&mut self.inner, &mut block)? || block.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        if !checksum_ok(&block) {
            return Err("a header whose checksum does not match".to_string());
        }
        let header = tar::Header::from_byte_slice(&block).clone();
        Ok(Some(header))
    }

    fn skip_pending(&mut self) -> Result<(), String> {
        let want = self.pending;
        let skipped = std::io::copy(&mut (&mut self.inner).take(want), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        self.pending = 0;
        if skipped != want {
            return Err("the archive ends inside an entry's data".to_string());
        }
        Ok(())
    }
}

/// An entry's content: the archive's data and zeros for sparse holes.
pub struct Data<'s, R> {
    stream: &'s mut Stream<R>,
    chunks: Vec<Chunk>,
    at: usize,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(chunk) = self.chunks.get_mut(self.at) {
            let (Chunk::Data(left) | Chunk::Zeros(left)) = chunk;
            if *left == 0 {
                self.at += 1;
                continue;
            }
            let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
            let n = match chunk {
                Chunk::Zeros(_) => {
                    buf[..max].fill(0);
                    max
                }
                Chunk::Data(_) => {
                    let n = self.stream.inner.read(&mut buf[..max])?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    self.stream.pending -= n as u64;
                    n
                }
            };
            let (Chunk::Data(left) | Chunk::Zeros(left)) = &mut self.chunks[self.at];
            *left -= n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// Whether a header block's checksum field matches its bytes, summed unsigned or (as some
/// old tars did) signed, with the field itself counted as spaces.
pub fn checksum_ok(block: &[u8; BLOCK as usize]) -> bool {
    let field = std::str::from_utf8(&block[148..156]).unwrap_or("");
    let Ok(stated) = i64::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum = |byte: fn(u8) -> i64| -> i64 {
        block
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    byte(*b)
                }
            })
            .sum()
    };
    stated == sum(i64::from) || stated == sum(|b| i64::from(b as i8))
}

/// PAX records (`LEN KEY=VALUE\n`), read by their length: values may hold any byte.
fn pax_records(data: &[u8]) -> Result<PaxRecords, String> {
    let malformed = || "a malformed PAX record".to_string();
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ').ok_or_else(malformed)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > space + 1 && *l <= rest.len())
            .ok_or_else(malformed)?;
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").ok_or_else(malformed)?;
        let eq = record
            .iter()
            .position(|b| *b == b'=')
            .ok_or_else(malformed)?;
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

/// The last value of a PAX key (a later record overrides an earlier one).
pub fn pax_value<'p>(pax: &'p [(Vec<u8>, Vec<u8>)], key: &str) -> Option<&'p [u8]> {
    pax.iter()
        .rev()
        .find(|(k, _)| k.as_slice() == key.as_bytes())
        .map(|(_, v)| v.as_slice())
}

fn trim_nul(mut name: Vec<u8>) -> Vec<u8> {
    while name.last() == Some(&0) {
        name.pop();
    }
    name
}

fn padded(size: u64) -> Result<u64, String> {
    size.checked_add(BLOCK - 1)
        .map(|s| s & !(BLOCK - 1))
        .ok_or_else(|| "an entry size past 2^64 bytes".to_string())
}

/// Fill `block`; false at a clean end of the stream, an error for a partial block.
fn read_block(inner: &mut impl Read, block: &mut [u8; BLOCK as usize]) -> Result<bool, String> {
    let mut n = 0;
    while n < block.len() {
        match inner.read(&mut block[n..]) {
            Ok(0) if n == 0 => return Ok(false),
            Ok(0) => return Err("the archive ends inside a header".to_string()),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::pax_records;

    #[test]
    fn pax_records_are_read_by_length() {
        let value = b"a\nb";
        let body = b"SCHILY.xattr.user.x=a\nb\n";
        let len = body.len() + 3;
        let mut data = format!("{len} ").into_bytes();
        data.extend_from_slice(body);
        data.extend_from_slice(b"12 path=a/b\n");
        let records = pax_records(&data).unwrap();
        assert_eq!(records[0].1, value);
        assert_eq!(records[1], (b"path".to_vec(), b"a/b".to_vec()));
        assert!(pax_records(b"99 path=x\n").is_err());
        assert!(pax_records(b"5 a\n").is_err());
    }
}
