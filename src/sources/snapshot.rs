//! Held messages (list and summary) and dashboard notifications: snapshots of current state,
//! not logs. Every poll emits the whole current state; each record carries
//! `mimecast_snapshot` (the snapshot's time, the same for all records of one poll), and its
//! event time is that snapshot time.

use super::api_logs::{explain, now_ms};
use super::emit::Emitter;
use crate::collect::SourceCtx;
use crate::encode::TimeField;
use crate::mimecast::client::{paged_body, ApiError};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const SNAPSHOT_FIELD: &str = "mimecast_snapshot";

pub struct SnapshotSpec {
    pub source: &'static str,
    pub path: &'static str,
    pub permission: Option<&'static str>,
    paged: bool,
}

pub static SNAPSHOTS: &[SnapshotSpec] = &[
    SnapshotSpec {
        source: "hold_list",
        path: "/api/gateway/get-hold-message-list",
        permission: None,
        paged: true,
    },
    SnapshotSpec {
        source: "hold_summary",
        path: "/api/gateway/get-hold-summary-list",
        permission: None,
        paged: false,
    },
    SnapshotSpec {
        source: "dashboard",
        path: "/api/account/get-dashboard-notifications",
        permission: Some("Account | Dashboard | Read"),
        paged: false,
    },
];

pub fn spec(source: &str) -> Option<&'static SnapshotSpec> {
    SNAPSHOTS.iter().find(|s| s.source == source)
}

/// The items of one answer: `data[]`, or for notifications `data[0].notifications` (an array,
/// or one object as the documentation's sample shows).
fn items(v: &Value, source: &str) -> Vec<Value> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if source != "dashboard" {
        return data;
    }
    data.iter()
        .filter_map(|d| d.get("notifications"))
        .flat_map(|n| match n {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        })
        .collect()
}

pub async fn run(spec: &'static SnapshotSpec, ctx: Arc<SourceCtx>) {
    loop {
        let result = take(spec, &ctx).await;
        match &result {
            Ok(Some(_)) | Ok(None) => ctx.log.stream_ok(spec.source),
            Err(e) => {
                super::report_failure(
                    &ctx,
                    spec.source,
                    e,
                    explain(e, spec.source, spec.permission),
                );
            }
        }
        if matches!(result, Ok(None)) {
            return; // the instance is stopping
        }
        super::pause(ctx.cfg.poll_interval.max(Duration::from_secs(1))).await;
    }
}

/// One snapshot. Ok(None) when the instance is stopping.
async fn take(spec: &'static SnapshotSpec, ctx: &SourceCtx) -> Result<Option<usize>, ApiError> {
    let snapshot = jiff::Timestamp::from_millisecond(now_ms())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let what = format!("{} {}", spec.source, spec.path);
    let mut all: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let body = if spec.paged {
            paged_body(
                ctx.cfg.page_size,
                token.as_deref(),
                json!([{"admin": true}]),
            )
        } else {
            json!({"data": []})
        };
        let v = ctx.client.post_api(&what, spec.path, &body).await?;
        let page = items(&v, spec.source);
        let next = v
            .pointer("/meta/pagination/next")
            .and_then(Value::as_str)
            .map(str::to_string);
        let empty = page.is_empty();
        all.extend(page);
        match next {
            Some(n) if spec.paged && !empty && Some(&n) != token.as_ref() => token = Some(n),
            _ => break,
        }
    }
    // Emitted only once complete: a snapshot is all of the state or nothing.
    let mut em = Emitter::new(ctx, spec.source, TimeField::Now);
    for item in &all {
        em.record_with(
            &serde_json::to_vec(item).unwrap_or_default(),
            &[(SNAPSHOT_FIELD, &snapshot)],
        );
        if em.send_due().await.is_err() {
            return Ok(None);
        }
    }
    if em.send().await.is_err() {
        return Ok(None);
    }
    Ok(Some(all.len()))
}
