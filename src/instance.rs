//! One plugin instance: the thread that pulls its sources, and the collect/cleanup side that
//! hands their records to Fluent Bit and commits the positions they complete.
//!
//! Each instance owns one thread running a single-threaded tokio runtime that pulls every
//! selected source concurrently (`sources::run_all`); the host's collect takes what the
//! hand-off holds, and the cleanup callback reports it delivered.

use crate::config::Config;
use crate::ffi::buffer::HostBuf;
use crate::handoff::{lock, Batch, Commit};
use crate::log::Logger;
use crate::mimecast::client::Client;
use crate::sources::context::SourceCtx;
use crate::state::StateStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

struct Outstanding {
    ptr: usize,
    cap: usize,
    bytes: usize,
    records: u64,
    commits: Vec<Commit>,
}

pub struct Instance {
    pub name: String,
    pub log: Logger,
    outstanding: Mutex<Option<Outstanding>>,
    paused: AtomicBool,
    state: Arc<StateStore>,
    stop: Mutex<Option<tokio::sync::watch::Sender<bool>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    ctx: Arc<SourceCtx>,
}

impl Instance {
    /// Opens the instance's saved positions (the state file named after what it collects)
    /// and starts pulling: everything Init does once the properties are valid.
    pub fn open(name: &str, cfg: Config, log: Logger) -> Result<Arc<Instance>, InstanceError> {
        let file = crate::state::file_name(&cfg.base_url, &cfg.client_id, &cfg.selection());
        let store = StateStore::open(
            &cfg.state_dir,
            &file,
            cfg.state_reset.as_deref(),
            cfg.state_sync,
            log.clone(),
        )?;
        Instance::start(name, cfg, log, Arc::new(store)).map_err(InstanceError::Start)
    }

    /// Starts pulling. Fails only if the HTTP client or the thread cannot be created.
    pub fn start(
        name: &str,
        cfg: Config,
        log: Logger,
        state: Arc<StateStore>,
    ) -> Result<Arc<Instance>, String> {
        let client = Client::new(&cfg)
            .map_err(|e| e.to_string())?
            .with_log(log.clone());
        let ctx = Arc::new(SourceCtx::new(cfg, client, log.clone(), state.clone()));
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
            paused: AtomicBool::new(false),
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
        if self.paused() {
            return None;
        }
        let (batch, commits) = self.ctx.handoff.take();
        let Some(Batch { buf, records }) = batch else {
            // Nothing to deliver, and everything before it was delivered already: the
            // positions are true now.
            self.commit(0, commits);
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
            records,
            commits,
        });
        Some(buf)
    }

    /// Hands what is ready to `append` (the host's append function, on the instance thread)
    /// right away, instead of waiting for the next collect; `append` says whether the host
    /// took the records. Taken records count as delivered at once; refused ones go back to be
    /// handed over again. Nothing happens while the host has paused the instance.
    pub fn deliver_now(&self, append: impl FnOnce(&[u8], u64) -> bool) -> Delivered {
        if self.paused() {
            return Delivered::Paused;
        }
        let (batch, commits) = self.ctx.handoff.take();
        let Some(batch) = batch else {
            self.commit(0, commits);
            return Delivered::Nothing;
        };
        let out_at = std::time::Instant::now();
        if !append(batch.buf.as_slice(), batch.records) {
            self.ctx.handoff.untake(batch, commits);
            return Delivered::Refused;
        }
        self.ctx.metrics.delivered(batch.buf.len() as u64);
        self.commit(batch.records, commits);
        self.ctx.handoff.handed_over_in(out_at.elapsed());
        self.ctx.handoff.give_back(batch.buf);
        Delivered::Records(batch.records)
    }

    /// From now on records are handed over as they come: `wake` (callable from any thread)
    /// makes the host's instance thread call [`Instance::deliver_now`].
    pub fn hand_over_as_they_come(&self, wake: Box<dyn Fn() + Send + Sync>) {
        self.ctx.handoff.set_waker(wake);
        // Records may have arrived before the waker was set.
        self.ctx.handoff.wake();
    }

    /// The host paused the instance (its chunks reached `mem_buf_limit`, or it is stopping):
    /// nothing is handed over until it resumes; the sources wait once the buffer is full.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        self.ctx.handoff.hold_paused(true);
    }

    /// The host resumed the instance: what waited is handed over.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        self.ctx.handoff.hold_paused(false);
        self.ctx.handoff.wake();
    }

    fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
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
                self.ctx.metrics.delivered(o.bytes as u64);
                self.commit(o.records, o.commits);
                Some(o.cap)
            }
            other => {
                *lock(&self.outstanding) = other;
                None
            }
        }
    }

    /// How the operator asked records to be handed over (`handoff`).
    pub fn handoff_mode(&self) -> crate::config::HandoffMode {
        self.ctx.cfg.handoff
    }

    /// Saves the positions of records Fluent Bit has taken (or of none, when nothing before
    /// them was pending) once they are surely in its chunks ([`crate::handoff::HOLD`]): the
    /// pulling thread writes them when due, a few times a second at most, off the host's
    /// thread.
    fn commit(&self, records: u64, commits: Vec<Commit>) {
        self.ctx.handoff.hold(records, commits);
    }

    /// The instance's figures (for metrics).
    pub fn metrics(&self) -> crate::metrics::Snapshot {
        self.ctx.metrics.snapshot()
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

    /// Stops pulling and joins the thread (Exit / Unregister), then writes the held positions
    /// of the records the host has in its chunks: `taken` is its count of this instance's
    /// records there (see [`crate::handoff::Handoff::at_stop`]). Idempotent.
    pub fn shutdown(&self, taken: Option<u64>) {
        self.begin_shutdown();
        lock(&self.stop).take();
        let t = lock(&self.thread).take();
        if let Some(t) = t {
            if t.join().is_err() {
                self.log
                    .error("the pulling thread ended with an internal error");
            }
        }
        // On the disk before Fluent Bit goes on (to exit or reload).
        let stop = self.ctx.handoff.at_stop(taken);
        self.log.debug(format_args!(
            "stopping: Fluent Bit counts {} records of this input in its chunks; {} positions written, {} records left",
            taken.map_or_else(|| "no".to_string(), |n| n.to_string()),
            stop.commits.len(),
            stop.left
        ));
        use crate::handoff::HostCount;
        match stop.count {
            HostCount::Used if stop.left > 0 => self.log.info(format_args!(
                "stopping: Fluent Bit did not take the last {} records handed over into its chunks (its input was paused at mem_buf_limit or a storage limit, or a processor on it dropped records); they are read again at the next start",
                stop.left
            )),
            HostCount::Missing if stop.left > 0 => self.log.info(format_args!(
                "stopping: Fluent Bit does not say which records it took into its chunks, so the positions of the last {} records handed over are not saved; they are read again at the next start",
                stop.left
            )),
            HostCount::Above(count, given) => self.log.warn(format_args!(
                "stopping: Fluent Bit counts {count} records of this input in its chunks, more than the {given} handed over (processors or conditional routes on the input count records again), so it cannot say which are there: the positions of the last {} records handed over are not saved, and they are read again at the next start",
                stop.left
            )),
            _ => {}
        }
        write(&self.ctx, stop.commits);
        self.state.sync_now();
        self.log.debug("stopped");
    }
}

/// Writes the held positions whose time has come.
fn write_due(ctx: &SourceCtx) {
    write(ctx, ctx.handoff.due());
}

/// Writes positions to the state, oldest first.
fn write(ctx: &SourceCtx, commits: Vec<Commit>) {
    if !commits.is_empty() {
        ctx.state
            .apply(commits.into_iter().map(|c| (c.key, c.cursor)));
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
        let work = async {
            if ctx.cfg.startup_check {
                startup_check(&ctx).await;
            }
            crate::sources::run_all(ctx.clone()).await
        };
        // Held positions are written when their time comes even if nothing else happens.
        let ticker = async {
            loop {
                tokio::time::sleep(crate::handoff::HOLD / 4).await;
                write_due(&ctx);
            }
        };
        tokio::select! {
            _ = work => {}
            _ = ticker => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    });
    // Dropping the runtime cancels every request in flight before the thread ends.
    drop(rt);
}

/// The start-up check (`startup_check on`): one table line per source, in the log.
async fn startup_check(ctx: &SourceCtx) {
    match crate::probe::check(&ctx.cfg, false).await {
        Ok(probes) => {
            for p in &probes {
                let line = format!(
                    "startup check: {:<18} {:<28} {}",
                    p.source,
                    p.verdict.label(),
                    p.detail
                );
                if p.verdict == crate::probe::Verdict::Ok {
                    ctx.log.info(line);
                } else {
                    ctx.log.error(line);
                }
            }
        }
        Err(e) => ctx
            .log
            .error(format_args!("startup check could not run: {e}")),
    }
}

/// What [`Instance::deliver_now`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// The host took this many records.
    Records(u64),
    /// Nothing was ready (or the buffer was with the host's collect).
    Nothing,
    /// The host refused them; they wait for the next try.
    Refused,
    /// The host has paused the instance.
    Paused,
}

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// The state directory or file is unusable: a configuration problem.
    #[error("invalid configuration: {0}")]
    State(#[from] crate::state::StateError),
    /// The HTTP client or the pulling thread could not be created.
    #[error("cannot start: {0}")]
    Start(String),
}
