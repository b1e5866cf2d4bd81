//! Synthetic, deterministic Mimecast data, generated on demand.
//!
//! Every log stream (a SIEM type, an API log source) lays its events on a grid of 15-minute
//! slots. Slot `k` of stream `s` holds `n(s, k)` events; event `j` of it has a timestamp inside
//! the slot and a ground-truth identity `EventKey { stream: s, slot: k, idx: j }` that is
//! written into a natural field of the record (`_partition`/`_offset` for SIEM records, an id,
//! messageId or similar for the others), so a test can compute loss and duplication exactly.
//! Nothing is stored: any event can be regenerated from the seed and its key.
//!
//! All data here is synthetic. Field names, types and time formats follow
//! ../shared/reference/mimecast-api-2.0.md (sections 4 and 5); values are invented.

use serde_json::{json, Map, Value};

pub const SLOT_MS: i64 = 900_000;
pub const MAX_PER_SLOT: u64 = 100_000;

/// Every stream the simulator knows, with its grid id (the index in this table).
pub const STREAMS: &[&str] = &[
    "receipt",
    "process",
    "delivery",
    "av",
    "spam",
    "journal",
    "internal email protect",
    "impersonation protect",
    "url protect",
    "attachment protect",
    "entities",
    "mailflow",
    "urlclick",
    "audit",
    "ttp_url",
    "ttp_attachment",
    "ttp_impersonation",
    "dlp",
    "held_release",
    "archive_search",
    "search_logs",
    "archive_view",
    "hold",
    "ti_malware_customer",
    "ti_malware_grid",
    "rejections",
    "remediation",
];

pub const CG_TYPES: std::ops::Range<u16> = 0..10;
pub const CI_TYPES: std::ops::Range<u16> = 10..13;

pub fn stream_id(name: &str) -> Option<u16> {
    STREAMS.iter().position(|s| *s == name).map(|p| p as u16)
}

pub fn stream_name(id: u16) -> &'static str {
    STREAMS.get(id as usize).copied().unwrap_or("unknown")
}

/// Ground-truth identity of one generated event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    pub stream: u16,
    pub slot: i64,
    pub idx: u32,
}

/// Path of the batch file of `stream` for one 15-minute `slot` on the simulator's file server
/// (its listing's URLs are this path on the simulator's address, plus a signed query).
pub fn batch_file_path(stream: u16, slot: i64) -> String {
    format!("/s3/batch/{stream}/{slot}.json.gz")
}

impl EventKey {
    /// The marker written into the record: `sim-<stream>.<slot>.<idx>`.
    pub fn marker(&self) -> String {
        format!("sim-{}.{}.{}", self.stream, self.slot, self.idx)
    }
}

/// Recovers the ground-truth identity of a record produced by this simulator.
pub fn identity(record: &Value) -> Option<EventKey> {
    if let (Some(p), Some(o)) = (
        record.get("_partition").and_then(Value::as_u64),
        record.get("_offset").and_then(Value::as_u64),
    ) {
        return Some(EventKey {
            stream: p as u16,
            slot: (o / MAX_PER_SLOT) as i64,
            idx: (o % MAX_PER_SLOT) as u32,
        });
    }
    for field in ["id", "messageId", "searchText", "subject"] {
        if let Some(k) = record
            .get(field)
            .and_then(Value::as_str)
            .and_then(parse_marker)
        {
            return Some(k);
        }
    }
    None
}

pub fn parse_marker(s: &str) -> Option<EventKey> {
    let start = s.find("sim-")? + 4;
    let rest = &s[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    let mut it = rest[..end].split('.');
    let stream = it.next()?.parse().ok()?;
    let slot = it.next()?.parse().ok()?;
    let idx = it.next()?.parse().ok()?;
    Some(EventKey { stream, slot, idx })
}

/// splitmix64: a small, fast, well-mixed hash for deterministic choices.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub fn h3(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    mix(mix(mix(seed ^ a) ^ b) ^ c)
}

/// The event grid: how many events each slot holds and when each happened.
#[derive(Clone, Debug)]
pub struct Grid {
    pub seed: u64,
    /// Events per hour, per stream id.
    pub rates: Vec<u64>,
}

impl Grid {
    pub fn new(seed: u64, rates: Vec<u64>) -> Self {
        Grid { seed, rates }
    }

    /// Number of events in slot `k` of stream `s` (stochastic rounding of the configured rate,
    /// varied by +-25% per slot so files differ in size).
    pub fn count(&self, s: u16, k: i64) -> u64 {
        let rate = self.rates.get(s as usize).copied().unwrap_or(0);
        if rate == 0 {
            return 0;
        }
        let h = h3(self.seed, s as u64, k as u64, 0xC0);
        let factor = 75 + (h % 51); // 75..=125 percent
                                    // expected events in the slot, in millionths
        let micro = rate as u128 * factor as u128 * 10_000 / 4; // rate/4 * factor/100 * 1e6
        let whole = (micro / 1_000_000) as u64;
        let frac = (micro % 1_000_000) as u64;
        let extra = u64::from((h >> 20) % 1_000_000 < frac);
        (whole + extra).min(MAX_PER_SLOT)
    }

    /// Timestamp (epoch ms) of event `j` of slot `k`; strictly increasing in `j`.
    pub fn ts(&self, s: u16, k: i64, j: u32, n: u64) -> i64 {
        let n = n.max(1) as i64;
        let spacing = (SLOT_MS / n).max(1);
        let base = k * SLOT_MS + (j as i64 * SLOT_MS) / n;
        let jitter = (h3(self.seed, s as u64, k as u64, j as u64 ^ 0x7157) % spacing as u64) as i64;
        base + jitter
    }

    /// Events of stream `s` with `from <= ts < to`, oldest first, each with its timestamp.
    pub fn range(&self, s: u16, from: i64, to: i64) -> impl Iterator<Item = (EventKey, i64)> + '_ {
        let k0 = from.div_euclid(SLOT_MS);
        let k1 = (to - 1).div_euclid(SLOT_MS);
        (k0..=k1).flat_map(move |k| {
            let n = self.count(s, k);
            (0..n as u32).filter_map(move |j| {
                let t = self.ts(s, k, j, n);
                (t >= from && t < to).then_some((
                    EventKey {
                        stream: s,
                        slot: k,
                        idx: j,
                    },
                    t,
                ))
            })
        })
    }

    /// Same, newest first.
    pub fn range_rev(
        &self,
        s: u16,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = (EventKey, i64)> + '_ {
        let k0 = from.div_euclid(SLOT_MS);
        let k1 = (to - 1).div_euclid(SLOT_MS);
        (k0..=k1).rev().flat_map(move |k| {
            let n = self.count(s, k);
            (0..n as u32).rev().filter_map(move |j| {
                let t = self.ts(s, k, j, n);
                (t >= from && t < to).then_some((
                    EventKey {
                        stream: s,
                        slot: k,
                        idx: j,
                    },
                    t,
                ))
            })
        })
    }

    /// How late an event becomes visible to the API after its own timestamp.
    /// Audit records arrive late by up to `audit_lag_ms` (each its own delay), which is why
    /// a collector must re-read overlapping windows; other API logs after a short fixed lag.
    pub fn visible_at(&self, key: EventKey, ts: i64, audit_lag_ms: i64) -> i64 {
        if stream_name(key.stream) == "audit" && audit_lag_ms > 0 {
            let h = h3(
                self.seed,
                key.stream as u64,
                key.slot as u64,
                key.idx as u64 ^ 0xA0D1,
            );
            ts + (h % audit_lag_ms as u64) as i64
        } else {
            ts + 30_000
        }
    }
}

pub fn fmt_offset(ms: i64) -> String {
    // Mimecast's `/api/...` time format: `2024-11-17T20:16:00+0000`.
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S+0000").to_string(),
        Err(_) => "1970-01-01T00:00:00+0000".into(),
    }
}

pub fn fmt_rfc3339_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

struct Pick(u64);
impl Pick {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    fn of<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = (self.next() % items.len() as u64) as usize;
        items.get(i).copied().unwrap_or("")
    }
    fn of2<'a>(&mut self, items: &[(&'a str, &'a str)]) -> (&'a str, &'a str) {
        let i = (self.next() % items.len() as u64) as usize;
        items.get(i).copied().unwrap_or(("", ""))
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const EXT_DOMAINS: &[&str] = &[
    "example.net",
    "example.org",
    "partner.example",
    "vendor.example",
];
const SUBJECTS: &[&str] = &[
    "Quarterly report",
    "Invoice 4471 overdue",
    "Re: meeting notes",
    "Password expiry notice",
    "Shipping confirmation",
    "Ünïcode \"quoted\" subject",
];
const POLICIES: &[&str] = &[
    "Relaxed Spam Detection",
    "Default Spam Scanning Definition",
    "Confidential",
];

fn ip(p: &mut Pick) -> String {
    format!("192.0.2.{}", p.next() % 250 + 1)
}

fn user(p: &mut Pick) -> String {
    format!("{}@corp.example.com", p.of(USERS))
}

fn ext(p: &mut Pick) -> String {
    format!("{}@{}", p.of(USERS), p.of(EXT_DOMAINS))
}

/// One SIEM record (batch file line or stream event), keys as in the live batch vectors.
pub fn siem_record(g: &Grid, key: EventKey, ts: i64, account: &str) -> Value {
    let mut p = Pick(h3(
        g.seed,
        key.stream as u64,
        key.slot as u64,
        key.idx as u64,
    ));
    let ty = stream_name(key.stream);
    let tag = p.next();
    let mut m = siem_common(key, ts, account, ty, tag);
    let dir = *["Inbound", "Outbound", "Internal"]
        .get((tag % 3) as usize)
        .unwrap_or(&"Inbound");
    let ev = SiemEvent {
        key,
        ty,
        tag,
        msg_id: format!(
            "<{:012x}-{}@mail.example.net>",
            tag & 0xffff_ffff_ffff,
            key.idx
        ),
        dir,
    };
    siem_type_fields(&mut m, &mut p, &ev);
    Value::Object(m)
}

type Fields = Map<String, Value>;

/// What a SIEM record's type-specific fields draw on, besides the record's generator.
struct SiemEvent {
    key: EventKey,
    ty: &'static str,
    /// The generator's first draw; ids, hashes and the direction derive from it.
    tag: u64,
    msg_id: String,
    dir: &'static str,
}

/// The fields every SIEM record has (reference §5.1), the ground truth in `_partition` and
/// `_offset`.
fn siem_common(key: EventKey, ts: i64, account: &str, ty: &str, tag: u64) -> Fields {
    let secs = ts / 1000;
    let mut m = Map::new();
    m.insert(
        "_offset".into(),
        json!(key.slot as u64 * MAX_PER_SLOT + key.idx as u64),
    );
    m.insert("_partition".into(), json!(key.stream));
    m.insert("accountId".into(), json!(account));
    m.insert("aggregateId".into(), json!(format!("{:016x}_{secs}", tag)));
    m.insert(
        "processingId".into(),
        json!(format!("{}_{:016x}_{secs}", key.marker(), tag)),
    );
    m.insert("timestamp".into(), json!(ts));
    m.insert("type".into(), json!(ty));
    m
}

/// The fields of the record's type (reference §5.2-5.3), drawn from `p` in a fixed order.
fn siem_type_fields(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    match ev.ty {
        "receipt" => receipt(m, p, ev),
        "process" => process(m, p, ev),
        "delivery" => delivery(m, p, ev),
        "journal" => journal(m, p, ev),
        "spam" => spam(m, p, ev),
        "internal email protect" => internal_email_protect(m, p, ev),
        "attachment protect" | "av" => attachment_protect(m, p, ev),
        "url protect" => url_protect(m, p, ev),
        "impersonation protect" => impersonation_protect(m, p, ev),
        "entities" => entities(m, p, ev),
        "mailflow" => mailflow(m, p, ev),
        "urlclick" => urlclick(m, p, ev),
        _ => {}
    }
}

// One function per SIEM type (reference §5.2-5.3), each inserting its keys and drawing from `p`
// in the order its fields are written: the draws decide the values, so reordering changes data.

fn receipt(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    let rejected = p.chance(20);
    m.insert("action".into(), json!(if rejected { "Rej" } else { "Acc" }));
    m.insert(
        "subtype".into(),
        json!(if rejected { "Rej" } else { "Acc" }),
    );
    m.insert("direction".into(), json!(ev.dir));
    m.insert(
        "messageId".into(),
        if rejected {
            Value::Null
        } else {
            json!(ev.msg_id)
        },
    );
    m.insert(
        "numberAttachments".into(),
        json!((p.next() % 3).to_string()),
    );
    m.insert("receiptErrors".into(), Value::Null);
    m.insert("recipients".into(), json!(user(p)));
    m.insert(
        "rejectionCode".into(),
        if rejected { json!("550") } else { Value::Null },
    );
    m.insert(
        "rejectionInfo".into(),
        if rejected {
            json!("Envelope blocked - User Entry")
        } else {
            Value::Null
        },
    );
    m.insert(
        "rejectionType".into(),
        if rejected {
            json!("Manual Envelope Rejection")
        } else {
            Value::Null
        },
    );
    m.insert("senderEnvelope".into(), json!(ext(p)));
    m.insert("senderHeader".into(), json!(ext(p)));
    m.insert("senderIp".into(), json!(ip(p)));
    m.insert("spamDetectionLevel".into(), json!("7"));
    m.insert("spamInfo".into(), json!("[]"));
    m.insert(
            "spamProcessingDetail".into(),
            json!("{\"spf\":{\"allow\":true,\"info\":\"ALLOW\"},\"dkim\":{\"allow\":true,\"info\":\"UNKNOWN\"}}"),
        );
    m.insert("spamScore".into(), json!((p.next() % 40).to_string()));
    m.insert("subject".into(), json!(p.of(SUBJECTS)));
    m.insert("tlsCipher".into(), json!("TLS_AES_256_GCM_SHA384"));
    m.insert("tlsVersion".into(), json!("TLSv1.3"));
    m.insert("virusFound".into(), Value::Null);
}

fn process(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    let held = p.chance(15);
    m.insert("action".into(), json!(if held { "Hld" } else { "Acc" }));
    m.insert("subtype".into(), json!(if held { "Hld" } else { "Acc" }));
    m.insert("attachments".into(), Value::Null);
    m.insert(
        "emailSize".into(),
        json!((p.next() % 90_000 + 1000).to_string()),
    );
    if held {
        m.insert(
            "holdReason".into(),
            json!(p.of(&["Spm", "Att", "Imp", "Url"])),
        );
    }
    m.insert("messageId".into(), json!(ev.msg_id));
    m.insert("numberAttachments".into(), json!("0"));
    m.insert("senderEnvelope".into(), json!(ext(p)));
    m.insert("subject".into(), json!(p.of(SUBJECTS)));
    m.insert("totalSizeAttachments".into(), json!("0"));
}

fn delivery(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    // As in Elastic's recorded vectors: one processing of a message fans out into several
    // delivery records (one per recipient) with the same processingId and their own messageId.
    m.insert(
        "processingId".into(),
        json!(format!("dlv-{}-{}", ev.key.slot, ev.key.idx / 4)),
    );
    m.insert("Hostname".into(), json!("mx.corp.example.com"));
    m.insert("delivered".into(), json!("true"));
    m.insert("subtype".into(), json!("true"));
    m.insert("deliveryAttempts".into(), json!("1"));
    m.insert("deliveryErrors".into(), Value::Null);
    m.insert(
        "deliveryTime".into(),
        json!((p.next() % 20_000).to_string()),
    );
    m.insert("destinationIp".into(), json!(ip(p)));
    m.insert("direction".into(), json!(ev.dir));
    m.insert(
        "emailSize".into(),
        json!((p.next() % 90_000 + 1000).to_string()),
    );
    m.insert("messageId".into(), json!(ev.msg_id));
    m.insert("numberAttachments".into(), json!("0"));
    m.insert("recipients".into(), json!(user(p)));
    m.insert("rejectionCode".into(), Value::Null);
    m.insert("rejectionInfo".into(), Value::Null);
    m.insert("rejectionType".into(), Value::Null);
    m.insert("route".into(), json!(ev.dir));
    m.insert("senderEnvelope".into(), json!(ext(p)));
    m.insert("subject".into(), json!(p.of(SUBJECTS)));
    m.insert("tlsCipher".into(), Value::Null);
    m.insert(
        "tlsUsed".into(),
        json!(if p.chance(80) { "Yes" } else { "No" }),
    );
    m.insert("tlsVersion".into(), Value::Null);
    m.insert("totalSizeAttachments".into(), json!("0"));
}

fn journal(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    m.insert("direction".into(), json!(ev.dir));
    m.insert("recipients".into(), json!(user(p)));
    m.insert("senderEnvelope".into(), json!(user(p)));
    m.insert("subtype".into(), Value::Null);
}

fn spam(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    m.insert("messageId".into(), json!(ev.msg_id));
    m.insert("recipients".into(), json!(user(p)));
    m.insert("route".into(), json!(ev.dir));
    m.insert("senderDomain".into(), json!(p.of(EXT_DOMAINS)));
    m.insert("senderEnvelope".into(), json!(ext(p)));
    m.insert("senderHeader".into(), json!(ext(p)));
    m.insert("senderIp".into(), json!(ip(p)));
    m.insert("subject".into(), json!(p.of(SUBJECTS)));
    m.insert("subtype".into(), Value::Null);
}

fn internal_email_protect(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    m.insert("messageId".into(), json!(ev.msg_id));
    m.insert("monitoredDomainSource".into(), Value::Null);
    m.insert("recipients".into(), json!(user(p)));
    m.insert("route".into(), json!("Internal"));
    m.insert("scanResults".into(), json!("Blocked URL Category"));
    m.insert("senderEnvelope".into(), json!(user(p)));
    m.insert("similarDomain".into(), Value::Null);
    m.insert("subject".into(), json!(p.of(SUBJECTS)));
    m.insert("subtype".into(), Value::Null);
    m.insert("urlCategory".into(), json!("Compromised"));
}

fn attachment_protect(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    m.insert("fileExtension".into(), json!("pdf"));
    m.insert(
        "fileName".into(),
        json!(format!("document-{}.pdf", ev.key.idx)),
    );
    m.insert(
        "md5".into(),
        json!(format!(
            "{:032x}",
            (ev.tag as u128) << 64 | p.next() as u128
        )),
    );
    m.insert(
        "sha1".into(),
        json!(format!("{:040x}", ev.tag as u128 * 31)),
    );
    m.insert(
        "sha256".into(),
        json!(format!("{:064x}", ev.tag as u128 * 131)),
    );
    m.insert("subtype".into(), Value::Null);
    if ev.ty == "av" {
        m.insert("virusFound".into(), json!("Eicar-Test-Signature"));
        m.insert(
            "sizeAttachment".into(),
            json!((p.next() % 90_000).to_string()),
        );
        m.insert("senderDomainInternal".into(), json!("false"));
        m.insert("customerIp".into(), json!(ip(p)));
    }
}

fn url_protect(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    m.insert(
        "url".into(),
        json!(format!(
            "https://{}/landing/{}",
            p.of(EXT_DOMAINS),
            ev.key.idx
        )),
    );
    m.insert(
        "urlCategory".into(),
        json!(p.of(&["Phishing", "Malicious", "Compromised"])),
    );
    m.insert(
        "blockReason".into(),
        json!(p.of(&["Malicious", "Suspicious", "Clean"])),
    );
    m.insert("action".into(), json!("Block"));
    m.insert("credentialTheft".into(), json!("false"));
    m.insert("sourceIp".into(), json!(ip(p)));
    m.insert("senderDomain".into(), json!(p.of(EXT_DOMAINS)));
    m.insert("route".into(), json!(ev.dir));
    m.insert("subtype".into(), Value::Null);
}

fn impersonation_protect(m: &mut Fields, p: &mut Pick, _ev: &SiemEvent) {
    m.insert("action".into(), json!(p.of(&["None", "Hold"])));
    m.insert("taggedMalicious".into(), json!("true"));
    m.insert("taggedExternal".into(), json!("true"));
    m.insert(
        "policyDefinition".into(),
        json!("Default Impersonation Definition"),
    );
    m.insert("newDomain".into(), json!("Hit"));
    m.insert("internalUserName".into(), json!(p.of(&["Hit", "No Hit"])));
    m.insert("itemsDetected".into(), json!((p.next() % 4).to_string()));
    m.insert("senderEnvelope".into(), json!(ext(p)));
    m.insert("subtype".into(), Value::Null);
}

fn entities(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    m.insert(
        "attachments".into(),
        json!([format!("file-{}.xls", ev.key.idx)]),
    );
    m.insert("direction".into(), json!(ev.dir.to_uppercase()));
    m.insert("historicalMail".into(), json!(false));
    m.insert("messageId".into(), json!(ev.msg_id));
    m.insert(
        "policiesApplied".into(),
        json!([{"action":"DO_NOTHING","mode":"ACTIVE","name":"Default O365 Mail policy"}]),
    );
    m.insert("recipients".into(), json!([user(p)]));
    m.insert("senderEnvelope".into(), json!(ext(p)));
    m.insert("senderIp".into(), json!(ip(p)));
    m.insert("source".into(), json!("OFFICE_365_MAIL"));
    m.insert("subject".into(), json!(p.of(SUBJECTS)));
    m.insert("subtype".into(), json!("NO_DETECTIONS"));
    m.insert(
        "tags".into(),
        if p.chance(20) {
            json!(["SPAM"])
        } else {
            Value::Null
        },
    );
    m.insert(
        "threatState".into(),
        json!(p.of(&["DELIVERY_IN_PROGRESS", "BLOCKED", "DELIVERED"])),
    );
    m.insert("threatType".into(), json!("NO_DETECTIONS"));
}

fn mailflow(m: &mut Fields, _p: &mut Pick, ev: &SiemEvent) {
    m.insert(
            "authResults".into(),
            json!([{"aligned":true,"result":"pass","type":"SPF"},{"aligned":null,"result":"pass","type":"DMARC"}]),
        );
    m.insert("messageId".into(), json!(ev.msg_id));
    m.insert("subtype".into(), Value::Null);
}

fn urlclick(m: &mut Fields, p: &mut Pick, ev: &SiemEvent) {
    m.insert(
        "originalUrl".into(),
        json!(format!("https://{}/x/{}", p.of(EXT_DOMAINS), ev.key.idx)),
    );
    m.insert("redirectUrl".into(), json!("https://protect.example.com/r"));
    m.insert("subtype".into(), Value::Null);
}

/// One record of the `/api/...` log sources (or a held message / TI indicator).
pub fn api_record(g: &Grid, key: EventKey, ts: i64) -> Value {
    let mut p = Pick(h3(
        g.seed,
        key.stream as u64,
        key.slot as u64,
        key.idx as u64,
    ));
    let mk = key.marker();
    let t = fmt_offset(ts);
    let msg_id = format!("<{mk}.{:08x}@mail.example.net>", p.next() & 0xffff_ffff);
    let ev = ApiEvent {
        key,
        ts,
        mk,
        t,
        msg_id,
    };
    match stream_name(key.stream) {
        "audit" => audit(&mut p, &ev),
        "ttp_url" => ttp_url(&mut p, &ev),
        "ttp_attachment" => ttp_attachment(&mut p, &ev),
        "ttp_impersonation" => ttp_impersonation(&mut p, &ev),
        "dlp" => dlp(&mut p, &ev),
        "held_release" => held_release(&mut p, &ev),
        "archive_search" => archive_search(&mut p, &ev),
        "search_logs" => search_logs(&mut p, &ev),
        "archive_view" => archive_view(&mut p, &ev),
        "hold" => held_message(&mut p, &ev),
        "rejections" => rejection(&mut p, &ev),
        "remediation" => remediation_incident(&mut p, &ev),
        _ => json!({}),
    }
}

/// What an `/api/...` record's fields draw on, besides the record's generator.
struct ApiEvent {
    key: EventKey,
    ts: i64,
    /// The ground-truth marker, `sim-<stream>.<slot>.<idx>`.
    mk: String,
    /// `ts` in Mimecast's `/api/...` format.
    t: String,
    msg_id: String,
}

// One function per `/api/...` source (reference §4.6-4.15), each drawing from `p` in the
// order its fields are written.

fn audit(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, .. } = ev;
    json!({
        "id": format!("eNo{mk}"),
        "auditType": p.of(&["User Logged On", "API Application Updated", "Threat Intel Feed Download"]),
        "user": user(p),
        "eventTime": t,
        "eventInfo": format!("Synthetic audit event, Date: {}, IP: {}, Application: Administration Console", &t[..10], ip(p)),
        "category": p.of(&["authentication_logs", "account_logs", "reporting_logs"]),
    })
}

fn ttp_url(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { t, msg_id, .. } = ev;
    json!({
        "userEmailAddress": user(p),
        "fromUserEmailAddress": ext(p),
        "url": format!("http://{}/page/{}", p.of(EXT_DOMAINS), ev.key.idx),
        "ttpDefinition": "Default Internal URL Protect Definition",
        "subject": p.of(SUBJECTS),
        "action": p.of(&["warn", "block", "allow"]),
        "adminOverride": "N/A",
        "userOverride": "None",
        "scanResult": p.of(&["clean", "malicious"]),
        "category": "Compromised",
        "sendingIp": ip(p),
        "userAwarenessAction": "N/A",
        "date": t,
        "actions": "None",
        "route": p.of(&["inbound", "outbound", "internal"]),
        "creationMethod": "Entry Scan",
        "emailPartsDescription": ["Body"],
        "messageId": msg_id,
        "tagMap": {"UrlReputationScan": {"Status": ["CustomerAll", "VerdictBlock"], "Type": ["Compromised"]}},
    })
}

fn ttp_attachment(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { t, msg_id, .. } = ev;
    json!({
        "senderAddress": ext(p),
        "recipientAddress": user(p),
        "fileName": format!("attach-{}.pdf", ev.key.idx),
        "fileType": "application/pdf",
        "result": p.of(&["safe", "malicious"]),
        "actionTriggered": "none, none",
        "date": t,
        "details": "Safe\r\nTime taken: 0 hrs, 0 min, 3 sec",
        "route": "inbound",
        "messageId": msg_id,
        "subject": p.of(SUBJECTS),
        "fileHash": format!("{:064x}", p.next() as u128 * 7919),
        "definition": "Default Inbound Attachment Protect Definition",
    })
}

fn ttp_impersonation(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, msg_id, .. } = ev;
    json!({
        "id": format!("MTOKEN:{mk}"),
        "senderAddress": ext(p),
        "recipientAddress": user(p),
        "subject": p.of(SUBJECTS),
        "definition": "IP - 1 hit (Tag email)",
        "hits": 1,
        "identifiers": ["internal_user_name"],
        "action": "none",
        "taggedExternal": false,
        "taggedMalicious": true,
        "senderIpAddress": ip(p),
        "eventTime": t,
        "impersonationResults": [{"impersonationDomainSource": "internal_user_name", "similarDomain": "John Doe <john@example.net>", "stringSimilarToDomain": "John Doe", "checkerResult": "hit"}],
        "messageId": msg_id,
    })
}

fn dlp(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { t, msg_id, .. } = ev;
    json!({
        "senderAddress": user(p),
        "recipientAddress": ext(p),
        "subject": p.of(SUBJECTS),
        "eventTime": t,
        "route": "outbound",
        "policy": p.of(POLICIES),
        "action": p.of(&["hold", "block", "notify"]),
        "messageId": msg_id,
    })
}

fn held_release(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, .. } = ev;
    json!({
        "id": format!("eNoNjt0K{mk}"),
        "status": p.of(&["released", "rejected"]),
        "rejectReason": "Message goes against email policies",
        "heldReason": "Default Spam Scanning Definition",
        "messageInfo": "Graymail",
        "released": t,
        "operator": {"emailAddress": user(p)},
        "fromEnv": {"emailAddress": ext(p)},
        "fromHdr": {"emailAddress": ext(p)},
        "to": [{"emailAddress": user(p)}],
        "subject": p.of(SUBJECTS),
        "attachments": false,
        "route": "inbound",
        "size": p.next() % 50_000 + 1000,
        "policy": "Default Spam Scanning Definition",
        "spamScore": p.next() % 20,
        "detectionLevel": "relaxed",
        "spamProcessingDetail": {"spf": {"allow": true, "info": "allow"}, "verdict": {"decision": "spam", "risk": "medium", "categories": []}},
    })
}

fn archive_search(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, .. } = ev;
    json!({
        "createTime": t,
        "emailAddr": user(p),
        "source": "archive",
        "searchText": format!("{mk} invoice"),
        "searchReason": "",
        "description": "Audit [Page 1] - Depth 100",
    })
}

fn search_logs(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, .. } = ev;
    json!({
        "createTime": t,
        "emailAddr": user(p),
        "source": "archive",
        "searchText": format!("{{'mailbox':'{}','query':'{mk}'}}", user(p)),
        "searchPath": "/INBOX/",
        "searchReason": "",
        "isAdmin": "true",
        "museQuery": "[]",
        "description": "Archive Mailbox",
    })
}

fn archive_view(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, .. } = ev;
    json!({
        "viewer": user(p),
        "source": "Message Tracking",
        "viewed": t,
        "from": ext(p),
        "to": user(p),
        "subject": format!("{} [{mk}]", p.of(SUBJECTS)),
        "messageDate": fmt_offset(ev.ts - 86_400_000),
        "contentViewed": false,
        "discoveryCase": false,
    })
}

fn held_message(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, .. } = ev;
    json!({
        "id": format!("eNpVzskO{mk}"),
        "reason": "Message Hold Applied - Spam Signature policy",
        "reasonId": "MESSAGE_HOLD_APPLIED_SPAM_SIGNATURE_POLICY",
        "reasonCode": "message_hold_applied_spam_signature_policy",
        "from": {"emailAddress": ext(p), "displayableName": ""},
        "fromHeader": {"emailAddress": ext(p), "displayableName": ""},
        "to": {"emailAddress": user(p), "displayableName": ""},
        "toHeader": {"emailAddress": user(p), "displayableName": ""},
        "subject": p.of(SUBJECTS),
        "route": "INBOUND",
        "hasAttachments": false,
        "size": p.next() % 50_000 + 1000,
        "dateReceived": t,
        "policyInfo": p.of(POLICIES),
    })
}

/// A rejected connection or message, in the shape of `get-rejections` (docs/research/
/// rejections-and-queues.md): numbers where the documentation shows numbers, and
/// `manageRecipient` as the boolean one source shows (another shows the string "false").
fn rejection(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, .. } = ev;
    let to = user(p);
    let (description, info) = p.of2(&[
        (
            "Envelope Rejected",
            "Sender address is on the blocked senders list",
        ),
        (
            "Message Rejected",
            "Anti-spoofing policy: inbound lookalike sender",
        ),
        (
            "Connection Rejected",
            "IP address is on a reputation block list",
        ),
        (
            "Virus Detected",
            "Message contained a known virus signature",
        ),
    ]);
    json!({
        "id": format!("eNqrV{mk}"),
        "created": t,
        "fromAddress": ext(p),
        "toAddress": to,
        "toAddressPreCheck": to,
        "toAddressPostCheck": to,
        "ipAddress": format!("198.51.100.{}", p.next() % 254 + 1),
        "remoteName": format!("mx{}.{}", p.next() % 9, p.of(EXT_DOMAINS)),
        "remoteEhlo": format!("smtp.{}", p.of(EXT_DOMAINS)),
        "description": description,
        "info": info,
        "type": p.next() % 12,
        "spamScore": p.next() % 40,
        "detectionLevel": p.of(&["relaxed", "moderate", "aggressive", ""]),
        "manageRecipient": p.chance(10),
    })
}

/// A threat remediation incident as `find-incidents` lists it when created (docs/research/
/// remediation-incidents.md). Some are changed later ([`remediation_change`]).
fn remediation_incident(p: &mut Pick, ev: &ApiEvent) -> Value {
    let ApiEvent { mk, t, .. } = ev;
    let identified = p.next() % 20 + 1;
    let failed = p.next() % 2;
    json!({
        "id": format!("MTOKEN:eNo{mk}"),
        "code": format!("TR-{:08X}", p.next() & 0xffff_ffff),
        "type": p.of(&["automatic", "manual", "notify_only"]),
        "reason": p.of(&["Phishing campaign reported by users", "Malicious attachment found after delivery", "Impersonation attempt"]),
        "create": t,
        "modified": t,
        "identified": identified,
        "successful": identified - failed,
        "failed": failed,
        "restored": 0,
        "searchCriteria": {
            "from": ext(p),
            "to": user(p),
            "messageId": ev.msg_id,
            "fileHash": null,
            "start": fmt_offset(ev.ts - 86_400_000),
            "end": t,
        },
    })
}

/// When an incident is changed after it was created (an administrator restores its messages),
/// if it ever is: about a third of them, 5 to 60 minutes later.
pub fn remediation_change(g: &Grid, key: EventKey, ts: i64) -> Option<i64> {
    let h = h3(
        g.seed,
        key.stream as u64,
        key.slot as u64,
        key.idx as u64 ^ 0x2E57,
    );
    (h % 3 == 0).then(|| ts + 60_000 * (5 + (h >> 8) as i64 % 56))
}

/// The incident as it is once changed at `at`: its messages restored.
pub fn remediation_changed(record: &mut Value, at: i64) {
    let successful = record.get("successful").cloned().unwrap_or(json!(0));
    if let Some(obj) = record.as_object_mut() {
        obj.insert("modified".into(), json!(fmt_offset(at)));
        obj.insert("restored".into(), successful);
    }
}

/// How long a held message stays held (deterministic, 1 to 72 hours).
pub fn hold_duration_ms(g: &Grid, key: EventKey) -> i64 {
    3_600_000
        * (1 + (h3(
            g.seed,
            key.stream as u64,
            key.slot as u64,
            key.idx as u64 ^ 0x401D,
        ) % 72) as i64)
}

/// `indicator--8-4-4-4-12` id carrying the event key (stream, slot, idx) in hex.
pub fn ti_indicator_id(key: EventKey) -> String {
    let k = key.slot as u64;
    format!(
        "indicator--{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        key.stream,
        (k >> 32) & 0xffff,
        (k >> 16) & 0xffff,
        k & 0xffff,
        key.idx
    )
}

pub fn parse_ti_indicator_id(id: &str) -> Option<EventKey> {
    let hex = id.strip_prefix("indicator--")?;
    let parts: Vec<&str> = hex.split('-').collect();
    if parts.len() != 5 {
        return None;
    }
    let p = |i: usize| u64::from_str_radix(parts.get(i)?, 16).ok();
    Some(EventKey {
        stream: p(0)? as u16,
        slot: ((p(1)? << 32) | (p(2)? << 16) | p(3)?) as i64,
        idx: p(4)? as u32,
    })
}

/// The STIX objects of one indicator: indicator, malware, relationship.
pub fn ti_stix_objects(g: &Grid, key: EventKey, ts: i64) -> [Value; 3] {
    let mut p = Pick(h3(
        g.seed,
        key.stream as u64,
        key.slot as u64,
        key.idx as u64,
    ));
    let created = fmt_rfc3339_ms(ts);
    let ind = ti_indicator_id(key);
    let mal = format!(
        "malware--{:08x}-0000-4000-8000-{:012x}",
        key.stream,
        p.next() & 0xffff_ffff_ffff
    );
    let sha = format!("{:064x}", p.next() as u128 * 104_729);
    [
        json!({"type":"indicator","id":ind,"created":created,"modified":created,"labels":["malicious-activity"],
               "pattern":format!("[file:hashes.'SHA-256' = '{sha}']"),"valid_from":created}),
        json!({"type":"malware","id":mal,"created":created,"modified":created,"name":p.of(SUBJECTS),"labels":["virus"]}),
        json!({"type":"relationship","id":format!("relationship--{}", &ind[11..]),"created":created,"modified":created,
               "relationship_type":"indicates","source_ref":ind,"target_ref":mal}),
    ]
}

/// One CSV row (pipe-delimited) for the threat-intel feed.
pub const TI_CSV_HEADER: &str = "Timestamp|SenderAddress|RecipientAddress|SenderDomain|Subject|FileName|MD5|SHA1|SHA256|IndicatorId";

pub fn ti_csv_row(g: &Grid, key: EventKey, ts: i64) -> String {
    let mut p = Pick(h3(
        g.seed,
        key.stream as u64,
        key.slot as u64,
        key.idx as u64,
    ));
    let sender = ext(&mut p);
    let domain = sender.split('@').nth(1).unwrap_or("").to_string();
    format!(
        "{}|{}|{}|{}|{}|file-{}.exe|{:032x}|{:040x}|{:064x}|{}",
        fmt_offset(ts),
        sender,
        user(&mut p),
        domain,
        p.of(SUBJECTS),
        key.idx,
        p.next() as u128,
        p.next() as u128,
        p.next() as u128,
        ti_indicator_id(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_deterministic_and_ordered() {
        let g = Grid::new(7, vec![400; STREAMS.len()]);
        let a: Vec<_> = g.range(0, 0, 3 * SLOT_MS).collect();
        let b: Vec<_> = g.range(0, 0, 3 * SLOT_MS).collect();
        assert_eq!(a, b);
        assert!(a.len() > 200 && a.len() < 400, "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].1 < w[1].1));
        let other = Grid::new(8, vec![400; STREAMS.len()]);
        assert_ne!(a, other.range(0, 0, 3 * SLOT_MS).collect::<Vec<_>>());
        let rev: Vec<_> = g.range_rev(0, 0, 3 * SLOT_MS).collect();
        assert_eq!(rev.len(), a.len());
        assert_eq!(rev.first(), a.last());
    }

    #[test]
    fn identity_round_trips_for_every_stream() {
        let g = Grid::new(1, vec![40; STREAMS.len()]);
        for s in 0..STREAMS.len() as u16 {
            let key = EventKey {
                stream: s,
                slot: 1_900_000,
                idx: 17,
            };
            let rec = if s < 13 {
                siem_record(&g, key, 1, "C1")
            } else {
                api_record(&g, key, 1)
            };
            if stream_name(s).starts_with("ti_") {
                assert_eq!(parse_ti_indicator_id(&ti_indicator_id(key)), Some(key));
            } else {
                assert_eq!(identity(&rec), Some(key), "stream {}", stream_name(s));
            }
        }
    }

    #[test]
    fn rates_are_respected_on_average() {
        let g = Grid::new(3, vec![1000; STREAMS.len()]);
        let n: u64 = (0..96).map(|k| g.count(2, k)).sum(); // one day
        assert!((22_000..26_000).contains(&n), "{n}");
        let sparse = Grid::new(3, vec![2; STREAMS.len()]);
        let n: u64 = (0..96 * 10).map(|k| sparse.count(2, k)).sum(); // ten days at 2/h
        assert!((380..580).contains(&n), "{n}");
    }
}
