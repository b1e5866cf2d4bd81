//! Any bytes as an API answer, a saved position or a property value: the parsers never panic.
#![no_main]
use fluent_bit_mimecast::config::{check_base_url, parse_duration, parse_size};
use fluent_bit_mimecast::encode::parse_time_text;
use fluent_bit_mimecast::mimecast::client::{error_detail, fail_in_200};
use fluent_bit_mimecast::sources::{api_logs, siem_batch, threat_intel};
use fluent_bit_mimecast::state::cursor::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = error_detail(data);
    let text = String::from_utf8_lossy(data);
    let _ = threat_intel::csv_records(&text);
    let _ = decode::<siem_batch::Cursor>(&text);
    let _ = decode::<api_logs::Cursor>(&text);
    let _ = parse_duration(&text);
    let _ = parse_size(&text);
    let _ = check_base_url(&text);
    let _ = parse_time_text(&text);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = fail_in_200(&v);
        let _ = threat_intel::stix_records(&v);
        let _ = api_logs::identity_hash(&v, api_logs::Identity::Fields(&["id", "date", "messageId"]));
    }
});
