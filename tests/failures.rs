//! Failures surface early and once per cause: an unreachable gateway or refused credentials
//! give one line naming the cause and how many streams it affects, within seconds of start,
//! then only a reminder a minute; and failed token requests count as requests.

mod common;
use common::*;
use fbhost::Generation;
use fluent_bit_mimecast::config::Config;
use fluent_bit_mimecast::instance::Instance;
use fluent_bit_mimecast::log::{CaptureSink, Logger};
use fluent_bit_mimecast::metrics::summary_line;
use fluent_bit_mimecast::state::StateStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A loopback port nothing listens on: connections to it are refused at once.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = l.local_addr().expect("local address").port();
    drop(l);
    port
}

/// The plugin's warning and error lines (Fluent Bit levels: 1 error, 2 warn).
fn problem_lines(logs: &[(i32, String)]) -> Vec<String> {
    logs.iter()
        .filter(|(level, l)| (1..=2).contains(level) && l.contains("[input:mimecast:"))
        .map(|(_, l)| l.clone())
        .collect()
}

/// Runs one instance with the default sources (siem_cg: ten SIEM types, ten streams) and
/// `props` for `total`, and returns its warning/error lines, each with when it was first seen.
fn run_failing(props: &[(&str, &str)], total: Duration) -> (Vec<(Duration, String)>, String) {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    let t0 = Instant::now();
    host.add_instance(spec(&sim, props)).expect("init");
    host.start();
    let mut seen: Vec<(Duration, String)> = Vec::new();
    while t0.elapsed() < total {
        for l in problem_lines(&host.collected.logs())
            .into_iter()
            .skip(seen.len())
        {
            seen.push((t0.elapsed(), l));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = host.stop();
    for l in problem_lines(&c.logs()).into_iter().skip(seen.len()) {
        seen.push((t0.elapsed(), l));
    }
    (seen, logs_text(&c.logs()))
}

/// Runs `props` for 15 s and asserts its first warning/error line came within 5 s and is the
/// only one; returns that line and the whole log.
fn one_early_line(props: &[(&str, &str)]) -> (String, String) {
    let (lines, logs) = run_failing(props, Duration::from_secs(15));
    let (at, line) = lines
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no warning at all within 15 s:\n{logs}"));
    assert!(
        at <= Duration::from_secs(5),
        "first line only after {at:?}:\n{logs}"
    );
    assert_eq!(
        lines.len(),
        1,
        "one line for one cause within 15 s, got {}:\n{logs}",
        lines.len()
    );
    (line, logs)
}

#[test]
fn unreachable_base_url_is_one_line_within_5s_naming_all_ten_streams() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let (l, _) = one_early_line(&[("base_url", &base)]);
    let l = &l;
    assert!(l.contains(&base), "names the endpoint: {l}");
    assert!(l.contains("affects all 10 streams"), "names the count: {l}");
    assert!(l.contains("siem_cg/receipt"), "names streams: {l}");
    assert!(l.contains("check base_url"), "says what to do: {l}");
}

#[test]
fn wrong_secret_is_one_line_within_5s_naming_all_ten_streams() {
    const SECRET: &str = "Wr0ng-S3cret-For-Failures";
    let (l, logs) = one_early_line(&[("client_secret", SECRET)]);
    let l = &l;
    assert!(
        l.contains("refused the client credentials") && l.contains("HTTP 401"),
        "names the cause: {l}"
    );
    assert!(l.contains("affects all 10 streams"), "names the count: {l}");
    assert!(
        l.contains("check client_id and client_secret"),
        "says what to do: {l}"
    );
    assert!(!logs.contains(SECRET), "the secret leaked into the logs");
}

/// "<N> requests (<M> failed)" of a summary line.
fn requests_and_failed(line: &str) -> Option<(u64, u64)> {
    let at = line.find(" requests (")?;
    let n: String = line
        .get(..at)?
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let rest = line.get(at + " requests (".len()..)?;
    let m: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if !rest.get(m.len()..)?.starts_with(" failed)") {
        return None;
    }
    Some((n.parse().ok()?, m.parse().ok()?))
}

#[test]
fn summary_parser_reads_the_figures() {
    assert_eq!(
        requests_and_failed("metrics: no records yet; 12 requests (3 failed), 0 retries"),
        Some((12, 3))
    );
    assert_eq!(requests_and_failed("no figures here"), None);
}

/// An instance of the plugin's own runtime (what Init starts), its log captured.
fn start_instance(props: &[(&str, String)]) -> Arc<Instance> {
    let get = |k: &str| {
        props
            .iter()
            .find(|(pk, _)| *pk == k)
            .map(|(_, v)| v.clone())
    };
    let cfg = Config::from_properties(get).expect("valid configuration");
    let log = Logger::new(Arc::new(CaptureSink::default()), "mimecast.0");
    let state = Arc::new(StateStore::memory(log.clone()));
    Instance::start("mimecast.0", cfg, log, state).expect("instance starts")
}

fn wait(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn failed_token_requests_are_counted_in_the_summary_without_waiting_a_minute() {
    let now_ms = || jiff::Timestamp::now().as_millisecond();
    // Refused credentials: the token endpoint answers 401.
    let sim = sim_with(|_| {});
    let state = temp_dir("failures-state");
    let props = |base: String| {
        vec![
            ("client_id", "sim-client".to_string()),
            ("client_secret", "not-the-secret".to_string()),
            ("base_url", base),
            ("poll_interval", "1s".to_string()),
            ("state_dir", state.to_string_lossy().into_owned()),
        ]
    };
    let inst = start_instance(&props(sim.base_url()));
    wait("a refused token request", Duration::from_secs(10), || {
        sim.requests("token", 401) >= 1
    });
    // What the simulator answered is what the figures must show (it may answer more meanwhile).
    let answered = sim.requests("token", 401);
    std::thread::sleep(Duration::from_millis(200));
    let s = inst.metrics();
    inst.shutdown(None);
    let line = summary_line(&s, now_ms());
    let (n, failed) = requests_and_failed(&line).expect("summary has request figures");
    assert!(n > 0 && failed > 0, "token failures not counted: {line}");
    assert_eq!(n, failed, "every request failed: {line}");
    let token_401 = s
        .requests
        .get(&("/oauth/token".to_string(), 401))
        .copied()
        .unwrap_or(0);
    assert!(
        token_401 >= answered,
        "by endpoint /oauth/token and status 401: {:?}",
        s.requests
    );

    // Unreachable: no answer at all, status 0.
    let inst = start_instance(&props(format!("http://127.0.0.1:{}", closed_port())));
    wait(
        "a token request without answer",
        Duration::from_secs(10),
        || {
            inst.metrics()
                .requests
                .get(&("/oauth/token".to_string(), 0))
                .is_some_and(|n| *n > 0)
        },
    );
    let s = inst.metrics();
    inst.shutdown(None);
    let line = summary_line(&s, now_ms());
    let (n, failed) = requests_and_failed(&line).expect("summary has request figures");
    assert!(n > 0 && n == failed, "unanswered token requests: {line}");
}

/// The summary the host logs once a minute (no cmetrics in the test host), end to end.
#[test]
fn the_minute_summary_counts_failed_token_requests() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V4_1);
    host.add_instance(spec(&sim, &[("client_secret", "not-the-secret")]))
        .expect("init");
    host.start();
    let found = host.collected.wait_for(Duration::from_secs(75), |_| {
        logs_text(&host.collected.logs()).contains("metrics: ")
    });
    let c = host.stop();
    let logs = logs_text(&c.logs());
    assert!(found, "no metrics line in:\n{logs}");
    let line = logs
        .lines()
        .find(|l| l.contains("metrics: "))
        .unwrap_or_default();
    let (n, failed) = requests_and_failed(line).expect("summary has request figures");
    assert!(n > 0 && failed > 0, "token failures not counted: {line}");
    assert_eq!(n, failed, "only token requests, all refused: {line}");
    assert!(
        sim.requests("token", 401) >= n,
        "no more requests counted than the simulator answered: {line}"
    );
}
