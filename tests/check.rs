//! `mimecast-check` and `startup_check` against the simulator.

mod common;
use common::*;
use fbhost::Generation;
use std::process::Command;
use std::time::Duration;

fn check(args: &[&str]) -> (i32, String, String) {
    check_env(args, &[])
}

/// mimecast-check with the simulator's credentials and base_url, then `args`.
fn check_sim(sim: &mimecast_sim::Sim, args: &[&str]) -> (i32, String, String) {
    let base = format!("base_url={}", sim.base_url());
    let mut all = vec![
        "-p",
        "client_id=sim-client",
        "-p",
        "client_secret=sim-secret",
        "-p",
        base.as_str(),
    ];
    all.extend_from_slice(args);
    check(&all)
}

#[test]
fn check_reports_each_source_and_exits_by_the_worst() {
    let sim = sim_with(|c| {
        c.clients[0].forbidden = vec!["audit".into()];
        c.unlicensed = vec!["dlp".into()];
    });
    let base = format!("base_url={}", sim.base_url());
    let (code, out, err) = check_sim(
        &sim,
        &["-p", "sources=siem_cg,audit,dlp,ttp_url", "--sample"],
    );
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

    let (code, out, _) = check_sim(&sim, &["-p", "sources=siem_cg,ttp_url"]);
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
fn check_prints_its_version() {
    let (code, out, _) = check_env(&["--version"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("mimecast-check {}", env!("CARGO_PKG_VERSION"))
    );
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
    // The line an instance logs as it starts collecting names the plugin's version.
    let started = format!(
        "fluent-bit-mimecast {}: collecting siem_cg, archive_view",
        env!("CARGO_PKG_VERSION")
    );
    assert!(logs.contains(&started), "{started} in:\n{logs}");
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

/// Runs mimecast-check with the MIMECAST_* variables of the example files removed, so a check
/// of an example can never reach a real Mimecast host (it stops at the missing credentials).
fn check_env(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mimecast-check"));
    for v in [
        "MIMECAST_CLIENT_ID",
        "MIMECAST_CLIENT_SECRET",
        "MIMECAST_AUDIT_CLIENT_ID",
        "MIMECAST_AUDIT_CLIENT_SECRET",
    ] {
        cmd.env_remove(v);
    }
    let out = cmd.args(args).envs(envs.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example(name: &str) -> String {
    format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_misspelt_key_is_refused_with_the_nearest_name_before_any_request() {
    let sim = sim_with(|_| {});
    let (code, out, err) = check_sim(&sim, &["-p", "sorces=audit"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("input 0: unknown property 'sorces': did you mean 'sources'?"),
        "{err}"
    );
    assert!(!out.contains("OK"), "nothing is probed: {out}");
    assert_eq!(
        sim.arrivals("token"),
        0,
        "no request for an invalid configuration"
    );

    // Fluent Bit's own keys pass, in any case; a key near nothing lists the valid ones.
    let (code, out, err) = check_sim(
        &sim,
        &[
            "-p",
            "Tag=mimecast.x",
            "-p",
            "storage.type=filesystem",
            "-p",
            "tls.verify=on",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = check(&[
        "-p",
        "client_id=a",
        "-p",
        "client_secret=b",
        "-p",
        "qwerty=1",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown property 'qwerty': the mimecast input takes client_id,"),
        "{err}"
    );
}

#[test]
fn yaml_configuration_with_includes_and_env() {
    let sim = sim_with(|_| {});
    let dir = temp_dir("check-yaml");
    std::fs::create_dir_all(dir.join("inputs")).unwrap();
    std::fs::write(
        dir.join("fluent-bit.yaml"),
        format!(
            "env:\n  SIM_URL: {}\nincludes:\n  - inputs/mimecast.yaml\nservice:\n  flush: 1\npipeline:\n  inputs:\n    - name: dummy\n  outputs:\n    - name: stdout\n      match: '*'\n",
            sim.base_url()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("inputs/mimecast.yaml"),
        "pipeline:\n  inputs:\n    - name: mimecast\n      tag: mimecast\n      client_id: sim-client\n      client_secret: ${SIM_SECRET}\n      base_url: ${SIM_URL}\n      sources: siem_cg, ttp_url\n      storage.type: filesystem\n",
    )
    .unwrap();
    let file = dir.join("fluent-bit.yaml");
    let file = file.to_str().unwrap();
    let (code, out, err) = check_env(&["-c", file], &[("SIM_SECRET", "sim-secret")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("pipeline.inputs[0]"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("siem_cg") && l.contains("OK")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("ttp_url") && l.contains("OK")),
        "{out}"
    );

    // A misspelt key in a file: refused with where it is and what was meant.
    std::fs::write(
        dir.join("inputs/mimecast.yaml"),
        "pipeline:\n  inputs:\n    - name: mimecast\n      client_id: sim-client\n      client_secret: x\n      base_url: ${SIM_URL}\n      sorces: audit\n      siem_types: [receipt, av]\n",
    )
    .unwrap();
    let arrivals = sim.arrivals("token");
    let (code, _, err) = check_env(&["-c", file], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("inputs/mimecast.yaml: pipeline.inputs[0]): unknown property 'sorces': did you mean 'sources'?"),
        "{err}"
    );
    assert!(err.contains("'siem_types' is a YAML list"), "{err}");
    assert_eq!(sim.arrivals("token"), arrivals, "no request was made");
}

#[test]
fn classic_configuration_with_include_and_set() {
    let sim = sim_with(|_| {});
    let dir = temp_dir("check-classic");
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(
        dir.join("fluent-bit.conf"),
        format!(
            "@SET sim_url={}\n[SERVICE]\n    flush 1\n\n@INCLUDE conf.d/*.conf\n\n[OUTPUT]\n    Name  stdout\n    Match *\n",
            sim.base_url()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("conf.d/mimecast.conf"),
        "[INPUT]\n    Name          mimecast\n    Client_Id     sim-client\n    client_secret sim-secret\n    base_url      ${sim_url}\n    sources       siem_cg\n",
    )
    .unwrap();
    let file = dir.join("fluent-bit.conf");
    let (code, out, err) = check_env(&["-c", file.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("conf.d/mimecast.conf:1)"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("siem_cg") && l.contains("OK")),
        "{out}"
    );
}

#[test]
fn a_file_without_a_mimecast_input_says_what_it_found() {
    let dir = temp_dir("check-none");
    let conf = dir.join("other.conf");
    std::fs::write(
        &conf,
        "[INPUT]\n    Name tail\n    Path /var/log/x.log\n[INPUT]\n    Name dummy\n[OUTPUT]\n    Name mimecast\n",
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let (code, out, err) = check_env(&["-c", conf], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!(
            "{conf}: no input with name mimecast; found inputs: tail, dummy"
        )),
        "{err}"
    );
    let yaml = dir.join("empty.yaml");
    std::fs::write(&yaml, "service:\n  flush: 1\n").unwrap();
    let (code, _, err) = check_env(&["-c", yaml.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no input with name mimecast; found no inputs"),
        "{err}"
    );
}

#[test]
fn the_shipped_examples_are_read() {
    // Without credentials in the environment each instance stops at client_id, before any
    // request: these examples point at the real gateway.
    let (code, out, err) = check_env(&["-c", &example("fluent-bit.yaml.example")], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(
            "fluent-bit.yaml.example: pipeline.inputs[0]): property 'client_id': is required"
        ),
        "{err}"
    );
    assert!(
        err.contains("refers to ${MIMECAST_CLIENT_SECRET}, which is not set"),
        "{err}"
    );
    assert!(!err.contains("unknown property"), "{err}");
    let (code, out, err) = check_env(&["-c", &example("fluent-bit.conf.example")], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("input 0 (") && err.contains("input 1 (") && err.contains("input 2 ("),
        "{err}"
    );
    assert!(!err.contains("unknown property"), "{err}");
    assert!(out.is_empty(), "nothing probed: {out}");
}

#[test]
fn help_and_usage() {
    let (code, out, err) = check(&["--help"]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "-c, --config FILE",
        "fluent-bit.conf.example",
        "fluent-bit.yaml.example",
        "--sample",
        "Exit status",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    assert!(
        !out.contains("fluent-bit.conf "),
        "refers to an unshipped file:\n{out}"
    );
    let (code, out, err) = check(&["--bogus"]);
    assert_eq!(code, 2);
    assert!(out.is_empty() && err.contains("unknown option '--bogus'") && err.contains("usage:"));
    let (code, _, err) = check(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to check"), "{err}");
}

#[test]
fn the_newer_sources_are_probed_with_their_permissions() {
    let sim = sim_with(|c| c.clients[0].forbidden = vec!["awareness_watchlist".into()]);
    let sources = "rejections,remediation,email_queues,awareness_safe_score,awareness_watchlist,awareness_campaign_users";
    let (code, out, err) = check_sim(&sim, &["-p", &format!("sources={sources}"), "--sample"]);
    assert_ne!(code, 0, "a forbidden source fails the check:\n{out}{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
            .to_string()
    };
    for name in [
        "rejections",
        "remediation",
        "email_queues",
        "awareness_safe_score",
        "awareness_campaign_users",
    ] {
        assert!(line(name).contains("OK"), "{}", line(name));
    }
    let watch = line("awareness_watchlist");
    assert!(
        watch.contains("Awareness Training | Dashboard | Read"),
        "names the permission: {watch}"
    );
    // The campaign users' sample is one of a campaign's users.
    assert!(out.contains("\"templateName\""), "{out}");
    assert!(sim.requests("awareness_campaigns", 200) >= 1);
}

#[test]
fn sample_prints_a_decoded_batch_record_and_never_a_signed_url() {
    let sim = sim_with(|_| {});
    let (code, out, err) = check_sim(&sim, &["-p", "sources=siem_cg,audit", "--sample"]);
    assert_eq!(code, 0, "{out}{err}");
    let samples: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| l.split_once("sample: ").map(|(_, s)| s))
        .map(|s| serde_json::from_str(s).unwrap_or_else(|e| panic!("sample not JSON ({e}): {s}")))
        .collect();
    let siem = samples
        .iter()
        .find(|r| r.get("_offset").is_some())
        .unwrap_or_else(|| panic!("no SIEM record among the samples:\n{out}"));
    assert_eq!(
        siem.get("type").and_then(|t| t.as_str()),
        Some("receipt"),
        "{siem}"
    );
    assert!(
        mimecast_sim::identity(siem).is_some(),
        "the simulator recognises it as one of its events: {siem}"
    );
    assert!(
        samples.iter().all(|r| r.get("url").is_none()),
        "a listing entry is never a sample:\n{out}"
    );
    // The batch file was downloaded (without the bearer token: the simulator, like S3, answers
    // 400 to a request that carries one).
    assert!(
        sim.requests("batch_file", 200) >= 1,
        "no batch file downloaded"
    );
    assert_eq!(sim.requests("batch_file", 400), 0);
    // The simulator signs URLs as S3 does (?X-Amz-Algorithm=...&X-Amz-Signature=...).
    let all = format!("{out}{err}");
    for marker in ["X-Amz", "Signature", "/s3/batch/", ".json.gz?", "exp="] {
        assert!(!all.contains(marker), "'{marker}' printed:\n{all}");
    }
}
