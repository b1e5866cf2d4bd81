//! SIEM batch: `GET /siem/v1/batch/events/{cg,ci}` lists signed URLs of batch files (one per
//! type per 15-minute window), and `GET /s3/batch/<stream>/<slot>.json.gz` serves a file the
//! way S3 does (reference §4.1-4.2, §10).

use super::common::{b64, json_resp, parse_date, respond, siem_invalid, siem_page_size, unb64};
use super::{Checked, Ctx, Resp};
use crate::faults::{lock, FaultKind};
use crate::model::{self, EventKey, SLOT_MS};
use crate::State;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::io::Write;
use std::ops::Range;

/// Simulated-time bounds of the batch files that exist now: [oldest kept slot start, end of
/// the newest published slot).
pub(crate) fn batch_bounds(st: &State) -> (i64, i64) {
    let now = st.clock.now_ms();
    let first = (now - st.cfg.retention.as_millis() as i64).div_euclid(SLOT_MS) + 1;
    let last_published = (now - st.cfg.batch_lag.as_millis() as i64).div_euclid(SLOT_MS); // exclusive
    (first * SLOT_MS, last_published * SLOT_MS)
}

// ---------------------------------------------------------------------------------------------
// listing

pub(super) fn list_cg(cx: &Ctx, _body: &[u8]) -> Resp {
    list(cx, model::CG_TYPES)
}

pub(super) fn list_ci(cx: &Ctx, _body: &[u8]) -> Resp {
    list(cx, model::CI_TYPES)
}

/// A listing request, validated.
struct ListReq {
    s: u16,
    page_size: usize,
    /// Start of the oldest file kept.
    oldest: i64,
    /// Files must end by this.
    end: i64,
    /// The slot the page starts from (before retention applies).
    start_slot: i64,
    /// The request's `nextPage`.
    token: Option<String>,
}

fn list(cx: &Ctx, family: Range<u16>) -> Resp {
    let req = match parse_list(cx, family) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let (files, k) = listed_slots(cx, &req);
    let caught_up = (k + 1) * SLOT_MS > req.end;
    let next = match (&req.token, cx.has(|f| *f == FaultKind::StuckToken)) {
        (Some(t), true) => t.clone(),
        _ => b64(&format!("b1:{}:{k}", req.s)),
    };
    let exp = cx.now() + cx.st.cfg.url_ttl.as_millis() as i64;
    let base = format!(
        "{}://{}",
        if cx.st.cfg.tls { "https" } else { "http" },
        host(cx)
    );
    let value: Vec<Value> = files
        .iter()
        .map(|&slot| file_entry(cx, &base, req.s, slot, exp))
        .collect();
    json_resp(
        StatusCode::OK,
        &json!({"value": value, "@nextPage": next, "isCaughtUp": caught_up}),
    )
}

fn parse_list(cx: &Ctx, family: Range<u16>) -> Checked<ListReq> {
    let Some(ty) = cx.query.get("type") else {
        return Err(Box::new(siem_invalid(
            cx,
            "Missing required parameter: type",
        )));
    };
    let Some(s) = model::stream_id(ty).filter(|s| family.contains(s)) else {
        return Err(Box::new(siem_invalid(cx, &format!("Invalid type '{ty}'"))));
    };
    let page_size = siem_page_size(cx)?;
    let (oldest, published_end) = batch_bounds(cx.st);
    let mut end = published_end;
    if let Some(e) = cx.query.get("dateRangeEndsAt") {
        match parse_date(e) {
            Some(ms) => end = end.min(ms + 86_400_000),
            None => {
                return Err(Box::new(siem_invalid(
                    cx,
                    "dateRangeEndsAt must be a date YYYY-MM-DD",
                )))
            }
        }
    }
    let token = cx.query.get("nextPage").cloned();
    let start_slot = match &token {
        Some(tok) => {
            token_slot(tok, s).ok_or_else(|| siem_invalid(cx, "Invalid nextPage token"))?
        }
        None => start_date_slot(cx, oldest)?,
    };
    Ok(ListReq {
        s,
        page_size,
        oldest,
        end,
        start_slot,
        token,
    })
}

/// The slot a `nextPage` token `b1:<stream>:<slot>` resumes from, if it is one of stream `s`.
fn token_slot(tok: &str, s: u16) -> Option<i64> {
    let parsed = unb64(tok).and_then(|t| {
        let mut it = t.split(':');
        (it.next()? == "b1").then_some(())?;
        let ts: u16 = it.next()?.parse().ok()?;
        let k: i64 = it.next()?.parse().ok()?;
        Some((ts, k))
    });
    match parsed {
        Some((ts, k)) if ts == s => Some(k),
        _ => None,
    }
}

/// The slot `dateRangeStartsAt` names (it must be within retention), or the oldest kept.
fn start_date_slot(cx: &Ctx, oldest: i64) -> Checked<i64> {
    let Some(start) = cx.query.get("dateRangeStartsAt") else {
        return Ok(oldest / SLOT_MS);
    };
    let Some(ms) = parse_date(start) else {
        return Err(Box::new(siem_invalid(
            cx,
            "dateRangeStartsAt must be a date YYYY-MM-DD",
        )));
    };
    let retention_day =
        (cx.now() - cx.st.cfg.retention.as_millis() as i64).div_euclid(86_400_000) * 86_400_000;
    if ms < retention_day {
        return Err(Box::new(siem_invalid(
            cx,
            "Invalid date range: 'from' must be within the 7-day retention period",
        )));
    }
    Ok(ms.div_euclid(SLOT_MS))
}

/// The slots one page lists (after any the `repeat_events` fault repeats), and the slot the
/// walk stopped at.
fn listed_slots(cx: &Ctx, req: &ListReq) -> (Vec<i64>, i64) {
    let mut k = req.start_slot.max(req.oldest / SLOT_MS);
    let mut files = repeated_slots(cx, req.s, k, req.oldest);
    let first_new = files.len();
    while (k + 1) * SLOT_MS <= req.end && files.len() - first_new < req.page_size {
        if cx.st.grid.count(req.s, k) > 0 {
            files.push(k);
        }
        k += 1;
    }
    (files, k)
}

/// The last files before slot `k`, oldest first, as many as the `repeat_events` fault asks.
fn repeated_slots(cx: &Ctx, s: u16, k: i64, oldest: i64) -> Vec<i64> {
    let repeat = cx.repeat();
    let mut prev = Vec::new();
    if repeat > 0 {
        let mut back = k - 1;
        while prev.len() < repeat as usize && back * SLOT_MS >= oldest {
            if cx.st.grid.count(s, back) > 0 {
                prev.push(back);
            }
            back -= 1;
        }
        prev.reverse();
    }
    prev
}

/// One listing entry: the file's signed URL on this server, its expiry and its size.
fn file_entry(cx: &Ctx, base: &str, s: u16, slot: i64, exp: i64) -> Value {
    let sig = model::h3(cx.st.cfg.seed, s as u64, slot as u64, exp as u64);
    json!({
        "url": format!("{base}{}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={}&exp={exp}&X-Amz-Signature={sig:016x}",
                       model::batch_file_path(s, slot), cx.st.cfg.url_ttl.as_secs()),
        "expiry": model::fmt_rfc3339_ms(exp),
        "size": file_size(cx.st, s, slot),
    })
}

fn host(cx: &Ctx) -> String {
    cx.headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| "127.0.0.1".into())
}

// ---------------------------------------------------------------------------------------------
// files

fn ndjson(st: &State, s: u16, slot: i64, malformed_every: u32) -> Vec<u8> {
    let n = st.grid.count(s, slot);
    let mut out = Vec::with_capacity(n as usize * 700);
    for j in 0..n as u32 {
        let ts = st.grid.ts(s, slot, j, n);
        let rec = model::siem_record(
            &st.grid,
            EventKey {
                stream: s,
                slot,
                idx: j,
            },
            ts,
            &st.cfg.account,
        );
        let _ = serde_json::to_writer(&mut out, &rec);
        if malformed_every > 0 && (j + 1) % malformed_every == 0 {
            out.truncate(out.len().saturating_sub(7));
            out.extend_from_slice(b",\"x\":");
        }
        out.push(b'\n');
    }
    out
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 6),
        flate2::Compression::fast(),
    );
    let _ = enc.write_all(raw);
    enc.finish().unwrap_or_default()
}

pub(crate) fn batch_file_gz(st: &State, s: u16, slot: i64) -> Vec<u8> {
    gzip(&ndjson(st, s, slot, 0))
}

fn file_size(st: &State, s: u16, slot: i64) -> usize {
    if let Some(n) = lock(&st.sizes).get(&(s, slot)) {
        return *n;
    }
    let n = gzip(&ndjson(st, s, slot, 0)).len();
    lock(&st.sizes).insert((s, slot), n);
    n
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Resp {
    respond(
        status,
        "application/xml",
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
    )
}

pub(super) fn file(cx: &Ctx, _body: &[u8]) -> Resp {
    if cx.headers.contains_key(hyper::header::AUTHORIZATION) {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        );
    }
    let (s, slot) = match verify_url(cx) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let (oldest, end) = batch_bounds(cx.st);
    if slot * SLOT_MS < oldest || (slot + 1) * SLOT_MS > end {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    }
    file_bytes(cx, s, slot)
}

/// The (stream, slot) of a file URL with a good signature that has not expired.
fn verify_url(cx: &Ctx) -> Checked<(u16, i64)> {
    let parsed = cx.path.strip_prefix("/s3/batch/").and_then(|rest| {
        let (s, file) = rest.split_once('/')?;
        let slot = file.strip_suffix(".json.gz")?;
        Some((s.parse::<u16>().ok()?, slot.parse::<i64>().ok()?))
    });
    let exp = cx.query.get("exp").and_then(|e| e.parse::<i64>().ok());
    let sig = cx.query.get("X-Amz-Signature");
    let (Some((s, slot)), Some(exp), Some(sig)) = (parsed, exp, sig) else {
        return Err(Box::new(s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and Credential parameters",
        )));
    };
    if *sig
        != format!(
            "{:016x}",
            model::h3(cx.st.cfg.seed, s as u64, slot as u64, exp as u64)
        )
    {
        return Err(Box::new(s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )));
    }
    if cx.now() > exp || cx.has(|f| *f == FaultKind::ExpiredUrl) {
        return Err(Box::new(s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request has expired",
        )));
    }
    Ok((s, slot))
}

/// The file's gzip bytes, as kept or compressed now, spoilt as the faults ask.
fn file_bytes(cx: &Ctx, s: u16, slot: i64) -> Resp {
    if cx.has(|f| *f == FaultKind::CorruptGzip) {
        return respond(
            StatusCode::OK,
            "application/octet-stream",
            b"{ \"type\" : \"MTA\", \"data\" : ".to_vec(),
        );
    }
    let every = cx
        .faults
        .iter()
        .find_map(|f| match f {
            FaultKind::MalformedLines { every } => Some(*every),
            _ => None,
        })
        .unwrap_or(0);
    let kept = (every == 0)
        .then(|| lock(&cx.st.files).get(&(s, slot)).cloned())
        .flatten();
    let mut gz = match kept {
        Some(bytes) => bytes.as_ref().clone(),
        None => gzip(&ndjson(cx.st, s, slot, every)),
    };
    if cx.has(|f| *f == FaultKind::TruncatedGzip) {
        gz.truncate(gz.len() / 2);
    }
    respond(StatusCode::OK, "application/octet-stream", gz)
}
