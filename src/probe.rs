//! Connection check: a token, then one minimal request per selected source, each classified with
//! what to do about it. Used by the `mimecast-check` command and the `startup_check` property.

use crate::config::{Config, SiemMode};
use crate::mimecast::client::{fail_in_200, paged_body, ApiError, Client};
use crate::sources::api_logs::{self, fmt_time, now_ms};
use crate::sources::snapshot;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    AuthFailed,
    MissingPermission,
    NotLicensed,
    RateLimited,
    Network,
    Failed,
}

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
    /// The first record, when one came back and a sample was asked for.
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
    (verdict, api_logs::explain(e, source, permission))
}

/// The minimal request for one source: the answer's first record, if any.
async fn one(client: &Client, cfg: &Config, source: &str) -> Result<Option<Value>, ApiError> {
    let now = now_ms();
    let first = |v: &Value, ptr: &str| v.pointer(ptr).cloned();
    match source {
        "siem_cg" | "siem_ci" => {
            let fam = &source[5..];
            let (path, q): (String, Vec<(&str, String)>) = match cfg.siem_mode {
                SiemMode::Batch => {
                    let ty = if fam == "cg" {
                        &cfg.siem_types
                    } else {
                        &cfg.siem_ci_types
                    };
                    (
                        format!("/siem/v1/batch/events/{fam}"),
                        vec![
                            ("type", ty.first().cloned().unwrap_or_default()),
                            ("pageSize", "1".into()),
                        ],
                    )
                }
                SiemMode::Stream => {
                    let start = jiff::Timestamp::from_millisecond(now - 3_600_000)
                        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string())
                        .unwrap_or_default();
                    (
                        format!("/siem/v1/events/{fam}"),
                        vec![("pageSize", "1".into()), ("dateRangeStartsAt", start)],
                    )
                }
            };
            let v = client
                .get_json(&format!("{source} check"), &path, &q)
                .await?;
            Ok(first(&v, "/value/0"))
        }
        "threat_intel" => {
            let feed = cfg
                .threat_intel_feeds
                .first()
                .cloned()
                .unwrap_or_else(|| "malware_customer".into());
            let body = json!({"data": [{"feedType": feed, "fileType": "stix", "start": fmt_time(now - 3_600_000), "end": fmt_time(now)}]});
            let (_, bytes) = client
                .call("threat_intel check", |http, base| {
                    http.post(format!("{base}/api/ttp/threat-intel/get-feed"))
                        .json(&body)
                })
                .await?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            match fail_in_200(&v) {
                Some(ApiError::FailIn200 { detail, .. }) if detail.contains("No results") => {
                    Ok(None)
                }
                Some(e) => Err(e),
                None => Ok(crate::sources::threat_intel::stix_records(&v)
                    .into_iter()
                    .next()),
            }
        }
        other => {
            let (path, data0, ptr) = if let Some(spec) = api_logs::spec(other) {
                let mut d = serde_json::Map::new();
                d.insert(spec.from_field.into(), json!(fmt_time(now - 3_600_000)));
                d.insert(spec.to_field.into(), json!(fmt_time(now)));
                let ptr = match spec.nest {
                    Some(n) => format!("/data/0/{n}/0"),
                    None => "/data/0".into(),
                };
                (spec.path, json!([d]), ptr)
            } else if let Some(spec) = snapshot::spec(other) {
                let ptr = if other == "dashboard" {
                    "/data/0/notifications"
                } else {
                    "/data/0"
                };
                (
                    spec.path,
                    if other == "hold_list" {
                        json!([{"admin": true}])
                    } else {
                        json!([])
                    },
                    ptr.to_string(),
                )
            } else {
                return Err(ApiError::Decode(format!("unknown source {other}")));
            };
            let v = client
                .post_api(&format!("{other} check"), path, &paged_body(1, None, data0))
                .await?;
            Ok(first(&v, &ptr))
        }
    }
}

fn permission_of(source: &str) -> Option<&'static str> {
    match source {
        "siem_cg" | "siem_ci" => {
            Some("Security Events and Data Retrieval | Threat and Security Events (SIEM) | Read")
        }
        s => api_logs::spec(s)
            .and_then(|p| p.permission)
            .or_else(|| snapshot::spec(s).and_then(|p| p.permission)),
    }
}

/// Runs the check for every selected source. Retries are off: the answer is wanted now.
pub async fn check(cfg: &Config, want_sample: bool) -> Result<Vec<Probe>, String> {
    let mut client = Client::new(cfg)?;
    client.backoff.attempts = 0;
    let mut results = Vec::new();
    for source in &cfg.sources {
        let r = one(&client, cfg, source).await;
        let probe = match r {
            Ok(sample) => Probe {
                source: source.clone(),
                verdict: Verdict::Ok,
                detail: if sample.is_some() {
                    "reachable; records available".into()
                } else {
                    "reachable; no records in the last hour".into()
                },
                sample: if want_sample { sample } else { None },
            },
            Err(e) => {
                let (verdict, detail) = classify(source, &e, permission_of(source));
                Probe {
                    source: source.clone(),
                    verdict,
                    detail,
                    sample: None,
                }
            }
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
