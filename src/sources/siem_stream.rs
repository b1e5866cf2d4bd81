//! SIEM stream mode (`/siem/v1/events/{cg,ci}`): events inline, paged with `nextPage`, inside
//! the API's 24-hour window. The API may return events of the previous page again, so the
//! identities (hashes) of the last pages' events are kept with the position and repeats are
//! dropped.

use super::context::SourceCtx;
use super::emit::Emitter;
use super::siem::{Family, PERMISSION};
use super::{explain, now_ms, BoxFuture, Found, Outcome, ProbeFailure, Stop, Stream};
use crate::encode::TimeField;
use crate::handoff::Commit;
use crate::mimecast::client::{ApiError, Client};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;

/// The stream serves the last 24 hours; start a little inside that.
const WINDOW_MS: i64 = 23 * 3_600_000 + 50 * 60_000;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    recent: VecDeque<u64>,
}

fn fnv(bytes: &[u8]) -> u64 {
    crate::hash::fnv1a(bytes)
}

/// `dateRangeStartsAt` for a start `back_ms` before now.
fn start_at(back_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(now_ms() - back_ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string())
        .unwrap_or_default()
}

/// The events of one family: a stream named `siem_cg/stream`.
pub struct EventStream {
    family: Family,
    types: Vec<String>,
    key: String,
    cur: Cursor,
}

impl EventStream {
    pub fn new(ctx: &SourceCtx, family: Family, types: Vec<String>) -> Self {
        let key = super::stream_key(family.source(), "stream");
        EventStream {
            family,
            types,
            cur: ctx.state.cursor(&key),
            key,
        }
    }
}

impl Stream for EventStream {
    fn key(&self) -> &str {
        &self.key
    }

    fn poll<'a>(&'a mut self, ctx: &'a Arc<SourceCtx>) -> BoxFuture<'a, Result<Outcome, Stop>> {
        Box::pin(async move {
            match poll(self.family, &self.types, &self.key, ctx, &mut self.cur).await {
                Err(Stop::Api(ApiError::BadRequest { detail, .. })) if self.cur.next.is_some() => {
                    ctx.log.warn(format_args!(
                        "{}: the API refused the saved page token ({detail}); it is probably older than the stream's 24-hour window. \
                         Restarting from 24 hours ago: events older than that were not collected",
                        self.key
                    ));
                    self.cur.next = None;
                    Ok(Outcome::Again)
                }
                other => other,
            }
        })
    }

    fn explain(&self, e: &ApiError) -> String {
        explain(e, &self.key, Some(PERMISSION))
    }
}

/// The probe of a family in stream mode: one event of the last hour.
pub async fn probe(client: &Client, family: Family, sample: bool) -> Result<Found, ProbeFailure> {
    let q = [
        ("pageSize", "1".to_string()),
        ("dateRangeStartsAt", start_at(3_600_000)),
    ];
    let v = client
        .get_json(
            &format!("{} check", family.source()),
            family.stream_path(),
            &q,
        )
        .await?;
    Ok(Found::first(v.pointer("/value/0").cloned(), sample))
}

/// Reads one page.
async fn poll(
    family: Family,
    types: &[String],
    key: &str,
    ctx: &SourceCtx,
    cur: &mut Cursor,
) -> Result<Outcome, Stop> {
    let mut q: Vec<(&str, String)> = vec![("pageSize", ctx.cfg.page_size.to_string())];
    match &cur.next {
        Some(t) => q.push(("nextPage", t.clone())),
        None => {
            let back = (ctx.cfg.initial_lookback.as_millis() as i64).min(WINDOW_MS);
            q.push(("types", types.join(",")));
            q.push(("dateRangeStartsAt", start_at(back)));
        }
    }
    let v = ctx
        .client
        .get_json(&format!("{key} events"), family.stream_path(), &q)
        .await?;
    let events = v
        .get("value")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut em = Emitter::new(
        ctx,
        family.source(),
        crate::schema::Records::Siem,
        TimeField::EpochMillis("timestamp"),
    );
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
    em.mark(Commit::of(key, &*cur));
    em.send().await?;
    let caught_up = v
        .get("isCaughtUp")
        .and_then(Value::as_bool)
        .unwrap_or(events.is_empty())
        || events.is_empty()
        || stuck;
    Ok(if caught_up {
        Outcome::CaughtUp
    } else {
        Outcome::More
    })
}

/// For the state-format test: the cursor saved under `key` reads as the fixture wrote it, and
/// is written back byte for byte.
#[cfg(test)]
pub(crate) fn saved_cursor_reads(store: &crate::state::StateStore, key: &str) -> bool {
    let c: Cursor = store.cursor(key);
    store.get(key) == Some(crate::state::cursor::encode(&c))
        && c.next.as_deref() == Some("tok-42")
        && c.recent == [5, 6, 7]
}
