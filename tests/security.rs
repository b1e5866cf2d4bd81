//! Secrets stay secret: a full run at trace level, with token refreshes, revocations and corrupt
//! data, must not show the client secret, any access token, or a batch URL's signature in any
//! log line, record or state file.

mod common;
use common::*;
use fbhost::Generation;
use mimecast_sim::{FaultKind, FaultRule};
use std::time::Duration;

#[test]
fn no_secret_token_or_signature_in_logs_records_or_state() {
    const SECRET: &str = "S3cr3t-Value-That-Must-Not-Leak";
    let sim = sim_with(|c| {
        c.clients[0].secret = SECRET.into();
        c.token_ttl = Duration::from_secs(2);
    });
    sim.add_fault(
        FaultRule::new("siem_batch_cg", FaultKind::RevokeTokens)
            .after(2)
            .times(2),
    );
    sim.add_fault(
        FaultRule::new("batch_file", FaultKind::MalformedLines { every: 3 })
            .after(1)
            .times(1),
    );
    sim.add_fault(
        FaultRule::new("batch_file", FaultKind::ExpiredUrl)
            .after(3)
            .times(1),
    );
    sim.add_fault(
        FaultRule::new("batch_file", FaultKind::Reset)
            .after(5)
            .times(2),
    );
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    let state = temp_dir("sec");
    let state_s = state.to_string_lossy().into_owned();
    let mut spec = spec(
        &sim,
        &[
            ("client_secret", SECRET),
            ("siem_types", "receipt,av"),
            ("state_dir", &state_s),
            ("startup_check", "on"),
        ],
    );
    spec.log_level = 5; // trace: everything the plugin can say
    host.add_instance(spec).unwrap();
    // and one with wrong credentials, whose errors must not echo what was sent
    let mut bad = common::spec(
        &sim,
        &[
            ("client_secret", "Wr0ng-Secret-Also-Private"),
            ("siem_types", "spam"),
        ],
    );
    bad.log_level = 5;
    host.add_instance(bad).unwrap();
    let from = day_start_ms(Duration::from_secs(86_400));
    host.start();
    let want = truth(&sim, &["receipt", "av"], from).len();
    let ok = host.collected.wait_for(Duration::from_secs(90), |recs| {
        let data: std::collections::BTreeSet<_> = ids(recs).into_iter().collect();
        data.len() + errors(recs).len() >= want
    });
    std::thread::sleep(Duration::from_secs(3));
    let c = host.stop();
    let mut haystack = logs_text(&c.logs());
    haystack.push_str(&logs_text(&fbhost::plugin_logs()));
    for r in c.snapshot() {
        haystack.push_str(&r.to_json().to_string());
    }
    for entry in std::fs::read_dir(&state).unwrap() {
        haystack.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    let tokens = sim.issued_tokens();
    assert!(ok, "collection completed");
    assert!(
        tokens.len() >= 3,
        "several tokens were issued ({})",
        tokens.len()
    );
    assert!(
        haystack.contains("[input:mimecast:mimecast.0]") && haystack.contains("invalid JSON"),
        "the run did log and report"
    );
    assert!(!haystack.contains(SECRET), "client secret leaked");
    assert!(
        !haystack.contains("Wr0ng-Secret-Also-Private"),
        "wrong secret echoed"
    );
    for t in &tokens {
        assert!(!haystack.contains(t.as_str()), "access token leaked");
    }
    assert!(!haystack.contains("X-Amz-Signature"), "a signed URL leaked");
}
