//! SIEM stream: `GET /siem/v1/events/{cg,ci}`, events inline, oldest first, merged across the
//! requested types (reference §4.3-4.4).

use super::common::{b64, json_resp, parse_ts, siem_invalid, siem_page_size, unb64};
use super::{Checked, Ctx, Resp};
use crate::faults::FaultKind;
use crate::model::{self, EventKey};
use hyper::StatusCode;
use serde_json::{json, Value};
use std::ops::Range;

pub(super) fn cg(cx: &Ctx, _body: &[u8]) -> Resp {
    stream(cx, model::CG_TYPES)
}

pub(super) fn ci(cx: &Ctx, _body: &[u8]) -> Resp {
    stream(cx, model::CI_TYPES)
}

/// A place in the merged stream: (timestamp, stream id) of an event.
type Pos = (i64, u16);

/// One event of a page: timestamp, stream id, identity.
type Ev = (i64, u16, EventKey);

/// A stream request, validated (from its parameters or its `nextPage` token).
struct StreamReq {
    page_size: usize,
    /// Bitmask of the requested stream ids.
    mask: u32,
    start: i64,
    end: i64,
    /// The last event handed out before this page.
    pos: Option<Pos>,
    /// The request's `nextPage`.
    token: Option<String>,
}

fn stream(cx: &Ctx, family: Range<u16>) -> Resp {
    let now = cx.now();
    let req = match parse_stream(cx, &family, now) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let (events, more) = next_events(cx, &family, &req, now);
    let mut page = repeated_events(cx, &family, &req);
    page.extend(events.iter().copied());
    let last = events
        .last()
        .map(|(t, s, _)| (*t, *s))
        .or(req.pos)
        .unwrap_or((req.start - 1, u16::MAX));
    let next = match (&req.token, cx.has(|f| *f == FaultKind::StuckToken)) {
        (Some(t), true) => t.clone(),
        _ => b64(&format!(
            "s1:{}:{}:{}:{}:{}",
            req.mask, req.start, req.end, last.0, last.1
        )),
    };
    let value: Vec<Value> = page
        .iter()
        .map(|(t, _, k)| model::siem_record(&cx.st.grid, *k, *t, &cx.st.cfg.account))
        .collect();
    json_resp(
        StatusCode::OK,
        &json!({"value": value, "@nextPage": next, "pageSize": req.page_size, "isCaughtUp": !more}),
    )
}

fn parse_stream(cx: &Ctx, family: &Range<u16>, now: i64) -> Checked<StreamReq> {
    let page_size = siem_page_size(cx)?;
    let token = cx.query.get("nextPage").cloned();
    let (mask, start, end, pos) = match &token {
        Some(tok) => parse_token(tok).ok_or_else(|| siem_invalid(cx, "Invalid nextPage token"))?,
        None => {
            let (mask, start, end) = parse_window(cx, family, now)?;
            (mask, start, end, None)
        }
    };
    Ok(StreamReq {
        page_size,
        mask,
        start,
        end,
        pos,
        token,
    })
}

/// A `nextPage` token `s1:<mask>:<start>:<end>:<pos ts>:<pos stream>`.
fn parse_token(tok: &str) -> Option<(u32, i64, i64, Option<Pos>)> {
    unb64(tok).and_then(|t| {
        let v: Vec<&str> = t.split(':').collect();
        if v.len() != 6 || v.first() != Some(&"s1") {
            return None;
        }
        let n = |i: usize| v.get(i).and_then(|x| x.parse::<i64>().ok());
        Some((n(1)? as u32, n(2)?, n(3)?, Some((n(4)?, n(5)? as u16))))
    })
}

/// (types bitmask, start, end) of a first request, from `types` and `dateRange*`.
fn parse_window(cx: &Ctx, family: &Range<u16>, now: i64) -> Checked<(u32, i64, i64)> {
    let mut mask = 0u32;
    match cx.query.get("types") {
        Some(list) => {
            for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                match model::stream_id(t).filter(|s| family.contains(s)) {
                    Some(s) => mask |= 1 << s,
                    None => return Err(Box::new(siem_invalid(cx, &format!("Invalid type '{t}'")))),
                }
            }
        }
        None => family.clone().for_each(|s| mask |= 1 << s),
    }
    let start = match cx.query.get("dateRangeStartsAt").map(|s| parse_ts(s)) {
        None => now - 86_400_000 + 60_000,
        Some(Some(ms)) => ms,
        Some(None) => {
            return Err(Box::new(siem_invalid(
                cx,
                "dateRangeStartsAt must be an ISO 8601 timestamp",
            )))
        }
    };
    if start < now - 86_400_000 {
        return Err(Box::new(siem_invalid(
            cx,
            "dateRangeStartsAt must be within the last 24 hours",
        )));
    }
    let end = match cx.query.get("dateRangeEndsAt").map(|s| parse_ts(s)) {
        None => i64::MAX,
        Some(Some(ms)) => ms,
        Some(None) => {
            return Err(Box::new(siem_invalid(
                cx,
                "dateRangeEndsAt must be an ISO 8601 timestamp",
            )))
        }
    };
    Ok((mask, start, end))
}

/// The requested stream ids of the family.
fn selected(family: &Range<u16>, mask: u32) -> impl Iterator<Item = u16> {
    family.clone().filter(move |s| mask & (1 << s) != 0)
}

/// The page's new events, oldest first, and whether more are visible after them.
fn next_events(cx: &Ctx, family: &Range<u16>, req: &StreamReq, now: i64) -> (Vec<Ev>, bool) {
    let visible_end = req.end.min(now - 30_000);
    let pos = req.pos;
    let mut events: Vec<Ev> = Vec::new();
    for s in selected(family, req.mask) {
        let from = pos.map(|(t, _)| t).unwrap_or(req.start).max(req.start);
        if from >= visible_end {
            continue;
        }
        let it = cx
            .st
            .grid
            .range(s, from, visible_end)
            .filter(|(_, t)| match pos {
                Some(p) => (*t, s) > p,
                None => true,
            });
        events.extend(it.take(req.page_size + 1).map(|(k, t)| (t, s, k)));
    }
    events.sort();
    let more = events.len() > req.page_size;
    events.truncate(req.page_size);
    (events, more)
}

/// The last events up to the request's position, oldest first, as many as the
/// `repeat_events` fault asks.
fn repeated_events(cx: &Ctx, family: &Range<u16>, req: &StreamReq) -> Vec<Ev> {
    let repeat = cx.repeat() as usize;
    let Some(p) = req.pos.filter(|_| repeat > 0) else {
        return Vec::new();
    };
    let mut prev: Vec<Ev> = Vec::new();
    for s in selected(family, req.mask) {
        let it = cx
            .st
            .grid
            .range_rev(s, req.start, p.0 + 1)
            .filter(|(_, t)| (*t, s) <= p);
        prev.extend(it.take(repeat).map(|(k, t)| (t, s, k)));
    }
    prev.sort();
    let skip = prev.len().saturating_sub(repeat);
    prev.split_off(skip)
}
