//! What a host's instances delivered: records (or only their count), buffer statistics,
//! violations, errors and the plugin's log lines.

use crate::decode::Record;
use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Called with the records of every buffer once decoded, before the plugin's cleanup is called
/// (as Fluent Bit appends a buffer to its chunk before cleanup). The CLI prints them.
pub type Printer = Arc<dyn Fn(&[Record]) + Send + Sync>;

/// What the host does with records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Keep them in memory for the caller.
    All,
    /// Count them only (benchmarks).
    Count,
}

#[derive(Default)]
pub struct Collected {
    pub records: Mutex<Vec<Record>>,
    pub count: AtomicU64,
    pub bytes: AtomicU64,
    pub buffers: AtomicU64,
    /// Largest single buffer handed over by one collect.
    pub max_buffer: AtomicU64,
    pub violations: Mutex<Vec<String>>,
    pub collect_errors: AtomicU64,
    /// Buffers the plugin appended from its event collector (the event-driven hand-off).
    pub event_appends: AtomicU64,
    /// Records left in an instance's ring buffer when it exited paused, freed rather than
    /// taken in (as Fluent Bit does).
    pub ring_dropped: AtomicU64,
    pub cleanup_errors: AtomicU64,
    cv: Condvar,
    cv_lock: Mutex<()>,
    pub first_record_at: Mutex<Option<Instant>>,
    /// Lines the plugin logged from this host's instance threads.
    pub logs: Mutex<Vec<(c_int, String)>>,
    /// CPU the host itself spent taking buffers in (decoding every record), in nanoseconds:
    /// work Fluent Bit does too, kept apart so a benchmark can tell it from the plugin's.
    pub host_cpu_ns: AtomicU64,
}

impl Collected {
    pub(crate) fn violation(&self, v: String) {
        eprintln!("fbhost: VIOLATION: {v}");
        self.violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(v);
    }
    /// Counts a valid buffer of `len` bytes holding `records` records.
    pub(crate) fn took_buffer(&self, len: usize, records: usize) {
        self.buffers.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.max_buffer.fetch_max(len as u64, Ordering::Relaxed);
        self.count.fetch_add(records as u64, Ordering::Relaxed);
        if records > 0 {
            self.first_record_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(Instant::now);
        }
    }
    /// Wakes those in `wait_for`.
    pub(crate) fn notify(&self) {
        self.cv.notify_all();
    }
    /// Waits until `pred` holds for the kept records, or the timeout passes.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Record]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.records.lock().unwrap_or_else(|e| e.into_inner())) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let g = self.cv_lock.lock().unwrap_or_else(|e| e.into_inner());
            let _ = self
                .cv
                .wait_timeout(g, (deadline - now).min(Duration::from_millis(200)));
        }
    }
    pub fn snapshot(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub fn logs(&self) -> Vec<(c_int, String)> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn violations(&self) -> Vec<String> {
        self.violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
