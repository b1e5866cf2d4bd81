//! Any bytes as a record line: encoding never panics, a failure leaves the buffer as it was,
//! what the buffer holds is always complete, valid records, and the scanner reads every line
//! as serde_json alone does (same bytes, same error).
#![no_main]
use fluent_bit_mimecast::encode::{encode_record, encode_with, Layout, Parse, Scratch, TimeField};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = Vec::new();
    for time in [TimeField::EpochMillis("timestamp"), TimeField::Text("eventTime"), TimeField::Now] {
        let before = buf.len();
        if encode_record(&mut buf, data, time, "fuzz").is_err() {
            assert_eq!(buf.len(), before);
        }
    }
    let layout = Layout { source: "fuzz", norm: None };
    let time = TimeField::EpochMillis("timestamp");
    let run = |how| {
        let mut out = Vec::new();
        let r = encode_with(how, &mut out, data, time, &layout, &[], &mut Scratch::default());
        (r.map_err(|e| e.to_string()), out)
    };
    let ((fast, a), (slow, b)) = (run(Parse::Scan), run(Parse::Serde));
    match (fast, slow) {
        // The event time (bytes 1..11) is "now" when the line has no time field.
        (Ok(_), Ok(_)) => assert!(a.len() == b.len() && a[..1] == b[..1] && a[11..] == b[11..]),
        (Err(x), Err(y)) => assert_eq!(x, y),
        (x, y) => panic!("scanner {x:?}, serde_json {y:?}"),
    }
    let mut rd = buf.as_slice();
    while !rd.is_empty() {
        let v = rmpv::decode::read_value(&mut rd).expect("complete records only");
        let arr = v.as_array().expect("[time, body]");
        assert_eq!(arr.len(), 2);
        assert!(matches!(arr[0], rmpv::Value::Ext(0, ref d) if d.len() == 8));
        assert!(arr[1].is_map());
    }
});
