//! Reading tar archives ourselves, so that nothing a hostile archive holds reaches libostree
//! unchecked: one streaming pass (plain; gzip decompressed on a thread of its own; bzip2,
//! xz, zstd by the system's tool in a separate process) yields every entry checked on its
//! own (`entry`) and against the entries before it (`tree`). The repository layer
//! (`repo::archive`) writes the objects. The rules are in docs/ARCHITECTURE.md ("Tar
//! imports").

pub mod entry;
mod gunzip;
pub mod stream;
pub mod tree;

pub use entry::{Entry, Kind, Meta};
pub use tree::{Node, Tree};

use stream::Stream;

use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Why an archive is refused: the entry (as written in the archive), what is wrong, and
/// what to do.
#[derive(Debug)]
pub struct Refusal {
    pub entry: Option<String>,
    pub why: String,
    pub help: &'static str,
}

impl Refusal {
    pub fn entry(entry: &str, why: String, help: &'static str) -> Refusal {
        Refusal {
            entry: Some(entry.to_string()),
            why,
            help,
        }
    }

    /// The archive breaks off (or is corrupt) in the data of `entry`.
    pub fn truncated(entry: &str, why: &str) -> Refusal {
        Refusal::stream(format!("truncated or corrupt in entry '{entry}': {why}"))
    }

    fn stream(why: String) -> Refusal {
        Refusal {
            entry: None,
            why,
            help: CORRUPT_HELP,
        }
    }

    /// The one-line error (plus help) naming `archive`.
    pub fn into_error(self, archive: &Path) -> anyhow::Error {
        match self.entry {
            Some(entry) => anyhow!(
                "{}: entry '{entry}' is refused: {}\n  help: {}",
                archive.display(),
                self.why,
                self.help
            ),
            None => anyhow!("{}: {}\n  help: {}", archive.display(), self.why, self.help),
        }
    }
}

const CORRUPT_HELP: &str = "the archive is truncated or corrupt; rebuild or re-download it";

/// Call `each` for every entry of the archive at `path`, in order, with the entry's content
/// (a regular file's; read it or not) and its size. The first error stops the read.
pub fn for_each_entry(
    path: &Path,
    each: impl FnMut(Entry, &mut dyn Read, u64) -> Result<()>,
) -> Result<()> {
    for_each_entry_progress(path, each, &mut |_, _| {})
}

/// [`for_each_entry`], telling `progress` after each entry how many bytes of the file (as
/// stored, compressed or not) were read so far, and the file's size.
pub fn for_each_entry_progress(
    path: &Path,
    mut each: impl FnMut(Entry, &mut dyn Read, u64) -> Result<()>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let mut input = Input::open(path)?;
    let mut stream = Stream::new(input.stream()?);
    let mut previous: Option<String> = None;
    loop {
        let raw = match stream.next_entry() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(why) => return Err(stream_error(&why, previous.as_deref()).into_error(path)),
        };
        let entry = entry::check(&raw).map_err(|r| r.into_error(path))?;
        previous = Some(entry.shown.clone());
        let mut data = Reporting {
            inner: stream.data(&raw),
            unreported: 0,
            input: &input,
            progress: &mut *progress,
        };
        each(entry, &mut data, raw.size)?;
        progress(input.read_so_far(), input.size);
    }
    // What follows the end-of-archive block (tar pads to 10 KiB) is read so the
    // decompressor reaches its end and can report a broken stream; a long tail is not.
    let tail = std::io::copy(
        &mut stream.into_inner().take(TAIL_MAX + 1),
        &mut std::io::sink(),
    );
    match tail {
        Ok(n) => input.finish(n <= TAIL_MAX, path),
        Err(e) => Err(Refusal::stream(format!("truncated or corrupt: {e}")).into_error(path)),
    }
}

/// An entry's content, telling `progress` how far the file is every [`REPORT_EVERY`] bytes
/// (a large file is one entry: without this, its whole import would say nothing).
struct Reporting<'a, R> {
    inner: R,
    unreported: u64,
    input: &'a Input,
    progress: &'a mut dyn FnMut(u64, u64),
}

const REPORT_EVERY: u64 = 4 << 20;

impl<R: Read> Read for Reporting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.unreported += n as u64;
        if self.unreported >= REPORT_EVERY {
            self.unreported = 0;
            (self.progress)(self.input.read_so_far(), self.input.size);
        }
        Ok(n)
    }
}

/// How much of what follows the end of the archive is read.
const TAIL_MAX: u64 = 1 << 20;

fn stream_error(why: &str, after: Option<&str>) -> Refusal {
    let at = match after {
        Some(entry) => format!(" after entry '{entry}'"),
        None => String::new(),
    };
    Refusal::stream(format!("truncated or corrupt{at}: {why}"))
}

/// The archive's bytes, through a decompressor process when it is compressed.
struct Input {
    file: Option<std::fs::File>,
    tool: Option<&'static str>,
    child: Option<Child>,
    /// The same open file as `file` (shared with the decompressor): its offset is how far
    /// the file was read, whoever reads it.
    position: Option<std::fs::File>,
    size: u64,
}

impl Input {
    fn open(path: &Path) -> Result<Input> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut head = [0u8; 512];
        let n = read_up_to(&mut file, &mut head)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let tool = match &head[..n] {
            [0x1f, 0x8b, ..] => Some("gzip"),
            [b'B', b'Z', b'h', ..] => Some("bzip2"),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some("xz"),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
            h if h.len() == 512 && (&h[257..262] == b"ustar" || h.iter().all(|b| *b == 0)) => {
                None
            }
            // A v7 header (no magic) is still a tar header when its checksum is right.
            h if h.len() == 512 && h.try_into().is_ok_and(stream::checksum_ok) => None,
            _ => bail!(
                "{}: not a tar archive (plain, gzip, bzip2, xz or zstd compressed): corrupt, or of another format\n  help: check that the file is a tar archive (optionally gz, bz2, xz or zst compressed)",
                path.display()
            ),
        };
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Input {
            position: file.try_clone().ok(),
            size: file.metadata().map_or(0, |m| m.len()),
            file: Some(file),
            tool,
            child: None,
        })
    }

    /// Bytes of the file read so far (by this process or the decompressor).
    fn read_so_far(&self) -> u64 {
        use std::io::Seek;
        self.position
            .as_ref()
            .and_then(|mut f| f.stream_position().ok())
            .map_or(0, |p| p.min(self.size))
    }

    fn stream(&mut self) -> Result<Box<dyn Read>> {
        let file = self.file.take().context("archive opened twice")?;
        let Some(tool) = self.tool else {
            return Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, file)));
        };
        if tool == "gzip" {
            return Ok(Box::new(gunzip::Decoded::spawn(file)));
        }
        let mut child = Command::new(tool)
            .arg("-dc")
            .stdin(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow!(
                    "cannot run {tool} to read the archive: {e}\n  help: apt-get install {}",
                    if tool == "xz" { "xz-utils" } else { tool }
                )
            })?;
        let stdout = child.stdout.take().context("decompressor without output")?;
        self.child = Some(child);
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, stdout)))
    }

    /// Reap the decompressor once the whole stream was read (`at_end`): a decompressor that
    /// failed (a truncated or corrupt stream after the archive's last entry) is an error too.
    /// Otherwise it is killed (on drop).
    fn finish(mut self, at_end: bool, path: &Path) -> Result<()> {
        if !at_end {
            return Ok(());
        }
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let tool = self.tool.unwrap_or("decompressor");
        let mut stderr = child.stderr.take();
        let status = child.wait()?;
        if status.success() {
            return Ok(());
        }
        let mut said = String::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.take(4096).read_to_string(&mut said);
        }
        let said = said.lines().next().unwrap_or("").trim().to_string();
        Err(Refusal::stream(format!(
            "truncated or corrupt: {tool} failed ({status}){}",
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        ))
        .into_error(path))
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
