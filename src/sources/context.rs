//! What every stream of one instance shares: the configuration, the HTTP client, the figures,
//! the log, the hand-off to collect, the saved positions, the download-ahead budget, and the
//! pool of chunk buffers. Built once per instance; sources only read it.

use crate::config::Config;
use crate::handoff::{lock, Handoff};
use crate::log::Logger;
use crate::metrics::Metrics;
use crate::mimecast::client::Client;
use crate::state::StateStore;
use std::sync::{Arc, Mutex};

/// Compressed bytes the streams of one instance may hold in files downloaded ahead of their
/// turn (SIEM batch files today).
pub const AHEAD_BUDGET: usize = 4 << 20;

/// Chunk buffers kept for reuse; beyond this they are freed.
const POOL_MAX: usize = 16;

/// Everything a stream needs.
pub struct SourceCtx {
    pub cfg: Config,
    pub client: Client,
    /// The instance's figures (the client counts its requests into the same ones).
    pub metrics: Arc<Metrics>,
    pub log: Logger,
    pub handoff: Handoff,
    /// Compressed bytes of files downloaded ahead of their turn, for all streams.
    pub budget_ahead: Arc<tokio::sync::Semaphore>,
    pub state: Arc<StateStore>,
    /// Chunk buffers of finished emitters, for the next ones.
    pool: Mutex<Vec<Vec<u8>>>,
}

impl SourceCtx {
    pub fn new(cfg: Config, client: Client, log: Logger, state: Arc<StateStore>) -> SourceCtx {
        SourceCtx {
            handoff: Handoff::new(cfg.buffer_max_size).with_rate(cfg.rate_limit),
            metrics: client.metrics.clone(),
            cfg,
            client,
            log,
            budget_ahead: Arc::new(tokio::sync::Semaphore::new(AHEAD_BUDGET)),
            state,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Target size of one chunk: small, so that what a source holds before appending it to
    /// the hand-off stays small; smaller still when records go to the host as they come, as
    /// each chunk is then about one append.
    pub fn chunk_target(&self) -> usize {
        let most = if self.handoff.as_they_come() {
            64 << 10
        } else {
            256 << 10
        };
        (self.cfg.buffer_max_size / 32).clamp(16 << 10, most)
    }

    /// Allocation of a chunk buffer: the target plus room for the record that crosses it.
    fn chunk_capacity(&self) -> usize {
        self.chunk_target() + (64 << 10)
    }

    /// A chunk buffer an outsized record grew far past its size: not worth keeping.
    pub fn outsized(&self, buf: &Vec<u8>) -> bool {
        buf.capacity() > 2 * self.chunk_capacity()
    }

    /// An empty buffer, reused when one is available.
    pub fn take_buffer(&self) -> Vec<u8> {
        lock(&self.pool)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_capacity()))
    }

    pub fn return_buffer(&self, mut buf: Vec<u8>) {
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
