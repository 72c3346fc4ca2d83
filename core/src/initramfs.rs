//! Looking inside an initramfs without unpacking it: the archive chain the kernel reads
//! (uncompressed newc cpio archives, such as an early microcode one, then usually one
//! compressed archive: gzip, xz or zstd), parsed as a stream, looking for a file by name.
//! The bootable lint uses it to tell whether an initramfs can mount an OSTree deployment.

use anyhow::{anyhow, bail, Result};
use std::io::Write;

/// The compressions of an archive in the chain, by magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Cpio,
    Gzip,
    Xz,
    Zstd,
}

fn format_of(data: &[u8]) -> Option<Format> {
    const MAGICS: &[(&[u8], Format)] = &[
        (b"070701", Format::Cpio),
        (b"070702", Format::Cpio),
        (&[0x1f, 0x8b], Format::Gzip),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0], Format::Xz),
        (&[0x28, 0xb5, 0x2f, 0xfd], Format::Zstd),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| data.starts_with(magic))
        .map(|(_, f)| *f)
}

/// The first entry of the initramfs `data` whose path `wanted` accepts (paths without a
/// leading `./` or `/`); `None` when no archive in the chain has one.
pub fn find(data: &[u8], wanted: &dyn Fn(&str) -> bool) -> Result<Option<String>> {
    let mut offset = 0;
    loop {
        while data.get(offset) == Some(&0) {
            offset += 1;
        }
        let rest = &data[offset..];
        if rest.is_empty() {
            return Ok(None);
        }
        let format = format_of(rest).ok_or_else(|| {
            anyhow!(
                "unknown format at byte {offset} (starts with {:02x?}); readable: cpio, gzip, xz, zstd",
                &rest[..rest.len().min(6)]
            )
        })?;
        let mut sink = CpioStream::new(wanted, format == Format::Cpio);
        let copied = match format {
            Format::Cpio => sink.write_all(rest),
            Format::Gzip => {
                std::io::copy(&mut flate2::read::MultiGzDecoder::new(rest), &mut sink).map(drop)
            }
            Format::Xz => lzma_rs::xz_decompress(&mut std::io::BufReader::new(rest), &mut sink)
                .map_err(|e| match e {
                    lzma_rs::error::Error::IoError(io) => io,
                    other => std::io::Error::other(format!("{other:?}")),
                }),
            Format::Zstd => ruzstd::StreamingDecoder::new(rest)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|mut d| std::io::copy(&mut d, &mut sink).map(drop)),
        };
        if let Some(found) = sink.found {
            return Ok(Some(found));
        }
        if let Err(e) = copied {
            bail!("{format:?} archive at byte {offset}: {e}");
        }
        sink.check_complete()?;
        match (format, sink.ended_at) {
            // The next archive of the chain starts after this one's trailer.
            (Format::Cpio, Some(end)) => offset += end,
            // A compressed archive runs to the end of the file.
            _ => return Ok(None),
        }
    }
}

/// An uncompressed newc archive of `files` (path, content; mode 0755 regular files) with
/// its trailer: a valid initramfs for fixtures and tests.
pub fn newc_archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |name: &str, data: &[u8], mode: u32| {
        let fields = [
            1,
            mode as usize,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().div_ceil(4) * 4, 0);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(4) * 4, 0);
    };
    for (name, data) in files {
        entry(name, data, 0o100755);
    }
    entry("TRAILER!!!", b"", 0);
    out
}

/// What the parser is reading.
#[derive(Debug)]
enum State {
    /// Zero padding before the next header (between archives).
    Padding,
    /// The fixed 110-byte header.
    Header,
    /// The name (`namesize` bytes) and its padding to a multiple of 4.
    Name { size: usize, padded: usize },
    /// File data and its padding, skipped.
    Data { left: usize },
    /// After the trailer of the single archive being read.
    Done,
}

/// A newc cpio parser fed with bytes (a `Write`), so any decompressor can stream into it.
/// It stops the stream (a write error) once `wanted` has matched.
struct CpioStream<'a> {
    wanted: &'a dyn Fn(&str) -> bool,
    /// Stop at the first trailer (an uncompressed archive of a chain), rather than reading
    /// on into archives concatenated in the same stream.
    single: bool,
    state: State,
    buf: Vec<u8>,
    /// Bytes seen so far, for alignment and `ended_at`.
    pos: usize,
    filesize: usize,
    found: Option<String>,
    ended_at: Option<usize>,
    entries: usize,
}

impl<'a> CpioStream<'a> {
    fn new(wanted: &'a dyn Fn(&str) -> bool, single: bool) -> Self {
        CpioStream {
            wanted,
            single,
            state: State::Header,
            buf: Vec::new(),
            pos: 0,
            filesize: 0,
            found: None,
            ended_at: None,
            entries: 0,
        }
    }

    /// A stream that ended in the middle of an entry was cut short.
    fn check_complete(&self) -> Result<()> {
        match self.state {
            State::Done | State::Padding => Ok(()),
            State::Header if self.buf.is_empty() && self.entries > 0 => Ok(()),
            _ => bail!("the archive ends in the middle of an entry (truncated?)"),
        }
    }

    fn header(&mut self) -> std::io::Result<()> {
        let h = std::mem::take(&mut self.buf);
        if !(h.starts_with(b"070701") || h.starts_with(b"070702")) {
            return Err(std::io::Error::other(format!(
                "not a newc cpio header at byte {}",
                self.pos - 110
            )));
        }
        let field = |i: usize| {
            std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i])
                .ok()
                .and_then(|s| usize::from_str_radix(s, 16).ok())
                .ok_or_else(|| std::io::Error::other("a cpio header field is not hexadecimal"))
        };
        self.filesize = field(6)?;
        let size = field(11)?;
        let padded = (110 + size).div_ceil(4) * 4 - 110;
        self.state = State::Name { size, padded };
        Ok(())
    }

    fn name(&mut self, size: usize) -> std::io::Result<()> {
        let raw = std::mem::take(&mut self.buf);
        let name =
            String::from_utf8_lossy(&raw[..size.saturating_sub(1).min(raw.len())]).into_owned();
        self.entries += 1;
        if name == "TRAILER!!!" {
            self.ended_at = Some(self.pos);
            self.state = if self.single {
                State::Done
            } else {
                State::Padding
            };
            return Ok(());
        }
        let path = name.trim_start_matches("./").trim_start_matches('/');
        if (self.wanted)(path) {
            self.found = Some(path.to_string());
            return Err(std::io::Error::other("found"));
        }
        self.state = State::Data {
            left: self.filesize.div_ceil(4) * 4,
        };
        Ok(())
    }
}

impl Write for CpioStream<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Done => return Ok(data.len()),
                State::Padding => {
                    if data[i] != 0 {
                        self.state = State::Header;
                        continue;
                    }
                    i += 1;
                    self.pos += 1;
                }
                State::Data { left } => {
                    let n = left.min(data.len() - i);
                    i += n;
                    self.pos += n;
                    self.state = match left - n {
                        0 => State::Header,
                        left => State::Data { left },
                    };
                }
                State::Header | State::Name { .. } => {
                    let need = match self.state {
                        State::Name { padded, .. } => padded,
                        _ => 110,
                    };
                    let n = (need - self.buf.len()).min(data.len() - i);
                    self.buf.extend_from_slice(&data[i..i + n]);
                    i += n;
                    self.pos += n;
                    if self.buf.len() == need {
                        match self.state {
                            State::Name { size, .. } => self.name(size)?,
                            _ => self.header()?,
                        }
                    }
                }
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{find, newc_archive as cpio};
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut std::io::Cursor::new(data), &mut out).unwrap();
        out
    }

    fn prepare_root(path: &str) -> bool {
        path.rsplit('/').next() == Some("ostree-prepare-root")
    }

    #[test]
    fn finds_a_file_in_every_compression_and_behind_early_microcode() {
        let main = cpio(&[
            ("usr", b""),
            ("usr/bin/sh", &[7u8; 1001]),
            ("usr/lib/ostree/ostree-prepare-root", b"\x7fELF"),
        ]);
        let early = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", &[1u8; 513])]);
        for (what, archive) in [
            ("plain", main.clone()),
            ("gzip", gzip(&main)),
            ("xz", xz(&main)),
            (
                "early + gzip",
                [early.clone(), vec![0; 512], gzip(&main)].concat(),
            ),
            ("early + xz", [early.clone(), xz(&main)].concat()),
        ] {
            assert_eq!(
                find(&archive, &prepare_root).unwrap().as_deref(),
                Some("usr/lib/ostree/ostree-prepare-root"),
                "{what}"
            );
        }
        let without = cpio(&[("usr/bin/sh", b"sh")]);
        assert_eq!(
            find(&[early, gzip(&without)].concat(), &prepare_root).unwrap(),
            None
        );
    }

    #[test]
    fn zstd_archives_are_read() {
        // A zstd frame holding one raw (stored) block: magic, frame header descriptor 0
        // (no content size, no checksum), window descriptor (1 MiB), block header, data.
        let main = cpio(&[("./usr/lib/ostree/ostree-prepare-root", b"x")]);
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50];
        let len = main.len() as u32;
        let block_header = (len << 3) | 1; // size, block type raw (0), last block (1)
        frame.extend_from_slice(&block_header.to_le_bytes()[..3]);
        frame.extend_from_slice(&main);
        assert_eq!(
            find(&frame, &prepare_root).unwrap().as_deref(),
            Some("usr/lib/ostree/ostree-prepare-root")
        );
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(find(b"stand-in initramfs\n", &prepare_root).is_err());
        let main = cpio(&[("usr/bin/sh", &[7u8; 100])]);
        assert!(find(&gzip(&main[..60]), &prepare_root).is_err());
    }
}
