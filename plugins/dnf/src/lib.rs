//! The `dnf` backend (also answering to `yum`): an RPM-based root filesystem installed with
//! `dnf --installroot` (or `yum`), with the installed package list.
//! (Skeleton: being written.)

use ostree_build_sdk::{Backend, BackendInfo, EventSink, Output, Plan, Request, PROTOCOL_VERSION};

/// The same backend under its two names.
pub struct DnfBackend {
    pub name: &'static str,
}

impl DnfBackend {
    pub const DNF: DnfBackend = DnfBackend { name: "dnf" };
    pub const YUM: DnfBackend = DnfBackend { name: "yum" };
}

impl Backend for DnfBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: self.name.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "an RPM root filesystem from dnf/yum repositories (dnf --installroot)".into(),
            protocols: vec![PROTOCOL_VERSION],
            capabilities: vec![],
            options: vec![],
        }
    }

    fn plan(&self, _request: &Request) -> anyhow::Result<Plan> {
        anyhow::bail!("dnf backend: not written yet")
    }

    fn run(&self, _request: &Request, _events: &mut dyn EventSink) -> anyhow::Result<Output> {
        anyhow::bail!("dnf backend: not written yet")
    }
}
