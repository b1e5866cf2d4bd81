//! `mimecast-check` and `startup_check` against the simulator.

mod common;
use common::*;
use fbhost::Generation;
use std::process::Command;
use std::time::Duration;

fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mimecast-check"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_reports_each_source_and_exits_by_the_worst() {
    let sim = sim_with(|c| {
        c.clients[0].forbidden = vec!["audit".into()];
        c.unlicensed = vec!["dlp".into()];
    });
    let base = format!("base_url={}", sim.base_url());
    let (code, out, err) = check(&[
        "-p",
        "client_id=sim-client",
        "-p",
        "client_secret=sim-secret",
        "-p",
        &base,
        "-p",
        "sources=siem_cg,audit,dlp,ttp_url",
        "--sample",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let line = |s: &str| {
        out.lines()
            .find(|l| l.starts_with(s))
            .unwrap_or_else(|| panic!("no {s} row:\n{out}"))
            .to_string()
    };
    assert!(line("siem_cg").contains("OK"), "{out}");
    assert!(
        line("audit ").contains("missing permission")
            && line("audit ").contains("Account | Logs | Read"),
        "{out}"
    );
    assert!(line("dlp").contains("not licensed"), "{out}");
    assert!(line("ttp_url").contains("OK"), "{out}");
    assert!(out.contains("sample: {"), "--sample shows a record:\n{out}");

    let (code, out, _) = check(&[
        "-p",
        "client_id=sim-client",
        "-p",
        "client_secret=sim-secret",
        "-p",
        &base,
        "-p",
        "sources=siem_cg,ttp_url",
    ]);
    assert_eq!(code, 0, "{out}");

    let (code, out, _) = check(&[
        "-p",
        "client_id=sim-client",
        "-p",
        "client_secret=nope",
        "-p",
        &base,
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("auth failed") && out.contains("check client_id and client_secret"),
        "{out}"
    );
    assert!(!out.contains("nope"), "secret printed");

    let (code, _, err) = check(&[
        "-p",
        "client_id=x",
        "-p",
        "client_secret=y",
        "-p",
        "poll_interval=sometimes",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("property 'poll_interval'"), "{err}");
}

#[test]
fn check_reports_network_errors() {
    let (code, out, _) = check(&[
        "-p",
        "client_id=a",
        "-p",
        "client_secret=b",
        "-p",
        "base_url=http://127.0.0.1:9",
        "-p",
        "request_timeout=3s",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("network or TLS error"), "{out}");
}

#[test]
fn startup_check_logs_the_table() {
    let sim = sim_with(|c| c.unlicensed = vec!["archive_view".into()]);
    let plugin = Plugin::copy();
    let mut host = host(&plugin, Generation::V5_1_1);
    host.add_instance(spec(
        &sim,
        &[
            ("sources", "siem_cg,archive_view"),
            ("siem_types", "av"),
            ("startup_check", "on"),
        ],
    ))
    .unwrap();
    host.start();
    assert!(host
        .collected
        .wait_for(Duration::from_secs(20), |r| !r.is_empty()));
    let c = host.stop();
    let logs = logs_text(&c.logs());
    assert!(
        logs.contains("startup check: siem_cg") && logs.contains("startup check: archive_view"),
        "{logs}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("startup check: archive_view") && l.contains("not licensed")),
        "{logs}"
    );
}
