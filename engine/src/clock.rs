//! Time, behind one seam: every wall-clock reading of the engine goes through
//! [`now_ms`], and durations that must not jump with the wall clock (ISR
//! lag, retry backoffs) through [`monotonic_ms`], so a test can drive both
//! ([`Manual`]) instead of sleeping, and step the wall clock alone.
//!
//! The override is per thread, which is per shard: a shard's state and its
//! clock live on the same thread, and nothing else reads it.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

thread_local! {
    /// A test's clock for this thread; `None`: the system's.
    static MANUAL_MS: Cell<Option<i64>> = const { Cell::new(None) };
    /// A test's monotonic clock for this thread; `None`: the system's.
    static MANUAL_MONOTONIC_MS: Cell<Option<i64>> = const { Cell::new(None) };
}

/// Milliseconds on a clock that never jumps (the process's monotonic
/// clock, counted from its first reading): for durations only, such as how
/// long a follower has been behind. Not comparable across processes or
/// with [`now_ms`].
pub fn monotonic_ms() -> i64 {
    if let Some(ms) = MANUAL_MONOTONIC_MS.with(Cell::get) {
        return ms;
    }
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}

/// Wall-clock milliseconds since the epoch (a test's [`Manual`] clock while
/// one is set on this thread).
pub fn now_ms() -> i64 {
    if let Some(ms) = MANUAL_MS.with(Cell::get) {
        return ms;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A clock a test sets and advances; the system clock is back when it is
/// dropped.
pub struct Manual(());

impl Manual {
    /// Sets this thread's clocks to `start_ms` (wall and monotonic).
    pub fn start_at(start_ms: i64) -> Manual {
        MANUAL_MS.with(|c| c.set(Some(start_ms)));
        MANUAL_MONOTONIC_MS.with(|c| c.set(Some(start_ms)));
        Manual(())
    }

    /// Moves this thread's clocks forward by `ms`: time passes.
    pub fn advance(&self, ms: i64) {
        MANUAL_MS.with(|c| c.set(c.get().map(|now| now + ms)));
        MANUAL_MONOTONIC_MS.with(|c| c.set(c.get().map(|now| now + ms)));
    }

    /// Steps this thread's wall clock by `ms` (either way) while no time
    /// passes: what NTP or an operator does to a host's clock.
    pub fn step_wall(&self, ms: i64) {
        MANUAL_MS.with(|c| c.set(c.get().map(|now| now + ms)));
    }
}

impl Drop for Manual {
    fn drop(&mut self) {
        MANUAL_MS.with(|c| c.set(None));
        MANUAL_MONOTONIC_MS.with(|c| c.set(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_drives_now_ms_until_dropped() {
        let clock = Manual::start_at(1_000);
        assert_eq!(now_ms(), 1_000);
        clock.advance(250);
        assert_eq!(now_ms(), 1_250);
        drop(clock);
        assert!(now_ms() > 1_600_000_000_000, "the system clock again");
    }
}
