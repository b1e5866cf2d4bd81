//! The log sources an instance pulls, each in its own module.

pub mod api_logs;
pub mod emit;
pub mod gzlines;
pub mod siem_batch;
pub mod siem_stream;
pub mod snapshot;
pub mod threat_intel;

use crate::collect::SourceCtx;
use crate::config::SiemMode;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why a source's poll ended early: the instance is stopping, or the API failed.
pub(crate) enum Stop {
    Closed,
    Api(crate::mimecast::client::ApiError),
}

impl From<emit::Closed> for Stop {
    fn from(_: emit::Closed) -> Self {
        Stop::Closed
    }
}

impl From<crate::mimecast::client::ApiError> for Stop {
    fn from(e: crate::mimecast::client::ApiError) -> Self {
        Stop::Api(e)
    }
}

/// Runs every selected source until the future is dropped.
pub async fn run_all(ctx: Arc<SourceCtx>) {
    if ctx.cfg.startup_check {
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
    let mut tasks: Vec<Task> = Vec::new();
    for source in ctx.cfg.sources.clone() {
        let siem = match source.as_str() {
            "siem_cg" => Some((siem_batch::Family::Cg, ctx.cfg.siem_types.clone())),
            "siem_ci" => Some((siem_batch::Family::Ci, ctx.cfg.siem_ci_types.clone())),
            _ => None,
        };
        if let Some((family, types)) = siem {
            match ctx.cfg.siem_mode {
                SiemMode::Batch => {
                    for ty in types {
                        tasks.push(Box::pin(
                            siem_batch::BatchType::new(family, &ty).run(ctx.clone()),
                        ));
                    }
                }
                SiemMode::Stream => {
                    tasks.push(Box::pin(siem_stream::run(family, types, ctx.clone())))
                }
            }
        } else if let Some(spec) = api_logs::spec(&source) {
            tasks.push(Box::pin(api_logs::run(spec, ctx.clone())));
        } else if let Some(spec) = snapshot::spec(&source) {
            tasks.push(Box::pin(snapshot::run(spec, ctx.clone())));
        } else if source == "threat_intel" {
            for feed in ctx.cfg.threat_intel_feeds.clone() {
                let feed: &'static str = crate::config::THREAT_FEEDS
                    .iter()
                    .copied()
                    .find(|f| *f == feed)
                    .unwrap_or("malware_customer");
                tasks.push(Box::pin(threat_intel::run(feed, ctx.clone())));
            }
        } else {
            ctx.log.error(format_args!(
                "source '{source}' is not implemented in this build"
            ));
        }
    }
    ctx.log.info(format_args!(
        "collecting {} from {} ({} streams)",
        ctx.cfg.sources.join(", "),
        ctx.cfg.base_url,
        tasks.len()
    ));
    futures_util::future::join_all(tasks).await;
}

/// A source's poll failed: count it, log it once per cause (a warning if it will pass, an
/// error if it needs the operator), and say how long to wait before trying again.
pub(crate) fn report_failure(
    ctx: &SourceCtx,
    key: &str,
    e: &crate::mimecast::client::ApiError,
    message: impl std::fmt::Display,
) -> Duration {
    ctx.client.metrics.error(e.kind());
    let level = if e.is_retryable() {
        crate::log::Level::Warn
    } else {
        crate::log::Level::Error
    };
    ctx.log.problem(key, level, message);
    if e.is_retryable() {
        ctx.cfg.poll_interval.min(Duration::from_secs(60))
    } else {
        ctx.cfg.poll_interval
    }
}

/// Sleeps, in a way the shutdown can interrupt (the whole future is dropped on stop).
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await
}
