//! `cache push ssh://[user@]host[:port]/path`: the components are first copied into a
//! local `archive` outbox (`<state>/cache-outbox`, kept so unchanged objects are not
//! compressed again), their files sent with rsync (each written under a temporary name and
//! renamed, so a reader never sees half an object), then one `sh` script on the far side
//! writes the refs and runs `ostree summary -u` under the cache's `flock`. The far side
//! needs `sh`, `rsync`, `flock` and `ostree`. `OSTREE_BUILD_SSH` replaces the `ssh`
//! command (like `GIT_SSH_COMMAND`).

use super::push::{send_objects, Item};
use crate::cache_config::SshDest;
use crate::lock::EXPORT_LOCK_NAME;
use crate::manifest::Manifest;
use crate::repo::{Repo, RepoKind};
use crate::report::{Event, Reporter};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

/// The environment variable holding the ssh command line.
pub const SSH_ENV: &str = "OSTREE_BUILD_SSH";

pub(super) fn push<'a>(
    manifest: &Manifest,
    repo: &Repo,
    dest: &SshDest,
    items: &'a [Item],
    rep: &mut dyn Reporter,
) -> Result<(Vec<&'a Item>, Vec<String>)> {
    let far = Far::new(dest)?;
    let have = far.prepare(items)?;
    let (present, todo): (Vec<&Item>, Vec<&Item>) =
        items.iter().partition(|i| have.contains(&i.key));
    let mut present: Vec<String> = present.iter().map(|i| i.name.clone()).collect();
    if todo.is_empty() {
        return Ok((todo, present));
    }
    let outbox =
        Repo::open_or_create(&manifest.state_dir().join("cache-outbox"), RepoKind::Export)?;
    send_objects(manifest, repo, &outbox, &todo)?;
    let mut files = BTreeSet::new();
    for item in &todo {
        files.extend(outbox.commit_files(&item.commit)?);
    }
    rep.event(Event::Log {
        name: "cache".into(),
        message: format!("sending up to {} files to {}", files.len(), far.display),
    });
    far.rsync(outbox.path(), &files)?;
    let written = far.write_refs(&todo)?;
    let (won, lost): (Vec<&Item>, Vec<&Item>) =
        todo.into_iter().partition(|i| written.contains(&i.key));
    present.extend(lost.iter().map(|i| i.name.clone()));
    Ok((won, present))
}

/// The far side: how to reach it and where its repository is.
struct Far {
    ssh: Vec<String>,
    host: String,
    path: String,
    /// The repository path quoted for the far side's `sh`.
    quoted: String,
    display: String,
}

impl Far {
    fn new(dest: &SshDest) -> Result<Far> {
        let line = std::env::var(SSH_ENV).unwrap_or_else(|_| "ssh".into());
        let mut ssh = shlex::split(&line)
            .filter(|w| !w.is_empty())
            .ok_or_else(|| anyhow!("{SSH_ENV}='{line}' is not a command line"))?;
        if let Some(port) = dest.port {
            ssh.extend(["-p".to_string(), port.to_string()]);
        }
        let quoted = shlex::try_quote(&dest.path)
            .map_err(|_| anyhow!("cache path '{}' cannot be quoted for sh", dest.path))?
            .into_owned();
        Ok(Far {
            ssh,
            host: dest.host.clone(),
            path: dest.path.clone(),
            quoted,
            display: crate::cache_config::PushDest::Ssh(dest.clone()).to_string(),
        })
    }

    /// Create the repository when missing; return which of `items`' keys it has.
    fn prepare(&self, items: &[Item]) -> Result<BTreeSet<String>> {
        let keys: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        check_hex(&keys)?;
        let script = format!(
            "set -e\nrepo={repo}\n\
             if [ ! -d \"$repo/objects\" ]; then\n\
             if [ -d \"$repo\" ] && [ -n \"$(ls -A \"$repo\")\" ]; then echo \"$repo is a directory with other files, not an OSTree repository\" >&2; exit 3; fi\n\
             mkdir -p \"$repo\"; ostree init --repo=\"$repo\" --mode=archive; fi\n\
             grep -Eq '^mode=archive' \"$repo/config\" || {{ echo \"$repo is an OSTree repository, but not an archive one\" >&2; exit 3; }}\n\
             for k in {keys}; do if [ -e \"$repo/refs/heads/{prefix}$k\" ]; then echo \"$k\"; fi; done\n",
            repo = self.quoted,
            keys = keys.join(" "),
            prefix = super::REF_PREFIX,
        );
        Ok(self
            .run(&script, "look up the cache")?
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Under the cache's lock: write the ref of every item whose key has none yet (the
    /// first push of a key stays), then regenerate the summary. Returns the keys written.
    fn write_refs(&self, items: &[&Item]) -> Result<BTreeSet<String>> {
        let pairs: Vec<String> = items
            .iter()
            .map(|i| format!("{}={}", i.key, i.commit))
            .collect();
        let words: Vec<&str> = items
            .iter()
            .flat_map(|i| [i.key.as_str(), i.commit.as_str()])
            .collect();
        check_hex(&words)?;
        let script = format!(
            "set -e\nrepo={repo}\nexec 9>>\"$repo/{lock}\"\nflock 9\n\
             dir=\"$repo/refs/heads/{prefix}\"\nmkdir -p \"$dir\"\n\
             for pair in {pairs}; do k=${{pair%%=*}}; c=${{pair#*=}}\n\
             if [ ! -e \"$dir$k\" ]; then printf '%s\\n' \"$c\" > \"$dir.$k.tmp\"; mv \"$dir.$k.tmp\" \"$dir$k\"; echo \"$k\"; fi\n\
             done\nostree summary -u --repo=\"$repo\" >/dev/null\n",
            repo = self.quoted,
            lock = EXPORT_LOCK_NAME,
            prefix = super::REF_PREFIX,
            pairs = pairs.join(" "),
        );
        Ok(self
            .run(&script, "write the cache's refs and summary")?
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Run `script` with `sh` on the far side; its standard output.
    fn run(&self, script: &str, what: &str) -> Result<String> {
        let mut cmd = Command::new(&self.ssh[0]);
        cmd.args(&self.ssh[1..]).arg(&self.host).args(["sh", "-s"]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(&self.ssh[0], e))?;
        // A far side that fails at once (unreachable host) stops reading: its exit status
        // and message say why, not the broken pipe.
        let wrote = match child.stdin.take() {
            Some(mut stdin) => stdin.write_all(script.as_bytes()),
            None => Ok(()),
        };
        let out = child.wait_with_output()?;
        if !out.status.success() || wrote.is_err() {
            bail!(
                "cannot {what} at {} ({}): {}\n  help: the far side needs sh, flock and ostree, and write access to {}, an archive repository or a missing or empty directory",
                self.display,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                self.path
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Send `files` (relative to `outbox`) with rsync over the same ssh command; files the
    /// far side has already are left alone.
    fn rsync(&self, outbox: &std::path::Path, files: &BTreeSet<String>) -> Result<()> {
        let mut list =
            tempfile::NamedTempFile::new().context("cannot write the rsync file list")?;
        for f in files {
            writeln!(list, "{f}")?;
        }
        list.flush()?;
        let shell = self
            .ssh
            .iter()
            .map(|w| {
                shlex::try_quote(w)
                    .map(|q| q.into_owned())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
        let out = Command::new("rsync")
            .args(["-a", "--ignore-existing", "--protect-args"])
            .arg(format!("--files-from={}", list.path().display()))
            .arg("-e")
            .arg(shell)
            .arg(format!("{}/", outbox.display()))
            .arg(format!("{}:{}/", self.host, self.path))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error("rsync", e))?;
        if !out.status.success() {
            bail!(
                "rsync to {} failed ({}): {}; no ref was written\n  help: the far side needs rsync; check the path and your access",
                self.display,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn spawn_error(&self, program: &str, e: std::io::Error) -> anyhow::Error {
        match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!(
                "cannot push to {}: `{program}` is not installed here\n  help: install it (Debian: apt-get install {})",
                self.display,
                if program == "rsync" { "rsync" } else { "openssh-client" }
            ),
            _ => anyhow!("cannot run {program} to push to {}: {e}", self.display),
        }
    }
}

/// Keys and commits are put into a shell script: make sure they are what they claim.
fn check_hex(words: &[&str]) -> Result<()> {
    match words
        .iter()
        .find(|w| w.is_empty() || !w.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Some(w) => bail!("'{w}' is not a hexadecimal checksum"),
        None => Ok(()),
    }
}
