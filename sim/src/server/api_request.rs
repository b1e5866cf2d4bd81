//! The request envelope every `POST /api/...` endpoint takes:
//! `{"meta":{"pagination":{"pageSize","pageToken"}},"data":[{...}]}`, and its time window
//! (reference §3, §9).

use super::common::{api_invalid, parse_ts};
use super::Resp;
use hyper::StatusCode;
use serde_json::{json, Value};

pub(super) struct ApiReq {
    /// `data[0]`, or `{}`.
    pub(super) data0: Value,
    pub(super) page_size: usize,
    /// `meta.pagination.pageToken`, if not empty.
    pub(super) token: Option<String>,
}

/// The request, or the 400 the API answers a malformed one with.
pub(super) fn request(body: &[u8]) -> Result<ApiReq, Box<Resp>> {
    parse_api(body).map_err(|m| {
        Box::new(api_invalid(
            StatusCode::BAD_REQUEST,
            &json!({}),
            "err_validation_invalid_request",
            &m,
        ))
    })
}

fn parse_api(body: &[u8]) -> Result<ApiReq, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let data = v.get("data").ok_or("missing field: data")?;
    let data0 = match data {
        Value::Array(a) => a.first().cloned().unwrap_or(json!({})),
        _ => return Err("field data must be an array".into()),
    };
    let pag = v.get("meta").and_then(|m| m.get("pagination"));
    let page_size = match pag.and_then(|p| p.get("pageSize")) {
        None => 25,
        Some(n) => n
            .as_u64()
            .filter(|n| (1..=500).contains(n))
            .ok_or("pageSize must be a number from 1 to 500")? as usize,
    };
    let token = pag
        .and_then(|p| p.get("pageToken"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(ApiReq {
        data0,
        page_size,
        token,
    })
}

fn start_of_day(ms: i64) -> i64 {
    ms.div_euclid(86_400_000) * 86_400_000
}

/// Window `[from, to)` of an `/api/...` request, from its own fields or the endpoint defaults.
pub(super) fn window(
    data0: &Value,
    from_f: &str,
    to_f: &str,
    default_days: i64,
    now: i64,
) -> Result<(i64, i64), String> {
    let get = |f: &str| -> Result<Option<i64>, String> {
        match data0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_ts(s).map(Some).ok_or_else(|| {
                format!("{f} is not a valid date: '{s}' (expected e.g. 2015-11-16T14:49:18+0000)")
            }),
            Some(_) => Err(format!("{f} must be a date string")),
        }
    };
    let from = get(from_f)?.unwrap_or(if default_days == 0 {
        start_of_day(now)
    } else {
        now - default_days * 86_400_000
    });
    let to = get(to_f)?.unwrap_or(now).min(now);
    Ok((from, to))
}
