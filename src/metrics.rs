//! Per-instance figures: what was collected, how the API answered, how far behind each source is.
//! The pulling side records them here; the instance thread publishes them (through Fluent Bit's
//! cmetrics when the host exports it, as periodic log lines otherwise).

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default, Clone, Debug, PartialEq)]
pub struct SourceFigures {
    pub records: u64,
    pub error_records: u64,
    /// Newest event time seen (epoch ms).
    pub newest_event_ms: i64,
    pub caught_up: bool,
    /// Batch files listed but not yet delivered.
    pub files_pending: u64,
}

#[derive(Default, Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub sources: BTreeMap<String, SourceFigures>,
    /// (endpoint, HTTP status or 0 for a transport failure) -> requests
    pub requests: BTreeMap<(String, u16), u64>,
    pub retries: u64,
    pub rate_limit_waits: u64,
    /// Requests held back by the `requests_per_second` budget, and for how long in all.
    pub budget_waits: u64,
    pub budget_wait_seconds: f64,
    /// error kind -> count
    pub errors: BTreeMap<String, u64>,
    pub bytes: u64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Snapshot>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn request(&self, endpoint: &str, status: u16) {
        self.with(|s| {
            *s.requests
                .entry((endpoint.to_string(), status))
                .or_default() += 1
        });
    }

    pub fn retry(&self) {
        self.with(|s| s.retries += 1);
    }

    pub fn rate_limit_wait(&self) {
        self.with(|s| s.rate_limit_waits += 1);
    }

    pub fn budget_wait(&self, waited: std::time::Duration) {
        self.with(|s| {
            s.budget_waits += 1;
            s.budget_wait_seconds += waited.as_secs_f64();
        });
    }

    pub fn error(&self, kind: &str) {
        self.with(|s| *s.errors.entry(kind.to_string()).or_default() += 1);
    }

    pub fn delivered(&self, bytes: u64) {
        self.with(|s| s.bytes += bytes);
    }

    pub fn records(&self, source: &str, records: u64, error_records: u64, newest_event_ms: i64) {
        self.with(|s| {
            let f = s.sources.entry(source.to_string()).or_default();
            f.records += records;
            f.error_records += error_records;
            f.newest_event_ms = f.newest_event_ms.max(newest_event_ms);
        });
    }

    pub fn progress(&self, source: &str, caught_up: bool, files_pending: u64) {
        self.with(|s| {
            let f = s.sources.entry(source.to_string()).or_default();
            f.caught_up = caught_up;
            f.files_pending = files_pending;
        });
    }
}

/// One log line with the figures, for hosts without cmetrics.
pub fn summary_line(s: &Snapshot, now_ms: i64) -> String {
    let mut parts = Vec::new();
    for (name, f) in &s.sources {
        let lag = if f.newest_event_ms > 0 {
            format!("{}s", (now_ms - f.newest_event_ms).max(0) / 1000)
        } else {
            "-".into()
        };
        parts.push(format!(
            "{name}: {} records, {} error records, lag {lag}, {}{}",
            f.records,
            f.error_records,
            if f.caught_up {
                "caught up"
            } else {
                "catching up"
            },
            if f.files_pending > 0 {
                format!(", {} files pending", f.files_pending)
            } else {
                String::new()
            }
        ));
    }
    let requests: u64 = s.requests.values().sum();
    let failed: u64 = s
        .requests
        .iter()
        .filter(|((_, st), _)| *st == 0 || *st >= 400)
        .map(|(_, n)| n)
        .sum();
    format!(
        "metrics: {}; {requests} requests ({failed} failed), {} retries, {} rate-limit waits, {} budget waits ({:.1}s), {} bytes delivered",
        if parts.is_empty() { "no records yet".into() } else { parts.join("; ") },
        s.retries,
        s.rate_limit_waits,
        s.budget_waits,
        s.budget_wait_seconds,
        s.bytes
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_accumulate_and_summarise() {
        let m = Metrics::default();
        m.records("siem_cg", 10, 1, 1_000_000);
        m.records("siem_cg", 5, 0, 900_000);
        m.progress("siem_cg", true, 0);
        m.request("siem_batch_cg", 200);
        m.request("siem_batch_cg", 429);
        m.request("batch_file", 0);
        m.retry();
        m.rate_limit_wait();
        m.budget_wait(std::time::Duration::from_millis(250));
        m.budget_wait(std::time::Duration::from_millis(500));
        m.delivered(4096);
        let s = m.snapshot();
        assert_eq!(s.sources["siem_cg"].records, 15);
        assert_eq!(s.sources["siem_cg"].newest_event_ms, 1_000_000);
        let line = summary_line(&s, 1_060_000);
        assert!(
            line.contains("siem_cg: 15 records, 1 error records, lag 60s, caught up"),
            "{line}"
        );
        assert!(
            line.contains(
                "3 requests (2 failed), 1 retries, 1 rate-limit waits, 2 budget waits (0.8s), 4096 bytes"
            ),
            "{line}"
        );
    }
}
