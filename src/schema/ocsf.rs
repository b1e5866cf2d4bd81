//! The `ocsf` schema: OCSF 1.8.0 classes (decisions per record kind in docs/schemas.md).
//! - SIEM events: Email Activity (4009) with the security_control profile: the activity per
//!   type (Receive, Scan, Send, Trace), `direction_id`, `email.*` with `urls`/`files`,
//!   `action_id`, `disposition_id`, `is_alert`, `malware`, `policy`. Rejections and DLP too.
//! - Detections that are not an email's passage (TTP URL, attachment and impersonation hits,
//!   held messages, remediation incidents): Detection Finding (2004); TTP records that are not
//!   detections stay Email Activity (Scan).
//! - Audit and archive logs: API Activity (6003). Awareness tables: User Inventory Info (5003).
//!   Queue samples, summaries, notifications, campaigns and indicators: Base Event (0).
//!
//! Every record: `metadata` (product Mimecast, `uid` the record's stable id, `log_name` the
//! source), `time` (the record's own time, epoch ms), and what is not mapped under `unmapped`.

use super::map::{kind, l, Cond::*, Leaf, Mapping, V::*};
use super::Records;
use crate::encode::{self, EventTime};

pub const VERSION: &str = "1.8.0";

const BASE: &[Leaf] = &[
    l(&["metadata", "log_name"], Source),
    l(
        &["metadata", "product", "name"],
        Str("Mimecast Email Security"),
    ),
    l(&["metadata", "product", "vendor_name"], Str("Mimecast")),
    l(&["metadata", "uid"], Id),
    l(&["metadata", "version"], Str(VERSION)),
    l(&["time"], Time { ms: true }),
];

// Email Activity (4009) and its activities.
const EMAIL_ACTIVITY: &[Leaf] = &[
    l(&["category_name"], Str("Network Activity")),
    l(&["category_uid"], Int(4)),
    l(&["class_name"], Str("Email Activity")),
    l(&["class_uid"], Int(4009)),
    l(&["metadata", "profiles"], List(&["security_control"])),
];
macro_rules! email_activity {
    ($name:ident, $id:expr, $caption:expr) => {
        const $name: &[Leaf] = &[
            l(&["activity_id"], Int($id)),
            l(&["activity_name"], Str($caption)),
            l(&["type_name"], Str(concat!("Email Activity: ", $caption))),
            l(&["type_uid"], Int(400_900 + $id)),
        ];
    };
}
email_activity!(SEND, 1, "Send");
email_activity!(RECEIVE, 2, "Receive");
email_activity!(SCAN, 3, "Scan");
email_activity!(TRACE, 4, "Trace");
const OTHER_RELEASE: &[Leaf] = &[
    l(&["activity_id"], Int(99)),
    l(&["activity_name"], Str("Release")),
    l(&["type_name"], Str("Email Activity: Other")),
    l(&["type_uid"], Int(400_999)),
];

const DIRECTIONS: &[(&str, i64)] = &[("inbound", 1), ("outbound", 2), ("internal", 3)];
const DIRECTION_NAMES: &[(&str, &str)] = &[
    ("inbound", "Inbound"),
    ("outbound", "Outbound"),
    ("internal", "Internal"),
];

/// The security controls' verdict: (action_id, disposition_id, is_alert, severity_id).
macro_rules! verdict {
    ($action:expr, $action_name:expr, $disposition:expr, $disposition_name:expr, $alert:expr, $severity:expr) => {
        [
            l(&["action"], Str($action_name)),
            l(&["action_id"], Int($action)),
            l(&["disposition"], Str($disposition_name)),
            l(&["disposition_id"], Int($disposition)),
            l(&["is_alert"], Bool($alert)),
            l(&["severity_id"], Int($severity)),
        ]
    };
}

// SIEM events (Cloud Gateway and Cloud Integrated): the email, its endpoints.
const SIEM_EMAIL: &[Leaf] = &[
    l(
        &["direction"],
        Map("direction", DIRECTION_NAMES, Some("Unknown")),
    ),
    l(&["direction_id"], MapInt("direction", DIRECTIONS, 0)),
    l(&["dst_endpoint", "hostname"], Field("Hostname")),
    l(&["dst_endpoint", "ip"], Ip("destinationIp")),
    l(
        &["email", "from"],
        First(&[Email("senderHeader"), Email("senderEnvelope")]),
    ),
    l(&["email", "message_uid"], Field("messageId")),
    l(&["email", "size"], Num("emailSize")),
    l(&["email", "smtp_from"], Email("senderEnvelope")),
    l(&["email", "smtp_to"], Emails("recipients")),
    l(&["email", "subject"], Field("subject")),
    l(&["email", "to"], Emails("recipients")),
    l(&["email", "uid"], Field("aggregateId")),
    l(
        &["src_endpoint", "ip"],
        First(&[Ip("senderIp"), Ip("sourceIp")]),
    ),
];

const MALWARE_FOUND: Leaf = l(
    &["malware"],
    Arr(&[Obj(&[
        ("classification_ids", Ints(&[0])),
        ("name", Field("virusFound")),
    ])]),
);

const RECEIPT: &[Leaf] = &[
    l(
        &["action"],
        When(&[(Is("action", &["rej"]), "Denied"), (Always, "Allowed")]),
    ),
    l(
        &["action_id"],
        WhenInt(&[(Is("action", &["rej"]), 2), (Always, 1)]),
    ),
    l(
        &["disposition"],
        When(&[(Is("action", &["rej"]), "Rejected"), (Always, "Allowed")]),
    ),
    l(
        &["disposition_id"],
        WhenInt(&[(Is("action", &["rej"]), 25), (Always, 1)]),
    ),
    l(
        &["is_alert"],
        WhenBool(&[
            (Any(&[Is("action", &["rej"]), Present("virusFound")]), true),
            (Always, false),
        ]),
    ),
    l(
        &["severity_id"],
        WhenInt(&[
            (Present("virusFound"), 4),
            (Is("action", &["rej"]), 2),
            (Always, 1),
        ]),
    ),
    MALWARE_FOUND,
];
const PROCESS: &[Leaf] = &[
    l(
        &["action"],
        When(&[(Is("action", &["hld"]), "Denied"), (Always, "Allowed")]),
    ),
    l(
        &["action_id"],
        WhenInt(&[(Is("action", &["hld"]), 2), (Always, 1)]),
    ),
    l(
        &["disposition"],
        When(&[(Is("action", &["hld"]), "Quarantined"), (Always, "Allowed")]),
    ),
    l(
        &["disposition_id"],
        WhenInt(&[(Is("action", &["hld"]), 3), (Always, 1)]),
    ),
    l(
        &["is_alert"],
        WhenBool(&[(Is("action", &["hld"]), true), (Always, false)]),
    ),
    l(&["policy"], Obj(&[("name", Field("holdReason"))])),
    l(
        &["severity_id"],
        WhenInt(&[(Is("action", &["hld"]), 2), (Always, 1)]),
    ),
];
const DELIVERY: &[Leaf] = &[
    l(&["action"], Str("Allowed")),
    l(&["action_id"], Int(1)),
    l(
        &["disposition"],
        When(&[(Is("delivered", &["true"]), "Allowed"), (Always, "Delayed")]),
    ),
    l(
        &["disposition_id"],
        WhenInt(&[(Is("delivered", &["true"]), 1), (Always, 14)]),
    ),
    l(&["is_alert"], Bool(false)),
    l(&["severity_id"], Int(1)),
];
const JOURNAL: &[Leaf] = &verdict!(3, "Observed", 17, "Logged", false, 1);
const AV: &[Leaf] = &[
    l(&["action"], Str("Denied")),
    l(&["action_id"], Int(2)),
    l(&["disposition"], Str("Blocked")),
    l(&["disposition_id"], Int(2)),
    l(
        &["email", "files"],
        Arr(&[Obj(&[("name", Field("fileName")), ("type_id", Int(1))])]),
    ),
    l(&["is_alert"], Bool(true)),
    l(&["severity_id"], Int(4)),
    MALWARE_FOUND,
];
const SPAM: &[Leaf] = &verdict!(3, "Observed", 15, "Detected", true, 2);
const INTERNAL_PROTECT: &[Leaf] = &[
    l(&["action"], Str("Observed")),
    l(&["action_id"], Int(3)),
    l(&["disposition"], Str("Detected")),
    l(&["disposition_id"], Int(15)),
    l(
        &["email", "urls"],
        Arr(&[Obj(&[("url_string", Field("url"))])]),
    ),
    l(&["is_alert"], Bool(true)),
    l(&["severity_id"], Int(3)),
];
const IMPERSONATION_PROTECT: &[Leaf] = &[
    l(
        &["action"],
        When(&[
            (IsNot("action", &["none", "do_nothing"]), "Denied"),
            (Always, "Observed"),
        ]),
    ),
    l(
        &["action_id"],
        WhenInt(&[(IsNot("action", &["none", "do_nothing"]), 2), (Always, 3)]),
    ),
    l(&["disposition"], Str("Detected")),
    l(&["disposition_id"], Int(15)),
    l(&["is_alert"], Bool(true)),
    l(&["policy"], Obj(&[("name", Field("definition"))])),
    l(&["severity_id"], Int(3)),
];
const URL_PROTECT: &[Leaf] = &[
    l(
        &["action"],
        When(&[(Is("action", &["block"]), "Denied"), (Always, "Allowed")]),
    ),
    l(
        &["action_id"],
        WhenInt(&[(Is("action", &["block"]), 2), (Always, 1)]),
    ),
    l(
        &["disposition"],
        When(&[(Is("action", &["block"]), "Blocked"), (Always, "Allowed")]),
    ),
    l(
        &["disposition_id"],
        WhenInt(&[(Is("action", &["block"]), 2), (Always, 1)]),
    ),
    l(
        &["email", "urls"],
        Arr(&[Obj(&[("url_string", Field("url"))])]),
    ),
    l(
        &["is_alert"],
        WhenBool(&[(Is("action", &["block"]), true), (Always, false)]),
    ),
    l(
        &["severity_id"],
        WhenInt(&[(Is("action", &["block"]), 3), (Always, 1)]),
    ),
];
const ATTACHMENT_PROTECT: &[Leaf] = &[
    l(
        &["action"],
        When(&[
            (Is("result", &["malicious"]), "Denied"),
            (Always, "Allowed"),
        ]),
    ),
    l(
        &["action_id"],
        WhenInt(&[(Is("result", &["malicious"]), 2), (Always, 1)]),
    ),
    l(
        &["disposition"],
        When(&[
            (Is("result", &["malicious"]), "Blocked"),
            (Always, "Allowed"),
        ]),
    ),
    l(
        &["disposition_id"],
        WhenInt(&[(Is("result", &["malicious"]), 2), (Always, 1)]),
    ),
    l(
        &["email", "files"],
        Arr(&[Obj(&[("name", Field("fileName")), ("type_id", Int(1))])]),
    ),
    l(
        &["is_alert"],
        WhenBool(&[(Is("result", &["malicious"]), true), (Always, false)]),
    ),
    l(
        &["severity_id"],
        WhenInt(&[(Is("result", &["malicious"]), 4), (Always, 1)]),
    ),
    MALWARE_FOUND,
];
const URLCLICK_OBSERVED: &[Leaf] = &[
    l(&["action"], Str("Observed")),
    l(&["action_id"], Int(3)),
    l(&["disposition"], Str("Logged")),
    l(&["disposition_id"], Int(17)),
    l(
        &["email", "urls"],
        Arr(&[Obj(&[("url_string", Field("originalUrl"))])]),
    ),
    l(&["is_alert"], Bool(false)),
    l(&["severity_id"], Int(1)),
];
const OBSERVED: &[Leaf] = &verdict!(3, "Observed", 17, "Logged", false, 1);

/// A SIEM event names a sender or a recipient: an Email Activity can be made of it.
const ADDRESSED: crate::schema::map::Cond = Any(&[
    Present("senderEnvelope"),
    Present("senderHeader"),
    Present("recipients"),
]);

/// An Email Activity of these SIEM types, when the event names an address.
macro_rules! siem_email {
    ($types:expr, $activity:expr, $verdict:expr) => {
        kind(
            All(&[Is("type", $types), ADDRESSED]),
            &[EMAIL_ACTIVITY, SIEM_EMAIL, $activity, $verdict],
        )
    };
}

// SIEM detections that name no address (attachment, URL and AV checks often do not): findings.
const SIEM_FINDING: &[Leaf] = &[
    l(
        &["finding_info", "desc"],
        First(&[Field("url"), Field("fileName"), Field("virusFound")]),
    ),
    l(
        &["finding_info", "title"],
        When(&[
            (Is("type", &["av"]), "Mimecast AV: virus found"),
            (
                Is("type", &["attachment protect"]),
                "Mimecast Attachment Protect",
            ),
            (Is("type", &["url protect"]), "Mimecast URL Protect"),
            (
                Is("type", &["impersonation protect"]),
                "Mimecast Impersonation Protect",
            ),
            (Always, "Mimecast Internal Email Protect"),
        ]),
    ),
    l(&["finding_info", "uid"], Id),
    l(&["message"], Field("subject")),
    l(
        &["severity_id"],
        WhenInt(&[(Is("type", &["av"]), 4), (Always, 3)]),
    ),
    MALWARE_FOUND,
];
const SIEM_EVENT: &[Leaf] = &[l(&["message"], Field("subject"))];

pub static SIEM: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE],
    &[
        siem_email!(&["receipt"], RECEIVE, RECEIPT),
        siem_email!(&["process"], SCAN, PROCESS),
        siem_email!(&["delivery"], SEND, DELIVERY),
        siem_email!(&["journal"], TRACE, JOURNAL),
        siem_email!(&["av"], SCAN, AV),
        siem_email!(&["spam"], SCAN, SPAM),
        siem_email!(&["internal email protect"], SCAN, INTERNAL_PROTECT),
        siem_email!(&["impersonation protect"], SCAN, IMPERSONATION_PROTECT),
        siem_email!(&["url protect"], SCAN, URL_PROTECT),
        siem_email!(&["attachment protect"], SCAN, ATTACHMENT_PROTECT),
        siem_email!(&["urlclick"], SCAN, URLCLICK_OBSERVED),
        siem_email!(&["mailflow", "entities"], TRACE, OBSERVED),
        kind(
            Is(
                "type",
                &[
                    "av",
                    "attachment protect",
                    "url protect",
                    "impersonation protect",
                    "internal email protect",
                ],
            ),
            &[FINDING, SIEM_FINDING],
        ),
        // Address-less events of other types, and types this table does not know yet.
        kind(Always, &[BASE_EVENT, SIEM_EVENT]),
    ],
);

// Detection Finding (2004).
const FINDING: &[Leaf] = &[
    l(&["activity_id"], Int(1)),
    l(&["activity_name"], Str("Create")),
    l(&["category_name"], Str("Findings")),
    l(&["category_uid"], Int(2)),
    l(&["class_name"], Str("Detection Finding")),
    l(&["class_uid"], Int(2004)),
    l(&["is_alert"], Bool(true)),
    l(&["metadata", "profiles"], List(&["security_control"])),
    l(&["status_id"], Int(1)),
    l(&["status"], Str("New")),
    l(&["type_name"], Str("Detection Finding: Create")),
    l(&["type_uid"], Int(200_401)),
];

const TTP_URL_FINDING: &[Leaf] = &[
    l(
        &["finding_info", "title"],
        Str("Mimecast URL Protect: malicious URL"),
    ),
    l(&["finding_info", "uid"], Id),
    l(&["severity_id"], Int(4)),
    l(&["finding_info", "desc"], Field("url")),
    l(
        &["action"],
        When(&[(Is("action", &["block"]), "Denied"), (Always, "Observed")]),
    ),
    l(
        &["action_id"],
        WhenInt(&[(Is("action", &["block"]), 2), (Always, 3)]),
    ),
    l(&["message"], Field("subject")),
];
const TTP_URL_SCAN: &[Leaf] = &[
    l(
        &["direction"],
        Map("route", DIRECTION_NAMES, Some("Unknown")),
    ),
    l(&["direction_id"], MapInt("route", DIRECTIONS, 0)),
    l(&["email", "from"], Email("fromUserEmailAddress")),
    l(&["email", "message_uid"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(&["email", "to"], Emails("userEmailAddress")),
    l(
        &["email", "urls"],
        Arr(&[Obj(&[("url_string", Field("url"))])]),
    ),
    l(&["src_endpoint", "ip"], Ip("sendingIp")),
];
const TTP_ATTACHMENT_FINDING: &[Leaf] = &[
    l(
        &["finding_info", "title"],
        Str("Mimecast Attachment Protect: malicious attachment"),
    ),
    l(&["finding_info", "uid"], Id),
    l(&["severity_id"], Int(4)),
    l(&["finding_info", "desc"], Field("fileName")),
    l(&["message"], Field("subject")),
    l(
        &["malware"],
        Arr(&[Obj(&[
            ("classification_ids", Ints(&[0])),
            ("name", Field("fileName")),
        ])]),
    ),
];
const TTP_ATTACHMENT_SCAN: &[Leaf] = &[
    l(
        &["direction"],
        Map("route", DIRECTION_NAMES, Some("Unknown")),
    ),
    l(&["direction_id"], MapInt("route", DIRECTIONS, 0)),
    l(
        &["email", "files"],
        Arr(&[Obj(&[("name", Field("fileName")), ("type_id", Int(1))])]),
    ),
    l(&["email", "from"], Email("senderAddress")),
    l(&["email", "message_uid"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(&["email", "to"], Emails("recipientAddress")),
];
const TTP_IMPERSONATION_FINDING: &[Leaf] = &[
    l(
        &["finding_info", "title"],
        Str("Mimecast Impersonation Protect: impersonation attempt"),
    ),
    l(&["finding_info", "uid"], Id),
    l(&["severity_id"], Int(3)),
    l(&["finding_info", "desc"], Field("definition")),
    l(&["message"], Field("subject")),
];
const TTP_IMPERSONATION_SCAN: &[Leaf] = &[
    l(&["direction_id"], Int(1)),
    l(&["direction"], Str("Inbound")),
    l(&["email", "from"], Email("senderAddress")),
    l(&["email", "message_uid"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(&["email", "to"], Emails("recipientAddress")),
    l(&["src_endpoint", "ip"], Ip("senderIpAddress")),
];

pub static TTP_URL: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE],
    &[
        kind(
            Is("scanResult", &["malicious"]),
            &[FINDING, TTP_URL_FINDING],
        ),
        kind(Always, &[EMAIL_ACTIVITY, SCAN, TTP_URL_SCAN, OBSERVED]),
    ],
);

pub static TTP_ATTACHMENT: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE],
    &[
        kind(
            Is("result", &["malicious"]),
            &[FINDING, TTP_ATTACHMENT_FINDING],
        ),
        kind(
            Always,
            &[EMAIL_ACTIVITY, SCAN, TTP_ATTACHMENT_SCAN, OBSERVED],
        ),
    ],
);

pub static TTP_IMPERSONATION: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE],
    &[
        kind(
            Any(&[Is("taggedMalicious", &["true"]), AtLeast("hits", 1)]),
            &[FINDING, TTP_IMPERSONATION_FINDING],
        ),
        kind(
            Always,
            &[EMAIL_ACTIVITY, SCAN, TTP_IMPERSONATION_SCAN, OBSERVED],
        ),
    ],
);

const DLP_LEAVES: &[Leaf] = &[
    l(
        &["direction"],
        Map("route", DIRECTION_NAMES, Some("Unknown")),
    ),
    l(&["direction_id"], MapInt("route", DIRECTIONS, 0)),
    l(
        &["action"],
        When(&[
            (Is("action", &["block", "hold", "bounce"]), "Denied"),
            (Always, "Observed"),
        ]),
    ),
    l(
        &["action_id"],
        WhenInt(&[(Is("action", &["block", "hold", "bounce"]), 2), (Always, 3)]),
    ),
    l(
        &["disposition"],
        When(&[
            (Is("action", &["hold"]), "Quarantined"),
            (Is("action", &["block", "bounce"]), "Blocked"),
            (Always, "Logged"),
        ]),
    ),
    l(
        &["disposition_id"],
        WhenInt(&[
            (Is("action", &["hold"]), 3),
            (Is("action", &["block", "bounce"]), 2),
            (Always, 17),
        ]),
    ),
    l(&["email", "from"], Email("senderAddress")),
    l(&["email", "message_uid"], Field("messageId")),
    l(&["email", "subject"], Field("subject")),
    l(&["email", "to"], Emails("recipientAddress")),
    l(
        &["is_alert"],
        WhenBool(&[
            (Is("action", &["block", "hold", "bounce"]), true),
            (Always, false),
        ]),
    ),
    l(&["policy"], Obj(&[("name", Field("policy"))])),
    l(
        &["severity_id"],
        WhenInt(&[(Is("action", &["block", "hold", "bounce"]), 3), (Always, 1)]),
    ),
];
pub static DLP: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE, EMAIL_ACTIVITY, SCAN, DLP_LEAVES],
    &[],
);

const REJECTION: &[Leaf] = &[
    l(&["direction_id"], Int(1)),
    l(&["direction"], Str("Inbound")),
    l(&["email", "from"], Email("fromAddress")),
    l(&["email", "smtp_from"], Email("fromAddress")),
    l(&["email", "to"], Emails("toAddress")),
    l(&["email", "smtp_to"], Emails("toAddress")),
    l(&["message"], Field("info")),
    l(&["src_endpoint", "hostname"], Field("remoteName")),
    l(&["src_endpoint", "ip"], Ip("ipAddress")),
    l(&["status_detail"], Field("description")),
];
const REJECTED: &[Leaf] = &verdict!(2, "Denied", 25, "Rejected", true, 2);
pub static REJECTIONS: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE, EMAIL_ACTIVITY, RECEIVE, REJECTED, REJECTION],
    &[],
);

const RELEASE: &[Leaf] = &[
    l(
        &["direction"],
        Map("route", DIRECTION_NAMES, Some("Unknown")),
    ),
    l(&["direction_id"], MapInt("route", DIRECTIONS, 0)),
    l(&["email", "from"], Email("fromHdr.emailAddress")),
    l(&["email", "smtp_from"], Email("fromEnv.emailAddress")),
    l(&["email", "size"], Num("size")),
    l(&["email", "subject"], Field("subject")),
    l(&["email", "uid"], Field("id")),
    l(&["policy"], Obj(&[("name", Field("policy"))])),
    l(&["status_detail"], Field("status")),
];
const RELEASED: &[Leaf] = &[
    l(
        &["action"],
        When(&[(Is("status", &["released"]), "Allowed"), (Always, "Denied")]),
    ),
    l(
        &["action_id"],
        WhenInt(&[(Is("status", &["released"]), 1), (Always, 2)]),
    ),
    l(
        &["disposition"],
        When(&[
            (Is("status", &["released"]), "Allowed"),
            (Always, "Rejected"),
        ]),
    ),
    l(
        &["disposition_id"],
        WhenInt(&[(Is("status", &["released"]), 1), (Always, 25)]),
    ),
    l(&["is_alert"], Bool(false)),
    l(&["severity_id"], Int(1)),
];
pub static HELD_RELEASE: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE, EMAIL_ACTIVITY, OTHER_RELEASE, RELEASE, RELEASED],
    &[],
);

const HOLD: &[Leaf] = &[
    l(&["finding_info", "desc"], Field("subject")),
    l(
        &["finding_info", "title"],
        First(&[Field("reason"), Str("Mimecast: message held")]),
    ),
    l(&["finding_info", "uid"], First(&[Field("id"), Id])),
    l(&["message"], Field("reason")),
    l(&["severity_id"], Int(2)),
];
pub static HOLD_LIST: Mapping = Mapping::new("unmapped", true, &[BASE, FINDING, HOLD], &[]);

const INCIDENT: &[Leaf] = &[
    l(&["finding_info", "desc"], Field("code")),
    l(
        &["finding_info", "title"],
        First(&[Field("reason"), Str("Mimecast threat remediation incident")]),
    ),
    l(&["finding_info", "uid"], First(&[Field("id"), Id])),
    l(&["message"], Field("reason")),
    l(&["severity_id"], Int(3)),
];
const INCIDENT_UPDATED: &[Leaf] = &[
    l(&["activity_id"], Int(2)),
    l(&["activity_name"], Str("Update")),
    l(&["type_name"], Str("Detection Finding: Update")),
    l(&["type_uid"], Int(200_402)),
];
pub static REMEDIATION: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE, FINDING, INCIDENT],
    &[kind(AtLeast("restored", 1), &[INCIDENT_UPDATED])],
);

// API Activity (6003).
const API_ACTIVITY: &[Leaf] = &[
    l(&["category_name"], Str("Application Activity")),
    l(&["category_uid"], Int(6)),
    l(&["class_name"], Str("API Activity")),
    l(&["class_uid"], Int(6003)),
    l(&["severity_id"], Int(1)),
];
const API_READ: &[Leaf] = &[
    l(&["activity_id"], Int(2)),
    l(&["activity_name"], Str("Read")),
    l(&["type_name"], Str("API Activity: Read")),
    l(&["type_uid"], Int(600_302)),
];
const AUDIT_LEAVES: &[Leaf] = &[
    l(&["activity_id"], Int(99)),
    l(
        &["activity_name"],
        First(&[Field("auditType"), Str("Other")]),
    ),
    l(&["actor", "user", "email_addr"], Email("user")),
    l(&["actor", "user", "name"], Field("user")),
    l(
        &["api", "operation"],
        First(&[Field("auditType"), Str("unknown")]),
    ),
    l(&["api", "service", "name"], Str("Mimecast Administration")),
    l(&["message"], Field("eventInfo")),
    l(
        &["src_endpoint", "svc_name"],
        Str("Mimecast Administration"),
    ),
    l(&["type_name"], Str("API Activity: Other")),
    l(&["type_uid"], Int(600_399)),
];
pub static AUDIT: Mapping =
    Mapping::new("unmapped", true, &[BASE, API_ACTIVITY, AUDIT_LEAVES], &[]);

const ARCHIVE_SEARCH_LEAVES: &[Leaf] = &[
    l(&["actor", "user", "email_addr"], Email("emailAddr")),
    l(&["actor", "user", "name"], Field("emailAddr")),
    l(&["api", "operation"], Str("search")),
    l(&["api", "service", "name"], Str("Mimecast Archive")),
    l(&["message"], Field("description")),
    l(&["src_endpoint", "svc_name"], Str("Mimecast Archive")),
];
pub static ARCHIVE_SEARCH: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE, API_ACTIVITY, API_READ, ARCHIVE_SEARCH_LEAVES],
    &[],
);
const ARCHIVE_VIEW_LEAVES: &[Leaf] = &[
    l(&["actor", "user", "email_addr"], Email("viewer")),
    l(&["actor", "user", "name"], Field("viewer")),
    l(&["api", "operation"], Str("view")),
    l(&["api", "service", "name"], Str("Mimecast Archive")),
    l(&["message"], Field("subject")),
    l(&["src_endpoint", "svc_name"], Str("Mimecast Archive")),
];
pub static ARCHIVE_VIEW: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE, API_ACTIVITY, API_READ, ARCHIVE_VIEW_LEAVES],
    &[],
);

// User Inventory Info (5003): the awareness tables, one user per record.
const USER_INVENTORY: &[Leaf] = &[
    l(&["activity_id"], Int(2)),
    l(&["activity_name"], Str("Collect")),
    l(&["category_name"], Str("Discovery")),
    l(&["category_uid"], Int(5)),
    l(&["class_name"], Str("User Inventory Info")),
    l(&["class_uid"], Int(5003)),
    l(&["severity_id"], Int(1)),
    l(&["type_name"], Str("User Inventory Info: Collect")),
    l(&["type_uid"], Int(500_302)),
    l(
        &["user", "email_addr"],
        First(&[Email("email"), Email("emailAddress")]),
    ),
    l(&["user", "full_name"], Field("name")),
    l(
        &["user", "name"],
        First(&[Field("email"), Field("emailAddress"), Field("name")]),
    ),
    l(&["user", "uid"], Field("userId")),
];
const SAFE_SCORE_RISK: &[Leaf] = &[
    l(&["user", "risk_level"], Field("risk")),
    l(
        &["user", "risk_level_id"],
        MapInt(
            "risk",
            &[("a", 0), ("b", 1), ("c", 2), ("d", 3), ("f", 4)],
            99,
        ),
    ),
];
pub static AWARENESS_USERS: Mapping = Mapping::new("unmapped", true, &[BASE, USER_INVENTORY], &[]);
pub static AWARENESS_SAFE_SCORE: Mapping = Mapping::new(
    "unmapped",
    true,
    &[BASE, USER_INVENTORY, SAFE_SCORE_RISK],
    &[],
);

// Base Event (0): what has no better class.
const BASE_EVENT: &[Leaf] = &[
    l(&["activity_id"], Int(99)),
    l(&["activity_name"], Str("Other")),
    l(&["category_name"], Str("Uncategorized")),
    l(&["category_uid"], Int(0)),
    l(&["class_name"], Str("Base Event")),
    l(&["class_uid"], Int(0)),
    l(&["severity_id"], Int(1)),
    l(&["type_name"], Str("Base Event: Other")),
    l(&["type_uid"], Int(99)),
];
const NOTIFICATION: &[Leaf] = &[l(
    &["message"],
    First(&[Field("title"), Field("displayMessage")]),
)];
pub static BASE_ONLY: Mapping = Mapping::new("unmapped", true, &[BASE, BASE_EVENT], &[]);
pub static DASHBOARD: Mapping =
    Mapping::new("unmapped", true, &[BASE, BASE_EVENT, NOTIFICATION], &[]);

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
        Records::AwarenessSafeScore => &AWARENESS_SAFE_SCORE,
        Records::AwarenessUser => &AWARENESS_USERS,
        Records::DashboardNotification => &DASHBOARD,
        Records::EmailQueueSample
        | Records::HoldSummary
        | Records::AwarenessCampaign
        | Records::ThreatIndicator
        | Records::Generic => &BASE_ONLY,
    }
}

/// An error record: a Base Event whose `message` says what went wrong and whose `raw_data`
/// holds the start of the offending data.
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
    let leaves: Vec<(&[&str], encode::Out)> = {
        use encode::Out::{Int as I, Str as S};
        use std::borrow::Cow::Borrowed as B;
        vec![
            (&["activity_id"], I(99)),
            (&["category_uid"], I(0)),
            (&["class_uid"], I(0)),
            (&["message"], S(B(reason))),
            (&["metadata", "log_name"], S(B(source))),
            (
                &["metadata", "product", "name"],
                S(B("Mimecast Email Security")),
            ),
            (&["metadata", "product", "vendor_name"], S(B("Mimecast"))),
            (&["metadata", "uid"], S(B(&id))),
            (&["metadata", "version"], S(B(VERSION))),
            (&["raw_data"], S(B(&text))),
            (&["severity_id"], I(3)),
            (&["status_id"], I(2)),
            (&["time"], I(super::epoch_ms(now))),
            (&["type_uid"], I(99)),
        ]
    };
    encode::encode_tree(out, now, &leaves, Some(("unmapped", context)));
}
