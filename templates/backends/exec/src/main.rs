//! The `{{name}}` backend for ostree-build, as the `ostree-build-{{name}}` executable.
//!
//! Scaffolded by `ostree-build new-backend`: it writes one file, so that it builds, is found
//! and builds a component from the start. Replace `run` with your own `$pkginstallroot`
//! (fill `request.root`), declare your options in `info`, and name in `plan` what the
//! result depends on. The protocol and the whole Rust API: docs/PLUGINS.md.

use ostree_build_sdk::{Backend, BackendInfo, EventSink, OptionSpec, Output, Plan, Request};

const NAME: &str = "{{name}}";
/// What `run` writes, and where in the component.
const FILE: &str = "usr/share/{{name}}/greeting";
const DEFAULT_GREETING: &str = "hello from {{name}}";

pub struct {{type-name}};

impl Backend for {{type-name}} {
    fn info(&self) -> BackendInfo {
        BackendInfo::new(NAME, env!("CARGO_PKG_VERSION"))
            .description("writes one file (scaffolded by ostree-build new-backend)")
            .option(OptionSpec::string("greeting").help("the text to write"))
    }

    fn plan(&self, _request: &Request) -> anyhow::Result<Plan> {
        // The core hashes the component's options and this backend's version itself. Name
        // here what else the result depends on: files (`inputs`, their metadata is hashed)
        // and outside state such as a mirror's index (`fingerprint`).
        Ok(Plan::default())
    }

    fn run(&self, request: &Request, events: &mut dyn EventSink) -> anyhow::Result<Output> {
        let greeting = request.str_option("greeting")?.unwrap_or(DEFAULT_GREETING);
        let file = request.root.join(FILE);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&file, format!("{greeting}\n"))?;
        events.progress(1, Some(1), "files");
        events.info(&format!("wrote /{FILE}"));
        Ok(Output::Tree {
            root: request.root.clone(),
            packages: vec![],
        })
    }
}

fn main() {
    ostree_build_sdk::exec::main({{type-name}})
}
