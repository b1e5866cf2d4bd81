//! Records as the host takes them in: every collected buffer is decoded strictly, as Fluent
//! Bit's strict path would: a single invalid record is a violation (Fluent Bit would drop the
//! rest of the chunk).

use rmp::Marker as M;
use std::collections::HashMap;

/// One decoded record.
#[derive(Clone, Debug)]
pub struct Record {
    pub instance: usize,
    pub tag: String,
    pub secs: u32,
    pub nanos: u32,
    pub body: rmpv::Value,
}

impl Record {
    pub fn to_json(&self) -> serde_json::Value {
        to_json(&self.body)
    }
    pub fn get(&self, key: &str) -> Option<&rmpv::Value> {
        self.body
            .as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.as_str())
    }
}

pub fn to_json(v: &rmpv::Value) -> serde_json::Value {
    use rmpv::Value as V;
    match v {
        V::Nil => serde_json::Value::Null,
        V::Boolean(b) => (*b).into(),
        V::Integer(i) => i
            .as_i64()
            .map(Into::into)
            .or_else(|| i.as_u64().map(Into::into))
            .unwrap_or(serde_json::Value::Null),
        V::F32(f) => serde_json::Number::from_f64(*f as f64)
            .map(Into::into)
            .unwrap_or(serde_json::Value::Null),
        V::F64(f) => serde_json::Number::from_f64(*f)
            .map(Into::into)
            .unwrap_or(serde_json::Value::Null),
        V::String(s) => s.as_str().unwrap_or("<invalid utf-8>").into(),
        V::Binary(b) => format!("<{} bytes>", b.len()).into(),
        V::Array(a) => a.iter().map(to_json).collect::<Vec<_>>().into(),
        V::Map(m) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| k.to_string()),
                    to_json(v),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        V::Ext(t, d) => format!("<ext {t} {} bytes>", d.len()).into(),
    }
}

/// Per-tag counts, for summaries.
pub fn count_by(records: &[Record], field: &str) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in records {
        *m.entry(r.str_field(field).unwrap_or("").to_string())
            .or_default() += 1;
    }
    m
}

// --------------------------------------------------------------------------------------------
// decoding into values

/// Decodes one collected buffer as Fluent Bit's strict path would.
pub fn decode_strict(buf: &[u8]) -> Result<Vec<(u32, u32, rmpv::Value)>, String> {
    let mut rd = buf;
    let mut out = Vec::new();
    while !rd.is_empty() {
        let at = buf.len() - rd.len();
        let record = decode_record(&mut rd)
            .map_err(|why| format!("record {} at byte {at}: {why}", out.len()))?;
        out.push(record);
    }
    Ok(out)
}

/// One `[timestamp or [timestamp, metadata], body]` record: (seconds, nanoseconds, body).
fn decode_record(rd: &mut &[u8]) -> Result<(u32, u32, rmpv::Value), String> {
    let v = rmpv::decode::read_value(rd).map_err(|e| format!("invalid msgpack: {e}"))?;
    let arr = v.as_array().ok_or("not an array")?;
    if arr.len() != 2 {
        return Err(format!("array of {} items, want 2", arr.len()));
    }
    let ts = match &arr[0] {
        rmpv::Value::Array(h) if h.len() == 2 && h[1].is_map() => &h[0],
        other => other,
    };
    let (secs, nanos) = decode_timestamp(ts)?;
    if nanos >= 1_000_000_000 {
        return Err(format!("nanoseconds {nanos} out of range"));
    }
    let body = &arr[1];
    let map = body.as_map().ok_or("body is not a map")?;
    if let Some((k, _)) = map.iter().find(|(k, _)| !k.is_str()) {
        return Err(format!("non-string key {k:?}"));
    }
    Ok((secs, nanos, body.clone()))
}

/// EventTime, or the integer and float timestamps Fluent Bit also accepts.
fn decode_timestamp(ts: &rmpv::Value) -> Result<(u32, u32), String> {
    Ok(match ts {
        rmpv::Value::Ext(0, d) if d.len() == 8 => (
            u32::from_be_bytes([d[0], d[1], d[2], d[3]]),
            u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
        ),
        rmpv::Value::Integer(i) if i.as_u64().is_some() => (i.as_u64().unwrap_or(0) as u32, 0),
        rmpv::Value::F64(f) if *f >= 0.0 => (*f as u32, (f.fract() * 1e9) as u32),
        other => return Err(format!("invalid timestamp {other:?}")),
    })
}

// --------------------------------------------------------------------------------------------
// validating without values

/// Validates a buffer with the same rules as `decode_strict` without building values (the
/// benchmark's count mode): returns the number of records.
pub fn validate_strict(buf: &[u8]) -> Result<usize, String> {
    let mut rd = buf;
    let mut n = 0;
    while !rd.is_empty() {
        let at = buf.len() - rd.len();
        let bad = |why: &str| format!("record {n} at byte {at}: {why}");
        if rmp::decode::read_marker(&mut rd).ok() != Some(M::FixArray(2)) {
            return Err(bad("not an array of 2"));
        }
        skip_event_time(&mut rd).map_err(&bad)?;
        skip_body(&mut rd, bad)?;
        n += 1;
    }
    Ok(n)
}

/// The record's timestamp, which this plugin must send as EventTime.
fn skip_event_time(rd: &mut &[u8]) -> Result<(), &'static str> {
    match rmp::decode::read_marker(rd).map_err(|_| "truncated")? {
        M::FixExt8 => {
            if rd.first() != Some(&0) || rd.len() < 9 {
                return Err("timestamp extension is not EventTime");
            }
            let nanos = u32::from_be_bytes([rd[5], rd[6], rd[7], rd[8]]);
            if nanos >= 1_000_000_000 {
                return Err("nanoseconds out of range");
            }
            *rd = &rd[9..];
            Ok(())
        }
        M::FixPos(_) | M::U8 | M::U16 | M::U32 | M::U64 | M::F32 | M::F64 => {
            Err("integer/float timestamps are valid but this plugin must send EventTime")
        }
        _ => Err("invalid timestamp"),
    }
}

/// The record's body: a map with string keys. Errors are worded by `bad`, except those of a
/// malformed length, which are passed on as they are.
fn skip_body(rd: &mut &[u8], bad: impl Fn(&str) -> String) -> Result<(), String> {
    let m = rmp::decode::read_marker(rd).map_err(|_| bad("truncated"))?;
    let pairs = match len_of(rd, m)? {
        Some((p, 2)) => p,
        _ => return Err(bad("body is not a map")),
    };
    for _ in 0..pairs {
        let k = rmp::decode::read_marker(rd).map_err(|_| bad("truncated"))?;
        match len_of(rd, k)? {
            Some((len, 0)) if matches!(k, M::FixStr(_) | M::Str8 | M::Str16 | M::Str32) => {
                if rd.len() < len as usize {
                    return Err(bad("truncated key"));
                }
                *rd = &rd[len as usize..];
            }
            _ => return Err(bad("non-string key")),
        }
        skip(rd, 1).map_err(|e| bad(&e))?;
    }
    Ok(())
}

/// A big-endian length of `n` bytes.
fn read_len(rd: &mut &[u8], n: usize) -> Result<u32, String> {
    if rd.len() < n {
        return Err("truncated length".into());
    }
    let mut v = 0u32;
    for b in &rd[..n] {
        v = v << 8 | *b as u32;
    }
    *rd = &rd[n..];
    Ok(v)
}

/// What follows marker `m`: (length, kind) where kind 0 = bytes to skip, 1 = array items,
/// 2 = map pairs; None for the reserved marker.
fn len_of(rd: &mut &[u8], m: M) -> Result<Option<(u32, u8)>, String> {
    Ok(Some(match m {
        M::Null | M::True | M::False | M::FixPos(_) | M::FixNeg(_) => (0, 0),
        M::U8 | M::I8 => (1, 0),
        M::U16 | M::I16 => (2, 0),
        M::U32 | M::I32 | M::F32 => (4, 0),
        M::U64 | M::I64 | M::F64 => (8, 0),
        M::FixStr(n) => (n as u32, 0),
        M::Str8 | M::Bin8 => (read_len(rd, 1)?, 0),
        M::Str16 | M::Bin16 => (read_len(rd, 2)?, 0),
        M::Str32 | M::Bin32 => (read_len(rd, 4)?, 0),
        M::FixArray(n) => (n as u32, 1),
        M::Array16 => (read_len(rd, 2)?, 1),
        M::Array32 => (read_len(rd, 4)?, 1),
        M::FixMap(n) => (n as u32, 2),
        M::Map16 => (read_len(rd, 2)?, 2),
        M::Map32 => (read_len(rd, 4)?, 2),
        M::FixExt1 => (2, 0),
        M::FixExt2 => (3, 0),
        M::FixExt4 => (5, 0),
        M::FixExt8 => (9, 0),
        M::FixExt16 => (17, 0),
        M::Ext8 => (read_len(rd, 1)? + 1, 0),
        M::Ext16 => (read_len(rd, 2)? + 1, 0),
        M::Ext32 => (read_len(rd, 4)? + 1, 0),
        M::Reserved => return Ok(None),
    }))
}

/// Skips one value (nested at most 128 deep).
fn skip(rd: &mut &[u8], depth: usize) -> Result<(), String> {
    if depth > 128 {
        return Err("nested too deep".into());
    }
    let m = rmp::decode::read_marker(rd).map_err(|_| "truncated".to_string())?;
    let Some((n, kind)) = len_of(rd, m)? else {
        return Err("reserved marker".into());
    };
    match kind {
        0 => {
            if rd.len() < n as usize {
                return Err("truncated".into());
            }
            *rd = &rd[n as usize..];
        }
        1 => (0..n).try_for_each(|_| skip(rd, depth + 1))?,
        _ => (0..n).try_for_each(|_| skip(rd, depth + 1).and_then(|_| skip(rd, depth + 1)))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding_rejects_what_fluent_bit_rejects() {
        let mut good = Vec::new();
        rmp::encode::write_array_len(&mut good, 2).unwrap();
        rmp::encode::write_ext_meta(&mut good, 8, 0).unwrap();
        good.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        rmp::encode::write_map_len(&mut good, 1).unwrap();
        rmp::encode::write_str(&mut good, "k").unwrap();
        rmp::encode::write_str(&mut good, "v").unwrap();
        assert_eq!(decode_strict(&good).unwrap().len(), 1);
        assert!(decode_strict(&good[..good.len() - 1]).is_err(), "truncated");
        let mut neg = Vec::new();
        rmp::encode::write_array_len(&mut neg, 2).unwrap();
        rmp::encode::write_sint(&mut neg, -1).unwrap();
        rmp::encode::write_map_len(&mut neg, 0).unwrap();
        assert!(decode_strict(&neg).is_err(), "negative timestamp");
        let mut s = Vec::new();
        rmp::encode::write_array_len(&mut s, 2).unwrap();
        rmp::encode::write_str(&mut s, "2024").unwrap();
        rmp::encode::write_map_len(&mut s, 0).unwrap();
        assert!(decode_strict(&s).is_err(), "string timestamp");
        let mut bare = Vec::new();
        rmp::encode::write_map_len(&mut bare, 0).unwrap();
        assert!(decode_strict(&bare).is_err(), "bare map");
    }

    #[test]
    fn validator_agrees_with_the_decoder() {
        let mut good = Vec::new();
        for i in 0..3u32 {
            rmp::encode::write_array_len(&mut good, 2).unwrap();
            rmp::encode::write_ext_meta(&mut good, 8, 0).unwrap();
            good.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
            rmp::encode::write_map_len(&mut good, 2).unwrap();
            rmp::encode::write_str(&mut good, "k").unwrap();
            rmp::encode::write_array_len(&mut good, 2).unwrap();
            rmp::encode::write_uint(&mut good, i as u64 * 100_000).unwrap();
            rmp::encode::write_str(&mut good, &"x".repeat(300)).unwrap();
            rmp::encode::write_str(&mut good, "m").unwrap();
            rmp::encode::write_map_len(&mut good, 1).unwrap();
            rmp::encode::write_str(&mut good, "n").unwrap();
            rmp::encode::write_nil(&mut good).unwrap();
        }
        assert_eq!(validate_strict(&good), Ok(3));
        assert_eq!(decode_strict(&good).unwrap().len(), 3);
        let mut valid_cuts = 0;
        for cut in 1..good.len() {
            let v = validate_strict(&good[..cut]);
            let d = decode_strict(&good[..cut]).map(|r| r.len());
            assert_eq!(v.is_ok(), d.is_ok(), "cut at {cut}");
            valid_cuts += usize::from(v.is_ok());
        }
        assert_eq!(
            valid_cuts, 2,
            "only the record boundaries are valid cut points"
        );
        let mut bad_key = Vec::new();
        rmp::encode::write_array_len(&mut bad_key, 2).unwrap();
        rmp::encode::write_ext_meta(&mut bad_key, 8, 0).unwrap();
        bad_key.extend_from_slice(&[0; 8]);
        rmp::encode::write_map_len(&mut bad_key, 1).unwrap();
        rmp::encode::write_uint(&mut bad_key, 1).unwrap();
        rmp::encode::write_nil(&mut bad_key).unwrap();
        assert!(validate_strict(&bad_key).is_err());
    }
}
