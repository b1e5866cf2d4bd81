//! Mimecast JSON records -> Fluent Bit msgpack records, in one pass.
//!
//! Each record is `[EventTime, {body}]`: a fixarray of 2, the EventTime extension (ext type 0,
//! 8 bytes: u32 BE seconds, u32 BE nanoseconds) and a map holding the record's own fields
//! with their JSON types, plus `mimecast_source`. The JSON is transcoded straight into the
//! output buffer (no intermediate tree); the event-time field is captured on the way and
//! patched into the 10 bytes reserved for the timestamp. On any error the buffer is truncated
//! back to where the record began, so the buffer always holds only complete, valid records.
//!
//! Two readers feed the one walk (`Walk`) that decides what is written, hashed and captured:
//! the scanner (`scan`), which reads the records as Mimecast sends them, and serde_json, which
//! reads whatever the scanner leaves and is the reference it is tested against
//! (`tests/scan.rs`, the `encode_record` fuzz target).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

mod scan;

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

/// The record field holding the record's stable id in the `raw` schema (see [`IdHash`]).
pub const ID_FIELD: &str = "mimecast_id";

/// The stable id of a record: a 128-bit hash of its content as received, in canonical form
/// (each leaf value with its path and JSON type, summed so that key order, whitespace and
/// escapes do not matter; a repeated key counts twice), seeded with its source and covering
/// the fields the plugin adds. The same record read again gives the same id; records that
/// differ in any value, or come from different sources, get different ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdHash {
    a: u64,
    b: u64,
}

const K1: u64 = 0xff51_afd7_ed55_8ccd;
const K2: u64 = 0xc4ce_b9fe_1a85_ec53;

fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(K1);
    h ^= h >> 33;
    h = h.wrapping_mul(K2);
    h ^ (h >> 33)
}

/// Eight bytes (or fewer, zero-padded) as a little-endian word.
#[inline]
fn word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let at = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
    let four = |i: usize| {
        bytes
            .get(i..i + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
    };
    match n {
        0 => 0,
        // Three loads that may overlap; an overlapping byte is the same byte either way.
        1..=3 => at(0) | at(n / 2) << (8 * (n / 2)) | at(n - 1) << (8 * (n - 1)),
        4..=7 => four(0) | four(n - 4) << (8 * (n - 4)),
        _ => bytes
            .get(..8)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u64::from_le_bytes),
    }
}

/// The last `bytes.len() % 8` bytes of `bytes`, as `word` reads them; from one load of the
/// last eight when there are eight.
#[inline]
fn tail_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let r = n % 8;
    if r == 0 {
        return 0;
    }
    let last = n.checked_sub(8).and_then(|at| bytes.get(at..));
    match last.and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        Some(last) => u64::from_le_bytes(last) >> (8 * (8 - r)),
        // Shorter than eight: all of it is the tail.
        None => word(bytes),
    }
}

/// Two independent 64-bit lanes over `bytes`, eight at a time, from `seed`.
#[inline]
fn fold(seed: u64, bytes: &[u8]) -> (u64, u64) {
    let mut a = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut b = seed.rotate_left(32) ^ 0xc2b2_ae3d_27d4_eb4f;
    for c in bytes.chunks_exact(8) {
        let w = word(c);
        a = (a ^ w).wrapping_mul(K1).rotate_left(31);
        b = (b ^ w).wrapping_mul(K2).rotate_left(29);
    }
    let w = tail_word(bytes) ^ ((bytes.len() as u64) << 56);
    a = (a ^ w).wrapping_mul(K1);
    b = (b ^ w).wrapping_mul(K2);
    (fmix(a), fmix(b ^ a))
}

/// The path of a key below `parent` (one lane: paths are few, and only name where a value is).
#[inline]
fn key_path(parent: u64, key: &str) -> u64 {
    let bytes = key.as_bytes();
    let mut h = parent ^ 0x2545_f491_4f6c_dd1d;
    for c in bytes.chunks_exact(8) {
        h = (h ^ word(c)).wrapping_mul(K1).rotate_left(27);
    }
    h ^= tail_word(bytes) ^ ((bytes.len() as u64) << 56);
    fmix(h.wrapping_mul(K2))
}

/// The path of the `i`th element of an array at `parent`.
#[inline]
fn index_path(parent: u64, i: u32) -> u64 {
    fmix(parent ^ (u64::from(i) + 1).wrapping_mul(K2))
}

impl IdHash {
    /// The hash of a record from `source`, before its content.
    pub fn seeded(source: &str) -> IdHash {
        let mut h = IdHash::default();
        h.leaf(0, b's', source.as_bytes());
        h
    }

    /// Adds one leaf value: its path, its JSON type and its canonical bytes.
    fn leaf(&mut self, path: u64, tag: u8, bytes: &[u8]) {
        let (a, b) = fold(path ^ u64::from(tag), bytes);
        self.a = self.a.wrapping_add(a);
        self.b = self.b.wrapping_add(b);
    }

    /// Adds a string field the plugin puts beside the record's own.
    pub fn field(&mut self, key: &str, value: &str) {
        self.leaf(key_path(0, key), b'"', value.as_bytes());
    }

    /// 32 hex digits.
    pub fn text(&self) -> String {
        let hex = self.hex();
        std::str::from_utf8(&hex).unwrap_or_default().to_string()
    }

    /// The same, on the stack (ASCII).
    pub fn hex(&self) -> [u8; 32] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, byte) in self
            .a
            .to_be_bytes()
            .iter()
            .chain(self.b.to_be_bytes().iter())
            .enumerate()
        {
            out[2 * i] = HEX[(byte >> 4) as usize];
            out[2 * i + 1] = HEX[(byte & 15) as usize];
        }
        out
    }
}

/// A value the mapping of a schema reads, captured on the way through the record.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Cap {
    #[default]
    Absent,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string: its bytes in [`Scratch::text`].
    Text(u32, u32),
    /// An array of scalars: their texts in [`Scratch::text`], each ended by 0x1f.
    List(u32, u32),
}

/// The field names a mapping reads: top-level names, and `parent.child` one level down.
pub struct CaptureSet {
    names: Vec<&'static str>,
    parents: Vec<&'static str>,
    /// Per name: whether a mapping that drops what it maps leaves it out of the remainder
    /// (fields only read to choose a kind of record stay).
    mapped: Vec<bool>,
    /// Open-addressing index of `names` by the hash of their text: a slot per key of every
    /// record costs one short hash, not a search among strings.
    index: Vec<u32>,
}

/// The path hash of a field name as the record walk computes it (`key_path`), `parent.child`
/// given in parts: the walk has it already for every key, so finding a slot hashes nothing.
fn name_path(parent: Option<&str>, key: &str) -> u64 {
    match parent {
        Some(p) => key_path(key_path(0, p), key),
        None => key_path(0, key),
    }
}

impl CaptureSet {
    /// `names` are read; of them, `mapped` become normalized fields.
    pub fn with_mapped(names: &[&'static str], mapped: &[&'static str]) -> CaptureSet {
        let mut names = names.to_vec();
        names.extend_from_slice(mapped);
        names.sort_unstable();
        names.dedup();
        let mapped = names.iter().map(|n| mapped.contains(n)).collect();
        let mut parents: Vec<&'static str> = names
            .iter()
            .filter_map(|n| n.split_once('.').map(|(p, _)| p))
            .collect();
        parents.sort_unstable();
        parents.dedup();
        let size = (names.len() * 4).next_power_of_two().max(8);
        let mut index = vec![u32::MAX; size];
        for (i, n) in names.iter().enumerate() {
            let (p, k) = match n.split_once('.') {
                Some((p, k)) => (Some(p), k),
                None => (None, *n),
            };
            let mut at = name_path(p, k) as usize & (size - 1);
            while index[at] != u32::MAX {
                at = (at + 1) & (size - 1);
            }
            index[at] = i as u32;
        }
        CaptureSet {
            names,
            parents,
            mapped,
            index,
        }
    }

    /// Whether the field in `slot` becomes a normalized field.
    pub fn is_mapped(&self, slot: usize) -> bool {
        self.mapped.get(slot).copied().unwrap_or(false)
    }

    /// The slot of a top-level field (or `parent.child` when `parent` is given).
    pub fn slot(&self, parent: Option<&str>, key: &str) -> Option<usize> {
        self.slot_at(name_path(parent, key), parent, key)
    }

    /// The same, with the name's path hash (`key_path`) already known.
    #[inline(always)]
    fn slot_at(&self, path: u64, parent: Option<&str>, key: &str) -> Option<usize> {
        if self.names.is_empty() {
            return None;
        }
        let mask = self.index.len() - 1;
        let mut at = path as usize & mask;
        loop {
            let i = *self.index.get(at)?;
            let n = self.names.get(i as usize)?;
            let same = match parent {
                None => same_text(n, key),
                Some(p) => {
                    n.len() == p.len() + 1 + key.len()
                        && n.starts_with(p)
                        && n.ends_with(key)
                        && n.as_bytes().get(p.len()) == Some(&b'.')
                }
            };
            if same {
                return Some(i as usize);
            }
            at = (at + 1) & mask;
        }
    }

    /// The slot of a name as the tables write it (`parent.child` one level down).
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        match name.split_once('.') {
            Some((p, c)) => self.slot(Some(p), c),
            None => self.slot(None, name),
        }
    }

    /// The key itself, when fields one level below it are captured.
    fn parent(&self, key: &str) -> Option<&'static str> {
        self.parents.iter().find(|p| **p == key).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Whether two texts are equal, compared eight bytes at a time up to 16 bytes (field names
/// and addresses mostly are): every captured key of every record is compared once, and a call
/// to `memcmp` costs more than such a comparison.
#[inline(always)]
pub fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| -> u64 {
        s.get(at..at + 8)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let half = |s: &[u8], at: usize| -> u32 {
        s.get(at..at + 4)
            .and_then(|w| w.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// The captured values of one record (reused from record to record).
#[derive(Default)]
pub struct Scratch {
    pub caps: Vec<Cap>,
    pub text: String,
    /// The slots set for the current record (only they are cleared for the next).
    touched: Vec<usize>,
    /// The scanner's text of a string with escapes, unescaped.
    unescaped: String,
    /// The same as bits ([`slot_bit`]).
    mask: u64,
}

/// A slot's bit in a record's mask of captured fields. Slots past 63 share the last bit, so a
/// clear bit always means "absent" and a set one only "maybe present".
pub fn slot_bit(slot: usize) -> u64 {
    1u64 << slot.min(63)
}

impl Scratch {
    fn reset(&mut self, n: usize) {
        if self.caps.len() != n {
            self.caps.clear();
            self.caps.resize(n, Cap::Absent);
        } else {
            for i in self.touched.drain(..) {
                if let Some(c) = self.caps.get_mut(i) {
                    *c = Cap::Absent;
                }
            }
        }
        self.touched.clear();
        self.text.clear();
        self.mask = 0;
    }

    /// The fields captured from the current record, as bits ([`slot_bit`]).
    pub fn mask(&self) -> u64 {
        self.mask
    }

    fn set(&mut self, slot: usize, c: Cap) {
        if let Some(x) = self.caps.get_mut(slot) {
            *x = c;
            self.touched.push(slot);
            self.mask |= slot_bit(slot);
        }
    }

    /// The text of a captured string (or of a list, its items separated by 0x1f).
    pub fn str(&self, c: Cap) -> Option<&str> {
        match c {
            Cap::Text(a, b) | Cap::List(a, b) => self.text.get(a as usize..b as usize),
            _ => None,
        }
    }

    fn push(&mut self, s: &str) -> (u32, u32) {
        let a = self.text.len() as u32;
        self.text.push_str(s);
        (a, self.text.len() as u32)
    }
}

/// A leaf of an error record in a normalized schema (`encode_tree`); the mappings of records
/// themselves write their values directly (`schema::map`).
#[derive(Clone, Debug, PartialEq)]
pub enum Out<'s> {
    Str(std::borrow::Cow<'s, str>),
    Int(i64),
}

/// Writes one leaf value.
fn write_out(out: &mut Vec<u8>, val: &Out) {
    match val {
        Out::Str(s) => {
            put_str(out, s);
        }
        Out::Int(i) => {
            let _ = rmp::encode::write_sint(out, *i);
        }
    }
}

/// Everything a mapping may read about one record.
pub struct Facts<'s> {
    pub source: &'s str,
    pub time: EventTime,
    pub id: &'s str,
    pub scratch: &'s Scratch,
    /// The fields the plugin added (`mimecast_snapshot`, `direction`, ...).
    pub extra: &'s [(&'s str, &'s str)],
}

impl Facts<'_> {
    pub fn cap(&self, slot: Option<usize>) -> Cap {
        slot.and_then(|i| self.scratch.caps.get(i).copied())
            .unwrap_or_default()
    }
}

/// A schema's mapping of one kind of record (`ecs`, `ocsf`); `raw` has none.
pub trait Normalize: Sync {
    /// The fields it reads.
    fn fields(&self) -> &CaptureSet;
    /// Where the record's own fields go (`mimecast` in ECS, `unmapped` in OCSF).
    fn remainder(&self) -> &'static str;
    /// Whether top-level fields it maps are left out of the remainder (OCSF: `unmapped` holds
    /// only what is not mapped).
    fn drops_mapped(&self) -> bool;
    /// Writes the normalized fields of the record into `out` (the entries of its body map);
    /// returns how many top-level keys it wrote.
    fn write(&self, f: &Facts, out: &mut Vec<u8>) -> u32;
}

/// How records are written: Mimecast's own fields (`raw`), or normalized.
#[derive(Clone, Copy)]
pub struct Layout<'a> {
    pub source: &'a str,
    pub norm: Option<&'a dyn Normalize>,
}

/// Appends one record in `layout`, with the fields the plugin adds (`extra`). Returns its event
/// time. On any error the buffer is as it was.
pub fn encode_as(
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    layout: &Layout,
    extra: &[(&str, &str)],
    scratch: &mut Scratch,
) -> Result<EventTime, EncodeError> {
    encode_with(Parse::Scan, out, json, time, layout, extra, scratch)
}

/// Whether the scanner reads `json` alone, without serde_json (tests: the records Mimecast
/// sends must not fall back).
#[doc(hidden)]
pub fn scans(json: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(json) else {
        return false;
    };
    let (mut out, mut scratch) = (Vec::new(), Scratch::default());
    let layout = Layout {
        source: "",
        norm: None,
    };
    let mut w = Walk::new(&mut out, &mut scratch, TimeField::Now, &layout);
    scan::object(text, &mut w, &mut String::new()).is_some()
}

/// Which reader reads a record's JSON.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parse {
    /// The scanner ([`scan`]), and serde_json for what it leaves: what the plugin does.
    Scan,
    /// serde_json alone: the reference the scanner is tested against.
    Serde,
}

/// [`encode_as`] with the reader chosen (tests compare the two).
#[doc(hidden)]
pub fn encode_with(
    how: Parse,
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    layout: &Layout,
    extra: &[(&str, &str)],
    scratch: &mut Scratch,
) -> Result<EventTime, EncodeError> {
    let start = out.len();
    let r = encode_inner(how, out, json, time, layout, extra, scratch);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_inner(
    how: Parse,
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    layout: &Layout,
    extra: &[(&str, &str)],
    scratch: &mut Scratch,
) -> Result<EventTime, EncodeError> {
    out.push(0x92); // fixarray 2
    let ts_at = out.len();
    out.extend_from_slice(&[0u8; 10]);
    let body_at = out.len();
    out.extend_from_slice(&[0u8; 5]);
    // The record's own fields: the body itself (raw), or one map under the remainder key.
    let own_at = match layout.norm {
        None => None,
        Some(n) => {
            put_str(out, n.remainder());
            let at = out.len();
            out.extend_from_slice(&[0u8; 5]);
            Some(at)
        }
    };
    let walk_from = out.len();
    // One check of the whole line, so that no parser needs to check each string again; a line
    // that is not UTF-8 goes to serde_json as bytes, for the same error as ever.
    let text = std::str::from_utf8(json).ok();
    let mut unescaped = std::mem::take(&mut scratch.unescaped);
    let scanned = match (text, how) {
        (Some(text), Parse::Scan) => {
            let mut w = Walk::new(&mut *out, &mut *scratch, time, layout);
            scan::object(text, &mut w, &mut unescaped).map(|n| (n, w.time, w.id))
        }
        _ => None,
    };
    scratch.unescaped = unescaped;
    let (n_own, captured, mut id) = match scanned {
        Some(walked) => walked,
        None => {
            // Left to serde_json: what the scanner wrote goes.
            out.truncate(walk_from);
            let mut w = Walk::new(&mut *out, &mut *scratch, time, layout);
            let n = match text {
                Some(text) => parse_top(serde_json::Deserializer::from_str(text), &mut w)?,
                None => parse_top(serde_json::Deserializer::from_slice(json), &mut w)?,
            };
            (n, w.time, w.id)
        }
    };
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
    // The plugin's own fields, in the hash too.
    let mut n_own = n_own;
    let raw = layout.norm.is_none();
    if raw {
        put_str(out, SOURCE_FIELD);
        put_str(out, layout.source);
        n_own += 1;
    }
    for (k, v) in extra {
        put_str(out, k);
        put_str(out, v);
        id.field(k, v);
        n_own += 1;
    }
    let hex = id.hex();
    let id = std::str::from_utf8(&hex).unwrap_or_default();
    let n_body = match (layout.norm, own_at) {
        (Some(norm), Some(at)) => {
            patch_len(out, at, n_own, true);
            let facts = Facts {
                source: layout.source,
                time: et,
                id,
                scratch,
                extra,
            };
            1 + norm.write(&facts, out)
        }
        _ => {
            put_str(out, ID_FIELD);
            put_str(out, id);
            n_own + 1
        }
    };
    patch_len(out, body_at, n_body, true);
    Ok(et)
}

/// Writes `leaves` (sorted by path) as nested maps; returns how many top-level keys it wrote.
/// Leaves that share the start of their paths share those maps.
pub fn write_tree(out: &mut Vec<u8>, leaves: &[(&[&str], Out)]) -> u32 {
    // Open maps: (depth's key, header position, entries so far).
    let mut open: Vec<(&str, usize, u32)> = Vec::new();
    let mut top: u32 = 0;
    for (path, val) in leaves {
        let Some((leaf, dirs)) = path.split_last() else {
            continue;
        };
        // Close the maps this path does not continue.
        let keep = open
            .iter()
            .zip(dirs.iter())
            .take_while(|((k, _, _), d)| k == *d)
            .count();
        while open.len() > keep {
            if let Some((_, at, n)) = open.pop() {
                patch_len(out, at, n, true);
            }
        }
        // Open the ones it needs.
        for d in dirs.iter().skip(keep) {
            match open.last_mut() {
                Some(parent) => parent.2 += 1,
                None => top += 1,
            }
            put_str(out, d);
            let at = out.len();
            out.extend_from_slice(&[0u8; 5]);
            open.push((d, at, 0));
        }
        match open.last_mut() {
            Some(parent) => parent.2 += 1,
            None => top += 1,
        }
        put_str(out, leaf);
        write_out(out, val);
    }
    while let Some((_, at, n)) = open.pop() {
        patch_len(out, at, n, true);
    }
    top
}

/// Appends a record built from `leaves` (sorted by path), and, if given, a map of string fields
/// under its name (an error record's context in a normalized schema).
pub fn encode_tree(
    out: &mut Vec<u8>,
    time: EventTime,
    leaves: &[(&[&str], Out)],
    remainder: Option<(&str, &[(&str, &str)])>,
) {
    out.push(0x92);
    out.extend_from_slice(&time.ext_bytes());
    let at = out.len();
    out.extend_from_slice(&[0u8; 5]);
    let mut n = 0;
    if let Some((name, fields)) = remainder {
        put_str(out, name);
        let _ = rmp::encode::write_map_len(out, fields.len() as u32);
        for (k, v) in fields {
            put_str(out, k);
            put_str(out, v);
        }
        n += 1;
    }
    n += write_tree(out, leaves);
    patch_len(out, at, n, true);
}

/// Appends a record built from string fields only (error and snapshot markers).
pub fn encode_fields(out: &mut Vec<u8>, time: EventTime, fields: &[(&str, &str)]) {
    out.push(0x92);
    out.extend_from_slice(&time.ext_bytes());
    let _ = rmp::encode::write_map_len(out, fields.len() as u32);
    for (k, v) in fields {
        put_str(out, k);
        put_str(out, v);
    }
}

/// The excerpt of offending data an error record carries: at most 512 bytes, cut at a
/// character boundary.
pub fn excerpt_text(excerpt: &[u8]) -> String {
    let mut cut = excerpt.len().min(MAX_EXCERPT);
    loop {
        match std::str::from_utf8(&excerpt[..cut]) {
            Ok(s) => break s.to_string(),
            Err(e) if e.valid_up_to() > 0 => cut = e.valid_up_to(),
            Err(_) => break String::from_utf8_lossy(&excerpt[..cut]).into_owned(),
        }
    }
}

/// The stable id of an error record: its source, reason, excerpt and context.
pub fn error_id(source: &str, reason: &str, excerpt: &str, context: &[(&str, &str)]) -> String {
    let mut id = IdHash::seeded(source);
    id.field(ERROR_FIELD, reason);
    id.field(EXCERPT_FIELD, excerpt);
    for (k, v) in context {
        id.field(k, v);
    }
    id.text()
}

/// Appends an error record (raw layout) for data that could not be delivered as it came.
pub fn encode_error(
    out: &mut Vec<u8>,
    source: &str,
    reason: &str,
    excerpt: &[u8],
    context: &[(&str, &str)],
) {
    let text = excerpt_text(excerpt);
    let id = error_id(source, reason, &text, context);
    let mut fields: Vec<(&str, &str)> = vec![
        (SOURCE_FIELD, source),
        (ERROR_FIELD, reason),
        (EXCERPT_FIELD, &text),
    ];
    fields.extend_from_slice(context);
    fields.push((ID_FIELD, &id));
    encode_fields(out, EventTime::now(), &fields);
}

const DEPTH_MSG: &str = "mimecast: nesting limit";

/// Walks one JSON object, the whole input, into `w`; the number of top-level members.
fn parse_top<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    w: &mut Walk<'_>,
) -> Result<u32, EncodeError> {
    let n = TopSeed { w }.deserialize(&mut de).map_err(|e| {
        if e.to_string().contains(DEPTH_MSG) {
            EncodeError::TooDeep
        } else {
            EncodeError::Json(e.to_string())
        }
    })?;
    de.end().map_err(|e| EncodeError::Json(e.to_string()))?;
    Ok(n)
}

enum Captured {
    None,
    Int(i64),
    Float(f64),
    Text(String),
}

/// Writes a msgpack string with the shortest header, as `rmp::encode::write_str` does, in a
/// few instructions (a record writes dozens of short strings).
#[inline]
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    let n = put_str_header(out, s.len());
    out.extend_from_slice(s.as_bytes().get(..n).unwrap_or_default());
}

/// Writes the header of a msgpack string of `n` bytes. Returns how many of them to write: all,
/// but past 4 GiB (never: a record is far smaller) the text is cut, so the framing holds.
#[inline]
pub fn put_str_header(out: &mut Vec<u8>, n: usize) -> usize {
    if n < 32 {
        out.push(0xa0 | n as u8);
        n
    } else if n < 256 {
        out.extend_from_slice(&[0xd9, n as u8]);
        n
    } else if let Ok(m) = u16::try_from(n) {
        out.push(0xda);
        out.extend_from_slice(&m.to_be_bytes());
        n
    } else {
        let m = u32::try_from(n).unwrap_or(u32::MAX);
        out.push(0xdb);
        out.extend_from_slice(&m.to_be_bytes());
        m as usize
    }
}

/// Reserves one byte for a map or array header whose entries are not counted yet: most have
/// fewer than 16 (see `close_header`).
pub fn open_header(out: &mut Vec<u8>) -> usize {
    out.push(0);
    out.len() - 1
}

/// Writes the header reserved by `open_header` at `at` for `n` entries, widening it when it
/// needs more room.
#[inline]
pub fn close_header(out: &mut Vec<u8>, at: usize, n: u32, map: bool) {
    if n < 16 {
        if let Some(b) = out.get_mut(at) {
            *b = if map { 0x80 } else { 0x90 } | n as u8;
        }
        return;
    }
    widen_header(out, at, n, map);
}

/// `close_header` for 16 entries or more (rare: kept out of line).
#[inline(never)]
fn widen_header(out: &mut Vec<u8>, at: usize, n: u32, map: bool) {
    let mut hdr = Vec::with_capacity(5);
    let _ = if map {
        rmp::encode::write_map_len(&mut hdr, n)
    } else {
        rmp::encode::write_array_len(&mut hdr, n)
    };
    if at < out.len() {
        out.splice(at..at + 1, hdr);
    }
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

/// The one pass through a record: what it writes, hashes and captures. The parsers (the
/// scanner in [`scan`], and serde_json for what it leaves) only say what they find; every
/// decision about a key or value is taken here, once.
pub(crate) struct Walk<'a> {
    out: &'a mut Vec<u8>,
    time_name: &'a str,
    time: Captured,
    id: IdHash,
    fields: Option<&'a CaptureSet>,
    drop_mapped: bool,
    scratch: &'a mut Scratch,
}

/// Where a value sits: its path (for the id), whether it is written, captured (its slot), the
/// event time, or a parent of captured fields (its key).
#[derive(Clone, Copy)]
pub(crate) struct At {
    path: u64,
    depth: usize,
    write: bool,
    slot: Option<usize>,
    time: bool,
    parent: Option<&'static str>,
}

impl At {
    /// The top-level object.
    pub(crate) const TOP: At = At {
        path: 0,
        depth: 0,
        write: true,
        slot: None,
        time: false,
        parent: None,
    };

    /// The place of the keys of the object at `self`.
    #[inline]
    pub(crate) fn members(&self) -> At {
        At {
            slot: None,
            time: false,
            ..*self
        }
    }

    /// The place of the value of a key found by [`Walk::key`] (`self`) in an object at `depth`:
    /// only top-level values keep the key as the parent of captured fields.
    #[inline]
    pub(crate) fn value(&self, top: bool) -> At {
        if top {
            *self
        } else {
            At {
                parent: None,
                ..*self
            }
        }
    }

    /// The place of the `n`th item of the array at `self`.
    #[inline]
    pub(crate) fn item(&self, n: u32) -> At {
        At {
            path: index_path(self.path, n),
            depth: self.depth + 1,
            write: self.write,
            slot: None,
            time: false,
            parent: None,
        }
    }

    /// Whether the items of the array at `self` are kept as a captured list.
    #[inline]
    pub(crate) fn lists(&self) -> bool {
        self.slot.is_some()
    }
}

/// An object or array being walked: where its header was reserved and, for an array, where
/// the texts of its captured items start.
pub(crate) struct Open {
    hdr: Option<usize>,
    list_from: u32,
}

impl<'a> Walk<'a> {
    /// A fresh walk of one record, writing into `out`.
    fn new(
        out: &'a mut Vec<u8>,
        scratch: &'a mut Scratch,
        time: TimeField,
        layout: &Layout<'a>,
    ) -> Walk<'a> {
        let fields = layout.norm.map(|n| n.fields());
        scratch.reset(fields.map_or(0, CaptureSet::len));
        Walk {
            out,
            time_name: time.name(),
            time: Captured::None,
            id: IdHash::seeded(layout.source),
            fields,
            drop_mapped: layout.norm.is_some_and(|n| n.drops_mapped()),
            scratch,
        }
    }

    /// A key of the object at `at` (from [`At::members`]): written when its value is, looked up
    /// in the capture set. Returns the place of its value (before [`At::value`]).
    #[inline]
    pub(crate) fn key(&mut self, at: &At, v: &str) -> At {
        let top = at.depth == 0;
        let path = key_path(at.path, v);
        let (slot, parent) = match self.fields {
            Some(set) if top => (set.slot_at(path, None, v), set.parent(v)),
            Some(set) => (at.parent.and_then(|p| set.slot_at(path, Some(p), v)), None),
            None => (None, None),
        };
        let dropped = top
            && self.drop_mapped
            && slot.is_some_and(|i| self.fields.is_some_and(|set| set.is_mapped(i)));
        let write = at.write && !dropped;
        if write {
            put_str(&mut *self.out, v);
        }
        At {
            path,
            depth: at.depth + 1,
            write,
            slot,
            time: top && !self.time_name.is_empty() && same_text(self.time_name, v),
            parent,
        }
    }

    #[inline]
    fn capture(&mut self, at: &At, c: Cap) {
        if let Some(slot) = at.slot {
            self.scratch.set(slot, c);
        }
    }

    pub(crate) fn boolean(&mut self, at: &At, v: bool) {
        if at.write {
            let _ = rmp::encode::write_bool(&mut *self.out, v);
        }
        self.id.leaf(at.path, b'b', &[u8::from(v)]);
        self.capture(at, Cap::Bool(v));
    }

    pub(crate) fn int(&mut self, at: &At, v: i64) {
        if at.write {
            let _ = rmp::encode::write_sint(&mut *self.out, v);
        }
        self.id.leaf(at.path, b'i', &v.to_le_bytes());
        if at.time {
            self.time = Captured::Int(v);
        }
        self.capture(at, Cap::Int(v));
    }

    #[inline]
    pub(crate) fn uint(&mut self, at: &At, v: u64) {
        if at.write {
            let _ = rmp::encode::write_uint(&mut *self.out, v);
        }
        match i64::try_from(v) {
            Ok(i) => self.id.leaf(at.path, b'i', &i.to_le_bytes()),
            Err(_) => self.id.leaf(at.path, b'u', &v.to_le_bytes()),
        }
        let i = v.min(i64::MAX as u64) as i64;
        if at.time {
            self.time = Captured::Int(i);
        }
        self.capture(at, Cap::Int(i));
    }

    pub(crate) fn float(&mut self, at: &At, v: f64) {
        if at.write {
            let _ = rmp::encode::write_f64(&mut *self.out, v);
        }
        self.id.leaf(at.path, b'f', &v.to_bits().to_le_bytes());
        if at.time {
            self.time = Captured::Float(v);
        }
        self.capture(at, Cap::Float(v));
    }

    #[inline]
    pub(crate) fn text(&mut self, at: &At, v: &str) {
        if at.write {
            put_str(&mut *self.out, v);
        }
        self.id.leaf(at.path, b'"', v.as_bytes());
        if at.time {
            self.time = Captured::Text(v.to_string());
        }
        if at.slot.is_some() {
            let (a, b) = self.scratch.push(v);
            self.capture(at, Cap::Text(a, b));
        }
    }

    pub(crate) fn null(&mut self, at: &At) {
        if at.write {
            let _ = rmp::encode::write_nil(&mut *self.out);
        }
        self.id.leaf(at.path, b'n', &[]);
        self.capture(at, Cap::Null);
    }

    /// The text of an item of a captured list (strings and integers, as written in JSON).
    #[inline]
    pub(crate) fn keep(&mut self, s: &str) {
        self.scratch.text.push_str(s);
        self.scratch.text.push('\u{1f}');
    }

    /// Starts an object or array at `at`; `None` past the nesting limit.
    #[inline]
    pub(crate) fn open(&mut self, at: &At) -> Option<Open> {
        if at.depth >= MAX_DEPTH {
            return None;
        }
        let hdr = at.write.then(|| {
            let h = self.out.len();
            self.out.extend_from_slice(&[0u8; 5]);
            h
        });
        Some(Open {
            hdr,
            list_from: self.scratch.text.len() as u32,
        })
    }

    /// Ends the object at `at` with `n` members.
    #[inline]
    pub(crate) fn close_map(&mut self, at: &At, open: Open, n: u32) {
        self.id.leaf(at.path, b'{', &n.to_le_bytes());
        if let Some(h) = open.hdr {
            patch_len(self.out, h, n, true);
        }
    }

    /// Ends the array at `at` with `n` items.
    #[inline]
    pub(crate) fn close_seq(&mut self, at: &At, open: Open, n: u32) {
        self.id.leaf(at.path, b'[', &n.to_le_bytes());
        if let Some(h) = open.hdr {
            patch_len(self.out, h, n, false);
        }
        let list_to = self.scratch.text.len() as u32;
        self.capture(at, Cap::List(open.list_from, list_to));
    }
}

// serde_json's side: the visitors only hand what the parser finds to the walk.

struct TopSeed<'a, 'w> {
    w: &'a mut Walk<'w>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = u32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = u32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u32, A::Error> {
        let mut n: u32 = 0;
        let keys = At::TOP.members();
        while let Some(at) = map.next_key_seed(KeySeed {
            w: &mut *self.w,
            at: keys,
        })? {
            if at.write {
                n += 1;
            }
            map.next_value_seed(ValueSeed {
                w: &mut *self.w,
                at: at.value(true),
            })?;
        }
        Ok(n)
    }
}

/// A key, handed to [`Walk::key`].
struct KeySeed<'a, 'w> {
    w: &'a mut Walk<'w>,
    at: At,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = At;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<At, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = At;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, v: &str) -> Result<At, E> {
        Ok(self.w.key(&self.at, v))
    }
}

struct ValueSeed<'a, 'w> {
    w: &'a mut Walk<'w>,
    at: At,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.w.boolean(&self.at, v);
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.w.int(&self.at, v);
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.w.uint(&self.at, v);
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.w.float(&self.at, v);
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.w.text(&self.at, v);
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.w.null(&self.at);
        Ok(())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.at;
        let Some(open) = self.w.open(&at) else {
            return Err(serde::de::Error::custom(DEPTH_MSG));
        };
        let mut n: u32 = 0;
        while seq
            .next_element_seed(ItemSeed {
                w: &mut *self.w,
                at: at.item(n),
                list: at.lists(),
            })?
            .is_some()
        {
            n += 1;
        }
        self.w.close_seq(&at, open, n);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.at;
        let Some(open) = self.w.open(&at) else {
            return Err(serde::de::Error::custom(DEPTH_MSG));
        };
        let mut n: u32 = 0;
        let keys = at.members();
        while let Some(k) = map.next_key_seed(KeySeed {
            w: &mut *self.w,
            at: keys,
        })? {
            map.next_value_seed(ValueSeed {
                w: &mut *self.w,
                at: k.value(false),
            })?;
            n += 1;
        }
        self.w.close_map(&at, open, n);
        Ok(())
    }
}

/// An array item: a value, whose scalar text also joins the captured list when `list`.
struct ItemSeed<'a, 'w> {
    w: &'a mut Walk<'w>,
    at: At,
    list: bool,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let inner = ValueSeed {
            w: self.w,
            at: self.at,
        };
        if self.list {
            d.deserialize_any(ListItem { inner })
        } else {
            d.deserialize_any(inner)
        }
    }
}

/// A captured list's item: written as any value, and its text kept (strings and integers).
struct ListItem<'a, 'w> {
    inner: ValueSeed<'a, 'w>,
}

impl<'de> Visitor<'de> for ListItem<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.inner.visit_bool(v)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.inner.w.keep(&v.to_string());
        self.inner.visit_i64(v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.inner.w.keep(&v.to_string());
        self.inner.visit_u64(v)
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.inner.visit_f64(v)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.inner.w.keep(v);
        self.inner.visit_str(v)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.inner.visit_unit()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.inner.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.inner.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.inner.visit_map(map)
    }
}

/// Encodes one Mimecast record (raw layout) and tags it with its source.
pub fn encode_record(
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    source: &str,
) -> Result<EventTime, EncodeError> {
    let layout = Layout { source, norm: None };
    encode_as(out, json, time, &layout, &[], &mut Scratch::default())
}

/// Same, with more string fields added to the body.
pub fn encode_record_with(
    out: &mut Vec<u8>,
    json: &[u8],
    time: TimeField,
    source: &str,
    more: &[(&str, &str)],
) -> Result<EventTime, EncodeError> {
    let layout = Layout { source, norm: None };
    encode_as(out, json, time, &layout, more, &mut Scratch::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_agrees_with_equality() {
        let words = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abce",
            "abcdefg",
            "abcdefh",
            "xbcdefg",
            "abcdefgh",
            "abcdefgi",
            "bbcdefgh",
            "senderEnvelope",
            "senderEnvelopf",
            "senderHeader",
            "tenderEnvelope",
            "abcdefghijklmnop",
            "abcdefghijklmnoq",
            "bbcdefghijklmnop",
            "abcdefghijklmnopq",
            "abcdefghijklmnopr",
            "é",
            "éa",
            "aé",
        ];
        for a in words {
            for b in words {
                assert_eq!(same_text(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    fn enc(json: &str, time: TimeField) -> Result<Vec<u8>, EncodeError> {
        let mut b = Vec::new();
        encode_record(&mut b, json.as_bytes(), time, "siem_cg")?;
        Ok(b.as_slice().to_vec())
    }

    /// Golden bytes, every byte explained.
    #[test]
    fn words_are_the_zero_padded_little_endian_bytes() {
        let bytes: Vec<u8> = (1..=40u8).map(|b| b.wrapping_mul(37)).collect();
        let padded = |b: &[u8]| {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        for from in 0..8 {
            for n in 0..=30 {
                let b = &bytes[from..from + n];
                assert_eq!(word(&b[..n.min(8)]), padded(&b[..n.min(8)]), "word of {n}");
                let r = n % 8;
                assert_eq!(tail_word(b), padded(&b[n - r..]), "tail of {n}");
            }
        }
    }

    #[test]
    fn put_str_writes_what_rmp_writes_at_every_length() {
        let text: String = ('a'..='z').cycle().take(70_000).collect();
        for n in (0..300).chain([65_535, 65_536, 69_999]) {
            let s = &text[..n];
            for before in [0, 3] {
                let mut ours = vec![7u8; before];
                let mut theirs = ours.clone();
                put_str(&mut ours, s);
                rmp::encode::write_str(&mut theirs, s).unwrap();
                assert_eq!(ours, theirs, "length {n}");
            }
        }
    }

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
            0x87,                                   // fixmap 7 (5 fields + mimecast_source + mimecast_id)
            0xa9, b't', b'i', b'm', b'e', b's', b't', b'a', b'm', b'p',
            0xcf, 0, 0, 0x01, 0x93, 0x25, 0x62, 0xe8, 0x72, // uint64 1731499059314 = 0x1932562e872, as it came
            0xa4, b't', b'y', b'p', b'e', 0xa2, b'a', b'v',
            0xa1, b'n', 0xc0,                       // null -> nil
            0xa2, b'o', b'k', 0xc3,                 // true
            0xa1, b'a', 0x93, 0x01, 0xfe,           // fixarray 3: 1, -2 (negative fixint)
            0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0,     // float64 0.5
            0xaf, b'm', b'i', b'm', b'e', b'c', b'a', b's', b't', b'_', b's', b'o', b'u', b'r', b'c', b'e',
            0xa7, b's', b'i', b'e', b'm', b'_', b'c', b'g',
            0xab, b'm', b'i', b'm', b'e', b'c', b'a', b's', b't', b'_', b'i', b'd',
            0xd9, 0x20,                             // str 8, 32 bytes: the id in hex
        ];
        assert_eq!(got[..want.len()], want[..]);
        let id = &got[want.len()..];
        assert_eq!(id.len(), 32);
        assert!(id.iter().all(|b| b.is_ascii_hexdigit()), "{id:?}");
    }

    /// The id of a raw record.
    fn id_of(json: &str, source: &str, more: &[(&str, &str)]) -> String {
        let mut b = Vec::new();
        encode_record_with(&mut b, json.as_bytes(), TimeField::Now, source, more).unwrap();
        let v = rmpv::decode::read_value(&mut &b[..]).unwrap();
        let body = v[1].as_map().unwrap();
        let (k, id) = body.last().unwrap();
        assert_eq!(k.as_str(), Some(ID_FIELD));
        id.as_str().unwrap().to_string()
    }

    #[test]
    fn the_id_is_the_content_in_canonical_form() {
        let a = id_of(r#"{"a":"x","b":1,"c":[1,{"d":null}]}"#, "audit", &[]);
        // Key order, whitespace and escapes do not change it.
        assert_eq!(
            a,
            id_of(
                r#"{ "c": [1, {"d": null}], "b": 1, "a": "x" }"#,
                "audit",
                &[]
            )
        );
        let differs = [
            id_of(r#"{"a":"x","b":1,"c":[1,{"d":null}]}"#, "dlp", &[]),
            id_of(r#"{"a":"x","b":"1","c":[1,{"d":null}]}"#, "audit", &[]),
            id_of(r#"{"a":"x","b":1,"c":[{"d":null},1]}"#, "audit", &[]),
            id_of(r#"{"a":"x","b":1,"c":[1,{"d":""}]}"#, "audit", &[]),
            id_of(r#"{"a":"x","b":1,"c":[1,{"e":null}]}"#, "audit", &[]),
            id_of(
                r#"{"a":"x","b":1,"c":[1,{"d":null}],"a":"x"}"#,
                "audit",
                &[],
            ),
            id_of(
                r#"{"a":"x","b":1,"c":[1,{"d":null}]}"#,
                "audit",
                &[("mimecast_snapshot", "t1")],
            ),
            id_of(
                r#"{"a":"x","b":1,"c":[1,{"d":null}]}"#,
                "audit",
                &[("mimecast_snapshot", "t2")],
            ),
            id_of(r#"{"a":"xb","c":[1,{"d":null}]}"#, "audit", &[]),
            id_of(r#"{"a":"x","b":1,"c":[1],"d":null}"#, "audit", &[]),
        ];
        let mut all = vec![a.clone()];
        all.extend(differs.iter().cloned());
        let unique: std::collections::BTreeSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "{all:#?}");
    }

    #[test]
    fn ids_of_many_near_identical_records_do_not_collide() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000u32 {
            let json = format!(
                r#"{{"processingId":"p{}","messageId":"m{}","n":{}}}"#,
                i / 7,
                i % 13,
                i % 3
            );
            seen.insert(id_of(&json, "siem_cg", &[]));
        }
        // 7 x 13 x 3 combinations repeat: exactly the distinct contents are distinct ids.
        let distinct: std::collections::HashSet<(u32, u32, u32)> =
            (0..200_000u32).map(|i| (i / 7, i % 13, i % 3)).collect();
        assert_eq!(seen.len(), distinct.len());
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
        assert_eq!(body.len(), 70_003);
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
        assert_eq!(body.len(), 5, "source, error, excerpt, file, id");
        assert!(body[2].1.as_str().unwrap().len() <= 3 * MAX_EXCERPT);
    }
}
