//! Email queues: how many messages wait in the inbound and outbound queues, as samples over
//! time (service health; reference notes: docs/research/rejections-and-queues.md). Asked for a
//! window, the API answers `data[0].inboundEmailQueue` and `.outboundEmailQueue`, each a list of
//! `{date, count}` samples (about every 10 minutes), or, in the older documented form, one
//! number each. Every sample becomes one record with its `direction` (`inbound`, `outbound`);
//! the newest sample time emitted per direction is the position, so none is emitted twice. A
//! bare number has no time of its own: it is stamped with the time it was read.

use super::context::SourceCtx;
use super::emit::Emitter;
use super::{
    explain, fmt_time, now_ms, BoxFuture, Found, Outcome, ProbeFailure, Source, Stop, Stream,
};
use crate::config::Config;
use crate::encode::{parse_time_text, TimeField};
use crate::handoff::Commit;
use crate::mimecast::client::{ApiError, Client};
use crate::schema::Records;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

const SOURCE: &str = "email_queues";
const PATH: &str = "/api/email/get-email-queues";
const PERMISSION: Option<&str> = Some("Account | Dashboard | Read");
/// The two queues: (record `direction`, the answer's key).
const QUEUES: [(&str, &str); 2] = [
    ("inbound", "inboundEmailQueue"),
    ("outbound", "outboundEmailQueue"),
];
/// How far back a first run may ask (the API's reach is undocumented; a guess).
const RETENTION_MS: i64 = 7 * 86_400_000;
/// Length of one request window.
const SLICE_MS: i64 = 86_400_000;

pub struct EmailQueues;

pub static EMAIL_QUEUES: EmailQueues = EmailQueues;

/// The newest sample time emitted per queue (ms; 0 before the first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub inbound: i64,
    pub outbound: i64,
}

impl Cursor {
    fn of(&mut self, direction: &str) -> &mut i64 {
        if direction == "inbound" {
            &mut self.inbound
        } else {
            &mut self.outbound
        }
    }
}

/// The samples of one answer: (direction, sample as a JSON object, its time in ms). A bare
/// count is stamped `read_at`.
fn samples(v: &Value, read_at: i64) -> Vec<(&'static str, Value, i64)> {
    let mut out = Vec::new();
    let entries = v.get("data").and_then(Value::as_array);
    for d in entries.into_iter().flatten() {
        for (direction, key) in QUEUES {
            match d.get(key) {
                Some(Value::Array(list)) => {
                    for s in list.iter().filter(|s| s.is_object()) {
                        let t = s
                            .get("date")
                            .and_then(Value::as_str)
                            .and_then(parse_time_text)
                            .map(|t| t.as_millisecond());
                        if let Some(t) = t {
                            out.push((direction, s.clone(), t));
                        }
                    }
                }
                Some(n @ Value::Number(_)) => {
                    out.push((
                        direction,
                        json!({"date": fmt_time(read_at), "count": n}),
                        read_at,
                    ));
                }
                _ => {}
            }
        }
    }
    out
}

fn body(start: i64, end: i64) -> Value {
    json!({"data": [{"start": fmt_time(start), "end": fmt_time(end)}]})
}

impl Source for EmailQueues {
    fn name(&self) -> &'static str {
        SOURCE
    }

    fn permission(&self) -> Option<&'static str> {
        PERMISSION
    }

    fn records(&self) -> Records {
        Records::EmailQueueSample
    }

    fn streams(&'static self, ctx: &SourceCtx) -> Vec<Box<dyn Stream>> {
        vec![Box::new(QueueStream {
            cur: ctx.state.cursor(SOURCE),
        })]
    }

    /// The samples of the last hour.
    fn probe<'a>(
        &'static self,
        client: &'a Client,
        _cfg: &'a Config,
        sample: bool,
    ) -> BoxFuture<'a, Result<Found, ProbeFailure>> {
        Box::pin(async move {
            let now = now_ms();
            let v = client
                .post_api(
                    &format!("{SOURCE} check"),
                    PATH,
                    &body(now - 3_600_000, now),
                )
                .await?;
            let first = samples(&v, now).into_iter().next().map(|(_, s, _)| s);
            Ok(Found::first(first, sample))
        })
    }
}

struct QueueStream {
    cur: Cursor,
}

impl Stream for QueueStream {
    fn key(&self) -> &str {
        SOURCE
    }

    fn poll<'a>(&'a mut self, ctx: &'a Arc<SourceCtx>) -> BoxFuture<'a, Result<Outcome, Stop>> {
        Box::pin(async move {
            let mut em = Emitter::new(
                ctx,
                SOURCE,
                Records::EmailQueueSample,
                TimeField::Text("date"),
            );
            let result = read(ctx, &mut self.cur, &mut em).await;
            em.mark(Commit::of(SOURCE, &self.cur));
            em.send().await?;
            result?;
            Ok(Outcome::CaughtUp)
        })
    }

    fn explain(&self, e: &ApiError) -> String {
        explain(e, SOURCE, PERMISSION)
    }
}

/// Reads every window from the older queue's position to now, emitting the new samples.
async fn read(ctx: &SourceCtx, cur: &mut Cursor, em: &mut Emitter<'_>) -> Result<(), Stop> {
    let now = now_ms();
    let lookback = now - ctx.cfg.initial_lookback.as_millis() as i64;
    let known = cur.inbound.min(cur.outbound);
    let mut start = if known > 0 { known } else { lookback }.max(now - RETENTION_MS);
    let what = format!("{SOURCE} {PATH}");
    while start < now {
        let end = (start + SLICE_MS).min(now);
        let v = ctx.client.post_api(&what, PATH, &body(start, end)).await?;
        let mut got = samples(&v, now);
        got.sort_by_key(|(_, _, t)| *t);
        for (direction, sample, t) in got {
            let done = cur.of(direction);
            if t <= *done {
                continue;
            }
            *done = t;
            em.record_with(
                &serde_json::to_vec(&sample).unwrap_or_default(),
                &[("direction", direction)],
            );
        }
        em.mark(Commit::of(SOURCE, &*cur));
        em.send_due().await?;
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_both_documented_forms() {
        let lists = json!({"data": [{
            "inboundEmailQueue": [{"date": "2024-05-01T10:00:00+0000", "count": 3}],
            "outboundEmailQueue": [{"date": "2024-05-01T10:10:00+0000", "count": 0}, "junk"]
        }]});
        let got = samples(&lists, 0);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "inbound");
        assert_eq!(got[0].1["count"], 3);
        assert_eq!(got[1].2, 1_714_558_200_000);
        let numbers = json!({"data": [{"inboundEmailQueue": 7, "outboundEmailQueue": 1}]});
        let got = samples(&numbers, 1_714_558_200_000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1["count"], 7);
        assert_eq!(got[1].1["date"], "2024-05-01T10:10:00+0000");
        assert!(samples(&json!({"data": "nonsense"}), 0).is_empty());
    }
}
