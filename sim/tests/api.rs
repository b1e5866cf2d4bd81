//! The simulator over real HTTP: response shapes and end conditions as in the reference,
//! faults doing what they say, determinism from the seed.

use mimecast_sim::{FaultKind, FaultRule, RateLimit, Sim, SimConfig};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Minimal HTTP/1.1 client: one request per connection. `Err` = connection failed or closed early.
fn http(
    sim: &Sim,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    let mut s = std::net::TcpStream::connect(sim.addr()).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        sim.addr(),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no response")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("bad status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

fn token(sim: &Sim) -> String {
    let r = http(
        sim,
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"client_id=sim-client&client_secret=sim-secret&grant_type=client_credentials",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(v["scope"], "");
    v["access_token"].as_str().unwrap().to_string()
}

fn get(sim: &Sim, tok: &str, target: &str) -> Resp {
    http(
        sim,
        "GET",
        target,
        &[("Authorization", &format!("Bearer {tok}"))],
        b"",
    )
    .unwrap()
}

fn post(sim: &Sim, tok: &str, path: &str, body: Value) -> Resp {
    http(
        sim,
        "POST",
        path,
        &[
            ("Authorization", &format!("Bearer {tok}")),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

fn gunzip(b: &[u8]) -> std::io::Result<String> {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(b).read_to_string(&mut s)?;
    Ok(s)
}

/// Path and query of an absolute URL handed out by the simulator.
fn local(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

#[test]
fn oauth_and_bearer_errors() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let bad = http(
        &sim,
        "POST",
        "/oauth/token",
        &[],
        b"client_id=sim-client&client_secret=nope&grant_type=client_credentials",
    )
    .unwrap();
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["fail"][0]["code"], "InvalidClientIdentifier");
    for auth in [None, Some("Bearer wrong")] {
        let h: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        let r = http(
            &sim,
            "GET",
            "/siem/v1/batch/events/cg?type=receipt",
            &h,
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["fail"][0]["code"], "token_expired");
    }
    let tok = token(&sim);
    let ok = http(
        &sim,
        "POST",
        "/oauth/token",
        &[],
        b"client_id=sim-client&client_secret=sim-secret&grant_type=client_credentials",
    )
    .unwrap();
    assert_eq!(ok.json()["expires_in"], 1799, "documented default lifetime");
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/cg?type=receipt").status,
        200
    );
    sim.revoke_tokens();
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/cg?type=receipt").status,
        401
    );
}

#[test]
fn tokens_really_expire() {
    let sim = Sim::start(SimConfig {
        token_ttl: Duration::from_secs(1),
        ..Default::default()
    })
    .unwrap();
    let tok = token(&sim);
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/cg?type=av").status,
        200
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/cg?type=av").status,
        401
    );
}

#[test]
fn batch_pages_until_caught_up_and_files_hold_ground_truth() {
    let sim = Sim::start(SimConfig {
        siem_rate: 40,
        ..Default::default()
    })
    .unwrap();
    let tok = token(&sim);
    let mut next: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let q = match &next {
            Some(n) => format!("/siem/v1/batch/events/cg?type=delivery&pageSize=100&nextPage={n}"),
            None => "/siem/v1/batch/events/cg?type=delivery&pageSize=100".into(),
        };
        let v = get(&sim, &tok, &q).json();
        pages += 1;
        for f in v["value"].as_array().unwrap() {
            assert!(f["expiry"].as_str().unwrap().ends_with('Z'));
            let url = f["url"].as_str().unwrap();
            let file = http(&sim, "GET", &local(url), &[], b"").unwrap();
            assert_eq!(file.status, 200);
            assert_eq!(
                file.body.len() as u64,
                f["size"].as_u64().unwrap(),
                "size matches bytes"
            );
            for line in gunzip(&file.body).unwrap().lines() {
                let rec: Value = serde_json::from_str(line).unwrap();
                assert_eq!(rec["type"], "delivery");
                assert!(rec["timestamp"].is_i64());
                seen.push(mimecast_sim::identity(&rec).unwrap());
            }
        }
        assert!(
            v["@nextPage"].is_string(),
            "@nextPage present on every page"
        );
        next = v["@nextPage"].as_str().map(str::to_string);
        if v["isCaughtUp"] == true {
            break;
        }
    }
    assert!(
        pages >= 7,
        "7 days of 15-minute files take several pages of 100: {pages}"
    );
    let truth = sim.truth_batch("delivery");
    assert_eq!(seen.len(), truth.len());
    assert_eq!(seen, truth, "every generated event exactly once, in order");

    // caught up: nothing new until simulated time passes, then new files appear
    let q = format!(
        "/siem/v1/batch/events/cg?type=delivery&nextPage={}",
        next.clone().unwrap()
    );
    let v = get(&sim, &tok, &q).json();
    assert_eq!(v["value"].as_array().unwrap().len(), 0);
    assert_eq!(v["isCaughtUp"], true);
    sim.advance(Duration::from_secs(1800));
    let v = get(&sim, &tok, &q).json();
    assert!(
        !v["value"].as_array().unwrap().is_empty(),
        "new batch after 30 simulated minutes"
    );
}

#[test]
fn batch_file_rules_of_s3() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let tok = token(&sim);
    let v = get(
        &sim,
        &tok,
        "/siem/v1/batch/events/cg?type=receipt&pageSize=1",
    )
    .json();
    let url = local(v["value"][0]["url"].as_str().unwrap());
    let with_bearer = http(
        &sim,
        "GET",
        &url,
        &[("Authorization", &format!("Bearer {tok}"))],
        b"",
    )
    .unwrap();
    assert_eq!(
        with_bearer.status, 400,
        "S3 rejects a second auth mechanism"
    );
    let tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert_eq!(http(&sim, "GET", &tampered, &[], b"").unwrap().status, 403);
    sim.advance(Duration::from_secs(901));
    let expired = http(&sim, "GET", &url, &[], b"").unwrap();
    assert_eq!(expired.status, 403);
    assert!(String::from_utf8_lossy(&expired.body).contains("Request has expired"));
}

#[test]
fn batch_date_validation() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let tok = token(&sim);
    let old = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(24 * 9))
        .unwrap();
    let q = format!(
        "/siem/v1/batch/events/cg?type=receipt&dateRangeStartsAt={}",
        old.strftime("%Y-%m-%d")
    );
    let r = get(&sim, &tok, &q);
    assert_eq!(r.status, 400);
    assert!(r.json()["fail"][0]["message"]
        .as_str()
        .unwrap()
        .contains("7-day"));
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/cg?type=bogus").status,
        400
    );
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/ci?type=receipt").status,
        400,
        "CG type on the CI route"
    );
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/ci?type=entities").status,
        200
    );
}

#[test]
fn stream_window_and_paging() {
    let sim = Sim::start(SimConfig {
        siem_rate: 100,
        ..Default::default()
    })
    .unwrap();
    let tok = token(&sim);
    let old = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(25))
        .unwrap();
    let r = get(
        &sim,
        &tok,
        &format!(
            "/siem/v1/events/cg?dateRangeStartsAt={}",
            old.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        ),
    );
    assert_eq!(r.status, 400, "outside the 24 h window");
    let start = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(3))
        .unwrap();
    let mut q = format!(
        "/siem/v1/events/cg?types=receipt,spam&pageSize=50&dateRangeStartsAt={}",
        start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    );
    let mut n = 0;
    let mut last_ts = 0;
    loop {
        let v = get(&sim, &tok, &q).json();
        for e in v["value"].as_array().unwrap() {
            let t = e["timestamp"].as_i64().unwrap();
            assert!(t >= last_ts, "oldest first");
            assert!(e["type"] == "receipt" || e["type"] == "spam");
            last_ts = t;
            n += 1;
        }
        if v["isCaughtUp"] == true {
            break;
        }
        q = format!(
            "/siem/v1/events/cg?nextPage={}",
            v["@nextPage"].as_str().unwrap()
        );
    }
    let now = sim.now_ms();
    let expected = sim
        .truth("receipt", start.as_millisecond(), now - 30_000)
        .len()
        + sim
            .truth("spam", start.as_millisecond(), now - 30_000)
            .len();
    assert!((expected as i64 - n as i64).abs() <= 2, "{n} vs {expected}");
}

fn api_all(
    sim: &Sim,
    tok: &str,
    path: &str,
    data0: Value,
    nest: Option<&str>,
) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut pages = 0;
    let mut body = json!({"meta": {"pagination": {"pageSize": 50}}, "data": [data0]});
    loop {
        let r = post(sim, tok, path, body.clone());
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_eq!(v["fail"], json!([]));
        pages += 1;
        let items = match nest {
            Some(k) => v["data"][0][k].as_array().unwrap().clone(),
            None => v["data"].as_array().unwrap().clone(),
        };
        if items.is_empty() {
            break;
        }
        out.extend(items);
        match v["meta"]["pagination"]["next"].as_str() {
            Some(n) => body["meta"]["pagination"]["pageToken"] = json!(n),
            None => break,
        }
        assert!(pages < 1000);
    }
    (out, pages)
}

#[test]
fn every_api_log_endpoint_has_its_shape() {
    let sim = Sim::start(SimConfig {
        api_rate: 200,
        ..Default::default()
    })
    .unwrap();
    let tok = token(&sim);
    let now = sim.now_ms();
    let from = mimecast_sim::model::fmt_offset(now - 6 * 3_600_000);
    let to = mimecast_sim::model::fmt_offset(now);
    // (path, from field, to field, stream, nesting key, time field)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, Option<&'a str>, &'a str);
    let cases: &[Case] = &[
        (
            "/api/audit/get-audit-events",
            "startDateTime",
            "endDateTime",
            "audit",
            None,
            "eventTime",
        ),
        (
            "/api/ttp/url/get-logs",
            "from",
            "to",
            "ttp_url",
            Some("clickLogs"),
            "date",
        ),
        (
            "/api/ttp/attachment/get-logs",
            "from",
            "to",
            "ttp_attachment",
            Some("attachmentLogs"),
            "date",
        ),
        (
            "/api/ttp/impersonation/get-logs",
            "from",
            "to",
            "ttp_impersonation",
            Some("impersonationLogs"),
            "eventTime",
        ),
        (
            "/api/dlp/get-logs",
            "from",
            "to",
            "dlp",
            Some("dlpLogs"),
            "eventTime",
        ),
        (
            "/api/gateway/get-held-release-logs",
            "start",
            "end",
            "held_release",
            Some("heldReleaseLogs"),
            "released",
        ),
        (
            "/api/archive/get-archive-search-logs",
            "start",
            "end",
            "archive_search",
            Some("logs"),
            "createTime",
        ),
        (
            "/api/archive/get-search-logs",
            "start",
            "end",
            "search_logs",
            Some("logs"),
            "createTime",
        ),
        (
            "/api/archive/get-view-logs",
            "start",
            "end",
            "archive_view",
            None,
            "viewed",
        ),
    ];
    for (path, ff, tf, stream, nest, time_field) in cases {
        let (items, pages) = api_all(
            &sim,
            &tok,
            path,
            json!({*ff: from, *tf: to, "oldestFirst": true}),
            *nest,
        );
        assert!(pages > 1, "{path} paginates");
        let mut keys: Vec<_> = items
            .iter()
            .map(|i| mimecast_sim::identity(i).unwrap())
            .collect();
        let t = items[0][time_field].as_str().unwrap();
        assert!(t.ends_with("+0000") && t.len() == 24, "{path}: {t}");
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            items.len(),
            "{path}: no duplicates across pages"
        );
        let visible_truth = sim.truth(stream, now - 6 * 3_600_000, now).len();
        if *stream == "audit" {
            assert!(
                items.len() <= visible_truth && items.len() + 80 >= visible_truth,
                "audit lag hides only the newest"
            );
        } else {
            assert!(
                items.len() + 10 >= visible_truth && items.len() <= visible_truth,
                "{path}: {} vs {visible_truth}",
                items.len()
            );
        }
    }
}

#[test]
fn api_quirks_fail_in_200_dangling_next_and_bad_dates() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let tok = token(&sim);
    sim.add_fault(
        FaultRule::new(
            "dlp",
            FaultKind::FailIn200 {
                code: "err_x".into(),
                message: "boom".into(),
                retryable: false,
            },
        )
        .times(1),
    );
    let r = post(&sim, &tok, "/api/dlp/get-logs", json!({"data": [{}]}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["fail"][0]["errors"][0]["message"], "boom");
    let bad = post(
        &sim,
        &tok,
        "/api/dlp/get-logs",
        json!({"data": [{"from": "last tuesday"}]}),
    );
    assert_eq!(bad.status, 400);
    sim.add_fault(FaultRule::new("archive_view", FaultKind::DanglingNext));
    let now = sim.now_ms();
    let body = json!({"meta": {"pagination": {"pageSize": 500}}, "data": [{"start": mimecast_sim::model::fmt_offset(now - 3_600_000)}]});
    let v = post(&sim, &tok, "/api/archive/get-view-logs", body.clone()).json();
    let next = v["meta"]["pagination"]["next"]
        .as_str()
        .expect("dangling next on the last page")
        .to_string();
    let mut body2 = body;
    body2["meta"]["pagination"]["pageToken"] = json!(next);
    let v2 = post(&sim, &tok, "/api/archive/get-view-logs", body2).json();
    assert_eq!(v2["data"], json!([]));
    assert!(
        v2["meta"]["pagination"]["next"].is_string(),
        "empty page still carries next"
    );
}

#[test]
fn snapshots_dashboard_and_threat_intel() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let tok = token(&sim);
    let held = post(
        &sim,
        &tok,
        "/api/gateway/get-hold-message-list",
        json!({"data": [{"admin": true}]}),
    )
    .json();
    let items = held["data"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items[0]["dateReceived"]
        .as_str()
        .unwrap()
        .ends_with("+0000"));
    let sum = post(
        &sim,
        &tok,
        "/api/gateway/get-hold-summary-list",
        json!({"data": []}),
    )
    .json();
    let total: u64 = sum["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["numberOfItems"].as_u64().unwrap())
        .sum();
    assert_eq!(
        total,
        held["meta"]["pagination"]["totalCount"].as_u64().unwrap(),
        "summary counts the held list"
    );
    let dash = post(
        &sim,
        &tok,
        "/api/account/get-dashboard-notifications",
        json!({"data": []}),
    )
    .json();
    assert!(dash["data"][0]["notifications"].as_array().unwrap().len() >= 2);

    let now = sim.now_ms();
    let mut body = json!({"data": [{"feedType": "malware_grid", "fileType": "stix",
        "start": mimecast_sim::model::fmt_offset(now - 3 * 3_600_000), "end": mimecast_sim::model::fmt_offset(now)}]});
    let mut files = 0;
    let mut indicators = 0;
    loop {
        let r = post(&sim, &tok, "/api/ttp/threat-intel/get-feed", body.clone());
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["type"], "bundle");
        indicators += v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "indicator")
            .count();
        files += 1;
        match r.header("x-mc-threat-feed-next-token") {
            Some(t) => {
                body =
                    json!({"data": [{"feedType": "malware_grid", "fileType": "stix", "token": t}]})
            }
            None => break,
        }
    }
    assert!(files >= 10, "one file per 15 minutes with data: {files}");
    assert!(indicators > 0);
    let csv = post(
        &sim,
        &tok,
        "/api/ttp/threat-intel/get-feed",
        json!({"data": [{"feedType": "malware_customer"}]}),
    );
    let text = String::from_utf8(csv.body).unwrap();
    assert!(text.starts_with("Timestamp|"));
    let none = post(
        &sim,
        &tok,
        "/api/ttp/threat-intel/get-feed",
        json!({"data": [{"start": mimecast_sim::model::fmt_offset(now + 86_400_000)}]}),
    )
    .json();
    assert_eq!(
        none["fail"][0]["errors"][0]["message"],
        "No results found for threat intel feed."
    );
}

#[test]
fn faults_do_what_they_say() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let tok = token(&sim);
    sim.add_fault(FaultRule::new("siem_batch_cg", FaultKind::Reset).times(1));
    assert!(http(
        &sim,
        "GET",
        "/siem/v1/batch/events/cg?type=av",
        &[("Authorization", &format!("Bearer {tok}"))],
        b""
    )
    .is_err());
    sim.add_fault(FaultRule::new("siem_batch_cg", FaultKind::Status { code: 503 }).times(2));
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/cg?type=av").status,
        503
    );
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/cg?type=av").status,
        503
    );
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/cg?type=av").status,
        200
    );
    sim.add_fault(
        FaultRule::new("siem_batch_cg", FaultKind::RateLimited { retry_after_s: 7 }).times(1),
    );
    let r = get(&sim, &tok, "/siem/v1/batch/events/cg?type=av");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("7000"));
    let first = get(&sim, &tok, "/siem/v1/batch/events/cg?type=av&pageSize=2").json();
    let tokn = first["@nextPage"].as_str().unwrap().to_string();
    sim.add_fault(FaultRule::new("siem_batch_cg", FaultKind::StuckToken).times(1));
    let stuck = get(
        &sim,
        &tok,
        &format!("/siem/v1/batch/events/cg?type=av&pageSize=2&nextPage={tokn}"),
    )
    .json();
    assert_eq!(stuck["@nextPage"], tokn, "token does not advance");
    sim.add_fault(FaultRule::new("siem_batch_cg", FaultKind::RepeatEvents { count: 1 }).times(1));
    let rep = get(
        &sim,
        &tok,
        &format!("/siem/v1/batch/events/cg?type=av&pageSize=2&nextPage={tokn}"),
    )
    .json();
    assert_eq!(
        rep["value"].as_array().unwrap().len(),
        3,
        "previous page's last file repeated"
    );
    // batch file faults
    let url = local(first["value"][0]["url"].as_str().unwrap());
    sim.add_fault(FaultRule::new("batch_file", FaultKind::TruncatedGzip).times(1));
    assert!(gunzip(&http(&sim, "GET", &url, &[], b"").unwrap().body).is_err());
    sim.add_fault(FaultRule::new("batch_file", FaultKind::MalformedLines { every: 2 }).times(1));
    let text = gunzip(&http(&sim, "GET", &url, &[], b"").unwrap().body).unwrap();
    let bad = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .count();
    assert_eq!(bad, text.lines().count() / 2);
    sim.add_fault(FaultRule::new("batch_file", FaultKind::CorruptGzip).times(1));
    assert!(gunzip(&http(&sim, "GET", &url, &[], b"").unwrap().body).is_err());
    assert_eq!(sim.requests("siem_batch_cg", 0), 1, "the reset is counted");
    assert_eq!(sim.requests("siem_batch_cg", 503), 2);
}

#[test]
fn rate_limit_per_client() {
    // The limit is per real-time window: the burst below means something only if it fits in
    // one window, which a loaded machine running a debug build may not grant. Measured, and
    // tried again on a fresh simulator when it did not fit.
    let window = Duration::from_secs(4);
    for _ in 0..3 {
        let sim = Sim::start(SimConfig {
            rate_limit: Some(RateLimit {
                limit: 3,
                window,
                headers_always: false,
            }),
            ..Default::default()
        })
        .unwrap();
        let t0 = std::time::Instant::now();
        let tok = token(&sim);
        for _ in 0..3 {
            let r = get(&sim, &tok, "/siem/v1/batch/events/cg?type=av");
            assert_eq!(r.status, 200);
            assert!(
                r.header("x-ratelimit-limit").is_none(),
                "headers only once exceeded"
            );
        }
        let r = get(&sim, &tok, "/siem/v1/batch/events/cg?type=av");
        if t0.elapsed() >= window {
            continue; // the window turned during the burst: not a test of the limit
        }
        assert_eq!(r.status, 429);
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset <= window.as_millis() as u64);
        std::thread::sleep(Duration::from_millis(reset + 50));
        assert_eq!(
            get(&sim, &tok, "/siem/v1/batch/events/cg?type=av").status,
            200
        );
        return;
    }
    panic!("four requests never fitted in a {window:?} window in three tries");
}

#[test]
fn permissions_and_licences() {
    let mut cfg = SimConfig::default();
    cfg.clients[0].forbidden = vec!["audit".into()];
    cfg.unlicensed = vec!["siem_batch_ci".into()];
    let sim = Sim::start(cfg).unwrap();
    let tok = token(&sim);
    assert_eq!(
        post(
            &sim,
            &tok,
            "/api/audit/get-audit-events",
            json!({"data": [{}]})
        )
        .status,
        403
    );
    assert_eq!(
        get(&sim, &tok, "/siem/v1/batch/events/ci?type=entities").status,
        404
    );
}

#[test]
fn same_seed_same_data_control_api_works() {
    let a = Sim::start(SimConfig {
        seed: 42,
        start_ms: Some(1_800_000_000_000),
        ..Default::default()
    })
    .unwrap();
    let b = Sim::start(SimConfig {
        seed: 42,
        start_ms: Some(1_800_000_000_000),
        ..Default::default()
    })
    .unwrap();
    let c = Sim::start(SimConfig {
        seed: 43,
        start_ms: Some(1_800_000_000_000),
        ..Default::default()
    })
    .unwrap();
    let body = |s: &Sim| {
        let tok = token(s);
        let v = get(s, &tok, "/siem/v1/batch/events/cg?type=receipt&pageSize=1").json();
        http(
            s,
            "GET",
            &local(v["value"][0]["url"].as_str().unwrap()),
            &[],
            b"",
        )
        .unwrap()
        .body
    };
    assert_eq!(gunzip(&body(&a)).unwrap(), gunzip(&body(&b)).unwrap());
    assert_ne!(gunzip(&body(&a)).unwrap(), gunzip(&body(&c)).unwrap());

    let r = http(
        &a,
        "POST",
        "/__sim/faults",
        &[],
        br#"{"endpoint":"dlp","kind":"status","code":502,"count":1}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let tok = token(&a);
    assert_eq!(
        post(&a, &tok, "/api/dlp/get-logs", json!({"data": [{}]})).status,
        502
    );
    let before = a.now_ms();
    http(&a, "POST", "/__sim/advance?seconds=3600", &[], b"").unwrap();
    assert!(a.now_ms() - before >= 3_600_000);
    let t = http(&a, "GET", "/__sim/truth?stream=receipt", &[], b"")
        .unwrap()
        .json();
    assert_eq!(
        t["count"].as_u64().unwrap() as usize,
        a.truth_batch("receipt").len()
    );
    let stats = http(&a, "GET", "/__sim/stats", &[], b"").unwrap().json();
    assert_eq!(stats["dlp"]["502"], 1);
}
