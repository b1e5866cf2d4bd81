//! One thread per instance, as Fluent Bit's input threads: `FLBPluginInit` (instances one after
//! another), PreRun, then collect every 1 s on a fixed timer (a slow collect is followed at
//! once by the next, ticks are not queued), append, cleanup right after; Pause/Resume,
//! PreExit and Exit on that thread too.

use crate::callbacks::{attribute_logs_to, host_exports, EventState, InsState};
use crate::collected::{Collected, Keep, Printer};
use crate::decode::{decode_strict, validate_strict, Record};
use crate::generation::{Generation, CONTEXT_REMOTE};
use crate::guarded::Guarded;
use crate::host::HostError;
use crate::plugin::{set_instance, Syms};
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the host writes over the input context's proxy pointer, to tell if Init overwrote it.
const PROXY_MARKER: usize = 0x5EED_F00D;

/// Shared between instance threads: the `flbgo_input_plugin` struct and the api table, both
/// host-allocated once per load as Fluent Bit does.
pub(crate) struct Shared {
    pub(crate) gen: Generation,
    pub(crate) syms: Syms,
    pub(crate) plugin: Guarded,
    pub(crate) api: Guarded,
    pub(crate) plugin_lock: Mutex<()>,
    pub(crate) collected: Arc<Collected>,
    pub(crate) keep: Keep,
    pub(crate) printer: Option<Printer>,
    pub(crate) stop_all: AtomicBool,
}

// SAFETY: the raw allocations are only touched under plugin_lock or read-only after setup.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// What the host asks of an instance's thread.
pub(crate) enum Cmd {
    StartCollect,
    /// As at `mem_buf_limit`: the collect and the ring buffer's moves into chunks stop.
    Pause,
    Resume,
    /// As at a stop (`flb_engine_stop_ingestion`): the plugin is paused unless it already
    /// is; the engine still moves the ring buffer into chunks during the grace period.
    StopIngestion,
    PreExit(c_int),
    Exit,
}

/// The host's handle on an initialised instance's thread.
pub(crate) struct InstanceThread {
    tx: Sender<Cmd>,
    join: JoinHandle<()>,
    done: Receiver<()>,
}

impl InstanceThread {
    /// Starts the instance's thread and waits for its Init (and PreRun).
    pub(crate) fn spawn(
        shared: Arc<Shared>,
        ins: Box<InsState>,
        index: usize,
        tag: String,
    ) -> Result<InstanceThread, HostError> {
        let (tx, rx) = mpsc::channel::<Cmd>();
        let (init_tx, init_rx) = mpsc::channel::<bool>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let thread_name = format!("flb-in-{}-w", ins.name);
        let worker = Worker {
            shared,
            ins,
            index,
            tag,
        };
        let join = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || worker.run(rx, init_tx, done_tx))
            .map_err(|e| HostError::Load(e.to_string()))?;
        match init_rx.recv() {
            Ok(true) => Ok(InstanceThread {
                tx,
                join,
                done: done_rx,
            }),
            _ => {
                let _ = join.join();
                Err(HostError::InitFailed(index))
            }
        }
    }

    pub(crate) fn send(&self, cmd: Cmd) {
        let _ = self.tx.send(cmd);
    }

    /// Waits (up to 30 s) for the thread to report Exit done, then joins it.
    pub(crate) fn wait_exit(self) {
        let _ = self.done.recv_timeout(Duration::from_secs(30));
        let _ = self.join.join();
    }

    pub(crate) fn join(self) {
        let _ = self.join.join();
    }
}

/// An instance as its thread holds it.
struct Worker {
    shared: Arc<Shared>,
    /// What `i_ins` points to; it lives until after Exit.
    ins: Box<InsState>,
    index: usize,
    tag: String,
}

impl Worker {
    /// The thread: Init and PreRun (reporting the outcome on `init_tx`), then commands and
    /// collects until Exit (reported on `done_tx`).
    fn run(self, rx: Receiver<Cmd>, init_tx: Sender<bool>, done_tx: Sender<()>) {
        attribute_logs_to(self.shared.collected.clone());
        let gen = self.shared.gen;
        // The executable's library versions are the same on every thread.
        host_exports().set_cmt_version(gen.cmt_version());
        self.events().thread = Some(std::thread::current().id());
        let context = Guarded::new(gen.context_size());
        context.set_word(gen.context_proxy_offset(), PROXY_MARKER);
        let ok = self.init(&context);
        self.check_context(&context);
        if !ok {
            let _ = init_tx.send(false);
            return;
        }
        self.shared.syms.call_pre_run(0);
        let _ = init_tx.send(true);
        let remote = if gen.has_ctx() {
            context.word(CONTEXT_REMOTE)
        } else {
            0
        };
        self.serve(rx, done_tx, remote);
    }

    /// Init with the shared plugin struct pointing at this instance: true if it succeeded.
    fn init(&self, context: &Guarded) -> bool {
        let shared = &self.shared;
        let ins_ptr = &*self.ins as *const InsState as usize;
        let _g = shared.plugin_lock.lock().unwrap_or_else(|e| e.into_inner());
        set_instance(&shared.plugin, ins_ptr, context);
        let rc = shared.syms.call_init(&shared.plugin);
        rc > 0
    }

    /// A violation if Init wrote past the input context or over its proxy pointer.
    fn check_context(&self, context: &Guarded) {
        let gen = self.shared.gen;
        if !context.intact() || context.word(gen.context_proxy_offset()) != PROXY_MARKER {
            self.shared.collected.violation(format!(
                "{}: Init wrote past the {}-byte input context or over its proxy pointer",
                self.ins.name,
                gen.context_size()
            ));
        }
    }

    fn events(&self) -> std::sync::MutexGuard<'_, EventState> {
        self.ins.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commands from the host and, while collecting, a collect every 1 s, until Exit; once
    /// collecting started, the plugin's event collector whenever its descriptor is readable
    /// (level-triggered, as Fluent Bit's loop), paused or not: the host pauses only the
    /// proxy's collect.
    fn serve(self, rx: Receiver<Cmd>, done_tx: Sender<()>, remote: usize) {
        let syms = self.shared.syms;
        let mut collecting = false;
        let mut started = false;
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        // Appends waiting to be taken in, as in Fluent Bit's ring buffer: a threaded input's
        // appends go there, the proxy's collect as well as the event collector's.
        let mut ring: VecDeque<(Instant, Queued)> = VecDeque::new();
        // Paused as at mem_buf_limit: the engine leaves the ring buffer alone.
        let mut blocked = false;
        loop {
            while let Some((at, _)) = ring.front() {
                if blocked || at.elapsed() < RING_DELAY {
                    break;
                }
                if let Some((_, queued)) = ring.pop_front() {
                    self.take_queued(queued);
                }
            }
            if self.shared.stop_all.load(Ordering::SeqCst) {
                // Init failure elsewhere: this instance gets no PreExit/Exit.
                return;
            }
            let wait = if collecting {
                next_tick.saturating_duration_since(Instant::now())
            } else {
                Duration::from_millis(100)
            };
            let event_fd = self.events().collector.map(|(_, _, fd)| fd);
            let cmd = match event_fd.filter(|_| started) {
                Some(fd) => {
                    if readable(fd, wait.min(EVENT_SLICE)) {
                        let appends = self.event_collect();
                        if !appends.is_empty() {
                            ring.push_back((Instant::now(), Queued::Event(appends)));
                        }
                    }
                    match rx.try_recv() {
                        Ok(cmd) => Ok(cmd),
                        Err(mpsc::TryRecvError::Empty)
                            if collecting && Instant::now() >= next_tick =>
                        {
                            Err(mpsc::RecvTimeoutError::Timeout)
                        }
                        Err(mpsc::TryRecvError::Empty) => continue,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            Err(mpsc::RecvTimeoutError::Disconnected)
                        }
                    }
                }
                None => rx.recv_timeout(wait),
            };
            match cmd {
                Ok(Cmd::StartCollect) => {
                    collecting = true;
                    started = true;
                    next_tick = Instant::now() + Duration::from_secs(1);
                }
                Ok(Cmd::Pause) => {
                    collecting = false;
                    blocked = true;
                    self.events().paused = true;
                    syms.call_pause();
                }
                Ok(Cmd::Resume) => {
                    collecting = true;
                    blocked = false;
                    self.events().paused = false;
                    syms.call_resume();
                }
                Ok(Cmd::StopIngestion) => {
                    // Fluent Bit's flb_input_pause returns early for an input its buffer
                    // limits paused: the plugin hears nothing.
                    if !blocked {
                        collecting = false;
                        self.events().paused = true;
                        syms.call_pause();
                    }
                }
                Ok(Cmd::PreExit(hot)) => {
                    // Stopping: during the grace period the engine takes in what waits,
                    // unless the input is paused at its buffer limits.
                    self.end_ring(&mut ring, blocked);
                    syms.call_pre_exit(hot)
                }
                Ok(Cmd::Exit) => {
                    self.end_ring(&mut ring, blocked);
                    syms.call_exit();
                    self.report_event_problems();
                    if self.events().collector.is_some() {
                        self.shared.collected.violation(format!(
                            "{}: the event collector is still registered after Exit: Fluent Bit would remove its descriptor from a loop after the plugin closed it",
                            self.ins.name
                        ));
                    }
                    drop(self.ins);
                    let _ = done_tx.send(());
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) if collecting => {
                    if let Some(copy) = self.collect_once(remote) {
                        ring.push_back((Instant::now(), Queued::Collect(copy)));
                    }
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

    /// Calls the plugin's event collector as Fluent Bit does (the instance, its config, its
    /// context) and returns what it appended: like Fluent Bit's ring buffer, the serving loop
    /// takes it in ([`Self::take_in`]) [`RING_DELAY`] later, not while paused, and all of it
    /// before the input exits.
    fn event_collect(&self) -> Appends {
        let Some((_, cb, _)) = self.events().collector else {
            return Vec::new();
        };
        let ins = &*self.ins as *const InsState as *mut c_void;
        // SAFETY: the callback the plugin registered for this instance, called on the
        // instance's thread with the instance it registered it for; config and context are
        // the host's own, which the plugin does not read.
        unsafe { cb(ins, std::ptr::null_mut(), std::ptr::null_mut()) };
        self.report_event_problems();
        std::mem::take(&mut self.events().appends)
    }

    /// The ring buffer as the input exits: taken in, or, if the instance is paused at its
    /// buffer limits, freed as Fluent Bit's `flb_input_chunk_ring_buffer_cleanup` does.
    fn end_ring(&self, ring: &mut VecDeque<(Instant, Queued)>, blocked: bool) {
        for (_, queued) in ring.drain(..) {
            if blocked {
                let records: usize = match &queued {
                    Queued::Event(appends) => appends.iter().map(|(given, _)| *given).sum(),
                    Queued::Collect(bytes) => validate_strict(bytes).unwrap_or(0),
                };
                self.shared
                    .collected
                    .ring_dropped
                    .fetch_add(records as u64, Ordering::Relaxed);
            } else {
                self.take_queued(queued);
            }
        }
    }

    /// Takes in one entry of the ring buffer.
    fn take_queued(&self, queued: Queued) {
        match queued {
            Queued::Event(appends) => self.take_in(appends),
            Queued::Collect(bytes) => {
                if self.shared.keep == Keep::Count && self.shared.printer.is_none() {
                    self.count_buffer(&bytes);
                } else {
                    self.decode_buffer(&bytes);
                }
            }
        }
    }

    /// Takes in appended buffers: each checked like a collected one, and its record count
    /// against the one the plugin gave.
    fn take_in(&self, appends: Appends) {
        for (given, bytes) in appends {
            let c = &self.shared.collected;
            c.event_appends.fetch_add(1, Ordering::Relaxed);
            let took = if self.shared.keep == Keep::Count && self.shared.printer.is_none() {
                self.count_buffer(&bytes)
            } else {
                self.decode_buffer(&bytes)
            };
            if let Some(n) = took.filter(|n| *n != given) {
                c.violation(format!(
                    "{}: an append said {given} records and held {n}",
                    self.ins.name
                ));
            }
        }
        self.report_event_problems();
    }

    fn report_event_problems(&self) {
        let problems = std::mem::take(&mut self.events().problems);
        for p in problems {
            self.shared
                .collected
                .violation(format!("{}: {p}", self.ins.name));
        }
    }

    /// One collect: the buffer is copied for the ring buffer (as Fluent Bit's append does for a
    /// threaded input) and cleaned up right after; the copy is returned, to be taken in later.
    fn collect_once(&self, remote: usize) -> Option<Vec<u8>> {
        let shared = &*self.shared;
        let (rc, data, len) = shared.syms.call_collect(remote)?;
        if len == 0 {
            if !data.is_null() {
                shared.collected.violation(
                    "collect returned a non-NULL buffer with length 0: the host leaks it".into(),
                );
            }
            return None;
        }
        if rc == -1 {
            shared
                .collected
                .collect_errors
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if data.is_null() {
            shared
                .collected
                .violation(format!("collect returned NULL with length {len}"));
            return None;
        }
        // SAFETY: the plugin handed us `len` readable bytes at `data` until cleanup.
        let copy = unsafe { std::slice::from_raw_parts(data as *const u8, len) }.to_vec();
        // SAFETY: data is the buffer this collect handed over; it is not read past here.
        let crc = unsafe { shared.syms.call_cleanup(remote, data) };
        if crc == -1 {
            shared
                .collected
                .cleanup_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        Some(copy)
    }

    /// Count mode: validates the buffer without building values, timing the host's CPU.
    /// Returns the number of records, None if the buffer is bad.
    fn count_buffer(&self, bytes: &[u8]) -> Option<usize> {
        let c = &self.shared.collected;
        let cpu0 = thread_cpu_ns();
        let checked = validate_strict(bytes);
        c.host_cpu_ns
            .fetch_add(thread_cpu_ns().saturating_sub(cpu0), Ordering::Relaxed);
        match checked {
            Ok(n) => {
                c.took_buffer(bytes.len(), n);
                self.ins.taken.fetch_add(n as u64, Ordering::Relaxed);
                c.notify();
                Some(n)
            }
            Err(e) => {
                self.bad_buffer(bytes, e);
                None
            }
        }
    }

    /// Decodes the buffer's records, hands them to the printer and keeps them if asked to.
    /// Returns the number of records, None if the buffer is bad.
    fn decode_buffer(&self, bytes: &[u8]) -> Option<usize> {
        let shared = &*self.shared;
        let c = &shared.collected;
        let recs = match decode_strict(bytes) {
            Ok(recs) => recs,
            Err(e) => {
                self.bad_buffer(bytes, e);
                return None;
            }
        };
        let n = recs.len();
        c.took_buffer(bytes.len(), n);
        self.ins.taken.fetch_add(n as u64, Ordering::Relaxed);
        let records: Vec<Record> = recs
            .into_iter()
            .map(|(secs, nanos, body)| Record {
                instance: self.index,
                tag: self.tag.clone(),
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
        c.notify();
        Some(n)
    }

    fn bad_buffer(&self, bytes: &[u8], e: String) {
        self.shared.collected.violation(format!(
            "buffer of {} bytes from mimecast.{}: {e}",
            bytes.len(),
            self.index
        ));
    }
}

/// Longest the thread waits on the event collector's descriptor before it looks at commands.
const EVENT_SLICE: Duration = Duration::from_millis(20);
/// How long appends (a collect's buffer or the event collector's) wait before they are taken
/// in: Fluent Bit's engine moves a threaded input's ring buffer into chunks every 250 ms or so,
/// and a kill meanwhile loses them (what the plugin's position hold, `handoff::HOLD`, is for).
const RING_DELAY: Duration = Duration::from_millis(250);

/// Buffers the event collector appended, each with the record count the plugin gave.
type Appends = Vec<(usize, Vec<u8>)>;

/// An entry of the ring buffer: what one event-collector call appended (records claimed,
/// bytes), or a copy of one collect's buffer.
enum Queued {
    Event(Appends),
    Collect(Vec<u8>),
}

/// Waits up to `timeout` for `fd` to be readable.
fn readable(fd: c_int, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one pollfd we own.
    let n = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as c_int) };
    n > 0 && p.revents & libc::POLLIN != 0
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
