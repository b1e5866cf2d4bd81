//! HTTP handling: the listener, the endpoint table, and what every request goes through
//! (counting, faults, bearer token, permission, licence, rate limit) before its endpoint's
//! handler answers.
//!
//! Each endpoint, or family of endpoints, has its own file. A new endpoint is a new file with
//! its handler (and its `mod` line) plus one line in `ENDPOINTS`.

mod api_logs;
mod api_request;
mod auth;
pub(crate) mod awareness;
mod common;
mod control;
pub(crate) mod email_queues;
mod oauth;
mod siem_batch;
mod siem_stream;
mod snapshots;
mod threat_intel;

pub(crate) use siem_batch::{batch_bounds, batch_file_gz};

use crate::faults::{lock, FaultKind};
use crate::State;
use api_logs as logs;
use bytes::Bytes;
use common::{error, plain, too_many, with_rate_headers};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type Resp = Response<Full<Bytes>>;

/// A value, or the answer the request gets instead (boxed: a response is large).
type Checked<T> = Result<T, Box<Resp>>;

/// Returned by a handler to drop the connection without an answer.
#[derive(Debug)]
pub(crate) struct Reset;
impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated connection reset")
    }
}
impl std::error::Error for Reset {}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let st = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let st = st.clone();
                async move { handle(st, req, peer).await }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acc) => {
                    if let Ok(s) = acc.accept(stream).await {
                        let _ = builder
                            .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// the endpoint table

/// Who may call an endpoint, checked before its handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Anyone: the token endpoint, signed batch-file URLs, unknown paths.
    Open,
    /// A live bearer token whose client has the permission, a tenant licensed for the
    /// endpoint, and room in the client's rate limit.
    Bearer,
    /// Loopback peers only, and no faults: the control API.
    Loopback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
    Any,
}

/// Answers one request that has passed its endpoint's checks; `body` is the request body.
type Handler = fn(&Ctx, &[u8]) -> Resp;

/// One endpoint: how it is reached, who may call it, and what answers it.
struct Endpoint {
    /// The name faults, stats, a client's `forbidden` and the tenant's `unlicensed` use.
    name: &'static str,
    verb: Verb,
    /// The path, or with `prefix` the start of every path the endpoint serves.
    path: &'static str,
    prefix: bool,
    access: Access,
    /// Error bodies in the shape `SiemErrorStyle` chooses (the `/siem/v1/...` endpoints).
    siem: bool,
    handler: Handler,
}

impl Endpoint {
    const fn get(name: &'static str, path: &'static str, handler: Handler) -> Self {
        Endpoint {
            name,
            verb: Verb::Get,
            path,
            prefix: false,
            access: Access::Bearer,
            siem: false,
            handler,
        }
    }
    const fn post(name: &'static str, path: &'static str, handler: Handler) -> Self {
        Endpoint {
            verb: Verb::Post,
            ..Endpoint::get(name, path, handler)
        }
    }
    const fn any(name: &'static str, path: &'static str, handler: Handler) -> Self {
        Endpoint {
            verb: Verb::Any,
            ..Endpoint::get(name, path, handler)
        }
    }
    /// Needs no bearer token.
    const fn open(self) -> Self {
        Endpoint {
            access: Access::Open,
            ..self
        }
    }
    /// Serves every path that starts with its `path`.
    const fn prefix(self) -> Self {
        Endpoint {
            prefix: true,
            ..self
        }
    }
    /// A `/siem/v1/...` endpoint: its error bodies follow `SiemErrorStyle`.
    const fn siem(self) -> Self {
        Endpoint { siem: true, ..self }
    }
    /// Loopback peers only, and no faults.
    const fn loopback(self) -> Self {
        Endpoint {
            access: Access::Loopback,
            ..self
        }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        let verb = match self.verb {
            Verb::Get => *method == Method::GET,
            Verb::Post => *method == Method::POST,
            Verb::Any => true,
        };
        verb && if self.prefix {
            path.starts_with(self.path)
        } else {
            path == self.path
        }
    }
}

/// Every endpoint the simulator serves (reference §4); the first that matches answers.
#[rustfmt::skip]
static ENDPOINTS: &[Endpoint] = &[
    Endpoint::any("control", "/__sim/", control::answer).prefix().loopback(),
    Endpoint::post("token", "/oauth/token", oauth::token).open(),
    Endpoint::get("siem_batch_cg", "/siem/v1/batch/events/cg", siem_batch::list_cg).siem(),
    Endpoint::get("siem_batch_ci", "/siem/v1/batch/events/ci", siem_batch::list_ci).siem(),
    Endpoint::get("batch_file", "/s3/batch/", siem_batch::file).prefix().open(),
    Endpoint::get("siem_stream_cg", "/siem/v1/events/cg", siem_stream::cg).siem(),
    Endpoint::get("siem_stream_ci", "/siem/v1/events/ci", siem_stream::ci).siem(),
    Endpoint::post("audit", "/api/audit/get-audit-events", |cx, b| logs::AUDIT.answer(cx, b)),
    Endpoint::post("ttp_url", "/api/ttp/url/get-logs", |cx, b| logs::TTP_URL.answer(cx, b)),
    Endpoint::post("ttp_attachment", "/api/ttp/attachment/get-logs", |cx, b| logs::TTP_ATTACHMENT.answer(cx, b)),
    Endpoint::post("ttp_impersonation", "/api/ttp/impersonation/get-logs", |cx, b| logs::TTP_IMPERSONATION.answer(cx, b)),
    Endpoint::post("dlp", "/api/dlp/get-logs", |cx, b| logs::DLP.answer(cx, b)),
    Endpoint::post("held_release", "/api/gateway/get-held-release-logs", |cx, b| logs::HELD_RELEASE.answer(cx, b)),
    Endpoint::post("archive_search", "/api/archive/get-archive-search-logs", |cx, b| logs::ARCHIVE_SEARCH.answer(cx, b)),
    Endpoint::post("search_logs", "/api/archive/get-search-logs", |cx, b| logs::SEARCH_LOGS.answer(cx, b)),
    Endpoint::post("archive_view", "/api/archive/get-view-logs", |cx, b| logs::ARCHIVE_VIEW.answer(cx, b)),
    Endpoint::post("hold_list", "/api/gateway/get-hold-message-list", snapshots::hold_list),
    Endpoint::post("hold_summary", "/api/gateway/get-hold-summary-list", snapshots::hold_summary),
    Endpoint::post("threat_intel", "/api/ttp/threat-intel/get-feed", threat_intel::feed),
    Endpoint::post("dashboard", "/api/account/get-dashboard-notifications", snapshots::dashboard),
    Endpoint::post("rejections", "/api/gateway/get-rejections", |cx, b| logs::REJECTIONS.answer(cx, b)),
    Endpoint::post("remediation", "/api/ttp/remediation/find-incidents", |cx, b| logs::REMEDIATION.answer(cx, b)),
    Endpoint::post("email_queues", "/api/email/get-email-queues", email_queues::queues),
    Endpoint::post("awareness_performance", "/api/awareness-training/company/get-performance-details", awareness::performance),
    Endpoint::post("awareness_watchlist", "/api/awareness-training/company/get-watchlist-details", awareness::watchlist),
    Endpoint::post("awareness_safe_score", "/api/awareness-training/company/get-safe-score-details", awareness::safe_score),
    Endpoint::post("awareness_campaigns", "/api/awareness-training/phishing/campaign/get-campaign", awareness::campaign),
    Endpoint::post("awareness_user_data", "/api/awareness-training/phishing/campaign/get-user-data", awareness::user_data),
];

/// What answers a request no endpoint serves (faults still apply to it).
static NOT_FOUND: Endpoint = Endpoint::get("not_found", "", |_, _| {
    plain(StatusCode::NOT_FOUND, "no such endpoint")
})
.open();

fn route(method: &Method, path: &str) -> &'static Endpoint {
    ENDPOINTS
        .iter()
        .find(|e| e.matches(method, path))
        .unwrap_or(&NOT_FOUND)
}

// ---------------------------------------------------------------------------------------------
// every request

async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Result<Resp, Reset> {
    let ep = route(req.method(), req.uri().path());
    {
        let mut stats = lock(&st.stats);
        let flow = stats.flow.entry(ep.name).or_default();
        flow.arrived += 1;
        flow.in_flight += 1;
        flow.peak = flow.peak.max(flow.in_flight);
        if stats.arrived_at.len() >= crate::ARRIVALS_KEPT {
            stats.arrived_at.pop_front();
        }
        stats
            .arrived_at
            .push_back((std::time::Instant::now(), ep.name));
    }
    // Counted out even if the client goes away while the answer is prepared.
    struct Out<'a>(&'a State, &'static str);
    impl Drop for Out<'_> {
        fn drop(&mut self) {
            if let Some(flow) = lock(&self.0.stats).flow.get_mut(self.1) {
                flow.in_flight = flow.in_flight.saturating_sub(1);
            }
        }
    }
    let out = Out(&st, ep.name);
    let result = handle_inner(&st, ep, req, peer).await;
    drop(out);
    let status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
    *lock(&st.stats)
        .by_endpoint
        .entry(ep.name.to_string())
        .or_default()
        .entry(status)
        .or_default() += 1;
    result
}

/// One request, as its endpoint's handler sees it.
struct Ctx<'a> {
    st: &'a State,
    ep: &'static Endpoint,
    method: Method,
    /// The faults that fire on this request.
    faults: Vec<FaultKind>,
    query: HashMap<String, String>,
    headers: hyper::HeaderMap,
    path: String,
    /// `X-RateLimit-*` (limit, remaining, reset ms) to add to the answer.
    rate_headers: Option<(u64, u64, u64)>,
}

impl Ctx<'_> {
    fn has(&self, f: impl Fn(&FaultKind) -> bool) -> bool {
        self.faults.iter().any(f)
    }
    fn repeat(&self) -> u64 {
        self.faults
            .iter()
            .find_map(|f| match f {
                FaultKind::RepeatEvents { count } => Some(*count),
                _ => None,
            })
            .unwrap_or(0)
    }
    fn now(&self) -> i64 {
        self.st.clock.now_ms()
    }
}

async fn handle_inner(
    st: &State,
    ep: &'static Endpoint,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Result<Resp, Reset> {
    let (parts, body) = req.into_parts();
    let query = common::parse_query(parts.uri.query().unwrap_or(""));
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body over 1 MiB",
            ))
        }
    };
    let loopback_only = ep.access == Access::Loopback;
    if loopback_only && !peer.ip().is_loopback() {
        return Ok(plain(StatusCode::FORBIDDEN, "control API is loopback-only"));
    }
    let faults = if loopback_only {
        Vec::new()
    } else {
        st.faults.take(ep.name, parts.uri.path())
    };
    let mut cx = Ctx {
        st,
        ep,
        path: parts.uri.path().to_string(),
        method: parts.method,
        faults,
        query,
        headers: parts.headers,
        rate_headers: None,
    };
    if let Some(r) = fault_answer(&cx).await? {
        return Ok(r);
    }
    if ep.access == Access::Bearer {
        if let Err(r) = auth::admit(&mut cx) {
            return Ok(*r);
        }
    }
    let resp = (ep.handler)(&cx, &body);
    Ok(with_rate_headers(&cx, resp))
}

/// Applies the faults that act before the endpoint does: a reset, a delay, revoked tokens,
/// and those that answer in its place (a status, a 429).
async fn fault_answer(cx: &Ctx<'_>) -> Result<Option<Resp>, Reset> {
    for f in &cx.faults {
        match f {
            FaultKind::Reset => return Err(Reset),
            FaultKind::Slow { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            FaultKind::RevokeTokens => lock(&cx.st.tokens).clear(),
            _ => {}
        }
    }
    if let Some(code) = cx.faults.iter().find_map(|f| match f {
        FaultKind::Status { code } => Some(*code),
        _ => None,
    }) {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(Some(error(
            cx,
            status,
            "internal-error",
            "An unexpected error occurred while processing the request",
        )));
    }
    if let Some(retry) = cx.faults.iter().find_map(|f| match f {
        FaultKind::RateLimited { retry_after_s } => Some(*retry_after_s),
        _ => None,
    }) {
        return Ok(Some(too_many(cx, retry * 1000, 0)));
    }
    Ok(None)
}
