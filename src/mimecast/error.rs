//! What can go wrong talking to Mimecast: the classified error every call returns, the causes
//! the log groups failures by, and Mimecast's error bodies.

use crate::log::Level;
use serde_json::Value;
use std::time::Duration;

/// Why a call failed, classified for retries and for the operator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// Connection or timeout failure.
    #[error("network or TLS error: {0}; check base_url, DNS, proxy settings and ca_file")]
    Transport(String),
    /// The server's certificate was refused: retrying will not help.
    #[error("TLS certificate verification failed ({0}); if a proxy re-signs TLS traffic, set ca_file to its CA certificate (PEM)")]
    Tls(String),
    /// 429 that outlasted our retries.
    #[error("rate limited by Mimecast (HTTP 429); next attempt in {}s; if this persists, lower the number of sources per client id or raise poll_interval", wait.as_secs())]
    RateLimited { wait: Duration },
    /// 5xx that outlasted our retries.
    #[error("Mimecast server error HTTP {status}: {detail}; will retry")]
    Server { status: u16, detail: String },
    /// The token endpoint refused the credentials.
    #[error("Mimecast refused the client credentials ({detail}); {CREDENTIALS_ADVICE}")]
    BadCredentials { detail: String },
    /// The token endpoint answered something else than a token or a refusal: probably not a
    /// Mimecast API gateway.
    #[error("the token request failed{}: {detail}; {TOKEN_ADVICE}", with_status(*status))]
    TokenFailed { status: u16, detail: String },
    /// 401 on a data call even with a fresh token.
    #[error("HTTP 401 even with a fresh access token ({detail}); check that the API application is still enabled")]
    Unauthorized { detail: String },
    /// 403: the API application lacks a permission.
    #[error("HTTP 403 Forbidden ({detail}): the API application lacks the permission this log source needs")]
    Forbidden { detail: String },
    /// 404: endpoint not available to this tenant (licence) or object gone.
    #[error(
        "HTTP 404 ({detail}): this log source is not licensed or not available on this tenant"
    )]
    NotFound { detail: String },
    /// 400 and other 4xx: the request was refused as invalid.
    #[error("request refused with HTTP {status}: {detail}")]
    BadRequest { status: u16, detail: String },
    /// HTTP 200 whose body carries `fail[]`.
    #[error("Mimecast reported a failure inside HTTP 200: {detail}")]
    FailIn200 { detail: String, retryable: bool },
    /// The body was not what the endpoint documents.
    #[error("unexpected response body: {0}")]
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

pub(super) const CREDENTIALS_ADVICE: &str = "check client_id and client_secret, and that the API 2.0 application is enabled and not expired";
pub(super) const TOKEN_ADVICE: &str =
    "check base_url: it must be a Mimecast API 2.0 gateway such as https://api.services.mimecast.com";
const NETWORK_ADVICE: &str = "check base_url and the network path to it (DNS, firewall, proxy or HTTPS_PROXY); retrying with back-off";
const TLS_ADVICE: &str = "if a proxy re-signs TLS traffic, set ca_file to its CA certificate (PEM); otherwise check base_url";
const RATE_ADVICE: &str = "the plugin waits by itself; if this persists, lower the number of sources per client id or raise poll_interval";
const SERVER_ADVICE: &str = "retrying with back-off; nothing to do unless it lasts";

/// What a failed request says about its cause, for the log: the same whichever stream met it,
/// so that the streams it hits share one line.
pub(super) struct Cause {
    pub key: String,
    pub level: Level,
    pub text: String,
    pub advice: &'static str,
}

/// `scheme://host[:port]` of a URL: where a request went, without path, query or credentials.
pub(super) fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// The innermost error of `e`'s chain: what actually went wrong ("Connection refused").
pub(super) fn root_cause(e: &reqwest::Error) -> String {
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
pub(super) fn network_cause(origin: &str, e: &reqwest::Error) -> Cause {
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

pub(super) fn server_cause(origin: &str, path: &str, status: u16, detail: &str) -> Cause {
    Cause {
        key: format!("server|{origin}|{status}"),
        level: Level::Warn,
        text: format!("Mimecast server error HTTP {status} from {origin} ({path}: {detail})"),
        advice: SERVER_ADVICE,
    }
}

pub(super) fn rate_cause(origin: &str, wait: Duration) -> Cause {
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

pub(super) trait WithoutUrl {
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

fn with_status(status: u16) -> String {
    if status > 0 {
        format!(" with HTTP {status}")
    } else {
        String::new()
    }
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
    fn messages_name_the_cause_and_the_remedy() {
        let t = ApiError::TokenFailed {
            status: 502,
            detail: "d".into(),
        };
        assert_eq!(
            t.to_string(),
            format!("the token request failed with HTTP 502: d; {TOKEN_ADVICE}")
        );
        let t = ApiError::TokenFailed {
            status: 0,
            detail: "d".into(),
        };
        assert_eq!(
            t.to_string(),
            format!("the token request failed: d; {TOKEN_ADVICE}")
        );
        let r = ApiError::RateLimited {
            wait: Duration::from_millis(2500),
        };
        assert!(r.to_string().contains("next attempt in 2s;"), "{r}");
        assert!(ApiError::BadCredentials { detail: "x".into() }
            .to_string()
            .ends_with(CREDENTIALS_ADVICE));
    }
}
