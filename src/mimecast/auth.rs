//! The access token: OAuth2 client credentials against `/oauth/token`, cached and refreshed
//! before it expires. The token is the instance's: a failure to get one is every stream's.

use super::client::Client;
use super::error::{
    error_detail, network_cause, rate_cause, root_cause, server_cause, transport_error, ApiError,
    Cause, CREDENTIALS_ADVICE, TOKEN_ADVICE,
};
use crate::log::{Level, Scope};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::{Duration, Instant};

pub(super) struct Token {
    value: SecretString,
    refresh_at: Instant,
}

/// The instance's access token, and what became of the last request for one.
#[derive(Default)]
pub(super) struct TokenState {
    pub(super) token: Option<Token>,
    /// The last token request failed: when, how, and the cause it was logged as, until a
    /// token comes again. Callers that waited for that request share its failure.
    failed: Option<(Instant, ApiError, String)>,
}

impl Client {
    /// A valid access token, fetched or refreshed when due. The token is the instance's: a
    /// failure to get one is every stream's, logged once as such, and callers that waited
    /// while the request was under way get its failure instead of asking again at once.
    pub(super) async fn access_token(&self, force: bool) -> Result<SecretString, ApiError> {
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
        self.spend_budget().await;
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
}
