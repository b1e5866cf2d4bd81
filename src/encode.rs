//! Mimecast JSON records -> Fluent Bit msgpack records, in one pass.
//!
//! Each record is `[EventTime, {body}]`: a fixarray of 2, the EventTime extension (ext type 0,
//! 8 bytes: u32 BE seconds, u32 BE nanoseconds) and a map holding the record's own fields
//! with their JSON types, plus `mimecast_source`. The JSON is transcoded straight into the
//! output buffer (no intermediate tree); the event-time field is captured on the way and
//! patched into the 10 bytes reserved for the timestamp. On any error the buffer is truncated
//! back to where the record began, so the buffer always holds only complete, valid records.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The record field naming where it came from (`siem_cg`, `audit`, ...).
pub const SOURCE_FIELD: &str = "mimecast_source";
/// Present on error records only: why the data could not be delivered as it came.
pub const ERROR_FIELD: &str = "mimecast_error";
/// Present on error records only: the start of the offending data.
pub const EXCERPT_FIELD: &str = "mimecast_excerpt";

const MAX_EXCERPT: usize = 512;

/// Where a record keeps its own event time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeField {
    /// Epoch milliseconds in a number field (SIEM `timestamp`).
    EpochMillis(&'static str),
    /// A date string (`2024-11-17T20:16:00+0000`, RFC 3339, ...).
    Text(&'static str),
    /// No time field: the time of collection (snapshots).
    Now,
}

impl TimeField {
    fn name(&self) -> &'static str {
        match self {
            TimeField::EpochMillis(n) | TimeField::Text(n) => n,
            TimeField::Now => "",
        }
    }
}

/// An event time with nanosecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventTime {
    pub secs: u32,
    pub nanos: u32,
}

impl EventTime {
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        EventTime {
            secs: d.as_secs().min(u32::MAX as u64) as u32,
            nanos: d.subsec_nanos(),
        }
    }

    pub fn from_millis(ms: i64) -> Option<Self> {
        if ms < 0 {
            return None;
        }
        let secs = u32::try_from(ms / 1000).ok()?;
        Some(EventTime {
            secs,
            nanos: (ms % 1000) as u32 * 1_000_000,
        })
    }

    pub fn from_timestamp(t: jiff::Timestamp) -> Option<Self> {
        let secs = u32::try_from(t.as_second()).ok()?;
        Some(EventTime {
            secs,
            nanos: t.subsec_nanosecond().max(0) as u32,
        })
    }

    fn ext_bytes(&self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[0] = 0xd7; // fixext 8
        b[1] = 0x00; // ext type 0 = EventTime
        b[2..6].copy_from_slice(&self.secs.to_be_bytes());
        b[6..10].copy_from_slice(&self.nanos.to_be_bytes());
        b
    }
}

/// Parses Mimecast's date strings: `+0000` offsets without colon, RFC 3339, fractions,
/// minute-precision STIX times (`2024-11-18T16:08Z`).
pub fn parse_time_text(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%dT%H:%MZ",
    ] {
        if let Ok(t) = jiff::fmt::strtime::parse(fmt, s).and_then(|p| p.to_timestamp()) {
            return Some(t);
        }
    }
    if let Some(stripped) = s.strip_suffix('Z') {
        if let Ok(t) = jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M", stripped)
            .and_then(|p| p.to_datetime())
            .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
        {
            return Some(t.timestamp());
        }
    }
    None
}

#[derive(Debug)]
pub enum EncodeError {
    /// The line is not a JSON object (or not JSON at all).
    Json(String),
    /// Nested deeper than the limit.
    TooDeep,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Json(m) => write!(f, "invalid JSON record: {m}"),
            EncodeError::TooDeep => write!(f, "record nested deeper than {MAX_DEPTH} levels"),
        }
    }
}

const MAX_DEPTH: usize = 64;

/// Appends one record transcoded from a JSON object. Returns its event time.
/// `extra` fields are appended to the body (after the record's own fields).
pub fn encode_json(
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    extra: &[(&str, &str)],
) -> Result<EventTime, EncodeError> {
    let start = out.len();
    let r = encode_inner(out, json, time, extra);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_inner(
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    extra: &[(&str, &str)],
) -> Result<EventTime, EncodeError> {
    out.push(0x92); // fixarray 2
    let ts_at = out.len();
    out.extend_from_slice(&[0u8; 10]);
    let mut de = serde_json::Deserializer::from_slice(json);
    let captured = TopSeed {
        out: &mut *out,
        time,
        extra,
    }
    .deserialize(&mut de)
    .map_err(|e| {
        if e.to_string().contains(DEPTH_MSG) {
            EncodeError::TooDeep
        } else {
            EncodeError::Json(e.to_string())
        }
    })?;
    de.end().map_err(|e| EncodeError::Json(e.to_string()))?;
    let et = match (time, captured) {
        (TimeField::EpochMillis(_), Captured::Int(ms)) => EventTime::from_millis(ms),
        (TimeField::EpochMillis(_), Captured::Float(ms)) => EventTime::from_millis(ms as i64),
        (_, Captured::Text(s)) => parse_time_text(&s)
            .and_then(EventTime::from_timestamp)
            .or_else(|| s.parse::<i64>().ok().and_then(EventTime::from_millis)),
        (TimeField::Text(_), Captured::Int(ms)) => EventTime::from_millis(ms),
        _ => None,
    }
    .unwrap_or_else(EventTime::now);
    out.as_mut_slice()[ts_at..ts_at + 10].copy_from_slice(&et.ext_bytes());
    Ok(et)
}

/// Appends a record built from string fields only (error and snapshot markers).
pub fn encode_fields(out: &mut Vec<u8>, time: EventTime, fields: &[(&str, &str)]) {
    out.push(0x92);
    out.extend_from_slice(&time.ext_bytes());
    let _ = rmp::encode::write_map_len(out, fields.len() as u32);
    for (k, v) in fields {
        let _ = rmp::encode::write_str(out, k);
        let _ = rmp::encode::write_str(out, v);
    }
}

/// Appends an error record for data that could not be delivered as it came.
pub fn encode_error(
    out: &mut Vec<u8>,
    source: &str,
    reason: &str,
    excerpt: &[u8],
    context: &[(&str, &str)],
) {
    let mut cut = excerpt.len().min(MAX_EXCERPT);
    let text = loop {
        match std::str::from_utf8(&excerpt[..cut]) {
            Ok(s) => break s.to_string(),
            Err(e) if e.valid_up_to() > 0 => cut = e.valid_up_to(),
            Err(_) => break String::from_utf8_lossy(&excerpt[..cut]).into_owned(),
        }
    };
    let mut fields: Vec<(&str, &str)> = vec![
        (SOURCE_FIELD, source),
        (ERROR_FIELD, reason),
        (EXCERPT_FIELD, &text),
    ];
    fields.extend_from_slice(context);
    encode_fields(out, EventTime::now(), &fields);
}

const DEPTH_MSG: &str = "mimecast: nesting limit";

enum Captured {
    None,
    Int(i64),
    Float(f64),
    Text(String),
}

/// Writes a map/array header for `n` entries at `at`, where 5 bytes were reserved, and closes
/// the gap if the real header is shorter.
fn patch_len(out: &mut Vec<u8>, at: usize, n: u32, map: bool) {
    let mut hdr = [0u8; 5];
    let len = {
        let mut w: &mut [u8] = &mut hdr;
        let before = w.len();
        let _ = if map {
            rmp::encode::write_map_len(&mut w, n)
        } else {
            rmp::encode::write_array_len(&mut w, n)
        };
        before - w.len()
    };
    let body_start = at + 5;
    let end = out.len();
    let buf = out.as_mut_slice();
    buf[at..at + len].copy_from_slice(&hdr[..len]);
    if len < 5 {
        buf.copy_within(body_start..end, at + len);
        out.truncate(end - (5 - len));
    }
}

struct TopSeed<'a> {
    out: &'a mut Vec<u8>,
    time: TimeField,
    extra: &'a [(&'a str, &'a str)],
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_> {
    type Value = Captured;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Captured, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_> {
    type Value = Captured;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Captured, A::Error> {
        let at = self.out.len();
        self.out.extend_from_slice(&[0u8; 5]);
        let mut n: u32 = 0;
        let mut captured = Captured::None;
        let want = self.time.name();
        while let Some(key) = map.next_key_seed(KeySeed {
            out: &mut *self.out,
            want,
        })? {
            let capture = key && matches!(captured, Captured::None);
            let c = map.next_value_seed(ValueSeed {
                out: &mut *self.out,
                depth: 1,
                capture,
            })?;
            if capture {
                captured = c;
            }
            n += 1;
        }
        for (k, v) in self.extra {
            let _ = rmp::encode::write_str(&mut *self.out, k);
            let _ = rmp::encode::write_str(&mut *self.out, v);
            n += 1;
        }
        patch_len(self.out, at, n, true);
        Ok(captured)
    }
}

/// Writes a key; returns whether it is the event-time field.
struct KeySeed<'a> {
    out: &'a mut Vec<u8>,
    want: &'a str,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        let _ = rmp::encode::write_str(&mut *self.out, v);
        Ok(!self.want.is_empty() && self.want == v)
    }
}

struct ValueSeed<'a> {
    out: &'a mut Vec<u8>,
    depth: usize,
    capture: bool,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Captured;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Captured, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Captured;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Captured, E> {
        let _ = rmp::encode::write_bool(&mut *self.out, v);
        Ok(Captured::None)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Captured, E> {
        let _ = rmp::encode::write_sint(&mut *self.out, v);
        Ok(if self.capture {
            Captured::Int(v)
        } else {
            Captured::None
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Captured, E> {
        let _ = rmp::encode::write_uint(&mut *self.out, v);
        Ok(if self.capture {
            Captured::Int(v.min(i64::MAX as u64) as i64)
        } else {
            Captured::None
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Captured, E> {
        let _ = rmp::encode::write_f64(&mut *self.out, v);
        Ok(if self.capture {
            Captured::Float(v)
        } else {
            Captured::None
        })
    }
    fn visit_str<E>(self, v: &str) -> Result<Captured, E> {
        let _ = rmp::encode::write_str(&mut *self.out, v);
        Ok(if self.capture {
            Captured::Text(v.to_string())
        } else {
            Captured::None
        })
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Captured, E> {
        let _ = rmp::encode::write_nil(&mut *self.out);
        Ok(Captured::None)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Captured, E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Captured, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom(DEPTH_MSG));
        }
        let at = self.out.len();
        self.out.extend_from_slice(&[0u8; 5]);
        let mut n: u32 = 0;
        while seq
            .next_element_seed(ValueSeed {
                out: &mut *self.out,
                depth: self.depth + 1,
                capture: false,
            })?
            .is_some()
        {
            n += 1;
        }
        patch_len(self.out, at, n, false);
        Ok(Captured::None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Captured, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom(DEPTH_MSG));
        }
        let at = self.out.len();
        self.out.extend_from_slice(&[0u8; 5]);
        let mut n: u32 = 0;
        while map
            .next_key_seed(PlainKey {
                out: &mut *self.out,
            })?
            .is_some()
        {
            map.next_value_seed(ValueSeed {
                out: &mut *self.out,
                depth: self.depth + 1,
                capture: false,
            })?;
            n += 1;
        }
        patch_len(self.out, at, n, true);
        Ok(Captured::None)
    }
}

struct PlainKey<'a> {
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for PlainKey<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for PlainKey<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let _ = rmp::encode::write_str(&mut *self.out, v);
        Ok(())
    }
}

/// Encodes one Mimecast record and tags it with its source.
pub fn encode_record(
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    source: &str,
) -> Result<EventTime, EncodeError> {
    encode_json(out, json, time, &[(SOURCE_FIELD, source)])
}

/// Same, with more string fields added to the body.
pub fn encode_record_with(
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    source: &str,
    more: &[(&str, &str)],
) -> Result<EventTime, EncodeError> {
    let mut extra: Vec<(&str, &str)> = Vec::with_capacity(more.len() + 1);
    extra.push((SOURCE_FIELD, source));
    extra.extend_from_slice(more);
    encode_json(out, json, time, &extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(json: &str, time: TimeField) -> Result<Vec<u8>, EncodeError> {
        let mut b = Vec::new();
        encode_record(&mut b, json.as_bytes(), time, "siem_cg")?;
        Ok(b.as_slice().to_vec())
    }

    /// Golden bytes, every byte explained.
    #[test]
    fn golden_siem_record() {
        let got = enc(
            r#"{"timestamp":1731499059314,"type":"av","n":null,"ok":true,"a":[1,-2,0.5]}"#,
            TimeField::EpochMillis("timestamp"),
        )
        .unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x92,                                   // fixarray 2: [time, body]
            0xd7, 0x00,                             // fixext 8, type 0 = EventTime
            0x67, 0x34, 0x94, 0x33,                 // seconds 1731499059 = 0x67349433 (BE)
            0x12, 0xb7, 0x42, 0x80,                 // nanoseconds 314000000 = 0x12b74280 (BE)
            0x86,                                   // fixmap 6 (5 fields + mimecast_source)
            0xa9, b't', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p',
            0xcf, 0, 0, 0x01, 0x93, 0x25, 0x62, 0xe8, 0x72, // uint64 1731499059314 = 0x1932562e872, as it came
            0xa4, b't', b'y', b'p', b'e', 0xa2, b'a', b'v',
            0xa1, b'n', 0xc0,                       // null -> nil
            0xa2, b'o', b'k', 0xc3,                 // true
            0xa1, b'a', 0x93, 0x01, 0xfe,           // fixarray 3: 1, -2 (negative fixint)
            0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0,     // float64 0.5
            0xaf, b'm', b'i', b'm', b'e', b'c', b'a', b's', b't', b'_', b's', b'o', b'u', b'r', b'c', b'e',
            0xa7, b's', b'i', b'e', b'm', b'_', b'c', b'g',
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn text_time_fields_with_mimecast_offsets() {
        let got = enc(
            r#"{"eventTime":"2024-11-17T20:16:00+0000","id":"x"}"#,
            TimeField::Text("eventTime"),
        )
        .unwrap();
        let v = rmpv::decode::read_value(&mut &got[..]).unwrap();
        let rmpv::Value::Ext(0, ts) = &v[0] else {
            panic!("{v:?}")
        };
        assert_eq!(u32::from_be_bytes(ts[0..4].try_into().unwrap()), 1731874560);
        let stix = parse_time_text("2024-11-18T16:08Z").unwrap();
        assert_eq!(stix.as_second(), 1731946080);
        assert!(parse_time_text("2021-11-19T01:28:37.099Z").is_some());
    }

    #[test]
    fn missing_or_bad_time_falls_back_to_now() {
        let before = EventTime::now().secs;
        for json in [
            r#"{"x":1}"#,
            r#"{"timestamp":"soon"}"#,
            r#"{"timestamp":-5}"#,
        ] {
            let got = enc(json, TimeField::EpochMillis("timestamp")).unwrap();
            let v = rmpv::decode::read_value(&mut &got[..]).unwrap();
            let rmpv::Value::Ext(0, ts) = &v[0] else {
                panic!()
            };
            assert!(u32::from_be_bytes(ts[0..4].try_into().unwrap()) >= before);
        }
    }

    #[test]
    fn large_maps_and_strings_use_wide_headers() {
        let fields: Vec<String> = (0..70_000).map(|i| format!("\"k{i}\":{i}")).collect();
        let long = "é".repeat(40_000);
        let json = format!("{{{},\"s\":\"{long}\"}}", fields.join(","));
        let got = enc(&json, TimeField::EpochMillis("timestamp")).unwrap();
        let mut rd = &got[..];
        let v = rmpv::decode::read_value(&mut rd).unwrap();
        assert!(rd.is_empty());
        let body = v[1].as_map().unwrap();
        assert_eq!(body.len(), 70_002);
        assert_eq!(body[70_000].1.as_str().unwrap().len(), long.len());
    }

    #[test]
    fn invalid_input_leaves_the_buffer_as_it_was() {
        let mut b = Vec::new();
        encode_record(
            &mut b,
            br#"{"timestamp":1}"#,
            TimeField::EpochMillis("timestamp"),
            "s",
        )
        .unwrap();
        let good = b.as_slice().to_vec();
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        for bad in [
            &b"{\"a\":1"[..],
            b"[1,2]",
            b"not json",
            b"{\"a\":1} trailing",
            b"",
            deep.as_bytes(),
        ] {
            assert!(encode_record(&mut b, bad, TimeField::EpochMillis("timestamp"), "s").is_err());
            assert_eq!(b.as_slice(), &good[..]);
        }
        assert!(matches!(
            encode_record(&mut b, deep.as_bytes(), TimeField::EpochMillis("t"), "s"),
            Err(EncodeError::TooDeep)
        ));
    }

    /// Seeded mutations of real-looking records (bit flips, cuts, insertions, duplicated
    /// spans): encoding never panics, and the buffer holds only complete records afterwards.
    #[test]
    fn mutated_input_never_breaks_the_buffer() {
        let seeds = [
            r#"{"_offset":1,"accountId":"C1","timestamp":1731499059314,"type":"receipt","spamScore":"21","recipients":["a@b.c"],"tags":null,"x":{"y":[1,2.5,-3,true]}}"#,
            r#"{"eventTime":"2024-11-17T20:16:00+0000","id":"eNo\u00e9\n","hits":1,"impersonationResults":[{"checkerResult":"hit"}]}"#,
        ];
        let mut rng: u64 = 0x5EED;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut buf = Vec::new();
        let mut ok = 0;
        for round in 0..20_000 {
            let mut line = seeds[round % seeds.len()].as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % (line.len() + 1);
                match next() % 4 {
                    0 if !line.is_empty() => {
                        let i = at.min(line.len() - 1);
                        line[i] ^= 1 << (next() % 8);
                    }
                    1 => line.truncate(at),
                    2 => line.insert(at, (next() % 256) as u8),
                    _ => {
                        let end = (at + (next() as usize % 16)).min(line.len());
                        let span = line[at..end].to_vec();
                        line.splice(at..at, span);
                    }
                }
            }
            let before = buf.len();
            match encode_record(&mut buf, &line, TimeField::EpochMillis("timestamp"), "fuzz") {
                Ok(_) => ok += 1,
                Err(_) => assert_eq!(buf.len(), before, "a failed record left bytes behind"),
            }
            if buf.len() > 1 << 20 {
                let mut rd = buf.as_slice();
                while !rd.is_empty() {
                    let v = rmpv::decode::read_value(&mut rd).expect("only complete records");
                    assert!(v[1].is_map());
                }
                buf.clear();
            }
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            rmpv::decode::read_value(&mut rd).expect("only complete records");
        }
        assert!(
            ok > 1000 && ok < 20_000,
            "mutations both pass and fail ({ok} passed)"
        );
    }

    #[test]
    fn error_records_are_valid_and_bounded() {
        let mut b = Vec::new();
        let junk = vec![0xffu8; 5000];
        encode_error(
            &mut b,
            "siem_cg",
            "invalid JSON on line 3",
            &junk,
            &[("mimecast_file", "f.json.gz")],
        );
        let v = rmpv::decode::read_value(&mut b.as_slice()).unwrap();
        let body = v[1].as_map().unwrap();
        assert_eq!(body.len(), 4);
        assert!(body[2].1.as_str().unwrap().len() <= 3 * MAX_EXCERPT);
    }
}
