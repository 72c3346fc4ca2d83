//! The pace of progress reports, and calls that report nothing on their own: [`Meter`]
//! says when the next report of a step is due; [`ticking`] runs a call (libostree's delta
//! generation, a trigger's process) on a thread of its own while the caller hears the time
//! pass. It depends on nothing else in the crate, so the repository layer can use it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The shortest time between two reports of one step that counts something (~7 a second).
pub const INTERVAL: Duration = Duration::from_millis(150);

/// How often a step that only has its elapsed time to show reports it.
pub const TICK: Duration = Duration::from_secs(1);

/// When the next report of one step is due.
pub struct Meter {
    start: Instant,
    next: Instant,
    every: Duration,
}

impl Meter {
    /// A meter started now; the first report is due at once.
    pub fn new(every: Duration) -> Meter {
        let now = Instant::now();
        Meter {
            start: now,
            next: now,
            every,
        }
    }

    /// Whether a report is due now; if so, the next one is due `every` later.
    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }

    /// Seconds since the step started.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Run `work` on a thread of its own; until it returns, call `tick` every `every` on the
/// calling thread (whose reporter is not shared with other threads). A panic in `work`
/// goes on in the caller.
pub fn ticking<T: Send>(
    every: Duration,
    work: impl FnOnce() -> T + Send,
    tick: &mut dyn FnMut(),
) -> T {
    let (alive, ended) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let handle = s.spawn(move || {
            // Dropped when `work` returns or unwinds: the caller stops ticking at once.
            let _alive = alive;
            work()
        });
        while let Err(RecvTimeoutError::Timeout) = ended.recv_timeout(every) {
            tick();
        }
        handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticking_ticks_while_the_work_runs_and_returns_its_result() {
        let mut ticks = 0;
        let v = ticking(
            Duration::from_millis(10),
            || {
                std::thread::sleep(Duration::from_millis(100));
                7
            },
            &mut || ticks += 1,
        );
        assert_eq!(v, 7);
        assert!((1..=11).contains(&ticks), "{ticks} ticks");
    }
}
