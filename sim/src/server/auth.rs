//! The checks before a bearer endpoint answers: a live token, the client's permission, the
//! tenant's licence, and the client's rate limit (reference §1.5, §7).

use super::common::{error, too_many};
use super::{Checked, Ctx, Resp};
use crate::faults::lock;
use hyper::StatusCode;
use std::time::Instant;

/// Lets the request through, or answers it with the 401, 403, 404 or 429 it gets instead.
pub(super) fn admit(cx: &mut Ctx) -> Checked<()> {
    let client = authorize(cx)?;
    match throttle(cx, client) {
        Some(r) => Err(Box::new(r)),
        None => Ok(()),
    }
}

fn bearer<'a>(cx: &'a Ctx) -> &'a str {
    cx.headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("")
}

/// The index of the client whose token the request carries, if it may call this endpoint.
fn authorize(cx: &Ctx) -> Checked<usize> {
    let idx = {
        let tokens = lock(&cx.st.tokens);
        match tokens.get(bearer(cx)) {
            Some((idx, exp)) if *exp > Instant::now() => *idx,
            _ => {
                return Err(Box::new(error(
                    cx,
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    "Access Token Expired",
                )))
            }
        }
    };
    let name = cx.ep.name;
    if cx
        .st
        .cfg
        .clients
        .get(idx)
        .is_some_and(|c| c.forbidden.iter().any(|f| f == name))
    {
        return Err(Box::new(error(
            cx,
            StatusCode::FORBIDDEN,
            "app_forbidden",
            "Forbidden to perform the requested operation",
        )));
    }
    if cx.st.cfg.unlicensed.iter().any(|u| u == name) {
        return Err(Box::new(error(
            cx,
            StatusCode::NOT_FOUND,
            "resource_not_found",
            "The requested resource does not exist",
        )));
    }
    Ok(idx)
}

/// Counts the request in its client's fixed window: a 429 over the limit; otherwise notes
/// the `X-RateLimit-*` headers when they go on every answer.
fn throttle(cx: &mut Ctx, client: usize) -> Option<Resp> {
    let rl = cx.st.cfg.rate_limit?;
    let id = cx
        .st
        .cfg
        .clients
        .get(client)
        .map(|c| c.id.clone())
        .unwrap_or_default();
    let now = Instant::now();
    let (used, reset_ms) = {
        let mut w = lock(&cx.st.windows);
        let entry = w.entry(id).or_insert((now, 0));
        if now.duration_since(entry.0) >= rl.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let reset = rl
            .window
            .saturating_sub(now.duration_since(entry.0))
            .as_millis() as u64;
        (entry.1, reset)
    };
    if used > rl.limit {
        return Some(too_many(cx, reset_ms, rl.limit));
    }
    if rl.headers_always {
        cx.rate_headers = Some((rl.limit, rl.limit - used, reset_ms));
    }
    None
}
