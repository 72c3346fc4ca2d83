//! The operations behind each command (cargo's `ops` split): they take a manifest and
//! typed options, do the work through the repository layer, and report events.

pub mod build;
pub mod plan;
pub mod status;
