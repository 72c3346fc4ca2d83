//! The `{{name}}` backend for ostree-build, as a cdylib plugin
//! (`libostree_build_backend_{{lib-name}}.so`), exported with the sdk's `export_backend!`.
//!
//! Scaffolded by `ostree-build new-backend`: it writes one file, so that it builds, loads
//! and builds a component from the start. Replace `run` with your own `$pkginstallroot`
//! (fill `request.root`), declare your options in `info`, and name in `plan` what the
//! result depends on. The protocol and the whole Rust API: docs/PLUGINS.md. A plugin must
//! be built against the sdk `0.minor` of the ostree-build that loads it.

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

ostree_build_sdk::export_backend!({{type-name}});

#[cfg(test)]
mod tests {
    use super::*;
    use ostree_build_sdk::serde_json::{self, json};
    use ostree_build_sdk::{Event, PROTOCOL_VERSION};

    /// Keeps the events, to check what the backend reports.
    struct Keep(Vec<Event>);

    impl EventSink for Keep {
        fn event(&mut self, event: Event) {
            self.0.push(event);
        }
    }

    /// A fresh empty directory, removed first if a previous run left it.
    fn scratch() -> std::path::PathBuf {
        let name = format!("ostree-build-{NAME}-test-{}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch root");
        dir
    }

    #[test]
    fn says_who_it_is() {
        let info = {{type-name}}.info();
        assert_eq!(info.name, NAME);
        assert!(info.protocols.contains(&PROTOCOL_VERSION));
    }

    #[test]
    fn fills_an_empty_root() {
        let dir = scratch();
        let request = json!({"protocol": PROTOCOL_VERSION, "component": "test",
            "arch": "x86_64", "project_dir": dir, "root": dir, "options": {"greeting": "hi"}});
        let request: Request = serde_json::from_value(request).expect("a request");
        let mut events = Keep(vec![]);
        match {{type-name}}.run(&request, &mut events).expect("run") {
            Output::Tree { root, packages } => assert_eq!((root, packages), (dir.clone(), vec![])),
            other => panic!("not a tree: {other:?}"),
        }
        let written = std::fs::read_to_string(dir.join(FILE)).expect("the greeting");
        assert_eq!(written, "hi\n");
        assert_eq!(events.0[0].text(), "1/1 files");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
