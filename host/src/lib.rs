//! fbhost: loads a proxy input plugin `.so` and drives it exactly as Fluent Bit's proxy loader
//! does (src/flb_plugin_proxy.c and src/proxy/go/go.c), for each ABI generation:
//!
//! - main thread: `dlopen(RTLD_LAZY)`, `FLBPluginPreRegister(hot_reload)`, `FLBPluginRegister(def)`
//!   with a zeroed def of the generation's size; at the end `FLBPluginUnregister(def)`, dlclose;
//! - one thread per instance: `FLBPluginInit(plugin)` (instances one after another), PreRun, then
//!   collect every 1 s on a fixed timer (a slow collect is followed at once by the next, ticks
//!   are not queued), append, cleanup right after; Pause/Resume, PreExit, Exit on that thread.
//!
//! Every host-allocated struct is followed by canary bytes that are checked after each call:
//! a plugin writing past what an older host allocated is caught. Every buffer is decoded
//! strictly: a single invalid record is a violation (Fluent Bit would drop the rest of the chunk).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The proxy ABI layouts, from the plugin's own header (include/flb_proxy_abi.h).
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::all
)]
pub mod abi {
    include!("../../src/ffi/bindings.rs");
}

/// Which Fluent Bit's structs to present.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Generation {
    /// 2.0.0 - 4.0.x: no Ctx callbacks, no remote_context, 32-byte def, 56-byte api.
    V2_0,
    /// 4.1.x: Ctx callbacks and remote_context; 72-byte api; 32-byte def.
    V4_1,
    /// 5.0.x: def gains event_type (40 bytes).
    V5_0,
    /// 5.1.0: the 5.0 layout (40-byte def) with the libraries of 5.1.1 (cmetrics 2.2.1), the
    /// one release that the exported version functions alone cannot tell from 5.1.1.
    V5_1_0,
    /// 5.1.1+: def gains config_map (48 bytes).
    V5_1_1,
}

impl Generation {
    pub const ALL: [Generation; 5] = [
        Generation::V2_0,
        Generation::V4_1,
        Generation::V5_0,
        Generation::V5_1_0,
        Generation::V5_1_1,
    ];

    pub fn parse(s: &str) -> Option<Generation> {
        match s {
            "2.0" | "2" | "3" | "4.0" => Some(Generation::V2_0),
            "4.1" | "4" => Some(Generation::V4_1),
            "5.0" => Some(Generation::V5_0),
            "5.1.0" => Some(Generation::V5_1_0),
            "5.1.1" | "5.1" | "5" => Some(Generation::V5_1_1),
            _ => None,
        }
    }
    fn def_size(self) -> usize {
        match self {
            Generation::V2_0 | Generation::V4_1 => 32,
            Generation::V5_0 | Generation::V5_1_0 => 40,
            Generation::V5_1_1 => 48,
        }
    }
    /// What `cmt_version()` returns in the newest release of the generation (4.0.3, 4.1.2,
    /// 5.0.9, 5.1.0, 5.1.1), read from each release's bundled cmetrics.
    fn cmt_version(self) -> &'static CStr {
        match self {
            Generation::V2_0 => c"1.0.3",
            Generation::V4_1 => c"1.0.5",
            Generation::V5_0 => c"2.1.5",
            Generation::V5_1_0 | Generation::V5_1_1 => c"2.2.1",
        }
    }
    fn has_ctx(self) -> bool {
        self >= Generation::V4_1
    }
}

const CANARY: u8 = 0xA5;
const CANARY_LEN: usize = 32;

/// The functions a fluent-bit executable exports beside the proxy ABI (`cmt_version`), from a
/// small library loaded once per process with RTLD_GLOBAL, where the plugin's
/// `dlsym(RTLD_DEFAULT, ..)` finds them.
struct HostExports {
    _lib: libloading::os::unix::Library,
    set_cmt_version: unsafe extern "C" fn(*const c_char),
}

impl HostExports {
    /// The version `cmt_version()` returns on this thread (where Register is called).
    fn set_cmt_version(&self, v: &'static CStr) {
        // SAFETY: stores a pointer to a static string in a thread-local of the library.
        unsafe { (self.set_cmt_version)(v.as_ptr()) }
    }
}

fn host_exports() -> &'static HostExports {
    static EXPORTS: OnceLock<HostExports> = OnceLock::new();
    EXPORTS.get_or_init(|| {
        let path = env!("FBHOST_EXPORTS_SO");
        // SAFETY: our own library built by build.rs; it has no initialisers.
        let lib = unsafe {
            libloading::os::unix::Library::open(
                Some(path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
            )
        }
        .unwrap_or_else(|e| panic!("fbhost cannot load {path}: {e}"));
        // SAFETY: the symbol has this signature in src/exports.c.
        let set_cmt_version = unsafe {
            *lib.get::<unsafe extern "C" fn(*const c_char)>(b"fbhost_set_cmt_version\0")
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        HostExports {
            _lib: lib,
            set_cmt_version,
        }
    })
}

/// A zeroed host allocation of exactly `size` bytes followed by canary bytes.
struct Guarded {
    ptr: *mut u8,
    size: usize,
    canary_len: usize,
}

impl Guarded {
    /// As Fluent Bit allocates the def (`flb_calloc(1, sizeof(def))`): exactly `size` bytes,
    /// so that what the allocator reports for it is what the real host's allocator would. The
    /// slack the allocator adds beyond `size` is filled with canary bytes and checked.
    fn exact(size: usize) -> Guarded {
        // SAFETY: plain allocation; checked for null below.
        let ptr = unsafe { libc::calloc(1, size) }.cast::<u8>();
        assert!(!ptr.is_null(), "out of memory");
        // SAFETY: ptr came from calloc; the usable size is ours to write.
        let usable = unsafe { libc::malloc_usable_size(ptr.cast()) };
        // SAFETY: [size, usable) is inside the allocation.
        unsafe { std::ptr::write_bytes(ptr.add(size), CANARY, usable - size) };
        Guarded {
            ptr,
            size,
            canary_len: usable - size,
        }
    }

    fn new(size: usize) -> Guarded {
        // SAFETY: plain allocation; checked for null below.
        let ptr = unsafe { libc::calloc(1, size + CANARY_LEN) }.cast::<u8>();
        assert!(!ptr.is_null(), "out of memory");
        // SAFETY: ptr is valid for size + CANARY_LEN bytes.
        unsafe { std::ptr::write_bytes(ptr.add(size), CANARY, CANARY_LEN) };
        Guarded {
            ptr,
            size,
            canary_len: CANARY_LEN,
        }
    }
    fn intact(&self) -> bool {
        // SAFETY: the canary region is inside our allocation.
        let c = unsafe { std::slice::from_raw_parts(self.ptr.add(self.size), self.canary_len) };
        c.iter().all(|&b| b == CANARY)
    }
    fn word(&self, off: usize) -> usize {
        // SAFETY: callers read offsets inside `size`.
        unsafe { std::ptr::read_unaligned(self.ptr.add(off).cast::<usize>()) }
    }
    fn set_word(&self, off: usize, v: usize) {
        // SAFETY: callers write offsets inside `size`.
        unsafe { std::ptr::write_unaligned(self.ptr.add(off).cast::<usize>(), v) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: allocated by calloc in new().
        unsafe { libc::free(self.ptr.cast()) }
    }
}

/// One decoded record.
#[derive(Clone, Debug)]
pub struct Record {
    pub instance: usize,
    pub tag: String,
    pub secs: u32,
    pub nanos: u32,
    pub body: rmpv::Value,
}

impl Record {
    pub fn to_json(&self) -> serde_json::Value {
        to_json(&self.body)
    }
    pub fn get(&self, key: &str) -> Option<&rmpv::Value> {
        self.body
            .as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.as_str())
    }
}

pub fn to_json(v: &rmpv::Value) -> serde_json::Value {
    use rmpv::Value as V;
    match v {
        V::Nil => serde_json::Value::Null,
        V::Boolean(b) => (*b).into(),
        V::Integer(i) => i
            .as_i64()
            .map(Into::into)
            .or_else(|| i.as_u64().map(Into::into))
            .unwrap_or(serde_json::Value::Null),
        V::F32(f) => serde_json::Number::from_f64(*f as f64)
            .map(Into::into)
            .unwrap_or(serde_json::Value::Null),
        V::F64(f) => serde_json::Number::from_f64(*f)
            .map(Into::into)
            .unwrap_or(serde_json::Value::Null),
        V::String(s) => s.as_str().unwrap_or("<invalid utf-8>").into(),
        V::Binary(b) => format!("<{} bytes>", b.len()).into(),
        V::Array(a) => a.iter().map(to_json).collect::<Vec<_>>().into(),
        V::Map(m) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| k.to_string()),
                    to_json(v),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        V::Ext(t, d) => format!("<ext {t} {} bytes>", d.len()).into(),
    }
}

/// Decodes one collected buffer as Fluent Bit's strict path would.
pub fn decode_strict(buf: &[u8]) -> Result<Vec<(u32, u32, rmpv::Value)>, String> {
    let mut rd = buf;
    let mut out = Vec::new();
    while !rd.is_empty() {
        let at = buf.len() - rd.len();
        let v = rmpv::decode::read_value(&mut rd)
            .map_err(|e| format!("record {} at byte {at}: invalid msgpack: {e}", out.len()))?;
        let arr = v
            .as_array()
            .ok_or_else(|| format!("record {} at byte {at}: not an array", out.len()))?;
        if arr.len() != 2 {
            return Err(format!(
                "record {} at byte {at}: array of {} items, want 2",
                out.len(),
                arr.len()
            ));
        }
        let ts = match &arr[0] {
            rmpv::Value::Array(h) if h.len() == 2 && h[1].is_map() => &h[0],
            other => other,
        };
        let (secs, nanos) = match ts {
            rmpv::Value::Ext(0, d) if d.len() == 8 => (
                u32::from_be_bytes([d[0], d[1], d[2], d[3]]),
                u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
            ),
            rmpv::Value::Integer(i) if i.as_u64().is_some() => (i.as_u64().unwrap_or(0) as u32, 0),
            rmpv::Value::F64(f) if *f >= 0.0 => (*f as u32, (f.fract() * 1e9) as u32),
            other => {
                return Err(format!(
                    "record {} at byte {at}: invalid timestamp {other:?}",
                    out.len()
                ))
            }
        };
        if nanos >= 1_000_000_000 {
            return Err(format!(
                "record {} at byte {at}: nanoseconds {nanos} out of range",
                out.len()
            ));
        }
        let body = &arr[1];
        let map = body
            .as_map()
            .ok_or_else(|| format!("record {} at byte {at}: body is not a map", out.len()))?;
        if let Some((k, _)) = map.iter().find(|(k, _)| !k.is_str()) {
            return Err(format!(
                "record {} at byte {at}: non-string key {k:?}",
                out.len()
            ));
        }
        out.push((secs, nanos, body.clone()));
    }
    Ok(out)
}

/// Called with the records of every buffer once decoded, before the plugin's cleanup is called
/// (as Fluent Bit appends a buffer to its chunk before cleanup). The CLI prints them.
pub type Printer = Arc<dyn Fn(&[Record]) + Send + Sync>;

/// Validates a buffer with the same rules as `decode_strict` without building values (the
/// benchmark's count mode): returns the number of records.
pub fn validate_strict(buf: &[u8]) -> Result<usize, String> {
    use rmp::Marker as M;
    fn len_of(rd: &mut &[u8], m: M) -> Result<Option<(u32, u8)>, String> {
        // (length, kind) where kind 0 = bytes to skip, 1 = array items, 2 = map pairs
        let rd_n = |rd: &mut &[u8], n: usize| -> Result<u32, String> {
            if rd.len() < n {
                return Err("truncated length".into());
            }
            let mut v = 0u32;
            for b in &rd[..n] {
                v = v << 8 | *b as u32;
            }
            *rd = &rd[n..];
            Ok(v)
        };
        Ok(Some(match m {
            M::Null | M::True | M::False | M::FixPos(_) | M::FixNeg(_) => (0, 0),
            M::U8 | M::I8 => (1, 0),
            M::U16 | M::I16 => (2, 0),
            M::U32 | M::I32 | M::F32 => (4, 0),
            M::U64 | M::I64 | M::F64 => (8, 0),
            M::FixStr(n) => (n as u32, 0),
            M::Str8 | M::Bin8 => (rd_n(rd, 1)?, 0),
            M::Str16 | M::Bin16 => (rd_n(rd, 2)?, 0),
            M::Str32 | M::Bin32 => (rd_n(rd, 4)?, 0),
            M::FixArray(n) => (n as u32, 1),
            M::Array16 => (rd_n(rd, 2)?, 1),
            M::Array32 => (rd_n(rd, 4)?, 1),
            M::FixMap(n) => (n as u32, 2),
            M::Map16 => (rd_n(rd, 2)?, 2),
            M::Map32 => (rd_n(rd, 4)?, 2),
            M::FixExt1 => (2, 0),
            M::FixExt2 => (3, 0),
            M::FixExt4 => (5, 0),
            M::FixExt8 => (9, 0),
            M::FixExt16 => (17, 0),
            M::Ext8 => (rd_n(rd, 1)? + 1, 0),
            M::Ext16 => (rd_n(rd, 2)? + 1, 0),
            M::Ext32 => (rd_n(rd, 4)? + 1, 0),
            M::Reserved => return Ok(None),
        }))
    }
    fn skip(rd: &mut &[u8], depth: usize) -> Result<(), String> {
        if depth > 128 {
            return Err("nested too deep".into());
        }
        let m = rmp::decode::read_marker(rd).map_err(|_| "truncated".to_string())?;
        let Some((n, kind)) = len_of(rd, m)? else {
            return Err("reserved marker".into());
        };
        match kind {
            0 => {
                if rd.len() < n as usize {
                    return Err("truncated".into());
                }
                *rd = &rd[n as usize..];
            }
            1 => (0..n).try_for_each(|_| skip(rd, depth + 1))?,
            _ => (0..n).try_for_each(|_| skip(rd, depth + 1).and_then(|_| skip(rd, depth + 1)))?,
        }
        Ok(())
    }
    let mut rd = buf;
    let mut n = 0;
    while !rd.is_empty() {
        let at = buf.len() - rd.len();
        let bad = |why: &str| format!("record {n} at byte {at}: {why}");
        if rmp::decode::read_marker(&mut rd).ok() != Some(M::FixArray(2)) {
            return Err(bad("not an array of 2"));
        }
        match rmp::decode::read_marker(&mut rd).map_err(|_| bad("truncated"))? {
            M::FixExt8 => {
                if rd.first() != Some(&0) || rd.len() < 9 {
                    return Err(bad("timestamp extension is not EventTime"));
                }
                let nanos = u32::from_be_bytes([rd[5], rd[6], rd[7], rd[8]]);
                if nanos >= 1_000_000_000 {
                    return Err(bad("nanoseconds out of range"));
                }
                rd = &rd[9..];
            }
            M::FixPos(_) | M::U8 | M::U16 | M::U32 | M::U64 | M::F32 | M::F64 => {
                return Err(bad(
                    "integer/float timestamps are valid but this plugin must send EventTime",
                ));
            }
            _ => return Err(bad("invalid timestamp")),
        }
        let m = rmp::decode::read_marker(&mut rd).map_err(|_| bad("truncated"))?;
        let pairs = match len_of(&mut rd, m)? {
            Some((p, 2)) => p,
            _ => return Err(bad("body is not a map")),
        };
        for _ in 0..pairs {
            let k = rmp::decode::read_marker(&mut rd).map_err(|_| bad("truncated"))?;
            match len_of(&mut rd, k)? {
                Some((len, 0)) if matches!(k, M::FixStr(_) | M::Str8 | M::Str16 | M::Str32) => {
                    if rd.len() < len as usize {
                        return Err(bad("truncated key"));
                    }
                    rd = &rd[len as usize..];
                }
                _ => return Err(bad("non-string key")),
            }
            skip(&mut rd, 1).map_err(|e| bad(&e))?;
        }
        n += 1;
    }
    Ok(n)
}

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

/// CPU time of the calling thread.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Collected {
    fn violation(&self, v: String) {
        eprintln!("fbhost: VIOLATION: {v}");
        self.violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(v);
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

// --------------------------------------------------------------------------------------------
// host functions handed to the plugin

/// Keys Fluent Bit keeps for itself (flb_input_set_property, v5.1.1): never passed on.
pub fn host_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "tag"
            | "alias"
            | "log_level"
            | "log_suppress_interval"
            | "routable"
            | "mem_buf_limit"
            | "storage.type"
            | "storage.pause_on_chunks_overlimit"
            | "threaded"
            | "rate_window"
            | "listen"
            | "host"
            | "port"
            | "ipv6"
            | "tls"
    ) || k.starts_with("thread.ring_buffer.")
        || k.starts_with("rate_gate")
        || k.starts_with("net.")
        || k.starts_with("tls.")
}

/// `${VAR}` expansion as Fluent Bit does when reading the configuration.
pub fn expand_env(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find('}') {
            Some(end) => {
                let name = &rest[start + 2..start + 2 + end];
                out.push_str(&std::env::var(name).unwrap_or_default());
                rest = &rest[start + 2 + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// What `i_ins` points to: the instance's properties, as the host keeps them.
pub struct InsState {
    props: Vec<(String, CString)>,
    log_level: c_int,
    name: String,
}

static LOGS: OnceLock<Mutex<Vec<(c_int, String)>>> = OnceLock::new();

thread_local! {
    /// The host whose instance runs on this thread, to attribute its log lines.
    static THREAD_HOST: std::cell::RefCell<Option<Arc<Collected>>> = const { std::cell::RefCell::new(None) };
}
static LOG_ECHO: AtomicBool = AtomicBool::new(true);

/// Every line the plugin logged through the host, in order.
pub fn plugin_logs() -> Vec<(c_int, String)> {
    LOGS.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

pub fn set_log_echo(on: bool) {
    LOG_ECHO.store(on, Ordering::Relaxed);
}

#[no_mangle]
extern "C" fn fbhost_log_line(level: c_int, msg: *const c_char) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the C shim passes its NUL-terminated stack buffer.
    let text = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    if LOG_ECHO.load(Ordering::Relaxed) {
        let l = ["off", "error", "warn", "info", "debug", "trace"]
            .get(level as usize)
            .copied()
            .unwrap_or("?");
        eprintln!("[fbhost] [{l}] {text}");
    }
    THREAD_HOST.with(|h| {
        if let Some(c) = h.borrow().as_ref() {
            c.logs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((level, text.clone()));
        }
    });
    LOGS.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((level, text));
}

extern "C" {
    fn fbhost_log_print(level: c_int, file: *const c_char, line: c_int, fmt: *const c_char, ...);
}

unsafe extern "C" fn input_get_property(
    key: *const c_char,
    ins: *mut abi::flb_input_instance,
) -> *const c_char {
    if key.is_null() || ins.is_null() {
        return std::ptr::null();
    }
    // SAFETY: ins is the InsState we handed out; it lives until after Exit.
    let st = unsafe { &*(ins as *const InsState) };
    // SAFETY: the plugin passes a NUL-terminated key.
    let k = unsafe { CStr::from_ptr(key) }.to_string_lossy();
    if host_key(&k) {
        return std::ptr::null();
    }
    st.props
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&k))
        .filter(|(_, v)| !v.as_bytes().is_empty())
        .map(|(_, v)| v.as_ptr())
        .unwrap_or(std::ptr::null())
}

unsafe extern "C" fn input_log_check(ins: *mut abi::flb_input_instance, level: c_int) -> c_int {
    if ins.is_null() {
        return 0;
    }
    // SAFETY: ins is our InsState.
    let st = unsafe { &*(ins as *const InsState) };
    c_int::from(level <= st.log_level)
}

unsafe extern "C" fn input_get_cmt_instance(_ins: *mut abi::flb_input_instance) -> *mut c_void {
    std::ptr::null_mut()
}

unsafe extern "C" fn output_get_property(
    _k: *const c_char,
    _o: *mut abi::flb_output_instance,
) -> *const c_char {
    std::ptr::null()
}
unsafe extern "C" fn output_get_cmt_instance(_o: *mut abi::flb_output_instance) -> *mut c_void {
    std::ptr::null_mut()
}
unsafe extern "C" fn output_log_check(_o: *mut abi::flb_output_instance, _l: c_int) -> c_int {
    0
}
unsafe extern "C" fn custom_get_property(
    _k: *const c_char,
    _c: *mut abi::flb_custom_instance,
) -> *const c_char {
    std::ptr::null()
}
unsafe extern "C" fn custom_log_check(_c: *mut abi::flb_custom_instance, _l: c_int) -> c_int {
    0
}

// --------------------------------------------------------------------------------------------
// the loaded library

type FnRegister = unsafe extern "C" fn(*mut c_void) -> c_int;
type FnIntArg = unsafe extern "C" fn(c_int) -> c_int;
type FnInit = unsafe extern "C" fn(*mut c_void) -> c_int;
type FnCollect = unsafe extern "C" fn(*mut *mut c_void, *mut usize) -> c_int;
type FnCollectCtx = unsafe extern "C" fn(*mut c_void, *mut *mut c_void, *mut usize) -> c_int;
type FnCleanup = unsafe extern "C" fn(*mut c_void) -> c_int;
type FnCleanupCtx = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
type FnVoid = unsafe extern "C" fn();
type FnVoidInt = unsafe extern "C" fn(c_int);
type FnExit = unsafe extern "C" fn() -> c_int;

#[derive(Clone, Copy)]
struct Syms {
    pre_register: Option<FnIntArg>,
    register: FnRegister,
    unregister: Option<FnCleanup>,
    init: FnInit,
    pre_run: Option<FnIntArg>,
    collect: Option<FnCollect>,
    collect_ctx: Option<FnCollectCtx>,
    cleanup: Option<FnCleanup>,
    cleanup_ctx: Option<FnCleanupCtx>,
    pause: Option<FnVoid>,
    resume: Option<FnVoid>,
    pre_exit: Option<FnVoidInt>,
    exit: Option<FnExit>,
}

/// Shared between instance threads: the `flbgo_input_plugin` struct and the api table, both
/// host-allocated once per load as Fluent Bit does.
struct Shared {
    gen: Generation,
    syms: Syms,
    plugin: Guarded,
    api: Guarded,
    plugin_lock: Mutex<()>,
    collected: Arc<Collected>,
    keep: Keep,
    printer: Option<Printer>,
    stop_all: AtomicBool,
}

// SAFETY: the raw allocations are only touched under plugin_lock or read-only after setup.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

enum Cmd {
    StartCollect,
    Pause,
    Resume,
    PreExit(c_int),
    Exit,
}

struct InstanceThread {
    tx: Sender<Cmd>,
    join: JoinHandle<()>,
    done: Receiver<()>,
}

/// Errors of the host's own run.
#[derive(Debug)]
pub enum HostError {
    Load(String),
    Register(String),
    InitFailed(usize),
    /// A 5.1.1+ host with the plugin's config map refuses keys the map does not list.
    UnknownProperty(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Load(m) => write!(f, "cannot load plugin: {m}"),
            HostError::Register(m) => write!(f, "register failed: {m}"),
            HostError::InitFailed(i) => write!(f, "instance {i} failed to initialize"),
            HostError::UnknownProperty(k) => write!(f, "unknown configuration property '{k}'"),
        }
    }
}

pub struct Host {
    /// Property names of the plugin's config map, when a 5.1.1+ host was given one.
    pub config_map: Option<Vec<String>>,
    lib: Option<libloading::Library>,
    shared: Arc<Shared>,
    def: Guarded,
    instances: Vec<InstanceThread>,
    next_index: usize,
    pub collected: Arc<Collected>,
}

/// One `[INPUT]` section.
#[derive(Clone, Debug, Default)]
pub struct InstanceSpec {
    pub props: Vec<(String, String)>,
    pub log_level: c_int,
}

impl InstanceSpec {
    pub fn new(props: &[(&str, &str)]) -> Self {
        InstanceSpec {
            props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log_level: 3,
        }
    }
}

fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> Option<T> {
    // SAFETY: the symbol types mirror the proxy ABI for these names.
    unsafe { lib.get::<T>(name.as_bytes()).ok().map(|s| *s) }
}

impl Host {
    /// Loads the library and registers it, as Fluent Bit does at start (or on hot reload).
    pub fn load(
        path: &Path,
        gen: Generation,
        keep: Keep,
        printer: Option<Printer>,
    ) -> Result<Host, HostError> {
        let base = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if base.starts_with("flb-") {
            return Err(HostError::Load(format!(
                "'{base}' starts with flb-: Fluent Bit would treat it as a native plugin"
            )));
        }
        // SAFETY: loading the plugin under test; its constructors are ours.
        let lib = unsafe { libloading::os::unix::Library::open(Some(path), libc::RTLD_LAZY) }
            .map_err(|e| HostError::Load(e.to_string()))?;
        let lib: libloading::Library = lib.into();
        let register = sym::<FnRegister>(&lib, "FLBPluginRegister")
            .ok_or_else(|| HostError::Load("no FLBPluginRegister".into()))?;
        let init = sym::<FnInit>(&lib, "FLBPluginInit")
            .ok_or_else(|| HostError::Load("no FLBPluginInit".into()))?;
        let syms = Syms {
            pre_register: sym(&lib, "FLBPluginPreRegister"),
            register,
            unregister: sym(&lib, "FLBPluginUnregister"),
            init,
            pre_run: sym(&lib, "FLBPluginInputPreRun"),
            collect: sym(&lib, "FLBPluginInputCallback"),
            collect_ctx: if gen.has_ctx() {
                sym(&lib, "FLBPluginInputCallbackCtx")
            } else {
                None
            },
            cleanup: sym(&lib, "FLBPluginInputCleanupCallback"),
            cleanup_ctx: if gen.has_ctx() {
                sym(&lib, "FLBPluginInputCleanupCallbackCtx")
            } else {
                None
            },
            pause: sym(&lib, "FLBPluginInputPause"),
            resume: sym(&lib, "FLBPluginInputResume"),
            pre_exit: sym(&lib, "FLBPluginInputPreExit"),
            exit: sym(&lib, "FLBPluginExit"),
        };
        let def = Self::register(&syms, gen, 0)?;
        let config_map = Self::read_config_map(&def, gen);
        let (plugin, api) = Self::plugin_struct(&syms, gen);
        let collected = Arc::new(Collected::default());
        Ok(Host {
            config_map,
            lib: Some(lib),
            shared: Arc::new(Shared {
                gen,
                syms,
                plugin,
                api,
                plugin_lock: Mutex::new(()),
                collected: collected.clone(),
                keep,
                printer,
                stop_all: AtomicBool::new(false),
            }),
            def,
            instances: Vec::new(),
            next_index: 0,
            collected,
        })
    }

    fn register(syms: &Syms, gen: Generation, hot: c_int) -> Result<Guarded, HostError> {
        if let Some(pre) = syms.pre_register {
            // SAFETY: plugin entry point with an int argument.
            if unsafe { pre(hot) } == -1 {
                return Err(HostError::Register(
                    "FLBPluginPreRegister returned -1".into(),
                ));
            }
        }
        let def = Guarded::exact(gen.def_size());
        host_exports().set_cmt_version(gen.cmt_version());
        // SAFETY: def is a zeroed allocation of the generation's size.
        let rc = unsafe { (syms.register)(def.ptr.cast()) };
        if rc == -1 {
            return Err(HostError::Register("FLBPluginRegister returned -1".into()));
        }
        if !def.intact() {
            return Err(HostError::Register(format!(
                "plugin wrote past the {}-byte def of this host generation",
                gen.def_size()
            )));
        }
        // SAFETY: the first 32 bytes are the v2.0 layout in every generation.
        let d = unsafe { &*(def.ptr as *const abi::flb_plugin_proxy_def_v2_0) };
        if d.type_ != 1 || d.proxy != 11 || d.name.is_null() {
            return Err(HostError::Register(format!(
                "def has type {} proxy {} (want 1 and 11) or no name",
                d.type_, d.proxy
            )));
        }
        Ok(def)
    }

    /// On 5.1.1+ the host reads `config_map` (offset 40) and copies the NULL-terminated table.
    fn read_config_map(def: &Guarded, gen: Generation) -> Option<Vec<String>> {
        if gen < Generation::V5_1_1 {
            return None;
        }
        let table = def.word(40) as *const abi::flb_config_map;
        if table.is_null() {
            return None;
        }
        let mut names = Vec::new();
        for i in 0..10_000 {
            // SAFETY: the plugin hands a NULL-terminated array of flb_config_map.
            let e = unsafe { &*table.add(i) };
            if e.name.is_null() {
                break;
            }
            // SAFETY: names are NUL-terminated C strings.
            names.push(
                unsafe { CStr::from_ptr(e.name) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        Some(names)
    }

    fn plugin_struct(syms: &Syms, gen: Generation) -> (Guarded, Guarded) {
        let api = Guarded::new(if gen.has_ctx() { 72 } else { 56 });
        let fns: [usize; 9] = [
            output_get_property as *const () as usize,
            input_get_property as *const () as usize,
            output_get_cmt_instance as *const () as usize,
            input_get_cmt_instance as *const () as usize,
            fbhost_log_print as *const () as usize,
            input_log_check as *const () as usize,
            output_log_check as *const () as usize,
            custom_get_property as *const () as usize,
            custom_log_check as *const () as usize,
        ];
        for (i, f) in fns.iter().take(api.size / 8).enumerate() {
            api.set_word(i * 8, *f);
        }
        let plugin = Guarded::new(if gen.has_ctx() { 80 } else { 64 });
        plugin.set_word(0, c"mimecast".as_ptr() as usize);
        plugin.set_word(8, api.ptr as usize);
        let f = |o: Option<usize>| o.unwrap_or(0);
        plugin.set_word(32, syms.init as usize);
        if gen.has_ctx() {
            plugin.set_word(40, f(syms.collect.map(|x| x as usize)));
            plugin.set_word(48, f(syms.collect_ctx.map(|x| x as usize)));
            plugin.set_word(56, f(syms.cleanup.map(|x| x as usize)));
            plugin.set_word(64, f(syms.cleanup_ctx.map(|x| x as usize)));
            plugin.set_word(72, f(syms.exit.map(|x| x as usize)));
        } else {
            plugin.set_word(40, f(syms.collect.map(|x| x as usize)));
            plugin.set_word(48, f(syms.cleanup.map(|x| x as usize)));
            plugin.set_word(56, f(syms.exit.map(|x| x as usize)));
        }
        (plugin, api)
    }

    /// Adds an instance: Init on its own thread (waiting for the result, as instances are
    /// initialised one after another), then PreRun. Collecting starts with `start()`.
    pub fn add_instance(&mut self, spec: InstanceSpec) -> Result<usize, HostError> {
        if let Some(names) = &self.config_map {
            for (k, _) in &spec.props {
                if !host_key(k)
                    && !k.eq_ignore_ascii_case("name")
                    && !names.iter().any(|n| n.eq_ignore_ascii_case(k))
                {
                    return Err(HostError::UnknownProperty(k.clone()));
                }
            }
        }
        let index = self.next_index;
        self.next_index += 1;
        let name = format!("mimecast.{index}");
        let tag = spec
            .props
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("tag"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| name.clone());
        let props = spec
            .props
            .iter()
            .map(|(k, v)| (k.clone(), CString::new(expand_env(v)).unwrap_or_default()))
            .collect();
        let ins = Box::new(InsState {
            props,
            log_level: spec.log_level,
            name: name.clone(),
        });
        let (tx, rx) = mpsc::channel::<Cmd>();
        let (init_tx, init_rx) = mpsc::channel::<bool>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let shared = self.shared.clone();
        let join = std::thread::Builder::new()
            .name(format!("flb-in-{name}-w"))
            .spawn(move || instance_thread(shared, ins, index, tag, rx, init_tx, done_tx))
            .map_err(|e| HostError::Load(e.to_string()))?;
        match init_rx.recv() {
            Ok(true) => {
                self.instances.push(InstanceThread {
                    tx,
                    join,
                    done: done_rx,
                });
                Ok(index)
            }
            _ => {
                let _ = join.join();
                Err(HostError::InitFailed(index))
            }
        }
    }

    /// Starts every instance's 1 s collect timer.
    pub fn start(&self) {
        for i in &self.instances {
            let _ = i.tx.send(Cmd::StartCollect);
        }
    }

    pub fn pause(&self, i: usize) {
        if let Some(t) = self.instances.get(i) {
            let _ = t.tx.send(Cmd::Pause);
        }
    }

    pub fn resume(&self, i: usize) {
        if let Some(t) = self.instances.get(i) {
            let _ = t.tx.send(Cmd::Resume);
        }
    }

    fn stop_instances(&mut self, hot: c_int) {
        for t in &self.instances {
            let _ = t.tx.send(Cmd::Pause);
            let _ = t.tx.send(Cmd::Pause);
            let _ = t.tx.send(Cmd::PreExit(hot));
            let _ = t.tx.send(Cmd::Exit);
        }
        for t in self.instances.drain(..) {
            let _ = t.done.recv_timeout(Duration::from_secs(30));
            let _ = t.join.join();
        }
    }

    fn unregister(&self, def: &Guarded) {
        if let Some(f) = self.shared.syms.unregister {
            // SAFETY: plugin entry point; def is the one we registered.
            unsafe { f(def.ptr.cast()) };
        }
    }

    /// Hot reload (SIGHUP with -Y): PreRegister(1), Register(new def), old instances Pause,
    /// PreExit(1), Exit, Unregister(old def), then the new instances Init and PreRun(1).
    pub fn hot_reload(&mut self, specs: Vec<InstanceSpec>) -> Result<Vec<usize>, HostError> {
        let new_def = Self::register(&self.shared.syms, self.shared.gen, 1)?;
        self.stop_instances(1);
        self.unregister(&self.def);
        self.def = new_def;
        self.next_index = 0;
        let mut ids = Vec::new();
        for s in specs {
            ids.push(self.add_instance(s)?);
        }
        self.start();
        Ok(ids)
    }

    /// Graceful stop as on SIGTERM: Pause twice, PreExit(0), Exit per instance on its thread,
    /// Unregister on this thread, dlclose.
    pub fn stop(mut self) -> Arc<Collected> {
        self.stop_instances(0);
        self.finish()
    }

    /// What Fluent Bit does when an Init failed: no PreExit/Exit for the others, only
    /// Unregister, then dlclose.
    pub fn abort_after_init_failure(mut self) -> Arc<Collected> {
        self.shared.stop_all.store(true, Ordering::SeqCst);
        for t in self.instances.drain(..) {
            let _ = t.join.join();
        }
        self.finish()
    }

    fn finish(&mut self) -> Arc<Collected> {
        self.unregister(&self.def);
        if !self.shared.plugin.intact() || !self.shared.api.intact() {
            self.collected
                .violation("plugin wrote past the host's flbgo_input_plugin or flb_api".into());
        }
        drop(self.lib.take());
        self.collected.clone()
    }
}

#[allow(clippy::too_many_arguments)]
fn instance_thread(
    shared: Arc<Shared>,
    ins: Box<InsState>,
    index: usize,
    tag: String,
    rx: Receiver<Cmd>,
    init_tx: Sender<bool>,
    done_tx: Sender<()>,
) {
    THREAD_HOST.with(|h| *h.borrow_mut() = Some(shared.collected.clone()));
    let gen = shared.gen;
    let ctx_size = if gen.has_ctx() { 24 } else { 16 };
    let context = Guarded::new(ctx_size);
    let proxy_marker = 0x5EED_F00Dusize;
    context.set_word(if gen.has_ctx() { 16 } else { 8 }, proxy_marker);
    let ins_ptr = &*ins as *const InsState as usize;
    let ok = {
        let _g = shared.plugin_lock.lock().unwrap_or_else(|e| e.into_inner());
        shared.plugin.set_word(16, ins_ptr);
        shared.plugin.set_word(24, context.ptr as usize);
        // SAFETY: plugin entry point with the host's struct, as go.c proxy_go_input_init does.
        let rc = unsafe { (shared.syms.init)(shared.plugin.ptr.cast()) };
        rc > 0
    };
    let proxy_at = if gen.has_ctx() { 16 } else { 8 };
    if !context.intact() || context.word(proxy_at) != proxy_marker {
        shared.collected.violation(format!(
            "{}: Init wrote past the {ctx_size}-byte input context or over its proxy pointer",
            ins.name
        ));
    }
    if !ok {
        let _ = init_tx.send(false);
        return;
    }
    if let Some(pre_run) = shared.syms.pre_run {
        // SAFETY: plugin entry point.
        unsafe { pre_run(0) };
    }
    let _ = init_tx.send(true);
    let remote = if gen.has_ctx() { context.word(8) } else { 0 };
    let mut collecting = false;
    let mut next_tick = Instant::now() + Duration::from_secs(1);
    loop {
        if shared.stop_all.load(Ordering::SeqCst) {
            // Init failure elsewhere: this instance gets no PreExit/Exit.
            return;
        }
        let wait = if collecting {
            next_tick.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(100)
        };
        match rx.recv_timeout(wait) {
            Ok(Cmd::StartCollect) => {
                collecting = true;
                next_tick = Instant::now() + Duration::from_secs(1);
            }
            Ok(Cmd::Pause) => {
                collecting = false;
                if let Some(f) = shared.syms.pause {
                    // SAFETY: plugin entry point.
                    unsafe { f() };
                }
            }
            Ok(Cmd::Resume) => {
                collecting = true;
                if let Some(f) = shared.syms.resume {
                    // SAFETY: plugin entry point.
                    unsafe { f() };
                }
            }
            Ok(Cmd::PreExit(hot)) => {
                if let Some(f) = shared.syms.pre_exit {
                    // SAFETY: plugin entry point.
                    unsafe { f(hot) };
                }
            }
            Ok(Cmd::Exit) => {
                if let Some(f) = shared.syms.exit {
                    // SAFETY: plugin entry point, called on this instance's thread.
                    unsafe { f() };
                }
                drop(ins);
                let _ = done_tx.send(());
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if collecting => {
                collect_once(&shared, remote, index, &tag);
                let now = Instant::now();
                next_tick += Duration::from_secs(1);
                if next_tick <= now {
                    // A slow collect is followed at once by the next; missed ticks are not queued.
                    next_tick = now;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn collect_once(shared: &Shared, remote: usize, index: usize, tag: &str) {
    let mut data: *mut c_void = std::ptr::null_mut();
    let mut len: usize = 0;
    // SAFETY: plugin entry points with valid out-params, as proxy_go_input_collect.
    let rc = unsafe {
        match (shared.syms.collect_ctx, shared.syms.collect) {
            (Some(f), _) => f(remote as *mut c_void, &mut data, &mut len),
            (None, Some(f)) => f(&mut data, &mut len),
            (None, None) => return,
        }
    };
    if len == 0 {
        if !data.is_null() {
            shared.collected.violation(
                "collect returned a non-NULL buffer with length 0: the host leaks it".into(),
            );
        }
        return;
    }
    if rc == -1 {
        shared
            .collected
            .collect_errors
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    if data.is_null() {
        shared
            .collected
            .violation(format!("collect returned NULL with length {len}"));
        return;
    }
    // SAFETY: the plugin handed us `len` readable bytes at `data` until cleanup.
    let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, len) };
    if shared.keep == Keep::Count && shared.printer.is_none() {
        let cpu0 = thread_cpu_ns();
        let checked = validate_strict(bytes);
        shared
            .collected
            .host_cpu_ns
            .fetch_add(thread_cpu_ns().saturating_sub(cpu0), Ordering::Relaxed);
        match checked {
            Ok(n) => {
                let c = &shared.collected;
                c.buffers.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(len as u64, Ordering::Relaxed);
                c.max_buffer.fetch_max(len as u64, Ordering::Relaxed);
                c.count.fetch_add(n as u64, Ordering::Relaxed);
                if n > 0 {
                    c.first_record_at
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert_with(Instant::now);
                }
            }
            Err(e) => shared
                .collected
                .violation(format!("buffer of {len} bytes from mimecast.{index}: {e}")),
        }
    } else {
        match decode_strict(bytes) {
            Ok(recs) => {
                let c = &shared.collected;
                c.buffers.fetch_add(1, Ordering::Relaxed);
                c.bytes.fetch_add(len as u64, Ordering::Relaxed);
                c.max_buffer.fetch_max(len as u64, Ordering::Relaxed);
                c.count.fetch_add(recs.len() as u64, Ordering::Relaxed);
                if !recs.is_empty() {
                    let mut first = c.first_record_at.lock().unwrap_or_else(|e| e.into_inner());
                    first.get_or_insert_with(Instant::now);
                }
                let records: Vec<Record> = recs
                    .into_iter()
                    .map(|(secs, nanos, body)| Record {
                        instance: index,
                        tag: tag.to_string(),
                        secs,
                        nanos,
                        body,
                    })
                    .collect();
                if let Some(p) = &shared.printer {
                    p(&records);
                }
                if shared.keep == Keep::All {
                    c.records
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(records);
                }
                c.cv.notify_all();
            }
            Err(e) => shared
                .collected
                .violation(format!("buffer of {len} bytes from mimecast.{index}: {e}")),
        }
    }
    // SAFETY: cleanup right after append, as proxy_go_input_cleanup.
    let crc = unsafe {
        match (shared.syms.cleanup_ctx, shared.syms.cleanup) {
            (Some(f), _) => f(remote as *mut c_void, data),
            (None, Some(f)) => f(data),
            (None, None) => {
                libc::free(data);
                0
            }
        }
    };
    if crc == -1 {
        shared
            .collected
            .cleanup_errors
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Instances as Fluent Bit's classic config would give them: every `[INPUT]` with
/// `Name mimecast`; other sections are ignored.
pub fn parse_classic_config(text: &str) -> Result<Vec<InstanceSpec>, String> {
    let mut out = Vec::new();
    let mut cur: Option<(String, Vec<(String, String)>)> = None;
    let flush = |cur: &mut Option<(String, Vec<(String, String)>)>, out: &mut Vec<InstanceSpec>| {
        if let Some((section, props)) = cur.take() {
            let is_ours = props
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("name") && v == "mimecast");
            if section.eq_ignore_ascii_case("input") && is_ours {
                let log_level = props
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("log_level"))
                    .map(|(_, v)| match v.as_str() {
                        "error" => 1,
                        "warn" | "warning" => 2,
                        "debug" => 4,
                        "trace" => 5,
                        "off" => 0,
                        _ => 3,
                    })
                    .unwrap_or(3);
                let props = props
                    .into_iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("name"))
                    .collect();
                out.push(InstanceSpec { props, log_level });
            }
        }
    };
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("@") {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            flush(&mut cur, &mut out);
            cur = Some((line[1..line.len() - 1].trim().to_string(), Vec::new()));
            continue;
        }
        let (k, v) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("line {}: expected 'key value'", n + 1))?;
        match cur.as_mut() {
            Some((_, props)) => props.push((k.trim().to_string(), v.trim().to_string())),
            None => return Err(format!("line {}: property outside a section", n + 1)),
        }
    }
    flush(&mut cur, &mut out);
    Ok(out)
}

/// Per-tag counts, for summaries.
pub fn count_by(records: &[Record], field: &str) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in records {
        *m.entry(r.str_field(field).unwrap_or("").to_string())
            .or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding_rejects_what_fluent_bit_rejects() {
        let mut good = Vec::new();
        rmp::encode::write_array_len(&mut good, 2).unwrap();
        rmp::encode::write_ext_meta(&mut good, 8, 0).unwrap();
        good.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        rmp::encode::write_map_len(&mut good, 1).unwrap();
        rmp::encode::write_str(&mut good, "k").unwrap();
        rmp::encode::write_str(&mut good, "v").unwrap();
        assert_eq!(decode_strict(&good).unwrap().len(), 1);
        assert!(decode_strict(&good[..good.len() - 1]).is_err(), "truncated");
        let mut neg = Vec::new();
        rmp::encode::write_array_len(&mut neg, 2).unwrap();
        rmp::encode::write_sint(&mut neg, -1).unwrap();
        rmp::encode::write_map_len(&mut neg, 0).unwrap();
        assert!(decode_strict(&neg).is_err(), "negative timestamp");
        let mut s = Vec::new();
        rmp::encode::write_array_len(&mut s, 2).unwrap();
        rmp::encode::write_str(&mut s, "2024").unwrap();
        rmp::encode::write_map_len(&mut s, 0).unwrap();
        assert!(decode_strict(&s).is_err(), "string timestamp");
        let mut bare = Vec::new();
        rmp::encode::write_map_len(&mut bare, 0).unwrap();
        assert!(decode_strict(&bare).is_err(), "bare map");
    }

    #[test]
    fn validator_agrees_with_the_decoder() {
        let mut good = Vec::new();
        for i in 0..3u32 {
            rmp::encode::write_array_len(&mut good, 2).unwrap();
            rmp::encode::write_ext_meta(&mut good, 8, 0).unwrap();
            good.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
            rmp::encode::write_map_len(&mut good, 2).unwrap();
            rmp::encode::write_str(&mut good, "k").unwrap();
            rmp::encode::write_array_len(&mut good, 2).unwrap();
            rmp::encode::write_uint(&mut good, i as u64 * 100_000).unwrap();
            rmp::encode::write_str(&mut good, &"x".repeat(300)).unwrap();
            rmp::encode::write_str(&mut good, "m").unwrap();
            rmp::encode::write_map_len(&mut good, 1).unwrap();
            rmp::encode::write_str(&mut good, "n").unwrap();
            rmp::encode::write_nil(&mut good).unwrap();
        }
        assert_eq!(validate_strict(&good), Ok(3));
        assert_eq!(decode_strict(&good).unwrap().len(), 3);
        let mut valid_cuts = 0;
        for cut in 1..good.len() {
            let v = validate_strict(&good[..cut]);
            let d = decode_strict(&good[..cut]).map(|r| r.len());
            assert_eq!(v.is_ok(), d.is_ok(), "cut at {cut}");
            valid_cuts += usize::from(v.is_ok());
        }
        assert_eq!(
            valid_cuts, 2,
            "only the record boundaries are valid cut points"
        );
        let mut bad_key = Vec::new();
        rmp::encode::write_array_len(&mut bad_key, 2).unwrap();
        rmp::encode::write_ext_meta(&mut bad_key, 8, 0).unwrap();
        bad_key.extend_from_slice(&[0; 8]);
        rmp::encode::write_map_len(&mut bad_key, 1).unwrap();
        rmp::encode::write_uint(&mut bad_key, 1).unwrap();
        rmp::encode::write_nil(&mut bad_key).unwrap();
        assert!(validate_strict(&bad_key).is_err());
    }

    #[test]
    fn classic_config_and_env() {
        std::env::set_var("FBHOST_T_SECRET", "xyz");
        let specs = parse_classic_config(
            "[SERVICE]\n  flush 1\n[INPUT]\n  Name mimecast\n  client_secret ${FBHOST_T_SECRET}\n  log_level debug\n[INPUT]\n  Name dummy\n[OUTPUT]\n  Name stdout\n",
        )
        .unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].log_level, 4);
        assert_eq!(expand_env(&specs[0].props[0].1), "xyz");
        assert!(
            host_key("Tag")
                && host_key("tls.verify")
                && host_key("net.keepalive")
                && !host_key("client_id")
        );
    }
}
