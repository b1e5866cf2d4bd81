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
    jiff::Timestamp::new(i64::from(t.secs), t.nanos as i32)
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// An event time in epoch milliseconds.
pub fn epoch_ms(t: EventTime) -> i64 {
    i64::from(t.secs) * 1000 + i64::from(t.nanos / 1_000_000)
}
