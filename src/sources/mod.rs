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
    // Each task pulls one stream, named as in the metrics and in the log.
    let mut tasks: Vec<(String, Task)> = Vec::new();
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
                        let batch = siem_batch::BatchType::new(family, &ty);
                        tasks.push((batch.key().to_string(), Box::pin(batch.run(ctx.clone()))));
                    }
                }
                SiemMode::Stream => tasks.push((
                    siem_stream::key(family),
                    Box::pin(siem_stream::run(family, types, ctx.clone())),
                )),
            }
        } else if let Some(spec) = api_logs::spec(&source) {
            tasks.push((
                spec.source.to_string(),
                Box::pin(api_logs::run(spec, ctx.clone())),
            ));
        } else if let Some(spec) = snapshot::spec(&source) {
            tasks.push((
                spec.source.to_string(),
                Box::pin(snapshot::run(spec, ctx.clone())),
            ));
        } else if source == "threat_intel" {
            for feed in ctx.cfg.threat_intel_feeds.clone() {
                let feed: &'static str = crate::config::THREAT_FEEDS
                    .iter()
                    .copied()
                    .find(|f| *f == feed)
                    .unwrap_or("malware_customer");
                tasks.push((
                    threat_intel::key(feed),
                    Box::pin(threat_intel::run(feed, ctx.clone())),
                ));
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
    ctx.log
        .set_streams(tasks.iter().map(|(name, _)| name.clone()).collect());
    let mut running: Vec<Task> = tasks
        .into_iter()
        .map(|(name, task)| -> Task { Box::pin(crate::log::in_stream(&name, task)) })
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

/// A source's poll failed: count it, log it once per cause for all the streams it hits (a
/// warning if it will pass, an error if it needs the operator), and say how long to wait
/// before trying again. Failures of the token, the network and the server were logged by the
/// client when they happened; the others are one cause when their messages differ only in the
/// stream's name.
pub(crate) fn report_failure(
    ctx: &SourceCtx,
    stream: &str,
    e: &crate::mimecast::client::ApiError,
    message: impl std::fmt::Display,
) -> Duration {
    ctx.client.metrics.error(e.kind());
    let level = if e.is_retryable() {
        crate::log::Level::Warn
    } else {
        crate::log::Level::Error
    };
    if !ctx.client.logged(e) {
        let message = message.to_string();
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

/// Sleeps, in a way the shutdown can interrupt (the whole future is dropped on stop).
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await
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
}
