//! Threat-intel feeds (`/api/ttp/threat-intel/get-feed`): `malware_customer` and
//! `malware_grid`, as STIX (one record per indicator, with the objects its relationships point
//! to resolved into `related`) or CSV (one record per row). The response header
//! `x-mc-threat-feed-next-token` names the next file of the window; without it the window is
//! done. Indicators already emitted are remembered for a day, so a feed that repeats them does
//! not produce duplicates.

use super::context::SourceCtx;
use super::emit::Emitter;
use super::{
    explain, fmt_time, now_ms, BoxFuture, Found, Outcome, ProbeFailure, Source, Stop, Stream,
};
use crate::config::{Config, THREAT_FEEDS};
use crate::encode::TimeField;
use crate::handoff::Commit;
use crate::mimecast::client::{fail_in_200, ApiError, Client};
use crate::schema::Records;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

const PATH: &str = "/api/ttp/threat-intel/get-feed";
const REMEMBER_MS: i64 = 86_400_000;
const MAX_LOOKBACK_MS: i64 = 7 * 86_400_000;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// End of the last window read completely.
    done: i64,
    /// Continuation within the window being read, and that window's end.
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    window_end: i64,
    #[serde(default)]
    seen: Vec<(u64, i64)>,
}

/// The `threat_intel` source: one stream per selected feed.
pub struct ThreatIntel;

pub static THREAT_INTEL: ThreatIntel = ThreatIntel;

impl Source for ThreatIntel {
    fn name(&self) -> &'static str {
        "threat_intel"
    }

    fn permission(&self) -> Option<&'static str> {
        None
    }

    fn records(&self) -> Records {
        Records::ThreatIndicator
    }

    fn selection(&self, cfg: &Config) -> String {
        format!("threat_intel:{}", cfg.threat_intel_feeds.join(","))
    }

    fn streams(&'static self, ctx: &SourceCtx) -> Vec<Box<dyn Stream>> {
        ctx.cfg
            .threat_intel_feeds
            .iter()
            .filter_map(|f| THREAT_FEEDS.iter().copied().find(|known| known == f))
            .map(|feed| -> Box<dyn Stream> {
                let key = super::stream_key("threat_intel", feed);
                Box::new(Feed {
                    feed,
                    cur: ctx.state.cursor(&key),
                    key,
                })
            })
            .collect()
    }

    /// The first indicator of the last hour of the first feed.
    fn probe<'a>(
        &'static self,
        client: &'a Client,
        cfg: &'a Config,
        sample: bool,
    ) -> BoxFuture<'a, Result<Found, ProbeFailure>> {
        Box::pin(async move {
            let now = now_ms();
            let feed = cfg
                .threat_intel_feeds
                .first()
                .map(String::as_str)
                .unwrap_or("malware_customer");
            let data0 = json!({"feedType": feed, "fileType": "stix", "start": fmt_time(now - 3_600_000), "end": fmt_time(now)});
            let answer = ask(client, "threat_intel check", data0).await?;
            let first = match (answer.empty, &answer.json) {
                (false, Some(v)) => stix_records(v).into_iter().next(),
                _ => None,
            };
            Ok(Found::first(first, sample))
        })
    }
}

/// One answer of the feed endpoint.
struct Answer {
    headers: reqwest::header::HeaderMap,
    bytes: bytes::Bytes,
    /// The body as JSON, if it is (a STIX bundle, or a failure).
    json: Option<Value>,
    /// A failure in place of a file: the window has no results. Other failures are errors.
    empty: bool,
}

/// Asks the feed endpoint for the file `data0` names.
async fn ask(client: &Client, what: &str, data0: Value) -> Result<Answer, ApiError> {
    let body = json!({ "data": [data0] });
    let (headers, bytes) = client
        .call(what, |http, base| {
            http.post(format!("{base}{PATH}")).json(&body)
        })
        .await?;
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let failure = json
        .as_ref()
        .filter(|v| v.get("fail").is_some() && v.get("objects").is_none());
    match failure.and_then(fail_in_200) {
        Some(ApiError::FailIn200 { detail, .. }) if detail.contains("No results") => {}
        Some(e) => return Err(e),
        None => {}
    }
    Ok(Answer {
        empty: failure.is_some(),
        headers,
        bytes,
        json,
    })
}

/// One feed: a stream named `threat_intel/<feed>`.
struct Feed {
    feed: &'static str,
    key: String,
    cur: Cursor,
}

impl Stream for Feed {
    fn key(&self) -> &str {
        &self.key
    }

    fn poll<'a>(&'a mut self, ctx: &'a Arc<SourceCtx>) -> BoxFuture<'a, Result<Outcome, Stop>> {
        Box::pin(async move {
            poll(self.feed, &self.key, ctx, &mut self.cur).await?;
            Ok(Outcome::Polled)
        })
    }

    fn explain(&self, e: &ApiError) -> String {
        explain(e, &self.key, None)
    }
}

fn fnv(s: &str) -> u64 {
    crate::hash::fnv1a(s.as_bytes())
}

/// One record per STIX indicator, with the objects related to it embedded.
pub fn stix_records(bundle: &Value) -> Vec<Value> {
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let by_id: HashMap<&str, &Value> = objects
        .iter()
        .filter_map(|o| Some((o.get("id")?.as_str()?, o)))
        .collect();
    let mut related: HashMap<&str, Vec<Value>> = HashMap::new();
    for rel in objects
        .iter()
        .filter(|o| o.get("type").and_then(Value::as_str) == Some("relationship"))
    {
        let (Some(src), Some(dst)) = (
            rel.get("source_ref").and_then(Value::as_str),
            rel.get("target_ref").and_then(Value::as_str),
        ) else {
            continue;
        };
        let kind = rel
            .get("relationship_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        for (from, to) in [(src, dst), (dst, src)] {
            if let Some(obj) = by_id.get(to) {
                let mut o = (*obj).clone();
                if let Some(m) = o.as_object_mut() {
                    m.insert("relationship_type".into(), json!(kind));
                }
                related.entry(from).or_default().push(o);
            }
        }
    }
    objects
        .iter()
        .filter(|o| o.get("type").and_then(Value::as_str) == Some("indicator"))
        .map(|ind| {
            let mut rec = ind.clone();
            let id = ind.get("id").and_then(Value::as_str).unwrap_or("");
            if let Some(m) = rec.as_object_mut() {
                m.insert(
                    "related".into(),
                    Value::Array(related.remove(id).unwrap_or_default()),
                );
            }
            rec
        })
        .collect()
}

/// One record per CSV row, keyed by the header row (pipe-delimited).
pub fn csv_records(text: &str) -> Vec<Value> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.split('|').map(str::trim).collect();
    lines
        .map(|l| {
            let mut m = Map::new();
            for (i, v) in l.split('|').enumerate() {
                let key = cols
                    .get(i)
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| format!("column{i}"));
                m.insert(key, json!(v.trim()));
            }
            Value::Object(m)
        })
        .collect()
}

/// Reads feed files until the window is done. Whatever way it ends, what was read is sent
/// with the position reached.
async fn poll(
    feed: &'static str,
    key: &str,
    ctx: &SourceCtx,
    cur: &mut Cursor,
) -> Result<(), Stop> {
    let time_field = if ctx.cfg.threat_intel_format == "stix" {
        "modified"
    } else {
        "Timestamp"
    };
    let mut em = Emitter::new(
        ctx,
        "threat_intel",
        Records::ThreatIndicator,
        TimeField::Text(time_field),
    );
    let result = read_feed(feed, key, ctx, cur, &mut em).await;
    em.mark(Commit::of(key, &*cur));
    em.send().await?;
    result
}

async fn read_feed(
    feed: &'static str,
    key: &str,
    ctx: &SourceCtx,
    cur: &mut Cursor,
    em: &mut Emitter<'_>,
) -> Result<(), Stop> {
    let stix = ctx.cfg.threat_intel_format == "stix";
    let now = now_ms();
    if cur.token.is_none() {
        let start = if cur.done > 0 {
            cur.done
        } else {
            now - (ctx.cfg.initial_lookback.as_millis() as i64).min(MAX_LOOKBACK_MS)
        };
        if now - start < 60_000 {
            return Ok(());
        }
        cur.window_end = now;
        cur.done = cur.done.max(start);
    }
    for _ in 0..10_000 {
        let data0 = match &cur.token {
            Some(t) => {
                json!({"feedType": feed, "fileType": ctx.cfg.threat_intel_format, "token": t})
            }
            None => json!({"feedType": feed, "fileType": ctx.cfg.threat_intel_format,
                           "start": fmt_time(cur.done), "end": fmt_time(cur.window_end)}),
        };
        let answer = ask(&ctx.client, &format!("{key} {PATH}"), data0).await?;
        // An answer that says the window has no results: it is done.
        if !answer.empty {
            let records =
                if stix {
                    stix_records(answer.json.as_ref().ok_or_else(|| {
                        ApiError::Decode(format!("{key}: STIX bundle is not JSON"))
                    })?)
                } else {
                    csv_records(&String::from_utf8_lossy(&answer.bytes))
                };
            for r in &records {
                let id = r
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| r.to_string());
                let h = fnv(&id);
                if cur.seen.iter().any(|(x, _)| *x == h) {
                    continue;
                }
                cur.seen.push((h, now));
                em.record_with(
                    &serde_json::to_vec(r).unwrap_or_default(),
                    &[("feed_type", feed)],
                );
            }
        }
        let next = answer
            .headers
            .get("x-mc-threat-feed-next-token")
            .and_then(|h| h.to_str().ok())
            .filter(|t| !t.is_empty() && Some(*t) != cur.token.as_deref())
            .map(str::to_string);
        let finished = next.is_none();
        cur.token = next;
        if finished {
            cur.done = cur.window_end;
            cur.seen.retain(|(_, t)| *t >= now - REMEMBER_MS);
        }
        em.mark(Commit::of(key, &*cur));
        em.send_due().await?;
        if finished {
            break;
        }
    }
    Ok(())
}

/// For the state-format test: the cursor saved under `key` reads as the fixture wrote it, and
/// is written back byte for byte.
#[cfg(test)]
pub(crate) fn saved_cursor_reads(store: &crate::state::StateStore, key: &str) -> bool {
    let c: Cursor = store.cursor(key);
    store.get(key) == Some(crate::state::cursor::encode(&c))
        && c.done == 1_764_547_200_000
        && c.token.is_none()
        && c.window_end == 1_764_633_600_000
        && c.seen == [(42, 1_764_547_100_000)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stix_indicators_carry_their_related_objects() {
        let bundle = json!({"type": "bundle", "objects": [
            {"type": "malware", "id": "malware--1", "name": "Transaction notice"},
            {"type": "indicator", "id": "indicator--a", "pattern": "[file:hashes.'SHA-256' = 'ab']", "modified": "2021-11-19T01:28:37.099Z"},
            {"type": "indicator", "id": "indicator--b", "pattern": "x"},
            {"type": "relationship", "id": "relationship--r", "relationship_type": "indicates", "source_ref": "indicator--a", "target_ref": "malware--1"}
        ]});
        let recs = stix_records(&bundle);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0]["related"][0]["name"], "Transaction notice");
        assert_eq!(recs[0]["related"][0]["relationship_type"], "indicates");
        assert_eq!(recs[1]["related"], json!([]));
    }

    #[test]
    fn csv_rows_by_header() {
        let recs = csv_records("Timestamp|SHA256|Note\n2024-01-01T00:00:00+0000|ab|x|extra\n\n");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0]["SHA256"], "ab");
        assert_eq!(recs[0]["column3"], "extra");
    }
}
