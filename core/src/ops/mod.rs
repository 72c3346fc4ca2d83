//! The operations behind each command (cargo's `ops` split): they take a manifest and
//! typed options, do the work through the repository layer, and report events.

pub mod build;
mod compose;
pub mod plan;
pub mod status;

/// The timestamp of new commits: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
pub(crate) fn commit_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        })
}

