//! Output schemas: how a record's body is laid out. `raw` keeps Mimecast's own field names (the
//! default); `ecs` and `ocsf` normalize each kind of record to Elastic Common Schema or OCSF in
//! the same pass that transcodes it (`encode`), from the declarative tables of `ecs` and
//! `ocsf`. Every schema carries the record's stable id (`encode::IdHash`): `mimecast_id` in
//! `raw`, `event.id` in `ecs`, `metadata.uid` in `ocsf`. Mapping decisions per record kind are
//! in `docs/schemas.md`.

pub mod ecs;
pub mod map;
pub mod ocsf;

use crate::encode::{self, EventTime, Normalize};

/// What kind of records a source delivers, as far as a schema's mapping is concerned. Each
/// source names its own (`Source::records`), so the tables here never name a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Records {
    /// SIEM events (Cloud Gateway and Cloud Integrated), every type.
    Siem,
    TtpUrl,
    TtpAttachment,
    TtpImpersonation,
    Dlp,
    Rejection,
    HeldRelease,
    /// A held message (a snapshot row).
    HeldMessage,
    HoldSummary,
    RemediationIncident,
    Audit,
    ArchiveSearch,
    ArchiveView,
    ThreatIndicator,
    DashboardNotification,
    EmailQueueSample,
    /// A user row of an Awareness Training table.
    AwarenessUser,
    /// A user row with a SAFE score.
    AwarenessSafeScore,
    AwarenessCampaign,
    /// Anything without a mapping of its own: the common fields only.
    Generic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    Raw,
    Ecs,
    Ocsf,
}

impl Schema {
    pub fn parse(v: &str) -> Option<Schema> {
        match v.trim().to_ascii_lowercase().as_str() {
            "raw" => Some(Schema::Raw),
            "ecs" => Some(Schema::Ecs),
            "ocsf" => Some(Schema::Ocsf),
            _ => None,
        }
    }

    /// The mapping of such records (None: `raw`).
    pub fn normalizer(self, records: Records) -> Option<&'static dyn Normalize> {
        match self {
            Schema::Raw => None,
            Schema::Ecs => Some(ecs::for_records(records)),
            Schema::Ocsf => Some(ocsf::for_records(records)),
        }
    }

    /// Appends an error record for data of `source` that could not be delivered as it came.
    pub fn encode_error(
        self,
        out: &mut Vec<u8>,
        source: &str,
        reason: &str,
        excerpt: &[u8],
        context: &[(&str, &str)],
    ) {
        match self {
            Schema::Raw => encode::encode_error(out, source, reason, excerpt, context),
            Schema::Ecs => ecs::encode_error(out, source, reason, excerpt, context),
            Schema::Ocsf => ocsf::encode_error(out, source, reason, excerpt, context),
        }
    }
}

/// An event time as RFC 3339 UTC with milliseconds: `2024-11-17T20:16:00.123Z`.
pub fn rfc3339_ms(t: EventTime) -> String {
    rfc3339_text(t).as_str().to_string()
}

/// The same text, on the stack: it is on every record of the `ecs` schema, where a general
/// formatter costs more than the rest of the record's mapping.
pub fn rfc3339_text(t: EventTime) -> Rfc3339 {
    let secs = i64::from(t.secs);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // The date changes once a day while records come by the thousand: the last one's is kept.
    thread_local! {
        static LAST_DATE: std::cell::Cell<(i64, [u8; 10])> = const { std::cell::Cell::new((i64::MIN, [0; 10])) };
    }
    let date = LAST_DATE.with(|last| {
        let (d, text) = last.get();
        if d == days {
            return text;
        }
        let text = civil_date(days);
        last.set((days, text));
        text
    });
    let mut b = *b"0000-00-00T00:00:00.000Z";
    if let Some(d) = b.get_mut(..10) {
        d.copy_from_slice(&date);
    }
    put_two(&mut b, 11, rem / 3600);
    put_two(&mut b, 14, rem % 3600 / 60);
    put_two(&mut b, 17, rem % 60);
    let ms = i64::from(t.nanos / 1_000_000);
    put_two(&mut b, 21, ms);
    if let Some(d) = b.get_mut(20) {
        *d = b'0' + (ms / 100 % 10) as u8;
    }
    Rfc3339(b)
}

/// Two digits at a time from a table: a time is written for every normalized record.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Writes the last two decimal digits of `v` at `at`.
fn put_two(b: &mut [u8], at: usize, v: i64) {
    let v = v.rem_euclid(100) as usize * 2;
    if let (Some(d), Some(p)) = (b.get_mut(at..at + 2), PAIRS.get(v..v + 2)) {
        d.copy_from_slice(p);
    }
}

/// `YYYY-MM-DD` of a day since 1970-01-01.
fn civil_date(days: i64) -> [u8; 10] {
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut b = *b"0000-00-00";
    put_two(&mut b, 0, year / 100);
    put_two(&mut b, 2, year);
    put_two(&mut b, 5, month);
    put_two(&mut b, 8, day);
    b
}

/// An RFC 3339 time of 24 ASCII bytes.
pub struct Rfc3339([u8; 24]);

impl Rfc3339 {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("1970-01-01T00:00:00.000Z")
    }

    /// Its bytes (ASCII, so also its UTF-8).
    pub fn as_bytes(&self) -> &[u8; 24] {
        &self.0
    }
}

/// An event time in epoch milliseconds.
pub fn epoch_ms(t: EventTime) -> i64 {
    i64::from(t.secs) * 1000 + i64::from(t.nanos / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_by_hand_agrees_with_jiff() {
        for secs in [
            0u32,
            951_782_400,
            1_709_164_800,
            1_731_874_560,
            1_764_771_047,
            4_102_444_799,
            u32::MAX,
        ] {
            for nanos in [0u32, 7_000_000, 45_000_000, 123_456_789, 999_999_999] {
                let t = EventTime { secs, nanos };
                let want = jiff::Timestamp::new(i64::from(secs), nanos as i32)
                    .unwrap()
                    .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string();
                assert_eq!(rfc3339_ms(t), want);
            }
        }
    }
}
