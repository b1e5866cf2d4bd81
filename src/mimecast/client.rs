//! The Mimecast API 2.0 HTTP client: bearer-token calls (token in `auth`), one retry loop
//! driven by each error's own classification (capped exponential backoff with jitter), and one
//! back-off gate per client id shared by every instance and source in the process, so a 429
//! pauses them all, and one request budget per client id (`budget`) that paces them before a
//! request leaves. Errors are in `error`, the transport (TLS, proxy) in `tls`.

pub use super::error::{describe, error_detail, fail_in_200, transport_error, ApiError};
pub use super::tls::SetupError;

use super::auth::TokenState;
use super::budget::Budget;
use super::error::{network_cause, rate_cause, server_cause, Cause};
use crate::config::Config;
use crate::log::{Logger, Scope};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

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
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    /// `scheme://host[:port]` of `base`, where every request of `call` and the token go.
    pub(super) origin: String,
    pub(super) client_id: String,
    pub(super) secret: SecretString,
    pub(super) token: tokio::sync::Mutex<TokenState>,
    gate: Arc<Gate>,
    budget: Budget,
    /// Where failures are logged as they happen (the plugin's instance); tools have none and
    /// report the errors returned.
    pub(super) log: Option<Logger>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub backoff: Backoff,
}

/// How one attempt failed: a 401 (worth one retry with a fresh token), or anything else.
enum Failed {
    Unauthorized(ApiError),
    Error(ApiError),
}

impl From<ApiError> for Failed {
    fn from(e: ApiError) -> Self {
        Failed::Error(e)
    }
}

impl Client {
    pub fn new(cfg: &Config) -> Result<Client, SetupError> {
        Ok(Client {
            http: super::tls::http_client(cfg)?,
            base: cfg.base_url.clone(),
            origin: reqwest::Url::parse(&cfg.base_url)
                .map(|u| super::error::origin(&u))
                .unwrap_or_else(|_| cfg.base_url.clone()),
            client_id: cfg.client_id.clone(),
            secret: cfg.client_secret.clone(),
            token: tokio::sync::Mutex::new(TokenState::default()),
            gate: gate_for(&format!("{}|{}", cfg.base_url, cfg.client_id)),
            budget: Budget::join(
                &format!("{}|{}", cfg.base_url, cfg.client_id),
                cfg.requests_per_second,
            ),
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
    pub(super) fn note(&self, scope: Scope<'_>, cause: &Cause) {
        if let Some(log) = &self.log {
            log.failure(&cause.key, scope, cause.level, &cause.text, cause.advice);
        }
    }

    /// Waits for this client id's next request slot (`requests_per_second`), counting the wait.
    pub(super) async fn spend_budget(&self) {
        let waited = self.budget.take().await;
        if !waited.is_zero() {
            self.metrics.budget_wait(waited);
        }
    }

    /// One occurrence of `cause` for the stream the current task pulls.
    fn note_here(&self, cause: &Cause) {
        let stream = crate::log::current_stream();
        let scope = stream.as_deref().map_or(Scope::Unscoped, Scope::Stream);
        self.note(scope, cause);
    }

    /// Sends a request built by `build` with the bearer token, retrying what the error's own
    /// classification says can be retried: up to `backoff.attempts` more times, after the
    /// back-off delay (or, after a data call's 429, the wait the gate imposes on every stream).
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
            let e = match self.send_once(what, &build, attempt).await {
                Ok(answer) => return Ok(answer),
                Err(Failed::Unauthorized(_)) if !refreshed => {
                    // The token may have been revoked early: once with a fresh one.
                    refreshed = true;
                    self.token.lock().await.token = None;
                    continue;
                }
                Err(Failed::Unauthorized(e) | Failed::Error(e)) => e,
            };
            if !e.is_retryable() || attempt >= self.backoff.attempts {
                return Err(e);
            }
            self.metrics.retry();
            let own_429 =
                matches!(e, ApiError::RateLimited { .. }) && self.gate.wait_time().is_some();
            if !own_429 {
                // After this attempt's own 429 the gate's wait, at the top of the loop, is the
                // back-off; every other failure (a token request's 429 too) backs off here.
                tokio::time::sleep(self.backoff.delay(attempt)).await;
            }
            attempt += 1;
        }
    }

    /// One attempt: the token, the request, its answer classified. Failures of the network
    /// and the server are logged here (once per cause), and a 429 closes the gate.
    async fn send_once(
        &self,
        what: &str,
        build: &impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
        attempt: u32,
    ) -> Result<(reqwest::header::HeaderMap, bytes::Bytes), Failed> {
        let token = self.access_token(false).await?;
        let req = build(&self.http, &self.base)
            .header("Authorization", format!("Bearer {}", token.expose_secret()))
            .header("Accept", "application/json")
            .build()
            .map_err(|e| {
                ApiError::Decode(format!(
                    "{what}: cannot build the request: {}",
                    e.without_url()
                ))
            })?;
        let path = req.url().path().to_string();
        let origin = self.origin.as_str();
        self.spend_budget().await;
        let resp = match self.http.execute(req).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.request(&path, 0);
                self.note_here(&network_cause(origin, &e));
                return Err(transport_error(what, &e).into());
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
                ))
                .into())
            }
            Err(e) => {
                self.note_here(&network_cause(origin, &e));
                return Err(ApiError::Transport(format!(
                    "{what}: reading the response: {}",
                    e.without_url()
                ))
                .into());
            }
        };
        let detail = || format!("{what}: {}", error_detail(&body));
        Err(match status {
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
            401 => Failed::Unauthorized(ApiError::Unauthorized { detail: detail() }),
            403 => ApiError::Forbidden { detail: detail() }.into(),
            404 => ApiError::NotFound { detail: detail() }.into(),
            429 => {
                let wait = retry_wait(&headers).unwrap_or_else(|| self.backoff.delay(attempt + 2));
                self.gate.block_for(wait);
                self.metrics.rate_limit_wait();
                self.note_here(&rate_cause(origin, wait));
                ApiError::RateLimited { wait }.into()
            }
            s if s >= 500 => {
                let detail = error_detail(&body);
                self.note_here(&server_cause(origin, &path, s, &detail));
                ApiError::Server {
                    status: s,
                    detail: format!("{what}: {detail}"),
                }
                .into()
            }
            s => ApiError::BadRequest {
                status: s,
                detail: detail(),
            }
            .into(),
        })
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
