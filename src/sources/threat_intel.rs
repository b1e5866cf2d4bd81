//! Threat-intel feeds (`/api/ttp/threat-intel/get-feed`): `malware_customer` and
//! `malware_grid`, as STIX (one record per indicator, with the objects its relationships point
//! to resolved into `related`) or CSV (one record per row). The response header
//! `x-mc-threat-feed-next-token` names the next file of the window; without it the window is
//! done. Indicators already emitted are remembered for a day, so a feed that repeats them does
//! not produce duplicates.

use super::api_logs::{explain, now_ms};
use super::emit::Emitter;
use crate::collect::{Commit, SourceCtx};
use crate::encode::TimeField;
use crate::mimecast::client::{fail_in_200, ApiError};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const PATH: &str = "/api/ttp/threat-intel/get-feed";
const REMEMBER_MS: i64 = 86_400_000;
const MAX_LOOKBACK_MS: i64 = 7 * 86_400_000;

#[derive(Clone, Debug, Default, PartialEq)]
struct Cursor {
    /// End of the last window read completely.
    done: i64,
    /// Continuation within the window being read, and that window's end.
    token: Option<String>,
    window_end: i64,
    seen: Vec<(u64, i64)>,
}

impl Cursor {
    fn encode(&self) -> String {
        json!({"v": 1, "done": self.done, "token": self.token, "window_end": self.window_end, "seen": self.seen}).to_string()
    }
    fn decode(s: &str) -> Option<Cursor> {
        let v: Value = serde_json::from_str(s).ok()?;
        (v.get("v")?.as_u64()? == 1).then_some(())?;
        Some(Cursor {
            done: v.get("done")?.as_i64()?,
            token: v.get("token").and_then(Value::as_str).map(str::to_string),
            window_end: v.get("window_end").and_then(Value::as_i64).unwrap_or(0),
            seen: v
                .get("seen")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_i64()?)))
                        .collect()
                })
                .unwrap_or_default(),
        })
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

/// The stream's name: `threat_intel/malware_grid`.
pub fn key(feed: &str) -> String {
    format!("threat_intel/{feed}")
}

pub async fn run(feed: &'static str, ctx: Arc<SourceCtx>) {
    let key = key(feed);
    let mut cur = ctx
        .state
        .get(&key)
        .and_then(|s| Cursor::decode(&s))
        .unwrap_or_default();
    loop {
        match poll(feed, &key, &ctx, &mut cur).await {
            Ok(true) => return,
            Ok(false) => ctx.log.stream_ok(&key),
            Err(e) => {
                super::report_failure(&ctx, &key, &e, explain(&e, &key, None));
            }
        }
        super::pause(ctx.cfg.poll_interval.max(Duration::from_secs(1))).await;
    }
}

/// Reads feed files until the window is done. Ok(true) when the instance is stopping.
/// Whatever way it ends, what was read is sent with the position reached.
async fn poll(
    feed: &'static str,
    key: &str,
    ctx: &SourceCtx,
    cur: &mut Cursor,
) -> Result<bool, ApiError> {
    let time_field = if ctx.cfg.threat_intel_format == "stix" {
        "modified"
    } else {
        "Timestamp"
    };
    let mut em = Emitter::new(ctx, "threat_intel", TimeField::Text(time_field));
    let result = read_feed(feed, key, ctx, cur, &mut em).await;
    em.mark(Commit {
        key: key.to_string(),
        cursor: cur.encode(),
    });
    let closed = em.send().await.is_err();
    result.map(|stopping| stopping || closed)
}

async fn read_feed(
    feed: &'static str,
    key: &str,
    ctx: &SourceCtx,
    cur: &mut Cursor,
    em: &mut Emitter<'_>,
) -> Result<bool, ApiError> {
    let stix = ctx.cfg.threat_intel_format == "stix";
    let now = now_ms();
    if cur.token.is_none() {
        let start = if cur.done > 0 {
            cur.done
        } else {
            now - (ctx.cfg.initial_lookback.as_millis() as i64).min(MAX_LOOKBACK_MS)
        };
        if now - start < 60_000 {
            return Ok(false);
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
                           "start": super::api_logs::fmt_time(cur.done), "end": super::api_logs::fmt_time(cur.window_end)}),
        };
        let body = json!({"data": [data0]});
        let (headers, bytes) = ctx
            .client
            .call(&format!("{key} {PATH}"), |http, base| {
                http.post(format!("{base}{PATH}")).json(&body)
            })
            .await?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if let Some(v) = parsed
            .as_ref()
            .filter(|v| v.get("fail").is_some() && v.get("objects").is_none())
        {
            match fail_in_200(v) {
                Some(ApiError::FailIn200 { detail, .. }) if detail.contains("No results") => {
                    // Nothing in this window: it is done.
                }
                Some(e) => return Err(e),
                None => {}
            }
        } else {
            let records =
                if stix {
                    stix_records(&parsed.ok_or_else(|| {
                        ApiError::Decode(format!("{key}: STIX bundle is not JSON"))
                    })?)
                } else {
                    csv_records(&String::from_utf8_lossy(&bytes))
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
        let next = headers
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
        em.mark(Commit {
            key: key.to_string(),
            cursor: cur.encode(),
        });
        if em.send_due().await.is_err() {
            return Ok(true);
        }
        if finished {
            break;
        }
    }
    Ok(false)
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
