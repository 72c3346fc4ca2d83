//! Everything the CLI prints: lines on stdout that end the process quietly when the reader
//! has gone away, errors on stderr, and the renderings of each command's results.

pub mod backends;
pub mod cache;
pub mod diff;
pub mod events;
pub mod log;
pub mod new;
pub mod new_backend;
pub mod plan;
pub mod progress;
pub mod prune;
pub mod status;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// `println!` through [`line`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(&format!($($arg)*))
    };
}
pub(crate) use outln;

/// Set once stdout's reader has gone away.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// `-q`: no status lines (cargo's rule). Warnings, errors and what a command answers stay.
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q` was given: status lines (Building, Fresh, Finished, ...) are not printed.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Print one line on stdout. When the reader has gone away (`ostree-build status | head`)
/// output stops quietly instead of panicking (SIGPIPE is ignored in this process, by Rust
/// and again by GLib), but the command goes on: a build finishes, and the exit status is
/// still the command's own, so a failure is never hidden by a closed pipe.
pub fn line(text: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
    }
}

/// Print a text that ends with a newline (a generated script or page) through [`line`].
pub fn text(text: &str) {
    line(text.strip_suffix('\n').unwrap_or(text));
}

/// The first 12 characters of a checksum, as people read them.
pub fn short(checksum: &str) -> &str {
    &checksum[..12.min(checksum.len())]
}

/// Report a failed command: a JSON `error` event for CI when asked for, and always the
/// `error:` line on stderr.
pub fn error(e: &anyhow::Error, json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::json!({"event": "error", "message": format!("{e:#}")})
        );
    }
    eprintln!("error: {}", ostree_build_core::report::error_text(e));
}
