//! Wrappers around the host's function table (`struct flb_api`).

use super::abi;
use crate::log::{Level, LogSink};
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

type GetProperty =
    unsafe extern "C" fn(*const c_char, *mut abi::flb_input_instance) -> *const c_char;
type LogPrint = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, ...);
type LogCheck = unsafe extern "C" fn(*mut abi::flb_input_instance, c_int) -> c_int;
type CmtInstance = unsafe extern "C" fn(*mut abi::flb_input_instance) -> *mut c_void;

/// The host functions one instance uses, copied during Init.
#[derive(Clone, Copy)]
pub struct HostApi {
    get_property: Option<GetProperty>,
    log_print: Option<LogPrint>,
    log_check: Option<LogCheck>,
    cmt_instance: Option<CmtInstance>,
    i_ins: *mut abi::flb_input_instance,
}

// SAFETY: the function pointers are plain C functions of the host, callable from any thread
// (Go plugins call them from goroutines); `i_ins` is an opaque handle only passed back to
// them, and the host keeps the instance alive until after our Exit returns.
unsafe impl Send for HostApi {}
// SAFETY: as above; HostApi is immutable after construction.
unsafe impl Sync for HostApi {}

impl HostApi {
    /// Copies the entries we use from the host's table. Reads only the first 48 bytes, which
    /// every layout since v2.0 has.
    ///
    /// # Safety
    /// `api` must be null or point to a live `flb_api` of any generation.
    pub unsafe fn from_raw(
        api: *const abi::flb_api,
        i_ins: *mut abi::flb_input_instance,
    ) -> Option<HostApi> {
        if api.is_null() {
            return None;
        }
        // SAFETY: caller guarantees `api` points to a live table; these fields are at
        // offsets 8, 24, 32 and 40 in every generation (checked in abi tests).
        let (get_property, log_print, log_check, cmt_instance) = unsafe {
            (
                (*api).input_get_property,
                (*api).log_print,
                (*api).input_log_check,
                (*api).input_get_cmt_instance,
            )
        };
        Some(HostApi {
            get_property,
            log_print,
            log_check,
            cmt_instance,
            i_ins,
        })
    }

    /// `input_get_property`: `${ENV}` already expanded by the host; empty values come back None.
    pub fn property(&self, key: &str) -> Option<String> {
        let f = self.get_property?;
        let k = CString::new(key).ok()?;
        // SAFETY: host function with a valid NUL-terminated key and the instance it gave us.
        let p = unsafe { f(k.as_ptr(), self.i_ins) };
        if p.is_null() {
            return None;
        }
        // SAFETY: the host returns a NUL-terminated string it owns and keeps alive.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        (!s.is_empty()).then_some(s)
    }

    /// The instance's cmetrics context, if the host has one.
    pub fn cmt_instance(&self) -> Option<*mut c_void> {
        let f = self.cmt_instance?;
        // SAFETY: host function called with the instance handle it gave us.
        let p = unsafe { f(self.i_ins) };
        (!p.is_null()).then_some(p)
    }

    pub fn enabled(&self, level: Level) -> bool {
        match self.log_check {
            // SAFETY: host function called with the instance handle it gave us.
            Some(f) => unsafe { f(self.i_ins, level as c_int) != 0 },
            None => level <= Level::Info,
        }
    }

    pub fn print(&self, level: Level, msg: &str) {
        let Some(f) = self.log_print else {
            eprintln!("{msg}");
            return;
        };
        // The host cuts messages near 4 KB; cut at a char boundary ourselves, drop NULs.
        let mut end = msg.len().min(3900);
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        let text = CString::new(msg[..end].replace('\0', " ")).unwrap_or_default();
        // SAFETY: variadic host logger called with a literal "%s" format and one valid C string
        // argument, never with our text as the format.
        unsafe {
            f(
                level as c_int,
                c"mimecast".as_ptr(),
                0,
                c"%s".as_ptr(),
                text.as_ptr(),
            )
        };
    }
}

/// Log sink of one instance. Fluent Bit routes a log line through its configured log output
/// only when it is printed from one of its own worker threads (from others it goes straight
/// to stderr), so lines from our pulling thread are queued and printed on the instance thread
/// at the next collect. A line left waiting longer than `MAX_WAIT` (the host paused the
/// collector) is printed directly rather than delayed further.
pub struct HostSink {
    api: HostApi,
    owner: ThreadId,
    queue: Mutex<VecDeque<(Level, String, Instant)>>,
}

const MAX_WAIT: Duration = Duration::from_secs(3);
const MAX_QUEUED: usize = 1000;

impl HostSink {
    pub fn new(api: HostApi) -> Self {
        HostSink {
            api,
            owner: std::thread::current().id(),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    /// Prints queued lines; called on the instance thread.
    pub fn drain(&self) {
        let lines: Vec<_> = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for (level, line, _) in lines {
            self.api.print(level, &line);
        }
    }
}

impl LogSink for HostSink {
    fn enabled(&self, level: Level) -> bool {
        self.api.enabled(level)
    }

    fn write(&self, level: Level, line: &str) {
        if std::thread::current().id() == self.owner {
            self.drain();
            self.api.print(level, line);
            return;
        }
        let stale: Vec<_> = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() < MAX_QUEUED {
                q.push_back((level, line.to_string(), Instant::now()));
            }
            if q.front().is_some_and(|(_, _, t)| t.elapsed() > MAX_WAIT) {
                q.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        for (level, line, _) in stale {
            self.api.print(level, &line);
        }
    }
}

/// Reads a pointer-sized word at `offset` bytes into a host struct.
///
/// # Safety
/// `base` must point to a live object at least `offset + 8` bytes long.
pub unsafe fn read_word(base: *const c_void, offset: usize) -> usize {
    // SAFETY: per the contract the word is inside the object; read_unaligned avoids any
    // alignment assumption.
    unsafe { std::ptr::read_unaligned(base.cast::<u8>().add(offset).cast::<usize>()) }
}
