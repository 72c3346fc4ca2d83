//! `ostree-build serve`: the export repository over HTTP, read-only, for testing clients.
//!
//! A deliberately small HTTP/1.1 server on the standard library (one thread per
//! connection, `Connection: close`): GET and HEAD of regular files below the root, 404 for
//! anything else, nothing outside the root whatever the path says (`..` segments and dot
//! files are refused and the resolved path, symlinks followed, must stay below the root). Each
//! request is reported as one [`Request`] (method, path, status, bytes).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default port, like `python3 -m http.server`.
pub const DEFAULT_PORT: u16 = 8000;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
}

/// One request served.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub bytes: u64,
}

/// Listen on `options`, call `ready` with the address bound, then serve `root` until the
/// process is interrupted, calling `log` for every request.
pub fn serve(
    root: &Path,
    options: &ServeOptions,
    ready: impl FnOnce(SocketAddr),
    log: impl Fn(&Request) + Send + Sync + 'static,
) -> Result<()> {
    let root = root
        .canonicalize()
        .with_context(|| format!("cannot open {}", root.display()))?;
    let listener = TcpListener::bind((options.bind, options.port)).with_context(|| {
        format!(
            "cannot listen on {}:{}\n  help: pick another port with --port, or --port 0 for any free one",
            options.bind, options.port
        )
    })?;
    ready(listener.local_addr()?);
    let (root, log) = (Arc::new(root), Arc::new(log));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (root, log) = (root.clone(), log.clone());
        std::thread::spawn(move || {
            if let Ok(Some(req)) = handle(stream, &root) {
                log(&req);
            }
        });
    }
    bail!("the listening socket closed")
}

/// Answer one request on `stream`; None when the client sent nothing usable.
fn handle(mut stream: TcpStream, root: &Path) -> std::io::Result<Option<Request>> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(64 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    // Headers are read and ignored (no ranges, no keep-alive).
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
    let mut req = Request {
        method: method.to_string(),
        path,
        status: 200,
        bytes: 0,
    };
    if method != "GET" && method != "HEAD" {
        req.status = 405;
        respond_status(&mut stream, 405, "Method Not Allowed")?;
        return Ok(Some(req));
    }
    let Some(file) = resolve(root, &req.path).and_then(|p| std::fs::File::open(p).ok()) else {
        req.status = 404;
        respond_status(&mut stream, 404, "Not Found")?;
        return Ok(Some(req));
    };
    let len = file.metadata()?.len();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )?;
    if method == "GET" {
        req.bytes = std::io::copy(&mut BufReader::new(file), &mut stream)?;
    }
    stream.flush()?;
    Ok(Some(req))
}

fn respond_status(stream: &mut TcpStream, code: u16, text: &str) -> std::io::Result<()> {
    let body = format!("{code} {text}\n");
    write!(
        stream,
        "HTTP/1.1 {code} {text}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The regular file `url_path` names below `root`, if it is one and stays below `root`.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let mut path = root.to_path_buf();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            // `..`, and dot files: the publish lock names its holder; clients need none.
            s if s.starts_with('.') => return None,
            s if s.contains('\0') => return None,
            s => path.push(s),
        }
    }
    let real = path.canonicalize().ok()?;
    (real.starts_with(root) && real.is_file()).then_some(real)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn never_leaves_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("objects")).unwrap();
        std::fs::write(root.join("config"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("link")).unwrap();
        let root = root.canonicalize().unwrap();
        assert!(resolve(&root, "/config").is_some());
        assert!(resolve(&root, "/%63onfig").is_some());
        assert!(resolve(&root, "/../secret").is_none());
        assert!(resolve(&root, "/objects/%2e%2e/%2e%2e/secret").is_none());
        assert!(resolve(&root, "/link").is_none());
        assert!(resolve(&root, "/objects").is_none());
        assert!(resolve(&root, "/missing").is_none());
        std::fs::write(root.join(".lock"), "pid").unwrap();
        assert!(resolve(&root, "/.lock").is_none());
    }
}
