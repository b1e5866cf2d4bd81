//! The control API under `/__sim/` (loopback only): faults, simulated time, tokens, ground
//! truth and request counts, for tests and demos driving a running simulator.

use super::common::{json_resp, plain};
use super::siem_batch::batch_bounds;
use super::{Ctx, Resp};
use crate::faults::lock;
use crate::model;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

fn ok(v: Value) -> Resp {
    json_resp(StatusCode::OK, &v)
}

pub(super) fn answer(cx: &Ctx, body: &[u8]) -> Resp {
    let st = cx.st;
    match (cx.method.as_str(), cx.path.as_str()) {
        ("GET", "/__sim/faults") => ok(json!(st.faults.list())),
        ("POST", "/__sim/faults") => match serde_json::from_slice::<crate::FaultRule>(body) {
            Ok(rule) => {
                st.faults.add(rule);
                ok(json!({"ok": true}))
            }
            Err(e) => plain(StatusCode::BAD_REQUEST, &format!("bad fault rule: {e}")),
        },
        ("DELETE", "/__sim/faults") => {
            st.faults.clear();
            ok(json!({"ok": true}))
        }
        ("POST", "/__sim/advance") => advance(cx),
        ("GET", "/__sim/now") => ok(json!({"now_ms": st.clock.now_ms()})),
        ("POST", "/__sim/revoke") => {
            lock(&st.tokens).clear();
            ok(json!({"ok": true}))
        }
        ("GET", "/__sim/truth") => truth(cx),
        ("GET", "/__sim/stats") => ok(json!(lock(&st.stats).by_endpoint)),
        _ => plain(StatusCode::NOT_FOUND, "unknown control endpoint"),
    }
}

/// `POST /__sim/advance?seconds=N`: moves simulated time forward.
fn advance(cx: &Ctx) -> Resp {
    match cx.query.get("seconds").and_then(|s| s.parse::<i64>().ok()) {
        Some(secs) if secs >= 0 => {
            let clock = &cx.st.clock;
            clock.advanced.fetch_add(secs * 1000, Ordering::SeqCst);
            ok(json!({"now_ms": clock.now_ms()}))
        }
        _ => plain(StatusCode::BAD_REQUEST, "advance needs ?seconds=N (N >= 0)"),
    }
}

/// `GET /__sim/truth?stream=..[&from=&to=]`: how many events exist (by default, in the batch
/// files published now).
fn truth(cx: &Ctx) -> Resp {
    let q = &cx.query;
    let Some(s) = q.get("stream").and_then(|s| model::stream_id(s)) else {
        return plain(StatusCode::BAD_REQUEST, "truth needs ?stream=<name>");
    };
    let (bf, bt) = batch_bounds(cx.st);
    let from = q.get("from").and_then(|v| v.parse().ok()).unwrap_or(bf);
    let to = q.get("to").and_then(|v| v.parse().ok()).unwrap_or(bt);
    ok(
        json!({"stream": model::stream_name(s), "from": from, "to": to, "count": cx.st.grid.range(s, from, to).count()}),
    )
}
