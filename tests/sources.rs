//! Every log source end to end: fbhost + plugin + simulator.

mod common;
use common::*;
use fbhost::{Generation, Record};
use mimecast_sim::{EventKey, FaultKind, FaultRule};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const API_SOURCES: &[(&str, &str)] = &[
    ("ttp_url", "date"),
    ("ttp_attachment", "date"),
    ("ttp_impersonation", "eventTime"),
    ("audit", "eventTime"),
    ("dlp", "eventTime"),
    ("held_release", "released"),
    ("archive_search", "createTime"),
    ("search_logs", "createTime"),
    ("archive_view", "viewed"),
    ("rejections", "created"),
];

fn by_source(recs: &[Record]) -> BTreeMap<String, Vec<&Record>> {
    let mut m: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in recs {
        m.entry(r.str_field("mimecast_source").unwrap_or("").to_string())
            .or_default()
            .push(r);
    }
    m
}

fn keys_of(recs: &[&Record]) -> Vec<EventKey> {
    recs.iter()
        .filter_map(|r| mimecast_sim::identity(&r.to_json()))
        .collect()
}

#[test]
fn every_api_log_source_delivers_each_record_once_with_its_own_time() {
    let sim = sim_with(|c| {
        c.api_rate = 120;
        c.audit_lag = Duration::from_secs(20);
    });
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    let names: Vec<&str> = API_SOURCES.iter().map(|(s, _)| *s).collect();
    let sources = names.join(",");
    host.add_instance(spec(
        &sim,
        &[
            ("sources", &sources),
            ("initial_lookback", "3h"),
            ("page_size", "25"),
        ],
    ))
    .unwrap();
    let t0 = sim.now_ms();
    let from = t0 - 3 * 3_600_000 + 15_000;
    host.start();
    // Every event older than the start (audit: once its lag has passed) must arrive.
    let expect =
        |s: &str| -> BTreeSet<EventKey> { sim.truth(s, from, t0 - 31_000).into_iter().collect() };
    let ok = host.collected.wait_for(Duration::from_secs(90), |recs| {
        let got = by_source(recs);
        names.iter().all(|s| {
            let have: BTreeSet<EventKey> = got
                .get(*s)
                .map(|v| keys_of(v))
                .unwrap_or_default()
                .into_iter()
                .collect();
            expect(s).is_subset(&have)
        })
    });
    std::thread::sleep(Duration::from_secs(3)); // further polls re-read the overlap
    let c = host.stop();
    let recs = c.snapshot();
    let got = by_source(&recs);
    for (s, time_field) in API_SOURCES {
        let list = got.get(*s).cloned().unwrap_or_default();
        let keys = keys_of(&list);
        let unique: BTreeSet<EventKey> = keys.iter().copied().collect();
        assert!(
            ok,
            "{s}: missing {} events",
            expect(s).difference(&unique).count()
        );
        assert_eq!(
            keys.len(),
            unique.len(),
            "{s}: duplicates across pages/overlapping windows"
        );
        let all: BTreeSet<EventKey> = sim
            .truth(s, from - 30_000, sim.now_ms())
            .into_iter()
            .collect();
        assert!(unique.is_subset(&all), "{s}: records outside the window");
        for r in list.iter().take(20) {
            let t = r.str_field(time_field).unwrap();
            let ts = fluent_bit_mimecast::encode::parse_time_text(t).unwrap();
            assert_eq!(
                r.secs as i64,
                ts.as_second(),
                "{s}: event time is the record's {time_field}"
            );
        }
    }
    assert!(c.violations().is_empty(), "{:?}", c.violations());
    assert!(errors(&recs).is_empty());
}

#[test]
fn late_audit_records_are_caught_by_the_overlap() {
    let sim = sim_with(|c| {
        c.api_rate = 600;
        c.audit_lag = Duration::from_secs(6);
    });
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[
            ("sources", "audit"),
            ("initial_lookback", "10m"),
            ("overlap", "2m"),
        ],
    ))
    .unwrap();
    let t0 = sim.now_ms();
    host.start();
    // Records from just before the start become visible up to 6 s late: the first read misses
    // them, a later read of the overlap must find them, once.
    let want: BTreeSet<EventKey> = sim.truth("audit", t0 - 60_000, t0).into_iter().collect();
    assert!(want.len() > 5);
    let ok = host.collected.wait_for(Duration::from_secs(40), |recs| {
        let have: BTreeSet<EventKey> = ids(recs).into_iter().collect();
        want.is_subset(&have)
    });
    let c = host.stop();
    let keys = ids(&c.snapshot());
    let unique: BTreeSet<EventKey> = keys.iter().copied().collect();
    assert!(
        ok,
        "late records missed: {}",
        want.difference(&unique).count()
    );
    assert_eq!(keys.len(), unique.len(), "re-reading emitted duplicates");
}

#[test]
fn snapshots_are_complete_and_marked() {
    // Simulated time stands still: messages are held and released as time passes, and a list
    // walked page by page over a minute on a slow machine would otherwise differ from a summary
    // taken at another moment by whatever changed in between (Mimecast offers no consistent
    // view either). With the held set fixed, a complete list matches the summary exactly.
    let sim = sim_with(|c| {
        c.api_rate = 120;
        c.speed = 0.0;
    });
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[
            ("sources", "hold_list,hold_summary,dashboard"),
            ("page_size", "7"),
            ("poll_interval", "2s"),
        ],
    ))
    .unwrap();
    host.start();
    // The first snapshot of the list and of the summary; a complete list matches the summary.
    let firsts = |recs: &[fbhost::Record]| -> Option<(usize, i64)> {
        let s = by_source(recs);
        let mut snaps: BTreeMap<&str, usize> = BTreeMap::new();
        for r in s.get("hold_list")? {
            *snaps.entry(r.str_field("mimecast_snapshot")?).or_default() += 1;
        }
        let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
        for r in s.get("hold_summary")? {
            *sums.entry(r.str_field("mimecast_snapshot")?).or_default() +=
                r.get("numberOfItems")?.as_i64()?;
        }
        s.get("dashboard")?;
        Some((*snaps.values().next()?, *sums.values().next()?))
    };
    // Wait for the whole first list snapshot to arrive (it is delivered in several chunks).
    let ok = host.collected.wait_for(Duration::from_secs(60), |recs| {
        firsts(recs).is_some_and(|(list, sum)| list as i64 == sum)
    });
    let c = host.stop();
    let recs = c.snapshot();
    let s = by_source(&recs);
    let (first_list, first_sum) =
        firsts(&recs).expect("all three sources delivered, every record marked");
    assert!(ok, "list {first_list} vs summary {first_sum}");
    assert!(
        first_list > 7,
        "paged snapshot is complete ({first_list} held)"
    );
    assert!(
        s["hold_list"]
            .iter()
            .all(|r| r.str_field("mimecast_snapshot").is_some()),
        "marked as snapshots"
    );
    assert!(s["dashboard"]
        .iter()
        .all(|r| r.str_field("title").is_some()));
}

#[test]
fn threat_intel_stix_and_csv() {
    let sim = sim_with(|c| {
        c.rates.insert("ti_malware_grid".into(), 40);
        c.rates.insert("ti_malware_customer".into(), 40);
    });
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[
            ("sources", "threat_intel"),
            ("threat_intel_feeds", "malware_grid"),
            ("initial_lookback", "3h"),
        ],
    ))
    .unwrap();
    host.add_instance(spec(
        &sim,
        &[
            ("sources", "threat_intel"),
            ("threat_intel_feeds", "malware_customer"),
            ("threat_intel_format", "csv"),
            ("initial_lookback", "3h"),
        ],
    ))
    .unwrap();
    let t0 = sim.now_ms();
    host.start();
    let grid: BTreeSet<EventKey> = sim
        .truth(
            "ti_malware_grid",
            t0 - 3 * 3_600_000 + 900_000,
            (t0 / 900_000) * 900_000,
        )
        .into_iter()
        .collect();
    let ok = host.collected.wait_for(Duration::from_secs(60), |recs| {
        let have: BTreeSet<EventKey> = recs
            .iter()
            .filter(|r| r.instance == 0)
            .filter_map(|r| mimecast_sim::model::parse_ti_indicator_id(r.str_field("id")?))
            .collect();
        grid.is_subset(&have) && recs.iter().any(|r| r.instance == 1)
    });
    let c = host.stop();
    let recs = c.snapshot();
    assert!(ok, "feed incomplete");
    let stix: Vec<_> = recs.iter().filter(|r| r.instance == 0).collect();
    let ids: Vec<_> = stix.iter().map(|r| r.str_field("id").unwrap()).collect();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "indicators once");
    for r in &stix {
        assert_eq!(r.str_field("type"), Some("indicator"));
        assert_eq!(r.str_field("mimecast_source"), Some("threat_intel"));
        assert_eq!(r.str_field("feed_type"), Some("malware_grid"));
        let related = r.get("related").and_then(|v| v.as_array()).unwrap();
        assert!(related.iter().any(|o| o
            .as_map()
            .unwrap()
            .iter()
            .any(|(k, v)| k.as_str() == Some("type") && v.as_str() == Some("malware"))));
    }
    let csv: Vec<_> = recs.iter().filter(|r| r.instance == 1).collect();
    assert!(csv
        .iter()
        .all(|r| r.str_field("SHA256").is_some() && r.str_field("IndicatorId").is_some()));
}

#[test]
fn siem_stream_mode_drops_repeated_events() {
    let sim = sim_with(|c| c.siem_rate = 200);
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    sim.add_fault(
        FaultRule::new("siem_stream_cg", FaultKind::RepeatEvents { count: 5 })
            .after(1)
            .times(3),
    );
    host.add_instance(spec(
        &sim,
        &[
            ("siem_mode", "stream"),
            ("siem_types", "receipt,spam"),
            ("initial_lookback", "2h"),
            ("page_size", "50"),
        ],
    ))
    .unwrap();
    let t0 = sim.now_ms();
    let from = t0 - 2 * 3_600_000 + 5_000;
    host.start();
    let want: BTreeSet<EventKey> = ["receipt", "spam"]
        .iter()
        .flat_map(|t| sim.truth(t, from, t0 - 31_000))
        .collect();
    let ok = host.collected.wait_for(Duration::from_secs(60), |recs| {
        let have: BTreeSet<EventKey> = ids(recs).into_iter().collect();
        want.is_subset(&have)
    });
    let c = host.stop();
    let keys = ids(&c.snapshot());
    let unique: BTreeSet<EventKey> = keys.iter().copied().collect();
    assert!(ok, "missing {}", want.difference(&unique).count());
    assert_eq!(keys.len(), unique.len(), "repeated events emitted twice");
    assert!(sim.requests("siem_stream_cg", 200) > 3);
}

#[test]
fn permission_licence_and_function_errors_name_the_fix() {
    let sim = sim_with(|c| {
        c.clients[0].forbidden = vec!["audit".into(), "rejections".into()];
        c.unlicensed = vec!["ttp_url".into(), "awareness_performance".into()];
    });
    sim.add_fault(
        FaultRule::new(
            "dlp",
            FaultKind::FailIn200 {
                code: "err_x".into(),
                message: "Simulated outage".into(),
                retryable: false,
            },
        )
        .times(1),
    );
    sim.add_fault(FaultRule::new("archive_view", FaultKind::DanglingNext));
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[
            (
                "sources",
                "audit,ttp_url,dlp,archive_view,rejections,awareness_performance",
            ),
            ("initial_lookback", "1h"),
        ],
    ))
    .unwrap();
    host.start();
    let t0 = Instant::now();
    let want_dlp: BTreeSet<EventKey> = sim
        .truth(
            "dlp",
            sim.now_ms() - 3_600_000 + 10_000,
            sim.now_ms() - 31_000,
        )
        .into_iter()
        .collect();
    let ok = host.collected.wait_for(Duration::from_secs(30), |recs| {
        let have: BTreeSet<EventKey> = ids(recs).into_iter().collect();
        want_dlp.is_subset(&have)
    });
    while t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let c = host.stop();
    assert!(ok, "dlp recovered after the failure in a 200");
    let logs = logs_text(&c.logs());
    assert!(
        logs.contains("audit: HTTP 403") && logs.contains("'Account | Logs | Read'"),
        "{logs}"
    );
    assert!(
        logs.contains("ttp_url: HTTP 404") && logs.contains("remove 'ttp_url' from sources"),
        "{logs}"
    );
    assert!(
        logs.contains("rejections: HTTP 403") && logs.contains("'Monitoring | Rejections | Read'"),
        "{logs}"
    );
    assert!(
        logs.contains("awareness_performance: HTTP 404")
            && logs.contains("remove 'awareness_performance' from sources"),
        "{logs}"
    );
    assert!(logs.contains("Simulated outage"), "{logs}");
    let views = ids(&c.snapshot())
        .into_iter()
        .filter(|k| k.stream == 21)
        .count();
    let unique: BTreeSet<_> = ids(&c.snapshot())
        .into_iter()
        .filter(|k| k.stream == 21)
        .collect();
    assert_eq!(
        views,
        unique.len(),
        "dangling next does not loop into duplicates"
    );
    assert!(views > 0);
}

#[test]
fn all_sources_in_one_configuration_are_told_apart() {
    let sim = sim_with(|c| {
        c.api_rate = 60;
        c.rates.insert("ti_malware_grid".into(), 20);
        c.rates.insert("ti_malware_customer".into(), 20);
    });
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    let all = fluent_bit_mimecast::config::SOURCES.join(",");
    host.add_instance(spec(
        &sim,
        &[
            ("sources", &all),
            ("siem_types", "receipt"),
            ("siem_ci_types", "entities"),
            ("initial_lookback", "2h"),
        ],
    ))
    .unwrap();
    host.start();
    let ok = host.collected.wait_for(Duration::from_secs(60), |recs| {
        let s = by_source(recs);
        fluent_bit_mimecast::config::SOURCES
            .iter()
            .all(|k| s.contains_key(*k))
    });
    let c = host.stop();
    let recs = c.snapshot();
    let s = by_source(&recs);
    assert!(
        ok,
        "sources without records: {:?}",
        fluent_bit_mimecast::config::SOURCES
            .iter()
            .filter(|k| !s.contains_key(**k))
            .collect::<Vec<_>>()
    );
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

/// Seconds since the epoch of an `/api/...` time text.
fn secs_of(text: &str) -> i64 {
    fluent_bit_mimecast::encode::parse_time_text(text)
        .map(|t| t.as_second())
        .unwrap_or(-1)
}

#[test]
fn remediation_incidents_are_emitted_once_per_change() {
    let sim = sim_with(|c| {
        c.rates.insert("remediation".into(), 300);
    });
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[
            ("sources", "remediation"),
            ("initial_lookback", "3h"),
            ("page_size", "25"),
        ],
    ))
    .unwrap();
    let t0 = sim.now_ms();
    let from = t0 - 3 * 3_600_000 + 15_000;
    let want: BTreeSet<EventKey> = sim
        .truth("remediation", from, t0 - 31_000)
        .into_iter()
        .collect();
    // (incident, modified) of every record; the incident's key and creation (s) by id.
    let versions = |recs: &[Record]| -> Vec<(EventKey, i64, i64)> {
        recs.iter()
            .filter_map(|r| {
                let key = mimecast_sim::identity(&r.to_json())?;
                let created = secs_of(r.str_field("create")?);
                Some((key, created, secs_of(r.str_field("modified")?)))
            })
            .collect()
    };
    // The version an incident has at sim time `at` (s).
    let latest = |key: EventKey, created: i64, at: i64| -> i64 {
        match sim.remediation_change(key, created * 1000) {
            Some(c) if c / 1000 <= at => c / 1000,
            _ => created,
        }
    };
    host.start();
    let first = host.collected.wait_for(Duration::from_secs(60), |recs| {
        let have: BTreeSet<EventKey> = versions(recs).iter().map(|v| v.0).collect();
        want.is_subset(&have)
    });
    assert!(first, "every incident of the last 3 hours arrived");
    // An hour passes: incidents of the last hour are changed (messages restored), and the
    // plugin, reading the last 7 days again, emits each change once.
    sim.advance(Duration::from_secs(3600));
    let later = sim.now_ms() / 1000;
    let changed = host.collected.wait_for(Duration::from_secs(60), |recs| {
        let have: BTreeSet<(EventKey, i64)> = versions(recs).iter().map(|v| (v.0, v.2)).collect();
        versions(recs)
            .iter()
            .filter(|v| want.contains(&v.0))
            .all(|v| have.contains(&(v.0, latest(v.0, v.1, later))))
    });
    std::thread::sleep(Duration::from_secs(3));
    let c = host.stop();
    let recs = c.snapshot();
    let got = versions(&recs);
    assert!(changed, "the changes of the last hour arrived");
    let unique: BTreeSet<(EventKey, i64)> = got.iter().map(|v| (v.0, v.2)).collect();
    assert_eq!(got.len(), unique.len(), "a version emitted twice");
    let mut changed_after_start = 0;
    for (key, created, modified) in &got {
        let change = sim
            .remediation_change(*key, created * 1000)
            .map(|c| c / 1000);
        assert!(
            *modified == *created || Some(*modified) == change,
            "{key:?}: modified {modified} is neither its creation nor its change"
        );
        // Read before the hour passed, changed during it: its first version came before.
        if want.contains(key) && change.is_some_and(|c| c > t0 / 1000 + 30 && c <= later) {
            changed_after_start += 1;
            assert!(
                unique.contains(&(*key, *created)),
                "{key:?}: its version before the change is missing"
            );
        }
    }
    assert!(
        changed_after_start > 0,
        "no incident changed during the test"
    );
    for r in recs.iter().take(50) {
        assert_eq!(
            r.secs as i64,
            secs_of(r.str_field("modified").unwrap_or("")),
            "event time is the incident's last change"
        );
    }
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

#[test]
fn email_queue_samples_arrive_once_each_with_their_direction() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[("sources", "email_queues"), ("initial_lookback", "3h")],
    ))
    .unwrap();
    let t0 = sim.now_ms();
    let want: BTreeSet<(String, i64, u64)> = sim
        .queue_samples(t0 - 3 * 3_600_000 + 15_000, t0 - 5_000)
        .into_iter()
        .flat_map(|(t, i, o)| {
            [
                ("inbound".to_string(), t / 1000, i),
                ("outbound".into(), t / 1000, o),
            ]
        })
        .collect();
    let samples = |recs: &[Record]| -> Vec<(String, i64, u64)> {
        recs.iter()
            .filter_map(|r| {
                Some((
                    r.str_field("direction")?.to_string(),
                    secs_of(r.str_field("date")?),
                    r.get("count")?.as_u64()?,
                ))
            })
            .collect()
    };
    host.start();
    let ok = host.collected.wait_for(Duration::from_secs(30), |recs| {
        want.is_subset(&samples(recs).into_iter().collect())
    });
    std::thread::sleep(Duration::from_secs(3)); // more polls: nothing again
    let c = host.stop();
    let recs = c.snapshot();
    let got = samples(&recs);
    assert!(
        ok,
        "missing samples: {:?}",
        want.difference(&got.iter().cloned().collect()).next()
    );
    let unique: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got.len(), unique.len(), "a sample emitted twice");
    assert!(want.len() >= 2 * 17, "{} samples in 3 hours", want.len());
    for r in &recs {
        assert_eq!(r.secs as i64, secs_of(r.str_field("date").unwrap_or("")));
    }
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

/// The rows of one source in `recs`, by snapshot.
fn snapshots_of<'a>(recs: &'a [Record], source: &str) -> BTreeMap<String, Vec<&'a Record>> {
    let mut m: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in recs
        .iter()
        .filter(|r| r.str_field("mimecast_source") == Some(source))
    {
        m.entry(r.str_field("mimecast_snapshot").unwrap_or("").to_string())
            .or_default()
            .push(r);
    }
    m
}

#[test]
fn awareness_snapshots_are_whole_and_kept_to_their_cadence_across_restarts() {
    let sim = sim_with(|c| {
        c.awareness_users = 40;
        c.phishing_campaigns = 3;
    });
    let plugin = Plugin::copy();
    let state = temp_dir("awareness-state");
    let state = state.to_string_lossy().into_owned();
    let props = [
        (
            "sources",
            "awareness_performance,awareness_watchlist,awareness_safe_score,awareness_campaigns,awareness_campaign_users",
        ),
        ("page_size", "7"),
        ("awareness_interval", "5m"),
        ("state_dir", state.as_str()),
    ];
    // What each source's snapshot must hold: a key per row, from the simulator's tables.
    let key_of = |r: &serde_json::Value, fields: &[&str]| -> String {
        fields
            .iter()
            .map(|f| r.get(*f).map(|v| v.to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("|")
    };
    let tables: [(&str, &str, &[&str]); 5] = [
        ("awareness_performance", "performance", &["email"]),
        ("awareness_watchlist", "watchlist", &["email"]),
        ("awareness_safe_score", "safe_score", &["emailAddress"]),
        ("awareness_campaigns", "campaigns", &["id"]),
        (
            "awareness_campaign_users",
            "campaign_users",
            &["campaignId", "email"],
        ),
    ];
    let truth: Vec<BTreeSet<String>> = tables
        .iter()
        .map(|(_, table, fields)| {
            sim.awareness_rows(table)
                .iter()
                .map(|r| key_of(r, fields))
                .collect()
        })
        .collect();
    let complete = |recs: &[Record]| {
        tables
            .iter()
            .zip(&truth)
            .all(|((source, _, fields), want)| {
                snapshots_of(recs, source).values().any(|rows| {
                    let have: Vec<String> =
                        rows.iter().map(|r| key_of(&r.to_json(), fields)).collect();
                    have.len() == want.len()
                        && have.iter().cloned().collect::<BTreeSet<_>>() == *want
                })
            })
    };
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(&sim, &props)).unwrap();
    host.start();
    let ok = host.collected.wait_for(Duration::from_secs(60), complete);
    std::thread::sleep(Duration::from_secs(3)); // polls go on: no snapshot before 5 minutes
    let c = host.stop();
    let recs = c.snapshot();
    assert!(
        ok,
        "every table arrived whole, each row once, in one snapshot"
    );
    assert!(
        [0, 2, 4].iter().all(|i| truth[*i].len() > 7),
        "the tables of users span several pages: {:?}",
        truth.iter().map(BTreeSet::len).collect::<Vec<_>>()
    );
    for (source, _, _) in &tables {
        assert_eq!(
            snapshots_of(&recs, source).len(),
            1,
            "{source}: one snapshot"
        );
    }
    let users = snapshots_of(&recs, "awareness_campaign_users");
    let users = users.values().next().cloned().unwrap_or_default();
    assert!(users.iter().all(|r| r
        .str_field("campaignName")
        .is_some_and(|n| n.starts_with("Quarterly phishing test"))));
    assert!(c.violations().is_empty(), "{:?}", c.violations());

    // A restart within the interval takes no snapshot: when the last was taken is saved.
    let again = host_again(&plugin, &sim, &props);
    again.start();
    std::thread::sleep(Duration::from_secs(4));
    let c = again.stop();
    let awareness = c
        .snapshot()
        .iter()
        .filter(|r| {
            r.str_field("mimecast_source")
                .is_some_and(|s| s.starts_with("awareness_"))
        })
        .count();
    assert_eq!(
        awareness, 0,
        "a restart retook a snapshot before awareness_interval"
    );
    let requests: u64 = ["awareness_performance", "awareness_safe_score"]
        .iter()
        .map(|e| sim.requests(e, 200))
        .sum();
    assert_eq!(
        requests,
        2 * 6,
        "each 40-row table read once, in 6 pages of 7"
    );
}

fn host_again(plugin: &Plugin, sim: &mimecast_sim::Sim, props: &[(&str, &str)]) -> fbhost::Host {
    let mut h = host(plugin, Generation::V5_1_1);
    h.add_instance(spec(sim, props)).unwrap();
    h
}
