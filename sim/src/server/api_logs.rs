//! The time-windowed `POST /api/...` log endpoints (audit, TTP, DLP, held-release, archive,
//! rejections, remediation incidents): one handler, driven by each endpoint's `ApiSpec`
//! (reference §4.6-4.15, docs/research/).

use super::api_request::{request, window, ApiReq};
use super::common::{api_invalid, b64, json_resp, unb64};
use super::{Checked, Ctx, Resp};
use crate::faults::FaultKind;
use crate::model::{self, EventKey, Grid};
use hyper::StatusCode;
use serde_json::{json, Value};

/// How one `/api/...` log endpoint takes its window and shapes its answer.
#[derive(Debug)]
pub(super) struct ApiSpec {
    stream: &'static str,
    from_field: &'static str,
    to_field: &'static str,
    /// Default start of the window when the request has none: days back, 0 = start of today.
    default_days: i64,
    /// `data[0].<nest>[]` wrapper, or flat `data[]`.
    nest: Option<&'static str>,
    /// Honours `oldestFirst`; otherwise always newest first.
    oldest_first_flag: bool,
    result_count: bool,
    retention_days: i64,
    /// Answers only the calling user's own records (none here) unless `data[0].admin` is true.
    admin_flag: bool,
    /// Records change after they appear: (when, if ever, and how) as of the request's time.
    changes: Option<Changes>,
}

#[derive(Debug)]
struct Changes {
    when: fn(&Grid, EventKey, i64) -> Option<i64>,
    apply: fn(&mut Value, i64),
}

/// `from`/`to`, today by default, `oldestFirst`, 30 days kept: the TTP and DLP logs.
const fn ttp(stream: &'static str, nest: &'static str) -> ApiSpec {
    ApiSpec {
        stream,
        from_field: "from",
        to_field: "to",
        default_days: 0,
        nest: Some(nest),
        oldest_first_flag: true,
        result_count: false,
        retention_days: 30,
        admin_flag: false,
        changes: None,
    }
}

/// `start`/`end`, today by default, newest first, 30 days kept: the gateway and archive logs.
const fn archive(stream: &'static str, nest: Option<&'static str>) -> ApiSpec {
    ApiSpec {
        stream,
        from_field: "start",
        to_field: "end",
        default_days: 0,
        nest,
        oldest_first_flag: false,
        result_count: false,
        retention_days: 30,
        admin_flag: false,
        changes: None,
    }
}

pub(super) static AUDIT: ApiSpec = ApiSpec {
    stream: "audit",
    from_field: "startDateTime",
    to_field: "endDateTime",
    default_days: 0,
    nest: None,
    oldest_first_flag: false,
    result_count: false,
    retention_days: 60,
    admin_flag: false,
    changes: None,
};
pub(super) static TTP_URL: ApiSpec = ttp("ttp_url", "clickLogs");
pub(super) static TTP_ATTACHMENT: ApiSpec = ttp("ttp_attachment", "attachmentLogs");
pub(super) static TTP_IMPERSONATION: ApiSpec = ApiSpec {
    result_count: true,
    ..ttp("ttp_impersonation", "impersonationLogs")
};
pub(super) static DLP: ApiSpec = ttp("dlp", "dlpLogs");
pub(super) static HELD_RELEASE: ApiSpec = ApiSpec {
    default_days: 30,
    ..archive("held_release", Some("heldReleaseLogs"))
};
pub(super) static ARCHIVE_SEARCH: ApiSpec = archive("archive_search", Some("logs"));
pub(super) static SEARCH_LOGS: ApiSpec = archive("search_logs", Some("logs"));
pub(super) static ARCHIVE_VIEW: ApiSpec = archive("archive_view", None);
pub(super) static REJECTIONS: ApiSpec = ApiSpec {
    retention_days: 7,
    admin_flag: true,
    ..archive("rejections", Some("rejections"))
};
pub(super) static REMEDIATION: ApiSpec = ApiSpec {
    retention_days: 365,
    changes: Some(Changes {
        when: model::remediation_change,
        apply: model::remediation_changed,
    }),
    ..archive("remediation", Some("incidents"))
};

/// One stream's time window, in the order a page walks it.
#[derive(Clone, Copy)]
struct Window {
    s: u16,
    from: i64,
    to: i64,
    desc: bool,
}

impl ApiSpec {
    /// Answers one request to this endpoint.
    pub(super) fn answer(&self, cx: &Ctx, body: &[u8]) -> Resp {
        let req = match request(body) {
            Ok(r) => r,
            Err(resp) => return *resp,
        };
        if let Some(r) = fail_in_200(cx, &req) {
            return r;
        }
        let now = cx.now();
        let s = model::stream_id(self.stream).unwrap_or(0);
        let (w, pos) = match request_window(self, &req, s, now) {
            Ok(w) => w,
            Err(r) => return *r,
        };
        let audit_lag = cx.st.cfg.audit_lag.as_millis() as i64;
        let grid = &cx.st.grid;
        let visible = |k: EventKey, t: i64| grid.visible_at(k, t, audit_lag) <= now;
        let start_pos = repeat_from(cx, &w, pos, visible);
        let (mut items, more) = page_of(grid, &w, start_pos, req.page_size, visible);
        if self.admin_flag && req.data0.get("admin").and_then(Value::as_bool) != Some(true) {
            items.clear();
        }
        let total = grid
            .range(s, w.from.max(0), w.to.max(w.from + 1))
            .filter(|(k, t)| visible(*k, *t))
            .count();
        let next = next_token(cx, &req, &w, items.last().map(|(_, t)| *t).or(pos), more);
        let records: Vec<Value> = items
            .iter()
            .map(|(k, t)| {
                let mut r = model::api_record(grid, *k, *t);
                if let Some(c) = &self.changes {
                    if let Some(at) = (c.when)(grid, *k, *t).filter(|at| *at <= now) {
                        (c.apply)(&mut r, at);
                    }
                }
                r
            })
            .collect();
        let mut pagination = json!({"pageSize": req.page_size, "totalCount": total});
        if let (Some(n), Some(obj)) = (next, pagination.as_object_mut()) {
            obj.insert("next".into(), json!(n));
        }
        json_resp(
            StatusCode::OK,
            &json!({"meta": {"status": 200, "pagination": pagination}, "data": shape(self, records), "fail": []}),
        )
    }
}

/// The `fail_in_200` fault's answer: HTTP 200 whose body carries `fail[].errors[]`.
fn fail_in_200(cx: &Ctx, req: &ApiReq) -> Option<Resp> {
    let (code, message, retryable) = cx.faults.iter().find_map(|f| match f {
        FaultKind::FailIn200 {
            code,
            message,
            retryable,
        } => Some((code, message, *retryable)),
        _ => None,
    })?;
    Some(json_resp(
        StatusCode::OK,
        &json!({"meta": {"status": 200}, "data": [],
                "fail": [{"key": req.data0, "errors": [{"code": code, "message": message, "retryable": retryable}]}]}),
    ))
}

/// The window and position a page walks: from its `pageToken`
/// (`a1:<stream>:<from>:<to>:<desc>:<pos ts or ->`), or from the request's fields.
fn request_window(
    spec: &ApiSpec,
    req: &ApiReq,
    s: u16,
    now: i64,
) -> Checked<(Window, Option<i64>)> {
    if let Some(tok) = &req.token {
        let parsed = unb64(tok).and_then(|t| {
            let v: Vec<&str> = t.split(':').collect();
            if v.len() != 6 || v.first() != Some(&"a1") || v.get(1)?.parse::<u16>().ok()? != s {
                return None;
            }
            let n = |i: usize| v.get(i).and_then(|x| x.parse::<i64>().ok());
            Some((n(2)?, n(3)?, n(4)? != 0, n(5)))
        });
        return match parsed {
            Some((from, to, desc, pos)) => Ok((Window { s, from, to, desc }, pos)),
            None => Err(Box::new(api_invalid(
                StatusCode::BAD_REQUEST,
                &req.data0,
                "err_validation_invalid_page_token",
                "Invalid pageToken",
            ))),
        };
    }
    let (from, to) = window(
        &req.data0,
        spec.from_field,
        spec.to_field,
        spec.default_days,
        now,
    )
    .map_err(|m| {
        api_invalid(
            StatusCode::BAD_REQUEST,
            &req.data0,
            "err_validation_invalid_date",
            &m,
        )
    })?;
    let oldest = now - spec.retention_days * 86_400_000;
    let desc = if spec.oldest_first_flag {
        !req.data0
            .get("oldestFirst")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    } else {
        true
    };
    let from = from.max(oldest);
    Ok((Window { s, from, to, desc }, None))
}

/// Where the page starts: the request's position, stepped back against the order by as many
/// items as the `repeat_events` fault asks.
fn repeat_from(
    cx: &Ctx,
    w: &Window,
    pos: Option<i64>,
    visible: impl Fn(EventKey, i64) -> bool,
) -> Option<i64> {
    let repeat = cx.repeat() as usize;
    let Some(p) = pos.filter(|_| repeat > 0) else {
        return pos;
    };
    let grid = &cx.st.grid;
    let Window { s, from, to, desc } = *w;
    let back: Vec<(EventKey, i64)> = if desc {
        grid.range(s, p, to)
            .filter(|(k, t)| visible(*k, *t))
            .take(repeat)
            .collect()
    } else {
        grid.range_rev(s, from, p + 1)
            .filter(|(k, t)| visible(*k, *t))
            .take(repeat)
            .collect()
    };
    back.last().map(|(_, t)| if desc { t + 1 } else { t - 1 })
}

/// A keyset page over one stream: items strictly after `pos` in the window's order, and
/// whether more follow.
fn page_of(
    grid: &Grid,
    w: &Window,
    pos: Option<i64>,
    n: usize,
    visible: impl Fn(EventKey, i64) -> bool,
) -> (Vec<(EventKey, i64)>, bool) {
    let Window { s, from, to, desc } = *w;
    let mut out: Vec<(EventKey, i64)> = if desc {
        let hi = pos.unwrap_or(to).min(to);
        if hi <= from {
            Vec::new()
        } else {
            grid.range_rev(s, from, hi)
                .filter(|(k, t)| visible(*k, *t))
                .take(n + 1)
                .collect()
        }
    } else {
        let lo = pos.map(|p| p + 1).unwrap_or(from).max(from);
        if lo >= to {
            Vec::new()
        } else {
            grid.range(s, lo, to)
                .filter(|(k, t)| visible(*k, *t))
                .take(n + 1)
                .collect()
        }
    };
    let more = out.len() > n;
    out.truncate(n);
    (out, more)
}

/// `meta.pagination.next`: present when more follows (or the faults say otherwise).
fn next_token(
    cx: &Ctx,
    req: &ApiReq,
    w: &Window,
    last_pos: Option<i64>,
    more: bool,
) -> Option<String> {
    let dangling = cx.has(|f| *f == FaultKind::DanglingNext);
    if cx.has(|f| *f == FaultKind::StuckToken) && req.token.is_some() {
        req.token.clone()
    } else if more || dangling {
        let p = last_pos
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        let Window { s, from, to, desc } = *w;
        Some(b64(&format!("a1:{s}:{from}:{to}:{}:{p}", u8::from(desc))))
    } else {
        None
    }
}

/// `data`: the records flat, or wrapped in `[{<nest>: [...]}]` (with `resultCount`).
fn shape(spec: &ApiSpec, records: Vec<Value>) -> Value {
    let count = records.len();
    match spec.nest {
        Some(key) => {
            let mut inner = serde_json::Map::new();
            inner.insert(key.into(), Value::Array(records));
            if spec.result_count {
                inner.insert("resultCount".into(), json!(count));
            }
            json!([inner])
        }
        None => Value::Array(records),
    }
}
