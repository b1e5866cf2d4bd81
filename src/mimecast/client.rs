//! The Mimecast API 2.0 HTTP client: OAuth2 client credentials with a cached, early-refreshed
//! token; retries with capped exponential backoff and jitter; one back-off gate per client id
//! shared by every instance and source in the process, so a 429 pauses them all.

use crate::config::Config;
use crate::log::{Level, Logger, Scope};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Why a call failed, classified for retries and for the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// Connection or timeout failure.
    Transport(String),
    /// The server's certificate was refused: retrying will not help.
    Tls(String),
    /// 429 that outlasted our retries.
    RateLimited { wait: Duration },
    /// 5xx that outlasted our retries.
    Server { status: u16, detail: String },
    /// The token endpoint refused the credentials.
    BadCredentials { detail: String },
    /// The token endpoint answered something else than a token or a refusal: probably not a
    /// Mimecast API gateway.
    TokenFailed { status: u16, detail: String },
    /// 401 on a data call even with a fresh token.
    Unauthorized { detail: String },
    /// 403: the API application lacks a permission.
    Forbidden { detail: String },
    /// 404: endpoint not available to this tenant (licence) or object gone.
    NotFound { detail: String },
    /// 400 and other 4xx: the request was refused as invalid.
    BadRequest { status: u16, detail: String },
    /// HTTP 200 whose body carries `fail[]`.
    FailIn200 { detail: String, retryable: bool },
    /// The body was not what the endpoint documents.
    Decode(String),
}

impl ApiError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Transport(_)
                | ApiError::RateLimited { .. }
                | ApiError::Server { .. }
                | ApiError::FailIn200 {
                    retryable: true,
                    ..
                }
        )
    }

    /// A stable key for "log once per distinct cause".
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Transport(_) => "transport",
            ApiError::Tls(_) => "tls",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Server { .. } => "server",
            ApiError::BadCredentials { .. } => "bad_credentials",
            ApiError::TokenFailed { .. } => "token",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::NotFound { .. } => "not_found",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::FailIn200 { .. } => "fail_in_200",
            ApiError::Decode(_) => "decode",
        }
    }
}

impl ApiError {
    /// Whether the client logged it (as a cause shared by the streams it hits) when it
    /// happened: failures of the token, of the network and of the server. The others depend
    /// on what a source asked for, and the source explains them.
    pub fn logged_by_client(&self) -> bool {
        matches!(
            self,
            ApiError::Transport(_)
                | ApiError::Tls(_)
                | ApiError::RateLimited { .. }
                | ApiError::Server { .. }
                | ApiError::BadCredentials { .. }
                | ApiError::TokenFailed { .. }
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Transport(m) => write!(f, "network or TLS error: {m}; check base_url, DNS, proxy settings and ca_file"),
            ApiError::Tls(m) => write!(f, "TLS certificate verification failed ({m}); if a proxy re-signs TLS traffic, set ca_file to its CA certificate (PEM)"),
            ApiError::RateLimited { wait } => write!(f, "rate limited by Mimecast (HTTP 429); next attempt in {}s; if this persists, lower the number of sources per client id or raise poll_interval", wait.as_secs()),
            ApiError::Server { status, detail } => write!(f, "Mimecast server error HTTP {status}: {detail}; will retry"),
            ApiError::BadCredentials { detail } => write!(f, "Mimecast refused the client credentials ({detail}); {CREDENTIALS_ADVICE}"),
            ApiError::TokenFailed { status, detail } => write!(f, "the token request failed{}: {detail}; {TOKEN_ADVICE}", if *status > 0 { format!(" with HTTP {status}") } else { String::new() }),
            ApiError::Unauthorized { detail } => write!(f, "HTTP 401 even with a fresh access token ({detail}); check that the API application is still enabled"),
            ApiError::Forbidden { detail } => write!(f, "HTTP 403 Forbidden ({detail}): the API application lacks the permission this log source needs"),
            ApiError::NotFound { detail } => write!(f, "HTTP 404 ({detail}): this log source is not licensed or not available on this tenant"),
            ApiError::BadRequest { status, detail } => write!(f, "request refused with HTTP {status}: {detail}"),
            ApiError::FailIn200 { detail, .. } => write!(f, "Mimecast reported a failure inside HTTP 200: {detail}"),
            ApiError::Decode(m) => write!(f, "unexpected response body: {m}"),
        }
    }
}

const CREDENTIALS_ADVICE: &str = "check client_id and client_secret, and that the API 2.0 application is enabled and not expired";
const TOKEN_ADVICE: &str =
    "check base_url: it must be a Mimecast API 2.0 gateway such as https://api.services.mimecast.com";
const NETWORK_ADVICE: &str = "check base_url and the network path to it (DNS, firewall, proxy or HTTPS_PROXY); retrying with back-off";
const TLS_ADVICE: &str = "if a proxy re-signs TLS traffic, set ca_file to its CA certificate (PEM); otherwise check base_url";
const RATE_ADVICE: &str = "the plugin waits by itself; if this persists, lower the number of sources per client id or raise poll_interval";
const SERVER_ADVICE: &str = "retrying with back-off; nothing to do unless it lasts";

/// What a failed request says about its cause, for the log: the same whichever stream met it,
/// so that the streams it hits share one line.
struct Cause {
    key: String,
    level: Level,
    text: String,
    advice: &'static str,
}

/// `scheme://host[:port]` of a URL: where a request went, without path, query or credentials.
fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// The innermost error of `e`'s chain: what actually went wrong ("Connection refused").
fn root_cause(e: &reqwest::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let root = cur.to_string();
    match e.url() {
        Some(u) => root.replace(u.as_str(), "<url>"),
        None => root,
    }
}

/// What went wrong with a request, without its URL (a batch file's carries a signature):
/// "error sending request: Connection refused (os error 111)".
pub fn describe(e: &reqwest::Error) -> String {
    let top = e.without_url_ref();
    let root = root_cause(e);
    if top.ends_with(&root) {
        top
    } else {
        format!("{top}: {root}")
    }
}

fn is_certificate_error(e: &reqwest::Error) -> bool {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let m = err.to_string();
        if m.contains("certificate") || m.contains("UnknownIssuer") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The cause of a request to `origin` that got no answer.
fn network_cause(origin: &str, e: &reqwest::Error) -> Cause {
    let root = root_cause(e);
    if is_certificate_error(e) {
        Cause {
            key: format!("tls|{origin}|{root}"),
            level: Level::Error,
            text: format!("TLS certificate verification failed for {origin} ({root})"),
            advice: TLS_ADVICE,
        }
    } else {
        Cause {
            key: format!("transport|{origin}|{root}"),
            level: Level::Warn,
            text: format!("cannot reach {origin}: {root}"),
            advice: NETWORK_ADVICE,
        }
    }
}

fn server_cause(origin: &str, path: &str, status: u16, detail: &str) -> Cause {
    Cause {
        key: format!("server|{origin}|{status}"),
        level: Level::Warn,
        text: format!("Mimecast server error HTTP {status} from {origin} ({path}: {detail})"),
        advice: SERVER_ADVICE,
    }
}

fn rate_cause(origin: &str, wait: Duration) -> Cause {
    Cause {
        key: format!("rate_limited|{origin}"),
        level: Level::Warn,
        text: format!(
            "rate limited by Mimecast (HTTP 429 from {origin}); every stream of this client id waits {}s",
            wait.as_secs().max(1)
        ),
        advice: RATE_ADVICE,
    }
}

/// Pulls Mimecast's error text out of any of its body shapes:
/// `{"fail":[{"code","message"}]}`, `{"fail":[{"errors":[{"code","message"}]}]}`,
/// `{"error":{"code","message"}}`.
pub fn error_detail(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string();
        return if text.is_empty() {
            "no details in the response".into()
        } else {
            text
        };
    };
    let pair = |o: &Value| {
        let code = o.get("code").and_then(Value::as_str).unwrap_or("");
        let msg = o.get("message").and_then(Value::as_str).unwrap_or("");
        match (code.is_empty(), msg.is_empty()) {
            (false, false) => Some(format!("{code}: {msg}")),
            (false, true) => Some(code.to_string()),
            (true, false) => Some(msg.to_string()),
            _ => None,
        }
    };
    if let Some(fail) = v
        .get("fail")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        if let Some(e) = fail
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(pair)
        {
            return e;
        }
        if let Some(e) = pair(fail) {
            return e;
        }
    }
    if let Some(e) = v.get("error").and_then(pair) {
        return e;
    }
    "no details in the response".into()
}

/// `fail[]` inside a 200: the detail and whether every error says it is retryable.
pub fn fail_in_200(v: &Value) -> Option<ApiError> {
    let fail = v.get("fail")?.as_array()?;
    let first = fail.first()?;
    let errors = first.get("errors").and_then(Value::as_array);
    let retryable = errors.is_some_and(|e| {
        !e.is_empty()
            && e.iter()
                .all(|x| x.get("retryable") == Some(&Value::Bool(true)))
    });
    let detail = error_detail(&serde_json::to_vec(v).unwrap_or_default());
    Some(ApiError::FailIn200 { detail, retryable })
}

/// Classifies a request failure: certificate problems apart from other transport errors.
/// The text never includes the URL (which, for batch files, carries a signature).
pub fn transport_error(what: &str, e: &reqwest::Error) -> ApiError {
    let detail = root_cause(e);
    if is_certificate_error(e) {
        ApiError::Tls(format!("{what}: {detail}"))
    } else {
        let top = e.without_url_ref();
        ApiError::Transport(format!("{what}: {top}: {detail}"))
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let s = self.to_string();
        match self.url() {
            Some(u) => s
                .replace(&format!(" for url ({u})"), "")
                .replace(u.as_str(), "<url>"),
            None => s,
        }
    }
}

/// Back-off shared by every user of one client id in this process.
#[derive(Default)]
struct Gate {
    blocked_until: Mutex<Option<Instant>>,
}

impl Gate {
    fn block_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut b = self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
        if b.is_none_or(|cur| cur < until) {
            *b = Some(until);
        }
    }
    fn wait_time(&self) -> Option<Duration> {
        let b = self.blocked_until.lock().unwrap_or_else(|e| e.into_inner());
        b.and_then(|u| u.checked_duration_since(Instant::now()))
    }
}

fn gate_for(key: &str) -> Arc<Gate> {
    static GATES: OnceLock<Mutex<HashMap<String, Arc<Gate>>>> = OnceLock::new();
    let mut g = GATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    g.entry(key.to_string()).or_default().clone()
}

struct Token {
    value: SecretString,
    refresh_at: Instant,
}

/// The instance's access token, and what became of the last request for one.
#[derive(Default)]
struct TokenState {
    token: Option<Token>,
    /// The last token request failed: when, how, and the cause it was logged as, until a
    /// token comes again. Callers that waited for that request share its failure.
    failed: Option<(Instant, ApiError, String)>,
}

/// Retry schedule: capped exponential backoff with jitter.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub attempts: u32,
}

impl Backoff {
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let d = exp.min(self.cap);
        // +-20% jitter from a cheap per-call source
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let frac = 0.8 + (nanos % 400) as f64 / 1000.0;
        d.mul_f64(frac)
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    /// `scheme://host[:port]` of `base`, where every request of `call` and the token go.
    origin: String,
    client_id: String,
    secret: SecretString,
    token: tokio::sync::Mutex<TokenState>,
    gate: Arc<Gate>,
    /// Where failures are logged as they happen (the plugin's instance); tools have none and
    /// report the errors returned.
    log: Option<Logger>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub backoff: Backoff,
}

/// Builds the TLS configuration: system trust store plus `ca_file`, ring provider.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let mut n = 0;
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("property 'ca_file': cannot read '{}': {e}", path.display()))?
        {
            let cert = cert.map_err(|e| {
                format!(
                    "property 'ca_file': '{}' holds an invalid certificate: {e}",
                    path.display()
                )
            })?;
            roots.add(cert).map_err(|e| {
                format!(
                    "property 'ca_file': certificate in '{}' rejected: {e}",
                    path.display()
                )
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(format!(
                "property 'ca_file': '{}' contains no PEM certificate",
                path.display()
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Client {
    pub fn new(cfg: &Config) -> Result<Client, String> {
        let tls = tls_config(cfg.ca_file.as_deref())?;
        let mut builder = reqwest::Client::builder();
        if let Some(p) = &cfg.proxy {
            let proxy = reqwest::Proxy::all(p.expose_secret())
                .map_err(|_| "property 'proxy': not a valid proxy URL".to_string())?;
            builder = builder.proxy(proxy);
        }
        let http = builder
            .tls_backend_preconfigured(tls)
            .timeout(cfg.request_timeout)
            .connect_timeout(Duration::from_secs(10).min(cfg.request_timeout))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("fluent-bit-mimecast/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: cfg.base_url.clone(),
            origin: reqwest::Url::parse(&cfg.base_url)
                .map(|u| origin(&u))
                .unwrap_or_else(|_| cfg.base_url.clone()),
            client_id: cfg.client_id.clone(),
            secret: cfg.client_secret.clone(),
            token: tokio::sync::Mutex::new(TokenState::default()),
            gate: gate_for(&format!("{}|{}", cfg.base_url, cfg.client_id)),
            log: None,
            metrics: Arc::default(),
            backoff: Backoff {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(60),
                attempts: 5,
            },
        })
    }

    /// Logs failures through `log` as they happen, once per cause for all the streams they
    /// hit (see [`Logger::failure`]), instead of leaving it to the caller after the retries.
    pub fn with_log(mut self, log: Logger) -> Self {
        self.log = Some(log);
        self
    }

    /// Whether `e` was logged already, when it happened.
    pub fn logged(&self, e: &ApiError) -> bool {
        self.log.is_some() && e.logged_by_client()
    }

    /// One occurrence of `cause` for `scope`.
    fn note(&self, scope: Scope<'_>, cause: &Cause) {
        if let Some(log) = &self.log {
            log.failure(&cause.key, scope, cause.level, &cause.text, cause.advice);
        }
    }

    /// One occurrence of `cause` for the stream the current task pulls.
    fn note_here(&self, cause: &Cause) {
        let stream = crate::log::current_stream();
        let scope = stream.as_deref().map_or(Scope::Unscoped, Scope::Stream);
        self.note(scope, cause);
    }

    /// A valid access token, fetched or refreshed when due. The token is the instance's: a
    /// failure to get one is every stream's, logged once as such, and callers that waited
    /// while the request was under way get its failure instead of asking again at once.
    async fn access_token(&self, force: bool) -> Result<SecretString, ApiError> {
        let asked = Instant::now();
        let mut st = self.token.lock().await;
        if !force {
            if let Some(t) = st.token.as_ref().filter(|t| Instant::now() < t.refresh_at) {
                return Ok(t.value.clone());
            }
        }
        if let Some((at, e, _)) = &st.failed {
            if *at >= asked {
                return Err(e.clone());
            }
        }
        match self.request_token().await {
            Ok((value, ttl)) => {
                let margin = (ttl / 10).clamp(1, 60);
                st.token = Some(Token {
                    value: value.clone(),
                    refresh_at: Instant::now() + Duration::from_secs(ttl.saturating_sub(margin)),
                });
                if let (Some((_, _, key)), Some(log)) = (st.failed.take(), &self.log) {
                    log.clear(&key);
                }
                Ok(value)
            }
            Err((e, cause)) => {
                self.note(Scope::All, &cause);
                let before = st
                    .failed
                    .replace((Instant::now(), e.clone(), cause.key.clone()));
                if let (Some((_, _, before)), Some(log)) = (before, &self.log) {
                    if before != cause.key {
                        // Another cause now (the network came back, the credentials did not):
                        // the one before is over.
                        log.clear(&before);
                    }
                }
                Err(e)
            }
        }
    }

    /// `detail` of a token answer without the client secret: a misconfigured `base_url` (an
    /// echo server, a proxy's error page) may send the posted form back.
    fn without_secret(&self, detail: String) -> String {
        let secret = self.secret.expose_secret();
        if !secret.is_empty() && detail.contains(secret) {
            detail.replace(secret, "***")
        } else {
            detail
        }
    }

    /// One token request: the token and its lifetime in seconds, or why not and its cause.
    /// Counted in the metrics as a request to the token endpoint's path.
    async fn request_token(&self) -> Result<(SecretString, u64), (ApiError, Cause)> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose_secret()),
            ("grant_type", "client_credentials"),
        ];
        let req = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .header("Accept", "application/json")
            .form(&form)
            .build()
            .map_err(|e| {
                let detail = format!("cannot build the token request: {}", e.without_url());
                let cause = Cause {
                    key: "token|build".into(),
                    level: Level::Error,
                    text: format!("the token request failed: {detail}"),
                    advice: TOKEN_ADVICE,
                };
                (ApiError::TokenFailed { status: 0, detail }, cause)
            })?;
        let origin = self.origin.as_str();
        let path = req.url().path().to_string();
        let resp = match self.http.execute(req).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.request(&path, 0);
                return Err((
                    transport_error("token request", &e),
                    network_cause(origin, &e),
                ));
            }
        };
        let status = resp.status().as_u16();
        self.metrics.request(&path, status);
        let body = resp.bytes().await.map_err(|e| {
            (
                ApiError::Transport(format!(
                    "token request: reading the response: {}",
                    root_cause(&e)
                )),
                network_cause(origin, &e),
            )
        })?;
        let refused = |detail: String| {
            let cause = Cause {
                key: format!("token|{origin}|{status}"),
                level: Level::Error,
                text: format!("the token request to {origin} answered HTTP {status} ({detail})"),
                advice: TOKEN_ADVICE,
            };
            (ApiError::TokenFailed { status, detail }, cause)
        };
        match status {
            200 => {}
            400 | 401 | 403 => {
                let detail = self.without_secret(error_detail(&body));
                let cause = Cause {
                    key: format!("bad_credentials|{origin}|{status}"),
                    level: Level::Error,
                    text: format!(
                        "Mimecast refused the client credentials (token request HTTP {status}: {detail})"
                    ),
                    advice: CREDENTIALS_ADVICE,
                };
                return Err((
                    ApiError::BadCredentials {
                        detail: format!("HTTP {status}, {detail}"),
                    },
                    cause,
                ));
            }
            429 => {
                let wait = Duration::from_secs(60);
                return Err((ApiError::RateLimited { wait }, rate_cause(origin, wait)));
            }
            s if s >= 500 => {
                let detail = self.without_secret(error_detail(&body));
                let cause = server_cause(origin, &path, s, &detail);
                return Err((ApiError::Server { status: s, detail }, cause));
            }
            _ => return Err(refused(self.without_secret(error_detail(&body)))),
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| refused(format!("the token response is not JSON: {e}")))?;
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refused("the token response has no access_token".into()))?;
        let ttl = v.get("expires_in").and_then(Value::as_u64).unwrap_or(1799);
        Ok((SecretString::from(token.to_string()), ttl))
    }

    /// Sends a request built by `build` with the bearer token, retrying what can be retried.
    pub async fn call(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::header::HeaderMap, bytes::Bytes), ApiError> {
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            if let Some(w) = self.gate.wait_time() {
                tokio::time::sleep(w).await;
            }
            let token = match self.access_token(false).await {
                Ok(t) => t,
                Err(e) if e.is_retryable() && attempt < self.backoff.attempts => {
                    self.metrics.retry();
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let req = match build(&self.http, &self.base)
                .header("Authorization", format!("Bearer {}", token.expose_secret()))
                .header("Accept", "application/json")
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    return Err(ApiError::Decode(format!(
                        "{what}: cannot build the request: {}",
                        e.without_url()
                    )))
                }
            };
            let path = req.url().path().to_string();
            let origin = self.origin.as_str();
            let resp = match self.http.execute(req).await {
                Ok(r) => r,
                Err(e) => {
                    self.metrics.request(&path, 0);
                    self.note_here(&network_cause(origin, &e));
                    let err = transport_error(what, &e);
                    if err.is_retryable() && attempt < self.backoff.attempts {
                        self.metrics.retry();
                        tokio::time::sleep(self.backoff.delay(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status().as_u16();
            self.metrics.request(&path, status);
            let headers = resp.headers().clone();
            let body = match read_capped(resp, MAX_RESPONSE).await {
                Ok(Some(b)) => b,
                Ok(None) => {
                    return Err(ApiError::Decode(format!(
                        "{what}: response larger than {} MiB; lower page_size",
                        MAX_RESPONSE >> 20
                    )))
                }
                Err(e) => {
                    self.note_here(&network_cause(origin, &e));
                    if attempt < self.backoff.attempts {
                        self.metrics.retry();
                        tokio::time::sleep(self.backoff.delay(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(ApiError::Transport(format!(
                        "{what}: reading the response: {}",
                        e.without_url()
                    )));
                }
            };
            match status {
                200..=299 => {
                    // Out of quota for now: everyone using this client id waits for the reset.
                    let remaining = headers
                        .get("x-ratelimit-remaining")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    if remaining == Some(0) {
                        if let Some(wait) = retry_wait(&headers) {
                            self.gate.block_for(wait);
                            self.metrics.rate_limit_wait();
                        }
                    }
                    return Ok((headers, body));
                }
                401 if !refreshed => {
                    refreshed = true;
                    self.token.lock().await.token = None;
                    continue;
                }
                401 => {
                    return Err(ApiError::Unauthorized {
                        detail: format!("{what}: {}", error_detail(&body)),
                    })
                }
                403 => {
                    return Err(ApiError::Forbidden {
                        detail: format!("{what}: {}", error_detail(&body)),
                    })
                }
                404 => {
                    return Err(ApiError::NotFound {
                        detail: format!("{what}: {}", error_detail(&body)),
                    })
                }
                429 => {
                    let wait =
                        retry_wait(&headers).unwrap_or_else(|| self.backoff.delay(attempt + 2));
                    self.gate.block_for(wait);
                    self.metrics.rate_limit_wait();
                    self.note_here(&rate_cause(origin, wait));
                    if attempt < self.backoff.attempts {
                        self.metrics.retry();
                        attempt += 1;
                        continue;
                    }
                    return Err(ApiError::RateLimited { wait });
                }
                s if s >= 500 => {
                    let detail = error_detail(&body);
                    self.note_here(&server_cause(origin, &path, s, &detail));
                    if attempt < self.backoff.attempts {
                        self.metrics.retry();
                        tokio::time::sleep(self.backoff.delay(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(ApiError::Server {
                        status: s,
                        detail: format!("{what}: {detail}"),
                    });
                }
                s => {
                    return Err(ApiError::BadRequest {
                        status: s,
                        detail: format!("{what}: {}", error_detail(&body)),
                    })
                }
            }
        }
    }

    /// GET of a JSON document.
    pub async fn get_json(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ApiError> {
        let (_, body) = self
            .call(what, |http, base| {
                http.get(format!("{base}{path}")).query(query)
            })
            .await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::Decode(format!("{what}: {e}")))
    }

    /// POST of an `/api/...` request body; a `fail` inside HTTP 200 is an error.
    pub async fn post_api(&self, what: &str, path: &str, body: &Value) -> Result<Value, ApiError> {
        let (_, bytes) = self
            .call(what, |http, base| {
                http.post(format!("{base}{path}")).json(body)
            })
            .await?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(format!("{what}: {e}")))?;
        match fail_in_200(&v) {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }

    /// A plain GET of a pre-signed URL: no bearer token (S3 rejects a second auth mechanism,
    /// and the token must never leave for a third party).
    pub async fn download(&self, url: &str) -> Result<reqwest::Response, reqwest::Error> {
        let r = self.http.get(url).send().await;
        self.metrics.request(
            "batch_file",
            r.as_ref().map(|r| r.status().as_u16()).unwrap_or(0),
        );
        r
    }
}

/// The `/api/...` request envelope: `meta.pagination` (with the page token after the first
/// page) and `data`.
pub fn paged_body(page_size: u32, token: Option<&str>, data: Value) -> Value {
    let mut pagination = serde_json::json!({"pageSize": page_size});
    if let (Some(t), Some(p)) = (token, pagination.as_object_mut()) {
        p.insert("pageToken".into(), serde_json::json!(t));
    }
    serde_json::json!({"meta": {"pagination": pagination}, "data": data})
}

/// Largest API response read into memory (batch files are streamed, not read whole).
pub const MAX_RESPONSE: usize = 64 << 20;

/// Reads a body up to `cap` bytes; None if it is larger.
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n as usize > cap) {
        return Ok(None);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > cap {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

/// How long a 429 asks us to wait: `Retry-After` (seconds) or `X-RateLimit-Reset`
/// (milliseconds per Mimecast's documentation).
pub fn retry_wait(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let num = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let d = num("retry-after")
        .map(Duration::from_secs)
        .or_else(|| num("x-ratelimit-reset").map(Duration::from_millis))?;
    Some(d.clamp(Duration::from_millis(100), Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_shape() {
        assert_eq!(
            error_detail(
                br#"{"fail":[{"code":"token_expired","message":"Access Token Expired"}]}"#
            ),
            "token_expired: Access Token Expired"
        );
        assert_eq!(error_detail(br#"{"fail":[{"key":{},"errors":[{"code":"err_x","message":"bad","retryable":false}]}]}"#), "err_x: bad");
        assert_eq!(
            error_detail(
                br#"{"error":{"code":"Request Validation Failed","message":"Need time range"}}"#
            ),
            "Request Validation Failed: Need time range"
        );
        assert_eq!(error_detail(b"<html>oops</html>"), "<html>oops</html>");
        assert_eq!(error_detail(b""), "no details in the response");
    }

    #[test]
    fn fail_in_200_retryable_only_if_all_errors_say_so() {
        let v: Value = serde_json::from_str(
            r#"{"data":[],"fail":[{"errors":[{"code":"a","message":"m","retryable":true}]}]}"#,
        )
        .unwrap();
        assert_eq!(fail_in_200(&v).map(|e| e.is_retryable()), Some(true));
        let v: Value = serde_json::from_str(
            r#"{"data":[],"fail":[{"errors":[{"code":"a","message":"m","retryable":false}]}]}"#,
        )
        .unwrap();
        assert_eq!(fail_in_200(&v).map(|e| e.is_retryable()), Some(false));
        let v: Value = serde_json::from_str(r#"{"data":[],"fail":[]}"#).unwrap();
        assert!(fail_in_200(&v).is_none());
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let b = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            attempts: 5,
        };
        assert!(
            b.delay(0) >= Duration::from_millis(800) && b.delay(0) <= Duration::from_millis(1200)
        );
        assert!(
            b.delay(3) >= Duration::from_millis(6400) && b.delay(3) <= Duration::from_millis(9600)
        );
        assert!(b.delay(30) <= Duration::from_secs(72));
    }

    #[test]
    fn retry_after_then_reset_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-ratelimit-reset", "2500".parse().unwrap());
        assert_eq!(retry_wait(&h), Some(Duration::from_millis(2500)));
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_wait(&h), Some(Duration::from_secs(7)));
    }
}
