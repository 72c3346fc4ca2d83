//! `ostree-build serve`: the export repository over HTTP on 127.0.0.1, read-only, with
//! the commands a client runs to pull from it; one line per request.

use super::ProjectArgs;
use anyhow::{bail, Result};
use ostree_build_core::manifest::Manifest;
use ostree_build_core::ops::publish::keyring_path;
use ostree_build_core::ops::serve::{serve, Request, ServeOptions, DEFAULT_PORT};
use std::io::Write;
use std::net::IpAddr;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Port to listen on; 0 picks any free port
    #[arg(long, default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
}

pub fn exec(args: ServeArgs) -> Result<()> {
    let manifest = args.project.manifest()?;
    let root = manifest.export_repo_path();
    if !root.join("config").is_file() {
        bail!(
            "nothing to serve: {} is not a repository yet\n  help: run ostree-build build (or ostree-build publish) first",
            root.display()
        );
    }
    let json = args.project.json();
    let options = ServeOptions {
        bind: args.bind,
        port: args.port,
    };
    let ready = |addr: std::net::SocketAddr| {
        let url = format!("http://{addr}/");
        if json {
            let line = serde_json::json!({"event": "listening", "url": url, "repo": root});
            println!("{line}");
        } else {
            print_instructions(&manifest, &url);
        }
        let _ = std::io::stdout().flush();
    };
    let log = move |r: &Request| {
        let mut out = std::io::stdout().lock();
        let _ = match json {
            true => writeln!(
                out,
                "{}",
                serde_json::json!({"event": "request", "request": r})
            ),
            false => writeln!(out, "{} {} {} {}", r.method, r.path, r.status, r.bytes),
        };
        let _ = out.flush();
    };
    serve(&root, &options, ready, log)
}

fn print_instructions(manifest: &Manifest, url: &str) {
    let name = &manifest.os.name;
    let keyring = keyring_path(manifest);
    println!(
        "serving {} at {url} (Ctrl-C to stop)",
        manifest.export_repo_path().display()
    );
    println!("on a client:");
    let verify = if keyring.is_file() {
        format!(
            "--set=gpg-verify=true --set=gpg-verify-summary=true --gpg-import={}",
            keyring.display()
        )
    } else {
        "--no-gpg-verify".to_string()
    };
    println!("  ostree --repo=CLIENT-REPO remote add {verify} {name} {url}");
    let example = manifest
        .images
        .iter()
        .find(|(_, s)| s.publish)
        .map(|(i, _)| manifest.image_ref(i))
        .unwrap_or_else(|| "REF".into());
    println!("  ostree --repo=CLIENT-REPO pull {name} {example}");
    println!("requests (method path status bytes):");
}
