//! The stat cache of a directory component: for every file, symlink and directory of its
//! last import, what `lstat` said (device, inode, size, mtime, ctime, mode, owner) and the
//! checksum it was committed as (for a directory, `contents:metadata`). The next import of the same directory reuses the checksum
//! of every entry whose stat is unchanged instead of reading and hashing it again, so a
//! one-file change costs a stat walk plus that file (what git's index does).
//!
//! Safety of reuse: ctime cannot be set from user space and moves with every write, chmod,
//! chown, xattr change, link and rename, so an equal (ctime, inode, size) means the same
//! content and metadata, unless the file changed again within the same filesystem clock
//! tick as the stat we recorded. Entries changed less than [`RACY_MARGIN`] before the import
//! started are therefore never recorded (git's "racily clean" rule), and the cache is tied
//! to the commit it describes: it is only used while the component's ref points there.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files whose ctime is this close to the start of an import (or later) are not recorded:
/// filesystem timestamps lag the clock by up to a tick, so a second change in that tick
/// could keep the same stat.
pub const RACY_MARGIN: Duration = Duration::from_secs(1);

const HEADER: &str = "ostree-build stat cache v2";

/// What `lstat` says about an entry, as far as it decides whether it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl StatKey {
    pub fn of(md: &std::fs::Metadata) -> StatKey {
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        StatKey {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: ns(md.mtime(), md.mtime_nsec()),
            ctime_ns: ns(md.ctime(), md.ctime_nsec()),
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
        }
    }

    /// Whether the entry changed too close to `start` for its stat to prove anything.
    fn racy(&self, start: SystemTime) -> bool {
        let limit = start
            .checked_sub(RACY_MARGIN)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(i128::MAX, |d| d.as_nanos() as i128);
        self.ctime_ns >= limit
    }

    fn fields(&self) -> [i128; 8] {
        [
            self.dev as i128,
            self.ino as i128,
            self.size as i128,
            self.mtime_ns,
            self.ctime_ns,
            self.mode as i128,
            self.uid as i128,
            self.gid as i128,
        ]
    }

    fn parse(fields: &[&str]) -> Option<StatKey> {
        let n: Vec<i128> = fields
            .iter()
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let [dev, ino, size, mtime_ns, ctime_ns, mode, uid, gid] = n[..] else {
            return None;
        };
        Some(StatKey {
            dev: dev.try_into().ok()?,
            ino: ino.try_into().ok()?,
            size: size.try_into().ok()?,
            mtime_ns,
            ctime_ns,
            mode: mode.try_into().ok()?,
            uid: uid.try_into().ok()?,
            gid: gid.try_into().ok()?,
        })
    }
}

/// Path (relative to the imported directory, no leading `/`) -> stat and checksum.
#[derive(Debug, Default, Clone)]
pub struct StatCache {
    entries: HashMap<String, (StatKey, String)>,
}

impl StatCache {
    /// The checksum recorded for `path` if its stat is still `key`.
    pub fn get(&self, path: &str, key: &StatKey) -> Option<&str> {
        match self.entries.get(path) {
            Some((k, checksum)) if k == key => Some(checksum),
            _ => None,
        }
    }

    /// Records `path`, unless it changed too close to `start` (see [`RACY_MARGIN`]) or its
    /// name cannot be written on one line.
    pub fn insert(&mut self, path: String, key: StatKey, checksum: String, start: SystemTime) {
        if !key.racy(start) && !path.contains('\n') {
            self.entries.insert(path, (key, checksum));
        }
    }

    /// Copies `old`'s entries whose path `keep` accepts (those under directories an
    /// import grafted whole, which it did not walk).
    pub fn keep_from(&mut self, old: &StatCache, keep: impl Fn(&str) -> bool) {
        for (path, entry) in &old.entries {
            if keep(path) {
                self.entries.insert(path.clone(), entry.clone());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cache at `file` if it describes `commit`; none when missing, unreadable or
    /// written for another commit (a run that failed before its refs moved).
    pub fn load(file: &Path, commit: &str) -> Option<StatCache> {
        let f = std::fs::File::open(file).ok()?;
        let mut lines = std::io::BufReader::new(f).lines();
        if lines.next()?.ok()? != format!("{HEADER} {commit}") {
            return None;
        }
        let mut entries = HashMap::new();
        for line in lines {
            let line = line.ok()?;
            let mut parts = line.splitn(10, ' ');
            let fields: Vec<&str> = parts.by_ref().take(8).collect();
            let (key, checksum, path) = (StatKey::parse(&fields)?, parts.next()?, parts.next()?);
            entries.insert(path.to_string(), (key, checksum.to_string()));
        }
        Some(StatCache { entries })
    }

    /// Writes the cache as describing `commit`: a temporary file renamed over the old one,
    /// so a reader sees one or the other. Not synced: a cache lost in a crash costs one full
    /// import, and a torn one fails its header or a line and is not used.
    pub fn save(&self, file: &Path, commit: &str) -> anyhow::Result<()> {
        let tmp = file.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
            writeln!(w, "{HEADER} {commit}")?;
            for (path, (key, checksum)) in &self.entries {
                for n in key.fields() {
                    write!(w, "{n} ")?;
                }
                writeln!(w, "{checksum} {path}")?;
            }
            w.into_inner().map_err(|e| e.into_error())?;
            std::fs::rename(&tmp, file)
        };
        write().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))
    }
}
