//! SIEM stream mode (`/siem/v1/events/{cg,ci}`): events inline, paged with `nextPage`, inside
//! the API's 24-hour window. The API may return events of the previous page again, so the
//! identities (hashes) of the last pages' events are kept with the position and repeats are
//! dropped.

use super::api_logs::{explain, now_ms};
use super::emit::Emitter;
use super::siem_batch::Family;
use crate::collect::{Commit, SourceCtx};
use crate::encode::TimeField;
use crate::mimecast::client::ApiError;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The stream serves the last 24 hours; start a little inside that.
const WINDOW_MS: i64 = 23 * 3_600_000 + 50 * 60_000;

#[derive(Clone, Debug, Default, PartialEq)]
struct Cursor {
    next: Option<String>,
    recent: VecDeque<u64>,
}

impl Cursor {
    fn encode(&self) -> String {
        json!({"v": 1, "next": self.next, "recent": self.recent}).to_string()
    }
    fn decode(s: &str) -> Option<Cursor> {
        let v: Value = serde_json::from_str(s).ok()?;
        (v.get("v")?.as_u64()? == 1).then_some(())?;
        Some(Cursor {
            next: v.get("next").and_then(Value::as_str).map(str::to_string),
            recent: v
                .get("recent")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        })
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    crate::hash::fnv1a(bytes)
}

fn path(family: Family) -> &'static str {
    match family {
        Family::Cg => "/siem/v1/events/cg",
        Family::Ci => "/siem/v1/events/ci",
    }
}

/// The stream's name: `siem_cg/stream`.
pub fn key(family: Family) -> String {
    format!("{}/stream", family.source())
}

pub async fn run(family: Family, types: Vec<String>, ctx: Arc<SourceCtx>) {
    let key = key(family);
    let mut cur = ctx
        .state
        .get(&key)
        .and_then(|s| Cursor::decode(&s))
        .unwrap_or_default();
    loop {
        match poll(family, &types, &key, &ctx, &mut cur).await {
            Ok(None) => return,
            Ok(Some(true)) => {
                ctx.client.metrics.progress(&key, true, 0);
                ctx.log.stream_ok(&key);
                super::pause(ctx.cfg.poll_interval).await;
            }
            Ok(Some(false)) => ctx.log.stream_ok(&key),
            Err(ApiError::BadRequest { detail, .. }) if cur.next.is_some() => {
                ctx.log.warn(format_args!(
                    "{key}: the API refused the saved page token ({detail}); it is probably older than the stream's 24-hour window. \
                     Restarting from 24 hours ago: events older than that were not collected"
                ));
                cur.next = None;
            }
            Err(e) => {
                super::report_failure(&ctx, &key, &e, explain(&e, &key, Some("Security Events and Data Retrieval | Threat and Security Events (SIEM) | Read")));
                super::pause(ctx.cfg.poll_interval.min(Duration::from_secs(60))).await;
            }
        }
    }
}

/// Reads one page. Ok(Some(caught_up)), Ok(None) when the instance is stopping.
async fn poll(
    family: Family,
    types: &[String],
    key: &str,
    ctx: &SourceCtx,
    cur: &mut Cursor,
) -> Result<Option<bool>, ApiError> {
    let mut q: Vec<(&str, String)> = vec![("pageSize", ctx.cfg.page_size.to_string())];
    match &cur.next {
        Some(t) => q.push(("nextPage", t.clone())),
        None => {
            let back = (ctx.cfg.initial_lookback.as_millis() as i64).min(WINDOW_MS);
            let start = jiff::Timestamp::from_millisecond(now_ms() - back)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string())
                .unwrap_or_default();
            q.push(("types", types.join(",")));
            q.push(("dateRangeStartsAt", start));
        }
    }
    let v = ctx
        .client
        .get_json(&format!("{key} events"), path(family), &q)
        .await?;
    let events = v
        .get("value")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut em = Emitter::new(ctx, family.source(), TimeField::EpochMillis("timestamp"));
    for e in events {
        let bytes = serde_json::to_vec(e).unwrap_or_default();
        let h = fnv(&bytes);
        if cur.recent.contains(&h) {
            continue;
        }
        cur.recent.push_back(h);
        em.record(&bytes, &[]);
    }
    let keep = 2 * ctx.cfg.page_size as usize;
    while cur.recent.len() > keep {
        cur.recent.pop_front();
    }
    let next = v
        .get("@nextPage")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let stuck = next.is_some() && next == cur.next && !events.is_empty();
    if next.is_some() {
        cur.next = next;
    }
    em.mark(Commit {
        key: key.to_string(),
        cursor: cur.encode(),
    });
    if em.send().await.is_err() {
        return Ok(None);
    }
    let caught_up = v
        .get("isCaughtUp")
        .and_then(Value::as_bool)
        .unwrap_or(events.is_empty())
        || events.is_empty()
        || stuck;
    Ok(Some(caught_up))
}
