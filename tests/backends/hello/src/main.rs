//! An example third-party backend, as a third party would write it: it depends only on
//! `ostree-build-sdk` and becomes the `ostree-build-hello` executable in one line of `main`.
//! It populates its root with a greeting and reports one package.

use ostree_build_sdk::{
    Backend, BackendInfo, EventSink, OptionSpec, Output, Plan, Request, PROTOCOL_VERSION,
};

struct Hello;

impl Backend for Hello {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "hello".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "writes a greeting (an example executable backend)".into(),
            protocols: vec![PROTOCOL_VERSION],
            capabilities: vec![],
            options: vec![
                OptionSpec::new("message", "string", true, "the greeting to write"),
                OptionSpec::new("mode", "integer", false, "file mode, default 420 (0644)"),
            ],
        }
    }

    fn plan(&self, request: &Request) -> anyhow::Result<Plan> {
        Ok(Plan {
            inputs: vec![],
            fingerprint: serde_json_free(&request.options),
        })
    }

    fn run(&self, request: &Request, events: &mut dyn EventSink) -> anyhow::Result<Output> {
        use std::os::unix::fs::PermissionsExt;
        let message = request
            .str_option("message")?
            .ok_or_else(|| anyhow::anyhow!("missing option 'message'"))?;
        if message == "panic" {
            panic!("asked to panic");
        }
        let mode = request
            .options
            .get("mode")
            .and_then(|m| m.as_u64())
            .unwrap_or(0o644) as u32;
        let dir = request.root.join("usr/share/hello");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("message.txt");
        std::fs::write(&file, format!("{message}\n"))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))?;
        events.info(&format!("wrote {}", file.display()));
        Ok(Output::Tree {
            root: request.root.clone(),
            packages: vec![format!("hello-{}", env!("CARGO_PKG_VERSION"))],
        })
    }
}

/// The options as a stable string (what determines the result).
fn serde_json_free(options: &impl std::fmt::Debug) -> String {
    format!("{options:?}")
}

fn main() {
    ostree_build_sdk::exec::main(Hello)
}
