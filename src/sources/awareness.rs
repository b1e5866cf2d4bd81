//! Awareness Training: per-user performance, the watchlist, SAFE scores, and phishing
//! campaigns with each targeted user's actions (reference notes: docs/research/
//! awareness-training.md). None of them is a log: each is the current state of a table that
//! changes slowly (SAFE scores are recalculated daily), so each is a snapshot taken every
//! `awareness_interval` (12 h by default), every record carrying `mimecast_snapshot`.

use super::snapshot::{SnapshotSpec, SNAPSHOT};
use crate::config::Config;
use crate::schema::Records;
use serde_json::json;
use std::time::Duration;

const PERMISSION: Option<&str> = Some("Awareness Training | Dashboard | Read");

fn every(cfg: &Config) -> Duration {
    cfg.awareness_interval
}

/// One row per user: correct, incorrect and unwatched training modules.
pub static PERFORMANCE: SnapshotSpec = SnapshotSpec {
    records: Records::AwarenessUser,
    source: "awareness_performance",
    path: "/api/awareness-training/company/get-performance-details",
    permission: PERMISSION,
    paged: Some(|| json!({"includeUserDetails": true})),
    every: Some(every),
    ..SNAPSHOT
};

/// One row per user on the watchlist, with how often they are on it.
pub static WATCHLIST: SnapshotSpec = SnapshotSpec {
    records: Records::AwarenessUser,
    source: "awareness_watchlist",
    path: "/api/awareness-training/company/get-watchlist-details",
    permission: PERMISSION,
    paged: Some(|| json!({})),
    every: Some(every),
    ..SNAPSHOT
};

/// One row per user: the SAFE risk grade and its human error, sentiment, engagement and
/// knowledge parts.
pub static SAFE_SCORE: SnapshotSpec = SnapshotSpec {
    records: Records::AwarenessSafeScore,
    source: "awareness_safe_score",
    path: "/api/awareness-training/company/get-safe-score-details",
    permission: PERMISSION,
    paged: Some(|| json!({})),
    every: Some(every),
    ..SNAPSHOT
};

/// One row per phishing campaign, with its sent, opened, clicked and submitted counts.
pub static CAMPAIGNS: SnapshotSpec = SnapshotSpec {
    records: Records::AwarenessCampaign,
    source: "awareness_campaigns",
    path: "/api/awareness-training/phishing/campaign/get-campaign",
    permission: PERMISSION,
    paged: Some(|| json!({})),
    every: Some(every),
    ..SNAPSHOT
};

/// One row per user of each phishing campaign: what they did and when. The API's rows do not
/// name their campaign, so each gets the campaign's `campaignId` and `campaignName`.
pub static CAMPAIGN_USERS: SnapshotSpec = SnapshotSpec {
    records: Records::AwarenessUser,
    source: "awareness_campaign_users",
    path: "/api/awareness-training/phishing/campaign/get-user-data",
    permission: PERMISSION,
    nest: Some("items"),
    every: Some(every),
    per_item_of: Some((
        &CAMPAIGNS,
        &[("campaignId", "id"), ("campaignName", "name")],
    )),
    ..SNAPSHOT
};
