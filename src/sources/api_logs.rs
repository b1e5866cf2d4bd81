//! The `/api/...` log endpoints (TTP, audit, DLP, release, archive, rejections, remediation
//! incidents): time-windowed, paged with `meta.pagination.pageToken`, and read again over an
//! overlap so records that become visible late (audit) are not missed. Each record's stable
//! identity is remembered for the overlap, so re-reading never emits a record twice, across
//! restarts too. A source whose records change after they appear (remediation incidents) reads
//! a longer span again and counts each change as a new record (its identity includes the time
//! of the change).

use super::context::SourceCtx;
use super::emit::Emitter;
use super::{
    explain, fmt_time, now_ms, BoxFuture, Found, Outcome, ProbeFailure, Source, Stop, Stream,
};
use crate::config::Config;
use crate::encode::{parse_time_text, TimeField};
use crate::handoff::Commit;
use crate::log::Level;
use crate::mimecast::client::{paged_body, ApiError, Client};
use crate::schema::Records;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// How a record is identified across pages, windows and restarts.
#[derive(Clone, Copy, Debug)]
pub enum Identity {
    /// A documented unique id field.
    Field(&'static str),
    /// A hash of these fields together.
    Fields(&'static [&'static str]),
}

/// A value of an extra `data[0]` field.
#[derive(Clone, Copy, Debug)]
pub enum Param {
    Text(&'static str),
    Flag(bool),
}

impl Param {
    fn json(self) -> Value {
        match self {
            Param::Text(t) => json!(t),
            Param::Flag(b) => json!(b),
        }
    }
}

#[derive(Debug)]
pub struct ApiSpec {
    /// Source name (`sources` value and `mimecast_source`).
    pub source: &'static str,
    pub path: &'static str,
    pub from_field: &'static str,
    pub to_field: &'static str,
    /// `data[0].<nest>[]`, or flat `data[]`.
    pub nest: Option<&'static str>,
    pub time_field: &'static str,
    pub identity: Identity,
    /// Ask for oldest first (the endpoint takes `oldestFirst`).
    pub oldest_first: bool,
    /// Extra `data[0]` fields the endpoint needs.
    pub extra: &'static [(&'static str, Param)],
    /// The Mimecast API permission, where a source documents it.
    pub permission: Option<&'static str>,
    /// How far back the endpoint serves data.
    pub retention_days: u64,
    /// What its records are, for the normalized schemas.
    pub records: Records,
    /// Records change after they appear: every poll reads this many days again (instead of
    /// `overlap`), in one request window, so changes to records that old are seen.
    pub reread_days: u64,
}

/// The defaults of the optional fields.
const PLAIN: ApiSpec = ApiSpec {
    source: "",
    path: "",
    from_field: "start",
    to_field: "end",
    nest: None,
    time_field: "",
    identity: Identity::Field("id"),
    oldest_first: false,
    extra: &[],
    permission: None,
    retention_days: 30,
    records: Records::Generic,
    reread_days: 0,
};

pub static TTP_URL: ApiSpec = ApiSpec {
    records: Records::TtpUrl,
    source: "ttp_url",
    path: "/api/ttp/url/get-logs",
    from_field: "from",
    to_field: "to",
    nest: Some("clickLogs"),
    time_field: "date",
    identity: Identity::Fields(&["messageId", "url", "date", "userEmailAddress", "action"]),
    oldest_first: true,
    extra: &[
        ("route", Param::Text("all")),
        ("scanResult", Param::Text("all")),
    ],
    permission: Some("Monitoring | URL Protection | Read"),
    retention_days: 30,
    reread_days: 0,
};

pub static TTP_ATTACHMENT: ApiSpec = ApiSpec {
    records: Records::TtpAttachment,
    source: "ttp_attachment",
    path: "/api/ttp/attachment/get-logs",
    from_field: "from",
    to_field: "to",
    nest: Some("attachmentLogs"),
    time_field: "date",
    identity: Identity::Fields(&[
        "messageId",
        "fileHash",
        "fileName",
        "recipientAddress",
        "date",
    ]),
    oldest_first: true,
    extra: &[
        ("route", Param::Text("all")),
        ("result", Param::Text("all")),
    ],
    permission: Some("Monitoring | Attachment Protection | Read"),
    retention_days: 30,
    reread_days: 0,
};

pub static TTP_IMPERSONATION: ApiSpec = ApiSpec {
    records: Records::TtpImpersonation,
    source: "ttp_impersonation",
    path: "/api/ttp/impersonation/get-logs",
    from_field: "from",
    to_field: "to",
    nest: Some("impersonationLogs"),
    time_field: "eventTime",
    identity: Identity::Field("id"),
    oldest_first: true,
    extra: &[],
    permission: Some("Monitoring | Impersonation Protection | Read"),
    retention_days: 30,
    reread_days: 0,
};

pub static AUDIT: ApiSpec = ApiSpec {
    records: Records::Audit,
    source: "audit",
    path: "/api/audit/get-audit-events",
    from_field: "startDateTime",
    to_field: "endDateTime",
    nest: None,
    time_field: "eventTime",
    identity: Identity::Field("id"),
    oldest_first: false,
    extra: &[],
    permission: Some("Account | Logs | Read"),
    retention_days: 60,
    reread_days: 0,
};

pub static DLP: ApiSpec = ApiSpec {
    records: Records::Dlp,
    source: "dlp",
    path: "/api/dlp/get-logs",
    from_field: "from",
    to_field: "to",
    nest: Some("dlpLogs"),
    time_field: "eventTime",
    identity: Identity::Fields(&[
        "messageId",
        "policy",
        "eventTime",
        "recipientAddress",
        "action",
    ]),
    oldest_first: true,
    extra: &[],
    permission: Some("Monitoring | Data Leak Prevention | Read"),
    retention_days: 30,
    reread_days: 0,
};

pub static HELD_RELEASE: ApiSpec = ApiSpec {
    records: Records::HeldRelease,
    source: "held_release",
    path: "/api/gateway/get-held-release-logs",
    from_field: "start",
    to_field: "end",
    nest: Some("heldReleaseLogs"),
    time_field: "released",
    identity: Identity::Field("id"),
    oldest_first: false,
    extra: &[],
    permission: None,
    retention_days: 30,
    reread_days: 0,
};

pub static ARCHIVE_SEARCH: ApiSpec = ApiSpec {
    records: Records::ArchiveSearch,
    source: "archive_search",
    path: "/api/archive/get-archive-search-logs",
    from_field: "start",
    to_field: "end",
    nest: Some("logs"),
    time_field: "createTime",
    identity: Identity::Fields(&[
        "createTime",
        "emailAddr",
        "source",
        "searchText",
        "searchReason",
        "description",
    ]),
    oldest_first: false,
    extra: &[],
    permission: Some("Archive | Search Logs | Read"),
    retention_days: 30,
    reread_days: 0,
};

pub static SEARCH_LOGS: ApiSpec = ApiSpec {
    records: Records::ArchiveSearch,
    source: "search_logs",
    path: "/api/archive/get-search-logs",
    from_field: "start",
    to_field: "end",
    nest: Some("logs"),
    time_field: "createTime",
    identity: Identity::Fields(&[
        "createTime",
        "emailAddr",
        "source",
        "searchText",
        "searchPath",
        "description",
    ]),
    oldest_first: false,
    extra: &[],
    permission: Some("Archive | Search Logs | Read"),
    retention_days: 30,
    reread_days: 0,
};

pub static ARCHIVE_VIEW: ApiSpec = ApiSpec {
    records: Records::ArchiveView,
    source: "archive_view",
    path: "/api/archive/get-view-logs",
    from_field: "start",
    to_field: "end",
    nest: None,
    time_field: "viewed",
    identity: Identity::Fields(&[
        "viewer",
        "viewed",
        "from",
        "to",
        "subject",
        "messageDate",
        "source",
    ]),
    oldest_first: false,
    extra: &[],
    permission: Some("Archive | View Logs | Read"),
    retention_days: 30,
    reread_days: 0,
};

/// Rejected connections and messages (reference notes: docs/research/rejections-and-queues.md).
/// Without `admin` the API answers with the calling user's own rejections only.
pub static REJECTIONS: ApiSpec = ApiSpec {
    records: Records::Rejection,
    source: "rejections",
    path: "/api/gateway/get-rejections",
    nest: Some("rejections"),
    time_field: "created",
    identity: Identity::Field("id"),
    extra: &[("admin", Param::Flag(true))],
    permission: Some("Monitoring | Rejections | Read"),
    retention_days: 7,
    ..PLAIN
};

/// Threat remediation incidents (docs/research/remediation-incidents.md): windowed on their
/// creation, but they change afterwards (messages restored, counts updated, `modified` moves),
/// so the last 7 days are read again every poll and each change is a new record.
pub static REMEDIATION: ApiSpec = ApiSpec {
    records: Records::RemediationIncident,
    source: "remediation",
    path: "/api/ttp/remediation/find-incidents",
    nest: Some("incidents"),
    time_field: "modified",
    identity: Identity::Fields(&["id", "modified"]),
    permission: Some("Services | Threat Remediation | Read"),
    retention_days: 365,
    reread_days: 7,
    ..PLAIN
};

/// Length of one request window.
const SLICE_MS: i64 = 3_600_000;
/// Pages of one window before giving up on a server that never stops paging.
const MAX_PAGES: usize = 10_000;

/// 64-bit FNV-1a over the identity fields of a record.
pub fn identity_hash(v: &Value, id: Identity) -> u64 {
    let single: [&str; 1];
    let fields: &[&str] = match id {
        Identity::Field(f) => {
            single = [f];
            &single
        }
        Identity::Fields(fs) => fs,
    };
    let mut h = crate::hash::FNV_OFFSET;
    for f in fields {
        let text = match v.get(*f) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        h = crate::hash::fnv1a_more(h, text.bytes().chain([0xff]));
    }
    h
}

/// Where a windowed source stands: everything before `done` was read (and the overlap after
/// it will be read again); `seen` holds the identities already emitted that a re-read could
/// return again, with their event times, so they can be forgotten once out of reach.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub done: i64,
    pub seen: Vec<(u64, i64)>,
}

impl ApiSpec {
    /// The request's `data[0]` for the window from `start` to `end` (ms).
    fn data0(&self, start: i64, end: i64) -> serde_json::Map<String, Value> {
        let mut d = serde_json::Map::new();
        d.insert(self.from_field.into(), json!(fmt_time(start)));
        d.insert(self.to_field.into(), json!(fmt_time(end)));
        if self.oldest_first {
            d.insert("oldestFirst".into(), json!(true));
        }
        for (k, v) in self.extra {
            d.insert((*k).into(), v.json());
        }
        d
    }
}

impl Source for ApiSpec {
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
        vec![Box::new(ApiStream {
            spec: self,
            cur: ctx.state.cursor(self.source),
        })]
    }

    /// One record of the last hour.
    fn probe<'a>(
        &'static self,
        client: &'a Client,
        _cfg: &'a Config,
        sample: bool,
    ) -> BoxFuture<'a, Result<Found, ProbeFailure>> {
        Box::pin(async move {
            let now = now_ms();
            let d = self.data0(now - 3_600_000, now);
            let ptr = match self.nest {
                Some(n) => format!("/data/0/{n}/0"),
                None => "/data/0".into(),
            };
            let body = paged_body(1, None, json!([d]));
            let v = client
                .post_api(&format!("{} check", self.source), self.path, &body)
                .await?;
            Ok(Found::first(v.pointer(&ptr).cloned(), sample))
        })
    }
}

/// One `/api/...` source's only stream, keyed by the source's name.
struct ApiStream {
    spec: &'static ApiSpec,
    cur: Cursor,
}

impl Stream for ApiStream {
    fn key(&self) -> &str {
        self.spec.source
    }

    fn poll<'a>(&'a mut self, ctx: &'a Arc<SourceCtx>) -> BoxFuture<'a, Result<Outcome, Stop>> {
        Box::pin(async move {
            poll(self.spec, ctx, &mut self.cur).await?;
            Ok(Outcome::CaughtUp)
        })
    }

    fn explain(&self, e: &ApiError) -> String {
        explain(e, self.spec.source, self.spec.permission)
    }
}

async fn poll(spec: &'static ApiSpec, ctx: &SourceCtx, cur: &mut Cursor) -> Result<(), Stop> {
    let mut em = Emitter::new(
        ctx,
        spec.source,
        spec.records,
        TimeField::Text(spec.time_field),
    );
    // Whatever way it ends, send what was read with the position reached.
    let result = poll_windows(spec, ctx, cur, &mut em).await;
    em.mark(Commit::of(spec.source, &*cur));
    em.send().await?;
    result
}

async fn poll_windows(
    spec: &'static ApiSpec,
    ctx: &SourceCtx,
    cur: &mut Cursor,
    em: &mut Emitter<'_>,
) -> Result<(), Stop> {
    let now = now_ms();
    let (overlap, slice) = match spec.reread_days {
        0 => (ctx.cfg.overlap.as_millis() as i64, SLICE_MS),
        days => (days as i64 * 86_400_000, days as i64 * 86_400_000),
    };
    let oldest = now - (spec.retention_days as i64 * 86_400_000 - 3_600_000);
    let lookback = now - ctx.cfg.initial_lookback.as_millis() as i64;
    let mut start = if cur.done > 0 {
        cur.done - overlap
    } else {
        lookback
    }
    .max(oldest);
    while start < now {
        let end = (start + slice).min(now);
        read_window(spec, ctx, cur, start, end, em).await?;
        // `end` went out truncated to the second: that is how far this window really reached.
        cur.done = cur.done.max(end.div_euclid(1000) * 1000);
        // The next read starts at done - overlap, sent to the whole second (the request format
        // has no milliseconds): remember everything from a second before that.
        let keep_from = (cur.done - overlap).div_euclid(1000) * 1000 - 1000;
        cur.seen.retain(|(_, t)| *t >= keep_from);
        em.mark(Commit::of(spec.source, &*cur));
        em.send_due().await?;
        start = end;
    }
    Ok(())
}

/// Reads every page of one window, emitting what was not emitted before.
async fn read_window(
    spec: &'static ApiSpec,
    ctx: &SourceCtx,
    cur: &mut Cursor,
    start: i64,
    end: i64,
    em: &mut Emitter<'_>,
) -> Result<(), Stop> {
    let data0 = spec.data0(start, end);
    let mut token: Option<String> = None;
    let what = format!("{} {}", spec.source, spec.path);
    for _ in 0..MAX_PAGES {
        let body = paged_body(ctx.cfg.page_size, token.as_deref(), json!([data0]));
        let v = ctx.client.post_api(&what, spec.path, &body).await?;
        let items: &[Value] = match spec.nest {
            Some(n) => v
                .get("data")
                .and_then(|d| d.get(0))
                .and_then(|d| d.get(n))
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            None => v
                .get("data")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        };
        for item in items {
            let id = identity_hash(item, spec.identity);
            if cur.seen.iter().any(|(h, _)| *h == id) {
                continue;
            }
            let t = item
                .get(spec.time_field)
                .and_then(Value::as_str)
                .and_then(parse_time_text)
                .map(|t| t.as_millisecond())
                .unwrap_or(end);
            let bytes = serde_json::to_vec(item).unwrap_or_default();
            em.record(&bytes, &[]);
            cur.seen.push((id, t));
        }
        em.mark(Commit::of(spec.source, &*cur));
        em.send_due().await?;
        let next = v
            .get("meta")
            .and_then(|m| m.get("pagination"))
            .and_then(|p| p.get("next"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        // Stop on empty data even when `next` is present (seen on the real API's last pages),
        // and on a token that does not advance.
        match next {
            Some(n) if !items.is_empty() && Some(&n) != token.as_ref() => token = Some(n),
            Some(n) if Some(&n) == token.as_ref() => {
                ctx.log.problem(
                    &format!("{}/stuck", spec.source),
                    Level::Warn,
                    format_args!(
                        "{}: the API returned the same page token again; moving to the next window",
                        spec.source
                    ),
                );
                return Ok(());
            }
            _ => return Ok(()),
        }
    }
    ctx.log.warn(format_args!(
        "{}: more than {MAX_PAGES} pages in one window; moving on",
        spec.source
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_hash_uses_the_named_fields_only() {
        let a = json!({"id": "x1", "eventTime": "t1"});
        let b = json!({"id": "x1", "eventTime": "t2"});
        let c = json!({"id": "x2", "eventTime": "t1"});
        assert_eq!(
            identity_hash(&a, Identity::Field("id")),
            identity_hash(&b, Identity::Field("id"))
        );
        assert_ne!(
            identity_hash(&a, Identity::Field("id")),
            identity_hash(&c, Identity::Field("id"))
        );
        let f = Identity::Fields(&["id", "eventTime"]);
        assert_ne!(identity_hash(&a, f), identity_hash(&b, f));
        // field boundaries matter: ("ab","c") differs from ("a","bc")
        let g = Identity::Fields(&["p", "q"]);
        assert_ne!(
            identity_hash(&json!({"p": "ab", "q": "c"}), g),
            identity_hash(&json!({"p": "a", "q": "bc"}), g)
        );
    }

    #[test]
    fn cursor_round_trips_in_todays_form() {
        use crate::state::cursor::{decode, encode};
        let c = Cursor {
            done: 1_700_000_000_000,
            seen: vec![(1, 2), (u64::MAX, 3)],
        };
        let saved = encode(&c);
        assert_eq!(
            saved,
            r#"{"done":1700000000000,"seen":[[1,2],[18446744073709551615,3]],"v":1}"#
        );
        assert_eq!(decode::<Cursor>(&saved), Some(c));
        assert_eq!(decode::<Cursor>("{\"v\":2}"), None);
    }

    #[test]
    fn every_source_has_a_distinct_name_and_path() {
        let all = [
            &TTP_URL,
            &TTP_ATTACHMENT,
            &TTP_IMPERSONATION,
            &AUDIT,
            &DLP,
            &HELD_RELEASE,
            &ARCHIVE_SEARCH,
            &SEARCH_LOGS,
            &ARCHIVE_VIEW,
            &REJECTIONS,
            &REMEDIATION,
        ];
        let mut names: Vec<_> = all.iter().map(|s| s.source).collect();
        let mut paths: Vec<_> = all.iter().map(|s| s.path).collect();
        names.sort();
        names.dedup();
        paths.sort();
        paths.dedup();
        assert_eq!((names.len(), paths.len()), (all.len(), all.len()));
    }
}
