//! Held messages (list and summary) and dashboard notifications: snapshots of current state,
//! not logs. Every poll emits the whole current state; each record carries
//! `mimecast_snapshot` (the snapshot's time, the same for all records of one poll), and its
//! event time is that snapshot time.

use super::context::SourceCtx;
use super::emit::Emitter;
use super::{explain, now_ms, BoxFuture, Found, Outcome, ProbeFailure, Source, Stop, Stream};
use crate::config::Config;
use crate::encode::TimeField;
use crate::mimecast::client::{paged_body, ApiError, Client};
use serde_json::{json, Value};
use std::sync::Arc;

pub const SNAPSHOT_FIELD: &str = "mimecast_snapshot";

pub struct SnapshotSpec {
    pub source: &'static str,
    pub path: &'static str,
    pub permission: Option<&'static str>,
    /// Paged with `meta.pagination`; the request's `data[0]`.
    paged: Option<fn() -> Value>,
    /// Where the items of an answer are: `data[]`, or one level down in each `data[]` entry
    /// (an array, or a single object).
    nest: Option<&'static str>,
}

pub static HOLD_LIST: SnapshotSpec = SnapshotSpec {
    source: "hold_list",
    path: "/api/gateway/get-hold-message-list",
    permission: None,
    paged: Some(|| json!({"admin": true})),
    nest: None,
};

pub static HOLD_SUMMARY: SnapshotSpec = SnapshotSpec {
    source: "hold_summary",
    path: "/api/gateway/get-hold-summary-list",
    permission: None,
    paged: None,
    nest: None,
};

pub static DASHBOARD: SnapshotSpec = SnapshotSpec {
    source: "dashboard",
    path: "/api/account/get-dashboard-notifications",
    permission: Some("Account | Dashboard | Read"),
    paged: None,
    nest: Some("notifications"),
};

impl SnapshotSpec {
    /// The request for one page.
    fn body(&self, page_size: u32, token: Option<&str>) -> Value {
        match self.paged {
            Some(data0) => paged_body(page_size, token, json!([data0()])),
            None => json!({"data": []}),
        }
    }
}

impl Source for SnapshotSpec {
    fn name(&self) -> &'static str {
        self.source
    }

    fn permission(&self) -> Option<&'static str> {
        self.permission
    }

    fn streams(&'static self, _ctx: &SourceCtx) -> Vec<Box<dyn Stream>> {
        vec![Box::new(SnapshotStream { spec: self })]
    }

    /// The first item of the current state.
    fn probe<'a>(
        &'static self,
        client: &'a Client,
        _cfg: &'a Config,
        sample: bool,
    ) -> BoxFuture<'a, Result<Found, ProbeFailure>> {
        Box::pin(async move {
            let body = match self.paged {
                Some(data0) => paged_body(1, None, json!([data0()])),
                None => paged_body(1, None, json!([])),
            };
            let v = client
                .post_api(&format!("{} check", self.source), self.path, &body)
                .await?;
            Ok(Found::first(
                items(&v, self.nest).into_iter().next(),
                sample,
            ))
        })
    }
}

/// A snapshot source's only stream: no position, every poll is the whole state.
struct SnapshotStream {
    spec: &'static SnapshotSpec,
}

impl Stream for SnapshotStream {
    fn key(&self) -> &str {
        self.spec.source
    }

    fn poll<'a>(&'a mut self, ctx: &'a Arc<SourceCtx>) -> BoxFuture<'a, Result<Outcome, Stop>> {
        Box::pin(async move {
            take(self.spec, ctx).await?;
            Ok(Outcome::Polled)
        })
    }

    fn explain(&self, e: &ApiError) -> String {
        explain(e, self.spec.source, self.spec.permission)
    }
}

/// The items of one answer: `data[]`, or each entry's `nest` (an array, or one object as the
/// documentation's sample of notifications shows).
fn items(v: &Value, nest: Option<&str>) -> Vec<Value> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let Some(nest) = nest else {
        return data.to_vec();
    };
    data.iter()
        .filter_map(|d| d.get(nest))
        .flat_map(|n| match n {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        })
        .collect()
}

/// One snapshot; the number of its records.
async fn take(spec: &'static SnapshotSpec, ctx: &SourceCtx) -> Result<usize, Stop> {
    let snapshot = jiff::Timestamp::from_millisecond(now_ms())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let what = format!("{} {}", spec.source, spec.path);
    let mut all: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let body = spec.body(ctx.cfg.page_size, token.as_deref());
        let v = ctx.client.post_api(&what, spec.path, &body).await?;
        let page = items(&v, spec.nest);
        let next = v
            .pointer("/meta/pagination/next")
            .and_then(Value::as_str)
            .map(str::to_string);
        let empty = page.is_empty();
        all.extend(page);
        match next {
            Some(n) if spec.paged.is_some() && !empty && Some(&n) != token.as_ref() => {
                token = Some(n)
            }
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
        em.send_due().await?;
    }
    em.send().await?;
    Ok(all.len())
}
