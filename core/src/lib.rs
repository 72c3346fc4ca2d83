//! ostree-build's library: the manifest, the repository layer (all libostree work), the
//! backend registry and the build pipeline. The `cli` crate only parses and prints, and
//! hands in the built-in backends: this crate links none.
//!
//! Dependencies between modules go one way: `ops` uses everything; `manifest` uses the
//! types of `triggers` and `repo`; `triggers` uses `lock` and `ticker`; `repo` and
//! `backends` use only `fsutil`, `ticker` (which uses nothing) and the sdk; `progress`
//! uses `report` and `ticker`.

pub mod archive;
pub mod backend_template;
pub mod backends;
pub mod cache_config;
pub mod fsutil;
pub mod initramfs;
pub mod input_digest;
pub mod inputs;
pub mod links;
pub mod lock;
pub mod manifest;
pub mod newdir;
pub mod ops;
pub mod packages;
pub mod pkgcache;
pub mod progress;
pub mod repo;
pub mod report;
pub mod retention;
pub mod template;
pub mod ticker;
pub mod triggers;

pub use ostree_build_sdk as sdk;
