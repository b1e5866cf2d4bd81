//! Connection check: a token, then one minimal request per selected source, each classified with
//! what to do about it. Used by the `mimecast-check` command and the `startup_check` property.

use crate::config::{Config, SiemMode};
use crate::mimecast::client::{fail_in_200, paged_body, transport_error, ApiError, Client};
use crate::sources::api_logs::{self, fmt_time, now_ms};
use crate::sources::gzlines::{GzLines, Line};
use crate::sources::siem_batch::object_path;
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
    /// The first record, when one came back and a sample was asked for. For SIEM batch, the
    /// first record of the first listed file, never the listing entry (its URL is signed).
    pub sample: Option<Value>,
}

/// What one minimal request found.
struct Found {
    /// The source has something to collect (records, or batch files listed).
    any: bool,
    /// A decoded record, when a sample was asked for and one came back.
    sample: Option<Value>,
}

/// Why a probe failed: the API's answer, or (SIEM batch samples) the batch file download.
enum Failure {
    Api(ApiError),
    File(Verdict, String),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

/// The first record of a batch file, fetched as the plugin fetches it: a plain GET of the
/// pre-signed URL without the bearer token, gunzipped and split by the plugin's own decoder.
/// Only as much of the file is read as that record needs. Messages name the file by its path;
/// the URL's query (the signature) appears nowhere.
async fn first_record_of_file(
    client: &Client,
    source: &str,
    url: &str,
) -> Result<Option<Value>, Failure> {
    let path = object_path(url);
    let network = |e: &reqwest::Error| {
        let m = transport_error(&format!("batch file {path}"), e).to_string();
        Failure::File(
            Verdict::Network,
            format!(
                "{source}: listing works, but downloading a batch file failed: {m}; the plugin downloads batch files from the host the listing names (through proxy, if set), so it must be reachable from here"
            )
            .replace(url, path),
        )
    };
    let mut resp = client.download(url).await.map_err(|e| network(&e))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(Failure::File(
            Verdict::Failed,
            format!("{source}: listing works, but batch file {path} answered HTTP {status}; the plugin downloads batch files without the bearer token from the pre-signed URL of the listing, so check that nothing on the way (proxy, firewall) alters or blocks those requests"),
        ));
    }
    let corrupt = |e: std::io::Error| {
        Failure::File(
            Verdict::Failed,
            format!("{source}: listing works, but batch file {path} is not valid gzip ({e})"),
        )
    };
    fn keep_first(first: &mut Option<Vec<u8>>, line: Line) {
        if let (None, Line::Json(b)) = (&first, line) {
            *first = Some(b.to_vec());
        }
    }
    let mut gz = GzLines::new();
    let mut first: Option<Vec<u8>> = None;
    while first.is_none() {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                for piece in chunk.chunks(16 << 10) {
                    gz.feed(piece, &mut |l| keep_first(&mut first, l))
                        .map_err(corrupt)?;
                    if first.is_some() {
                        break;
                    }
                }
            }
            Ok(None) => {
                gz.finish(&mut |l| keep_first(&mut first, l))
                    .map_err(corrupt)?;
                break;
            }
            Err(e) => return Err(network(&e)),
        }
    }
    match first {
        None => Ok(None),
        Some(line) => serde_json::from_slice(&line).map(Some).map_err(|e| {
            Failure::File(
                Verdict::Failed,
                format!("{source}: the first line of batch file {path} is not JSON ({e})"),
            )
        }),
    }
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

/// The minimal request for one source: whether it has something to collect and, when asked
/// for, its first record.
async fn one(
    client: &Client,
    cfg: &Config,
    source: &str,
    want_sample: bool,
) -> Result<Found, Failure> {
    let found = |rec: Option<Value>| Found {
        any: rec.is_some(),
        sample: rec.filter(|_| want_sample),
    };
    let now = now_ms();
    let first = |v: &Value, ptr: &str| v.pointer(ptr).cloned();
    match source {
        "siem_cg" | "siem_ci" => {
            let fam = source.strip_prefix("siem_").unwrap_or(source);
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
            if cfg.siem_mode == SiemMode::Stream {
                return Ok(found(first(&v, "/value/0")));
            }
            // A batch listing names files by pre-signed URL: the entry itself is never shown.
            let url = v.pointer("/value/0/url").and_then(Value::as_str);
            match (url, want_sample) {
                (Some(url), true) => Ok(Found {
                    any: true,
                    sample: first_record_of_file(client, source, url).await?,
                }),
                (url, _) => Ok(Found {
                    any: url.is_some(),
                    sample: None,
                }),
            }
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
                    Ok(found(None))
                }
                Some(e) => Err(e.into()),
                None => Ok(found(
                    crate::sources::threat_intel::stix_records(&v)
                        .into_iter()
                        .next(),
                )),
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
                return Err(ApiError::Decode(format!("unknown source {other}")).into());
            };
            let v = client
                .post_api(&format!("{other} check"), path, &paged_body(1, None, data0))
                .await?;
            Ok(found(first(&v, &ptr)))
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
        let probe = match one(&client, cfg, source, want_sample).await {
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
            Err(Failure::Api(e)) => {
                let (verdict, detail) = classify(source, &e, permission_of(source));
                Probe {
                    source: source.clone(),
                    verdict,
                    detail,
                    sample: None,
                }
            }
            Err(Failure::File(verdict, detail)) => Probe {
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
