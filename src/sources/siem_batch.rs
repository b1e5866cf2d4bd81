//! SIEM batch collection (`/siem/v1/batch/events/{cg,ci}`), one task per log type.
//!
//! List a page of pre-signed batch-file URLs, download each file without the bearer token,
//! gunzip and stream its NDJSON lines into records, follow `@nextPage`, and poll again after
//! `isCaughtUp`. The position (page token, file within the page, line within the file) is
//! committed only once the records before it were taken by Fluent Bit. A file whose URL
//! expired is found again by re-listing the same page; a file that stays corrupt becomes an
//! error record naming it, and collection goes on.

use super::context::{SourceCtx, AHEAD_BUDGET};
use super::emit::Emitter;
use super::gzlines::{GzLines, Line};
use super::siem::Family;
use super::{BoxFuture, Outcome, ProbeFailure, Stop, Stream, Verdict};
use crate::encode::TimeField;
use crate::handoff::Commit;
use crate::log::{Level, Scope};
use crate::mimecast::client::{describe, transport_error, ApiError, Client};
use crate::state::cursor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Retention of SIEM batch files.
const RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// Download attempts for one file (failed requests, expired URLs) before it is reported and
/// passed over; a download that arrives as invalid gzip gets one more try on top of these.
const FILE_ATTEMPTS: u32 = 4;
/// Completed files remembered to skip a file the API lists again.
const RECENT_FILES: usize = 256;

/// A short, stable identity of a batch file (its object path).
fn path_hash(path: &str) -> u64 {
    crate::hash::fnv1a(path.as_bytes())
}

/// Where a type's collection stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The `nextPage` token that lists the current page (None: first page of the lookback).
    #[serde(default)]
    pub list_token: Option<String>,
    /// Files of that page fully delivered.
    pub file: usize,
    /// Lines of the next file already delivered.
    pub line: u64,
    /// Hashes of the files delivered last (the API may list a file again), saved as one
    /// string of 16-hex-digit hashes so a restart skips a re-listed file just as a running
    /// instance does.
    #[serde(default, with = "cursor::hex_hashes")]
    pub recent: VecDeque<u64>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        cursor::encode(self)
    }

    /// The position with `file` as the file in progress.
    pub fn encode_at(&self, file: usize) -> String {
        if file == self.file {
            return self.encode();
        }
        cursor::encode(&Cursor {
            file,
            ..self.clone()
        })
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        cursor::decode(s)
    }
}

struct BatchFile {
    url: String,
    /// Compressed size the listing announces, if it does.
    size: Option<u64>,
}

struct Page {
    files: Vec<BatchFile>,
    next: Option<String>,
    caught_up: bool,
}

fn parse_page(v: &Value) -> Result<Page, ApiError> {
    let value = v
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::Decode("batch listing has no 'value' array".into()))?;
    let mut files = Vec::with_capacity(value.len());
    for f in value {
        let url = f
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Decode("batch listing entry has no 'url'".into()))?;
        files.push(BatchFile {
            url: url.to_string(),
            size: f.get("size").and_then(Value::as_u64),
        });
    }
    Ok(Page {
        files,
        next: v
            .get("@nextPage")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        caught_up: v
            .get("isCaughtUp")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// A pre-signed URL without its query (which holds the signature): safe to log, and the
/// object's identity.
pub fn object_path(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

enum FileError {
    /// 403/404 on the URL: expired or gone.
    Expired(u16),
    /// Network trouble or 5xx: try again.
    Transient(String),
    /// The bytes are not a valid gzip stream.
    Corrupt(String),
}

/// A file downloaded ahead of its turn.
enum Fetched {
    /// The whole compressed file, and the share of the instance's budget it holds.
    Body(bytes::Bytes, tokio::sync::OwnedSemaphorePermit),
    /// The download failed; its turn starts from this error.
    Failed(FileError),
    /// Larger than announced: downloaded again, streaming, at its turn.
    Oversize,
}

/// Room over the announced size before a file downloaded ahead is given up.
const AHEAD_SLACK: u64 = 64 << 10;

/// Downloads of the files after the one being decoded (at most `batch_concurrency - 1`, within
/// the instance's byte budget, in page order). Dropping it cancels what is still running.
struct Ahead {
    ctx: Arc<SourceCtx>,
    width: usize,
    /// Next file index not yet considered for an early download.
    next: usize,
    running: VecDeque<(usize, tokio::task::JoinHandle<Fetched>)>,
}

impl Ahead {
    fn new(ctx: &Arc<SourceCtx>, from: usize) -> Self {
        Ahead {
            ctx: ctx.clone(),
            width: ctx.cfg.batch_concurrency.saturating_sub(1),
            next: from,
            running: VecDeque::new(),
        }
    }

    /// Starts early downloads for the files after `current`, as far as width and budget allow.
    /// A file without an announced size, or larger than the budget, waits for its turn.
    fn fill(&mut self, page: &Page, current: usize, recent: &VecDeque<u64>) {
        self.next = self.next.max(current + 1);
        while self.next <= current + self.width {
            let Some(file) = page.files.get(self.next) else {
                return;
            };
            let index = self.next;
            let id = path_hash(object_path(&file.url));
            let want = file
                .size
                .map(|n| n.saturating_add(AHEAD_SLACK))
                .filter(|&n| n <= AHEAD_BUDGET as u64);
            if let (false, Some(want)) = (recent.contains(&id), want) {
                let Ok(permit) = self
                    .ctx
                    .budget_ahead
                    .clone()
                    .try_acquire_many_owned(want as u32)
                else {
                    return; // budget spent: try again after the next file
                };
                let task = tokio::spawn(fetch_whole(
                    self.ctx.clone(),
                    file.url.clone(),
                    want as usize,
                    permit,
                ));
                self.running.push_back((index, task));
            }
            self.next += 1;
        }
    }

    /// What was downloaded early for file `index`, waiting for it to finish; None if nothing.
    async fn take(&mut self, index: usize) -> Option<Fetched> {
        while self.running.front().is_some_and(|(i, _)| *i < index) {
            if let Some((_, t)) = self.running.pop_front() {
                t.abort();
            }
        }
        if self.running.front().is_some_and(|(i, _)| *i == index) {
            let (_, task) = self.running.pop_front()?;
            return task.await.ok();
        }
        None
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        for (_, t) in &self.running {
            t.abort();
        }
    }
}

/// Requests a batch file; its answer, if it is the file's bytes.
async fn open(ctx: &SourceCtx, url: &str) -> Result<Body, FileError> {
    let resp = ctx
        .client
        .download(url)
        .await
        .map_err(|e| FileError::Transient(describe(&e)))?;
    match resp.status().as_u16() {
        200 => Ok(Body::Live(resp)),
        s @ (403 | 404) => Err(FileError::Expired(s)),
        s => Err(FileError::Transient(format!("HTTP {s}"))),
    }
}

/// Downloads one file whole, within `limit` bytes.
async fn fetch_whole(
    ctx: Arc<SourceCtx>,
    url: String,
    limit: usize,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Fetched {
    let mut body = match open(&ctx, &url).await {
        Ok(b) => b,
        Err(e) => return Fetched::Failed(e),
    };
    let mut whole = bytes::BytesMut::with_capacity(limit);
    loop {
        match body.chunk().await {
            Ok(Some(c)) if whole.len() + c.len() <= limit => whole.extend_from_slice(&c),
            Ok(Some(_)) => return Fetched::Oversize,
            Ok(None) => return Fetched::Body(whole.freeze(), permit),
            Err(e) => return Fetched::Failed(FileError::Transient(e)),
        }
    }
}

/// One SIEM batch type of one family: a stream.
pub struct BatchType {
    family: Family,
    ty: String,
    key: String,
    cur: Cursor,
}

impl BatchType {
    /// The stream of type `ty`, from its saved position.
    pub fn new(ctx: &SourceCtx, family: Family, ty: &str) -> Self {
        let key = super::stream_key(family.source(), ty);
        BatchType {
            family,
            ty: ty.to_string(),
            cur: ctx.state.cursor(&key),
            key,
        }
    }

    fn start_date(&self, ctx: &SourceCtx) -> String {
        // Date-only granularity; stay an hour inside the retention so the API never refuses it.
        let back = ctx
            .cfg
            .initial_lookback
            .min(RETENTION - Duration::from_secs(3600));
        let t = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(back.as_secs() as i64))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        t.strftime("%Y-%m-%d").to_string()
    }

    async fn list(&self, ctx: &SourceCtx, token: Option<&str>) -> Result<Page, ApiError> {
        let mut q: Vec<(&str, String)> = vec![
            ("type", self.ty.clone()),
            ("pageSize", ctx.cfg.page_size.to_string()),
        ];
        match token {
            Some(t) => q.push(("nextPage", t.to_string())),
            None => q.push(("dateRangeStartsAt", self.start_date(ctx))),
        }
        let v = ctx
            .client
            .get_json(
                &format!("batch listing for type '{}'", self.ty),
                self.family.batch_path(),
                &q,
            )
            .await?;
        parse_page(&v)
    }

    fn commit(&self, cur: &Cursor) -> Commit {
        self.commit_at(cur, cur.file)
    }

    /// The position inside file `file`, `cur.line` lines in.
    fn commit_at(&self, cur: &Cursor, file: usize) -> Commit {
        Commit {
            key: self.key.clone(),
            cursor: cur.encode_at(file),
        }
    }

    /// One page. Whatever way it ends, what was encoded is sent with the position reached, so
    /// the in-memory cursor never runs ahead of the records handed over.
    async fn poll_once(&self, ctx: &Arc<SourceCtx>, cur: &mut Cursor) -> Result<Outcome, Stop> {
        let mut em = Emitter::new(
            ctx,
            self.family.source(),
            crate::schema::Records::Siem,
            TimeField::EpochMillis("timestamp"),
        )
        .metrics_key(&self.key);
        let result = self.poll_page(ctx, cur, &mut em).await;
        em.mark(self.commit(cur));
        em.send().await?;
        result
    }

    async fn poll_page(
        &self,
        ctx: &Arc<SourceCtx>,
        cur: &mut Cursor,
        em: &mut Emitter<'_>,
    ) -> Result<Outcome, Stop> {
        let page = self.list(ctx, cur.list_token.as_deref()).await?;
        let pending = page.files.len().saturating_sub(cur.file) as u64;
        ctx.metrics.progress(&self.key, false, pending);
        let mut ahead = Ahead::new(ctx, cur.file);
        for i in cur.file..page.files.len() {
            let Some(file) = page.files.get(i) else { break };
            ahead.fill(&page, i, &cur.recent);
            let path = object_path(&file.url).to_string();
            let id = path_hash(&path);
            if cur.recent.contains(&id) {
                ctx.log.debug(format_args!(
                    "{}: {path} was listed again; already delivered, skipped",
                    self.key
                ));
            } else {
                let early = ahead.take(i).await;
                self.deliver_file(ctx, cur, i, &file.url, early, em).await?;
                cur.recent.push_back(id);
                if cur.recent.len() > RECENT_FILES {
                    cur.recent.pop_front();
                }
            }
            cur.file = i + 1;
            cur.line = 0;
            em.send_due_at(|| self.commit(cur)).await?;
        }
        let stuck = page.next.is_some() && page.next == cur.list_token;
        if stuck && !page.caught_up {
            ctx.log.problem(
                &format!("{}/stuck", self.key),
                Level::Warn,
                format_args!("{}: the API returned the same page token again; waiting poll_interval instead of looping", self.key),
            );
            return Ok(Outcome::CaughtUp);
        }
        if let Some(next) = page.next.filter(|n| Some(n) != cur.list_token.as_ref()) {
            *cur = Cursor {
                list_token: Some(next),
                file: 0,
                line: 0,
                recent: std::mem::take(&mut cur.recent),
            };
            em.mark(self.commit(cur));
        }
        Ok(if page.caught_up || page.files.is_empty() {
            Outcome::CaughtUp
        } else {
            Outcome::More
        })
    }

    /// Delivers one file from `cur.line` on, retrying, re-listing when its URL expired, and
    /// reporting it as an error record if it cannot be read.
    async fn deliver_file(
        &self,
        ctx: &SourceCtx,
        cur: &mut Cursor,
        index: usize,
        url: &str,
        mut early: Option<Fetched>,
        em: &mut Emitter<'_>,
    ) -> Result<(), Stop> {
        let mut url = url.to_string();
        let mut attempt = 0;
        // Downloads that arrived but were not valid gzip: one more is tried, however many
        // transient failures came before (they say nothing about the file itself).
        let mut corrupt = 0;
        loop {
            let outcome = match early.take() {
                Some(Fetched::Body(body, _permit)) => {
                    self.download(ctx, cur, index, &url, Some(body), em).await?
                }
                Some(Fetched::Failed(e)) => Err(e),
                Some(Fetched::Oversize) | None => {
                    self.download(ctx, cur, index, &url, None, em).await?
                }
            };
            let err = match outcome {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            attempt += 1;
            if matches!(err, FileError::Corrupt(_)) {
                corrupt += 1;
            }
            let path = object_path(&url).to_string();
            match err {
                FileError::Expired(status) if attempt < FILE_ATTEMPTS => {
                    ctx.log.info(format_args!("{}: batch file {path} answered HTTP {status} (URL expired); listing the page again for a fresh URL", self.key));
                    match self.relist(ctx, cur, index, &path).await? {
                        Some(fresh) => url = fresh,
                        None => {
                            self.vanished(ctx, &path, em);
                            return Ok(());
                        }
                    }
                }
                FileError::Transient(m) if attempt < FILE_ATTEMPTS => {
                    // The same failure for files of several types is one cause, one line.
                    ctx.log.failure(
                        &format!("download|{m}"),
                        Scope::Stream(&self.key),
                        Level::Warn,
                        format_args!("downloading batch files failed ({m}; first {}: {path})", self.key),
                        format_args!("retrying; a file is tried up to {FILE_ATTEMPTS} times, from the third with a fresh URL, then reported as an error record"),
                    );
                    tokio::time::sleep(ctx.client.backoff.delay(attempt)).await;
                    if attempt >= 2 {
                        // Retried already: the URL itself may be the problem; take a fresh one.
                        match self.relist(ctx, cur, index, &path).await? {
                            Some(fresh) => url = fresh,
                            None => {
                                self.vanished(ctx, &path, em);
                                return Ok(());
                            }
                        }
                    }
                }
                FileError::Corrupt(m) if corrupt < 2 => {
                    ctx.log.warn(format_args!(
                        "{}: batch file {path} is not valid gzip ({m}); downloading it once more",
                        self.key
                    ));
                }
                other => {
                    let why = match other {
                        FileError::Expired(s) => format!("HTTP {s} even after re-listing"),
                        FileError::Transient(m) | FileError::Corrupt(m) => m,
                    };
                    let reason = format!(
                        "batch file {path} could not be read after {attempt} attempts ({why}); {} of its lines were delivered, the rest are skipped",
                        cur.line
                    );
                    ctx.log.error(format_args!("{}: {reason}", self.key));
                    em.error(
                        &reason,
                        b"",
                        &[("mimecast_file", &path), ("type", &self.ty)],
                    );
                    return Ok(());
                }
            }
        }
    }

    /// Lists the current page again and returns a fresh URL for the file at `index`, or None if
    /// the page no longer holds it.
    async fn relist(
        &self,
        ctx: &SourceCtx,
        cur: &Cursor,
        index: usize,
        path: &str,
    ) -> Result<Option<String>, Stop> {
        let page = self.list(ctx, cur.list_token.as_deref()).await?;
        Ok(page
            .files
            .get(index)
            .filter(|f| object_path(&f.url) == path)
            .map(|f| f.url.clone()))
    }

    /// Reports a file that is no longer listed (past retention): its rest is lost at the source.
    fn vanished(&self, ctx: &SourceCtx, path: &str, em: &mut Emitter<'_>) {
        let reason = format!("batch file {path} is no longer listed (past retention?); its undelivered lines are lost at the source");
        ctx.log.error(format_args!("{}: {reason}", self.key));
        em.error(&reason, b"", &[("mimecast_file", path), ("type", &self.ty)]);
    }

    /// One download attempt, or the decoding of a file downloaded ahead (`fetched`). Lines
    /// before `cur.line` were delivered already and are skipped; `cur.line` advances with every
    /// line encoded.
    async fn download(
        &self,
        ctx: &SourceCtx,
        cur: &mut Cursor,
        index: usize,
        url: &str,
        fetched: Option<bytes::Bytes>,
        em: &mut Emitter<'_>,
    ) -> Result<Result<(), FileError>, Stop> {
        let mut body = match fetched {
            Some(b) => Body::Fetched(Some(b)),
            None => match open(ctx, url).await {
                Ok(b) => b,
                Err(e) => return Ok(Err(e)),
            },
        };
        let path = object_path(url).to_string();
        let mut sink = LineSink {
            em,
            path: &path,
            ty: &self.ty,
            skip: cur.line,
            line_no: 0,
        };
        let mut gz = GzLines::new();
        loop {
            let chunk = match body.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    cur.line = sink.done();
                    return Ok(Err(FileError::Transient(e)));
                }
            };
            // One network chunk can inflate to megabytes: hand records over as the buffer
            // fills, piece by piece, so a source never holds more than about one chunk.
            for piece in chunk.chunks(16 << 10) {
                if let Err(e) = gz.feed(piece, &mut |l| sink.line(l)) {
                    cur.line = sink.done();
                    return Ok(Err(FileError::Corrupt(e.to_string())));
                }
                if sink.em.full() {
                    cur.line = sink.done();
                    sink.em.send_due_at(|| self.commit_at(cur, index)).await?;
                }
            }
            cur.line = sink.done();
            sink.em.send_due_at(|| self.commit_at(cur, index)).await?;
        }
        if let Err(e) = gz.finish(&mut |l| sink.line(l)) {
            cur.line = sink.done();
            return Ok(Err(FileError::Corrupt(e.to_string())));
        }
        cur.line = sink.done();
        Ok(Ok(()))
    }
}

impl Stream for BatchType {
    fn key(&self) -> &str {
        &self.key
    }

    fn poll<'a>(&'a mut self, ctx: &'a Arc<SourceCtx>) -> BoxFuture<'a, Result<Outcome, Stop>> {
        Box::pin(async move {
            let mut cur = std::mem::take(&mut self.cur);
            let result = self.poll_once(ctx, &mut cur).await;
            self.cur = cur;
            result
        })
    }

    fn explain(&self, e: &ApiError) -> String {
        format!("{} ({}): {e}", self.key, self.family.batch_path())
    }
}

/// The probe of a family in batch mode: list one file of its first type; with `sample`, the
/// first record of that file, fetched as the plugin fetches it.
pub async fn probe(
    client: &Client,
    family: Family,
    types: &[String],
    sample: bool,
) -> Result<super::Found, ProbeFailure> {
    let q = [
        ("type", types.first().cloned().unwrap_or_default()),
        ("pageSize", "1".to_string()),
    ];
    let source = family.source();
    let v = client
        .get_json(&format!("{source} check"), family.batch_path(), &q)
        .await?;
    // A batch listing names files by pre-signed URL: the entry itself is never shown.
    let url = v.pointer("/value/0/url").and_then(Value::as_str);
    Ok(match (url, sample) {
        (Some(url), true) => super::Found {
            any: true,
            sample: first_record_of_file(client, source, url).await?,
        },
        (url, _) => super::Found {
            any: url.is_some(),
            sample: None,
        },
    })
}

/// The first record of a batch file, fetched as the plugin fetches it: a plain GET of the
/// pre-signed URL without the bearer token, gunzipped and split by the plugin's own decoder.
/// Only as much of the file is read as that record needs. Messages name the file by its path;
/// the URL's query (the signature) appears nowhere.
async fn first_record_of_file(
    client: &Client,
    source: &str,
    url: &str,
) -> Result<Option<Value>, ProbeFailure> {
    let path = object_path(url);
    let network = |e: &reqwest::Error| {
        let m = transport_error(&format!("batch file {path}"), e).to_string();
        ProbeFailure::Other(
            Verdict::Network,
            format!(
                "{source}: listing works, but downloading a batch file failed: {m}; the plugin downloads batch files from the host the listing names (through proxy, if set), so it must be reachable from here"
            )
            .replace(url, path),
        )
    };
    let mut resp = client.download(url).await.map_err(|e| network(&e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(ProbeFailure::Other(
            Verdict::Failed,
            format!("{source}: listing works, but batch file {path} answered HTTP {status}; the plugin downloads batch files without the bearer token from the pre-signed URL of the listing, so check that nothing on the way (proxy, firewall) alters or blocks those requests"),
        ));
    }
    let corrupt = |e: std::io::Error| {
        ProbeFailure::Other(
            Verdict::Failed,
            format!("{source}: listing works, but batch file {path} is not valid gzip ({e})"),
        )
    };
    fn keep_first(first: &mut Option<Vec<u8>>, line: Line) {
        if let (None, Line::Json(b)) = (&first, line) {
            *first = Some(b.to_vec());
        }
    }
    let mut gz = GzLines::new();
    let mut first: Option<Vec<u8>> = None;
    while first.is_none() {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                for piece in chunk.chunks(16 << 10) {
                    gz.feed(piece, &mut |l| keep_first(&mut first, l))
                        .map_err(corrupt)?;
                    if first.is_some() {
                        break;
                    }
                }
            }
            Ok(None) => {
                gz.finish(&mut |l| keep_first(&mut first, l))
                    .map_err(corrupt)?;
                break;
            }
            Err(e) => return Err(network(&e)),
        }
    }
    match first {
        None => Ok(None),
        Some(line) => serde_json::from_slice(&line).map(Some).map_err(|e| {
            ProbeFailure::Other(
                Verdict::Failed,
                format!("{source}: the first line of batch file {path} is not JSON ({e})"),
            )
        }),
    }
}

/// A batch file's bytes: arriving from the network, or downloaded ahead.
enum Body {
    Live(reqwest::Response),
    Fetched(Option<bytes::Bytes>),
}

impl Body {
    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, String> {
        match self {
            Body::Live(r) => r.chunk().await.map_err(|e| describe(&e)),
            Body::Fetched(b) => Ok(b.take()),
        }
    }
}

/// Turns a file's lines into records, skipping those delivered before.
struct LineSink<'a, 'b> {
    em: &'a mut Emitter<'b>,
    path: &'a str,
    ty: &'a str,
    skip: u64,
    line_no: u64,
}

impl LineSink<'_, '_> {
    fn line(&mut self, l: Line) {
        self.line_no += 1;
        if self.line_no <= self.skip {
            return;
        }
        let fields: [(&str, &str); 2] = [("mimecast_file", self.path), ("type", self.ty)];
        match l {
            Line::Json(b) => self.em.record(b, &fields),
            Line::TooLong(start) => self.em.error("line longer than 8 MiB", start, &fields),
        }
    }

    /// Lines of the file delivered so far (encoded now or in an earlier attempt).
    fn done(&self) -> u64 {
        self.line_no.max(self.skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_with_its_remembered_files() {
        let cur = Cursor {
            list_token: Some("tok==".into()),
            file: 3,
            line: 17,
            recent: [0u64, 1, u64::MAX, path_hash("/bucket/a.gz")]
                .into_iter()
                .collect(),
        };
        assert_eq!(Cursor::decode(&cur.encode()), Some(cur.clone()));
        let at = Cursor::decode(&cur.encode_at(1)).unwrap();
        assert_eq!((at.file, at.line, at.recent.len()), (1, 17, 4));
        // A position written before the ring was kept still loads.
        let old = r#"{"v":1,"list_token":null,"file":2,"line":5}"#;
        let c = Cursor::decode(old).unwrap();
        assert_eq!((c.file, c.line, c.recent.len()), (2, 5, 0));
        // A damaged ring loses only what cannot be read.
        let bad = r#"{"v":1,"list_token":null,"file":0,"line":0,"recent":"zz000000000000000000000000000001"}"#;
        assert_eq!(Cursor::decode(bad).unwrap().recent, VecDeque::from([1u64]));
    }
}
