//! Repository definitions: reading `.repo` files and inline `id=baseurl` entries, writing
//! the private reposdir the tool reads, and the repository state (`repodata/repomd.xml`)
//! that goes into the plan fingerprint so a component rebuilds when a repository changes.

use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a repository's metadata is found.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// One or more base URLs, tried in order.
    BaseUrl(Vec<String>),
    /// A metalink document listing mirrors and the expected repomd.xml checksum.
    Metalink(String),
    /// A mirror list: one base URL a line.
    MirrorList(String),
}

/// One enabled repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoDef {
    pub id: String,
    pub source: Source,
    /// Where it was defined, for messages: a .repo file or "option 'repos'".
    pub origin: String,
}

impl RepoDef {
    /// The URL to show a user (the first base URL, the metalink or the mirror list).
    pub fn url(&self) -> &str {
        match &self.source {
            Source::BaseUrl(urls) => urls.first().map(String::as_str).unwrap_or(""),
            Source::Metalink(u) | Source::MirrorList(u) => u,
        }
    }
}

/// One `[section]` of an INI-style .repo file with its keys in order.
struct Section {
    name: String,
    keys: Vec<(String, String)>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse dnf's INI dialect: `[id]` sections, `key=value`, continuation lines starting with
/// whitespace (multi-line `baseurl`/`gpgkey`), `#` and `;` comments.
fn parse_ini(text: &str, file: &Path) -> Result<Vec<Section>> {
    let mut sections: Vec<Section> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
                bail!(
                    "{}:{}: malformed section header '{}'",
                    file.display(),
                    n + 1,
                    trimmed
                );
            };
            sections.push(Section {
                name: name.trim().to_string(),
                keys: vec![],
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            bail!(
                "{}:{}: '{}' comes before any [repository] section",
                file.display(),
                n + 1,
                trimmed
            );
        };
        if line.starts_with(char::is_whitespace) {
            if let Some((_, v)) = section.keys.last_mut() {
                v.push('\n');
                v.push_str(trimmed);
                continue;
            }
        }
        let Some((k, v)) = trimmed.split_once('=') else {
            bail!(
                "{}:{}: expected key=value, got '{}'",
                file.display(),
                n + 1,
                trimmed
            );
        };
        section
            .keys
            .push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(sections)
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "yes" | "true" | "on"
    )
}

/// The enabled repositories of one .repo file.
pub fn parse_repo_file(path: &Path, text: &str) -> Result<Vec<RepoDef>> {
    let mut out = Vec::new();
    for s in parse_ini(text, path)? {
        if s.name == "main" {
            continue;
        }
        if s.get("enabled").is_some_and(|v| !is_true(v)) {
            continue;
        }
        let source = if let Some(b) = s.get("baseurl").filter(|v| !v.is_empty()) {
            Source::BaseUrl(
                b.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|u| !u.is_empty())
                    .map(str::to_string)
                    .collect(),
            )
        } else if let Some(m) = s.get("metalink").filter(|v| !v.is_empty()) {
            Source::Metalink(m.to_string())
        } else if let Some(m) = s.get("mirrorlist").filter(|v| !v.is_empty()) {
            Source::MirrorList(m.to_string())
        } else {
            bail!(
                "{}: repository '{}' has no baseurl, metalink or mirrorlist",
                path.display(),
                s.name
            );
        };
        out.push(RepoDef {
            id: s.name.clone(),
            source,
            origin: path.display().to_string(),
        });
    }
    Ok(out)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// One inline definition `id=baseurl`. A base URL without a scheme is a directory,
/// relative to the project.
pub fn parse_inline(def: &str, project_dir: &Path) -> Result<RepoDef> {
    let Some((id, url)) = def.split_once('=') else {
        bail!(
            "option 'repos': '{def}' is not of the form id=baseurl (e.g. local=file:///srv/rpms)"
        );
    };
    let (id, url) = (id.trim(), url.trim());
    if !valid_id(id) {
        bail!("option 'repos': '{id}' is not a valid repository id (letters, digits, '-', '_', '.', ':')");
    }
    if url.is_empty() {
        bail!("option 'repos': repository '{id}' has an empty baseurl");
    }
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("file://{}", project_dir.join(url).display())
    };
    Ok(RepoDef {
        id: id.to_string(),
        source: Source::BaseUrl(vec![url]),
        origin: "option 'repos'".into(),
    })
}

/// The .repo text the tool reads for the inline repositories.
pub fn inline_repo_file(repos: &[RepoDef], gpg_check: bool) -> String {
    let mut out = String::from("# Written by ostree-build from the component's 'repos' option.\n");
    for r in repos {
        out.push_str(&format!(
            "\n[{id}]\nname={id}\nbaseurl={url}\nenabled=1\ngpgcheck={g}\n",
            id = r.id,
            url = r.url(),
            g = u8::from(gpg_check)
        ));
    }
    out
}

/// dnf's `$releasever`, `$basearch` and `$arch` in URLs (also as `${name}`).
pub fn substitute(url: &str, releasever: &str, arch: &str) -> String {
    let basearch = crate::basearch(arch);
    let mut s = url.to_string();
    for (k, v) in [
        ("releasever", releasever),
        ("basearch", basearch),
        ("arch", arch),
    ] {
        s = s.replace(&format!("${{{k}}}"), v);
        // `$arch` must not eat the start of `$archive`-like words; dnf has no such
        // variables, so a plain replace after the longer names is enough.
        s = s.replace(&format!("${k}"), v);
    }
    s
}

/// Read a URL: file:// directly, anything else with curl, within `timeout` seconds.
pub fn fetch(url: &str, timeout: u64) -> Result<Vec<u8>> {
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::read(path).map_err(|e| anyhow!("{e}"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("ftp://")) {
        bail!("unsupported URL scheme (use file://, http://, https:// or ftp://)");
    }
    let out = Command::new("curl")
        .args(["-fsSL", "--max-time", &timeout.to_string(), "--"])
        .arg(url)
        .output()
        .map_err(|e| anyhow!("cannot run curl ({e}); install it (Debian: apt-get install curl)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.lines().last().unwrap_or("").trim();
        bail!(
            "{}",
            if err.is_empty() {
                format!("curl exited with {}", out.status)
            } else {
                err.to_string()
            }
        );
    }
    Ok(out.stdout)
}

fn join_url(base: &str, rel: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), rel)
}

/// What identifies the current state of a repository: its `repodata/repomd.xml` (or, for a
/// metalink, the repomd.xml entry the metalink vouches for). One-line errors naming the
/// repository and URL.
pub fn state(repo: &RepoDef, releasever: &str, arch: &str, timeout: u64) -> Result<Vec<u8>> {
    let unreachable = |url: &str, e: anyhow::Error| {
        anyhow!(
            "repository '{}' ({}) is unreachable: {url}: {e}",
            repo.id,
            repo.origin
        )
    };
    let from_bases = |bases: &[String]| -> Result<Vec<u8>> {
        let mut last = None;
        for base in bases {
            let url = join_url(&substitute(base, releasever, arch), "repodata/repomd.xml");
            match fetch(&url, timeout) {
                Ok(b) => return Ok(b),
                Err(e) => last = Some(unreachable(&url, e)),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("repository '{}' has no base URL", repo.id)))
    };
    match &repo.source {
        Source::BaseUrl(bases) => from_bases(bases),
        Source::MirrorList(list) => {
            let url = substitute(list, releasever, arch);
            let text = fetch(&url, timeout).map_err(|e| unreachable(&url, e))?;
            let bases: Vec<String> = String::from_utf8_lossy(&text)
                .lines()
                .map(str::trim)
                .filter(|l| l.contains("://") && !l.starts_with('#'))
                .take(3)
                .map(str::to_string)
                .collect();
            if bases.is_empty() {
                bail!(
                    "repository '{}': the mirror list {url} names no mirror",
                    repo.id
                );
            }
            from_bases(&bases)
        }
        Source::Metalink(link) => {
            let url = substitute(link, releasever, arch);
            let text = fetch(&url, timeout).map_err(|e| unreachable(&url, e))?;
            let text = String::from_utf8_lossy(&text);
            // The repomd.xml entry (timestamp, size, checksums), without the mirror list,
            // which varies between requests.
            let entry = text
                .find("name=\"repomd.xml\"")
                .map(|start| {
                    let rest = &text[start..];
                    let end = rest.find("<resources").unwrap_or(rest.len());
                    rest[..end].to_string()
                })
                .ok_or_else(|| {
                    anyhow!(
                        "repository '{}': the metalink {url} has no repomd.xml entry",
                        repo.id
                    )
                })?;
            Ok(entry.into_bytes())
        }
    }
}

/// Repository files named by the `repo-file` option, resolved against the project, with
/// their text. Errors name the missing file.
pub fn read_repo_files(
    component: &str,
    project_dir: &Path,
    files: &[String],
) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for f in files {
        let path = project_dir.join(f);
        if !path.is_file() {
            bail!(
                "component '{component}': option 'repo-file' names '{}', which {}",
                path.display(),
                if path.exists() {
                    "is not a file"
                } else {
                    "does not exist"
                }
            );
        }
        if path.extension().and_then(|e| e.to_str()) != Some("repo") {
            bail!(
                "component '{component}': '{}' must end in .repo (dnf ignores other files in a reposdir)",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow!(
                "component '{component}': cannot read {}: {e}",
                path.display()
            )
        })?;
        out.push((path, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_file_sections() {
        let text = "[main]\ngpgcheck=1\n\n# comment\n[fedora]\nname=Fedora $releasever\nmetalink=https://mirrors.example/metalink?repo=fedora-$releasever&arch=$basearch\n\n[off]\nbaseurl=http://x/\nenabled=0\n\n[multi]\nbaseurl=http://a/\n  http://b/\n";
        let repos = parse_repo_file(Path::new("f.repo"), text).unwrap();
        assert_eq!(repos.len(), 2);
        assert_eq!(repos[0].id, "fedora");
        assert!(matches!(repos[0].source, Source::Metalink(_)));
        assert_eq!(
            repos[1].source,
            Source::BaseUrl(vec!["http://a/".into(), "http://b/".into()])
        );
    }

    #[test]
    fn inline_and_substitution() {
        let r = parse_inline("local=rpms", Path::new("/p")).unwrap();
        assert_eq!(r.url(), "file:///p/rpms");
        assert!(parse_inline("nourl", Path::new("/p")).is_err());
        assert!(parse_inline("bad id=http://x", Path::new("/p")).is_err());
        assert_eq!(
            substitute("http://m/$releasever/${basearch}/$arch", "41", "i686"),
            "http://m/41/i386/i686"
        );
    }
}
