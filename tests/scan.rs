//! The scanner (the hand-written JSON reader records go through) against serde_json alone,
//! the reference: for every record, the same bytes out (so the same record ids) or the same
//! error. Inputs: the golden records, every simulator SIEM type, hand-made edge cases, and
//! random mutations of real-shaped records (synthetic, all of them).

use fluent_bit_mimecast::encode::{encode_with, scans, Layout, Parse, Scratch, TimeField};
use fluent_bit_mimecast::schema::{Records, Schema};
use fluent_bit_mimecast::sources::gzlines::{GzLines, Line};
use mimecast_sim::{Sim, SimConfig};

const SCHEMAS: [Schema; 3] = [Schema::Raw, Schema::Ecs, Schema::Ocsf];

/// Encodes `json` both ways in `schema` and fails on any difference; whether it encoded.
fn same_both_ways(json: &[u8], schema: Schema, records: Records, time: TimeField) -> bool {
    let layout = Layout {
        source: "siem_cg",
        norm: schema.normalizer(records),
    };
    let extra = [("direction", "inbound")];
    let run = |how| {
        let mut out = b"before".to_vec();
        let r = encode_with(
            how,
            &mut out,
            json,
            time,
            &layout,
            &extra,
            &mut Scratch::default(),
        );
        (r.map_err(|e| e.to_string()), out)
    };
    // A record without its time field is stamped "now": the two calls differ in the event
    // time's nanoseconds (bytes 7..17, after "before" and the array header), and in normalized
    // schemas can fall a millisecond apart in the body, so a difference there must persist.
    let same = |a: &[u8], b: &[u8]| {
        a.len() == b.len() && a.get(..9) == b.get(..9) && a.get(17..) == b.get(17..)
    };
    let (mut fast, mut fast_out) = run(Parse::Scan);
    let (mut slow, mut slow_out) = run(Parse::Serde);
    for _ in 0..5 {
        if same(&fast_out, &slow_out) {
            break;
        }
        (fast, fast_out) = run(Parse::Scan);
        (slow, slow_out) = run(Parse::Serde);
    }
    let shown = String::from_utf8_lossy(json);
    match (&fast, &slow) {
        (Ok(a), Ok(b)) => {
            assert!(a.secs.abs_diff(b.secs) <= 1, "{schema:?}: {shown}");
            if a == b || !same(&fast_out, &slow_out) {
                assert_eq!(fast_out, slow_out, "{schema:?}: {shown}");
            }
            true
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{schema:?}: {shown}");
            assert_eq!(
                fast_out, b"before",
                "a failed record leaves the buffer as it was"
            );
            assert_eq!(slow_out, b"before");
            false
        }
        _ => panic!("{schema:?}: scanner {fast:?} but serde_json {slow:?} for {shown}"),
    }
}

fn siem(json: &[u8]) -> bool {
    let mut ok = None;
    for schema in SCHEMAS {
        let r = same_both_ways(
            json,
            schema,
            Records::Siem,
            TimeField::EpochMillis("timestamp"),
        );
        assert!(ok.is_none_or(|o| o == r), "schemas disagree on {json:?}");
        ok = Some(r);
    }
    ok.unwrap_or(false)
}

#[test]
fn golden_records_read_the_same_and_need_no_fallback() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/inputs.json");
    let text = std::fs::read_to_string(path).expect("golden inputs");
    let inputs: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let entries = inputs["records"].as_array().expect("records");
    assert!(entries.len() >= 36);
    for e in entries {
        let source = e["source"].as_str().expect("source");
        let records = fluent_bit_mimecast::sources::lookup(source)
            .expect("a registered source")
            .records();
        let json = serde_json::to_vec(&e["record"]).expect("record");
        let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
        let spec = &e["time"];
        let time = if let Some(f) = spec.get("epoch_millis").and_then(|v| v.as_str()) {
            TimeField::EpochMillis(leak(f))
        } else if let Some(f) = spec.get("text").and_then(|v| v.as_str()) {
            TimeField::Text(leak(f))
        } else {
            TimeField::Now
        };
        for schema in SCHEMAS {
            assert!(same_both_ways(&json, schema, records, time), "{source}");
        }
        assert!(scans(&json), "the scanner reads {source}'s record alone");
    }
}

#[test]
fn every_simulated_siem_type_reads_the_same() {
    let sim = Sim::start(SimConfig {
        siem_rate: 40,
        seed: 7,
        speed: 0.0,
        ..Default::default()
    })
    .expect("simulator");
    let (mut lines, mut scanned) = (0u64, 0u64);
    for stream in mimecast_sim::STREAMS {
        let Some(id) = mimecast_sim::model::stream_id(stream) else {
            continue;
        };
        let mut slots: Vec<i64> = sim
            .truth_batch(stream)
            .iter()
            .filter(|k| k.stream == id)
            .map(|k| k.slot)
            .collect();
        slots.dedup();
        for slot in slots.iter().rev().take(3) {
            let gz = sim.batch_file_bytes(stream, *slot).expect("batch file");
            let mut gzl = GzLines::new();
            let mut on_line = |l: Line| {
                if let Line::Json(b) = l {
                    lines += 1;
                    assert!(siem(b), "{stream}: a simulated record encodes");
                    scanned += u64::from(scans(b));
                }
            };
            gzl.feed(&gz, &mut on_line).expect("gzip");
            gzl.finish(&mut on_line).expect("gzip end");
        }
    }
    assert!(lines > 1000, "only {lines} simulated records");
    assert_eq!(
        scanned, lines,
        "the scanner left simulated records to serde_json"
    );
}

#[test]
fn edge_cases_read_the_same_and_errors_are_serde_jsons() {
    let deep = |n: usize, open: &str, close: &str| {
        format!(r#"{{"a":{}1{}}}"#, open.repeat(n), close.repeat(n))
    };
    let mut cases: Vec<String> = [
        r#"{}"#,
        r#"  { } "#,
        "\t{\"a\" :\r\n 1 ,\"b\"\n:[ ] }\n",
        r#"{"timestamp":1700000000123,"a":"b"}"#,
        r#"{"timestamp":"1700000000123"}"#,
        r#"{"timestamp":1.7e12}"#,
        r#"{"timestamp":-5}"#,
        r#"{"n":0,"m":-1,"x":123456789012345678,"y":-123456789012345678}"#,
        r#"{"big":9999999999999999999,"bigger":18446744073709551615,"over":18446744073709551616}"#,
        r#"{"neg19":-1234567890123456789,"min":-9223372036854775808,"under":-9223372036854775809}"#,
        r#"{"z":-0,"f":0.5,"e":1e3,"E":2E-3,"p":1e+2,"g":-0.0,"h":123.456e-7}"#,
        r#"{"bad":01}"#,
        r#"{"bad":1.}"#,
        r#"{"bad":.5}"#,
        r#"{"bad":-}"#,
        r#"{"bad":1e}"#,
        r#"{"bad":1.5.5}"#,
        r#"{"bad":1e400}"#,
        r#"{"bad":+1}"#,
        r#"{"s":"plain","e":"a\"b\\c\/d\be\ff\ng\rh\ti"}"#,
        r#"{"u":"\u0041\u00e9\u4e2d\uD83D\uDE00 end","k\u0065y":"v"}"#,
        r#"{"lone":"\uD800"}"#,
        r#"{"lone":"\uDC00x"}"#,
        r#"{"pair":"\uD800\u0041"}"#,
        r#"{"badhex":"\u12G4"}"#,
        r#"{"short":"\u12"}"#,
        r#"{"badesc":"\x"}"#,
        r#"{"utf8":"héllo wörld 中文 😀","ké":"v"}"#,
        r#"{"t":true,"f":false,"n":null}"#,
        r#"{"t":tru}"#,
        r#"{"t":truex}"#,
        r#"{"n":nul}"#,
        r#"{"a":[1,"two",3.0,-4,null,true,[5],{"b":6}],"c":{"d":{"e":[]}}}"#,
        r#"{"dup":1,"dup":"two"}"#,
        r#"{"recipients":["a@example.com","b@example.com"],"to":["x@example.org",7,-8]}"#,
        r#"{"a":1,}"#,
        r#"{"a":1}x"#,
        r#"{"a":1}{"b":2}"#,
        r#"{"a" 1}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[1 2]}"#,
        r#"{a:1}"#,
        r#"{"a":"unterminated}"#,
        r#"{"a":1"#,
        r#"[1,2]"#,
        r#""text""#,
        r#"{"a":"x"#,
        "",
        "   ",
        "{\"ctl\":\"a\u{1}b\"}",
        "{\"tab\":\"a\tb\"}",
        "{\"nl\":\"a\nb\"}",
        "{\"del\":\"a\u{7f}b\"}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cases.push(deep(62, "[", "]"));
    cases.push(deep(63, "[", "]"));
    cases.push(deep(64, "[", "]"));
    cases.push(deep(200, "[", "]"));
    cases.push(format!(
        r#"{{"a":{}1{}}}"#,
        r#"{"b":"#.repeat(63),
        "}".repeat(63)
    ));
    cases.push(format!(
        r#"{{"a":{}1{}}}"#,
        r#"{"b":"#.repeat(64),
        "}".repeat(64)
    ));
    // Every string length around the scanner's eight-byte steps and the short copies' widths
    // (4, 8, 16, 32), with a stop at each place.
    for n in 0..40 {
        for stop in ["", "\\\"", "\\u00e9", "é"] {
            for at in 0..=n {
                let s: String = "x".repeat(at) + stop + &"y".repeat(n - at);
                cases.push(format!(r#"{{"{s}":"{s}","k":["{s}"]}}"#));
            }
        }
    }
    let mut ok = 0;
    for c in &cases {
        ok += usize::from(siem(c.as_bytes()));
    }
    // Not UTF-8: serde_json reads it as bytes, and says so.
    for bytes in [&b"{\"a\":\"\xff\"}"[..], b"{\"\xc3\":1}", b"\xef\xbb\xbf{}"] {
        assert!(!siem(bytes));
    }
    assert!(ok > cases.len() / 2, "most cases are valid records ({ok})");
    // The scanner takes the plain ones alone and leaves the rest.
    assert!(scans(
        br#"{"s":"a\"b","u":"\u00e9","n":-3,"f":0.5,"a":[1,{"b":null}]}"#
    ));
    for left in [
        &br#"{"z":-0}"#[..],
        br#"{"big":99999999999999999999}"#,
        br#"{"lone":"\uD800"}"#,
        br#"{"a":1,}"#,
    ] {
        assert!(!scans(left), "{}", String::from_utf8_lossy(left));
    }
}

#[test]
fn random_mutations_of_records_read_the_same() {
    let seed_records = [
        r#"{"timestamp":1700000000123,"aggregateId":"abc123","processingId":"p-1","accountId":"C0A0","senderEnvelope":"a@example.com","recipients":["b@example.com","c@example.org"],"subject":"Hi \"there\" \u00e9","size":12345,"spamScore":-2,"attachments":[{"name":"x.pdf","size":10}],"virusFound":null,"tls":true,"ratio":0.25}"#,
        r#"{"timestamp":"2024-11-17T20:16:00+0000","nested":{"a":[[],[{}],[1,[2,[3]]]],"b":{"c":"d"}},"esc":"\/\b\f\n\r\t\\"}"#,
    ];
    let alphabet: &[u8] = b"{}[]:,\"\\/ -+.0123456789eEtrufalsn\tabcxyz\x01\xc3\xa9";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let (mut total, mut ok) = (0, 0);
    for round in 0..6000 {
        let mut b = seed_records[round % seed_records.len()].as_bytes().to_vec();
        for _ in 0..1 + next(3) {
            let at = next(b.len() + 1);
            match next(3) {
                0 if at < b.len() => {
                    b.remove(at);
                }
                1 => b.insert(at, alphabet[next(alphabet.len())]),
                _ if at < b.len() => b[at] = alphabet[next(alphabet.len())],
                _ => {}
            }
        }
        total += 1;
        ok += usize::from(siem(&b));
    }
    // Some mutations keep the record valid, most do not: both kinds were compared.
    assert!(
        ok > total / 20 && ok < total,
        "{ok} of {total} mutated records valid"
    );
}
