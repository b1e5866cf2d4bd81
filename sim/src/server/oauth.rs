//! `POST /oauth/token`: client credentials in, a bearer token out (reference §1).

use super::common::{json_resp, parse_query};
use super::{Ctx, Resp};
use crate::faults::lock;
use crate::model;
use hyper::StatusCode;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Instant;

pub(super) fn token(cx: &Ctx, body: &[u8]) -> Resp {
    let form = parse_query(std::str::from_utf8(body).unwrap_or(""));
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return json_resp(
            StatusCode::BAD_REQUEST,
            &json!({"fail": [{"code": "unsupported_grant_type", "message": "grant_type must be client_credentials"}]}),
        );
    }
    let id = form.get("client_id").cloned().unwrap_or_default();
    let secret = form.get("client_secret").cloned().unwrap_or_default();
    let Some(idx) = cx
        .st
        .cfg
        .clients
        .iter()
        .position(|c| c.id == id && c.secret == secret)
    else {
        return json_resp(
            StatusCode::UNAUTHORIZED,
            &json!({"fail": [{"code": "InvalidClientIdentifier", "message": "Client credentials are invalid"}]}),
        );
    };
    let tok = issue(cx, idx);
    json_resp(
        StatusCode::OK,
        &json!({"access_token": tok, "token_type": "Bearer", "expires_in": cx.st.cfg.token_ttl.as_secs(), "scope": ""}),
    )
}

/// A new token for client `idx`, live for the configured time (real, not simulated).
fn issue(cx: &Ctx, idx: usize) -> String {
    let n = cx.st.token_seq.fetch_add(1, Ordering::SeqCst);
    let tok = format!(
        "{:016x}{:016x}",
        model::mix(cx.st.cfg.seed ^ n as u64),
        model::mix(n as u64 ^ 0x70CE)
    );
    let ttl = cx.st.cfg.token_ttl;
    lock(&cx.st.tokens).insert(tok.clone(), (idx, Instant::now() + ttl));
    lock(&cx.st.issued).push(tok.clone());
    tok
}
