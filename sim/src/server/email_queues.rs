//! `POST /api/email/get-email-queues` (docs/research/rejections-and-queues.md): how many
//! messages waited in the inbound and outbound queues, one sample every 10 minutes of the
//! requested window, as lists of `{date, count}`.

use super::api_request::request;
use super::common::{api_invalid, json_resp, parse_ts};
use super::{Ctx, Resp};
use crate::model::{fmt_offset, h3};
use hyper::StatusCode;
use serde_json::{json, Value};

/// Time between two samples.
pub const SAMPLE_MS: i64 = 600_000;
/// How far back samples are kept.
const KEPT_MS: i64 = 7 * 86_400_000;

/// The samples in `[from, to)` (never after `now`, nor older than a week): (time, inbound
/// count, outbound count).
pub(crate) fn samples(seed: u64, from: i64, to: i64, now: i64) -> Vec<(i64, u64, u64)> {
    let from = from.max(now - KEPT_MS);
    let to = to.min(now + 1);
    let first = from.div_euclid(SAMPLE_MS) + i64::from(from.rem_euclid(SAMPLE_MS) != 0);
    (first..)
        .map(|k| k * SAMPLE_MS)
        .take_while(|t| *t < to)
        .map(|t| {
            let k = (t / SAMPLE_MS) as u64;
            (t, h3(seed, 0xE0E0, k, 1) % 40, h3(seed, 0xE0E0, k, 2) % 15)
        })
        .collect()
}

pub(super) fn queues(cx: &Ctx, body: &[u8]) -> Resp {
    let req = match request(body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let field = |f: &str| req.data0.get(f).and_then(Value::as_str).and_then(parse_ts);
    let (Some(from), Some(to)) = (field("start"), field("end")) else {
        return api_invalid(
            StatusCode::BAD_REQUEST,
            &req.data0,
            "err_validation_invalid_date",
            "start and end are required dates (e.g. 2015-11-16T14:49:18+0000)",
        );
    };
    let got = samples(cx.st.cfg.seed, from, to, cx.now());
    let list = |pick: fn(&(i64, u64, u64)) -> u64| -> Vec<Value> {
        got.iter()
            .map(|s| json!({"date": fmt_offset(s.0), "count": pick(s)}))
            .collect()
    };
    json_resp(
        StatusCode::OK,
        &json!({"meta": {"status": 200}, "data": [{
            "inboundEmailQueue": list(|s| s.1),
            "outboundEmailQueue": list(|s| s.2),
        }], "fail": []}),
    )
}
