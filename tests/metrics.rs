//! Without cmetrics (older hosts, the test host) the figures come as a log line each minute.

mod common;
use common::*;
use fbhost::Generation;
use std::time::Duration;

#[test]
fn figures_are_logged_when_the_host_has_no_cmetrics() {
    let sim = sim_with(|_| {});
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V4_1);
    host.add_instance(spec(
        &sim,
        &[("siem_types", "av"), ("sources", "siem_cg,dlp")],
    ))
    .unwrap();
    host.start();
    let found = host.collected.wait_for(Duration::from_secs(75), |_| {
        logs_text(&host.collected.logs())
            .lines()
            .any(|l| l.contains("metrics: "))
    });
    let c = host.stop();
    let logs = logs_text(&c.logs());
    assert!(found, "no metrics line in:\n{logs}");
    let line = logs.lines().find(|l| l.contains("metrics: ")).unwrap();
    let av = ids(&c.snapshot()).iter().filter(|k| k.stream == 3).count();
    assert!(
        line.contains("siem_cg/av: ") && line.contains("caught up"),
        "{line}"
    );
    assert!(line.contains("dlp: "), "{line}");
    assert!(av > 0 && line.contains("requests (0 failed)"), "{line}");
}
