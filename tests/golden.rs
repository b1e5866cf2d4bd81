//! Golden records: for each source and SIEM type, a synthetic input record
//! (`tests/golden/inputs.json`) and its expected output in each schema (`raw.json`, `ecs.json`,
//! `ocsf.json` there), encoded by the plugin's own encoder exactly as a source's emitter does,
//! and decoded strictly as Fluent Bit would. `GOLDEN_UPDATE=1` rewrites the expected files after
//! a deliberate change: review their diff. (`tests/schemas.rs` checks every emitted record
//! against the standards; this checks that the mapping stays what was decided.)

use fluent_bit_mimecast::encode::{encode_as, Layout, Scratch, TimeField};
use fluent_bit_mimecast::schema::Schema;
use serde_json::{Map, Value};

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).unwrap_or_else(|_| "{}".into());
    serde_json::from_str(&text).expect("golden JSON")
}

/// The time field of an input entry (`{"epoch_millis": f}`, `{"text": f}` or `{"now": null}`).
fn time_of(spec: &Value) -> TimeField {
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    if let Some(f) = spec.get("epoch_millis").and_then(Value::as_str) {
        TimeField::EpochMillis(leak(f))
    } else if let Some(f) = spec.get("text").and_then(Value::as_str) {
        TimeField::Text(leak(f))
    } else {
        TimeField::Now
    }
}

/// One input encoded in `schema`, as JSON: `{"time": <event time ms or "now">, "body": {...}}`.
fn encode_one(schema: Schema, entry: &Value) -> Value {
    let source = entry["source"].as_str().expect("source");
    let time = time_of(&entry["time"]);
    let extra: Vec<(String, String)> = entry["extra"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or("").to_string(),
                        p[1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let json = serde_json::to_vec(&entry["record"]).expect("record");
    let records = fluent_bit_mimecast::sources::lookup(source)
        .expect("a registered source")
        .records();
    let layout = Layout {
        source,
        norm: schema.normalizer(records),
    };
    let mut out = Vec::new();
    encode_as(
        &mut out,
        &json,
        time,
        &layout,
        &extra,
        &mut Scratch::default(),
    )
    .expect("encodes");
    let records = fbhost::decode_strict(&out).expect("valid msgpack, as Fluent Bit decodes it");
    assert_eq!(records.len(), 1);
    let (secs, nanos, body) = &records[0];
    let mut body = fbhost::to_json(body);
    // A snapshot's event time is when it was taken: not part of the golden.
    let now = matches!(time, TimeField::Now);
    if now {
        for key in ["@timestamp", "time"] {
            if let Some(v) = body.get_mut(key) {
                *v = Value::String("(snapshot time)".into());
            }
        }
    }
    let t = if now {
        Value::String("now".into())
    } else {
        Value::from(*secs as i64 * 1000 + *nanos as i64 / 1_000_000)
    };
    serde_json::json!({"time": t, "body": body})
}

#[test]
fn every_kind_of_record_in_every_schema_is_as_decided() {
    let inputs = read("inputs.json");
    let entries = inputs["records"].as_array().expect("records");
    assert!(entries.len() >= 36, "one input per source and SIEM type");
    let update = std::env::var_os("GOLDEN_UPDATE").is_some();
    let mut failures = Vec::new();
    for (schema, file) in [
        (Schema::Raw, "raw.json"),
        (Schema::Ecs, "ecs.json"),
        (Schema::Ocsf, "ocsf.json"),
    ] {
        let want = read(file);
        let mut got = Map::new();
        for e in entries {
            let kind = e["kind"].as_str().expect("kind").to_string();
            let out = encode_one(schema, e);
            if !update && want.get(&kind) != Some(&out) {
                failures.push(format!(
                    "{file} {kind}:\n  want {}\n  got  {}",
                    want.get(&kind)
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "(none)".into()),
                    out
                ));
            }
            got.insert(kind, out);
        }
        if update {
            let text = serde_json::to_string_pretty(&Value::Object(got)).expect("JSON");
            std::fs::write(dir().join(file), text + "\n").expect("write golden");
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden records differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_id_is_the_same_in_every_schema_and_differs_between_records() {
    let inputs = read("inputs.json");
    let entries = inputs["records"].as_array().expect("records");
    let mut seen = std::collections::BTreeSet::new();
    for e in entries {
        let raw = encode_one(Schema::Raw, e);
        let ecs = encode_one(Schema::Ecs, e);
        let ocsf = encode_one(Schema::Ocsf, e);
        let id = raw["body"]["mimecast_id"]
            .as_str()
            .expect("raw id")
            .to_string();
        assert_eq!(
            ecs["body"]["event"]["id"].as_str(),
            Some(id.as_str()),
            "{}",
            e["kind"]
        );
        assert_eq!(
            ocsf["body"]["metadata"]["uid"].as_str(),
            Some(id.as_str()),
            "{}",
            e["kind"]
        );
        assert!(seen.insert(id), "two inputs share an id: {}", e["kind"]);
        // The event time is the record's own, the same in every schema.
        assert_eq!(raw["time"], ecs["time"]);
        assert_eq!(raw["time"], ocsf["time"]);
    }
}
