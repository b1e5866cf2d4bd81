//! HTTP handling: routing, OAuth, rate limits, faults, and every endpoint.

use crate::faults::{lock, FaultKind};
use crate::model::{self, EventKey, Grid, SLOT_MS};
use crate::{SiemErrorStyle, State};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Resp = Response<Full<Bytes>>;

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

/// Every endpoint the simulator serves, by the name faults and stats use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ep {
    Token,
    BatchCg,
    BatchCi,
    StreamCg,
    StreamCi,
    BatchFile,
    Api(&'static ApiSpec),
    HoldList,
    HoldSummary,
    ThreatIntel,
    Dashboard,
    Control,
    NotFound,
}

impl Ep {
    fn name(&self) -> &'static str {
        match self {
            Ep::Token => "token",
            Ep::BatchCg => "siem_batch_cg",
            Ep::BatchCi => "siem_batch_ci",
            Ep::StreamCg => "siem_stream_cg",
            Ep::StreamCi => "siem_stream_ci",
            Ep::BatchFile => "batch_file",
            Ep::Api(s) => s.endpoint,
            Ep::HoldList => "hold_list",
            Ep::HoldSummary => "hold_summary",
            Ep::ThreatIntel => "threat_intel",
            Ep::Dashboard => "dashboard",
            Ep::Control => "control",
            Ep::NotFound => "not_found",
        }
    }
    fn is_siem(&self) -> bool {
        matches!(
            self,
            Ep::BatchCg | Ep::BatchCi | Ep::StreamCg | Ep::StreamCi
        )
    }
}

/// How one `/api/...` log endpoint takes its window and shapes its answer (reference §4.6-4.15).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ApiSpec {
    endpoint: &'static str,
    path: &'static str,
    stream: &'static str,
    from_field: &'static str,
    to_field: &'static str,
    /// Default start of the window when the request has none: days back, 0 = start of today.
    default_days: i64,
    /// `data[0].<nest>[]` wrapper, or flat `data[]`.
    nest: Option<&'static str>,
    /// Honours `oldestFirst`; otherwise always newest first.
    oldest_first_flag: bool,
    result_count: bool,
    retention_days: i64,
}

static API_SPECS: &[ApiSpec] = &[
    ApiSpec {
        endpoint: "audit",
        path: "/api/audit/get-audit-events",
        stream: "audit",
        from_field: "startDateTime",
        to_field: "endDateTime",
        default_days: 0,
        nest: None,
        oldest_first_flag: false,
        result_count: false,
        retention_days: 60,
    },
    ApiSpec {
        endpoint: "ttp_url",
        path: "/api/ttp/url/get-logs",
        stream: "ttp_url",
        from_field: "from",
        to_field: "to",
        default_days: 0,
        nest: Some("clickLogs"),
        oldest_first_flag: true,
        result_count: false,
        retention_days: 30,
    },
    ApiSpec {
        endpoint: "ttp_attachment",
        path: "/api/ttp/attachment/get-logs",
        stream: "ttp_attachment",
        from_field: "from",
        to_field: "to",
        default_days: 0,
        nest: Some("attachmentLogs"),
        oldest_first_flag: true,
        result_count: false,
        retention_days: 30,
    },
    ApiSpec {
        endpoint: "ttp_impersonation",
        path: "/api/ttp/impersonation/get-logs",
        stream: "ttp_impersonation",
        from_field: "from",
        to_field: "to",
        default_days: 0,
        nest: Some("impersonationLogs"),
        oldest_first_flag: true,
        result_count: true,
        retention_days: 30,
    },
    ApiSpec {
        endpoint: "dlp",
        path: "/api/dlp/get-logs",
        stream: "dlp",
        from_field: "from",
        to_field: "to",
        default_days: 0,
        nest: Some("dlpLogs"),
        oldest_first_flag: true,
        result_count: false,
        retention_days: 30,
    },
    ApiSpec {
        endpoint: "held_release",
        path: "/api/gateway/get-held-release-logs",
        stream: "held_release",
        from_field: "start",
        to_field: "end",
        default_days: 30,
        nest: Some("heldReleaseLogs"),
        oldest_first_flag: false,
        result_count: false,
        retention_days: 30,
    },
    ApiSpec {
        endpoint: "archive_search",
        path: "/api/archive/get-archive-search-logs",
        stream: "archive_search",
        from_field: "start",
        to_field: "end",
        default_days: 0,
        nest: Some("logs"),
        oldest_first_flag: false,
        result_count: false,
        retention_days: 30,
    },
    ApiSpec {
        endpoint: "search_logs",
        path: "/api/archive/get-search-logs",
        stream: "search_logs",
        from_field: "start",
        to_field: "end",
        default_days: 0,
        nest: Some("logs"),
        oldest_first_flag: false,
        result_count: false,
        retention_days: 30,
    },
    ApiSpec {
        endpoint: "archive_view",
        path: "/api/archive/get-view-logs",
        stream: "archive_view",
        from_field: "start",
        to_field: "end",
        default_days: 0,
        nest: None,
        oldest_first_flag: false,
        result_count: false,
        retention_days: 30,
    },
];

fn route(method: &Method, path: &str) -> Ep {
    if path.starts_with("/__sim/") {
        return Ep::Control;
    }
    if *method == Method::GET {
        return match path {
            "/siem/v1/batch/events/cg" => Ep::BatchCg,
            "/siem/v1/batch/events/ci" => Ep::BatchCi,
            "/siem/v1/events/cg" => Ep::StreamCg,
            "/siem/v1/events/ci" => Ep::StreamCi,
            p if p.starts_with("/s3/batch/") => Ep::BatchFile,
            _ => Ep::NotFound,
        };
    }
    if *method == Method::POST {
        if let Some(spec) = API_SPECS.iter().find(|s| s.path == path) {
            return Ep::Api(spec);
        }
        return match path {
            "/oauth/token" => Ep::Token,
            "/api/gateway/get-hold-message-list" => Ep::HoldList,
            "/api/gateway/get-hold-summary-list" => Ep::HoldSummary,
            "/api/ttp/threat-intel/get-feed" => Ep::ThreatIntel,
            "/api/account/get-dashboard-notifications" => Ep::Dashboard,
            _ => Ep::NotFound,
        };
    }
    Ep::NotFound
}

async fn handle(
    st: Arc<State>,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Result<Resp, Reset> {
    let ep = route(req.method(), req.uri().path());
    {
        let mut stats = lock(&st.stats);
        let flow = stats.flow.entry(ep.name()).or_default();
        flow.arrived += 1;
        flow.in_flight += 1;
        flow.peak = flow.peak.max(flow.in_flight);
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
    let out = Out(&st, ep.name());
    let result = handle_inner(&st, ep, req, peer).await;
    drop(out);
    let status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
    *lock(&st.stats)
        .by_endpoint
        .entry(ep.name().to_string())
        .or_default()
        .entry(status)
        .or_default() += 1;
    result
}

struct Ctx<'a> {
    st: &'a State,
    ep: Ep,
    faults: Vec<FaultKind>,
    query: HashMap<String, String>,
    headers: hyper::HeaderMap,
    path: String,
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
    ep: Ep,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Result<Resp, Reset> {
    let (parts, body) = req.into_parts();
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body over 1 MiB",
            ))
        }
    };
    if ep == Ep::Control {
        if !peer.ip().is_loopback() {
            return Ok(plain(StatusCode::FORBIDDEN, "control API is loopback-only"));
        }
        return Ok(control(st, &parts.method, parts.uri.path(), &query, &body));
    }
    let faults = st.faults.take(ep.name(), parts.uri.path());
    let mut cx = Ctx {
        st,
        ep,
        faults,
        query,
        headers: parts.headers,
        path: parts.uri.path().to_string(),
        rate_headers: None,
    };
    for f in &cx.faults {
        match f {
            FaultKind::Reset => return Err(Reset),
            FaultKind::Slow { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            FaultKind::RevokeTokens => lock(&st.tokens).clear(),
            _ => {}
        }
    }
    if let Some(code) = cx.faults.iter().find_map(|f| match f {
        FaultKind::Status { code } => Some(*code),
        _ => None,
    }) {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(error(
            &cx,
            status,
            "internal-error",
            "An unexpected error occurred while processing the request",
        ));
    }
    if let Some(retry) = cx.faults.iter().find_map(|f| match f {
        FaultKind::RateLimited { retry_after_s } => Some(*retry_after_s),
        _ => None,
    }) {
        return Ok(too_many(&cx, retry * 1000, 0));
    }
    let resp = match ep {
        Ep::Token => token(&cx, &body),
        Ep::BatchFile => batch_file(&cx),
        Ep::NotFound => plain(StatusCode::NOT_FOUND, "no such endpoint"),
        _ => {
            let client = match authorize(&cx) {
                Ok(c) => c,
                Err(r) => return Ok(*r),
            };
            if let Some(r) = throttle(&mut cx, client) {
                return Ok(r);
            }
            match ep {
                Ep::BatchCg => batch_list(&cx, model::CG_TYPES),
                Ep::BatchCi => batch_list(&cx, model::CI_TYPES),
                Ep::StreamCg => stream(&cx, model::CG_TYPES),
                Ep::StreamCi => stream(&cx, model::CI_TYPES),
                Ep::Api(spec) => api_logs(&cx, spec, &body),
                Ep::HoldList => hold_list(&cx, &body),
                Ep::HoldSummary => hold_summary(&cx),
                Ep::ThreatIntel => threat_intel(&cx, &body),
                Ep::Dashboard => dashboard(),
                _ => plain(StatusCode::NOT_FOUND, "no such endpoint"),
            }
        }
    };
    Ok(with_rate_headers(&cx, resp))
}

// ---------------------------------------------------------------------------------------------
// responses

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_resp(status: StatusCode, v: &Value) -> Resp {
    respond(
        status,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn plain(status: StatusCode, msg: &str) -> Resp {
    respond(status, "text/plain", msg.to_string())
}

/// An error in the body shape of the endpoint family.
fn error(cx: &Ctx, status: StatusCode, code: &str, message: &str) -> Resp {
    let body = if cx.ep.is_siem() && cx.st.cfg.siem_error_style == SiemErrorStyle::Error {
        json!({"error": {"code": code, "message": message}})
    } else {
        json!({"fail": [{"code": code, "message": message}]})
    };
    json_resp(status, &body)
}

/// A validation failure of an `/api/...` request: `fail[].errors[]` with the HTTP status.
fn api_invalid(status: StatusCode, key: &Value, code: &str, message: &str) -> Resp {
    json_resp(
        status,
        &json!({"meta": {"status": status.as_u16()}, "data": [],
                "fail": [{"key": key, "errors": [{"code": code, "message": message, "retryable": false}]}]}),
    )
}

fn too_many(cx: &Ctx, reset_ms: u64, limit: u64) -> Resp {
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

fn with_rate_headers(cx: &Ctx, mut r: Resp) -> Resp {
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

fn s3_error(status: StatusCode, code: &str, message: &str) -> Resp {
    respond(
        status,
        "application/xml",
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
    )
}

// ---------------------------------------------------------------------------------------------
// auth and rate limits

fn token(cx: &Ctx, body: &[u8]) -> Resp {
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
    let n = cx.st.token_seq.fetch_add(1, Ordering::SeqCst);
    let tok = format!(
        "{:016x}{:016x}",
        model::mix(cx.st.cfg.seed ^ n as u64),
        model::mix(n as u64 ^ 0x70CE)
    );
    let ttl = cx.st.cfg.token_ttl;
    lock(&cx.st.tokens).insert(tok.clone(), (idx, Instant::now() + ttl));
    lock(&cx.st.issued).push(tok.clone());
    json_resp(
        StatusCode::OK,
        &json!({"access_token": tok, "token_type": "Bearer", "expires_in": ttl.as_secs(), "scope": ""}),
    )
}

fn authorize(cx: &Ctx) -> Result<usize, Box<Resp>> {
    let bearer = cx
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    let expired = || {
        error(
            cx,
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "Access Token Expired",
        )
    };
    let idx = {
        let tokens = lock(&cx.st.tokens);
        match tokens.get(bearer) {
            Some((idx, exp)) if *exp > Instant::now() => *idx,
            _ => return Err(Box::new(expired())),
        }
    };
    let name = cx.ep.name();
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

// ---------------------------------------------------------------------------------------------
// SIEM batch

/// Simulated-time bounds of the batch files that exist now: [oldest kept slot start, end of
/// the newest published slot).
pub(crate) fn batch_bounds(st: &State) -> (i64, i64) {
    let now = st.clock.now_ms();
    let first = (now - st.cfg.retention.as_millis() as i64).div_euclid(SLOT_MS) + 1;
    let last_published = (now - st.cfg.batch_lag.as_millis() as i64).div_euclid(SLOT_MS); // exclusive
    (first * SLOT_MS, last_published * SLOT_MS)
}

fn b64(s: &str) -> String {
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

fn unb64(s: &str) -> Option<String> {
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

fn parse_date(s: &str) -> Option<i64> {
    let d: jiff::civil::Date = s.parse().ok()?;
    Some(
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

fn batch_list(cx: &Ctx, family: std::ops::Range<u16>) -> Resp {
    let bad = |m: &str| error(cx, StatusCode::BAD_REQUEST, "Request Validation Failed", m);
    let Some(ty) = cx.query.get("type") else {
        return bad("Missing required parameter: type");
    };
    let Some(s) = model::stream_id(ty).filter(|s| family.contains(s)) else {
        return bad(&format!("Invalid type '{ty}'"));
    };
    let page_size = match cx.query.get("pageSize").map(|p| p.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        _ => return bad("pageSize must be an integer from 1 to 500"),
    };
    let (oldest, published_end) = batch_bounds(cx.st);
    let mut end = published_end;
    if let Some(e) = cx.query.get("dateRangeEndsAt") {
        match parse_date(e) {
            Some(ms) => end = end.min(ms + 86_400_000),
            None => return bad("dateRangeEndsAt must be a date YYYY-MM-DD"),
        }
    }
    let request_token = cx.query.get("nextPage").cloned();
    let start_slot = if let Some(tok) = &request_token {
        let parsed = unb64(tok).and_then(|t| {
            let mut it = t.split(':');
            (it.next()? == "b1").then_some(())?;
            let ts: u16 = it.next()?.parse().ok()?;
            let k: i64 = it.next()?.parse().ok()?;
            Some((ts, k))
        });
        match parsed {
            Some((ts, k)) if ts == s => k,
            _ => return bad("Invalid nextPage token"),
        }
    } else if let Some(start) = cx.query.get("dateRangeStartsAt") {
        let Some(ms) = parse_date(start) else {
            return bad("dateRangeStartsAt must be a date YYYY-MM-DD");
        };
        let retention_day =
            (cx.now() - cx.st.cfg.retention.as_millis() as i64).div_euclid(86_400_000) * 86_400_000;
        if ms < retention_day {
            return bad("Invalid date range: 'from' must be within the 7-day retention period");
        }
        ms.div_euclid(SLOT_MS)
    } else {
        oldest / SLOT_MS
    };
    let mut k = start_slot.max(oldest / SLOT_MS);
    let mut files = Vec::new();
    let repeat = cx.repeat();
    if repeat > 0 {
        let mut back = k - 1;
        let mut prev = Vec::new();
        while prev.len() < repeat as usize && back * SLOT_MS >= oldest {
            if cx.st.grid.count(s, back) > 0 {
                prev.push(back);
            }
            back -= 1;
        }
        files.extend(prev.into_iter().rev());
    }
    let first_new = files.len();
    while (k + 1) * SLOT_MS <= end && files.len() - first_new < page_size {
        if cx.st.grid.count(s, k) > 0 {
            files.push(k);
        }
        k += 1;
    }
    let caught_up = (k + 1) * SLOT_MS > end;
    let next = match (&request_token, cx.has(|f| *f == FaultKind::StuckToken)) {
        (Some(t), true) => t.clone(),
        _ => b64(&format!("b1:{s}:{k}")),
    };
    let now = cx.now();
    let exp = now + cx.st.cfg.url_ttl.as_millis() as i64;
    let base = format!(
        "{}://{}",
        if cx.st.cfg.tls { "https" } else { "http" },
        host(cx)
    );
    let value: Vec<Value> = files
        .iter()
        .map(|&slot| {
            let sig = model::h3(cx.st.cfg.seed, s as u64, slot as u64, exp as u64);
            json!({
                "url": format!("{base}{}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={}&exp={exp}&X-Amz-Signature={sig:016x}",
                               model::batch_file_path(s, slot), cx.st.cfg.url_ttl.as_secs()),
                "expiry": model::fmt_rfc3339_ms(exp),
                "size": file_size(cx.st, s, slot),
            })
        })
        .collect();
    json_resp(
        StatusCode::OK,
        &json!({"value": value, "@nextPage": next, "isCaughtUp": caught_up}),
    )
}

fn host(cx: &Ctx) -> String {
    cx.headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| "127.0.0.1".into())
}

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

fn batch_file(cx: &Ctx) -> Resp {
    if cx.headers.contains_key(hyper::header::AUTHORIZATION) {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        );
    }
    let parsed = cx.path.strip_prefix("/s3/batch/").and_then(|rest| {
        let (s, file) = rest.split_once('/')?;
        let slot = file.strip_suffix(".json.gz")?;
        Some((s.parse::<u16>().ok()?, slot.parse::<i64>().ok()?))
    });
    let exp = cx.query.get("exp").and_then(|e| e.parse::<i64>().ok());
    let sig = cx.query.get("X-Amz-Signature");
    let (Some((s, slot)), Some(exp), Some(sig)) = (parsed, exp, sig) else {
        return s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and Credential parameters",
        );
    };
    if *sig
        != format!(
            "{:016x}",
            model::h3(cx.st.cfg.seed, s as u64, slot as u64, exp as u64)
        )
    {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if cx.now() > exp || cx.has(|f| *f == FaultKind::ExpiredUrl) {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let (oldest, end) = batch_bounds(cx.st);
    if slot * SLOT_MS < oldest || (slot + 1) * SLOT_MS > end {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    }
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

// ---------------------------------------------------------------------------------------------
// SIEM stream

fn parse_ts(s: &str) -> Option<i64> {
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

fn stream(cx: &Ctx, family: std::ops::Range<u16>) -> Resp {
    let bad = |m: &str| error(cx, StatusCode::BAD_REQUEST, "Request Validation Failed", m);
    let now = cx.now();
    let page_size = match cx.query.get("pageSize").map(|p| p.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        _ => return bad("pageSize must be an integer from 1 to 500"),
    };
    // (types bitmask, start, end, position ts, position stream)
    let request_token = cx.query.get("nextPage").cloned();
    let (mask, start, end, pos) = if let Some(tok) = &request_token {
        let parsed = unb64(tok).and_then(|t| {
            let v: Vec<&str> = t.split(':').collect();
            if v.len() != 6 || v.first() != Some(&"s1") {
                return None;
            }
            let n = |i: usize| v.get(i).and_then(|x| x.parse::<i64>().ok());
            Some((n(1)? as u32, n(2)?, n(3)?, Some((n(4)?, n(5)? as u16))))
        });
        match parsed {
            Some(p) => p,
            None => return bad("Invalid nextPage token"),
        }
    } else {
        let mut mask = 0u32;
        match cx.query.get("types") {
            Some(list) => {
                for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    match model::stream_id(t).filter(|s| family.contains(s)) {
                        Some(s) => mask |= 1 << s,
                        None => return bad(&format!("Invalid type '{t}'")),
                    }
                }
            }
            None => family.clone().for_each(|s| mask |= 1 << s),
        }
        let start = match cx.query.get("dateRangeStartsAt").map(|s| parse_ts(s)) {
            None => now - 86_400_000 + 60_000,
            Some(Some(ms)) => ms,
            Some(None) => return bad("dateRangeStartsAt must be an ISO 8601 timestamp"),
        };
        if start < now - 86_400_000 {
            return bad("dateRangeStartsAt must be within the last 24 hours");
        }
        let end = match cx.query.get("dateRangeEndsAt").map(|s| parse_ts(s)) {
            None => i64::MAX,
            Some(Some(ms)) => ms,
            Some(None) => return bad("dateRangeEndsAt must be an ISO 8601 timestamp"),
        };
        (mask, start, end, None)
    };
    let visible_end = end.min(now - 30_000);
    let mut events: Vec<(i64, u16, EventKey)> = Vec::new();
    for s in family.clone().filter(|s| mask & (1 << s) != 0) {
        let from = pos.map(|(t, _)| t).unwrap_or(start).max(start);
        if from >= visible_end {
            continue;
        }
        let it = cx
            .st
            .grid
            .range(s, from, visible_end)
            .filter(|(_, t)| match pos {
                Some(p) => (*t, s) > p,
                None => true,
            });
        events.extend(it.take(page_size + 1).map(|(k, t)| (t, s, k)));
    }
    events.sort();
    let more = events.len() > page_size;
    events.truncate(page_size);
    let repeat = cx.repeat() as usize;
    let mut page: Vec<(i64, u16, EventKey)> = Vec::new();
    if repeat > 0 {
        if let Some(p) = pos {
            let mut prev: Vec<(i64, u16, EventKey)> = Vec::new();
            for s in family.clone().filter(|s| mask & (1 << s) != 0) {
                let it = cx
                    .st
                    .grid
                    .range_rev(s, start, p.0 + 1)
                    .filter(|(_, t)| (*t, s) <= p);
                prev.extend(it.take(repeat).map(|(k, t)| (t, s, k)));
            }
            prev.sort();
            let skip = prev.len().saturating_sub(repeat);
            page.extend(prev.into_iter().skip(skip));
        }
    }
    page.extend(events.iter().copied());
    let last = events
        .last()
        .map(|(t, s, _)| (*t, *s))
        .or(pos)
        .unwrap_or((start - 1, u16::MAX));
    let next = match (&request_token, cx.has(|f| *f == FaultKind::StuckToken)) {
        (Some(t), true) => t.clone(),
        _ => b64(&format!("s1:{mask}:{start}:{end}:{}:{}", last.0, last.1)),
    };
    let value: Vec<Value> = page
        .iter()
        .map(|(t, _, k)| model::siem_record(&cx.st.grid, *k, *t, &cx.st.cfg.account))
        .collect();
    json_resp(
        StatusCode::OK,
        &json!({"value": value, "@nextPage": next, "pageSize": page_size, "isCaughtUp": !more}),
    )
}

// ---------------------------------------------------------------------------------------------
// /api/... logs

struct ApiReq {
    data0: Value,
    page_size: usize,
    token: Option<String>,
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
fn window(
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

/// A keyset page over one stream: items strictly after `pos` in the requested order.
/// One stream's time window, in the order a page walks it.
#[derive(Clone, Copy)]
struct Window {
    s: u16,
    from: i64,
    to: i64,
    desc: bool,
}

fn page_of(
    grid: &Grid,
    w: &Window,
    pos: Option<i64>,
    n: usize,
    visible: impl Fn(EventKey, i64) -> bool,
) -> (Vec<(EventKey, i64)>, bool) {
    let Window { s, from, to, desc } = *w;
    let mut out: Vec<(EventKey, i64)> = if desc {
        let hi = pos.unwrap_or(to).min(to);
        if hi <= from {
            Vec::new()
        } else {
            grid.range_rev(s, from, hi)
                .filter(|(k, t)| visible(*k, *t))
                .take(n + 1)
                .collect()
        }
    } else {
        let lo = pos.map(|p| p + 1).unwrap_or(from).max(from);
        if lo >= to {
            Vec::new()
        } else {
            grid.range(s, lo, to)
                .filter(|(k, t)| visible(*k, *t))
                .take(n + 1)
                .collect()
        }
    };
    let more = out.len() > n;
    out.truncate(n);
    (out, more)
}

fn api_logs(cx: &Ctx, spec: &ApiSpec, body: &[u8]) -> Resp {
    let req = match parse_api(body) {
        Ok(r) => r,
        Err(m) => {
            return api_invalid(
                StatusCode::BAD_REQUEST,
                &json!({}),
                "err_validation_invalid_request",
                &m,
            )
        }
    };
    if let Some((code, message, retryable)) = cx.faults.iter().find_map(|f| match f {
        FaultKind::FailIn200 {
            code,
            message,
            retryable,
        } => Some((code, message, *retryable)),
        _ => None,
    }) {
        return json_resp(
            StatusCode::OK,
            &json!({"meta": {"status": 200}, "data": [],
                    "fail": [{"key": req.data0, "errors": [{"code": code, "message": message, "retryable": retryable}]}]}),
        );
    }
    let now = cx.now();
    let s = model::stream_id(spec.stream).unwrap_or(0);
    // token: a1:<stream>:<from>:<to>:<desc>:<pos ts or ->
    let (from, to, desc, pos) = match &req.token {
        Some(tok) => {
            let parsed = unb64(tok).and_then(|t| {
                let v: Vec<&str> = t.split(':').collect();
                if v.len() != 6 || v.first() != Some(&"a1") || v.get(1)?.parse::<u16>().ok()? != s {
                    return None;
                }
                let n = |i: usize| v.get(i).and_then(|x| x.parse::<i64>().ok());
                Some((n(2)?, n(3)?, n(4)? != 0, n(5)))
            });
            match parsed {
                Some(p) => p,
                None => {
                    return api_invalid(
                        StatusCode::BAD_REQUEST,
                        &req.data0,
                        "err_validation_invalid_page_token",
                        "Invalid pageToken",
                    )
                }
            }
        }
        None => {
            let (from, to) = match window(
                &req.data0,
                spec.from_field,
                spec.to_field,
                spec.default_days,
                now,
            ) {
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
            let oldest = now - spec.retention_days * 86_400_000;
            let desc = if spec.oldest_first_flag {
                !req.data0
                    .get("oldestFirst")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            } else {
                true
            };
            (from.max(oldest), to, desc, None)
        }
    };
    let audit_lag = cx.st.cfg.audit_lag.as_millis() as i64;
    let grid = &cx.st.grid;
    let visible = |k: EventKey, t: i64| grid.visible_at(k, t, audit_lag) <= now;
    let repeat = cx.repeat() as usize;
    let mut start_pos = pos;
    if repeat > 0 {
        if let Some(p) = pos {
            // step back `repeat` items against the order
            let back: Vec<(EventKey, i64)> = if desc {
                grid.range(s, p, to)
                    .filter(|(k, t)| visible(*k, *t))
                    .take(repeat)
                    .collect()
            } else {
                grid.range_rev(s, from, p + 1)
                    .filter(|(k, t)| visible(*k, *t))
                    .take(repeat)
                    .collect()
            };
            start_pos = back.last().map(|(_, t)| if desc { t + 1 } else { t - 1 });
        }
    }
    let (items, more) = page_of(
        grid,
        &Window { s, from, to, desc },
        start_pos,
        req.page_size,
        visible,
    );
    let total = grid
        .range(s, from.max(0), to.max(from + 1))
        .filter(|(k, t)| visible(*k, *t))
        .count();
    let last_pos = items.last().map(|(_, t)| *t).or(pos);
    let dangling = cx.has(|f| *f == FaultKind::DanglingNext);
    let next = if cx.has(|f| *f == FaultKind::StuckToken) && req.token.is_some() {
        req.token.clone()
    } else if more || dangling {
        let p = last_pos
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into());
        Some(b64(&format!("a1:{s}:{from}:{to}:{}:{p}", u8::from(desc))))
    } else {
        None
    };
    let records: Vec<Value> = items
        .iter()
        .map(|(k, t)| model::api_record(grid, *k, *t))
        .collect();
    let count = records.len();
    let data = match spec.nest {
        Some(key) => {
            let mut inner = serde_json::Map::new();
            inner.insert(key.into(), Value::Array(records));
            if spec.result_count {
                inner.insert("resultCount".into(), json!(count));
            }
            json!([inner])
        }
        None => Value::Array(records),
    };
    let mut pagination = json!({"pageSize": req.page_size, "totalCount": total});
    if let (Some(n), Some(obj)) = (next, pagination.as_object_mut()) {
        obj.insert("next".into(), json!(n));
    }
    json_resp(
        StatusCode::OK,
        &json!({"meta": {"status": 200, "pagination": pagination}, "data": data, "fail": []}),
    )
}

// ---------------------------------------------------------------------------------------------
// held messages (a snapshot of current state), dashboard, threat intel

fn held_now(st: &State, now: i64) -> Vec<(EventKey, i64)> {
    let s = model::stream_id("hold").unwrap_or(0);
    st.grid
        .range_rev(s, now - 72 * 3_600_000, now)
        .filter(|(k, t)| t + model::hold_duration_ms(&st.grid, *k) > now)
        .collect()
}

fn hold_list(cx: &Ctx, body: &[u8]) -> Resp {
    let req = match parse_api(body) {
        Ok(r) => r,
        Err(m) => {
            return api_invalid(
                StatusCode::BAD_REQUEST,
                &json!({}),
                "err_validation_invalid_request",
                &m,
            )
        }
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

fn hold_summary(cx: &Ctx) -> Resp {
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

fn dashboard() -> Resp {
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

fn threat_intel(cx: &Ctx, body: &[u8]) -> Resp {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return api_invalid(
                StatusCode::BAD_REQUEST,
                &json!({}),
                "err_validation_invalid_request",
                &format!("malformed JSON: {e}"),
            )
        }
    };
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
        return api_invalid(
            StatusCode::BAD_REQUEST,
            &d0,
            "err_validation_invalid_feed_type",
            "feedType must be malware_customer or malware_grid",
        );
    };
    let file_type = d0.get("fileType").and_then(Value::as_str).unwrap_or("csv");
    if file_type != "csv" && file_type != "stix" {
        return api_invalid(
            StatusCode::BAD_REQUEST,
            &d0,
            "err_validation_invalid_file_type",
            "fileType must be csv or stix",
        );
    }
    let now = cx.now();
    let no_results = || {
        json_resp(
            StatusCode::OK,
            &json!({"meta": {"status": 200}, "data": [],
            "fail": [{"key": d0, "errors": [{"code": "err_threat_intel_feed_no_results", "message": "No results found for threat intel feed.", "retryable": false}]}]}),
        )
    };
    // A feed "file" is one 15-minute slot of indicators; the token names the slot and window end.
    let (slot, end) = match d0.get("token").and_then(Value::as_str) {
        Some(tok) => {
            let parsed = unb64(tok).and_then(|t| {
                let v: Vec<&str> = t.split(':').collect();
                if v.len() != 4 || v.first() != Some(&"t1") || v.get(1)?.parse::<u16>().ok()? != s {
                    return None;
                }
                Some((
                    v.get(2)?.parse::<i64>().ok()?,
                    v.get(3)?.parse::<i64>().ok()?,
                ))
            });
            match parsed {
                Some(p) => p,
                None => {
                    return api_invalid(
                        StatusCode::BAD_REQUEST,
                        &d0,
                        "err_validation_invalid_token",
                        "Invalid threat feed token",
                    )
                }
            }
        }
        None => {
            let (from, to) = match window(&d0, "start", "end", 7, now) {
                Ok(w) => w,
                Err(m) => {
                    return api_invalid(
                        StatusCode::BAD_REQUEST,
                        &d0,
                        "err_validation_invalid_date",
                        &m,
                    )
                }
            };
            let to = to.min(now.div_euclid(SLOT_MS) * SLOT_MS);
            let mut k = from
                .div_euclid(SLOT_MS)
                .max((now - 30 * 86_400_000) / SLOT_MS);
            while (k + 1) * SLOT_MS <= to && cx.st.grid.count(s, k) == 0 {
                k += 1;
            }
            if (k + 1) * SLOT_MS > to {
                return no_results();
            }
            (k, to)
        }
    };
    let n = cx.st.grid.count(s, slot);
    let items: Vec<(EventKey, i64)> = (0..n as u32)
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
        .collect();
    let mut next_slot = slot + 1;
    while (next_slot + 1) * SLOT_MS <= end && cx.st.grid.count(s, next_slot) == 0 {
        next_slot += 1;
    }
    let body = if file_type == "stix" {
        let objects: Vec<Value> = items
            .iter()
            .flat_map(|(k, t)| model::ti_stix_objects(&cx.st.grid, *k, *t))
            .collect();
        let id = format!("bundle--{:08x}-0000-4000-8000-{:012x}", s, slot);
        serde_json::to_vec(
            &json!({"type": "bundle", "id": id, "spec_version": "2.0", "objects": objects}),
        )
        .unwrap_or_default()
    } else {
        let mut out = String::from(model::TI_CSV_HEADER);
        out.push('\n');
        for (k, t) in &items {
            out.push_str(&model::ti_csv_row(&cx.st.grid, *k, *t));
            out.push('\n');
        }
        out.into_bytes()
    };
    let ct = if file_type == "stix" {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let mut r = respond(StatusCode::OK, ct, body);
    if (next_slot + 1) * SLOT_MS <= end {
        if let Ok(h) = b64(&format!("t1:{s}:{next_slot}:{end}")).parse() {
            r.headers_mut().insert("x-mc-threat-feed-next-token", h);
        }
    }
    r
}

// ---------------------------------------------------------------------------------------------
// control API (loopback only)

fn control(
    st: &State,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Resp {
    let ok = |v: Value| json_resp(StatusCode::OK, &v);
    match (method.as_str(), path) {
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
        ("POST", "/__sim/advance") => match q.get("seconds").and_then(|s| s.parse::<i64>().ok()) {
            Some(secs) if secs >= 0 => {
                st.clock.advanced.fetch_add(secs * 1000, Ordering::SeqCst);
                ok(json!({"now_ms": st.clock.now_ms()}))
            }
            _ => plain(StatusCode::BAD_REQUEST, "advance needs ?seconds=N (N >= 0)"),
        },
        ("GET", "/__sim/now") => ok(json!({"now_ms": st.clock.now_ms()})),
        ("POST", "/__sim/revoke") => {
            lock(&st.tokens).clear();
            ok(json!({"ok": true}))
        }
        ("GET", "/__sim/truth") => {
            let Some(s) = q.get("stream").and_then(|s| model::stream_id(s)) else {
                return plain(StatusCode::BAD_REQUEST, "truth needs ?stream=<name>");
            };
            let (bf, bt) = batch_bounds(st);
            let from = q.get("from").and_then(|v| v.parse().ok()).unwrap_or(bf);
            let to = q.get("to").and_then(|v| v.parse().ok()).unwrap_or(bt);
            ok(
                json!({"stream": model::stream_name(s), "from": from, "to": to, "count": st.grid.range(s, from, to).count()}),
            )
        }
        ("GET", "/__sim/stats") => ok(json!(lock(&st.stats).by_endpoint)),
        _ => plain(StatusCode::NOT_FOUND, "unknown control endpoint"),
    }
}

// ---------------------------------------------------------------------------------------------

fn parse_query(q: &str) -> HashMap<String, String> {
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
