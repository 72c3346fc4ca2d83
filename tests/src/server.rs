//! `ostree-build serve --port 0` run for a test: its URL and its request log, for clients
//! pulling over HTTP.

use crate::{binary, Project};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `ostree-build serve --port 0`, its output collected; killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(p: &Project) -> Server {
        let child = Command::new(binary())
            .args(["serve", "--port", "0"])
            .current_dir(p.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Owned by the server from here on: dropping it (even on a panic) stops it.
        let mut server = Server {
            child,
            url: String::new(),
            lines: Arc::new(Mutex::new(Vec::new())),
        };
        let out = server.child.stdout.take().unwrap();
        let sink = server.lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let start = Instant::now();
        while server.url.is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serve printed no URL"
            );
            std::thread::sleep(Duration::from_millis(50));
            server.url = server
                .lines
                .lock()
                .unwrap()
                .iter()
                .flat_map(|l| l.split_whitespace())
                .find(|w| w.starts_with("http://"))
                .unwrap_or_default()
                .to_string();
        }
        server
    }

    /// The output once it contains `text` (request lines are written after the response).
    pub fn output_with(&self, text: &str) -> String {
        for _ in 0..100 {
            if self.output().contains(text) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.output()
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ostree pull REMOTE REF` into `client`, which must succeed (the error shows ostree's).
pub fn pull(client: &std::path::Path, remote: &str, refspec: &str) {
    let out = std::process::Command::new("ostree")
        .arg(format!("--repo={}", client.display()))
        .args(["pull", remote, refspec])
        .output()
        .expect("run ostree pull");
    assert!(
        out.status.success(),
        "pull failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
