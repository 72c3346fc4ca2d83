//! An example third-party backend built as a cdylib plugin, as a third party would write
//! it: it depends only on `ostree-build-sdk` (feature `dylib`) and exports itself with
//! `export_backend!`. Installed as `libostree_build_backend_greet.so` in a plugin directory.

use ostree_build_sdk::{
    Backend, BackendInfo, EventSink, OptionSpec, Output, Plan, Request, PROTOCOL_VERSION,
};

pub struct Greet;

impl Backend for Greet {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "greet".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "writes a greeting (an example cdylib backend)".into(),
            // Tests set GREET_FAKE_PROTOCOL to see how a host treats a plugin for another protocol.
            protocols: vec![std::env::var("GREET_FAKE_PROTOCOL")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(PROTOCOL_VERSION)],
            capabilities: vec![],
            options: vec![OptionSpec::new("who", "string", true, "whom to greet")],
        }
    }

    fn plan(&self, request: &Request) -> anyhow::Result<Plan> {
        Ok(Plan {
            inputs: vec![],
            fingerprint: request.str_option("who")?.unwrap_or_default().to_string(),
        })
    }

    fn run(&self, request: &Request, events: &mut dyn EventSink) -> anyhow::Result<Output> {
        let who = request
            .str_option("who")?
            .ok_or_else(|| anyhow::anyhow!("missing option 'who'"))?;
        if who == "panic" {
            panic!("asked to panic");
        }
        let dir = request.root.join("usr/share/greet");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("greeting"), format!("hello, {who}\n"))?;
        events.info("greeting written");
        Ok(Output::Tree {
            root: request.root.clone(),
            packages: vec![format!("greet-{}", env!("CARGO_PKG_VERSION"))],
        })
    }
}

ostree_build_sdk::export_backend!(Greet);
