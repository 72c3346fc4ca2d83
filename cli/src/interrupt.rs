//! Ctrl-C and SIGTERM during a build: detach any trigger mount of this project, say what
//! state things are in, then die of the same signal (so callers see how the run ended).
//! Refs only move in atomic steps, so whatever was interrupted is redone by the next run.

use std::path::PathBuf;

/// Install the handler for a build of the project whose state directory is `state_dir`.
pub fn on_interrupt_clean_up(state_dir: PathBuf) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            // Mounts under the state directory belong to whoever holds the project lock.
            if ostree_build_core::lock::held_by_this_process() {
                ostree_build_core::triggers::kill_running();
                ostree_build_core::lock::unmount_below(&state_dir);
            }
            crate::output::progress::clear();
            eprintln!(
                "error: interrupted; refs that had not moved yet are unchanged and the next `ostree-build build` picks up from here"
            );
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    });
}
