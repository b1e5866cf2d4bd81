//! Per-instance pulling and the bounded hand-off to Fluent Bit's collect callback.
//!
//! Each instance owns one thread running a single-threaded tokio runtime that pulls every
//! selected source concurrently. Sources encode records straight into host-allocatable
//! buffers and send them through a bounded channel; collect takes what is ready without ever
//! waiting, so a slow pipeline fills the channel and slows the pull. Each chunk carries the
//! cursor commits that become true once the host has taken it; they are applied in the
//! cleanup callback, which the host calls right after appending the data.

use crate::config::Config;
use crate::ffi::buffer::HostBuf;
use crate::log::Logger;
use crate::mimecast::client::Client;
use crate::state::StateStore;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// A source's position, to be persisted once the records before it are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub key: String,
    pub cursor: String,
}

/// Encoded records plus what they make true.
pub struct Chunk {
    pub buf: HostBuf,
    pub commits: Vec<Commit>,
}

/// Queue room a chunk takes: its allocation (a reused buffer's pages are all resident), at
/// least one byte (an empty chunk still carries a position).
pub fn charge(buf: &HostBuf) -> usize {
    buf.capacity().max(buf.len()).max(1)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything a source task needs.
pub struct SourceCtx {
    pub cfg: Config,
    pub client: Client,
    pub log: Logger,
    pub tx: mpsc::UnboundedSender<Chunk>,
    /// Allocation that may wait for collect (two collects' worth, so the next collect finds
    /// a full buffer ready): sources wait for room here.
    pub budget: Arc<tokio::sync::Semaphore>,
    pub state: Arc<StateStore>,
    /// Buffers handed back by the host or left over from merging, for reuse.
    pool: Mutex<Vec<HostBuf>>,
}

/// Buffers kept for reuse; beyond this they are freed.
const POOL_MAX: usize = 6;

impl SourceCtx {
    /// Target size of one chunk: small, so that the buffers sources fill stay few and pooled
    /// while one collect gathers many of them.
    pub fn chunk_target(&self) -> usize {
        (self.cfg.buffer_max_size / 32).clamp(16 << 10, 256 << 10)
    }

    /// An empty buffer, reused when one is available.
    pub fn take_buffer(&self) -> HostBuf {
        lock(&self.pool)
            .pop()
            .unwrap_or_else(|| HostBuf::with_capacity(self.chunk_target() + (64 << 10)))
    }

    pub fn return_buffer(&self, mut buf: HostBuf) {
        if buf.capacity() == 0 || buf.capacity() > 2 * (self.chunk_target() + (64 << 10)) {
            return;
        }
        buf.clear();
        let mut pool = lock(&self.pool);
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    }
}

struct Outstanding {
    ptr: usize,
    cap: usize,
    bytes: usize,
    commits: Vec<Commit>,
}

pub struct Instance {
    pub name: String,
    pub log: Logger,
    rx: Mutex<mpsc::UnboundedReceiver<Chunk>>,
    outstanding: Mutex<Option<Outstanding>>,
    held_back: Mutex<Option<Chunk>>,
    /// The buffer one collect hands over, reused from collect to collect.
    collect_buf: Mutex<Option<HostBuf>>,
    state: Arc<StateStore>,
    max_buffer: usize,
    stop: Mutex<Option<tokio::sync::watch::Sender<bool>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    ctx: Arc<SourceCtx>,
}

impl Instance {
    /// Starts pulling. Fails only if the HTTP client or the thread cannot be created.
    pub fn start(
        name: &str,
        cfg: Config,
        log: Logger,
        state: Arc<StateStore>,
    ) -> Result<Arc<Instance>, String> {
        let client = Client::new(&cfg)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(tokio::sync::Semaphore::new(2 * cfg.buffer_max_size));
        let max_buffer = cfg.buffer_max_size;
        let ctx = Arc::new(SourceCtx {
            cfg,
            client,
            log: log.clone(),
            tx,
            budget,
            state: state.clone(),
            pool: Mutex::new(Vec::new()),
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let run_ctx = ctx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-pull"))
            .spawn(move || run(run_ctx, stop_rx))
            .map_err(|e| format!("cannot start the pulling thread: {e}"))?;
        Ok(Arc::new(Instance {
            name: name.to_string(),
            log,
            rx: Mutex::new(rx),
            outstanding: Mutex::new(None),
            held_back: Mutex::new(None),
            collect_buf: Mutex::new(None),
            state,
            max_buffer,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            ctx,
        }))
    }

    /// Takes what is ready, up to `buffer_max_size` bytes, without waiting. `None` = nothing.
    pub fn collect(&self) -> Option<HostBuf> {
        if lock(&self.outstanding).is_some() {
            // The host has not released the previous buffer (it always does before the next
            // collect); hand out nothing rather than lose track of its commits.
            return None;
        }
        let mut rx = lock(&self.rx);
        let mut merged: Option<Chunk> = lock(&self.held_back).take();
        let mut gathered = false;
        loop {
            if merged
                .as_ref()
                .is_some_and(|m| m.buf.len() >= self.max_buffer)
            {
                break;
            }
            let Ok(next) = rx.try_recv() else { break };
            self.ctx.budget.add_permits(charge(&next.buf));
            match merged.as_mut() {
                None => merged = Some(next),
                Some(m) if m.buf.len() + next.buf.len() <= self.max_buffer => {
                    if !gathered {
                        // Move the first chunk into the reusable collect buffer.
                        let mut big = lock(&self.collect_buf)
                            .take()
                            .unwrap_or_else(|| HostBuf::with_capacity(self.max_buffer));
                        big.clear();
                        big.extend_from_slice(m.buf.as_slice());
                        self.ctx.return_buffer(std::mem::replace(&mut m.buf, big));
                        gathered = true;
                    }
                    m.buf.extend_from_slice(next.buf.as_slice());
                    m.commits.extend(next.commits);
                    self.ctx.return_buffer(next.buf);
                }
                Some(_) => {
                    *lock(&self.held_back) = Some(next);
                    break;
                }
            }
        }
        let chunk = merged?;
        if chunk.buf.is_empty() {
            // Nothing to deliver, and everything before it was delivered already: the
            // positions it carries are true now.
            self.state
                .apply(chunk.commits.into_iter().map(|c| (c.key, c.cursor)));
            self.ctx.return_buffer(chunk.buf);
            return None;
        }
        *lock(&self.outstanding) = Some(Outstanding {
            ptr: chunk.buf.as_slice().as_ptr() as usize,
            cap: chunk.buf.capacity(),
            bytes: chunk.buf.len(),
            commits: chunk.commits,
        });
        Some(chunk.buf)
    }

    /// Takes back a buffer the host released, for reuse.
    pub fn recycle(&self, buf: HostBuf) {
        if buf.capacity() >= self.max_buffer {
            *lock(&self.collect_buf) = Some(buf);
        } else {
            self.ctx.return_buffer(buf);
        }
    }

    /// The host appended the buffer at `ptr`: its records are Fluent Bit's now. Returns false
    /// None if `ptr` is not the buffer we handed out, else the buffer's capacity.
    pub fn delivered(&self, ptr: usize) -> Option<usize> {
        let out = lock(&self.outstanding).take();
        match out {
            Some(o) if o.ptr == ptr => {
                self.ctx.client.metrics.delivered(o.bytes as u64);
                self.state
                    .apply(o.commits.into_iter().map(|c| (c.key, c.cursor)));
                Some(o.cap)
            }
            other => {
                *lock(&self.outstanding) = other;
                None
            }
        }
    }

    /// The instance's figures (for metrics).
    pub fn metrics(&self) -> crate::metrics::Snapshot {
        self.ctx.client.metrics.snapshot()
    }

    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// Asks the pulling thread to stop (PreExit); does not wait.
    pub fn begin_shutdown(&self) {
        if let Some(tx) = lock(&self.stop).as_ref() {
            let _ = tx.send(true);
        }
    }

    /// Stops pulling and joins the thread (Exit / Unregister). Idempotent.
    pub fn shutdown(&self) {
        self.begin_shutdown();
        lock(&self.stop).take();
        let t = lock(&self.thread).take();
        if let Some(t) = t {
            if t.join().is_err() {
                self.log
                    .error("the pulling thread ended with an internal error");
            }
        }
        self.log.debug("stopped");
    }
}

fn run(ctx: Arc<SourceCtx>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ctx.log
                .error(format_args!("cannot start the async runtime: {e}"));
            return;
        }
    };
    rt.block_on(async {
        let work = crate::sources::run_all(ctx.clone());
        tokio::select! {
            _ = work => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    });
    // Dropping the runtime cancels every request in flight before the thread ends.
    drop(rt);
}
