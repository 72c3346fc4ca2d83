//! The package tool: finding `dnf` or `yum` on PATH, telling dnf 4, dnf 5 and classic
//! yum 3 apart, running it with its output streamed as log events, and turning a failure
//! into one line a user can act on.

use crate::repos::RepoDef;
use anyhow::{anyhow, Context, Result};
use ostree_build_sdk::{Event, EventSink, Level};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// Which command-line dialect the tool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Dnf4,
    Dnf5,
    /// yum 3 (RHEL 7 and older): no weak dependencies, no --forcearch.
    Yum3,
}

pub struct Tool {
    pub name: String,
    pub path: PathBuf,
    pub flavor: Flavor,
}

/// Find the tool, `names` in order of preference.
pub fn find(names: &[&str]) -> Result<Tool> {
    let Some((name, path)) = names
        .iter()
        .find_map(|n| ostree_build_sdk::which(n).map(|p| (n.to_string(), p)))
    else {
        anyhow::bail!(
            "neither {} is installed (looked on PATH): install dnf (Debian/Ubuntu: `apt-get install dnf`; Fedora/RHEL: the `dnf` package, `dnf install dnf`)",
            names.join(" nor ")
        );
    };
    let flavor = flavor(&path);
    Ok(Tool { name, path, flavor })
}

fn flavor(path: &Path) -> Flavor {
    let out = Command::new(path)
        .arg("--version")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let first = text.lines().next().unwrap_or("").trim();
    if first.starts_with("dnf5") || first.starts_with('5') {
        Flavor::Dnf5
    } else if first.starts_with("3.") {
        Flavor::Yum3
    } else {
        Flavor::Dnf4
    }
}

impl Tool {
    pub fn no_plugins(&self) -> &'static str {
        match self.flavor {
            Flavor::Dnf5 => "--no-plugins",
            _ => "--noplugins",
        }
    }

    pub fn no_gpg_check(&self) -> &'static str {
        match self.flavor {
            Flavor::Dnf5 => "--no-gpgchecks",
            _ => "--nogpgcheck",
        }
    }
}

/// Split a chunk of output into the lines a person would see: progress bars redraw with
/// `\r`, so only the last state of such a line is kept.
fn visible_line(chunk: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(chunk);
    let line = text
        .split('\r')
        .map(str::trim_end)
        .rfind(|s| !s.trim().is_empty())?;
    Some(line.to_string())
}

/// Run `cmd`, sending every line of its stdout and stderr to `events` as it comes.
/// Returns the exit status and all lines (both streams, in arrival order).
pub fn run_streaming(
    cmd: &mut Command,
    what: &str,
    events: &mut dyn EventSink,
) -> Result<(ExitStatus, Vec<String>)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("cannot run {what}"))?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let pipes: Vec<Box<dyn Read + Send>> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    let readers: Vec<_> = pipes
        .into_iter()
        .map(|pipe| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for chunk in BufReader::new(pipe).split(b'\n') {
                    let Ok(chunk) = chunk else { break };
                    if let Some(line) = visible_line(&chunk) {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut lines = Vec::new();
    for line in rx {
        events.event(Event::Log {
            level: Level::Info,
            message: line.clone(),
        });
        if let Some((done, total)) = crate::progress::installed(&line) {
            events.progress(done, Some(total), "packages installed");
        }
        lines.push(line);
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for {what}"))?;
    Ok((status, lines))
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line saying why the tool failed, from what it printed.
pub fn explain_failure(
    tool: &str,
    status: ExitStatus,
    lines: &[String],
    repos: &[RepoDef],
) -> anyhow::Error {
    missing_packages(lines, repos)
        .or_else(|| unreachable_repo(lines, repos))
        .or_else(|| gpg_failure(lines))
        .or_else(|| unsatisfiable(lines))
        .unwrap_or_else(|| last_error(tool, status, lines))
}

/// Packages that match nothing.
fn missing_packages(lines: &[String], repos: &[RepoDef]) -> Option<anyhow::Error> {
    let mut missing: Vec<String> = Vec::new();
    for l in lines {
        let rest = l
            .split_once("No match for argument: ")
            .map(|(_, r)| r)
            .or_else(|| l.split_once("Unable to find a match: ").map(|(_, r)| r))
            .or_else(|| {
                l.split_once("No package ")
                    .and_then(|(_, r)| r.strip_suffix(" available."))
            })
            .or_else(|| l.split_once("No match for argument ").map(|(_, r)| r));
        if let Some(rest) = rest {
            for name in rest.split_whitespace() {
                if !missing.iter().any(|m| m == name) {
                    missing.push(name.to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let ids: Vec<String> = repos.iter().map(|r| r.id.clone()).collect();
    Some(anyhow!(
        "package{} {} not found in repositories {} (check `packages`, `exclude` and the repository definitions)",
        if missing.len() == 1 { "" } else { "s" },
        quoted_list(&missing),
        ids.join(", ")
    ))
}

/// Metadata that could not be downloaded.
fn unreachable_repo(lines: &[String], repos: &[RepoDef]) -> Option<anyhow::Error> {
    for l in lines {
        let id = ["for repo '", "for repository '"]
            .iter()
            .find_map(|p| l.split_once(p).map(|(_, r)| r))
            .filter(|_| l.contains("metadata"))
            .and_then(|r| r.split_once('\'').map(|(id, _)| id.to_string()));
        if let Some(id) = id {
            let detail = lines
                .iter()
                .find(|d| d.contains("Curl error") || d.contains("Cannot download"))
                .map(|d| d.trim().trim_start_matches("- ").to_string())
                .unwrap_or_else(|| l.trim().to_string());
            let url = repos
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.url().to_string())
                .unwrap_or_default();
            return Some(anyhow!(
                "repository '{id}' is unreachable ({url}): {detail}"
            ));
        }
    }
    None
}

/// Signatures that could not be checked.
fn gpg_failure(lines: &[String]) -> Option<anyhow::Error> {
    let g = lines.iter().find(|l| {
        l.contains("GPG check FAILED")
            || l.contains("You have enabled checking of packages via GPG keys")
            || l.contains("is not signed")
            || l.contains("Public key for")
            || l.contains("public key")
            || l.contains("signature")
            || l.contains("OpenPGP")
    })?;
    let problem_repo = lines
        .iter()
        .find_map(|l| l.strip_prefix("Problem repository: "))
        .map(|s| format!(" (repository {})", s.trim()))
        .unwrap_or_default();
    let what = if g.contains("You have enabled checking") {
        "no GPG public key is available to check the packages".to_string()
    } else {
        g.trim().trim_start_matches("Error: ").to_string()
    };
    Some(anyhow!(
        "gpg check failed{problem_repo}: {what}\n  help: give the signing key with gpgkey= in the repository definition (a repo-file), or set `gpg-check = false` for an unsigned repository you trust"
    ))
}

/// Dependencies nothing provides, or packages that conflict.
fn unsatisfiable(lines: &[String]) -> Option<anyhow::Error> {
    if let Some(l) = lines.iter().find(|l| l.contains("nothing provides")) {
        return Some(anyhow!(
            "unsatisfiable dependencies: {}",
            l.trim().trim_start_matches("- ")
        ));
    }
    let l = lines.iter().find(|l| l.contains("conflicts with"))?;
    Some(anyhow!(
        "conflicting packages: {}",
        l.trim().trim_start_matches("- ")
    ))
}

/// Anything else: the tool's last error line, else its last line.
fn last_error(tool: &str, status: ExitStatus, lines: &[String]) -> anyhow::Error {
    let last_error = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("Error:") && l.len() > "Error:".len() + 1)
        .or_else(|| lines.iter().rev().find(|l| !l.trim().is_empty()));
    match last_error {
        Some(l) => anyhow!("{tool} failed ({status}): {}", l.trim()),
        None => anyhow!("{tool} failed ({status}) without saying why"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repos::{RepoDef, Source};
    use std::os::unix::process::ExitStatusExt;

    fn repos() -> Vec<RepoDef> {
        vec![RepoDef {
            id: "bad".into(),
            source: Source::BaseUrl(vec!["http://127.0.0.1:9/repo".into()]),
            origin: "option 'repos'".into(),
        }]
    }

    fn explain(lines: &[&str]) -> String {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        explain_failure("dnf", ExitStatus::from_raw(256), &lines, &repos()).to_string()
    }

    #[test]
    fn messages() {
        assert_eq!(
            explain(&["No match for argument: nosuch", "Error: Unable to find a match: nosuch"]),
            "package 'nosuch' not found in repositories bad (check `packages`, `exclude` and the repository definitions)"
        );
        let m = explain(&[
            "Errors during downloading metadata for repository 'bad':",
            "  - Curl error (7): Couldn't connect to server for http://127.0.0.1:9/repo/repodata/repomd.xml",
            "Error: Failed to download metadata for repo 'bad': Cannot download repomd.xml",
        ]);
        assert!(
            m.starts_with(
                "repository 'bad' is unreachable (http://127.0.0.1:9/repo): Curl error (7)"
            ),
            "{m}"
        );
        let m = explain(&[
            "You have enabled checking of packages via GPG keys. This is a good thing.",
            "Problem repository: [local]",
        ]);
        assert!(
            m.starts_with("gpg check failed (repository [local])"),
            "{m}"
        );
        assert!(m.contains("gpg-check = false"), "{m}");
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            visible_line(b"a 10%\ra 50%\ra 100%\r").as_deref(),
            Some("a 100%")
        );
        assert_eq!(visible_line(b"  \r"), None);
    }
}
