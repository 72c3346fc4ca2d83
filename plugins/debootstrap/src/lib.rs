//! The `debootstrap` backend: a Debian or Ubuntu root filesystem from a mirror, made by
//! debootstrap (or mmdebstrap when asked for), with the installed package list.
//! (Skeleton: being written.)

use ostree_build_sdk::{Backend, BackendInfo, EventSink, Output, Plan, Request, PROTOCOL_VERSION};

pub struct DebootstrapBackend;

impl Backend for DebootstrapBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "debootstrap".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "a Debian/Ubuntu root filesystem from a mirror (debootstrap, mmdebstrap)".into(),
            protocols: vec![PROTOCOL_VERSION],
            capabilities: vec![],
            options: vec![],
        }
    }

    fn plan(&self, _request: &Request) -> anyhow::Result<Plan> {
        anyhow::bail!("debootstrap backend: not written yet")
    }

    fn run(&self, _request: &Request, _events: &mut dyn EventSink) -> anyhow::Result<Output> {
        anyhow::bail!("debootstrap backend: not written yet")
    }
}
