//! ostree-build's library: the manifest, the repository layer (all libostree work), the
//! backend registry and the build pipeline. The `cli` crate only parses and prints.

pub mod backends;
pub mod dylib;
pub mod fsutil;
pub mod inputs;
pub mod lock;
pub mod manifest;
pub mod ops;
pub mod packages;
pub mod repo;
pub mod report;
pub mod triggers;

pub use ostree_build_sdk as sdk;
