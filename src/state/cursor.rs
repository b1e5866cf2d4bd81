//! The saved form of a stream's position (a cursor): a JSON object with `"v": 1` beside the
//! cursor type's own fields, stored as a string under the stream's key in the state file (see
//! the module above for the whole file). Each source declares its cursor as a serde type; this
//! module is the one place that writes and reads the version.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Version of every cursor written today. A cursor of another version is not understood: the
/// stream starts again from `initial_lookback`.
pub const CURSOR_VERSION: u64 = 1;

/// The cursor as saved: `{"v":1, ...fields}` (keys in serde_json's map order).
pub fn encode<T: Serialize>(cursor: &T) -> String {
    let mut m = Map::new();
    m.insert("v".into(), Value::from(CURSOR_VERSION));
    if let Ok(Value::Object(fields)) = serde_json::to_value(cursor) {
        m.extend(fields);
    }
    Value::Object(m).to_string()
}

/// A saved cursor, or None if it is not JSON, not of this version, or not of this type.
pub fn decode<T: DeserializeOwned>(saved: &str) -> Option<T> {
    let mut v: Value = serde_json::from_str(saved).ok()?;
    let version = v.as_object_mut()?.remove("v")?.as_u64()?;
    if version != CURSOR_VERSION {
        return None;
    }
    serde_json::from_value(v).ok()
}

/// Serde form of a list of 64-bit hashes as one string of 16 hex digits each (compact, and
/// exact where a JSON reader would round large numbers). Reading skips malformed groups.
pub mod hex_hashes {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::VecDeque;
    use std::fmt::Write as _;

    pub fn serialize<S: Serializer>(hashes: &VecDeque<u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(hashes.len() * 16);
        for h in hashes {
            let _ = write!(text, "{h:016x}");
        }
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VecDeque<u64>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        Ok(text
            .as_bytes()
            .chunks_exact(16)
            .filter_map(|h| u64::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
    struct Example {
        done: i64,
        #[serde(default)]
        token: Option<String>,
    }

    #[test]
    fn versioned_round_trip() {
        let c = Example {
            done: 5,
            token: Some("t".into()),
        };
        let s = encode(&c);
        assert_eq!(s, r#"{"done":5,"token":"t","v":1}"#);
        assert_eq!(decode::<Example>(&s), Some(c));
        assert_eq!(
            decode::<Example>(r#"{"v":2,"done":5}"#),
            None,
            "other version"
        );
        assert_eq!(decode::<Example>(r#"{"done":5}"#), None, "no version");
        assert_eq!(
            decode::<Example>(r#"{"v":1,"done":7}"#),
            Some(Example {
                done: 7,
                token: None
            }),
            "a field with a default may be absent"
        );
        assert_eq!(decode::<Example>("not json"), None);
    }
}
