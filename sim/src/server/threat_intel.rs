//! `POST /api/ttp/threat-intel/get-feed`: one feed file per 15-minute window of indicators,
//! CSV or STIX; the `x-mc-threat-feed-next-token` header names the next file, absent on the
//! last (reference §4.16).

use super::api_request::window;
use super::common::{api_invalid, b64, json_resp, respond, unb64};
use super::{Checked, Ctx, Resp};
use crate::model::{self, EventKey, SLOT_MS};
use hyper::StatusCode;
use serde_json::{json, Value};

/// A feed request, validated.
struct FeedReq {
    /// `data[0]`, or `{}`.
    d0: Value,
    /// The feed's stream id.
    s: u16,
    stix: bool,
}

pub(super) fn feed(cx: &Ctx, body: &[u8]) -> Resp {
    let req = match parse_feed(body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let now = cx.now();
    // A feed "file" is one 15-minute slot of indicators; the token names the slot and window end.
    let (slot, end) = match req.d0.get("token").and_then(Value::as_str) {
        Some(tok) => match parse_token(tok, req.s) {
            Some(p) => p,
            None => {
                return api_invalid(
                    StatusCode::BAD_REQUEST,
                    &req.d0,
                    "err_validation_invalid_token",
                    "Invalid threat feed token",
                )
            }
        },
        None => match first_slot(cx, &req, now) {
            Ok(Some(p)) => p,
            Ok(None) => return no_results(&req.d0),
            Err(r) => return *r,
        },
    };
    let items = slot_items(cx, req.s, slot);
    let mut next_slot = slot + 1;
    while (next_slot + 1) * SLOT_MS <= end && cx.st.grid.count(req.s, next_slot) == 0 {
        next_slot += 1;
    }
    let mut r = if req.stix {
        stix_file(cx, req.s, slot, &items)
    } else {
        csv_file(cx, &items)
    };
    if (next_slot + 1) * SLOT_MS <= end {
        if let Ok(h) = b64(&format!("t1:{}:{next_slot}:{end}", req.s)).parse() {
            r.headers_mut().insert("x-mc-threat-feed-next-token", h);
        }
    }
    r
}

fn parse_feed(body: &[u8]) -> Checked<FeedReq> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        api_invalid(
            StatusCode::BAD_REQUEST,
            &json!({}),
            "err_validation_invalid_request",
            &format!("malformed JSON: {e}"),
        )
    })?;
    let d0 = v
        .get("data")
        .and_then(|d| d.get(0))
        .cloned()
        .unwrap_or(json!({}));
    let feed = d0
        .get("feedType")
        .and_then(Value::as_str)
        .unwrap_or("malware_customer");
    let Some(s) = model::stream_id(&format!("ti_{feed}")) else {
        return Err(Box::new(api_invalid(
            StatusCode::BAD_REQUEST,
            &d0,
            "err_validation_invalid_feed_type",
            "feedType must be malware_customer or malware_grid",
        )));
    };
    let file_type = d0.get("fileType").and_then(Value::as_str).unwrap_or("csv");
    if file_type != "csv" && file_type != "stix" {
        return Err(Box::new(api_invalid(
            StatusCode::BAD_REQUEST,
            &d0,
            "err_validation_invalid_file_type",
            "fileType must be csv or stix",
        )));
    }
    let stix = file_type == "stix";
    Ok(FeedReq { d0, s, stix })
}

/// (slot, window end) of a token `t1:<stream>:<slot>:<end>` of stream `s`.
fn parse_token(tok: &str, s: u16) -> Option<(i64, i64)> {
    unb64(tok).and_then(|t| {
        let v: Vec<&str> = t.split(':').collect();
        if v.len() != 4 || v.first() != Some(&"t1") || v.get(1)?.parse::<u16>().ok()? != s {
            return None;
        }
        Some((
            v.get(2)?.parse::<i64>().ok()?,
            v.get(3)?.parse::<i64>().ok()?,
        ))
    })
}

/// (slot, window end) of the first file in the request's `start`/`end` (default: the last
/// 7 days; never older than 30 days, never the slot in progress), or `None` if it has none.
fn first_slot(cx: &Ctx, req: &FeedReq, now: i64) -> Checked<Option<(i64, i64)>> {
    let (from, to) = window(&req.d0, "start", "end", 7, now).map_err(|m| {
        api_invalid(
            StatusCode::BAD_REQUEST,
            &req.d0,
            "err_validation_invalid_date",
            &m,
        )
    })?;
    let to = to.min(now.div_euclid(SLOT_MS) * SLOT_MS);
    let mut k = from
        .div_euclid(SLOT_MS)
        .max((now - 30 * 86_400_000) / SLOT_MS);
    while (k + 1) * SLOT_MS <= to && cx.st.grid.count(req.s, k) == 0 {
        k += 1;
    }
    if (k + 1) * SLOT_MS > to {
        return Ok(None);
    }
    Ok(Some((k, to)))
}

/// No data: a 200 whose `fail` says so.
fn no_results(d0: &Value) -> Resp {
    json_resp(
        StatusCode::OK,
        &json!({"meta": {"status": 200}, "data": [],
        "fail": [{"key": d0, "errors": [{"code": "err_threat_intel_feed_no_results", "message": "No results found for threat intel feed.", "retryable": false}]}]}),
    )
}

/// The indicators of one slot, with their timestamps.
fn slot_items(cx: &Ctx, s: u16, slot: i64) -> Vec<(EventKey, i64)> {
    let n = cx.st.grid.count(s, slot);
    (0..n as u32)
        .map(|j| {
            (
                EventKey {
                    stream: s,
                    slot,
                    idx: j,
                },
                cx.st.grid.ts(s, slot, j, n),
            )
        })
        .collect()
}

fn stix_file(cx: &Ctx, s: u16, slot: i64, items: &[(EventKey, i64)]) -> Resp {
    let objects: Vec<Value> = items
        .iter()
        .flat_map(|(k, t)| model::ti_stix_objects(&cx.st.grid, *k, *t))
        .collect();
    let id = format!("bundle--{:08x}-0000-4000-8000-{:012x}", s, slot);
    let body = serde_json::to_vec(
        &json!({"type": "bundle", "id": id, "spec_version": "2.0", "objects": objects}),
    )
    .unwrap_or_default();
    respond(StatusCode::OK, "application/json", body)
}

fn csv_file(cx: &Ctx, items: &[(EventKey, i64)]) -> Resp {
    let mut out = String::from(model::TI_CSV_HEADER);
    out.push('\n');
    for (k, t) in items {
        out.push_str(&model::ti_csv_row(&cx.st.grid, *k, *t));
        out.push('\n');
    }
    respond(StatusCode::OK, "application/octet-stream", out.into_bytes())
}
