//! The symbols Fluent Bit's proxy loader looks up. Every body runs behind the panic boundary.
//!
//! Instances are found without trusting host memory: the value stored in `remote_context`
//! (4.1+ hosts) is a small instance number, not a pointer, and callbacks without a context
//! (older hosts, Exit, Pause, Resume, PreExit) find their instance by the calling thread, since
//! Fluent Bit runs each proxy input's callbacks on that instance's own thread.

use super::abi;
use super::buffer::HostBuf;
use super::event::EventCollector;
use super::host::{read_word, HostApi, HostSink};
use super::panic::boundary;
use crate::config::Config;
use crate::instance::Instance;
use crate::log::Logger;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

const FLB_ERROR_RC: c_int = -1;

struct Entry {
    id: usize,
    thread: ThreadId,
    /// The host's functions for this instance (Exit asks it how many records it took in).
    host: HostApi,
    inst: Arc<Instance>,
    sink: Arc<HostSink>,
    metrics: Arc<Mutex<MetricsOut>>,
    /// The event collector records go through as they come, if the host allows it.
    events: Option<Arc<EventCollector>>,
}

/// Where an instance's figures go: the host's cmetrics, or a log line now and then.
enum MetricsOut {
    Cmt(super::cmetrics::CmtPublisher),
    Log(std::time::Instant),
}

/// How often figures are logged when the host has no cmetrics.
const METRICS_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone)]
struct Found {
    inst: Arc<Instance>,
    sink: Arc<HostSink>,
    metrics: Arc<Mutex<MetricsOut>>,
}

#[derive(Default)]
struct Registry {
    entries: Vec<Entry>,
    next_id: usize,
    /// Per Register (a load or a hot reload): instances numbered from 0 like Fluent Bit does.
    next_index: usize,
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn found(e: &Entry) -> Found {
    Found {
        inst: e.inst.clone(),
        sink: e.sink.clone(),
        metrics: e.metrics.clone(),
    }
}

fn by_id(id: usize) -> Option<Found> {
    registry().entries.iter().find(|e| e.id == id).map(found)
}

fn by_thread() -> Option<Found> {
    let me = std::thread::current().id();
    registry()
        .entries
        .iter()
        .find(|e| e.thread == me)
        .map(found)
}

#[no_mangle]
pub extern "C" fn FLBPluginPreRegister(_hot_reloading: c_int) -> c_int {
    boundary("FLBPluginPreRegister", FLB_ERROR_RC, || 0)
}

/// Fills the fields every host generation has (the first 32 bytes of the def). `event_type`
/// is never written, and `config_map` only where the host is known to read it (5.1.1+, see
/// `config_map::decide`): an older host did not allocate that field.
///
/// # Safety
/// `def` must be null or point to the host's zeroed `flb_plugin_proxy_def`.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginRegister(def: *mut abi::flb_plugin_proxy_def_v2_0) -> c_int {
    boundary("FLBPluginRegister", FLB_ERROR_RC, || {
        if def.is_null() {
            return FLB_ERROR_RC;
        }
        registry().next_index = 0;
        // SAFETY: def points to at least the 32-byte v2.0 layout, which every host allocates;
        // the strings are static and outlive the library's use by the host.
        unsafe {
            (*def).type_ = abi::FLB_PROXY_INPUT_PLUGIN as c_int;
            (*def).proxy = abi::FLB_PROXY_GOLANG as c_int;
            (*def).flags = 0;
            (*def).name = c"mimecast".as_ptr().cast_mut();
            (*def).description = c"Mimecast API 2.0 logs (SIEM, TTP, audit, DLP, ...)"
                .as_ptr()
                .cast_mut();
        }
        // SAFETY: def is the host's allocation (Fluent Bit allocates it with flb_calloc).
        if unsafe { super::config_map::decide(def.cast()) } {
            // SAFETY: the host is 5.1.1+ (detected, or vouched for by the operator), whose def
            // is the 48-byte layout with config_map at offset 40; the table is static and
            // lives as long as the library.
            unsafe {
                (*(def as *mut abi::flb_plugin_proxy_def)).config_map = super::config_map::table()
            };
        }
        0
    })
}

/// Says once per instance at start whether Fluent Bit checks this plugin's keys, and where it
/// does not, which properties the plugin read: a misspelt key is then missing from that list.
fn report_key_checking(log: &Logger, read: &[String]) {
    use super::config_map::MapDecision;
    let host = super::config_map::host_description();
    match super::config_map::decision() {
        MapDecision::Detected => log.debug(format_args!(
            "Fluent Bit checks this plugin's keys (config map; host {host})"
        )),
        MapDecision::Forced => log.info(format_args!(
            "config map given to the host because MIMECAST_FLB_CONFIG_MAP=on (host {host})"
        )),
        d => log.info(format_args!(
            "properties read: {}; all others at their defaults. This Fluent Bit ({host}{}) does not check this plugin's keys, so a misspelt one is ignored: check the list, or run mimecast-check -c <your config>",
            if read.is_empty() { "none".to_string() } else { read.join(", ") },
            if d == MapDecision::TurnedOff { ", MIMECAST_FLB_CONFIG_MAP=off" } else { "" },
        )),
    }
}

/// Which `flbgo_input_plugin` layout the host gave us, told apart by what it stored at
/// offset 48: our Ctx collect callback (4.1+) or our cleanup callback (2.0 - 4.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    V2_0,
    V4_1,
}

use abi::{flbgo_input_plugin as Plugin4_1, flbgo_input_plugin_v2_0 as Plugin2_0};
use std::mem::offset_of;

/// The slot that tells the layouts apart: the Ctx collect callback from 4.1 on, the cleanup
/// callback before.
const LAYOUT_SLOT: usize = offset_of!(Plugin4_1, cb_collect_ctx);
const _: () = assert!(
    LAYOUT_SLOT == offset_of!(Plugin2_0, cb_cleanup)
        && LAYOUT_SLOT + std::mem::size_of::<usize>() <= std::mem::size_of::<Plugin2_0>()
);
// The fields Init reads sit at the same offsets in both layouts.
const API: usize = offset_of!(Plugin2_0, api);
const I_INS: usize = offset_of!(Plugin2_0, i_ins);
const CONTEXT: usize = offset_of!(Plugin2_0, context);
const _: () = assert!(
    API == offset_of!(Plugin4_1, api)
        && I_INS == offset_of!(Plugin4_1, i_ins)
        && CONTEXT == offset_of!(Plugin4_1, context)
);

/// # Safety
/// `plugin` must point to the host's `flbgo_input_plugin` (64 or 80 bytes).
unsafe fn detect_layout(plugin: *const c_void) -> Option<Layout> {
    // SAFETY: the slot is inside both layouts (checked above against the pinned structs).
    let slot = unsafe { read_word(plugin, LAYOUT_SLOT) };
    let ctx_collect = FLBPluginInputCallbackCtx as *const () as usize;
    let cleanup = FLBPluginInputCleanupCallback as *const () as usize;
    if slot == ctx_collect {
        Some(Layout::V4_1)
    } else if slot == cleanup {
        Some(Layout::V2_0)
    } else {
        None
    }
}

/// # Safety
/// `plugin` must be null or point to the host's `flbgo_input_plugin`, valid for this call.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginInit(plugin: *mut c_void) -> c_int {
    boundary("FLBPluginInit", FLB_ERROR_RC, || {
        if plugin.is_null() {
            return FLB_ERROR_RC;
        }
        // SAFETY: plugin points to a live flbgo_input_plugin; api, i_ins and context sit at
        // the same offsets in every layout (asserted at compile time above).
        let (api, i_ins, context) = unsafe {
            (
                read_word(plugin, API) as *const abi::flb_api,
                read_word(plugin, I_INS) as *mut abi::flb_input_instance,
                read_word(plugin, CONTEXT) as *mut c_void,
            )
        };
        // SAFETY: plugin is live (see above).
        let layout = unsafe { detect_layout(plugin) };
        // SAFETY: api is the host's table (or null), valid for the life of the instance.
        let Some(host) = (unsafe { HostApi::from_raw(api, i_ins) }) else {
            eprintln!("[input:mimecast] the host passed no API table; cannot start");
            return FLB_ERROR_RC;
        };
        let name = {
            let mut r = registry();
            let n = r.next_index;
            r.next_index += 1;
            format!("mimecast.{n}")
        };
        let sink = Arc::new(HostSink::new(host));
        let log = Logger::new(sink.clone(), &name);
        if layout.is_none() {
            log.warn("unrecognised host plugin layout; running without per-instance context (as on Fluent Bit < 4.1)");
        }
        let Some(inst) = start_instance(&host, &name, &log) else {
            return FLB_ERROR_RC;
        };
        let metrics_out = metrics_out(&host, &name, &log);
        let id = {
            let mut r = registry();
            r.next_id += 1;
            let id = r.next_id;
            r.entries.push(Entry {
                id,
                thread: std::thread::current().id(),
                host,
                inst: inst.clone(),
                sink,
                metrics: Arc::new(Mutex::new(metrics_out)),
                events: None,
            });
            id
        };
        start_event_handoff(id, &inst, i_ins);
        if layout == Some(Layout::V4_1) && !context.is_null() {
            // SAFETY: on a 4.1+ host (detected above) context points to the 24-byte
            // flb_plugin_input_proxy_context whose remote_context field (offset 8) is ours.
            unsafe {
                (*(context as *mut abi::flb_plugin_input_proxy_context)).remote_context =
                    id as *mut c_void
            };
        }
        log.debug(format_args!("initialised (host layout {layout:?})"));
        1
    })
}

/// Hands the instance's records over as they come where the host allows it (see
/// `super::event`), and says which hand-off the instance uses.
fn start_event_handoff(id: usize, inst: &Arc<Instance>, i_ins: *mut abi::flb_input_instance) {
    use crate::config::HandoffMode;
    let mode = inst.handoff_mode();
    let collector = super::event::decide(mode).and_then(|events| {
        // SAFETY: i_ins is the instance the host passed to this Init, on its own thread, and
        // `decide` found the host's functions and a threaded instance.
        unsafe {
            EventCollector::register(events, i_ins, on_records_ready as super::event::CollectFn)
        }
    });
    match collector {
        Ok(c) => {
            let c = Arc::new(c);
            inst.hand_over_as_they_come(c.waker());
            if let Some(e) = registry().entries.iter_mut().find(|e| e.id == id) {
                e.events = Some(c);
            }
            inst.log
                .debug("records are handed to Fluent Bit as they come (event collector)");
        }
        Err(why) if mode == HandoffMode::Event => inst.log.warn(format_args!(
            "handoff event is not possible here ({why}); records are handed over once a second at Fluent Bit's collect, at most buffer_max_size each time"
        )),
        Err(why) => inst.log.info(format_args!(
            "records are handed over once a second at Fluent Bit's collect, at most buffer_max_size each time ({why})"
        )),
    }
}

/// The event collector's callback, on the instance's thread: hands over what is ready.
///
/// # Safety
/// Called by the host with the instance the collector was registered for.
unsafe extern "C" fn on_records_ready(
    ins: *mut abi::flb_input_instance,
    _config: *mut c_void,
    _context: *mut c_void,
) -> c_int {
    boundary("mimecast event collector", FLB_ERROR_RC, || {
        let found = {
            let r = registry();
            r.entries.iter().find_map(|e| {
                let c = e.events.as_ref().filter(|c| c.is_for(ins))?;
                Some((found(e), c.clone()))
            })
        };
        let Some((f, collector)) = found else {
            return 0;
        };
        collector.clear();
        f.sink.drain();
        let outcome = f
            .inst
            .deliver_now(|buf, records| collector.append(buf, records));
        if matches!(outcome, crate::instance::Delivered::Records(_)) {
            super::trim::handed_over();
        }
        if outcome == crate::instance::Delivered::Refused {
            f.inst.log.problem(
                "handoff refused",
                crate::log::Level::Warn,
                "Fluent Bit did not take a batch of records (its input ring buffer is full or out of memory); they are handed over again",
            );
        }
        0
    })
}

/// Reads the instance's properties, reports what is wrong with them or which were read, and
/// starts the instance. None (everything already logged) if it cannot start.
fn start_instance(host: &HostApi, name: &str, log: &Logger) -> Option<Arc<Instance>> {
    let read = std::cell::RefCell::new(Vec::new());
    let cfg = Config::from_properties(|k| {
        let v = host.property(k);
        if v.is_some() {
            read.borrow_mut().push(k.to_string());
        }
        v
    });
    let cfg = match cfg {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                log.error(format_args!("invalid configuration: {e}"));
            }
            log.error(format_args!(
                "{} configuration problem(s); see the README's property table",
                errors.len()
            ));
            return None;
        }
    };
    report_key_checking(log, &read.into_inner());
    Instance::open(name, cfg, log.clone())
        .map_err(|e| log.error(e))
        .ok()
}

/// Where the instance's figures go: Fluent Bit's own metrics where the host offers them, a
/// periodic log line otherwise.
fn metrics_out(host: &HostApi, name: &str, log: &Logger) -> MetricsOut {
    match super::cmetrics::CmtPublisher::new(host, name) {
        Some(p) => {
            log.debug("publishing metrics to Fluent Bit's metrics (cmetrics)");
            MetricsOut::Cmt(p)
        }
        None => MetricsOut::Log(std::time::Instant::now()),
    }
}

#[no_mangle]
pub extern "C" fn FLBPluginInputPreRun(_enable_hot_reload: c_int) -> c_int {
    boundary("FLBPluginInputPreRun", 0, || 0)
}

/// Shared body of both collect callbacks. Writes the out-params only on success.
///
/// # Safety
/// `data` and `len` must be null or valid for a write.
unsafe fn collect(found: Option<Found>, data: *mut *mut c_void, len: *mut usize) -> c_int {
    if data.is_null() || len.is_null() {
        return FLB_ERROR_RC;
    }
    let Some(Found {
        inst,
        sink,
        metrics,
    }) = found
    else {
        // SAFETY: checked non-null above.
        unsafe {
            *data = std::ptr::null_mut();
            *len = 0;
        }
        return 0;
    };
    sink.drain();
    publish_metrics(&inst, &metrics);
    let (ptr, n) = match inst.collect() {
        Some(buf) => {
            super::trim::handed_over();
            buf.into_raw()
        }
        None => {
            super::trim::tick();
            (std::ptr::null_mut(), 0)
        }
    };
    // SAFETY: checked non-null above; ptr is null or a malloc'd buffer the host now owns
    // until our cleanup callback (or its own free()).
    unsafe {
        *data = ptr.cast();
        *len = n;
    }
    0
}

/// Publishes the instance's figures: to cmetrics on every collect, or as a log line a minute.
fn publish_metrics(inst: &Instance, out: &Mutex<MetricsOut>) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
    match &mut *out {
        MetricsOut::Cmt(p) => p.publish(&inst.metrics(), now_ms),
        MetricsOut::Log(last) if last.elapsed() >= METRICS_LOG_EVERY => {
            *last = std::time::Instant::now();
            inst.log
                .info(crate::metrics::summary_line(&inst.metrics(), now_ms));
        }
        MetricsOut::Log(_) => {}
    }
}

/// # Safety
/// Called by the host with its out-params.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginInputCallbackCtx(
    ctx: *mut c_void,
    data: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    boundary("FLBPluginInputCallbackCtx", FLB_ERROR_RC, || {
        let found = by_id(ctx as usize).or_else(by_thread);
        // SAFETY: forwarded host out-params.
        unsafe { collect(found, data, len) }
    })
}

/// # Safety
/// Called by the host with its out-params.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginInputCallback(data: *mut *mut c_void, len: *mut usize) -> c_int {
    boundary("FLBPluginInputCallback", FLB_ERROR_RC, || {
        // SAFETY: forwarded host out-params.
        unsafe { collect(by_thread(), data, len) }
    })
}

fn cleanup(found: Option<Found>, data: *mut c_void) -> c_int {
    if data.is_null() {
        return 0;
    }
    match found.and_then(|f| f.inst.delivered(data as usize).map(|cap| (f.inst, cap))) {
        Some((inst, cap)) => {
            // SAFETY: data is the buffer our collect handed out (HostBuf::into_raw) with this
            // capacity; the host hands it back exactly once and no longer uses it.
            inst.recycle(unsafe { HostBuf::from_raw(data.cast(), 0, cap) });
            0
        }
        None => {
            // SAFETY: a buffer from our collect that we no longer track; it came from malloc.
            unsafe { HostBuf::free_raw(data.cast()) };
            FLB_ERROR_RC
        }
    }
}

#[no_mangle]
pub extern "C" fn FLBPluginInputCleanupCallbackCtx(ctx: *mut c_void, data: *mut c_void) -> c_int {
    boundary("FLBPluginInputCleanupCallbackCtx", FLB_ERROR_RC, || {
        cleanup(by_id(ctx as usize).or_else(by_thread), data)
    })
}

#[no_mangle]
pub extern "C" fn FLBPluginInputCleanupCallback(data: *mut c_void) -> c_int {
    boundary("FLBPluginInputCleanupCallback", FLB_ERROR_RC, || {
        cleanup(by_thread(), data)
    })
}

/// Pause/Resume carry no context, but come on the paused instance's own thread (the host then
/// pauses its collect timer, the wrong one when there are several instances): the instance
/// stops handing records over until Resume, whichever way it hands them over, and its sources
/// wait once its buffer is full.
#[no_mangle]
pub extern "C" fn FLBPluginInputPause() {
    boundary("FLBPluginInputPause", (), || {
        if let Some(Found { inst, .. }) = by_thread() {
            inst.pause();
            inst.log.debug(
                "paused by the host; records wait, and pulling stops once its buffer is full",
            );
        }
    })
}

#[no_mangle]
pub extern "C" fn FLBPluginInputResume() {
    boundary("FLBPluginInputResume", (), || {
        if let Some(Found { inst, .. }) = by_thread() {
            inst.resume();
            inst.log.debug("resumed by the host");
        }
    })
}

#[no_mangle]
pub extern "C" fn FLBPluginInputPreExit(_shutdown_by_hot_reloading: c_int) {
    boundary("FLBPluginInputPreExit", (), || {
        if let Some(Found { inst, .. }) = by_thread() {
            inst.begin_shutdown();
        }
    })
}

/// Stops and joins this thread's instance (the first one registered on it).
#[no_mangle]
pub extern "C" fn FLBPluginExit() -> c_int {
    boundary("FLBPluginExit", FLB_ERROR_RC, || {
        let me = std::thread::current().id();
        let entry = {
            let mut r = registry();
            let pos = r.entries.iter().position(|e| e.thread == me);
            pos.map(|p| r.entries.remove(p))
        };
        if let Some(e) = entry {
            // Fluent Bit calls Exit after its engine stopped moving appends into chunks, and
            // frees what is left in the ring buffer afterwards: its count says which records
            // it has.
            // SAFETY: this is the instance's Exit, on its own thread, with the engine thread
            // waiting for it to end.
            let taken = unsafe { super::cmetrics::records_taken(&e.host) };
            e.inst.shutdown(taken);
            if let Some(c) = e.events.and_then(|c| Arc::try_unwrap(c).ok()) {
                c.remove();
            }
            e.sink.drain();
        }
        0
    })
}

/// Last call before dlclose: stops whatever is still running (instances whose Exit never
/// came, e.g. after another instance failed Init) and joins their threads.
///
/// # Safety
/// `def` is unused.
#[no_mangle]
pub unsafe extern "C" fn FLBPluginUnregister(_def: *mut c_void) {
    boundary("FLBPluginUnregister", (), || {
        let entries: Vec<Entry> = registry().entries.drain(..).collect();
        for e in entries {
            // No Exit came: nothing says what the host took in.
            e.inst.shutdown(None);
            if let Some(c) = e.events.and_then(|c| Arc::try_unwrap(c).ok()) {
                c.abandon();
            }
        }
    })
}
