//! Encodes a source's records into chunks and sends them to collect.
//!
//! A chunk goes out when it reaches its target size, when the source is about to wait (end of a
//! page, caught up), or when its oldest record has waited a quarter second; it carries the
//! latest position its records complete. Sending appends the chunk to the instance's hand-off
//! buffer and clears it for the next records, so an emitter keeps one small buffer for life.

use crate::encode::{self, Layout, Normalize, Scratch, TimeField};
pub use crate::handoff::Closed;
use crate::handoff::Commit;
use crate::sources::context::SourceCtx;
use std::time::{Duration, Instant};

/// Longest a record waits in a partly filled chunk.
const MAX_HOLD: Duration = Duration::from_millis(250);

pub struct Emitter<'a> {
    ctx: &'a SourceCtx,
    source: &'static str,
    time: TimeField,
    buf: Vec<u8>,
    records: usize,
    target: usize,
    position: Option<Commit>,
    oldest: Option<Instant>,
    /// Name the figures are kept under (the source, or source/type).
    metrics_key: String,
    errors: u64,
    newest_ms: i64,
    /// The schema's mapping of this source's records (None: `raw`), and its captured values.
    norm: Option<&'static dyn Normalize>,
    scratch: Scratch,
}

impl<'a> Emitter<'a> {
    pub fn new(
        ctx: &'a SourceCtx,
        source: &'static str,
        records: crate::schema::Records,
        time: TimeField,
    ) -> Self {
        let target = ctx.chunk_target();
        Emitter {
            ctx,
            source,
            time,
            buf: ctx.take_buffer(),
            records: 0,
            target,
            position: None,
            oldest: None,
            metrics_key: source.to_string(),
            errors: 0,
            newest_ms: 0,
            norm: ctx.cfg.schema.normalizer(records),
            scratch: Scratch::default(),
        }
    }

    /// Keeps this emitter's figures under `key` (e.g. `siem_cg/receipt`).
    pub fn metrics_key(mut self, key: &str) -> Self {
        self.metrics_key = key.to_string();
        self
    }

    fn seen(&mut self, t: encode::EventTime) {
        self.newest_ms = self
            .newest_ms
            .max(t.secs as i64 * 1000 + (t.nanos / 1_000_000) as i64);
    }

    fn added(&mut self) {
        self.records += 1;
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Encodes one JSON record; an undecodable one becomes an error record instead, with
    /// `context` (where it came from).
    pub fn record(&mut self, json: &[u8], context: &[(&str, &str)]) {
        self.encode(json, &[], context);
    }

    /// Encodes one JSON record with more string fields in its body.
    pub fn record_with(&mut self, json: &[u8], more: &[(&str, &str)]) {
        self.encode(json, more, more);
    }

    fn encode(&mut self, json: &[u8], more: &[(&str, &str)], context: &[(&str, &str)]) {
        let layout = Layout {
            source: self.source,
            norm: self.norm,
        };
        let r = encode::encode_as(
            &mut self.buf,
            json,
            self.time,
            &layout,
            more,
            &mut self.scratch,
        );
        match r {
            Ok(t) => {
                self.seen(t);
                self.added()
            }
            Err(e) => self.error(&e.to_string(), json, context),
        }
    }

    /// Adds an error record (routed like any other record; marked by `mimecast_error`).
    pub fn error(&mut self, reason: &str, excerpt: &[u8], context: &[(&str, &str)]) {
        self.ctx
            .cfg
            .schema
            .encode_error(&mut self.buf, self.source, reason, excerpt, context);
        self.added();
        self.errors += 1;
    }

    /// The position the records encoded so far complete.
    pub fn mark(&mut self, position: Commit) {
        self.position = Some(position);
    }

    /// The chunk has reached its target size.
    pub fn full(&self) -> bool {
        self.buf.len() >= self.target
    }

    /// The chunk is full or its oldest record has waited long enough.
    pub fn due(&self) -> bool {
        self.buf.len() >= self.target || self.oldest.is_some_and(|t| t.elapsed() >= MAX_HOLD)
    }

    /// Sends the chunk if it is due.
    pub async fn send_due(&mut self) -> Result<(), Closed> {
        if self.due() {
            self.send().await?;
        }
        Ok(())
    }

    /// Sends the chunk if it is due, with the position `position()` computes (only then).
    pub async fn send_due_at(&mut self, position: impl FnOnce() -> Commit) -> Result<(), Closed> {
        if self.due() {
            self.mark(position());
            self.send().await?;
        }
        Ok(())
    }

    /// Sends what has been encoded with the latest position (an empty chunk still carries its
    /// position). Waits while the hand-off buffer is full: that is the back-pressure.
    pub async fn send(&mut self) -> Result<(), Closed> {
        if self.buf.is_empty() && self.position.is_none() {
            return Ok(());
        }
        let errors = std::mem::take(&mut self.errors);
        let records = std::mem::take(&mut self.records) as u64;
        self.ctx
            .metrics
            .records(&self.metrics_key, records - errors, errors, self.newest_ms);
        self.oldest = None;
        let position = self.position.take();
        let sent = self
            .ctx
            .handoff
            .push(self.buf.as_slice(), records, position)
            .await;
        if self.ctx.outsized(&self.buf) {
            // An outsized record grew it: do not keep that memory for the emitter's life.
            self.buf = self.ctx.take_buffer();
        }
        self.buf.clear();
        sent
    }
}

impl Drop for Emitter<'_> {
    fn drop(&mut self) {
        self.ctx.return_buffer(std::mem::take(&mut self.buf));
    }
}
