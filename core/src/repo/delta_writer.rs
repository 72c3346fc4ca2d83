//! Our static delta writer (ARCHITECTURE.md, "Deltas"): libostree 2022.7's on-disk format,
//! written at the cost of the change and compressed on all cores.
//!
//! The objects `to` adds (`delta_objects.rs`) are read on this thread (a libostree
//! repository handle stays on one thread) into parts of at most [`PART_BYTES`] of raw
//! data; each full part goes to a worker that compresses it and writes its file, one worker
//! per core. Files above [`FALLBACK_BYTES`] are fallbacks: clients fetch them as plain
//! objects. The superblock embeds the commit and its detached metadata (signatures), so the
//! commit must be signed before its delta is written. Everything is written into a
//! directory below the repository's `tmp/` and put in place at the end in one step
//! (`delta_install.rs`), so a killed writer leaves no half delta.

use super::delta_install::{write_synced, TempDir};
use super::delta_part::{ContentMeta, Part, PartBuilder};
use super::{gerr, Delta, Repo, NO_CANCEL};
use anyhow::{anyhow, Context, Result};
use gio::prelude::*;
use ostree::ObjectType;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

/// New files above this size are fallbacks (libostree counts its megabytes as 10^6 bytes):
/// already zlib-compressed in the archive repository, and large files are mostly
/// compressed payloads LZMA gains nothing on.
pub(super) const FALLBACK_BYTES: u64 = 1_000_000;

/// Raw data per part: bounds the memory of each worker's part and gives the cores parts to
/// share; LZMA's dictionary at [`LZMA_PRESET`] is as large, so bigger parts would gain little.
const PART_BYTES: usize = 8 << 20;

/// Files from this size on whose zlib-compressed object is within a tenth of their size go
/// into stored parts: LZMA is slowest on such data (random bytes: ~2 MB/s at preset 1
/// against ~26 MB/s on kernel modules) and gains nothing. Smaller files are not worth the
/// look (and zlib's header weighs on them).
const INCOMPRESSIBLE_MIN: u64 = 16 * 1024;

/// The xz preset of the parts, chosen by measurement (ARCHITECTURE.md, "Deltas").
const LZMA_PRESET: u32 = 1;

/// A part's header as the superblock lists it.
struct PartHeader {
    checksum: [u8; 32],
    size: u64,
    usize: u64,
    objects: Vec<u8>,
}

impl Repo {
    /// Write the static delta `from` -> `to`, replacing one that exists.
    pub(super) fn write_delta(&self, from: &str, to: &str) -> Result<()> {
        let delta = Delta {
            from: Some(from.to_string()),
            to: to.to_string(),
        };
        let rel = super::prune::delta_dir(&delta)?;
        let tmp = TempDir::new(&self.path)?;
        let (parts, fallbacks) = self.write_parts(from, to, &tmp.0)?;
        let superblock = self.superblock(from, to, &rel, &parts, fallbacks)?;
        write_synced(&tmp.0.join("superblock"), superblock.data())?;
        tmp.install(&self.path.join(rel))
    }

    /// The parts' headers (in order) and the fallback list `a(yaytt)`.
    fn write_parts(
        &self,
        from: &str,
        to: &str,
        dir: &Path,
    ) -> Result<(Vec<PartHeader>, glib::Variant)> {
        let objects = self.new_objects(from, to)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (send, receive) = crossbeam_channel::bounded::<(usize, PartBuilder)>(workers);
        let done: Mutex<Vec<Option<Result<PartHeader>>>> = Mutex::new(Vec::new());
        let path = self.path.as_path();
        let mut fallbacks = Vec::new();
        let filled = std::thread::scope(|s| {
            for _ in 0..workers {
                let (receive, done) = (receive.clone(), &done);
                s.spawn(move || {
                    for (i, part) in receive {
                        let header = compress_part(part, dir, i, path);
                        if let Ok(mut d) = done.lock() {
                            d[i] = Some(header);
                        }
                    }
                });
            }
            let mut queue = |part: PartBuilder| -> Result<()> {
                let i = {
                    let mut d = done
                        .lock()
                        .map_err(|_| anyhow!("a delta worker panicked"))?;
                    d.push(None);
                    d.len() - 1
                };
                send.send((i, part))
                    .map_err(|_| anyhow!("the delta workers stopped"))
            };
            let filled = self.fill_parts(&objects, &mut fallbacks, &mut queue);
            drop(send);
            filled
        });
        filled?;
        let headers = done
            .into_inner()
            .map_err(|_| anyhow!("a delta worker panicked"))?
            .into_iter()
            .map(|h| h.unwrap_or_else(|| Err(anyhow!("a delta part was not written"))))
            .collect::<Result<Vec<_>>>()?;
        Ok((headers, array_of("(yaytt)", fallbacks)?))
    }

    /// Read the new objects into parts, handing each full one to `queue`; files above
    /// [`FALLBACK_BYTES`] go to `fallbacks` instead.
    fn fill_parts(
        &self,
        objects: &super::delta_objects::NewObjects,
        fallbacks: &mut Vec<glib::Variant>,
        queue: &mut dyn FnMut(PartBuilder) -> Result<()>,
    ) -> Result<()> {
        let mut parts = OpenParts::new(queue);
        let metadata = [(ObjectType::DirTree, &objects.dirtrees, 2)]
            .into_iter()
            .chain([(ObjectType::DirMeta, &objects.dirmetas, 3)]);
        for (objtype, list, byte) in metadata {
            for checksum in list {
                let v = self.repo.load_variant(objtype, checksum).map_err(gerr)?;
                parts
                    .room(false, v.size())?
                    .add_metadata(byte, checksum, v.data())?;
            }
        }
        for checksum in &objects.files {
            if let Some(source) = objects.replaced.get(checksum) {
                if let Some((meta, size, patch)) = self.patched(source, checksum)? {
                    parts
                        .room(false, patch.len())?
                        .add_patched(checksum, meta, size, source, &patch)?;
                    continue;
                }
            }
            match self.read_content(checksum)? {
                Content::Fallback(entry) => fallbacks.push(entry),
                Content::Inline {
                    meta,
                    content,
                    stored,
                } => parts
                    .room(stored, content.len())?
                    .add_content(checksum, meta, &content)?,
            }
        }
        parts.finish()
    }

    /// A file object's header fields and content, or its fallback entry when it is large.
    fn read_content(&self, checksum: &str) -> Result<Content> {
        let (stream, info, xattrs) = self.load_file_object(checksum)?;
        let size = u64::try_from(info.size()).unwrap_or(0);
        let symlink = info.file_type() == gio::FileType::SymbolicLink;
        if !symlink && size > FALLBACK_BYTES {
            return Ok(Content::Fallback(self.fallback_entry(checksum, size)?));
        }
        let stored =
            !symlink && size >= INCOMPRESSIBLE_MIN && self.incompressible(checksum, size)?;
        let content = match (symlink, stream) {
            (true, _) => info
                .symlink_target()
                .map(|t| t.as_os_str().as_encoded_bytes().to_vec())
                .unwrap_or_default(),
            (false, Some(stream)) => read_all(stream, size, checksum)?,
            (false, None) => Vec::new(),
        };
        let meta = content_meta(&info, &xattrs);
        Ok(Content::Inline {
            meta,
            content,
            stored,
        })
    }

    /// File object `to` as a bsdiff patch against `from`, which it replaces at its path,
    /// when both are regular files of sizes worth diffing and the patch is worth it.
    fn patched(&self, from: &str, to: &str) -> Result<Option<(ContentMeta, u64, Vec<u8>)>> {
        // The new file first: when it is not worth diffing, the old one is not read.
        let Some((new, meta)) = self.regular_content(to, super::delta_bsdiff::MIN_FILE_BYTES)?
        else {
            return Ok(None);
        };
        let Some((old, _)) = self.regular_content(from, 0)? else {
            return Ok(None);
        };
        if (old.len() + new.len()) as u64 > super::delta_bsdiff::MAX_PAIR_BYTES {
            return Ok(None);
        }
        Ok(super::delta_bsdiff::patch(&old, &new).map(|p| (meta, new.len() as u64, p)))
    }

    /// A regular file object's content and header fields, if it is a regular file of at
    /// least `min` bytes and at most [`super::delta_bsdiff::MAX_PAIR_BYTES`].
    fn regular_content(&self, checksum: &str, min: u64) -> Result<Option<(Vec<u8>, ContentMeta)>> {
        let (stream, info, xattrs) = self.load_file_object(checksum)?;
        let size = u64::try_from(info.size()).unwrap_or(0);
        let regular = info.file_type() == gio::FileType::Regular;
        let Some(stream) = stream
            .filter(|_| regular && size >= min && size <= super::delta_bsdiff::MAX_PAIR_BYTES)
        else {
            return Ok(None);
        };
        let content = read_all(stream, size, checksum)?;
        Ok(Some((content, content_meta(&info, &xattrs))))
    }

    /// Whether zlib (the archive repository's object compression) saved less than a tenth
    /// of the file: LZMA would then spend its time for little more.
    fn incompressible(&self, checksum: &str, size: u64) -> Result<bool> {
        let on_disk = self
            .repo
            .query_object_storage_size(ObjectType::File, checksum, NO_CANCEL)
            .map_err(gerr)?;
        Ok(on_disk.saturating_mul(10) >= size.saturating_mul(9))
    }

    /// `(y ay t t)`: type, checksum, size as stored (what the client downloads), size.
    fn fallback_entry(&self, checksum: &str, size: u64) -> Result<glib::Variant> {
        let stored = self
            .repo
            .query_object_storage_size(ObjectType::File, checksum, NO_CANCEL)
            .map_err(gerr)?;
        Ok(glib::Variant::tuple_from_iter([
            1u8.to_variant(),
            checksum_bytes(checksum)?,
            stored.to_variant(),
            size.to_variant(),
        ]))
    }

    /// The superblock (`delta.rs`'s SUPERBLOCK): metadata with the byte order and the
    /// commit's detached metadata, timestamp, from, to, the commit, no prerequisite
    /// deltas, part headers, fallbacks.
    fn superblock(
        &self,
        from: &str,
        to: &str,
        rel: &str,
        parts: &[PartHeader],
        fallbacks: glib::Variant,
    ) -> Result<glib::Variant> {
        let meta = glib::VariantDict::new(None);
        let order = if cfg!(target_endian = "little") {
            b'l'
        } else {
            b'B'
        };
        meta.insert_value("ostree.endianness", &order.to_variant());
        let detached = self
            .repo
            .read_commit_detached_metadata(to, NO_CANCEL)
            .map_err(gerr)?;
        if let Some(detached) = detached {
            meta.insert_value(&format!("{rel}/commitmeta"), &detached);
        }
        let commit = self
            .repo
            .load_variant(ObjectType::Commit, to)
            .map_err(gerr)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let headers = parts.iter().map(|p| {
            glib::Variant::tuple_from_iter([
                0u32.to_variant(),
                glib::Variant::array_from_fixed_array(&p.checksum),
                p.size.to_variant(),
                p.usize.to_variant(),
                glib::Variant::array_from_fixed_array(&p.objects),
            ])
        });
        let sb = glib::Variant::tuple_from_iter([
            meta.end(),
            now.to_be().to_variant(),
            checksum_bytes(from)?,
            checksum_bytes(to)?,
            commit,
            glib::Variant::array_from_fixed_array::<u8>(&[]),
            array_of("(uayttay)", headers.collect())?,
            fallbacks,
        ]);
        match sb.type_().as_str() == super::delta::SUPERBLOCK {
            true => Ok(sb),
            false => Err(anyhow!("internal error: superblock of type {}", sb.type_())),
        }
    }
}

enum Content {
    Inline {
        meta: ContentMeta,
        content: Vec<u8>,
        /// Goes into a part stored without compression.
        stored: bool,
    },
    Fallback(glib::Variant),
}

/// The part being filled of each kind (LZMA-compressed, stored), and where full ones go.
struct OpenParts<'q> {
    compressed: PartBuilder,
    stored: PartBuilder,
    queue: &'q mut dyn FnMut(PartBuilder) -> Result<()>,
}

impl<'q> OpenParts<'q> {
    fn new(queue: &'q mut dyn FnMut(PartBuilder) -> Result<()>) -> OpenParts<'q> {
        OpenParts {
            compressed: PartBuilder::new(false),
            stored: PartBuilder::new(true),
            queue,
        }
    }

    /// The part of that kind to add `size` bytes to, after queueing it if it is full.
    fn room(&mut self, stored: bool, size: usize) -> Result<&mut PartBuilder> {
        let part = match stored {
            true => &mut self.stored,
            false => &mut self.compressed,
        };
        if !part.is_empty() && part.len() + size > PART_BYTES {
            (self.queue)(std::mem::replace(part, PartBuilder::new(stored)))?;
        }
        Ok(part)
    }

    /// Queue the parts that hold anything.
    fn finish(self) -> Result<()> {
        for part in [self.compressed, self.stored] {
            if !part.is_empty() {
                (self.queue)(part)?;
            }
        }
        Ok(())
    }
}

/// Compress part `i` and write it as `dir/i`; counts it for progress.
fn compress_part(part: PartBuilder, dir: &Path, i: usize, repo: &Path) -> Result<PartHeader> {
    let Part {
        data,
        checksum,
        usize,
        objects,
    } = part.finish(LZMA_PRESET)?;
    write_synced(&dir.join(i.to_string()), &data)?;
    super::progress::delta_part_written(repo);
    Ok(PartHeader {
        checksum,
        size: data.len() as u64,
        usize,
        objects,
    })
}

/// A file object's content from the stream `load_file` gave.
fn read_all(stream: gio::InputStream, size: u64, checksum: &str) -> Result<Vec<u8>> {
    let mut content = Vec::with_capacity(size as usize);
    stream
        .into_read()
        .read_to_end(&mut content)
        .with_context(|| format!("cannot read file object {checksum}"))?;
    Ok(content)
}

/// A file object's header fields, as libostree's `load_file` gives them.
fn content_meta(info: &gio::FileInfo, xattrs: &glib::Variant) -> ContentMeta {
    ContentMeta {
        uid: info.attribute_uint32("unix::uid"),
        gid: info.attribute_uint32("unix::gid"),
        mode: info.attribute_uint32("unix::mode"),
        xattrs: xattrs.data().to_vec(),
    }
}

fn checksum_bytes(checksum: &str) -> Result<glib::Variant> {
    let bytes = hex::decode(checksum).with_context(|| format!("bad checksum {checksum}"))?;
    Ok(glib::Variant::array_from_fixed_array(&bytes))
}

fn array_of(element: &str, items: Vec<glib::Variant>) -> Result<glib::Variant> {
    let ty = glib::VariantTy::new(element).map_err(|e| anyhow!("{e}"))?;
    Ok(glib::Variant::array_from_iter_with_type(ty, items))
}
