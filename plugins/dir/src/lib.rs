//! The `dir` backend: a component is a plain directory tree that already exists on disk
//! (the output of `make install DESTDIR=...` or any `$pkginstallroot`).
//!
//! It does not copy anything: it tells the core to commit the directory in place.

use ostree_build_sdk::{
    require_exists, Backend, BackendInfo, EventSink, OptionSpec, Output, Plan, Request,
    PROTOCOL_VERSION,
};

pub struct DirBackend;

impl Backend for DirBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "dir".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "a plain directory tree (make install DESTDIR=..., a staged rootfs)"
                .into(),
            protocols: vec![PROTOCOL_VERSION],
            capabilities: vec!["tree-in-place".into()],
            options: vec![OptionSpec::new(
                "path",
                "path",
                true,
                "the directory to commit, relative to the manifest",
            )],
        }
    }

    fn plan(&self, request: &Request) -> anyhow::Result<Plan> {
        let path = request.required_path("path")?;
        require_exists(&request.component, "path", &path)?;
        if !path.is_dir() {
            anyhow::bail!(
                "component '{}': option 'path' names '{}', which is not a directory",
                request.component,
                path.display()
            );
        }
        Ok(Plan {
            inputs: vec![path],
            fingerprint: String::new(),
        })
    }

    fn run(&self, request: &Request, _events: &mut dyn EventSink) -> anyhow::Result<Output> {
        // The core commits `path` in place; nothing to copy.
        let mut plan = self.plan(request)?;
        Ok(Output::Tree {
            root: plan.inputs.remove(0),
            packages: vec![],
        })
    }
}
