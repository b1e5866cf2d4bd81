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
        HostExports {
            _lib: lib,
            set_cmt_version,
        }
    })
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
