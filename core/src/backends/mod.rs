//! Backends: finding them and talking to them. Every backend ends up behind the sdk's
//! `Backend` trait, so the rest of the core never knows where one came from.
//!
//! - [`found`]: what a search finds (candidates, sources) and the checks on a backend's info;
//! - [`names`]: which file names are backends, and which look meant as one but are not;
//! - [`search`]: the directories searched and the files in them that look like backends;
//! - [`registry`]: one [`Registry`] serving running and listing alike;
//! - [`exec`]: the JSON-lines protocol client for `ostree-build-<name>` executables;
//! - [`dylib`]: cdylib plugins through abi_stable;
//! - [`external`]: `ostree-build-<name>` programs that are plain commands, run cargo-style.

pub mod dylib;
pub mod exec;
pub mod external;
pub mod found;
pub mod names;
pub mod registry;
pub mod search;

pub use external::run_external;
pub use found::{Candidate, CandidateKind, Found, Source};
pub use registry::{Listed, Registry, Resolved};
pub use search::Ignored;
