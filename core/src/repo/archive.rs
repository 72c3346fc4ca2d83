//! Writing a tar archive into the repository as one commit. `crate::archive` reads and
//! checks the entries on the calling thread; regular files and symlinks are hashed and
//! written, in batches, by a pool of workers (one per core) on the same transaction (into
//! a `bare-user` repository by `repo::loose`, else by libostree), so one large tarball uses
//! every core; files over `INLINE_MAX` are streamed by the reading thread
//! instead of held in memory. The tree is built once every object is written.

use super::loose::{LooseWriter, ObjectMeta};
use super::tree::{write_dirmeta, DirMeta};
use super::{gerr, write_commit_from_mtree, NewCommit, Repo, WriteStats, NO_CANCEL};
use crate::archive::{self, Kind, Meta, Node, Refusal, Tree};
use anyhow::{anyhow, Context, Result};
use gio::prelude::*;
use ostree::MutableTree;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Files up to this size go to the workers in memory; larger ones are streamed.
const INLINE_MAX: u64 = 8 << 20;

/// A batch for a worker closes at this many objects or bytes (or one larger file).
const BATCH_OBJECTS: usize = 32;
const BATCH_BYTES: usize = 256 << 10;

impl Repo {
    /// Import a tar archive (plain or gzip, bzip2, xz, zstd compressed) as a commit. Every
    /// entry is checked before anything of it is written; a refused archive is an error
    /// naming the entry, and the transaction (with what was written) is discarded.
    pub fn import_archive(
        &self,
        archive: &Path,
        commit: &NewCommit,
    ) -> Result<(String, WriteStats)> {
        self.import_archive_with(archive, commit, &mut |_, _| {})
    }

    /// [`Repo::import_archive`], telling `progress` how many bytes of the archive file were
    /// read so far and its size, as it goes (after each entry).
    pub fn import_archive_with(
        &self,
        archive: &Path,
        commit: &NewCommit,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(String, WriteStats)> {
        let mut own = WriteStats::default();
        let (checksum, mut stats) = self.in_transaction(|repo| {
            let loose = LooseWriter::for_repo(repo)?;
            let (tree, objects) = write_objects(repo, loose.as_ref(), archive, progress)?;
            if let Some(loose) = loose {
                own = loose.publish()?;
            }
            let mtree = build_tree(repo, &tree, &objects)?;
            write_commit_from_mtree(repo, &mtree, commit)
        })?;
        // Objects written by `LooseWriter` are not in libostree's transaction statistics.
        stats.content_objects_written += own.content_objects_written;
        stats.content_bytes_written += own.content_bytes_written;
        Ok((checksum, stats))
    }
}

/// What a worker writes: object number, the entry (for messages), and the object.
struct Job {
    object: usize,
    shown: String,
    meta: Meta,
    content: Content,
}

enum Content {
    File(Vec<u8>),
    Symlink(String),
}

impl Job {
    fn write(&self, repo: &ostree::Repo, loose: Option<&LooseWriter>) -> Result<String> {
        let xattrs = xattrs_variant(&self.meta.xattrs, true);
        let Meta { uid, gid, mode, .. } = self.meta;
        if let Some(loose) = loose {
            let meta = ObjectMeta {
                uid,
                gid,
                mode,
                xattrs: &xattrs,
            };
            return match &self.content {
                Content::File(data) => loose.write_file(&meta, data),
                Content::Symlink(target) => loose.write_symlink(&meta, target),
            };
        }
        let checksum = match &self.content {
            Content::File(data) => repo
                .write_regfile_inline(None, uid, gid, mode, Some(&xattrs), data, NO_CANCEL)
                .map_err(gerr)?,
            Content::Symlink(target) => {
                // Not `write_symlink`, which forces mode 0777: ostree keeps an archive's
                // symlink permission bits, and the commit must be the one it gives.
                let info = gio::FileInfo::new();
                info.set_file_type(gio::FileType::SymbolicLink);
                info.set_attribute_uint32("unix::uid", uid);
                info.set_attribute_uint32("unix::gid", gid);
                info.set_attribute_uint32("unix::mode", mode);
                info.set_attribute_byte_string("standard::symlink-target", target);
                let empty = gio::MemoryInputStream::new();
                let (stream, len) =
                    ostree::raw_file_to_content_stream(&empty, &info, Some(&xattrs), NO_CANCEL)
                        .map_err(gerr)?;
                repo.write_content(None, &stream, len, NO_CANCEL)
                    .map_err(gerr)?
                    .to_hex()
                    .into()
            }
        };
        Ok(checksum.to_string())
    }
}

/// Read the archive, writing its objects; the tree it describes and each object's checksum.
fn write_objects(
    repo: &ostree::Repo,
    loose: Option<&LooseWriter>,
    archive: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Tree, Vec<String>)> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (jobs, queue) = crossbeam_channel::bounded::<Vec<Job>>(workers * 2);
    let (done, results) = crossbeam_channel::unbounded::<Vec<(usize, Result<String>)>>();
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (queue, done, repo, failed) = (queue.clone(), done.clone(), repo.clone(), &failed);
            scope.spawn(move || work(&queue, &done, &repo, loose, failed, archive));
        }
        drop((queue, done));
        let mut reader = Reader {
            repo,
            loose,
            archive,
            jobs,
            batch: Vec::new(),
            batch_bytes: 0,
            failed: &failed,
            tree: Tree::default(),
            objects: Vec::new(),
        };
        let read = archive::for_each_entry_progress(
            archive,
            |entry, data, size| reader.take(entry, data, size),
            progress,
        )
        .and_then(|()| reader.flush());
        let Reader {
            tree,
            mut objects,
            jobs,
            ..
        } = reader;
        // Closing the queue lets the workers finish what they hold and stop.
        drop(jobs);
        let mut first_error = None;
        for (object, result) in results.into_iter().flatten() {
            match result {
                Ok(checksum) => objects[object] = checksum,
                Err(e) if first_error.is_none() => first_error = Some(e),
                Err(_) => {}
            }
        }
        read?;
        match first_error {
            Some(e) => Err(e),
            None => Ok((tree, objects)),
        }
    })
}

/// A worker: write each batch's objects, send back their checksums (or errors).
fn work(
    queue: &crossbeam_channel::Receiver<Vec<Job>>,
    done: &crossbeam_channel::Sender<Vec<(usize, Result<String>)>>,
    repo: &ostree::Repo,
    loose: Option<&LooseWriter>,
    failed: &AtomicBool,
    archive: &Path,
) {
    for batch in queue {
        let written = batch.iter().map(|job| {
            let result = job.write(repo, loose).map_err(|e| {
                failed.store(true, Ordering::Relaxed);
                anyhow!(
                    "{}: entry '{}': cannot write it: {e:#}",
                    archive.display(),
                    job.shown
                )
            });
            (job.object, result)
        });
        let _ = done.send(written.collect());
    }
}

/// The reading side: places each entry in the tree and hands its object to a worker (or
/// writes a large file itself).
struct Reader<'a> {
    repo: &'a ostree::Repo,
    loose: Option<&'a LooseWriter>,
    archive: &'a Path,
    jobs: crossbeam_channel::Sender<Vec<Job>>,
    /// Objects not sent yet: they go in batches, a wake-up of a worker per batch rather
    /// than per object (most objects are small).
    batch: Vec<Job>,
    batch_bytes: usize,
    failed: &'a AtomicBool,
    tree: Tree,
    /// Checksums by object number; filled by the workers' results.
    objects: Vec<String>,
}

impl Reader<'_> {
    fn take(&mut self, entry: archive::Entry, data: &mut dyn Read, size: u64) -> Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            // A worker failed; its error is the one reported.
            return Err(anyhow!("stopped: an object could not be written"));
        }
        let object = self.objects.len();
        self.tree
            .place(&entry, object)
            .map_err(|r| r.into_error(self.archive))?;
        let (meta, content) = match entry.kind {
            Kind::File(meta) if size > INLINE_MAX => {
                let checksum = write_streamed(self.repo, self.loose, &meta, data, size)
                    .map_err(|e| self.entry_error(&entry.shown, e))?;
                self.objects.push(checksum);
                return Ok(());
            }
            Kind::File(meta) => {
                let bytes =
                    read_all(data, size, &entry.shown).map_err(|r| r.into_error(self.archive))?;
                (meta, Content::File(bytes))
            }
            Kind::Symlink(meta, target) => (meta, Content::Symlink(target)),
            Kind::Dir(_) | Kind::Hardlink(_) => return Ok(()),
        };
        self.objects.push(String::new());
        self.batch_bytes += match &content {
            Content::File(data) => data.len(),
            Content::Symlink(target) => target.len(),
        };
        self.batch.push(Job {
            object,
            shown: entry.shown,
            meta,
            content,
        });
        if self.batch.len() >= BATCH_OBJECTS || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Hand the objects gathered so far to a worker.
    fn flush(&mut self) -> Result<()> {
        self.batch_bytes = 0;
        if self.batch.is_empty() {
            return Ok(());
        }
        self.jobs
            .send(std::mem::take(&mut self.batch))
            .map_err(|_| anyhow!("the archive import's workers stopped"))
    }

    fn entry_error(&self, shown: &str, e: anyhow::Error) -> anyhow::Error {
        anyhow!(
            "{}: entry '{shown}': cannot write it: {e:#}",
            self.archive.display()
        )
    }
}

fn read_all(data: &mut dyn Read, size: u64, shown: &str) -> Result<Vec<u8>, Refusal> {
    let mut buf = Vec::with_capacity(size as usize);
    data.take(size)
        .read_to_end(&mut buf)
        .map_err(|e| Refusal::truncated(shown, &e.to_string()))?;
    if buf.len() as u64 != size {
        let why = format!("its data ends after {} of {size} bytes", buf.len());
        return Err(Refusal::truncated(shown, &why));
    }
    Ok(buf)
}

/// Stream a large file into the repository (libostree's content writer hashes as it goes).
fn write_streamed(
    repo: &ostree::Repo,
    loose: Option<&LooseWriter>,
    meta: &Meta,
    data: &mut dyn Read,
    size: u64,
) -> Result<String> {
    let xattrs = xattrs_variant(&meta.xattrs, true);
    if let Some(loose) = loose {
        let meta = ObjectMeta {
            uid: meta.uid,
            gid: meta.gid,
            mode: meta.mode,
            xattrs: &xattrs,
        };
        return loose.write_stream(&meta, data, size);
    }
    let writer = repo
        .write_regfile(None, meta.uid, meta.gid, meta.mode, size, Some(&xattrs))
        .map_err(gerr)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = data.read(&mut buf).context("reading the archive")?;
        if n == 0 {
            break;
        }
        writer.write_all(&buf[..n], NO_CANCEL).map_err(gerr)?;
        total += n as u64;
    }
    if total != size {
        return Err(anyhow!(
            "the archive ends {} bytes into it, of {size}",
            total
        ));
    }
    Ok(writer.finish(NO_CANCEL).map_err(gerr)?.to_string())
}

/// `a(ayay)` as libostree builds it (names with their NUL). Files and symlinks get them
/// sorted, as a `bare` repository reads them back (libostree before ostree#3346 checksums
/// them in the order it gets them, and `fsck` on a device then fails); directories get
/// what libostree's importer gave them (libarchive lists an entry's xattrs in reverse
/// archive order), so a directory's metadata is the one ostree commits; dirmeta is never
/// re-read from disk.
fn xattrs_variant(xattrs: &[(Vec<u8>, Vec<u8>)], sorted: bool) -> glib::Variant {
    let mut items: Vec<(Vec<u8>, Vec<u8>)> = xattrs
        .iter()
        .map(|(name, value)| {
            let mut name = name.clone();
            name.push(0);
            (name, value.clone())
        })
        .collect();
    if sorted {
        items.sort();
    } else {
        items.reverse();
    }
    items.to_variant()
}

/// The commit's tree: directories with their metadata, files and symlinks by checksum.
fn build_tree(repo: &ostree::Repo, tree: &Tree, objects: &[String]) -> Result<MutableTree> {
    let mut metas: HashMap<Meta, String> = HashMap::new();
    let mut dirmeta = |meta: &Meta| -> Result<String> {
        if let Some(checksum) = metas.get(meta) {
            return Ok(checksum.clone());
        }
        let checksum = write_dirmeta(
            repo,
            &DirMeta {
                uid: meta.uid,
                gid: meta.gid,
                mode: meta.mode,
                xattrs: xattrs_variant(&meta.xattrs, false),
            },
        )?;
        metas.insert(meta.clone(), checksum.clone());
        Ok(checksum)
    };
    let root = MutableTree::new();
    root.set_metadata_checksum(&dirmeta(&tree.root_meta())?);
    let mut dirs: HashMap<&str, MutableTree> = HashMap::new();
    for (path, node) in tree.sorted() {
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (
                dirs.get(parent)
                    .with_context(|| format!("archive tree: no directory {parent}"))?,
                name,
            ),
            None => (&root, path),
        };
        match node {
            Node::Dir(meta) => {
                let dir = parent.ensure_dir(name).map_err(gerr)?;
                dir.set_metadata_checksum(&dirmeta(meta)?);
                dirs.insert(path, dir);
            }
            Node::Leaf { object, .. } => {
                parent.replace_file(name, &objects[*object]).map_err(gerr)?
            }
        }
    }
    Ok(root)
}
