//! Per-instance pulling and the bounded hand-off to Fluent Bit's collect callback.
//!
//! Each instance owns one thread running a single-threaded tokio runtime that pulls every
//! selected source concurrently. Sources encode records into small chunks and append each
//! finished chunk to the one buffer the next collect hands over; collect takes it without ever
//! waiting, and the host gives it back in the cleanup callback, right after appending its
//! data, to collect the next records. A slow pipeline leaves the buffer full and slows the
//! pull. The positions the records complete travel with them and are applied in cleanup.

use crate::config::Config;
use crate::ffi::buffer::HostBuf;
use crate::log::Logger;
use crate::mimecast::client::Client;
use crate::state::StateStore;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A source's position, to be persisted once the records before it are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub key: String,
    pub cursor: String,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The instance is stopping: nothing more is handed over.
#[derive(Debug)]
pub struct Closed;

/// The records the next collect hands over, already in the one buffer it hands over.
struct Pending {
    /// Whole chunks appended by the sources; at most `buffer_max_size` bytes unless a single
    /// chunk is larger. Has no allocation while the host holds it.
    buf: HostBuf,
    /// Positions its records complete, in the order they were reached.
    commits: Vec<Commit>,
    /// The buffer is with the host, between collect and cleanup.
    out: bool,
    closed: bool,
}

/// The hand-off between the sources and collect: one buffer of at most `buffer_max_size`
/// bytes that sources append finished chunks to and collect hands over as it is. Sources wait
/// while it is full or with the host; so memory stays at one buffer however large the
/// backlog, and a slow pipeline slows the pull.
pub struct Handoff {
    pending: Mutex<Pending>,
    room: tokio::sync::Notify,
    max: usize,
}

impl Handoff {
    fn new(max: usize) -> Self {
        Handoff {
            pending: Mutex::new(Pending {
                buf: HostBuf::new(),
                commits: Vec::new(),
                out: false,
                closed: false,
            }),
            room: tokio::sync::Notify::new(),
            max,
        }
    }

    /// Appends a chunk of whole records and the position it completes, waiting for room.
    pub async fn push(&self, chunk: &[u8], position: Option<Commit>) -> Result<(), Closed> {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut p = lock(&self.pending);
                if p.closed {
                    return Err(Closed);
                }
                let fits = p.buf.is_empty() || p.buf.len() + chunk.len() <= self.max;
                if !p.out && fits {
                    if p.buf.capacity() == 0 && !chunk.is_empty() {
                        // Pages are only touched as records arrive.
                        p.buf = HostBuf::with_capacity(self.max.max(chunk.len()));
                    }
                    p.buf.extend_from_slice(chunk);
                    p.commits.extend(position);
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// For collect: the buffer with its records (None if it holds none, or is still with the
    /// host) and the positions reached, which are true once that buffer is delivered (or at
    /// once, when there is no buffer).
    fn take(&self) -> (Option<HostBuf>, Vec<Commit>) {
        let mut p = lock(&self.pending);
        if p.out {
            return (None, Vec::new());
        }
        let commits = std::mem::take(&mut p.commits);
        if p.buf.is_empty() {
            return (None, commits);
        }
        p.out = true;
        (Some(std::mem::take(&mut p.buf)), commits)
    }

    /// The host released the buffer `take` handed out: sources may fill it again.
    fn give_back(&self, mut buf: HostBuf) {
        buf.clear();
        let mut p = lock(&self.pending);
        // A single outsized record can have grown it past the size: do not keep that.
        if p.buf.capacity() == 0 && buf.capacity() <= self.max.saturating_mul(2) {
            p.buf = buf;
        }
        p.out = false;
        drop(p);
        self.room.notify_waiters();
    }

    fn close(&self) {
        lock(&self.pending).closed = true;
        self.room.notify_waiters();
    }
}

/// Everything a source task needs.
pub struct SourceCtx {
    pub cfg: Config,
    pub client: Client,
    pub log: Logger,
    pub handoff: Handoff,
    /// Compressed bytes of batch files downloaded ahead of their turn, for all sources.
    pub budget_ahead: Arc<tokio::sync::Semaphore>,
    pub state: Arc<StateStore>,
    /// Chunk buffers of finished emitters, for the next ones.
    pool: Mutex<Vec<HostBuf>>,
}

/// Buffers kept for reuse; beyond this they are freed.
const POOL_MAX: usize = 16;

impl SourceCtx {
    /// Target size of one chunk: small, so that what a source holds before appending it to
    /// the hand-off stays small.
    pub fn chunk_target(&self) -> usize {
        (self.cfg.buffer_max_size / 32).clamp(16 << 10, 256 << 10)
    }

    /// Allocation of a chunk buffer: the target plus room for the record that crosses it.
    fn chunk_capacity(&self) -> usize {
        self.chunk_target() + (64 << 10)
    }

    /// A chunk buffer an outsized record grew far past its size: not worth keeping.
    pub fn outsized(&self, buf: &HostBuf) -> bool {
        buf.capacity() > 2 * self.chunk_capacity()
    }

    /// An empty buffer, reused when one is available.
    pub fn take_buffer(&self) -> HostBuf {
        lock(&self.pool)
            .pop()
            .unwrap_or_else(|| HostBuf::with_capacity(self.chunk_capacity()))
    }

    pub fn return_buffer(&self, mut buf: HostBuf) {
        if buf.capacity() == 0 || self.outsized(&buf) {
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
    outstanding: Mutex<Option<Outstanding>>,
    state: Arc<StateStore>,
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
        let client = Client::new(&cfg)?.with_log(log.clone());
        let handoff = Handoff::new(cfg.buffer_max_size);
        let ctx = Arc::new(SourceCtx {
            cfg,
            client,
            log: log.clone(),
            handoff,
            budget_ahead: Arc::new(tokio::sync::Semaphore::new(
                crate::sources::siem_batch::AHEAD_BUDGET,
            )),
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
            outstanding: Mutex::new(None),
            state,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            ctx,
        }))
    }

    /// Hands over what is ready (at most `buffer_max_size` bytes) without waiting. `None` =
    /// nothing.
    pub fn collect(&self) -> Option<HostBuf> {
        // While the host holds the previous buffer (it always releases it before the next
        // collect), the hand-off gives nothing, so its commits are never lost track of.
        let mut out = lock(&self.outstanding);
        let (buf, commits) = self.ctx.handoff.take();
        let Some(buf) = buf else {
            // Nothing to deliver, and everything before it was delivered already: the
            // positions are true now.
            self.state
                .apply(commits.into_iter().map(|c| (c.key, c.cursor)));
            return None;
        };
        self.log.debug(format_args!(
            "collect: handing over {} bytes of records",
            buf.len()
        ));
        *out = Some(Outstanding {
            ptr: buf.as_slice().as_ptr() as usize,
            cap: buf.capacity(),
            bytes: buf.len(),
            commits,
        });
        Some(buf)
    }

    /// Takes back the buffer the host released: it collects the next records.
    pub fn recycle(&self, buf: HostBuf) {
        self.ctx.handoff.give_back(buf);
    }

    /// The host appended the buffer at `ptr`: its records are Fluent Bit's now. Returns
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
        self.ctx.handoff.close();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn commit(n: u32) -> Option<Commit> {
        Some(Commit {
            key: "k".into(),
            cursor: n.to_string(),
        })
    }

    fn cursors(c: &[Commit]) -> Vec<&str> {
        c.iter().map(|c| c.cursor.as_str()).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sources_wait_while_the_buffer_is_full_or_with_the_host() {
        let h = Arc::new(Handoff::new(100));
        h.push(&[1; 60], commit(1)).await.unwrap();
        h.push(&[2; 40], commit(2)).await.unwrap();
        // Full: the next chunk waits.
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.push(&[3; 10], commit(3)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a full buffer takes no more");

        let (buf, commits) = h.take();
        let buf = buf.expect("records to hand over");
        assert_eq!(buf.len(), 100);
        assert_eq!(&buf.as_slice()[58..62], &[1, 1, 2, 2]);
        assert_eq!(cursors(&commits), ["1", "2"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "nothing is added while the host holds it"
        );
        assert!(h.take().0.is_none(), "one buffer out at a time");

        let cap = buf.capacity();
        h.give_back(buf);
        waiter.await.unwrap().unwrap();
        let (buf, commits) = h.take();
        let buf = buf.unwrap();
        assert_eq!(
            (buf.as_slice(), buf.capacity()),
            (&[3u8; 10][..], cap),
            "same memory reused"
        );
        assert_eq!(cursors(&commits), ["3"]);
        h.give_back(buf);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn positions_without_records_and_outsized_chunks() {
        let h = Handoff::new(8192);
        h.push(&[], commit(7)).await.unwrap();
        let (buf, commits) = h.take();
        assert!(buf.is_none());
        assert_eq!(
            cursors(&commits),
            ["7"],
            "true at once: nothing before them is pending"
        );

        // A chunk larger than the size goes alone, and its memory is not kept.
        h.push(&[9; 20_000], commit(8)).await.unwrap();
        let (buf, _) = h.take();
        let buf = buf.unwrap();
        assert_eq!(buf.len(), 20_000);
        h.give_back(buf);
        h.push(&[1; 10], None).await.unwrap();
        let (buf, _) = h.take();
        assert!(buf.unwrap().capacity() <= 16_384, "outsized buffer dropped");

        h.close();
        assert!(h.push(&[1], None).await.is_err(), "closed");
    }
}
