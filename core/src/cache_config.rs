//! The `[cache]` section: where a shared component cache is read from (`url`) and pushed
//! to (`push`, the default destination of `cache push`), and the parsing of both.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheSection {
    /// An OSTree archive repository of built components (http, https or file URL).
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Where `cache push` sends components when no destination is given.
    #[serde(default)]
    pub push: Option<Spanned<String>>,
    /// Seconds the cache may send nothing before a reader gives up on it and builds.
    #[serde(default)]
    pub timeout: Option<Spanned<u64>>,
}

/// `[cache] timeout` when unset.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

impl CacheSection {
    /// How long a reader waits for a silent cache.
    pub fn stall_limit(&self) -> std::time::Duration {
        let secs = self.timeout.as_ref().map(|t| *t.get_ref());
        std::time::Duration::from_secs(secs.unwrap_or(DEFAULT_TIMEOUT_SECS).max(1))
    }
}

pub const URL_HINT: &str =
    "e.g. url = \"https://cache.example.org/myos\" or \"file:///srv/cache/myos\"";
pub const DEST_HINT: &str =
    "a directory (relative to the manifest) or ssh://[user@]host[:port]/path";

/// Why `url` cannot be a cache's address; `None` when it can.
pub fn check_url(url: &str) -> Option<String> {
    let rest = ["http://", "https://", "file://"]
        .iter()
        .find_map(|s| url.strip_prefix(s));
    match rest {
        None => Some(format!(
            "cache.url '{url}' is not an http, https or file URL"
        )),
        Some(r) if r.is_empty() || r == "/" => {
            Some(format!("cache.url '{url}' has no host or path"))
        }
        Some(r) if url.starts_with("file://") && !r.starts_with('/') => Some(format!(
            "cache.url '{url}': a file URL needs an absolute path (file:///...)"
        )),
        Some(_) => None,
    }
}

/// Where `cache push` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushDest {
    /// A repository on this machine (created when missing).
    Path(PathBuf),
    /// A repository on another machine, reached with ssh and rsync.
    Ssh(SshDest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshDest {
    /// `[user@]host`, as ssh and rsync take it.
    pub host: String,
    pub port: Option<u16>,
    /// The repository's path on the far side.
    pub path: String,
}

impl std::fmt::Display for PushDest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushDest::Path(p) => write!(f, "{}", p.display()),
            PushDest::Ssh(s) => match s.port {
                Some(port) => write!(f, "ssh://{}:{port}{}", s.host, s.path),
                None => write!(f, "ssh://{}{}", s.host, s.path),
            },
        }
    }
}

/// Parse a push destination; a relative path is taken relative to `base`.
pub fn parse_dest(text: &str, base: &Path) -> Result<PushDest, String> {
    if let Some(rest) = text.strip_prefix("ssh://") {
        return parse_ssh(rest).map(PushDest::Ssh);
    }
    if text.contains("://") {
        return Err(format!(
            "cache destination '{text}': only local paths and ssh:// are supported for pushing"
        ));
    }
    if text.is_empty() {
        return Err("the cache destination is empty".into());
    }
    Ok(PushDest::Path(crate::manifest::normalize(&base.join(text))))
}

fn parse_ssh(rest: &str) -> Result<SshDest, String> {
    let bad = |why: &str| format!("cache destination 'ssh://{rest}': {why}");
    let slash = rest
        .find('/')
        .ok_or_else(|| bad("no path after the host"))?;
    let (authority, path) = rest.split_at(slash);
    if path.len() < 2 {
        return Err(bad("no path after the host"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(
                p.parse::<u16>()
                    .map_err(|_| bad(&format!("port '{p}' is not a number")))?,
            ),
        ),
        None => (authority, None),
    };
    let hostname = host.rsplit('@').next().unwrap_or(host);
    if hostname.is_empty() || host.starts_with('-') {
        return Err(bad("no host"));
    }
    Ok(SshDest {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://cache.example.org/myos").is_none());
        assert!(check_url("file:///srv/cache").is_none());
        assert!(check_url("file://relative").is_some());
        assert!(check_url("ftp://x/y").is_some());
        assert!(check_url("/srv/cache").is_some());
        assert!(check_url("http://").is_some());
    }

    #[test]
    fn destinations() {
        let base = Path::new("/proj");
        assert_eq!(
            parse_dest("cache", base),
            Ok(PushDest::Path("/proj/cache".into()))
        );
        assert_eq!(
            parse_dest("/srv/c", base),
            Ok(PushDest::Path("/srv/c".into()))
        );
        let ssh = parse_dest("ssh://ci@build.example.org:2222/srv/cache", base).unwrap();
        assert_eq!(
            ssh,
            PushDest::Ssh(SshDest {
                host: "ci@build.example.org".into(),
                port: Some(2222),
                path: "/srv/cache".into()
            })
        );
        assert_eq!(ssh.to_string(), "ssh://ci@build.example.org:2222/srv/cache");
        assert!(parse_dest("ssh://host", base).is_err());
        assert!(parse_dest("ssh://host:x/p", base).is_err());
        assert!(parse_dest("ssh://-oProxyCommand=x/p", base).is_err());
        assert!(parse_dest("https://x/y", base).is_err());
    }
}
