//! Every record the plugin emits, from every source and every SIEM type the simulator has, in
//! each schema, checked against the standards themselves: `tests/fixtures/ecs-fields.json`
//! (ECS 9.4.0 field names, types and allowed values; valid for 8.17 too) and
//! `tests/fixtures/ocsf-schema.json` (OCSF 1.8.0 classes, objects, requirements and enums),
//! both derived from the published schemas (docs/research/schemas.md says how). Zero
//! violations, and ids that tell records apart.

mod common;
use common::standards::{check_ecs, fixture, Ocsf};
use common::*;
use fbhost::Generation;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The source a record of `schema` came from.
fn source_of(schema: &str, v: &Value) -> String {
    let s = match schema {
        "ecs" => v
            .pointer("/event/dataset")
            .and_then(Value::as_str)
            .and_then(|d| d.strip_prefix("mimecast.")),
        "ocsf" => v.pointer("/metadata/log_name").and_then(Value::as_str),
        _ => v.get("mimecast_source").and_then(Value::as_str),
    };
    s.unwrap_or("?").to_string()
}

/// The SIEM type of a record, if it is one.
fn siem_type(schema: &str, v: &Value) -> Option<String> {
    let own = match schema {
        "ecs" => v.get("mimecast"),
        "ocsf" => v.get("unmapped"),
        _ => Some(v),
    }?;
    own.get("type").and_then(Value::as_str).map(str::to_string)
}

/// Runs every source (all SIEM types) through the test host in `schema` until each has
/// delivered, and returns the records.
fn collect(schema: &str) -> Vec<Value> {
    let sim = sim_with(|c| {
        c.api_rate = 120;
        c.siem_rate = 60;
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
            ("schema", schema),
            ("siem_ci_types", "all"),
            ("initial_lookback", "3h"),
        ],
    ))
    .unwrap();
    host.start();
    let cg = fluent_bit_mimecast::config::CG_TYPES;
    let ci = fluent_bit_mimecast::config::CI_TYPES;
    let done = |recs: &[fbhost::Record]| {
        let vs: Vec<Value> = recs.iter().map(|r| r.to_json()).collect();
        let sources: BTreeSet<String> = vs.iter().map(|v| source_of(schema, v)).collect();
        let types: BTreeSet<String> = vs.iter().filter_map(|v| siem_type(schema, v)).collect();
        fluent_bit_mimecast::config::SOURCES
            .iter()
            .all(|s| sources.contains(*s))
            && cg.iter().chain(ci).all(|t| types.contains(*t))
    };
    let ok = host.collected.wait_for(Duration::from_secs(90), done);
    let c = host.stop();
    let recs: Vec<Value> = c.snapshot().iter().map(|r| r.to_json()).collect();
    assert!(c.violations().is_empty(), "{:?}", c.violations());
    assert!(ok, "not every source and type delivered in {schema}");
    recs
}

/// Each id names one record: records that share an id are the same record.
fn ids_tell_records_apart(schema: &str, recs: &[Value]) {
    let ptr = match schema {
        "ecs" => "/event/id",
        "ocsf" => "/metadata/uid",
        _ => "/mimecast_id",
    };
    let mut by_id: BTreeMap<String, &Value> = BTreeMap::new();
    for r in recs {
        let id = r
            .pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no id at {ptr}: {r}"));
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        if let Some(prev) = by_id.insert(id.to_string(), r) {
            assert_eq!(prev, r, "two different records share the id {id}");
        }
    }
}

fn report(schema: &str, recs: &[Value], check: impl Fn(&Value) -> Vec<String>) {
    let mut by_kind: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for r in recs {
        let kind = format!(
            "{}{}",
            source_of(schema, r),
            siem_type(schema, r)
                .map(|t| format!("/{t}"))
                .unwrap_or_default()
        );
        if let Some(dir) = std::env::var_os("SCHEMA_SAMPLES") {
            // One record of each kind, for reading (and for the README's examples).
            let file = std::path::Path::new(&dir)
                .join(format!("{schema}-{}.json", kind.replace(['/', ' '], "_")));
            if !file.exists() {
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(&file, serde_json::to_string_pretty(r).unwrap_or_default());
            }
        }
        let e = by_kind.entry(kind).or_default();
        e.0 += 1;
        for err in check(r) {
            if e.1.len() < 5 && !e.1.contains(&err) {
                e.1.push(err);
            }
        }
    }
    let bad: Vec<String> = by_kind
        .iter()
        .filter(|(_, (_, errs))| !errs.is_empty())
        .map(|(k, (n, errs))| format!("{k} ({n} records): {}", errs.join("; ")))
        .collect();
    assert!(
        bad.is_empty(),
        "{schema}: violations in {} of {} kinds of record:\n{}",
        bad.len(),
        by_kind.len(),
        bad.join("\n")
    );
}

#[test]
fn ecs_records_of_every_source_and_type_are_valid_ecs() {
    let spec = fixture("ecs-fields.json");
    let recs = collect("ecs");
    report("ecs", &recs, |r| check_ecs(&spec, r));
    ids_tell_records_apart("ecs", &recs);
    // Detections are alerts.
    let kinds: BTreeSet<(String, String)> = recs
        .iter()
        .map(|r| {
            (
                source_of("ecs", r),
                r.pointer("/event/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    for s in ["rejections", "hold_list"] {
        assert!(
            kinds.contains(&(s.to_string(), "alert".to_string())),
            "{s} has no alert: {kinds:?}"
        );
    }
}

#[test]
fn ocsf_records_of_every_source_and_type_are_valid_ocsf() {
    let ocsf = Ocsf {
        schema: fixture("ocsf-schema.json"),
    };
    let recs = collect("ocsf");
    report("ocsf", &recs, |r| ocsf.check(r));
    ids_tell_records_apart("ocsf", &recs);
    let classes: BTreeSet<i64> = recs
        .iter()
        .filter_map(|r| r["class_uid"].as_i64())
        .collect();
    for c in [4009, 2004, 6003, 5003] {
        assert!(classes.contains(&c), "no record of class {c}: {classes:?}");
    }
}

#[test]
fn raw_records_keep_mimecasts_fields_and_carry_an_id() {
    let recs = collect("raw");
    ids_tell_records_apart("raw", &recs);
    assert!(recs.iter().all(|r| r.get("mimecast_source").is_some()));
}

#[test]
fn the_validators_catch_violations() {
    let spec = fixture("ecs-fields.json");
    let ok = serde_json::json!({"@timestamp": "2024-01-01T00:00:00.000Z", "ecs": {"version": "8.17.0"},
        "event": {"id": "x", "kind": "alert", "category": ["email"], "type": ["info"]}, "mimecast": {}});
    assert_eq!(check_ecs(&spec, &ok), Vec::<String>::new());
    for (bad, why) in [
        (
            serde_json::json!({"event": {"kind": "alarm"}}),
            "allowed value",
        ),
        (
            serde_json::json!({"source": {"ip": "not-an-ip"}}),
            "type ip",
        ),
        (
            serde_json::json!({"email": {"sender_name": "x"}}),
            "not an ECS field",
        ),
        (
            serde_json::json!({"event": {"type": ["creation"]}}),
            "not expected",
        ),
    ] {
        let mut v = ok.clone();
        json_merge(&mut v, &bad);
        let errs = check_ecs(&spec, &v).join("; ");
        assert!(errs.contains(why), "{bad}: {errs}");
    }
    let ocsf = Ocsf {
        schema: fixture("ocsf-schema.json"),
    };
    let good = serde_json::json!({"class_uid": 4009, "category_uid": 4, "activity_id": 2, "type_uid": 400902,
        "severity_id": 1, "time": 1, "direction_id": 1, "email": {"from": "a@b.example"},
        "metadata": {"product": {"name": "Mimecast"}, "version": "1.8.0"}});
    assert_eq!(ocsf.check(&good), Vec::<String>::new());
    for (bad, why) in [
        (serde_json::json!({"type_uid": 400901}), "type_uid"),
        (serde_json::json!({"direction_id": 7}), "not one of"),
        (
            serde_json::json!({"email": {"from": "not an address"}}),
            "email_t",
        ),
        (serde_json::json!({"is_alert": true}), "profile"),
        (serde_json::json!({"mystery": 1}), "not an attribute"),
    ] {
        let mut v = good.clone();
        json_merge(&mut v, &bad);
        let errs = ocsf.check(&v).join("; ");
        assert!(errs.contains(why), "{bad}: {errs}");
    }
    let mut no_sender = good.clone();
    no_sender["email"] = serde_json::json!({"subject": "no from or to"});
    assert!(ocsf.check(&no_sender).join(";").contains("needs one of"));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("direction_id");
    assert!(ocsf
        .check(&missing)
        .join(";")
        .contains("direction_id: required"));
}

fn json_merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(x) if x.is_object() && v.is_object() => json_merge(x, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}
