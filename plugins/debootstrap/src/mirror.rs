//! Mirrors: the default mirror from the host's apt configuration, and the `Release` file
//! of a suite, fetched with curl, which both checks the mirror and suite before anything is
//! built and fingerprints the mirror's state (a new `Release` means new packages).

use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;

/// Used when neither the manifest nor the host's apt configuration names a Debian mirror.
pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// Suite names people mean, for a did-you-mean on a suite the mirror does not have.
const KNOWN_SUITES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "sid",
    "stable",
    "testing",
    "unstable",
    "oldstable",
    "oldoldstable",
    "experimental",
    "focal",
    "jammy",
    "noble",
    "oracular",
    "plucky",
];

/// The first `deb` URI for Debian in the host's apt sources (`/etc/apt/sources.list`, then
/// `sources.list.d/*.list` and `*.sources` in name order), with the file it came from.
pub fn host_mirror(etc_apt: &Path) -> Option<(String, String)> {
    let mut files = vec![etc_apt.join("sources.list")];
    if let Ok(dir) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut more: Vec<_> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let uris = if file.extension().is_some_and(|e| e == "sources") {
            deb822_uris(&text)
        } else {
            one_line_uris(&text)
        };
        if let Some(uri) = uris.into_iter().find(|u| is_debian_uri(u)) {
            return Some((
                uri.trim_end_matches('/').to_string(),
                file.display().to_string(),
            ));
        }
    }
    None
}

/// `deb` URIs of one-line-style sources: `deb [options] URI suite components`.
fn one_line_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            match rest.find(']') {
                Some(end) => rest = rest[end + 1..].trim_start(),
                None => continue,
            }
        }
        if let Some(uri) = rest.split_whitespace().next() {
            out.push(uri.to_string());
        }
    }
    out
}

/// `URIs` of deb822 stanzas whose `Types` include `deb` and that are not disabled.
fn deb822_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut types = Vec::new();
        let mut uris = Vec::new();
        let mut enabled = true;
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "types" => types = value.split_whitespace().map(str::to_string).collect(),
                "uris" => uris = value.split_whitespace().map(str::to_string).collect(),
                "enabled" => enabled = !matches!(value.trim(), "no" | "false"),
                _ => {}
            }
        }
        if enabled && types.iter().any(|t| t == "deb") {
            out.extend(uris);
        }
    }
    out
}

/// A Debian archive mirror: a path segment named exactly `debian` (not `debian-security`,
/// not a third-party repository).
fn is_debian_uri(uri: &str) -> bool {
    let Some((_, rest)) = uri.split_once("://") else {
        return false;
    };
    let path = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
    path.split('/').any(|seg| seg == "debian")
}

/// Fetch `<mirror>/dists/<suite>/Release` (or `InRelease`). Errors name the suite, the
/// mirror and what to do.
pub fn fetch_release(mirror: &str, suite: &str, timeout: u64) -> Result<Vec<u8>> {
    let base = format!("{}/dists/{}", mirror.trim_end_matches('/'), suite);
    let mut missing = Vec::new();
    for name in ["Release", "InRelease"] {
        let url = format!("{base}/{name}");
        match fetch(&url, timeout)? {
            Fetched::Body(body) => return Ok(body),
            Fetched::NotFound => missing.push(url),
            Fetched::Unreachable(why) => bail!(
                "mirror {mirror} is unreachable: {url} could not be fetched within {timeout}s ({why})\n  help: check the network or proxy, or set `mirror` to one you can reach; a slow link may need a larger `timeout`"
            ),
        }
    }
    let hint = match did_you_mean(suite) {
        Some(s) => format!("did you mean '{s}'? "),
        None => String::new(),
    };
    bail!(
        "suite '{suite}' is unknown at mirror {mirror} (no {})\n  help: {hint}use a codename the mirror has, e.g. bookworm, trixie or sid for Debian (jammy or noble on an Ubuntu mirror); see {mirror}/dists/",
        missing.join(" or ")
    )
}

/// Fetch one URL (an extra source's `Release`); errors say whether it is missing or the
/// server unreachable.
pub fn fetch_url(url: &str, timeout: u64) -> Result<Vec<u8>> {
    match fetch(url, timeout)? {
        Fetched::Body(body) => Ok(body),
        Fetched::NotFound => bail!(
            "{url} does not exist (not found)\n  help: check the URI and suite of the source line"
        ),
        Fetched::Unreachable(why) => bail!("{url} could not be fetched within {timeout}s ({why})"),
    }
}

fn did_you_mean(suite: &str) -> Option<&'static str> {
    ostree_build_sdk::suggest::did_you_mean(suite, KNOWN_SUITES.iter().copied())
}

enum Fetched {
    Body(Vec<u8>),
    NotFound,
    Unreachable(String),
}

/// One GET with curl: the body, "not found" (HTTP 404/410, a missing file:// file), or
/// why the server could not be reached.
fn fetch(url: &str, timeout: u64) -> Result<Fetched> {
    let out = Command::new("curl")
        .args(["-fsSL", "--max-time", &timeout.to_string(), "--", url])
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "curl is not installed; the debootstrap backend uses it to check the mirror\n  help: apt-get install curl"
                )
            } else {
                anyhow::Error::new(e).context("cannot run curl")
            }
        })?;
    if out.status.success() {
        return Ok(Fetched::Body(out.stdout));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .trim_start_matches("curl: ")
        .to_string();
    // "(7) Failed to connect ...": the exit code is said separately.
    let why = match why.split_once(") ") {
        Some((code, rest))
            if code.starts_with('(') && code[1..].chars().all(|c| c.is_ascii_digit()) =>
        {
            rest.to_string()
        }
        _ => why,
    };
    Ok(match out.status.code() {
        // 22: HTTP error >= 400; 37: file:// file not readable; 78: remote file not found.
        Some(22) if why.contains("404") || why.contains("410") => Fetched::NotFound,
        Some(37) | Some(78) => Fetched::NotFound,
        Some(22) => Fetched::Unreachable(why),
        Some(28) => Fetched::Unreachable(format!("timed out after {timeout}s")),
        _ if why.is_empty() => Fetched::Unreachable(format!("curl exited with {}", out.status)),
        _ => Fetched::Unreachable(why),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_sources() {
        let text = "# comment\ndeb-src http://deb.debian.org/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian/ bookworm main\n";
        assert_eq!(
            one_line_uris(text),
            vec!["http://ftp.de.debian.org/debian/"]
        );
    }

    #[test]
    fn deb822_sources() {
        let text = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n\
                    Types: deb-src\nURIs: http://src.example/debian\n\n\
                    Types: deb\nEnabled: no\nURIs: http://off.example/debian\n\n\
                    Types: deb deb-src\nURIs: http://snapshot.debian.org/archive/debian/20250520T000000Z\n";
        let uris = deb822_uris(text);
        assert_eq!(
            uris.iter().find(|u| is_debian_uri(u)).map(String::as_str),
            Some("http://snapshot.debian.org/archive/debian/20250520T000000Z")
        );
    }

    #[test]
    fn debian_uris() {
        assert!(is_debian_uri("http://deb.debian.org/debian"));
        assert!(is_debian_uri("http://cache:3142/deb.debian.org/debian/"));
        assert!(!is_debian_uri("http://deb.debian.org/debian-security"));
        assert!(!is_debian_uri("https://deb.nodesource.com/node_20.x"));
        assert!(!is_debian_uri("https://packages.cloud.google.com/apt"));
    }

    #[test]
    fn suite_suggestions() {
        assert_eq!(did_you_mean("bookwrom"), Some("bookworm"));
        assert_eq!(did_you_mean("xyzzy"), None);
    }
}
