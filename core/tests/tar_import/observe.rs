//! Running the import and looking at its result with tools that share no code with it.
//! The import runs in a child process (this test binary re-run as `child_import`), so a
//! crash or a hang is one failed (and shrunk) case, not a dead test run. The commit is read
//! back with the `ostree` CLI (`ls -R -X` for types, modes, owners, xattrs and targets,
//! `cat` for contents) and the repository checked with `ostree fsck`.

use super::model::{Node, NodeKind, Xattrs};
use ostree_build_core::repo::{NewCommit, Repo, RepoKind};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The test that, run in a child with these variables set, performs one import.
pub const CHILD_TEST: &str = "child_import";
const ENV_ARCHIVE: &str = "TAR_IMPORT_CHILD_ARCHIVE";
const ENV_REPO: &str = "TAR_IMPORT_CHILD_REPO";
const ENV_OUT: &str = "TAR_IMPORT_CHILD_OUT";
const TIMEOUT: Duration = Duration::from_secs(120);

/// How an import ended.
#[derive(Debug)]
pub enum Imported {
    Commit(String),
    /// The error as the CLI prints it (`error: ` left out).
    Refused(String),
    /// Killed by a signal, panicked, hung: what the child said.
    Died(String),
}

/// Imports `archive` into a new bare-user repository at `repo`, in a child process.
pub fn import(archive: &Path, repo: &Path) -> Imported {
    let out = repo.with_extension("result");
    let log = repo.with_extension("log");
    let log_file = std::fs::File::create(&log).expect("child log");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV_ARCHIVE, archive)
        .env(ENV_REPO, repo)
        .env(ENV_OUT, &out)
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("re-run the test binary");
    let status = wait(&mut child);
    let result = std::fs::read_to_string(&out).unwrap_or_default();
    if let Some(c) = result.strip_prefix("commit ") {
        return Imported::Commit(c.to_string());
    }
    if let Some(e) = result.strip_prefix("error ") {
        return Imported::Refused(e.to_string());
    }
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    Imported::Died(format!(
        "{}; it said:\n{}",
        describe(status),
        without_harness(&said)
    ))
}

/// The child's output without the test harness's own lines.
fn without_harness(log: &str) -> String {
    let harness = [
        "running 1 test",
        "test child_import",
        "failures:",
        "test result:",
        "----",
    ];
    let lines = log
        .lines()
        .filter(|l| !l.is_empty() && !harness.iter().any(|h| l.starts_with(h)));
    lines.collect::<Vec<_>>().join("\n")
}

fn wait(child: &mut std::process::Child) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => format!("the import hung (killed after {}s)", TIMEOUT.as_secs()),
        Some(s) => match s.signal() {
            Some(sig) => format!("the import was killed by signal {sig}"),
            None => format!("the import exited with {s} without a result (a panic?)"),
        },
    }
}

/// The child's side: when the variables are set, import and write the result.
pub fn child_main() {
    let (Some(archive), Some(repo), Some(out)) = (
        std::env::var_os(ENV_ARCHIVE),
        std::env::var_os(ENV_REPO),
        std::env::var_os(ENV_OUT),
    ) else {
        return;
    };
    let repo = Repo::open_or_create(Path::new(&repo), RepoKind::Build).expect("create repo");
    let commit = NewCommit {
        parent: None,
        subject: "tar import test",
        metadata: &[],
        timestamp: 0,
    };
    let result = match repo.import_archive(Path::new(&archive), &commit) {
        Ok((checksum, _)) => format!("commit {checksum}"),
        Err(e) => format!("error {}", ostree_build_core::report::error_text(&e)),
    };
    std::fs::write(out, result).expect("write the result");
}

/// Runs `ostree ARGS` (in a UTF-8 locale, which libarchive needs for UTF-8 pax names);
/// its stdout, or what went wrong.
pub fn ostree(args: &[&str]) -> Result<String, String> {
    ostree_bytes(args).map(|out| String::from_utf8_lossy(&out).into_owned())
}

fn ostree_bytes(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("ostree")
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ostree: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("ostree {} failed: {err}", args.join(" ")));
    }
    Ok(out.stdout)
}

fn repo_arg(repo: &Path) -> String {
    format!("--repo={}", repo.display())
}

/// `ostree fsck` of the repository is clean and no ref exists.
pub fn fsck_clean(repo: &Path) -> Result<(), String> {
    if !repo.join("config").exists() {
        return Ok(());
    }
    let out = ostree(&["fsck", &repo_arg(repo)])?;
    if out.to_lowercase().contains("error") && !out.contains("no errors found") {
        return Err(format!("ostree fsck: {out}"));
    }
    let refs = ostree(&["refs", &repo_arg(repo)])?;
    match refs.trim().is_empty() {
        true => Ok(()),
        false => Err(format!("the import moved refs: {refs}")),
    }
}

/// The line `ostree ls -d -C REV /` prints: root mode, owner, contents and metadata
/// checksums.
pub fn root_line(repo: &Path, rev: &str) -> Result<String, String> {
    Ok(ostree(&["ls", &repo_arg(repo), "-d", "-C", rev, "/"])?
        .trim()
        .to_string())
}

/// The committed tree, by `/`-rooted path.
pub fn read_tree(repo: &Path, commit: &str) -> Result<BTreeMap<String, Node>, String> {
    let listing = ostree(&["ls", &repo_arg(repo), "-R", "-X", commit])?;
    let mut tree = BTreeMap::new();
    for line in listing.lines() {
        let (path, node) = parse_ls_line(line).map_err(|e| format!("{e} in {line:?}"))?;
        tree.insert(path, node);
    }
    for (path, node) in tree.iter_mut() {
        if let NodeKind::File(data) = &mut node.kind {
            *data = ostree_bytes(&["cat", &repo_arg(repo), commit, path])?;
        }
    }
    Ok(tree)
}

/// One line of `ostree ls -R -X`: `d00755 0 0      0 { XATTRS } /path[ -> target]`.
fn parse_ls_line(line: &str) -> Result<(String, Node), String> {
    let (head, rest) = line.split_once(" { ").ok_or("no xattrs")?;
    let fields: Vec<&str> = head.split_whitespace().collect();
    let [type_mode, uid, gid, _size] = fields[..] else {
        return Err("not four fields".into());
    };
    let mode = u32::from_str_radix(&type_mode[1..], 8).map_err(|e| e.to_string())?;
    let uid = uid.parse().map_err(|_| "uid")?;
    let gid = gid.parse().map_err(|_| "gid")?;
    let mut parser = Variant {
        s: rest.as_bytes(),
        i: 0,
    };
    let xattrs = parser.xattrs()?;
    let rest = std::str::from_utf8(&parser.s[parser.i..]).map_err(|e| e.to_string())?;
    let rest = rest.strip_prefix(" } ").ok_or("no end of xattrs")?;
    let (path, kind) = match type_mode.as_bytes()[0] {
        b'd' => (rest, NodeKind::Dir),
        b'-' => (rest, NodeKind::File(Vec::new())),
        b'l' => {
            let (path, target) = rest.split_once(" -> ").ok_or("no target")?;
            (path, NodeKind::Symlink(target.to_string()))
        }
        other => return Err(format!("type {:?}", other as char)),
    };
    let node = Node {
        kind,
        mode,
        uid,
        gid,
        xattrs,
    };
    Ok((path.to_string(), node))
}

/// A reader for the GVariant text `g_variant_print` gives an `a(ayay)`.
struct Variant<'a> {
    s: &'a [u8],
    i: usize,
}

impl Variant<'_> {
    fn eat(&mut self, token: &str) -> bool {
        let hit = self.s[self.i..].starts_with(token.as_bytes());
        if hit {
            self.i += token.len();
        }
        hit
    }
    fn expect(&mut self, token: &str) -> Result<(), String> {
        match self.eat(token) {
            true => Ok(()),
            false => Err(format!("expected {token:?} at byte {}", self.i)),
        }
    }
    fn next(&mut self) -> Result<u8, String> {
        let b = *self.s.get(self.i).ok_or("end of line in xattrs")?;
        self.i += 1;
        Ok(b)
    }
    fn xattrs(&mut self) -> Result<Xattrs, String> {
        let mut out = Vec::new();
        if self.eat("@a(ayay) []") {
            return Ok(out);
        }
        self.expect("[")?;
        while !self.eat("]") {
            self.expect("(")?;
            let mut name = self.bytes()?;
            if name.pop() != Some(0) {
                return Err("xattr name without its NUL".into());
            }
            self.expect(", ")?;
            let value = self.bytes()?;
            self.expect(")")?;
            self.eat(", ");
            out.push((name, value));
        }
        Ok(out)
    }
    /// An `ay`: `b'...'` / `b"..."` (a string plus its NUL), `[byte 0x.., ...]` (later
    /// ones without `byte`), `[]`.
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        if self.eat("@ay []") || self.eat("[]") {
            return Ok(Vec::new());
        }
        if self.eat("[byte ") || self.eat("[") {
            return self.hex_list();
        }
        let quote = match (self.eat("b'"), self.eat("b\"")) {
            (true, _) => b'\'',
            (_, true) => b'"',
            _ => return Err(format!("no byte string at byte {}", self.i)),
        };
        self.quoted(quote)
    }
    fn hex_list(&mut self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            self.expect("0x")?;
            let hex = [self.next()?, self.next()?];
            let hex = std::str::from_utf8(&hex).map_err(|e| e.to_string())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
            if self.eat("]") {
                return Ok(out);
            }
            self.expect(", ")?;
        }
    }
    /// A `g_strescape`d string up to `quote`, with the NUL the form implies.
    fn quoted(&mut self, quote: u8) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b if b == quote => break,
                b'\\' => out.push(self.escape()?),
                b => out.push(b),
            }
        }
        out.push(0);
        Ok(out)
    }
    fn escape(&mut self) -> Result<u8, String> {
        let b = self.next()?;
        Ok(match b {
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            b'0'..=b'7' => {
                let mut v = (b - b'0') as u32;
                for _ in 0..2 {
                    match self.s.get(self.i) {
                        Some(d @ b'0'..=b'7') => v = v * 8 + (d - b'0') as u32,
                        _ => break,
                    }
                    self.i += 1;
                }
                v as u8
            }
            other => other,
        })
    }
}
