//! The `ecs` schema: Elastic Common Schema field names, matching Elastic's own Mimecast
//! integration where it maps the same data (docs/research/elastic-ecs-mapping.md), and
//! differing where it departs from ECS or has a bug (each difference in docs/schemas.md).
//! Every record: `@timestamp` (its own time), `ecs.version`, `event.id` (the stable id),
//! `event.dataset` (`mimecast.<source>`), `event.module`, `event.kind` (`alert` for detections:
//! rejections, holds, AV, malicious URLs and attachments, impersonation hits), and the original
//! record, with the fields the plugin adds, under `mimecast`.

use super::map::{kind, l, Cond::*, Kind, Leaf, Mapping, V::*};
use super::Records;
use crate::encode::{self, EventTime, Out};
use std::borrow::Cow::Borrowed as B;

pub const VERSION: &str = "8.17.0";

const BASE: &[Leaf] = &[
    l(&["@timestamp"], Time { ms: false }),
    l(&["ecs", "version"], Str(VERSION)),
    l(&["event", "dataset"], Dataset),
    l(&["event", "id"], Id),
    l(&["event", "module"], Str("mimecast")),
    l(&["observer", "product"], Str("Mimecast Email Security")),
    l(&["observer", "vendor"], Str("Mimecast")),
];

const EMAIL_INFO: &[Leaf] = &[
    l(&["event", "category"], List(&["email"])),
    l(&["event", "type"], List(&["info"])),
];

const DIRECTIONS: &[(&str, &str)] = &[
    ("inbound", "inbound"),
    ("outbound", "outbound"),
    ("internal", "internal"),
];
const TLS_VERSIONS: &[(&str, &str)] = &[
    ("TLSv1", "1.0"),
    ("TLSv1.0", "1.0"),
    ("TLSv1.1", "1.1"),
    ("TLSv1.2", "1.2"),
    ("TLSv1.3", "1.3"),
];

/// `event.kind`: `alert` when the condition holds, else `event`.
macro_rules! alert_when {
    ($cond:expr) => {
        l(
            &["event", "kind"],
            When(&[($cond, "alert"), (Always, "event")]),
        )
    };
}

// SIEM events, every type.
const SIEM_COMMON: &[Leaf] = &[
    l(&["destination", "ip"], Ip("destinationIp")),
    l(
        &["email", "attachments"],
        Arr(&[Obj(&[(
            "file",
            Obj(&[
                ("extension", Field("fileExtension")),
                (
                    "hash",
                    Obj(&[
                        ("md5", Field("md5")),
                        ("sha1", Field("sha1")),
                        ("sha256", Field("sha256")),
                    ]),
                ),
                ("name", First(&[Field("fileName"), Field("attachments")])),
                ("size", Num("totalSizeAttachments")),
            ]),
        )])]),
    ),
    l(
        &["email", "direction"],
        First(&[Lower("direction"), Lower("route")]),
    ),
    l(
        &["email", "from", "address"],
        Collect(&["senderHeader", "senderEnvelope"], false),
    ),
    l(&["email", "message_id"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(&["email", "to", "address"], Collect(&["recipients"], false)),
    l(&["error", "code"], Field("rejectionCode")),
    l(
        &["error", "message"],
        First(&[Field("receiptErrors"), Field("deliveryErrors")]),
    ),
    l(&["error", "type"], Field("rejectionType")),
    l(
        &["event", "action"],
        First(&[Field("action"), Field("type")]),
    ),
    l(&["event", "category"], List(&["email"])),
    l(
        &["event", "reason"],
        First(&[
            Field("rejectionInfo"),
            Field("holdReason"),
            Field("blockReason"),
        ]),
    ),
    l(&["event", "type"], List(&["info"])),
    l(
        &["network", "direction"],
        Map("direction", DIRECTIONS, None),
    ),
    l(
        &["related", "hash"],
        Collect(&["md5", "sha1", "sha256"], false),
    ),
    l(&["related", "hosts"], Collect(&["Hostname"], false)),
    l(
        &["related", "ip"],
        Collect(&["senderIp", "sourceIp", "destinationIp"], true),
    ),
    l(
        &["related", "user"],
        Collect(&["senderHeader", "senderEnvelope", "recipients"], false),
    ),
    l(&["rule", "name"], Field("policyDefinition")),
    l(
        &["source", "domain"],
        First(&[Field("senderDomain"), Field("newDomain")]),
    ),
    l(&["source", "ip"], First(&[Ip("senderIp"), Ip("sourceIp")])),
    l(&["tls", "cipher"], Field("tlsCipher")),
    l(
        &["tls", "established"],
        WhenBool(&[
            (Is("tlsUsed", &["yes", "true"]), true),
            (Is("tlsUsed", &["no", "false"]), false),
        ]),
    ),
    l(&["tls", "version"], Map("tlsVersion", TLS_VERSIONS, None)),
    l(
        &["tls", "version_protocol"],
        When(&[(Present("tlsVersion"), "tls")]),
    ),
    l(&["url", "full"], Field("url")),
    alert_when!(Any(&[])),
];

const RECEIPT: &[Leaf] = &[
    alert_when!(Any(&[
        Present("rejectionType"),
        Is("action", &["rej"]),
        Present("virusFound")
    ])),
    l(
        &["event", "outcome"],
        When(&[
            (Is("action", &["rej"]), "failure"),
            (Is("action", &["acc"]), "success"),
        ]),
    ),
];
const DELIVERY: &[Leaf] = &[
    alert_when!(Present("rejectionType")),
    l(
        &["event", "outcome"],
        When(&[
            (Is("delivered", &["true"]), "success"),
            (Is("delivered", &["false"]), "failure"),
        ]),
    ),
];
const PROCESS: &[Leaf] = &[alert_when!(Is("action", &["hld"]))];
const AV: &[Leaf] = &[
    alert_when!(Always),
    l(&["event", "category"], List(&["email", "malware"])),
];
const ATTACHMENT_PROTECT: &[Leaf] = &[alert_when!(Present("fileExtension"))];
const URL_CHECKED: &[Leaf] = &[alert_when!(Present("url"))];
const IMPERSONATION: &[Leaf] = &[alert_when!(Is("taggedMalicious", &["true"]))];
const CI: &[Leaf] = &[alert_when!(Present("tags"))];

const fn siem(types: &'static [&'static str], leaves: &'static [&'static [Leaf]]) -> Kind {
    kind(Is("type", types), leaves)
}

pub static SIEM: Mapping = Mapping::new(
    "mimecast",
    false,
    &[BASE, SIEM_COMMON],
    &[
        siem(&["receipt"], &[RECEIPT]),
        siem(&["delivery"], &[DELIVERY]),
        siem(&["process"], &[PROCESS]),
        siem(&["av"], &[AV]),
        siem(&["attachment protect"], &[ATTACHMENT_PROTECT]),
        siem(&["url protect", "internal email protect"], &[URL_CHECKED]),
        siem(&["impersonation protect"], &[IMPERSONATION]),
        siem(&["entities", "mailflow", "urlclick"], &[CI]),
    ],
);

const TTP_URL_LEAVES: &[Leaf] = &[
    alert_when!(Is("scanResult", &["malicious"])),
    l(&["email", "direction"], Lower("route")),
    l(
        &["email", "from", "address"],
        Collect(&["fromUserEmailAddress"], false),
    ),
    l(&["email", "message_id"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(
        &["email", "to", "address"],
        Collect(&["userEmailAddress"], false),
    ),
    l(&["event", "action"], Field("userAwarenessAction")),
    l(&["related", "ip"], Collect(&["sendingIp"], true)),
    l(
        &["related", "user"],
        Collect(&["userEmailAddress", "fromUserEmailAddress"], false),
    ),
    l(&["rule", "name"], Field("ttpDefinition")),
    l(&["source", "ip"], Ip("sendingIp")),
    l(&["url", "original"], Field("url")),
    l(&["user", "email"], Email("userEmailAddress")),
];
pub static TTP_URL: Mapping =
    Mapping::new("mimecast", false, &[BASE, EMAIL_INFO, TTP_URL_LEAVES], &[]);

const TTP_ATTACHMENT_LEAVES: &[Leaf] = &[
    alert_when!(Is("result", &["malicious"])),
    l(
        &["email", "attachments"],
        Arr(&[Obj(&[(
            "file",
            Obj(&[
                ("hash", Obj(&[("sha256", Field("fileHash"))])),
                ("mime_type", Field("fileType")),
                ("name", Field("fileName")),
            ]),
        )])]),
    ),
    l(&["email", "direction"], Lower("route")),
    l(
        &["email", "from", "address"],
        Collect(&["senderAddress"], false),
    ),
    l(&["email", "message_id"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(
        &["email", "to", "address"],
        Collect(&["recipientAddress"], false),
    ),
    l(&["event", "action"], Field("actionTriggered")),
    l(&["related", "hash"], Collect(&["fileHash"], false)),
    l(
        &["related", "user"],
        Collect(&["senderAddress", "recipientAddress"], false),
    ),
    l(&["rule", "name"], Field("definition")),
];
pub static TTP_ATTACHMENT: Mapping = Mapping::new(
    "mimecast",
    false,
    &[BASE, EMAIL_INFO, TTP_ATTACHMENT_LEAVES],
    &[],
);

const TTP_IMPERSONATION_LEAVES: &[Leaf] = &[
    alert_when!(Is("taggedMalicious", &["true"])),
    l(
        &["email", "from", "address"],
        Collect(&["senderAddress"], false),
    ),
    l(&["email", "message_id"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(
        &["email", "to", "address"],
        Collect(&["recipientAddress"], false),
    ),
    l(&["event", "action"], Field("action")),
    l(&["related", "ip"], Collect(&["senderIpAddress"], true)),
    l(
        &["related", "user"],
        Collect(&["senderAddress", "recipientAddress"], false),
    ),
    l(&["rule", "name"], Field("definition")),
    l(&["source", "ip"], Ip("senderIpAddress")),
];
pub static TTP_IMPERSONATION: Mapping = Mapping::new(
    "mimecast",
    false,
    &[BASE, EMAIL_INFO, TTP_IMPERSONATION_LEAVES],
    &[],
);

const DLP_LEAVES: &[Leaf] = &[
    alert_when!(Is("action", &["block", "hold", "bounce"])),
    l(&["email", "direction"], Lower("route")),
    l(
        &["email", "from", "address"],
        Collect(&["senderAddress"], false),
    ),
    l(&["email", "message_id"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(
        &["email", "to", "address"],
        Collect(&["recipientAddress"], false),
    ),
    l(&["event", "action"], Field("action")),
    l(
        &["related", "user"],
        Collect(&["senderAddress", "recipientAddress"], false),
    ),
    l(&["rule", "name"], Field("policy")),
];
pub static DLP: Mapping = Mapping::new("mimecast", false, &[BASE, EMAIL_INFO, DLP_LEAVES], &[]);

const REJECTION_LEAVES: &[Leaf] = &[
    alert_when!(Always),
    l(&["email", "direction"], Str("inbound")),
    l(
        &["email", "from", "address"],
        Collect(&["fromAddress"], false),
    ),
    l(&["email", "to", "address"], Collect(&["toAddress"], false)),
    l(&["event", "action"], Field("description")),
    l(&["event", "outcome"], Str("failure")),
    l(&["event", "reason"], Field("info")),
    l(&["event", "risk_score"], Num("spamScore")),
    l(&["network", "direction"], Str("inbound")),
    l(&["related", "ip"], Collect(&["ipAddress"], true)),
    l(
        &["related", "user"],
        Collect(&["fromAddress", "toAddress"], false),
    ),
    l(&["source", "address"], Field("remoteName")),
    l(&["source", "ip"], Ip("ipAddress")),
];
pub static REJECTIONS: Mapping = Mapping::new(
    "mimecast",
    false,
    &[BASE, EMAIL_INFO, REJECTION_LEAVES],
    &[],
);

const RELEASE_LEAVES: &[Leaf] = &[
    alert_when!(Is("status", &["rejected"])),
    l(&["email", "direction"], Lower("route")),
    l(
        &["email", "from", "address"],
        Collect(&["fromHdr.emailAddress", "fromEnv.emailAddress"], false),
    ),
    l(&["email", "subject"], Field("subject")),
    l(&["event", "action"], Field("status")),
    l(&["event", "reason"], Field("rejectReason")),
    l(&["event", "risk_score"], Num("spamScore")),
    l(&["rule", "name"], Field("policy")),
    l(&["user", "email"], Email("operator.emailAddress")),
];
pub static HELD_RELEASE: Mapping =
    Mapping::new("mimecast", false, &[BASE, EMAIL_INFO, RELEASE_LEAVES], &[]);

const HOLD_LEAVES: &[Leaf] = &[
    alert_when!(Always),
    l(
        &["email", "from", "address"],
        Collect(&["from.emailAddress", "fromHeader.emailAddress"], false),
    ),
    l(&["email", "subject"], Field("subject")),
    l(
        &["email", "to", "address"],
        Collect(&["to.emailAddress"], false),
    ),
    l(&["event", "action"], Str("hold")),
    l(&["event", "reason"], Field("reason")),
    l(&["rule", "name"], Field("policyInfo")),
];
pub static HOLD_LIST: Mapping =
    Mapping::new("mimecast", false, &[BASE, EMAIL_INFO, HOLD_LEAVES], &[]);

const REMEDIATION_LEAVES: &[Leaf] = &[
    alert_when!(Always),
    l(&["event", "action"], Field("type")),
    l(&["event", "reason"], Field("reason")),
    l(&["message"], Field("code")),
];
pub static REMEDIATION: Mapping = Mapping::new(
    "mimecast",
    false,
    &[BASE, EMAIL_INFO, REMEDIATION_LEAVES],
    &[],
);

const AUDIT_LEAVES: &[Leaf] = &[
    alert_when!(Any(&[])),
    l(&["event", "action"], Field("auditType")),
    l(&["event", "category"], List(&["iam"])),
    l(&["event", "type"], List(&["info"])),
    l(&["message"], Field("eventInfo")),
    l(&["related", "user"], Collect(&["user"], false)),
    l(&["user", "domain"], Domain("user")),
    l(&["user", "email"], Email("user")),
    l(&["user", "name"], Field("user")),
];
pub static AUDIT: Mapping = Mapping::new("mimecast", false, &[BASE, AUDIT_LEAVES], &[]);

const ARCHIVE_API: &[Leaf] = &[
    alert_when!(Any(&[])),
    l(&["event", "category"], List(&["api"])),
    l(&["event", "type"], List(&["admin"])),
];
const ARCHIVE_SEARCH_LEAVES: &[Leaf] = &[
    l(&["event", "action"], Str("search")),
    l(&["message"], Field("description")),
    l(&["user", "email"], Email("emailAddr")),
    l(&["user", "name"], Field("emailAddr")),
];
pub static ARCHIVE_SEARCH: Mapping = Mapping::new(
    "mimecast",
    false,
    &[BASE, ARCHIVE_API, ARCHIVE_SEARCH_LEAVES],
    &[],
);
const ARCHIVE_VIEW_LEAVES: &[Leaf] = &[
    l(&["email", "subject"], Field("subject")),
    l(&["event", "action"], Str("view")),
    l(&["user", "email"], Email("viewer")),
    l(&["user", "name"], Field("viewer")),
];
pub static ARCHIVE_VIEW: Mapping = Mapping::new(
    "mimecast",
    false,
    &[BASE, ARCHIVE_API, ARCHIVE_VIEW_LEAVES],
    &[],
);

const THREAT_INTEL_LEAVES: &[Leaf] = &[
    l(&["event", "category"], List(&["threat"])),
    l(&["event", "kind"], Str("enrichment")),
    l(&["event", "type"], List(&["indicator"])),
    l(&["threat", "indicator", "description"], Field("name")),
    l(&["threat", "indicator", "modified_at"], Field("modified")),
    l(&["threat", "indicator", "provider"], Str("Mimecast")),
];
pub static THREAT_INTEL: Mapping =
    Mapping::new("mimecast", false, &[BASE, THREAT_INTEL_LEAVES], &[]);

const STATE_EMAIL: &[Leaf] = &[l(&["event", "kind"], Str("state"))];
const HOLD_SUMMARY_LEAVES: &[Leaf] = &[l(&["rule", "name"], Field("policyInfo"))];
pub static HOLD_SUMMARY: Mapping = Mapping::new(
    "mimecast",
    false,
    &[BASE, EMAIL_INFO, STATE_EMAIL, HOLD_SUMMARY_LEAVES],
    &[],
);

const DASHBOARD_LEAVES: &[Leaf] = &[
    l(&["event", "kind"], Str("event")),
    l(
        &["message"],
        First(&[Field("title"), Field("displayMessage")]),
    ),
];
pub static DASHBOARD: Mapping = Mapping::new("mimecast", false, &[BASE, DASHBOARD_LEAVES], &[]);

const QUEUE_LEAVES: &[Leaf] = &[
    l(&["email", "direction"], Extra("direction")),
    l(&["event", "kind"], Str("metric")),
    l(&["network", "direction"], Extra("direction")),
];
pub static EMAIL_QUEUES: Mapping =
    Mapping::new("mimecast", false, &[BASE, EMAIL_INFO, QUEUE_LEAVES], &[]);

const AWARENESS_USER: &[Leaf] = &[
    l(&["event", "category"], List(&["iam"])),
    l(&["event", "kind"], Str("state")),
    l(&["event", "type"], List(&["user", "info"])),
    l(
        &["related", "user"],
        Collect(&["email", "emailAddress"], false),
    ),
    l(
        &["user", "email"],
        First(&[Email("email"), Email("emailAddress")]),
    ),
    l(&["user", "full_name"], Field("name")),
    l(&["user", "id"], Field("userId")),
    l(
        &["user", "name"],
        First(&[Field("email"), Field("emailAddress")]),
    ),
    l(&["user", "risk", "calculated_level"], Field("risk")),
];
pub static AWARENESS_USERS: Mapping = Mapping::new("mimecast", false, &[BASE, AWARENESS_USER], &[]);

const CAMPAIGN_LEAVES: &[Leaf] = &[
    l(&["event", "kind"], Str("state")),
    l(&["message"], Field("name")),
];
const GENERIC_LEAVES: &[Leaf] = &[l(&["event", "kind"], Str("event"))];
pub static GENERIC: Mapping = Mapping::new("mimecast", false, &[BASE, GENERIC_LEAVES], &[]);

pub static AWARENESS_CAMPAIGNS: Mapping =
    Mapping::new("mimecast", false, &[BASE, EMAIL_INFO, CAMPAIGN_LEAVES], &[]);

/// The mapping of a kind of records.
pub fn for_records(r: Records) -> &'static Mapping {
    match r {
        Records::Siem => &SIEM,
        Records::TtpUrl => &TTP_URL,
        Records::TtpAttachment => &TTP_ATTACHMENT,
        Records::TtpImpersonation => &TTP_IMPERSONATION,
        Records::Dlp => &DLP,
        Records::Rejection => &REJECTIONS,
        Records::HeldRelease => &HELD_RELEASE,
        Records::HeldMessage => &HOLD_LIST,
        Records::RemediationIncident => &REMEDIATION,
        Records::Audit => &AUDIT,
        Records::ArchiveSearch => &ARCHIVE_SEARCH,
        Records::ArchiveView => &ARCHIVE_VIEW,
        Records::ThreatIndicator => &THREAT_INTEL,
        Records::HoldSummary => &HOLD_SUMMARY,
        Records::DashboardNotification => &DASHBOARD,
        Records::EmailQueueSample => &EMAIL_QUEUES,
        Records::AwarenessCampaign => &AWARENESS_CAMPAIGNS,
        Records::AwarenessUser | Records::AwarenessSafeScore => &AWARENESS_USERS,
        Records::Generic => &GENERIC,
    }
}

/// An error record: `event.kind: pipeline_error`, `error.message` what went wrong,
/// `event.original` the start of the offending data, the context under `mimecast`.
pub fn encode_error(
    out: &mut Vec<u8>,
    source: &str,
    reason: &str,
    excerpt: &[u8],
    context: &[(&str, &str)],
) {
    let text = encode::excerpt_text(excerpt);
    let id = encode::error_id(source, reason, &text, context);
    let now = EventTime::now();
    let dataset = format!("mimecast.{source}");
    let leaves: Vec<(&[&str], Out)> = vec![
        (&["@timestamp"], Out::Str(super::rfc3339_ms(now).into())),
        (&["ecs", "version"], Out::Str(B(VERSION))),
        (&["error", "message"], Out::Str(B(reason))),
        (&["event", "dataset"], Out::Str(B(&dataset))),
        (&["event", "id"], Out::Str(B(&id))),
        (&["event", "kind"], Out::Str(B("pipeline_error"))),
        (&["event", "module"], Out::Str(B("mimecast"))),
        (&["event", "original"], Out::Str(B(&text))),
    ];
    encode::encode_tree(out, now, &leaves, Some(("mimecast", context)));
}
