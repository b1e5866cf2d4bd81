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
    let sim = sim_with(|c| c.api_rate = 120);
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
        firsts(recs).is_some_and(|(list, sum)| (list as i64 - sum).abs() <= 1)
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
        c.clients[0].forbidden = vec!["audit".into()];
        c.unlicensed = vec!["ttp_url".into()];
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
            ("sources", "audit,ttp_url,dlp,archive_view"),
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
