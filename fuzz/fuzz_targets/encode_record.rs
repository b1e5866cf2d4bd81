//! Any bytes as a record line: encoding never panics, a failure leaves the buffer as it was,
//! and what the buffer holds is always complete, valid records.
#![no_main]
use fluent_bit_mimecast::encode::{encode_record, TimeField};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = Vec::new();
    for time in [TimeField::EpochMillis("timestamp"), TimeField::Text("eventTime"), TimeField::Now] {
        let before = buf.len();
        if encode_record(&mut buf, data, time, "fuzz").is_err() {
            assert_eq!(buf.len(), before);
        }
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
