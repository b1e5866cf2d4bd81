//! Gives freed heap memory back to the system.
//!
//! glibc keeps what a thread frees in that thread's arena until a trim, and in this process most
//! memory is freed on another thread than the one that allocated it: Fluent Bit frees its chunks
//! (and the ring entries of a threaded input) on the engine thread after a flush, and our buffers
//! go back and forth between the pulling thread and the instance's. Without trims the process
//! keeps its peak for good. Measured (Fluent Bit 5.1.1, one instance idle after a 4,000-record
//! backlog): 14.1 MB anonymous memory, 6.2 MB after one `malloc_trim`.
//!
//! When: at most once a second while records are handed over and for [`SETTLE_MS`] after the last
//! hand-off (the host frees what it took at its next flush, a second later by default), then
//! once every [`QUIET_EVERY_MS`] (memory a slow output held until its retry went through). The
//! trim is process-wide, so one clock serves every instance.

use std::sync::atomic::{AtomicU64, Ordering};

/// After the last hand-off, trims stay at the busy pace this long.
pub const SETTLE_MS: u64 = 5_000;
/// Trim pace while records are handed over and while they settle.
pub const BUSY_EVERY_MS: u64 = 1_000;
/// Trim pace once everything has settled.
pub const QUIET_EVERY_MS: u64 = 60_000;

static LAST_TRIM_MS: AtomicU64 = AtomicU64::new(0);
static LAST_HANDOFF_MS: AtomicU64 = AtomicU64::new(0);

/// Records were just handed to the host: notes it and trims if due.
pub fn handed_over() {
    let now = now_ms();
    LAST_HANDOFF_MS.fetch_max(now, Ordering::Relaxed);
    trim_if_due(now);
}

/// Called on every collect (once a second per instance, handed over or not): trims if due.
pub fn tick() {
    trim_if_due(now_ms());
}

/// Whether a trim is due at `now`, given the last trim and the last hand-off (all ms).
pub fn due(now: u64, last_trim: u64, last_handoff: u64) -> bool {
    let every = if now.saturating_sub(last_handoff) <= SETTLE_MS {
        BUSY_EVERY_MS
    } else {
        QUIET_EVERY_MS
    };
    now.saturating_sub(last_trim) >= every
}

fn trim_if_due(now: u64) {
    let last = LAST_TRIM_MS.load(Ordering::Relaxed);
    if !due(now, last, LAST_HANDOFF_MS.load(Ordering::Relaxed)) {
        return;
    }
    // One thread trims; another that raced for the same slot skips.
    if LAST_TRIM_MS
        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes no pointers and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Milliseconds on a monotonic clock (from the first call, plus a minute so that the first
/// quiet trim is due at once): a wall clock stepped back would hold trims back until it caught up.
fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    start.elapsed().as_millis() as u64 + QUIET_EVERY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_pace_while_handing_over_and_settling() {
        let handoff = 100_000;
        // Handing over: once a second.
        assert!(!due(handoff, handoff - 999, handoff));
        assert!(due(handoff, handoff - 1_000, handoff));
        // Settling: still once a second, up to SETTLE_MS after the last hand-off.
        assert!(due(
            handoff + SETTLE_MS,
            handoff + SETTLE_MS - 1_000,
            handoff
        ));
        assert!(!due(
            handoff + SETTLE_MS,
            handoff + SETTLE_MS - 500,
            handoff
        ));
    }

    #[test]
    fn quiet_pace_once_settled() {
        let handoff = 100_000;
        let settled = handoff + SETTLE_MS + 1;
        // The last settling trim was a second ago: the next comes a minute after it.
        assert!(!due(settled, settled - 1_000, handoff));
        assert!(!due(settled + 58_999, settled - 1_000, handoff));
        assert!(due(settled + 59_000, settled - 1_000, handoff));
        // Never handed over at all: once a minute from the start.
        assert!(due(QUIET_EVERY_MS, 0, 0));
        assert!(!due(QUIET_EVERY_MS + 10, QUIET_EVERY_MS, 0));
    }

    #[test]
    fn the_clock_is_monotonic_and_a_first_trim_is_due() {
        let a = now_ms();
        assert!(a >= QUIET_EVERY_MS);
        assert!(due(a, 0, 0), "nothing trimmed yet: due");
    }
}
