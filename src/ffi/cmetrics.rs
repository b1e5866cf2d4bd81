//! Publishes an instance's figures into Fluent Bit's own metrics (the instance's cmetrics
//! context), through the `cmt_*` functions the fluent-bit executable exports. Resolved at run
//! time; when the host lacks them, `CmtPublisher::new` returns None and the caller logs the
//! figures instead.

use super::host::HostApi;
use crate::metrics::Snapshot;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};

type Create = unsafe extern "C" fn(
    *mut c_void,
    *mut c_char,
    *mut c_char,
    *mut c_char,
    *mut c_char,
    c_int,
    *mut *mut c_char,
) -> *mut c_void;
type Set = unsafe extern "C" fn(*mut c_void, u64, f64, c_int, *mut *mut c_char) -> c_int;

/// (name, help, is_counter, label keys after "name")
const DEFS: &[(&str, &str, bool, &[&str])] = &[
    ("mimecast_records_total", "Records encoded for Fluent Bit (queued or handed over), per source.", true, &["source"]),
    ("mimecast_error_records_total", "Error records (data that could not be delivered as it came), per source.", true, &["source"]),
    ("mimecast_requests_total", "Requests to the Mimecast API and batch-file storage, by path and HTTP status (0: no answer).", true, &["endpoint", "status"]),
    ("mimecast_retries_total", "Requests retried.", true, &[]),
    ("mimecast_rate_limit_waits_total", "Waits imposed by Mimecast rate limits (429 or an exhausted quota).", true, &[]),
    ("mimecast_budget_waits_total", "Requests held back by the requests_per_second budget.", true, &[]),
    ("mimecast_budget_wait_seconds_total", "Time requests spent waiting for the requests_per_second budget.", true, &[]),
    ("mimecast_errors_total", "Failures by kind.", true, &["kind"]),
    ("mimecast_bytes_total", "Bytes of records handed to Fluent Bit.", true, &[]),
    ("mimecast_lag_seconds", "Now minus the newest event time seen, per source.", false, &["source"]),
    ("mimecast_caught_up", "1 when the source has read everything available, per source.", false, &["source"]),
    ("mimecast_build_info", "The plugin's version, as a label (value 1).", false, &["version"]),
    ("mimecast_files_pending", "SIEM batch files listed and not yet delivered, per source.", false, &["source"]),
];

fn sym(name: &std::ffi::CStr) -> *mut c_void {
    // SAFETY: dlsym with the default handle and a NUL-terminated name only looks symbols up.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

pub struct CmtPublisher {
    counter_set: Set,
    gauge_set: Set,
    /// metric name -> (handle, is_counter)
    handles: HashMap<&'static str, (*mut c_void, bool)>,
    instance: CString,
}

// SAFETY: used only on the instance's own thread (collect); the handles belong to that
// instance's cmetrics context, which the host keeps until Exit.
unsafe impl Send for CmtPublisher {}

impl CmtPublisher {
    pub fn new(host: &HostApi, instance: &str) -> Option<CmtPublisher> {
        let cmt = host.cmt_instance()?;
        let (cc, cs, gc, gs) = (
            sym(c"cmt_counter_create"),
            sym(c"cmt_counter_set"),
            sym(c"cmt_gauge_create"),
            sym(c"cmt_gauge_set"),
        );
        if [cc, cs, gc, gs].iter().any(|p| p.is_null()) {
            return None;
        }
        // SAFETY: the host's exported cmetrics functions, with the signatures of
        // cmetrics/cmt_counter.h and cmt_gauge.h.
        let (counter_create, counter_set, gauge_create, gauge_set): (Create, Set, Create, Set) = unsafe {
            (
                std::mem::transmute::<*mut c_void, Create>(cc),
                std::mem::transmute::<*mut c_void, Set>(cs),
                std::mem::transmute::<*mut c_void, Create>(gc),
                std::mem::transmute::<*mut c_void, Set>(gs),
            )
        };
        let mut handles = HashMap::new();
        for (name, help, counter, keys) in DEFS {
            let mut owned: Vec<CString> = std::iter::once("name")
                .chain(keys.iter().copied())
                .filter_map(|k| CString::new(k).ok())
                .collect();
            let mut ptrs: Vec<*mut c_char> =
                owned.iter_mut().map(|c| c.as_ptr().cast_mut()).collect();
            let (ns, sub, n, h) = (
                c"fluentbit",
                c"input",
                CString::new(*name).ok()?,
                CString::new(*help).ok()?,
            );
            let create = if *counter {
                counter_create
            } else {
                gauge_create
            };
            // SAFETY: cmt is the instance's context; all strings are NUL-terminated and live
            // through the call (cmetrics copies them).
            let handle = unsafe {
                create(
                    cmt,
                    ns.as_ptr().cast_mut(),
                    sub.as_ptr().cast_mut(),
                    n.as_ptr().cast_mut(),
                    h.as_ptr().cast_mut(),
                    ptrs.len() as c_int,
                    ptrs.as_mut_ptr(),
                )
            };
            if handle.is_null() {
                return None;
            }
            handles.insert(*name, (handle, *counter));
        }
        Some(CmtPublisher {
            counter_set,
            gauge_set,
            handles,
            instance: CString::new(instance).ok()?,
        })
    }

    fn set(&self, name: &str, value: f64, labels: &[&str]) {
        let Some((handle, counter)) = self.handles.get(name) else {
            return;
        };
        let owned: Vec<CString> = labels
            .iter()
            .filter_map(|l| CString::new(*l).ok())
            .collect();
        let mut ptrs: Vec<*mut c_char> = std::iter::once(self.instance.as_ptr().cast_mut())
            .chain(owned.iter().map(|c| c.as_ptr().cast_mut()))
            .collect();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let f = if *counter {
            self.counter_set
        } else {
            self.gauge_set
        };
        // SAFETY: a handle created above with the same number of label keys; the label strings
        // live through the call.
        unsafe { f(*handle, ts, value, ptrs.len() as c_int, ptrs.as_mut_ptr()) };
    }

    /// Sets every metric from the instance's figures.
    pub fn publish(&self, s: &Snapshot, now_ms: i64) {
        self.set("mimecast_build_info", 1.0, &[crate::VERSION]);
        for (src, f) in &s.sources {
            self.set("mimecast_records_total", f.records as f64, &[src]);
            self.set(
                "mimecast_error_records_total",
                f.error_records as f64,
                &[src],
            );
            if f.newest_event_ms > 0 {
                self.set(
                    "mimecast_lag_seconds",
                    ((now_ms - f.newest_event_ms).max(0) / 1000) as f64,
                    &[src],
                );
            }
            self.set(
                "mimecast_caught_up",
                if f.caught_up { 1.0 } else { 0.0 },
                &[src],
            );
            self.set("mimecast_files_pending", f.files_pending as f64, &[src]);
        }
        for ((endpoint, status), n) in &s.requests {
            self.set(
                "mimecast_requests_total",
                *n as f64,
                &[endpoint, &status.to_string()],
            );
        }
        for (kind, n) in &s.errors {
            self.set("mimecast_errors_total", *n as f64, &[kind]);
        }
        self.set("mimecast_retries_total", s.retries as f64, &[]);
        self.set(
            "mimecast_rate_limit_waits_total",
            s.rate_limit_waits as f64,
            &[],
        );
        self.set("mimecast_budget_waits_total", s.budget_waits as f64, &[]);
        self.set(
            "mimecast_budget_wait_seconds_total",
            s.budget_wait_seconds,
            &[],
        );
        self.set("mimecast_bytes_total", s.bytes as f64, &[]);
    }
}

/// The host's count of this instance's records in its chunks: Fluent Bit's own
/// `fluentbit_input_records_total`, which its engine adds to as it moves an append into a
/// chunk, read from the instance's cmetrics context through cmetrics' Prometheus encoder.
/// None where the host has no such context, encoder or metric.
///
/// # Safety
/// Only during the instance's Exit, on its own thread: Fluent Bit's engine thread then waits
/// in `pthread_join` for that thread (`flb_input_thread_instance_exit`), so nothing else adds
/// to or changes the context while the encoder walks it.
pub unsafe fn records_taken(host: &HostApi) -> Option<u64> {
    type Encode = unsafe extern "C" fn(*mut c_void, c_int) -> *mut c_char;
    type Destroy = unsafe extern "C" fn(*mut c_char);
    let cmt = host.cmt_instance()?;
    let (enc, des) = (
        sym(c"cmt_encode_prometheus_create"),
        sym(c"cmt_encode_prometheus_destroy"),
    );
    if enc.is_null() || des.is_null() {
        return None;
    }
    // SAFETY: the host's exported cmetrics functions, with the signatures of
    // cmetrics/cmt_encode_prometheus.h (`cfl_sds_t` is a `char *` to a NUL-terminated string).
    let (encode, destroy) = unsafe {
        (
            std::mem::transmute::<*mut c_void, Encode>(enc),
            std::mem::transmute::<*mut c_void, Destroy>(des),
        )
    };
    // SAFETY: the instance's own context, alive until after our Exit returns, and nobody
    // writes to it meanwhile (the caller's contract, above); no timestamps.
    let text = unsafe { encode(cmt, 0) };
    if text.is_null() {
        return None;
    }
    // SAFETY: the encoder returned a NUL-terminated string, ours until we destroy it below.
    let parsed = parse_records_total(&unsafe { std::ffi::CStr::from_ptr(text) }.to_string_lossy());
    // SAFETY: the string the encoder made, destroyed once with its own function.
    unsafe { destroy(text) };
    parsed
}

/// The value of the one `fluentbit_input_records_total` series in a Prometheus text
/// exposition; None if there is none, more than one, or it is not a whole number.
pub fn parse_records_total(text: &str) -> Option<u64> {
    const NAME: &str = "fluentbit_input_records_total";
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(NAME) else {
            continue;
        };
        let rest = match rest.strip_prefix('{') {
            // Labels end at the last `}`: label values may hold spaces, not an unescaped `}`
            // followed by the value.
            Some(labels) => &labels[labels.rfind('}')? + 1..],
            None if rest.starts_with(' ') => rest,
            None => continue,
        };
        let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
        if found.is_some()
            || !(0.0..=9.007_199_254_740_992e15).contains(&value)
            || value.fract() != 0.0
        {
            return None;
        }
        found = Some(value as u64);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::parse_records_total;

    #[test]
    fn reads_the_one_records_total_series() {
        // As cmetrics' Prometheus encoder writes an input instance's context (synthetic).
        let text = "# HELP fluentbit_input_bytes_total Number of input bytes.\n\
            # TYPE fluentbit_input_bytes_total counter\n\
            fluentbit_input_bytes_total{name=\"mimecast.0\"} 9123456\n\
            # HELP fluentbit_input_records_total Number of input records.\n\
            # TYPE fluentbit_input_records_total counter\n\
            fluentbit_input_records_total{name=\"mimecast.0\"} 17301\n\
            fluentbit_input_mimecast_records_total{name=\"mimecast.0\",source=\"siem_cg/receipt\"} 20000\n";
        assert_eq!(parse_records_total(text), Some(17301));
        assert_eq!(
            parse_records_total("fluentbit_input_records_total{name=\"a} b\"} 5\n"),
            Some(5)
        );
        assert_eq!(
            parse_records_total("fluentbit_input_records_total 0\n"),
            Some(0)
        );
        assert_eq!(
            parse_records_total("fluentbit_input_records_total{name=\"x\"} 1.2345678e+07\n"),
            Some(12_345_678)
        );
    }

    #[test]
    fn refuses_what_it_cannot_read_for_sure() {
        for text in [
            "",
            "fluentbit_input_bytes_total{name=\"mimecast.0\"} 5\n",
            "fluentbit_input_records_total{name=\"a\"} 5\nfluentbit_input_records_total{name=\"b\"} 6\n",
            "fluentbit_input_records_total{name=\"a\"} 5.5\n",
            "fluentbit_input_records_total{name=\"a\"} -1\n",
            "fluentbit_input_records_total{name=\"a\"} NaN\n",
            "fluentbit_input_records_total{name=\"a\"}\n",
            "fluentbit_input_records_total{name=\"a\" 5\n",
        ] {
            assert_eq!(parse_records_total(text), None, "{text:?}");
        }
    }
}
