//! Endpoints that answer with current state rather than a log: the held-message list and its
//! summary (one snapshot of what is held now), and the dashboard notifications
//! (reference §4.11, §4.12, §4.17).

use super::api_request::{request, window};
use super::common::{api_invalid, b64, json_resp, unb64};
use super::{Ctx, Resp};
use crate::model::{self, EventKey};
use crate::State;
use hyper::StatusCode;
use serde_json::{json, Value};

/// The messages held now, newest first: those of the last 72 hours not yet released.
fn held_now(st: &State, now: i64) -> Vec<(EventKey, i64)> {
    let s = model::stream_id("hold").unwrap_or(0);
    st.grid
        .range_rev(s, now - 72 * 3_600_000, now)
        .filter(|(k, t)| t + model::hold_duration_ms(&st.grid, *k) > now)
        .collect()
}

/// `POST /api/gateway/get-hold-message-list`: the held messages in `start`/`end` (default:
/// the last 3 days), a page at a time; the token `h1:<ts>` resumes below a timestamp.
pub(super) fn hold_list(cx: &Ctx, body: &[u8]) -> Resp {
    let req = match request(body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let now = cx.now();
    let (from, to) = match window(&req.data0, "start", "end", 3, now) {
        Ok(w) => w,
        Err(m) => {
            return api_invalid(
                StatusCode::BAD_REQUEST,
                &req.data0,
                "err_validation_invalid_date",
                &m,
            )
        }
    };
    let pos = req
        .token
        .as_deref()
        .and_then(unb64)
        .and_then(|t| t.strip_prefix("h1:").and_then(|p| p.parse::<i64>().ok()));
    let all: Vec<(EventKey, i64)> = held_now(cx.st, now)
        .into_iter()
        .filter(|(_, t)| *t >= from && *t < to && pos.is_none_or(|p| *t < p))
        .collect();
    let more = all.len() > req.page_size;
    let items = &all[..all.len().min(req.page_size)];
    let mut pagination = json!({"pageSize": req.page_size, "totalCount": all.len()});
    if let (true, Some((_, t)), Some(obj)) = (more, items.last(), pagination.as_object_mut()) {
        obj.insert("next".into(), json!(b64(&format!("h1:{t}"))));
    }
    let data: Vec<Value> = items
        .iter()
        .map(|(k, t)| model::api_record(&cx.st.grid, *k, *t))
        .collect();
    json_resp(
        StatusCode::OK,
        &json!({"meta": {"status": 200, "pagination": pagination}, "data": data, "fail": []}),
    )
}

/// `POST /api/gateway/get-hold-summary-list`: held messages counted per policy.
pub(super) fn hold_summary(cx: &Ctx, _body: &[u8]) -> Resp {
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for (k, t) in held_now(cx.st, cx.now()) {
        let rec = model::api_record(&cx.st.grid, k, t);
        let policy = rec
            .get("policyInfo")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        *counts.entry(policy).or_default() += 1;
    }
    let data: Vec<Value> = counts
        .into_iter()
        .map(|(p, n)| json!({"policyInfo": p, "numberOfItems": n}))
        .collect();
    json_resp(
        StatusCode::OK,
        &json!({"meta": {"status": 200}, "data": data, "fail": []}),
    )
}

/// `POST /api/account/get-dashboard-notifications`: two fixed notifications.
pub(super) fn dashboard(_cx: &Ctx, _body: &[u8]) -> Resp {
    let n = |id: &str, ty: &str, level: &str, title: &str| {
        json!({"displayMessage": format!("{title} (synthetic notification)"), "customerCode": "", "noticeType": ty,
               "title": title, "visibleFrom": "2026-01-05T09:00:00+0000", "warningLevel": level, "enabled": true,
               "id": id, "clusterCode": ""})
    };
    json_resp(
        StatusCode::OK,
        &json!({"fail": [], "meta": {"status": 200}, "data": [{"notifications": [
            n("eNoSimNotice1", "SERVICE_NOTIFICATION", "INFO", "Scheduled maintenance"),
            n("eNoSimNotice2", "PRODUCT_NEWS", "GOOD", "New feature available"),
        ]}]}),
    )
}
