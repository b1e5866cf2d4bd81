//! What the plugin calls back into the host: the `struct flb_api` functions (property lookups,
//! log level checks, `log_print` through the C shim), and the library functions a fluent-bit
//! executable exports beside the proxy ABI (`cmt_version`).

use crate::abi;
use crate::collected::Collected;
use crate::config::host_key;
use crate::generation::Generation;
use crate::guarded::Guarded;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

// --------------------------------------------------------------------------------------------
// the executable's exports

/// The functions a fluent-bit executable exports beside the proxy ABI (`cmt_version`), from a
/// small library loaded once per process with RTLD_GLOBAL, where the plugin's
/// `dlsym(RTLD_DEFAULT, ..)` finds them.
pub(crate) struct HostExports {
    _lib: libloading::os::unix::Library,
    set_cmt_version: unsafe extern "C" fn(*const c_char),
}

type SetInputFunctions =
    unsafe extern "C" fn(SetCollectorEventFn, AppendRecordsFn, CollectorDeleteFn);
type SetCmtFunctions = unsafe extern "C" fn(unsafe extern "C" fn(*mut c_void) -> i64);

impl HostExports {
    /// The version `cmt_version()` returns on this thread (where Register is called).
    pub(crate) fn set_cmt_version(&self, v: &'static CStr) {
        // SAFETY: stores a pointer to a static string in a thread-local of the library.
        unsafe { (self.set_cmt_version)(v.as_ptr()) }
    }
}

pub(crate) fn host_exports() -> &'static HostExports {
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
        // SAFETY: the symbol has this signature in src/exports.c.
        let set_input_functions = unsafe {
            *lib.get::<SetInputFunctions>(b"fbhost_set_input_functions\0")
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        // SAFETY: stores three function pointers of the declared signatures.
        unsafe { set_input_functions(set_collector_event, log_append_records, collector_delete) };
        // SAFETY: the symbol has this signature in src/exports.c.
        let set_cmt_functions = unsafe {
            *lib.get::<SetCmtFunctions>(b"fbhost_set_cmt_functions\0")
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        // SAFETY: stores one function pointer of the declared signature.
        unsafe { set_cmt_functions(records_total) };
        HostExports {
            _lib: lib,
            set_cmt_version,
        }
    })
}

// --------------------------------------------------------------------------------------------
// the input functions of the event-driven hand-off

/// `int cb(struct flb_input_instance *, struct flb_config *, void *)`.
pub(crate) type CollectFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int;
type SetCollectorEventFn =
    unsafe extern "C" fn(*mut c_void, Option<CollectFn>, c_int, *mut c_void) -> c_int;
type AppendRecordsFn =
    unsafe extern "C" fn(*mut c_void, usize, *const c_char, usize, *const c_void, usize) -> c_int;
type CollectorDeleteFn = unsafe extern "C" fn(c_int, *mut c_void) -> c_int;

/// An instance's event collector and what the plugin did through the input functions, as the
/// instance's thread finds them after a call into the plugin.
#[derive(Default)]
pub(crate) struct EventState {
    /// The collector the plugin registered: its id, callback and descriptor.
    pub(crate) collector: Option<(c_int, CollectFn, c_int)>,
    /// Buffers appended, copied as Fluent Bit copies them, with the record count given.
    pub(crate) appends: Vec<(usize, Vec<u8>)>,
    /// Misuse seen, reported as violations by the instance's thread.
    pub(crate) problems: Vec<String>,
    /// The host has paused the instance (at its buffer limits, or for a stop): the plugin must
    /// not append. Paused at its buffer limits, Fluent Bit's engine does not drain the ring
    /// buffer either, so appends would pile up there, outside `mem_buf_limit`.
    pub(crate) paused: bool,
    /// The instance's thread, the only one the functions may be called from.
    pub(crate) thread: Option<std::thread::ThreadId>,
}

impl EventState {
    fn check_thread(&mut self, what: &str) {
        let me = std::thread::current().id();
        if self.thread.is_some_and(|t| t != me) {
            self.problems.push(format!(
                "{what} called from another thread than the instance's"
            ));
        }
    }
}

fn events_of<'a>(ins: *mut c_void) -> Option<std::sync::MutexGuard<'a, EventState>> {
    if ins.is_null() {
        return None;
    }
    // SAFETY: the plugin passes back the i_ins we gave it, our InsState, alive until Exit.
    let st: &'a InsState = unsafe { &*(ins as *const InsState) };
    Some(st.events.lock().unwrap_or_else(|e| e.into_inner()))
}

/// `flb_input_set_collector_event`: one event collector per instance; as in Fluent Bit, the
/// first collector registered during Init gets id 0 and runs once the host starts collecting.
unsafe extern "C" fn set_collector_event(
    ins: *mut c_void,
    cb: Option<CollectFn>,
    fd: c_int,
    _config: *mut c_void,
) -> c_int {
    let Some(mut ev) = events_of(ins) else {
        return -1;
    };
    ev.check_thread("flb_input_set_collector_event");
    match cb {
        Some(cb) if fd >= 0 && ev.collector.is_none() => {
            ev.collector = Some((0, cb, fd));
            0
        }
        _ => -1,
    }
}

/// `flb_input_log_append_records`: copies the buffer; the instance's thread checks it after
/// the plugin's callback returns.
unsafe extern "C" fn log_append_records(
    ins: *mut c_void,
    records: usize,
    _tag: *const c_char,
    _tag_len: usize,
    buf: *const c_void,
    size: usize,
) -> c_int {
    let Some(mut ev) = events_of(ins) else {
        return -1;
    };
    ev.check_thread("flb_input_log_append_records");
    if buf.is_null() || size == 0 {
        return -1;
    }
    if ev.paused {
        ev.problems
            .push("records appended while the host has the instance paused".into());
    }
    // SAFETY: the plugin passes `size` readable bytes at `buf` for the call.
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), size) }.to_vec();
    ev.appends.push((records, bytes));
    0
}

/// `flb_input_collector_delete`.
unsafe extern "C" fn collector_delete(id: c_int, ins: *mut c_void) -> c_int {
    let Some(mut ev) = events_of(ins) else {
        return -1;
    };
    ev.check_thread("flb_input_collector_delete");
    match ev.collector {
        Some((cid, _, _)) if cid == id => {
            ev.collector = None;
            0
        }
        _ => -1,
    }
}

// --------------------------------------------------------------------------------------------
// log lines

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

/// Lines logged on this thread from now on belong (also) to `c`: called by an instance thread.
pub(crate) fn attribute_logs_to(c: Arc<Collected>) {
    THREAD_HOST.with(|h| *h.borrow_mut() = Some(c));
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

// --------------------------------------------------------------------------------------------
// struct flb_api

/// What `i_ins` points to: the instance's properties, as the host keeps them.
pub struct InsState {
    pub(crate) props: Vec<(String, CString)>,
    pub(crate) log_level: c_int,
    pub(crate) name: String,
    pub(crate) events: Mutex<EventState>,
    /// Records taken into chunks (Fluent Bit's `fluentbit_input_records_total`).
    pub(crate) taken: std::sync::atomic::AtomicU64,
}

/// The host's `struct flb_api` of the generation's size, filled in Fluent Bit's field order.
pub(crate) fn api_table(gen: Generation) -> Guarded {
    let api = Guarded::new(gen.api_size());
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
    api
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

/// The instance's cmetrics context: the instance itself, whose one series fbhost's
/// `cmt_encode_prometheus_create` writes ([`records_total`]).
unsafe extern "C" fn input_get_cmt_instance(ins: *mut abi::flb_input_instance) -> *mut c_void {
    ins.cast()
}

/// Fluent Bit's `fluentbit_input_records_total` of an instance: the records fbhost took into
/// its chunks (collects taken, and event appends moved out of the ring buffer).
unsafe extern "C" fn records_total(cmt: *mut c_void) -> i64 {
    if cmt.is_null() {
        return -1;
    }
    // SAFETY: the contexts fbhost hands out are its InsState, alive while the plugin runs.
    let st = unsafe { &*(cmt as *const InsState) };
    st.taken.load(Ordering::Relaxed) as i64
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
