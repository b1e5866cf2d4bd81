//! The event-driven hand-off: records go to Fluent Bit as they come, instead of once a second
//! at the proxy's collect.
//!
//! The `fluent-bit` executable exports the functions its own inputs use. During Init (on the
//! instance's thread) the plugin registers an event collector on an eventfd of its own with
//! `flb_input_set_collector_event`; the host starts it with the instance's other collectors
//! and calls it on the instance's thread whenever the pulling thread writes to the eventfd.
//! The collector then appends the waiting records with `flb_input_log_append_records`: the
//! same append, on the same thread, with the same meaning (copied into the instance's ring
//! buffer) as the proxy's collect makes with our buffer.
//!
//! None of this is a published plugin interface, so it is used only where it was verified:
//! see [`decide`] and `docs/research/event-driven-handoff.md`. Everywhere else, and with
//! `handoff collect`, the proxy's 1 s collect does the hand-off as before.

use super::abi::flb_input_instance;
use crate::config::HandoffMode;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// The collector callback: `int cb(struct flb_input_instance *, struct flb_config *, void *)`.
pub type CollectFn =
    unsafe extern "C" fn(*mut flb_input_instance, *mut c_void, *mut c_void) -> c_int;
type SetCollectorEvent =
    unsafe extern "C" fn(*mut flb_input_instance, Option<CollectFn>, c_int, *mut c_void) -> c_int;
type AppendRecords = unsafe extern "C" fn(
    *mut flb_input_instance,
    usize,
    *const c_char,
    usize,
    *const c_void,
    usize,
) -> c_int;
type CollectorDelete = unsafe extern "C" fn(c_int, *mut flb_input_instance) -> c_int;

/// The host functions the event-driven hand-off calls.
#[derive(Clone, Copy)]
pub struct HostEvents {
    set_collector_event: SetCollectorEvent,
    append_records: AppendRecords,
    collector_delete: CollectorDelete,
}

fn host_symbol(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with the default handle and a NUL-terminated name only looks symbols up.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

impl HostEvents {
    /// The functions, if the process exports all of them.
    fn resolve() -> Option<HostEvents> {
        let set = host_symbol(c"flb_input_set_collector_event");
        let append = host_symbol(c"flb_input_log_append_records");
        let delete = host_symbol(c"flb_input_collector_delete");
        if set.is_null() || append.is_null() || delete.is_null() {
            return None;
        }
        // SAFETY: the signatures are Fluent Bit's own, unchanged from v2.0.0 to v5.1.1
        // (`flb_input.h`, `flb_input_log.h`); `flb_config *` is passed as an opaque pointer.
        unsafe {
            Some(HostEvents {
                set_collector_event: std::mem::transmute::<*mut c_void, SetCollectorEvent>(set),
                append_records: std::mem::transmute::<*mut c_void, AppendRecords>(append),
                collector_delete: std::mem::transmute::<*mut c_void, CollectorDelete>(delete),
            })
        }
    }
}

/// A Fluent Bit 5: its bundled cmetrics is 2.x, and it exports a function that first appeared
/// in 5.0.0 (`flb_input_ingress_enable`). Fluent Bit 4.0.3 registers the collector but never
/// starts it, nor the proxy's own collect after it, and then hangs at shutdown: older hosts
/// never get the event-driven hand-off, whatever `handoff` says.
fn host_is_5() -> bool {
    super::config_map::host_is_5() && !host_symbol(c"flb_input_ingress_enable").is_null()
}

/// Whether this host is one the event-driven hand-off was verified on: Fluent Bit 5.1, told by
/// its bundled cmetrics (2.2.1 first shipped with 5.1.0).
fn verified_host() -> bool {
    host_is_5() && super::config_map::host_is_5_1()
}

/// Fluent Bit names an input's own thread `flb-in-<name>` (cut to 15 bytes) before it calls
/// Init there; with `threaded off` Init runs on the engine thread instead.
fn on_input_thread() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("flb-in-"))
        || os_thread_name().is_some_and(|n| n.starts_with("flb-in-"))
}

/// The calling thread's name as the kernel knows it (threads the host created have no Rust
/// name).
fn os_thread_name() -> Option<String> {
    let mut buf = [0 as c_char; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into the buffer given.
    let rc = unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: the kernel NUL-terminates the name within the 16 bytes.
    Some(
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Decides, during Init on the instance's thread, whether this instance hands its records over
/// as they come: the functions to do it with, or why not.
pub fn decide(mode: HandoffMode) -> Result<HostEvents, String> {
    if mode == HandoffMode::Collect {
        return Err("handoff is collect".into());
    }
    let Some(events) = HostEvents::resolve() else {
        return Err("this host does not export the input functions it needs".into());
    };
    if !on_input_thread() {
        return Err("the instance does not run on its own thread (threaded off?)".into());
    }
    if !host_is_5() {
        return Err(format!(
            "this Fluent Bit is older than 5.0 ({}), where the event collector does not run",
            super::config_map::host_description()
        ));
    }
    if mode == HandoffMode::Auto && !verified_host() {
        return Err(format!(
            "not verified on this Fluent Bit ({}); handoff event turns it on",
            super::config_map::host_description()
        ));
    }
    Ok(events)
}

/// One instance's event collector: its eventfd and the host's collector id.
pub struct EventCollector {
    events: HostEvents,
    ins: *mut flb_input_instance,
    id: c_int,
    fd: Arc<OwnedFd>,
}

// SAFETY: `ins` is an opaque handle the host gave us, only passed back to host functions on
// the instance's thread (`remove`); the eventfd may be written from any thread.
unsafe impl Send for EventCollector {}
// SAFETY: as above; nothing in it changes after construction.
unsafe impl Sync for EventCollector {}

impl EventCollector {
    /// Registers `cb` on a new eventfd for the instance `ins`. Must run on the instance's
    /// thread during Init: the host starts the collectors registered by then.
    ///
    /// # Safety
    /// `ins` must be the instance the host passed to this Init, and `events` must come from
    /// [`decide`] for it (a threaded instance of a host with these functions).
    pub unsafe fn register(
        events: HostEvents,
        ins: *mut flb_input_instance,
        cb: CollectFn,
    ) -> Result<EventCollector, String> {
        if ins.is_null() {
            return Err("the host passed no input instance".into());
        }
        // SAFETY: eventfd takes no pointers.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(format!(
                "cannot create an eventfd: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: raw is a new descriptor nobody else owns.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        // SAFETY: ins is the live instance the host gave Init; on a threaded instance (checked
        // by `decide`) the host takes the event loop from the instance and never reads the
        // config, so NULL is passed for it.
        let id = unsafe { (events.set_collector_event)(ins, Some(cb), raw, std::ptr::null_mut()) };
        if id < 0 {
            return Err("Fluent Bit refused the event collector".into());
        }
        Ok(EventCollector {
            events,
            ins,
            id,
            fd,
        })
    }

    /// A function, callable from any thread, that makes the host call the collector.
    pub fn waker(&self) -> Box<dyn Fn() + Send + Sync> {
        let fd = self.fd.clone();
        Box::new(move || {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we keep open while the
            // waker lives. EAGAIN (the counter is full) means a wake-up is pending anyway.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        })
    }

    /// Clears the eventfd (the host's loop is level-triggered); called first in the callback.
    pub fn clear(&self) {
        let mut n: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64; the descriptor is non-blocking.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
    }

    /// Appends `records` records in `buf` to the collector's instance; true if the host took
    /// them (copied them: the buffer stays ours). Only from the collector's callback.
    pub fn append(&self, buf: &[u8], records: u64) -> bool {
        if buf.is_empty() {
            return true;
        }
        // SAFETY: the instance this collector was registered for, alive while the host calls
        // the collector; buf is valid for its length during the call and the host copies it;
        // a NULL tag means the instance's tag.
        let rc = unsafe {
            (self.events.append_records)(
                self.ins,
                records as usize,
                std::ptr::null(),
                0,
                buf.as_ptr().cast(),
                buf.len(),
            )
        };
        rc == 0
    }

    /// Whether the host calls the collector for `ins`.
    pub fn is_for(&self, ins: *mut flb_input_instance) -> bool {
        self.ins == ins
    }

    /// Takes the collector off the host's loop; on the instance's thread, at Exit, so that
    /// the host never watches the descriptor after it is closed.
    pub fn remove(self) {
        // SAFETY: the instance and its event loop are alive during Exit, which the host calls
        // on the instance's thread; the id is the one the host gave us for it.
        unsafe { (self.events.collector_delete)(self.id, self.ins) };
    }

    /// Leaves the collector and its descriptor to the host (no Exit came, so it may still
    /// watch it): closing a descriptor the host still watches could touch a reused one.
    pub fn abandon(self) {
        std::mem::forget(self);
    }
}
