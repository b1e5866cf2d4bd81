//! End to end: fbhost drives the built plugin .so against the simulator, as Fluent Bit would.

mod common;
use common::*;
use fbhost::Generation;
use mimecast_sim::{FaultKind, FaultRule};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const DAY: Duration = Duration::from_secs(86_400);

fn every_event_once_on(gen: Generation) {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, gen);
    let types = ["receipt", "process"];
    host.add_instance(spec(&sim, &[("siem_types", "receipt,process")]))
        .expect("init");
    let from = day_start_ms(DAY);
    host.start();
    let settled = wait_complete(&host, &sim, &types, from, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("incomplete on {gen:?}"));
    let c = host.stop();
    let recs = c.snapshot();
    assert_exactly_once_since(&recs, &settled, &truth(&sim, &types, from));
    for r in &recs {
        assert_eq!(r.str_field("mimecast_source"), Some("siem_cg"));
        let ms = r.get("timestamp").and_then(|v| v.as_i64()).unwrap();
        assert_eq!(
            (r.secs as i64, r.nanos as i64),
            (ms / 1000, ms % 1000 * 1_000_000),
            "event time is the record's own"
        );
        assert_eq!(r.tag, "mimecast.0");
    }
    assert!(c.violations().is_empty(), "{:?}", c.violations());
    assert_eq!(
        sim.requests("batch_file", 400),
        0,
        "no bearer token sent to a pre-signed URL"
    );
    // `handoff auto`: records go as they come where that is verified (5.1), else at collect.
    let appends = c.event_appends.load(Ordering::Relaxed);
    if gen >= Generation::V5_1_0 {
        assert!(
            appends > 0,
            "{gen:?}: the event collector handed nothing over"
        );
    } else {
        assert_eq!(appends, 0, "{gen:?}: not verified, so collect only");
    }
}

#[test]
fn every_event_exactly_once_on_fluent_bit_2_0_layout() {
    every_event_once_on(Generation::V2_0);
}

#[test]
fn every_event_exactly_once_on_fluent_bit_4_1_layout() {
    every_event_once_on(Generation::V4_1);
}

#[test]
fn every_event_exactly_once_on_fluent_bit_5_0_layout() {
    every_event_once_on(Generation::V5_0);
}

#[test]
fn every_event_exactly_once_on_fluent_bit_5_1_1_layout() {
    every_event_once_on(Generation::V5_1_1);
}

#[test]
fn several_instances_keep_their_own_state() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    for gen in [Generation::V2_0, Generation::V5_1_1] {
        let mut host = host(&plugin_for(&plugin), gen);
        host.add_instance(spec(&sim, &[("siem_types", "av"), ("tag", "mc.av")]))
            .unwrap();
        host.add_instance(spec(&sim, &[("siem_types", "spam")]))
            .unwrap();
        let from = day_start_ms(DAY);
        host.start();
        let settled = wait_complete(&host, &sim, &["av", "spam"], from, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{gen:?}"));
        let c = host.stop();
        let recs = c.snapshot();
        assert_exactly_once_since(&recs, &settled, &truth(&sim, &["av", "spam"], from));
        for r in &recs {
            match r.str_field("type") {
                Some("av") => assert_eq!((r.instance, r.tag.as_str()), (0, "mc.av")),
                Some("spam") => assert_eq!((r.instance, r.tag.as_str()), (1, "mimecast.1")),
                other => panic!("unexpected type {other:?}"),
            }
        }
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }
}

/// A fresh copy per host (the test above runs two hosts one after the other).
fn plugin_for(_: &Plugin) -> Plugin {
    Plugin::copy()
}

#[test]
fn invalid_configuration_fails_init_naming_every_problem() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(&sim, &[("siem_types", "receipt")]))
        .expect("first instance is valid");
    // The first instance pulls from init on, so Unregister below has a pull to stop.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.arrivals("siem_batch_cg") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        sim.arrivals("siem_batch_cg") > 0,
        "the first instance never pulled"
    );
    let bad = fbhost::InstanceSpec::new(&[
        ("client_secret", "x"),
        ("poll_interval", "often"),
        ("base_url", "http://mimecast.example.com"),
    ]);
    let err = host.add_instance(bad).expect_err("init must fail");
    assert!(matches!(err, fbhost::HostError::InitFailed(1)));
    let logs = logs_text(&host.collected.logs());
    for needle in [
        "property 'client_id'",
        "property 'poll_interval': 'often'",
        "property 'base_url'",
        "3 configuration problem(s)",
    ] {
        assert!(logs.contains(needle), "missing {needle:?} in:\n{logs}");
    }
    // Fluent Bit then calls only Unregister: the first instance's thread must still be joined.
    let before = Instant::now();
    let c = host.abort_after_init_failure();
    assert!(before.elapsed() < Duration::from_secs(10));
    assert!(c.violations().is_empty(), "{:?}", c.violations());
    // Counted on arrival: a request sent before the join may still be answered (and counted
    // by `requests`) afterwards. The pause lets the simulator read what was already on the wire.
    std::thread::sleep(Duration::from_millis(500));
    let arrived = sim.arrivals("siem_batch_cg");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        sim.arrivals("siem_batch_cg"),
        arrived,
        "no pulling after Unregister"
    );
}

#[test]
fn bad_credentials_are_explained_retried_and_never_printed() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[("client_secret", "Wr0ngS3cret!"), ("siem_types", "receipt")],
    ))
    .unwrap();
    host.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.requests("token", 401) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1200));
    let c = host.stop();
    assert!(sim.requests("token", 401) >= 2, "credentials retried");
    assert_eq!(c.count.load(Ordering::Relaxed), 0);
    let logs = logs_text(&c.logs());
    assert!(logs.contains("refused the client credentials"), "{logs}");
    assert!(logs.contains("check client_id and client_secret"), "{logs}");
    assert!(!logs.contains("Wr0ngS3cret!"), "secret leaked into logs");
    let reports = logs.matches("refused the client credentials").count();
    assert_eq!(
        reports, 1,
        "reported once per cause, not per retry:\n{logs}"
    );
}

#[test]
fn token_expiry_and_revocation_mid_run_lose_nothing() {
    let sim = sim_with(|c| c.token_ttl = Duration::from_secs(2));
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V4_1);
    host.add_instance(spec(
        &sim,
        &[("siem_types", "delivery,journal"), ("page_size", "5")],
    ))
    .unwrap();
    sim.add_fault(
        FaultRule::new("siem_batch_cg", FaultKind::RevokeTokens)
            .after(3)
            .times(2),
    );
    let from = day_start_ms(DAY);
    host.start();
    let settled = wait_complete(
        &host,
        &sim,
        &["delivery", "journal"],
        from,
        Duration::from_secs(90),
    )
    .expect("every published event delivered in time");
    let c = host.stop();
    assert_exactly_once_since(
        &c.snapshot(),
        &settled,
        &truth(&sim, &["delivery", "journal"], from),
    );
    assert!(sim.requests("siem_batch_cg", 401) >= 2, "revocations hit");
    assert!(sim.requests("token", 200) >= 3, "token refreshed");
}

#[test]
fn shutdown_while_pulling_returns_promptly() {
    // Three types of 300-event files: the simulator sizes every file it lists by generating
    // it, and ten types of 2000-event files in a debug build made that generation, not the
    // plugin, decide whether the first record came within the wait. The first five downloads
    // are fast; every later one hangs for 4 s, so the stop below meets downloads in flight.
    let sim = sim_with(|c| c.siem_rate = 300);
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(&sim, &[("siem_types", "receipt, delivery, av")]))
        .unwrap();
    sim.add_fault(FaultRule::new("batch_file", FaultKind::Slow { ms: 4000 }).after(5));
    host.start();
    assert!(host
        .collected
        .wait_for(Duration::from_secs(60), |r| !r.is_empty()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.arrivals("batch_file") <= 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        sim.arrivals("batch_file") > 5,
        "slow downloads under way at the stop"
    );
    let t = Instant::now();
    let c = host.stop();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

#[test]
fn hot_reload_replaces_instances() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(&sim, &[("siem_types", "av")]))
        .unwrap();
    host.start();
    assert!(host
        .collected
        .wait_for(Duration::from_secs(30), |r| !r.is_empty()));
    let from = day_start_ms(DAY);
    host.hot_reload(vec![
        spec(&sim, &[("siem_types", "journal")]),
        spec(&sim, &[("siem_types", "spam")]),
    ])
    .unwrap();
    assert!(host.collected.wait_for(Duration::from_secs(60), |recs| {
        let got: BTreeSet<_> = ids(recs).into_iter().filter(|k| k.stream != 3).collect();
        got == truth(&sim, &["journal", "spam"], from)
    }));
    let c = host.stop();
    let recs = c.snapshot();
    let after: Vec<_> = recs
        .iter()
        .filter(|r| r.str_field("type") != Some("av"))
        .collect();
    assert!(
        after.iter().any(|r| r.tag == "mimecast.1"),
        "new instances numbered from 0 again"
    );
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

#[test]
fn corrupt_lines_and_files_become_error_records_and_collection_goes_on() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    let from = day_start_ms(DAY);
    // Each fault is aimed at one file by its path: files are downloaded ahead, concurrently,
    // so "the n-th request" would not say which file (or which attempt at it) is hit.
    let slots: Vec<(u16, i64)> = truth(&sim, &["receipt"], from)
        .iter()
        .map(|k| (k.stream, k.slot))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(slots.len() > 8, "a day of files: {}", slots.len());
    // The whole path: a part such as "/0/12.json.gz" would also match stream 10's file.
    let file: Vec<String> = slots
        .iter()
        .map(|&(stream, slot)| mimecast_sim::model::batch_file_path(stream, slot))
        .collect();
    let (bad_lines, corrupt_once, truncated_once, never_readable, unavailable_then_truncated) =
        (1, 2, 3, 4, 5);
    for (i, kind, after, times) in [
        (bad_lines, FaultKind::MalformedLines { every: 2 }, 0, 1),
        (corrupt_once, FaultKind::CorruptGzip, 0, 1),
        (truncated_once, FaultKind::TruncatedGzip, 0, 1),
        (never_readable, FaultKind::CorruptGzip, 0, 1000),
        // A transient failure does not use up the retry a corrupt download gets.
        (
            unavailable_then_truncated,
            FaultKind::Status { code: 503 },
            0,
            1,
        ),
        (unavailable_then_truncated, FaultKind::TruncatedGzip, 1, 1),
    ] {
        sim.add_fault(
            FaultRule::new("batch_file", kind)
                .on_path(&file[i])
                .after(after)
                .times(times),
        );
    }
    let in_slot = |k: &mimecast_sim::EventKey, i: usize| (k.stream, k.slot) == slots[i];
    let count_in = |keys: &BTreeSet<mimecast_sim::EventKey>, i: usize| {
        keys.iter().filter(|k| in_slot(k, i)).count()
    };
    let errors_of = |recs: &[fbhost::Record], i: usize| -> usize {
        errors(recs)
            .iter()
            .filter(|e| {
                e.str_field("mimecast_file")
                    .is_some_and(|f| f.ends_with(&file[i]))
            })
            .count()
    };
    host.add_instance(spec(&sim, &[("siem_types", "receipt")]))
        .unwrap();
    host.start();
    let settled = wait_settled(
        &host,
        Duration::from_secs(60),
        || truth(&sim, &["receipt"], from),
        |recs, want| {
            let got: BTreeSet<_> = ids(recs).into_iter().collect();
            want.iter()
                .filter(|k| !in_slot(k, bad_lines) && !in_slot(k, never_readable))
                .all(|k| got.contains(k))
                && count_in(&got, bad_lines) + errors_of(recs, bad_lines)
                    >= count_in(want, bad_lines)
                && errors_of(recs, never_readable) >= 1
        },
    )
    .expect("every readable event, and an error record for each broken line and the broken file");
    std::thread::sleep(Duration::from_millis(1500));
    let c = host.stop();
    let recs = c.snapshot();
    let want = truth(&sim, &["receipt"], from);
    let got = ids(&recs);
    let unique: BTreeSet<_> = got.iter().copied().collect();
    assert_eq!(
        got.len(),
        unique.len(),
        "no duplicates after retrying corrupt and truncated files"
    );
    assert!(unique.is_subset(&want));
    // A batch file published after the wait (at a 15-minute boundary) may still be on its way.
    for k in settled.difference(&unique) {
        assert!(
            in_slot(k, bad_lines) || in_slot(k, never_readable),
            "lost {k:?}, which no fault touched"
        );
    }
    let (bad_total, bad_got) = (count_in(&want, bad_lines), count_in(&unique, bad_lines));
    assert!(bad_got < bad_total, "the malformed lines were served");
    assert_eq!(
        errors_of(&recs, bad_lines),
        bad_total - bad_got,
        "each broken line is one error record, nothing else of its file is lost"
    );
    assert_eq!(count_in(&unique, never_readable), 0);
    assert_eq!(
        errors_of(&recs, never_readable),
        1,
        "a file that stays unreadable is one error record"
    );
    assert_eq!(
        errors(&recs).len(),
        errors_of(&recs, bad_lines) + 1,
        "files corrupt or truncated once were read on a retry, without an error record"
    );
    for e in errors(&recs) {
        assert_eq!(e.str_field("mimecast_source"), Some("siem_cg"));
        assert_eq!(e.str_field("type"), Some("receipt"));
        let msg = e.str_field("mimecast_error").unwrap();
        let name = e.str_field("mimecast_file").unwrap();
        if name.ends_with(&file[never_readable]) {
            assert!(msg.contains("could not be read"), "{msg}");
        } else {
            assert!(msg.contains("invalid JSON"), "{msg}");
        }
        assert!(
            name.ends_with(".json.gz"),
            "names the file without its signature"
        );
        assert!(!name.contains("Signature"));
    }
    assert!(c.violations().is_empty(), "{:?}", c.violations());
}

#[test]
fn expired_urls_are_relisted_not_skipped() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    sim.add_fault(
        FaultRule::new("batch_file", FaultKind::ExpiredUrl)
            .after(2)
            .times(3),
    );
    host.add_instance(spec(&sim, &[("siem_types", "url protect")]))
        .unwrap();
    let from = day_start_ms(DAY);
    host.start();
    let settled = wait_complete(&host, &sim, &["url protect"], from, Duration::from_secs(60))
        .expect("every published event delivered in time");
    let c = host.stop();
    assert_exactly_once_since(
        &c.snapshot(),
        &settled,
        &truth(&sim, &["url protect"], from),
    );
    assert_eq!(sim.requests("batch_file", 403), 3);
    assert!(errors(&c.snapshot()).is_empty());
}

#[test]
fn rate_limits_5xx_and_resets_are_ridden_out() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    sim.add_fault(
        FaultRule::new("siem_batch_cg", FaultKind::RateLimited { retry_after_s: 1 })
            .after(1)
            .times(3),
    );
    sim.add_fault(
        FaultRule::new("siem_batch_cg", FaultKind::Status { code: 503 })
            .after(4)
            .times(2),
    );
    sim.add_fault(
        FaultRule::new("batch_file", FaultKind::Reset)
            .after(10)
            .times(2),
    );
    host.add_instance(spec(
        &sim,
        &[
            ("siem_types", "attachment protect,internal email protect"),
            ("page_size", "20"),
        ],
    ))
    .unwrap();
    let from = day_start_ms(DAY);
    host.start();
    let types = ["attachment protect", "internal email protect"];
    let settled = wait_complete(&host, &sim, &types, from, Duration::from_secs(90))
        .expect("every published event delivered in time");
    let c = host.stop();
    assert_exactly_once_since(&c.snapshot(), &settled, &truth(&sim, &types, from));
    assert_eq!(sim.requests("siem_batch_cg", 429), 3);
}

#[test]
fn repeated_files_and_stuck_tokens_cause_no_duplicates() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    sim.add_fault(
        FaultRule::new("siem_batch_cg", FaultKind::RepeatEvents { count: 2 })
            .after(1)
            .times(3),
    );
    sim.add_fault(
        FaultRule::new("siem_batch_cg", FaultKind::StuckToken)
            .after(5)
            .times(2),
    );
    host.add_instance(spec(
        &sim,
        &[("siem_types", "impersonation protect"), ("page_size", "10")],
    ))
    .unwrap();
    let from = day_start_ms(DAY);
    host.start();
    let settled = wait_complete(
        &host,
        &sim,
        &["impersonation protect"],
        from,
        Duration::from_secs(90),
    )
    .expect("every published event delivered in time");
    std::thread::sleep(Duration::from_millis(2500));
    let c = host.stop();
    assert_exactly_once_since(
        &c.snapshot(),
        &settled,
        &truth(&sim, &["impersonation protect"], from),
    );
}

#[test]
fn tls_with_ca_file_works_and_unknown_ca_is_refused() {
    let sim = sim_with(|c| c.tls = true);
    let ca = sim.ca_file().unwrap().to_str().unwrap().to_string();
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(&sim, &[("siem_types", "av"), ("ca_file", &ca)]))
        .unwrap();
    host.add_instance(spec(&sim, &[("siem_types", "spam")]))
        .unwrap();
    let from = day_start_ms(DAY);
    host.start();
    assert!(
        wait_complete(&host, &sim, &["av"], from, Duration::from_secs(60)).is_some(),
        "every published event delivered in time"
    );
    let c = host.stop();
    let recs = c.snapshot();
    assert!(
        recs.iter().all(|r| r.instance == 0),
        "the instance without ca_file got nothing"
    );
    let logs = logs_text(&c.logs());
    assert!(
        logs.contains("[input:mimecast:mimecast.1]")
            && logs.contains("TLS certificate verification failed")
            && logs.contains("set ca_file"),
        "{logs}"
    );
}

/// The operator's switch: `event` on a Fluent Bit 5 it is not verified on (5.0 here), never
/// before 5.0 (where Fluent Bit 4.0.3 does not run the collector), `collect` never.
#[test]
fn the_handoff_property_chooses_how_records_reach_the_host() {
    for (gen, mode, event) in [
        (Generation::V5_0, "event", true),
        (Generation::V4_1, "event", false),
        (Generation::V5_1_1, "collect", false),
    ] {
        let sim = sim_with(|_| {});
        let plugin = Plugin::copy();
        let mut host = host(&plugin, gen);
        host.add_instance(spec(&sim, &[("siem_types", "receipt"), ("handoff", mode)]))
            .unwrap();
        let from = day_start_ms(DAY);
        host.start();
        let settled = wait_complete(&host, &sim, &["receipt"], from, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("incomplete with handoff {mode} on {gen:?}"));
        let c = host.stop();
        assert_exactly_once_since(&c.snapshot(), &settled, &truth(&sim, &["receipt"], from));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        let appends = c.event_appends.load(Ordering::Relaxed);
        assert_eq!(
            appends > 0,
            event,
            "handoff {mode} on {gen:?}: {appends} appends"
        );
        let logs = logs_text(&c.logs());
        assert_eq!(
            logs.contains("handed over once a second"),
            !event,
            "handoff {mode} on {gen:?} says which hand-off it uses:\n{logs}"
        );
    }
}

#[test]
fn buffers_respect_buffer_max_size_and_pause_holds_delivery() {
    let sim = sim_with(|c| c.siem_rate = 60);
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[("siem_types", "receipt"), ("buffer_max_size", "64k")],
    ))
    .unwrap();
    let from = day_start_ms(DAY);
    host.start();
    assert!(host
        .collected
        .wait_for(Duration::from_secs(30), |r| r.len() > 100));
    host.pause(0);
    std::thread::sleep(Duration::from_millis(1200));
    let during = host.collected.count.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        host.collected.count.load(Ordering::Relaxed),
        during,
        "nothing collected while paused"
    );
    host.resume(0);
    let settled = wait_complete(&host, &sim, &["receipt"], from, Duration::from_secs(180))
        .expect("every published event delivered in time");
    let c = host.stop();
    assert!(
        c.violations().is_empty(),
        "nothing appended while paused: {:?}",
        c.violations()
    );
    assert!(
        c.max_buffer.load(Ordering::Relaxed) <= 64 << 10,
        "max buffer {}",
        c.max_buffer.load(Ordering::Relaxed)
    );
    assert_exactly_once_since(&c.snapshot(), &settled, &truth(&sim, &["receipt"], from));
}

#[test]
fn a_spent_quota_pauses_before_any_429() {
    let sim = sim_with(|c| {
        c.rate_limit = Some(mimecast_sim::RateLimit {
            limit: 4,
            window: Duration::from_secs(2),
            headers_always: true,
        });
    });
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[("siem_types", "journal"), ("page_size", "10")],
    ))
    .unwrap();
    let from = day_start_ms(DAY);
    host.start();
    let settled = wait_complete(&host, &sim, &["journal"], from, Duration::from_secs(120))
        .expect("every published event delivered in time");
    let c = host.stop();
    assert_exactly_once_since(&c.snapshot(), &settled, &truth(&sim, &["journal"], from));
    assert!(
        sim.requests("siem_batch_cg", 200) > 8,
        "paged through several quota windows"
    );
    assert_eq!(
        sim.requests("siem_batch_cg", 429),
        0,
        "X-RateLimit-Remaining: 0 was honoured before a 429"
    );
}

/// `batch_concurrency` bounds the batch files one type downloads at once (measured by the
/// simulator while every file answer is held back), and files downloaded ahead of their turn
/// keep delivery exactly-once, also when some of those early downloads fail or expire.
#[test]
fn batch_files_download_concurrently_within_the_bound() {
    let from = day_start_ms(DAY);
    for (width, faults) in [("1", false), ("4", false), ("4", true)] {
        let sim = sim_with(|c| c.siem_rate = 400);
        sim.add_fault(FaultRule::new("batch_file", FaultKind::Slow { ms: 150 }));
        if faults {
            sim.add_fault(
                FaultRule::new("batch_file", FaultKind::Status { code: 503 })
                    .probability(0.3)
                    .times(5),
            );
            sim.add_fault(
                FaultRule::new("batch_file", FaultKind::ExpiredUrl)
                    .after(10)
                    .times(2),
            );
            sim.add_fault(
                FaultRule::new("batch_file", FaultKind::TruncatedGzip)
                    .after(20)
                    .times(1),
            );
        }
        let plugin = Plugin::copy();
        let mut host = host(&plugin, Generation::V5_1_1);
        host.add_instance(spec(
            &sim,
            &[
                ("siem_types", "receipt"),
                ("batch_concurrency", width),
                ("page_size", "20"),
            ],
        ))
        .unwrap();
        host.start();
        let settled = wait_complete(&host, &sim, &["receipt"], from, Duration::from_secs(90))
            .unwrap_or_else(|| {
                panic!("incomplete with batch_concurrency={width}, faults={faults}")
            });
        let c = host.stop();
        assert_exactly_once_since(&c.snapshot(), &settled, &truth(&sim, &["receipt"], from));
        let peak = sim.peak_in_flight("batch_file");
        let want: u64 = width.parse().unwrap();
        if faults {
            assert!(peak <= want, "{peak} files at once, bound {want}");
        } else {
            assert_eq!(
                peak, want,
                "files downloaded at once with batch_concurrency={width}"
            );
        }
    }
}
