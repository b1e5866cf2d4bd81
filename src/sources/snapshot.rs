//! Snapshots of current state, not logs: held messages (list and summary), dashboard
//! notifications, and the awareness-training tables (`awareness`). Every snapshot emits the
//! whole current state; each record carries `mimecast_snapshot` (the snapshot's time, the same
//! for all records of one snapshot, which is how a reader tells one snapshot from the next),
//! and its event time is that snapshot time. A source is snapshot every `poll_interval`, or on
//! a slower cadence of its own that is saved, so a restart does not take one early.

use super::context::SourceCtx;
use super::emit::Emitter;
use super::{explain, now_ms, BoxFuture, Found, Outcome, ProbeFailure, Source, Stop, Stream};
use crate::config::Config;
use crate::encode::TimeField;
use crate::handoff::Commit;
use crate::mimecast::client::{paged_body, ApiError, Client};
use crate::schema::Records;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const SNAPSHOT_FIELD: &str = "mimecast_snapshot";

pub struct SnapshotSpec {
    pub source: &'static str,
    pub path: &'static str,
    pub permission: Option<&'static str>,
    /// Paged with `meta.pagination`; the request's `data[0]`.
    pub paged: Option<fn() -> Value>,
    /// Where the items of an answer are: `data[]`, or one level down in each `data[]` entry
    /// (an array, or a single object).
    pub nest: Option<&'static str>,
    /// How often a snapshot is taken: `poll_interval`, or a slower interval of the source's
    /// own (read from the configuration), kept in the state file across restarts.
    pub every: Option<fn(&Config) -> Duration>,
    /// Asked once per item of another snapshot (each phishing campaign), with that item's `id`
    /// as `data[0].id`; each record gets the named fields of that item (added name, its field).
    pub per_item_of: Option<(
        &'static SnapshotSpec,
        &'static [(&'static str, &'static str)],
    )>,
    /// What its records are, for the normalized schemas.
    pub records: Records,
}

/// The defaults of the optional fields.
pub const SNAPSHOT: SnapshotSpec = SnapshotSpec {
    source: "",
    path: "",
    permission: None,
    paged: None,
    nest: None,
    every: None,
    per_item_of: None,
    records: Records::Generic,
};

pub static HOLD_LIST: SnapshotSpec = SnapshotSpec {
    records: Records::HeldMessage,
    source: "hold_list",
    path: "/api/gateway/get-hold-message-list",
    paged: Some(|| json!({"admin": true})),
    ..SNAPSHOT
};

pub static HOLD_SUMMARY: SnapshotSpec = SnapshotSpec {
    records: Records::HoldSummary,
    source: "hold_summary",
    path: "/api/gateway/get-hold-summary-list",
    ..SNAPSHOT
};

pub static DASHBOARD: SnapshotSpec = SnapshotSpec {
    records: Records::DashboardNotification,
    source: "dashboard",
    path: "/api/account/get-dashboard-notifications",
    permission: Some("Account | Dashboard | Read"),
    nest: Some("notifications"),
    ..SNAPSHOT
};

/// When a source with a cadence of its own last completed a snapshot (ms).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Taken {
    pub taken: i64,
}

impl SnapshotSpec {
    /// The request for one page, with `data0` as the request's `data[0]` if given.
    fn body(&self, page_size: u32, token: Option<&str>, data0: Option<&Value>) -> Value {
        match (self.paged, data0) {
            (_, Some(d)) => paged_body(page_size, token, json!([d])),
            (Some(data0), None) => paged_body(page_size, token, json!([data0()])),
            (None, None) => json!({"data": []}),
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

    fn records(&self) -> Records {
        self.records
    }

    fn streams(&'static self, ctx: &SourceCtx) -> Vec<Box<dyn Stream>> {
        let taken = match self.every {
            Some(_) => ctx.state.cursor(self.source),
            None => Taken::default(),
        };
        vec![Box::new(SnapshotStream { spec: self, taken })]
    }

    /// The first item of the current state (of the first parent item's, for a source asked
    /// per item).
    fn probe<'a>(
        &'static self,
        client: &'a Client,
        _cfg: &'a Config,
        sample: bool,
    ) -> BoxFuture<'a, Result<Found, ProbeFailure>> {
        Box::pin(async move {
            let first = |spec: &'static SnapshotSpec, data0: Option<Value>| async move {
                let body = match (spec.paged, data0) {
                    (_, Some(d)) => paged_body(1, None, json!([d])),
                    (Some(data0), None) => paged_body(1, None, json!([data0()])),
                    (None, None) => paged_body(1, None, json!([])),
                };
                let v = client
                    .post_api(&format!("{} check", self.source), spec.path, &body)
                    .await?;
                Ok::<_, ApiError>(items(&v, spec.nest).into_iter().next())
            };
            let found = match self.per_item_of {
                None => first(self, None).await?,
                Some((parent, _)) => match first(parent, None).await? {
                    Some(item) => first(self, Some(json!({"id": text(&item, "id")}))).await?,
                    None => None,
                },
            };
            Ok(Found::first(found, sample))
        })
    }
}

/// A field of an item as text: a string as it is, another value as JSON, none as empty.
fn text(item: &Value, field: &str) -> String {
    match item.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A snapshot source's only stream: every snapshot is the whole state; a source with a cadence
/// of its own remembers when it took the last.
struct SnapshotStream {
    spec: &'static SnapshotSpec,
    taken: Taken,
}

impl Stream for SnapshotStream {
    fn key(&self) -> &str {
        self.spec.source
    }

    fn poll<'a>(&'a mut self, ctx: &'a Arc<SourceCtx>) -> BoxFuture<'a, Result<Outcome, Stop>> {
        Box::pin(async move {
            if let Some(every) = self.spec.every {
                let due = self.taken.taken + every(&ctx.cfg).as_millis() as i64;
                if self.taken.taken > 0 && now_ms() < due {
                    return Ok(Outcome::Polled);
                }
            }
            take(self.spec, ctx, &mut self.taken).await?;
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

/// Every item of `spec` (all pages), asked with `data0` as the request's `data[0]` if given.
async fn fetch_all(
    spec: &'static SnapshotSpec,
    ctx: &SourceCtx,
    data0: Option<&Value>,
) -> Result<Vec<Value>, Stop> {
    let what = format!("{} {}", spec.source, spec.path);
    let paged = spec.paged.is_some() || data0.is_some();
    let mut all: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let body = spec.body(ctx.cfg.page_size, token.as_deref(), data0);
        let v = ctx.client.post_api(&what, spec.path, &body).await?;
        let page = items(&v, spec.nest);
        let next = v
            .pointer("/meta/pagination/next")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let empty = page.is_empty();
        all.extend(page);
        match next {
            Some(n) if paged && !empty && Some(&n) != token.as_ref() => token = Some(n),
            _ => break,
        }
    }
    Ok(all)
}

/// One snapshot; the number of its records.
async fn take(
    spec: &'static SnapshotSpec,
    ctx: &SourceCtx,
    taken: &mut Taken,
) -> Result<usize, Stop> {
    let at = now_ms();
    let snapshot = jiff::Timestamp::from_millisecond(at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    // Each record with the fields it gets from its parent item, if any.
    let mut rows: Vec<(Value, Vec<(&'static str, String)>)> = Vec::new();
    match spec.per_item_of {
        None => rows.extend(
            fetch_all(spec, ctx, None)
                .await?
                .into_iter()
                .map(|v| (v, vec![])),
        ),
        Some((parent, fields)) => {
            for p in fetch_all(parent, ctx, None).await? {
                let data0 = json!({"id": text(&p, "id")});
                let added: Vec<(&'static str, String)> = fields
                    .iter()
                    .map(|(name, from)| (*name, text(&p, from)))
                    .collect();
                for item in fetch_all(spec, ctx, Some(&data0)).await? {
                    rows.push((item, added.clone()));
                }
            }
        }
    }
    // Emitted only once complete: a snapshot is all of the state or nothing.
    let mut em = Emitter::new(ctx, spec.source, spec.records, TimeField::Now);
    for (item, added) in &rows {
        let mut more: Vec<(&str, &str)> = vec![(SNAPSHOT_FIELD, &snapshot)];
        more.extend(added.iter().map(|(k, v)| (*k, v.as_str())));
        em.record_with(&serde_json::to_vec(item).unwrap_or_default(), &more);
        em.send_due().await?;
    }
    if spec.every.is_some() {
        taken.taken = at;
        em.mark(Commit::of(spec.source, &*taken));
    }
    em.send().await?;
    Ok(rows.len())
}
