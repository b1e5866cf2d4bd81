//! Connection check: a token, then one minimal request per selected source, each classified with
//! what to do about it. Used by the `mimecast-check` command and the `startup_check` property.

use crate::config::Config;
use crate::mimecast::client::{ApiError, Client};
use crate::sources::{explain, ProbeFailure};
use serde_json::Value;

pub use crate::sources::Verdict;

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::AuthFailed => "auth failed",
            Verdict::MissingPermission => "missing permission",
            Verdict::NotLicensed => "not licensed / not available",
            Verdict::RateLimited => "rate limited",
            Verdict::Network => "network or TLS error",
            Verdict::Failed => "failed",
        }
    }
}

pub struct Probe {
    pub source: String,
    pub verdict: Verdict,
    /// What happened and what to do.
    pub detail: String,
    /// The first record, when one came back and a sample was asked for. For SIEM batch, the
    /// first record of the first listed file, never the listing entry (its URL is signed).
    pub sample: Option<Value>,
}

fn classify(source: &str, e: &ApiError, permission: Option<&str>) -> (Verdict, String) {
    let verdict = match e {
        ApiError::BadCredentials { .. } | ApiError::Unauthorized { .. } => Verdict::AuthFailed,
        ApiError::Forbidden { .. } => Verdict::MissingPermission,
        ApiError::NotFound { .. } => Verdict::NotLicensed,
        ApiError::RateLimited { .. } => Verdict::RateLimited,
        ApiError::Transport(_) | ApiError::Tls(_) => Verdict::Network,
        _ => Verdict::Failed,
    };
    (verdict, explain(e, source, permission))
}

/// Runs the check for every selected source. Retries are off: the answer is wanted now.
pub async fn check(cfg: &Config, want_sample: bool) -> Result<Vec<Probe>, String> {
    let mut client = Client::new(cfg).map_err(|e| e.to_string())?;
    client.backoff.attempts = 0;
    let mut results = Vec::new();
    for src in &cfg.sources {
        let source = src.name().to_string();
        let probe = match src.probe(&client, cfg, want_sample).await {
            Ok(found) => Probe {
                source: source.clone(),
                verdict: Verdict::Ok,
                detail: if found.any {
                    "reachable; records available".into()
                } else {
                    "reachable; no records in the last hour".into()
                },
                sample: found.sample,
            },
            Err(ProbeFailure::Api(e)) => {
                let (verdict, detail) = classify(&source, &e, src.permission());
                Probe {
                    source: source.clone(),
                    verdict,
                    detail,
                    sample: None,
                }
            }
            Err(ProbeFailure::Other(verdict, detail)) => Probe {
                source: source.clone(),
                verdict,
                detail,
                sample: None,
            },
        };
        results.push(probe);
    }
    Ok(results)
}

/// The result as an aligned text table, one line per source.
pub fn table(probes: &[Probe]) -> String {
    let w = probes
        .iter()
        .map(|p| p.source.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!("{:<w$}  {:<28}  {}\n", "source", "result", "details");
    for p in probes {
        out.push_str(&format!(
            "{:<w$}  {:<28}  {}\n",
            p.source,
            p.verdict.label(),
            p.detail
        ));
        if let Some(s) = &p.sample {
            out.push_str(&format!("{:<w$}  {:<28}  sample: {}\n", "", "", s));
        }
    }
    out
}
