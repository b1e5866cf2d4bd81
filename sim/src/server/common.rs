//! Shared by every endpoint: response and error bodies, query decoding, page tokens, dates.

use super::{Checked, Ctx, Resp};
use crate::SiemErrorStyle;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

// ---------------------------------------------------------------------------------------------
// responses

pub(super) fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

pub(super) fn json_resp(status: StatusCode, v: &Value) -> Resp {
    respond(
        status,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

pub(super) fn plain(status: StatusCode, msg: &str) -> Resp {
    respond(status, "text/plain", msg.to_string())
}

/// An error in the body shape of the endpoint family.
pub(super) fn error(cx: &Ctx, status: StatusCode, code: &str, message: &str) -> Resp {
    let body = if cx.ep.siem && cx.st.cfg.siem_error_style == SiemErrorStyle::Error {
        json!({"error": {"code": code, "message": message}})
    } else {
        json!({"fail": [{"code": code, "message": message}]})
    };
    json_resp(status, &body)
}

/// A validation failure of an `/api/...` request: `fail[].errors[]` with the HTTP status.
pub(super) fn api_invalid(status: StatusCode, key: &Value, code: &str, message: &str) -> Resp {
    json_resp(
        status,
        &json!({"meta": {"status": status.as_u16()}, "data": [],
                "fail": [{"key": key, "errors": [{"code": code, "message": message, "retryable": false}]}]}),
    )
}

pub(super) fn too_many(cx: &Ctx, reset_ms: u64, limit: u64) -> Resp {
    let mut r = error(
        cx,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "Over throttling limit",
    );
    let h = r.headers_mut();
    if let Ok(v) = reset_ms.div_ceil(1000).max(1).to_string().parse() {
        h.insert("retry-after", v);
    }
    for (k, v) in [
        ("x-ratelimit-limit", limit),
        ("x-ratelimit-remaining", 0),
        ("x-ratelimit-reset", reset_ms),
    ] {
        if let Ok(v) = v.to_string().parse() {
            h.insert(k, v);
        }
    }
    r
}

pub(super) fn with_rate_headers(cx: &Ctx, mut r: Resp) -> Resp {
    if let Some((limit, remaining, reset)) = cx.rate_headers {
        let h = r.headers_mut();
        for (k, v) in [
            ("x-ratelimit-limit", limit),
            ("x-ratelimit-remaining", remaining),
            ("x-ratelimit-reset", reset),
        ] {
            if let Ok(v) = v.to_string().parse() {
                h.insert(k, v);
            }
        }
    }
    r
}

// ---------------------------------------------------------------------------------------------
// `/siem/v1/...` request parameters

/// A 400 for a bad `/siem/v1/...` request.
pub(super) fn siem_invalid(cx: &Ctx, message: &str) -> Resp {
    error(
        cx,
        StatusCode::BAD_REQUEST,
        "Request Validation Failed",
        message,
    )
}

/// `pageSize` of a `/siem/v1/...` request: 1 to 500, default 100.
pub(super) fn siem_page_size(cx: &Ctx) -> Checked<usize> {
    match cx.query.get("pageSize").map(|p| p.parse::<usize>()) {
        None => Ok(100),
        Some(Ok(n)) if (1..=500).contains(&n) => Ok(n),
        _ => Err(Box::new(siem_invalid(
            cx,
            "pageSize must be an integer from 1 to 500",
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// decoding

pub(super) fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Base64 of a page token's text.
pub(super) fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (x as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A page token's text (standard or URL-safe base64), if it is one.
pub(super) fn unb64(s: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        bits = bits << 6 | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A date `YYYY-MM-DD` as epoch ms of its UTC midnight.
pub(super) fn parse_date(s: &str) -> Option<i64> {
    let d: jiff::civil::Date = s.parse().ok()?;
    Some(
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

/// A timestamp, RFC 3339 or Mimecast's `2024-11-17T20:16:00+0000`, as epoch ms.
pub(super) fn parse_ts(s: &str) -> Option<i64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(z) = jiff::fmt::strtime::parse(fmt, s).and_then(|p| p.to_timestamp()) {
            return Some(z.as_millisecond());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "b1:3:1900000", "s1:1023:1:2:3:4"] {
            assert_eq!(unb64(&b64(s)).as_deref(), Some(s));
        }
    }

    #[test]
    fn query_decoding() {
        let q = parse_query("type=url+protect&x=%2Fa%3D&bad=%zz");
        assert_eq!(q["type"], "url protect");
        assert_eq!(q["x"], "/a=");
        assert_eq!(q["bad"], "%zz");
    }

    #[test]
    fn time_parsing_accepts_mimecast_and_rfc3339() {
        let a = parse_ts("2024-11-17T20:16:00+0000").unwrap();
        assert_eq!(parse_ts("2024-11-17T20:16:00Z"), Some(a));
        assert_eq!(parse_ts("2024-11-17T20:16:00+00:00"), Some(a));
        assert_eq!(parse_ts("2024-11-17T21:16:00+0100"), Some(a));
        assert!(parse_ts("yesterday").is_none());
    }
}
