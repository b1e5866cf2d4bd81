//! The log sources an instance pulls, each in its own module.

pub mod emit;
pub mod gzlines;
pub mod siem_batch;

use crate::collect::SourceCtx;
use crate::config::SiemMode;
use std::sync::Arc;
use std::time::Duration;

/// Runs every selected source until the future is dropped.
pub async fn run_all(ctx: Arc<SourceCtx>) {
    let mut tasks: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
        Vec::new();
    for source in ctx.cfg.sources.clone() {
        let (family, types) = match source.as_str() {
            "siem_cg" => (siem_batch::Family::Cg, ctx.cfg.siem_types.clone()),
            "siem_ci" => (siem_batch::Family::Ci, ctx.cfg.siem_ci_types.clone()),
            other => {
                ctx.log.error(format_args!(
                    "source '{other}' is not implemented in this build"
                ));
                continue;
            }
        };
        if ctx.cfg.siem_mode == SiemMode::Stream {
            ctx.log
                .error("siem_mode stream is not implemented in this build; use siem_mode batch");
            continue;
        }
        for ty in types {
            tasks.push(Box::pin(
                siem_batch::BatchType::new(family, &ty).run(ctx.clone()),
            ));
        }
    }
    ctx.log.info(format_args!(
        "collecting {} from {} ({} SIEM type streams)",
        ctx.cfg.sources.join(", "),
        ctx.cfg.base_url,
        tasks.len()
    ));
    futures_util::future::join_all(tasks).await;
}

/// Sleeps, in a way the shutdown can interrupt (the whole future is dropped on stop).
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await
}
