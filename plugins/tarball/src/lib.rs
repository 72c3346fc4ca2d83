//! The `tarball` backend: a component is a root filesystem tarball, as OpenEmbedded and
//! many build systems produce (.tar, .tar.gz, .tar.bz2, .tar.xz, .tar.zst).
//!
//! The backend only checks the input and names it; the core streams the archive into the
//! repository without extracting it, so modes, ownership, symlinks, hardlinks and xattrs
//! are kept exactly as the archive has them.

use ostree_build_sdk::{
    require_exists, Backend, BackendInfo, EventSink, OptionSpec, Output, Plan, Request,
    PROTOCOL_VERSION,
};

pub struct TarballBackend;

const SUFFIXES: &[&str] = &[
    ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tzst",
];

impl TarballBackend {
    fn archive(&self, request: &Request) -> anyhow::Result<std::path::PathBuf> {
        let path = request.required_path("path")?;
        require_exists(&request.component, "path", &path)?;
        if !path.is_file() {
            anyhow::bail!(
                "component '{}': option 'path' names '{}', which is not a file",
                request.component,
                path.display()
            );
        }
        let name = path.to_string_lossy();
        if !SUFFIXES.iter().any(|s| name.ends_with(s)) {
            anyhow::bail!(
                "component '{}': '{}' does not look like a tarball (expected one of {})",
                request.component,
                path.display(),
                SUFFIXES.join(", ")
            );
        }
        Ok(path)
    }
}

impl Backend for TarballBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "tarball".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "a root filesystem tarball (OpenEmbedded images; tar, gz, bz2, xz, zst)"
                .into(),
            protocols: vec![PROTOCOL_VERSION],
            capabilities: vec!["archive".into()],
            options: vec![OptionSpec::new(
                "path",
                "path",
                true,
                "the tarball to import, relative to the manifest",
            )],
        }
    }

    fn plan(&self, request: &Request) -> anyhow::Result<Plan> {
        Ok(Plan {
            inputs: vec![self.archive(request)?],
            fingerprint: String::new(),
        })
    }

    fn run(&self, request: &Request, _events: &mut dyn EventSink) -> anyhow::Result<Output> {
        Ok(Output::Archive {
            path: self.archive(request)?,
            packages: vec![],
        })
    }
}
