//! Encodes a source's records into chunks and sends them to collect.

use crate::collect::{Chunk, Commit, SourceCtx};
use crate::encode::{self, TimeField};
use crate::ffi::buffer::HostBuf;
use std::sync::atomic::Ordering;

/// The instance is stopping: the receiving side is gone.
#[derive(Debug)]
pub struct Closed;

pub struct Emitter<'a> {
    ctx: &'a SourceCtx,
    source: &'static str,
    time: TimeField,
    buf: HostBuf,
    records: usize,
    target: usize,
}

impl<'a> Emitter<'a> {
    pub fn new(ctx: &'a SourceCtx, source: &'static str, time: TimeField) -> Self {
        let target = ctx.chunk_target();
        Emitter {
            ctx,
            source,
            time,
            buf: HostBuf::with_capacity(target + (64 << 10)),
            records: 0,
            target,
        }
    }

    /// Encodes one JSON record; an undecodable one becomes an error record instead.
    pub fn record(&mut self, json: &[u8], context: &[(&str, &str)]) {
        match encode::encode_record(&mut self.buf, json, self.time, self.source) {
            Ok(_) => self.records += 1,
            Err(e) => self.error(&e.to_string(), json, context),
        }
    }

    /// Adds an error record (routed like any other record; marked by `mimecast_error`).
    pub fn error(&mut self, reason: &str, excerpt: &[u8], context: &[(&str, &str)]) {
        encode::encode_error(&mut self.buf, self.source, reason, excerpt, context);
        self.records += 1;
        self.ctx.error_records.fetch_add(1, Ordering::Relaxed);
    }

    pub fn full(&self) -> bool {
        self.buf.len() >= self.target
    }

    /// Sends what has been encoded, with the position it completes (an empty chunk still
    /// carries its commit). Waits while the channel is full: that is the back-pressure.
    pub async fn send(&mut self, commit: Option<Commit>) -> Result<(), Closed> {
        if self.buf.is_empty() && commit.is_none() {
            return Ok(());
        }
        let buf = std::mem::replace(
            &mut self.buf,
            HostBuf::with_capacity(self.target + (64 << 10)),
        );
        let chunk = Chunk {
            buf,
            records: std::mem::take(&mut self.records),
            commits: commit.into_iter().collect(),
        };
        self.ctx.tx.send(chunk).await.map_err(|_| Closed)
    }
}
