//! The log sources, their contract, and the one runner that drives them.
//!
//! A source (a `sources` value such as `audit` or `siem_cg`) implements [`Source`]: its name,
//! its permission, the streams it pulls under a configuration, and its probe (the smallest
//! request that shows whether it works, for `mimecast-check` and `startup_check`). A stream
//! implements [`Stream`]: one poll from its saved position. [`run_all`] runs every stream of an
//! instance with the same loop: poll, report success or failure once per cause, wait.
//!
//! Adding a source: a module here that implements the two traits, and one line in
//! [`REGISTRY`]. Nothing else in the plugin names sources.

pub mod api_logs;
pub mod awareness;
pub mod context;
pub mod email_queues;
pub mod emit;
pub mod gzlines;
pub mod siem;
pub mod siem_batch;
pub mod siem_stream;
pub mod snapshot;
pub mod threat_intel;

use crate::config::Config;
use crate::mimecast::client::{ApiError, Client};
use context::SourceCtx;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Every source this build can collect, in the order the documentation lists them.
pub static REGISTRY: &[&dyn Source] = &[
    &siem::CG,
    &siem::CI,
    &api_logs::TTP_URL,
    &api_logs::TTP_ATTACHMENT,
    &api_logs::TTP_IMPERSONATION,
    &api_logs::AUDIT,
    &api_logs::DLP,
    &api_logs::HELD_RELEASE,
    &api_logs::ARCHIVE_SEARCH,
    &api_logs::SEARCH_LOGS,
    &api_logs::ARCHIVE_VIEW,
    &api_logs::REJECTIONS,
    &api_logs::REMEDIATION,
    &snapshot::HOLD_LIST,
    &snapshot::HOLD_SUMMARY,
    &threat_intel::THREAT_INTEL,
    &snapshot::DASHBOARD,
    &email_queues::EMAIL_QUEUES,
    &awareness::PERFORMANCE,
    &awareness::WATCHLIST,
    &awareness::SAFE_SCORE,
    &awareness::CAMPAIGNS,
    &awareness::CAMPAIGN_USERS,
];

/// The source a `sources` value names.
pub fn lookup(name: &str) -> Option<&'static dyn Source> {
    REGISTRY.iter().copied().find(|s| s.name() == name)
}

/// The names of every source, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|s| s.name())
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A log source: one `sources` value.
pub trait Source: Sync {
    /// The `sources` value, also the `mimecast_source` of its records.
    fn name(&self) -> &'static str;

    /// The Mimecast API permission it needs, where documented (named in 403 reports).
    fn permission(&self) -> Option<&'static str>;

    /// What kind of records it delivers, for the `ecs` and `ocsf` schemas' mappings.
    fn records(&self) -> crate::schema::Records;

    /// What it collects under `cfg`, for naming the state file (`siem_cg:receipt,av`).
    fn selection(&self, _cfg: &Config) -> String {
        self.name().to_string()
    }

    /// The streams it pulls, each with its own saved position.
    fn streams(&'static self, ctx: &SourceCtx) -> Vec<Box<dyn Stream>>;

    /// The smallest request showing whether it works: records available or not, and with
    /// `sample`, its first record.
    fn probe<'a>(
        &'static self,
        client: &'a Client,
        cfg: &'a Config,
        sample: bool,
    ) -> BoxFuture<'a, Result<Found, ProbeFailure>>;
}

/// One stream of records with one saved position (a cursor under [`Stream::key`]).
pub trait Stream: Send {
    /// Its name in the state file, the metrics and the log: `audit`, `siem_cg/receipt`.
    fn key(&self) -> &str;

    /// One poll from the position reached so far. Whatever way it ends, what was read has
    /// been sent with the position it completes.
    fn poll<'a>(&'a mut self, ctx: &'a Arc<SourceCtx>) -> BoxFuture<'a, Result<Outcome, Stop>>;

    /// The log line for a failed poll: what failed and what to do.
    fn explain(&self, e: &ApiError) -> String;
}

/// How a poll ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// More is waiting: poll again at once.
    More,
    /// Nothing was read and nothing failed that the log should hear of (the stream reset
    /// its own position and said why): poll again at once.
    Again,
    /// Caught up with the API (reported in the stream's figures): poll again after
    /// `poll_interval`.
    CaughtUp,
    /// A complete poll of a source that has no backlog to catch up with (snapshots, feeds):
    /// poll again after `poll_interval`.
    Polled,
}

/// Why a poll ended early: the instance is stopping, or the API failed.
#[derive(Debug)]
pub enum Stop {
    Closed,
    Api(ApiError),
}

impl From<crate::handoff::Closed> for Stop {
    fn from(_: crate::handoff::Closed) -> Self {
        Stop::Closed
    }
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Api(e)
    }
}

/// What a probe found.
pub struct Found {
    /// The source has something to collect (records, or batch files listed).
    pub any: bool,
    /// A decoded record, when a sample was asked for and one came back.
    pub sample: Option<Value>,
}

impl Found {
    /// From the first record of an answer, keeping it only if a sample was asked for.
    pub fn first(record: Option<Value>, sample: bool) -> Found {
        Found {
            any: record.is_some(),
            sample: record.filter(|_| sample),
        }
    }
}

/// The verdict of a probe, as `mimecast-check` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    AuthFailed,
    MissingPermission,
    NotLicensed,
    RateLimited,
    Network,
    Failed,
}

/// Why a probe failed: the API's answer, or a later step with its own verdict (a SIEM batch
/// file download).
pub enum ProbeFailure {
    Api(ApiError),
    Other(Verdict, String),
}

impl From<ApiError> for ProbeFailure {
    fn from(e: ApiError) -> Self {
        ProbeFailure::Api(e)
    }
}

/// A stream's key below its source: `siem_cg/receipt`, `threat_intel/malware_grid`.
pub fn stream_key(source: &str, part: &str) -> String {
    format!("{source}/{part}")
}

/// A failure's message with the permission a 403 needs or the licence hint of a 404.
pub fn explain(e: &ApiError, what: &str, permission: Option<&str>) -> String {
    match (e, permission) {
        (ApiError::Forbidden { .. }, Some(p)) => {
            format!("{what}: {e}; it needs the permission '{p}'")
        }
        (ApiError::Forbidden { .. }, None) => {
            format!("{what}: {e}; see Mimecast's documentation of this endpoint for the permission")
        }
        (ApiError::NotFound { .. }, _) => {
            format!("{what}: {e}; if your tenant lacks this product, remove '{what}' from sources")
        }
        _ => format!("{what}: {e}"),
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A time as the `/api/...` endpoints take it: `2024-11-17T20:16:00+0000`.
pub fn fmt_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S+0000").to_string())
        .unwrap_or_default()
}

/// Runs every stream of every selected source until the future is dropped.
pub async fn run_all(ctx: Arc<SourceCtx>) {
    let streams: Vec<Box<dyn Stream>> = ctx
        .cfg
        .sources
        .iter()
        .flat_map(|s| s.streams(&ctx))
        .collect();
    ctx.log.info(format_args!(
        "fluent-bit-mimecast {}: collecting {} from {} ({} streams)",
        crate::VERSION,
        ctx.cfg.source_names().join(", "),
        ctx.cfg.base_url,
        streams.len()
    ));
    ctx.log
        .set_streams(streams.iter().map(|s| s.key().to_string()).collect());
    let mut running: Vec<BoxFuture<'static, ()>> = streams
        .into_iter()
        .map(|s| -> BoxFuture<'static, ()> {
            let name = s.key().to_string();
            Box::pin(crate::log::in_stream(&name, run_stream(s, ctx.clone())))
        })
        .collect();
    // Problems that some streams met are written once the others had their chance to meet
    // them too, so that one line names them all.
    let log = ctx.log.clone();
    running.push(Box::pin(async move {
        loop {
            tokio::time::sleep(crate::log::TICK).await;
            log.tick();
        }
    }));
    futures_util::future::join_all(running).await;
}

/// The loop of one stream: poll, then report and wait as the outcome says.
async fn run_stream(mut stream: Box<dyn Stream>, ctx: Arc<SourceCtx>) {
    loop {
        let result = stream.poll(&ctx).await;
        let key = stream.key();
        let wait = match result {
            Ok(Outcome::More) => {
                ctx.log.stream_ok(key);
                continue;
            }
            Ok(Outcome::Again) => continue,
            Ok(Outcome::CaughtUp) => {
                ctx.metrics.progress(key, true, 0);
                ctx.log.stream_ok(key);
                ctx.cfg.poll_interval
            }
            Ok(Outcome::Polled) => {
                ctx.log.stream_ok(key);
                ctx.cfg.poll_interval
            }
            Err(Stop::Closed) => return,
            Err(Stop::Api(e)) => report_failure(&ctx, key, &e, stream.explain(&e)),
        };
        tokio::time::sleep(wait).await;
    }
}

/// A stream's poll failed: count it, log it once per cause for all the streams it hits (a
/// warning if it will pass, an error if it needs the operator), and say how long to wait
/// before trying again. Failures of the token, the network and the server were logged by the
/// client when they happened; the others are one cause when their messages differ only in the
/// stream's name.
fn report_failure(ctx: &SourceCtx, stream: &str, e: &ApiError, message: String) -> Duration {
    ctx.metrics.error(e.kind());
    let level = if e.is_retryable() {
        crate::log::Level::Warn
    } else {
        crate::log::Level::Error
    };
    if !ctx.client.logged(e) {
        let key = format!("{}|{}", e.kind(), modulo_stream(&message, stream));
        ctx.log
            .failure(&key, crate::log::Scope::Stream(stream), level, message, "");
    }
    if e.is_retryable() {
        ctx.cfg.poll_interval.min(Duration::from_secs(60))
    } else {
        ctx.cfg.poll_interval
    }
}

/// `message` without what names `stream`: its name, and its type where quoted
/// (`'receipt'` of `siem_cg/receipt`).
fn modulo_stream(message: &str, stream: &str) -> String {
    let mut m = message.replace(stream, "<stream>");
    if let Some((_, ty)) = stream.rsplit_once('/') {
        m = m.replace(&format!("'{ty}'"), "'<type>'");
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_two_streams_are_one_cause_modulo_their_names() {
        let a = modulo_stream(
            "siem_cg/receipt (/siem/v1/batch/events/cg): HTTP 403 Forbidden (batch listing for type 'receipt': no)",
            "siem_cg/receipt",
        );
        let b = modulo_stream(
            "siem_cg/av (/siem/v1/batch/events/cg): HTTP 403 Forbidden (batch listing for type 'av': no)",
            "siem_cg/av",
        );
        assert_eq!(a, b);
        assert!(!a.contains("av") && !a.contains("receipt"), "{a}");
        // A type's name inside other words is left alone.
        assert_eq!(
            modulo_stream("siem_cg/av: not available", "siem_cg/av"),
            "<stream>: not available"
        );
        assert_ne!(
            modulo_stream("audit: HTTP 403", "audit"),
            modulo_stream("dlp: HTTP 404", "dlp")
        );
    }

    #[test]
    fn the_registry_names_each_source_once() {
        let mut names: Vec<_> = names().collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "a name registered twice");
        for name in &names {
            assert_eq!(lookup(name).map(|s| s.name()), Some(*name));
        }
        assert!(lookup("nope").is_none());
        assert_eq!(fmt_time(1_731_874_560_000), "2024-11-17T20:16:00+0000");
    }
}
