//! The Awareness Training endpoints (docs/research/awareness-training.md): per-user tables of
//! training performance, the watchlist and SAFE scores, and phishing campaigns with the data of
//! each targeted user. All are current state, not logs: a synthetic population of
//! `awareness_users` users whose figures are drawn from the seed and the day (SAFE scores are
//! recalculated daily), and `phishing_campaigns` campaigns each targeting part of them.

use super::api_request::{request, ApiReq};
use super::common::{api_invalid, b64, json_resp, unb64};
use super::{Ctx, Resp};
use crate::model::{fmt_offset, h3};
use crate::State;
use hyper::StatusCode;
use serde_json::{json, Value};

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi",
];
const DEPARTMENTS: &[&str] = &["Finance", "Sales", "Engineering", "Legal", "Support"];
const GRADES: &[&str] = &["A", "B", "C", "D", "F"];

fn pick<'a>(items: &[&'a str], h: u64) -> &'a str {
    items
        .get((h % items.len() as u64) as usize)
        .copied()
        .unwrap_or("")
}

/// A draw for user `i` on `day`, for the figure `what`.
fn draw(st: &State, i: usize, day: i64, what: u64) -> u64 {
    h3(st.cfg.seed, 0xA3A7 ^ what, i as u64, day as u64)
}

fn day(now: i64) -> i64 {
    now.div_euclid(86_400_000)
}

fn email(i: usize) -> String {
    format!(
        "{}.{i}@corp.example.com",
        pick(FIRST, i as u64).to_lowercase()
    )
}

fn name(i: usize) -> String {
    format!("{} User{i}", pick(FIRST, i as u64))
}

fn department(st: &State, i: usize) -> &'static str {
    pick(DEPARTMENTS, draw(st, i, 0, 1))
}

fn user_state(st: &State, i: usize) -> &'static str {
    if draw(st, i, 0, 2) % 20 == 0 {
        "inactive"
    } else {
        "active"
    }
}

fn users(st: &State) -> std::ops::Range<usize> {
    0..st.cfg.awareness_users
}

/// A user row: the user's own fields, then the table's `more`.
fn user_row(st: &State, i: usize, more: Value) -> Value {
    let mut row = json!({
        "userId": format!("aw-user-{i}"),
        "email": email(i),
        "name": name(i),
        "department": department(st, i),
        "userState": user_state(st, i),
    });
    if let (Some(r), Value::Object(m)) = (row.as_object_mut(), more) {
        r.extend(m);
    }
    row
}

/// `get-performance-details`: one row per user.
pub(crate) fn performance_rows(st: &State, now: i64) -> Vec<Value> {
    let d = day(now);
    users(st)
        .map(|i| {
            let more = json!({
                "numCorrect": draw(st, i, d, 3) % 12,
                "numIncorrect": draw(st, i, d, 4) % 4,
                "numNotWatched": draw(st, i, d, 5) % 6,
                "userDetails": {"title": "Staff", "location": "HQ"},
            });
            user_row(st, i, more)
        })
        .collect()
}

/// `get-watchlist-details`: the users on the watchlist (about a quarter).
pub(crate) fn watchlist_rows(st: &State, now: i64) -> Vec<Value> {
    let d = day(now);
    users(st)
        .filter(|i| draw(st, *i, 0, 6) % 4 == 0)
        .map(|i| user_row(st, i, json!({"watchlistCount": 1 + draw(st, i, d, 7) % 5})))
        .collect()
}

/// `get-safe-score-details`: one row per user, keyed `emailAddress` (not `email`), every
/// figure a string, recalculated daily.
pub(crate) fn safe_score_rows(st: &State, now: i64) -> Vec<Value> {
    let d = day(now);
    users(st)
        .map(|i| {
            json!({
                "emailAddress": email(i),
                "name": name(i),
                "department": department(st, i),
                "userState": user_state(st, i),
                "risk": pick(GRADES, draw(st, i, d, 8)),
                "humanError": pick(GRADES, draw(st, i, d, 9)),
                "sentiment": pick(GRADES, draw(st, i, d, 10)),
                "engagement": pick(GRADES, draw(st, i, d, 11)),
                "knowledge": pick(GRADES, draw(st, i, d, 12)),
            })
        })
        .collect()
}

fn campaign_id(c: usize) -> String {
    format!("aw-campaign-{c}")
}

/// Whether campaign `c` targets user `i` (each campaign about half of them).
fn targets(st: &State, c: usize, i: usize) -> bool {
    h3(st.cfg.seed, 0xCA4B, c as u64, i as u64) % 2 == 0
}

/// `get-campaign`: every campaign, launched a week apart, with its counts.
pub(crate) fn campaign_rows(st: &State, now: i64) -> Vec<Value> {
    (0..st.cfg.phishing_campaigns)
        .map(|c| {
            let sent = users(st).filter(|i| targets(st, c, *i)).count();
            json!({
                "id": campaign_id(c),
                "name": format!("Quarterly phishing test {c}"),
                "templates": [{"id": format!("tpl-{c}"), "displayTitle": "Shared document"}],
                "locale": "en-GB",
                "locked": c == 0,
                "timeSlotSelected": "business_hours",
                "sender": {"name": "IT Service Desk", "email": "it-desk@corp-support.example"},
                "group": {"id": "grp-all", "name": "All staff", "userCount": st.cfg.awareness_users},
                "launchDate": fmt_offset(now - (c as i64 + 1) * 7 * 86_400_000),
                "numSent": sent,
                "numOpened": sent / 2,
                "numClicked": sent / 5,
                "numSubmitted": sent / 10,
            })
        })
        .collect()
}

/// `get-user-data` of campaign `c`: one row per targeted user (rows do not name the campaign).
pub(crate) fn campaign_user_rows(st: &State, c: usize, now: i64) -> Vec<Value> {
    let launch = now - (c as i64 + 1) * 7 * 86_400_000;
    users(st)
        .filter(|i| targets(st, c, *i))
        .map(|i| {
            let h = draw(st, i, c as i64, 13);
            let status = pick(&["sent", "opened", "clicked", "submitted"], h);
            let at = |n: i64| json!(fmt_offset(launch + n * 3_600_000));
            let clicked = matches!(status, "clicked" | "submitted");
            json!({
                "name": name(i),
                "email": email(i),
                "department": department(st, i),
                "templateName": "Shared document",
                "status": status,
                "userState": user_state(st, i),
                "clickedIp": if clicked { json!(format!("203.0.113.{}", i % 250 + 1)) } else { Value::Null },
                "numCampaignsSent": 1 + c,
                "numCampaignsClicked": u64::from(clicked),
                "numCampaignsScanned": 0,
                "numCampaignsClickedScanned": 0,
                "numTrainingModulesAssigned": u64::from(clicked),
                "numCorrectAnswers": h % 5,
                "numIncorrectAnswers": (h >> 8) % 3,
                "reactionTime": (h >> 16) % 600,
                "timeScheduled": at(0),
                "timeOpened": if status == "sent" { Value::Null } else { at(2) },
                "timeClicked": if clicked { at(3) } else { Value::Null },
                "timeReported": Value::Null,
                "timeSubmitted": if status == "submitted" { at(4) } else { Value::Null },
                "timeScanned": Value::Null,
            })
        })
        .collect()
}

/// One page of `rows` from the request's page token (`aw1:<offset>`), with the envelope.
fn paged(req: &ApiReq, rows: Vec<Value>, nest: Option<&str>) -> Resp {
    let from = match &req.token {
        None => 0,
        Some(t) => match unb64(t).and_then(|t| t.strip_prefix("aw1:")?.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return api_invalid(
                    StatusCode::BAD_REQUEST,
                    &req.data0,
                    "err_validation_invalid_page_token",
                    "Invalid pageToken",
                )
            }
        },
    };
    let total = rows.len();
    let page: Vec<Value> = rows.into_iter().skip(from).take(req.page_size).collect();
    let mut pagination = json!({"pageSize": req.page_size, "totalCount": total});
    let to = from + page.len();
    if let (true, Some(obj)) = (to < total, pagination.as_object_mut()) {
        obj.insert("next".into(), json!(b64(&format!("aw1:{to}"))));
    }
    let data = match nest {
        Some(key) => json!([{ key: page }]),
        None => Value::Array(page),
    };
    json_resp(
        StatusCode::OK,
        &json!({"meta": {"status": 200, "pagination": pagination}, "data": data, "fail": []}),
    )
}

macro_rules! table {
    ($name:ident, $rows:ident) => {
        pub(super) fn $name(cx: &Ctx, body: &[u8]) -> Resp {
            match request(body) {
                Ok(req) => paged(&req, $rows(cx.st, cx.now()), None),
                Err(resp) => *resp,
            }
        }
    };
}

table!(performance, performance_rows);
table!(watchlist, watchlist_rows);
table!(safe_score, safe_score_rows);

/// `POST .../phishing/campaign/get-campaign`: every campaign (or the one `data[0].id` names),
/// in one answer: the documentation shows no paging.
pub(super) fn campaign(cx: &Ctx, body: &[u8]) -> Resp {
    let req = match request(body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let want = req.data0.get("id").and_then(Value::as_str);
    let rows: Vec<Value> = campaign_rows(cx.st, cx.now())
        .into_iter()
        .filter(|c| want.is_none_or(|w| c.get("id").and_then(Value::as_str) == Some(w)))
        .collect();
    json_resp(
        StatusCode::OK,
        &json!({"meta": {"status": 200}, "data": rows, "fail": []}),
    )
}

/// `POST .../phishing/campaign/get-user-data`: the users of the campaign `data[0].id` names
/// (required), paged, under `data[0].items`.
pub(super) fn user_data(cx: &Ctx, body: &[u8]) -> Resp {
    let req = match request(body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let id = req.data0.get("id").and_then(Value::as_str).unwrap_or("");
    let Some(c) = (0..cx.st.cfg.phishing_campaigns).find(|c| campaign_id(*c) == id) else {
        return api_invalid(
            StatusCode::BAD_REQUEST,
            &req.data0,
            "err_validation_campaign_not_found",
            "data[0].id must name an existing phishing campaign",
        );
    };
    paged(&req, campaign_user_rows(cx.st, c, cx.now()), Some("items"))
}
