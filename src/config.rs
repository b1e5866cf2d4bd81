//! Plugin properties -> validated configuration. Every problem is reported at once, each
//! naming the property, the bad value and what is allowed.

use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.services.mimecast.com";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/fluent-bit/mimecast";

/// The ten Cloud Gateway SIEM log types.
pub const CG_TYPES: &[&str] = &[
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
];

/// The Cloud Integrated SIEM log types.
pub const CI_TYPES: &[&str] = &["entities", "mailflow", "urlclick"];

/// Log sources this build can collect: the names of [`crate::sources::REGISTRY`].
pub static SOURCES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| crate::sources::names().collect());

pub const THREAT_FEEDS: &[&str] = &["malware_customer", "malware_grid"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiemMode {
    Batch,
    Stream,
}

/// How records reach Fluent Bit (`handoff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffMode {
    /// As they come where the host is one this is verified on, once a second elsewhere.
    Auto,
    /// As they come wherever the host has what it takes (the operator vouches for it).
    Event,
    /// Once a second, at the proxy's collect.
    Collect,
}

/// One property: its documentation (README table, `mimecast-check`, and on hosts that take one,
/// the config map) and how its value is read. An unset property is read as its default.
pub struct Property {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub description: &'static str,
    parse: Parse,
}

/// Reads one property's value (its default when unset; None when it has none) into the draft,
/// adding what is wrong with it to the problems (named after the property by the caller).
type Parse = fn(&mut Draft, Option<&str>, &mut Vec<String>);

pub const PROPERTIES: &[Property] = &[
    Property { name: "client_id", default: None, parse: parse::client_id, description: "Mimecast API 2.0 client id (required)." },
    Property { name: "client_secret", default: None, parse: parse::client_secret, description: "Mimecast API 2.0 client secret (required unless client_secret_file is set); use ${ENV_VAR} to keep it out of the file." },
    Property { name: "client_secret_file", default: None, parse: parse::client_secret_file, description: "Path of a file whose first line is the client secret." },
    Property { name: "base_url", default: Some(DEFAULT_BASE_URL), parse: parse::base_url, description: "API gateway: https://api.services.mimecast.com (global), https://uk-api.services.mimecast.com or https://us-api.services.mimecast.com. https is required except for loopback addresses." },
    Property { name: "sources", default: Some("siem_cg"), parse: parse::sources, description: "Comma-separated log sources (the README's sources table lists them all), e.g. siem_cg, siem_ci, ttp_url, audit, dlp, threat_intel." },
    Property { name: "schema", default: Some("raw"), parse: parse::schema, description: "Field names of the records: raw (Mimecast's own), ecs (Elastic Common Schema, the original under mimecast.*) or ocsf (OCSF 1.x classes, what is not mapped under unmapped). Every schema carries a stable record id: mimecast_id, event.id or metadata.uid." },
    Property { name: "siem_types", default: Some("all"), parse: parse::siem_types, description: "Comma-separated Cloud Gateway SIEM types, or all: receipt, process, delivery, av, spam, journal, internal email protect, impersonation protect, url protect, attachment protect." },
    Property { name: "siem_ci_types", default: Some("entities, mailflow, urlclick"), parse: parse::siem_ci_types, description: "Comma-separated Cloud Integrated SIEM types, or all." },
    Property { name: "siem_mode", default: Some("batch"), parse: parse::siem_mode, description: "batch (gzip files, recommended by Mimecast) or stream (events inline, last 24 hours only)." },
    Property { name: "overlap", default: Some("30m"), parse: parse::overlap, description: "The /api/... log sources read this much before their last position again, for records Mimecast makes visible late (audit); records already emitted are not emitted again." },
    Property { name: "threat_intel_feeds", default: Some("malware_customer, malware_grid"), parse: parse::threat_intel_feeds, description: "Threat-intel feeds to collect." },
    Property { name: "threat_intel_format", default: Some("stix"), parse: parse::threat_intel_format, description: "stix (one record per indicator, related objects resolved) or csv (one record per row)." },
    Property { name: "poll_interval", default: Some("5m"), parse: parse::poll_interval, description: "Wait between polls once a source has caught up (s, m, h, d suffixes)." },
    Property { name: "awareness_interval", default: Some("12h"), parse: parse::awareness_interval, description: "How often the awareness_* sources take a snapshot (their data changes slowly; SAFE scores are recalculated daily), kept across restarts (5m to 7d)." },
    Property { name: "initial_lookback", default: Some("24h"), parse: parse::initial_lookback, description: "How far back the first run starts; each source caps it at its API retention (7d for SIEM batch)." },
    Property { name: "page_size", default: Some("100"), parse: parse::page_size, description: "Items per API page (1-500)." },
    Property { name: "request_timeout", default: Some("30s"), parse: parse::request_timeout, description: "Timeout of one HTTP request, including a batch file download." },
    Property { name: "proxy", default: None, parse: parse::proxy, description: "HTTP(S) proxy for all requests, e.g. http://user:password@proxy.example:3128 (credentials are kept secret). Without it, HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment apply." },
    Property { name: "ca_file", default: None, parse: parse::ca_file, description: "Extra PEM CA certificate(s) to trust, for TLS-inspecting proxies; the system trust store is always used too." },
    Property { name: "state_dir", default: Some(DEFAULT_STATE_DIR), parse: parse::state_dir, description: "Directory for the saved positions (one small JSON file per instance); must be writable." },
    Property { name: "state_sync", default: Some("normal"), parse: parse::state_sync, description: "When the saved positions are synced to the disk, for a power loss or kernel crash (a process crash loses nothing either way): normal, at most once a second and at stop, the positions going back by about a second after a power loss (records come again, none lost); full, at every write, as before records are taken on, at a cost in CPU and latency on a slow disk." },
    Property { name: "state_reset", default: None, parse: parse::state_reset, description: "Set to a new value (e.g. today's date) to forget all saved positions once and start again from initial_lookback." },
    Property { name: "startup_check", default: Some("off"), parse: parse::startup_check, description: "on: when the instance starts, probe every selected source once and log a table of what works (as mimecast-check prints it)." },
    Property { name: "buffer_max_size", default: Some("32M"), parse: parse::buffer_max_size, description: "Most bytes of records handed to Fluent Bit at once, and the most the one buffer the records wait in holds (k, M suffixes; 64k-64M). With handoff collect, it caps how fast a backlog drains (this much a second)." },
    Property { name: "rate_limit", default: Some("80M"), parse: parse::rate_limit, description: "Most bytes of records handed to Fluent Bit a second (k, M suffixes), or 0 for no limit. Fluent Bit holds what an input appended until its outputs flush (the service's flush interval), so this bounds the host's memory while a backlog drains, at about this much per second of flush interval; the default drains about 170,000 SIEM records a second." },
    Property { name: "handoff", default: Some("auto"), parse: parse::handoff, description: "How records reach Fluent Bit: event (as they come, through an event collector on the instance's thread: less memory, faster), collect (once a second, at the proxy's collect, at most buffer_max_size each time), or auto: event on the Fluent Bit versions it is verified on (5.1), collect elsewhere." },
    Property { name: "requests_per_second", default: Some("0"), parse: parse::requests_per_second, description: "Most requests per second this plugin sends to the Mimecast API for one client id, across all its instances and sources (token requests included, batch-file downloads not), e.g. 0.5 for 30 a minute; when instances differ, the lowest applies. 0: no cap of our own (429s are still honoured)." },
    Property { name: "batch_concurrency", default: Some("4"), parse: parse::batch_concurrency, description: "SIEM batch files each type downloads at once: the one being decoded and up to this many minus one ahead of it, held compressed within 4 MiB per instance (1-16)." },
];

#[derive(Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: SecretString,
    pub base_url: String,
    /// The selected sources, each once, in the order given.
    pub sources: Vec<&'static dyn crate::sources::Source>,
    pub siem_types: Vec<String>,
    pub siem_ci_types: Vec<String>,
    pub siem_mode: SiemMode,
    pub schema: crate::schema::Schema,
    pub poll_interval: Duration,
    pub initial_lookback: Duration,
    pub awareness_interval: Duration,
    pub page_size: u32,
    pub request_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub buffer_max_size: usize,
    /// Most bytes of records handed to the host a second; 0: no limit.
    pub rate_limit: u64,
    pub handoff: HandoffMode,
    pub batch_concurrency: usize,
    pub state_dir: PathBuf,
    pub state_reset: Option<String>,
    pub state_sync: crate::state::StateSync,
    pub overlap: Duration,
    pub threat_intel_feeds: Vec<String>,
    pub threat_intel_format: String,
    pub startup_check: bool,
    /// Our own cap on requests per second per client id (None: none).
    pub requests_per_second: Option<f64>,
    /// Proxy URL; may carry credentials, so it is kept secret.
    pub proxy: Option<SecretString>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("base_url", &self.base_url)
            .field("sources", &self.source_names())
            .field("siem_types", &self.siem_types)
            .field("siem_mode", &self.siem_mode)
            .field("poll_interval", &self.poll_interval)
            .field("initial_lookback", &self.initial_lookback)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// Parses a Fluent Bit style duration: `30s`, `5m`, `1h`, `2d`, or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 's' | 'S') => (&s[..i], 1),
        (i, 'm' | 'M') => (&s[..i], 60),
        (i, 'h' | 'H') => (&s[..i], 3600),
        (i, 'd' | 'D') => (&s[..i], 86_400),
        _ => (s, 1),
    };
    let n: u64 = num.trim().parse().ok()?;
    n.checked_mul(mult).map(Duration::from_secs)
}

/// Parses a Fluent Bit style size: `512k`, `8M`, `1G`, or plain bytes.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let t = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1024),
        'm' => (&t[..t.len() - 1], 1024 * 1024),
        'g' => (&t[..t.len() - 1], 1024 * 1024 * 1024),
        _ => (t, 1),
    };
    num.trim().parse::<usize>().ok()?.checked_mul(mult)
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Checks a base URL: absolute http(s) without path, query or credentials; https unless loopback.
pub fn check_base_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("'{raw}' is not an absolute URL; use e.g. {DEFAULT_BASE_URL}"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "'{raw}' must be scheme://host[:port] only, with no path, query or user info"
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("'{raw}' has an unclosed [ in its host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!("'{raw}' has an invalid port"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(url.to_string()),
        "http" if is_loopback_host(host) => Ok(url.to_string()),
        "http" => Err(format!(
            "'{raw}' uses plain http; Mimecast credentials may only travel over https (http is allowed for loopback test servers only)"
        )),
        other => Err(format!("'{raw}' has scheme '{other}'; use https")),
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A configuration being read: the secret's two properties are resolved once both are known.
struct Draft {
    c: Config,
    secret: Option<String>,
    secret_file: Option<String>,
}

/// One parse function per property (see [`PROPERTIES`]).
mod parse {
    use super::*;

    pub fn client_id(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.client_id = v.map(str::trim).unwrap_or_default().to_string();
        if d.c.client_id.is_empty() {
            e.push("is required: the client id of your Mimecast API 2.0 application (Administration > Services > API and Platform Integrations)".into());
        }
    }

    pub fn client_secret(d: &mut Draft, v: Option<&str>, _: &mut Vec<String>) {
        d.secret = v.map(str::to_string);
    }

    pub fn client_secret_file(d: &mut Draft, v: Option<&str>, _: &mut Vec<String>) {
        d.secret_file = v.map(str::to_string);
    }

    pub fn base_url(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        match check_base_url(v.unwrap_or(DEFAULT_BASE_URL)) {
            Ok(u) => d.c.base_url = u,
            Err(m) => e.push(m),
        }
    }

    pub fn sources(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        let names = list(v.unwrap_or_default());
        if names.is_empty() {
            e.push(format!("is empty; choose from: {}", SOURCES.join(", ")));
        }
        for name in &names {
            match crate::sources::lookup(name) {
                Some(src) if d.c.sources.iter().any(|x| x.name() == src.name()) => {}
                Some(src) => d.c.sources.push(src),
                None => e.push(format!(
                    "'{name}' is not a known source; choose from: {}",
                    SOURCES.join(", ")
                )),
            }
        }
    }

    /// A list of SIEM types from `allowed`, or `all` of them.
    fn types(v: Option<&str>, allowed: &[&str], e: &mut Vec<String>) -> Vec<String> {
        let mut v = list(v.unwrap_or_default());
        if v == ["all"] {
            v = allowed.iter().map(|s| s.to_string()).collect();
        }
        for t in &v {
            if !allowed.contains(&t.as_str()) {
                e.push(format!(
                    "'{t}' is not a SIEM type here; choose from: {}",
                    allowed.join(", ")
                ));
            }
        }
        if v.is_empty() {
            e.push(format!("is empty; choose from: {}", allowed.join(", ")));
        }
        v.dedup();
        v
    }

    pub fn siem_types(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.siem_types = types(v, CG_TYPES, e);
    }

    pub fn siem_ci_types(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.siem_ci_types = types(v, CI_TYPES, e);
    }

    pub fn schema(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        match crate::schema::Schema::parse(v.unwrap_or("raw")) {
            Some(s) => d.c.schema = s,
            None => e.push(format!(
                "'{}' is not a schema; choose raw, ecs or ocsf",
                v.unwrap_or_default()
            )),
        }
    }

    pub fn siem_mode(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("batch") => d.c.siem_mode = SiemMode::Batch,
            Some("stream") => d.c.siem_mode = SiemMode::Stream,
            Some(other) => e.push(format!("'{other}' is not batch or stream")),
        }
    }

    /// A duration from `min` to `max` seconds.
    fn duration(v: Option<&str>, min: u64, max: u64, e: &mut Vec<String>) -> Duration {
        let v = v.unwrap_or_default();
        match parse_duration(v) {
            Some(d) if d.as_secs() >= min && d.as_secs() <= max => d,
            Some(_) => {
                e.push(format!("'{v}' is out of range; allowed {min}s to {max}s"));
                Duration::ZERO
            }
            None => {
                e.push(format!(
                    "'{v}' is not a duration; use a number with s, m, h or d (e.g. 30s, 5m, 1h)"
                ));
                Duration::ZERO
            }
        }
    }

    pub fn overlap(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.overlap = duration(v, 0, 86_400, e);
    }

    pub fn poll_interval(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.poll_interval = duration(v, 1, 86_400, e);
    }

    pub fn awareness_interval(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.awareness_interval = duration(v, 300, 7 * 86_400, e);
    }

    pub fn initial_lookback(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.initial_lookback = duration(v, 0, 60 * 86_400, e);
    }

    pub fn request_timeout(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.request_timeout = duration(v, 1, 600, e);
    }

    /// A whole number from `min` to `max`.
    fn whole(v: Option<&str>, min: usize, max: usize, e: &mut Vec<String>) -> usize {
        let v = v.unwrap_or_default();
        match v.trim().parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                e.push(format!("'{v}' is not a whole number from {min} to {max}"));
                min
            }
        }
    }

    pub fn page_size(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.page_size = whole(v, 1, 500, e) as u32;
    }

    pub fn requests_per_second(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        let v = v.unwrap_or_default();
        match v.trim().parse::<f64>() {
            Ok(0.0) => d.c.requests_per_second = None,
            Ok(r) if (0.01..=1000.0).contains(&r) => d.c.requests_per_second = Some(r),
            _ => e.push(format!(
                "'{v}' is not a rate from 0.01 to 1000 requests per second (e.g. 0.5 for 30 a minute), or 0 for no cap"
            )),
        }
    }

    pub fn batch_concurrency(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.batch_concurrency = whole(v, 1, 16, e);
    }

    pub fn buffer_max_size(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        let v = v.unwrap_or_default();
        match parse_size(v) {
            Some(n) if (64 << 10..=64 << 20).contains(&n) => d.c.buffer_max_size = n,
            _ => e.push(format!("'{v}' is not a size from 64k to 64M")),
        }
    }

    pub fn rate_limit(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        let v = v.unwrap_or_default();
        match parse_size(v) {
            Some(0) => d.c.rate_limit = 0,
            Some(n) if n >= 1 << 20 => d.c.rate_limit = n as u64,
            _ => e.push(format!(
                "'{v}' is not 0 (no limit) or a size of at least 1M (bytes a second)"
            )),
        }
    }

    pub fn handoff(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("auto") => d.c.handoff = HandoffMode::Auto,
            Some("event") => d.c.handoff = HandoffMode::Event,
            Some("collect") => d.c.handoff = HandoffMode::Collect,
            Some(other) => e.push(format!("'{other}' is not auto, event or collect")),
        }
    }

    pub fn threat_intel_feeds(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        d.c.threat_intel_feeds = list(v.unwrap_or_default());
        for f in &d.c.threat_intel_feeds {
            if !THREAT_FEEDS.contains(&f.as_str()) {
                e.push(format!(
                    "'{f}' is not a feed; choose from: {}",
                    THREAT_FEEDS.join(", ")
                ));
            }
        }
    }

    pub fn threat_intel_format(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        let f = v.unwrap_or_default().trim().to_ascii_lowercase();
        if f != "stix" && f != "csv" {
            e.push(format!("'{f}' is not stix or csv"));
        }
        d.c.threat_intel_format = f;
    }

    pub fn startup_check(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("off" | "false" | "no" | "0") => d.c.startup_check = false,
            Some("on" | "true" | "yes" | "1") => d.c.startup_check = true,
            Some(other) => e.push(format!("'{other}' is not on or off")),
        }
    }

    pub fn proxy(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        let Some(p) = v.map(str::trim) else { return };
        let ok = p.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") && !rest.is_empty()
        });
        if !ok {
            // never echo the value: it may hold a password
            e.push("must be http://[user:password@]host:port or https://...".into());
        }
        d.c.proxy = Some(SecretString::from(p.to_string()));
    }

    pub fn ca_file(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        let Some(p) = v.map(PathBuf::from) else {
            return;
        };
        if let Err(err) = std::fs::metadata(&p) {
            e.push(format!("cannot read '{}': {err}", p.display()));
        }
        d.c.ca_file = Some(p);
    }

    pub fn state_dir(d: &mut Draft, v: Option<&str>, _: &mut Vec<String>) {
        d.c.state_dir = PathBuf::from(v.unwrap_or(DEFAULT_STATE_DIR));
    }

    pub fn state_sync(d: &mut Draft, v: Option<&str>, e: &mut Vec<String>) {
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("normal") => d.c.state_sync = crate::state::StateSync::Normal,
            Some("full") => d.c.state_sync = crate::state::StateSync::Full,
            Some(other) => e.push(format!("'{other}' is not normal or full")),
        }
    }

    pub fn state_reset(d: &mut Draft, v: Option<&str>, _: &mut Vec<String>) {
        d.c.state_reset = v.map(str::to_string);
    }
}

impl Draft {
    fn new() -> Draft {
        Draft {
            c: Config {
                client_id: String::new(),
                client_secret: SecretString::from(String::new()),
                base_url: String::new(),
                sources: Vec::new(),
                siem_types: Vec::new(),
                siem_ci_types: Vec::new(),
                siem_mode: SiemMode::Batch,
                schema: crate::schema::Schema::Raw,
                poll_interval: Duration::ZERO,
                initial_lookback: Duration::ZERO,
                awareness_interval: Duration::ZERO,
                page_size: 0,
                request_timeout: Duration::ZERO,
                ca_file: None,
                buffer_max_size: 0,
                rate_limit: 0,
                handoff: HandoffMode::Auto,
                batch_concurrency: 0,
                state_dir: PathBuf::new(),
                state_reset: None,
                state_sync: crate::state::StateSync::Normal,
                overlap: Duration::ZERO,
                threat_intel_feeds: Vec::new(),
                threat_intel_format: String::new(),
                startup_check: false,
                requests_per_second: None,
                proxy: None,
            },
            secret: None,
            secret_file: None,
        }
    }

    /// The client secret from `client_secret` or the first line of `client_secret_file`.
    fn resolve_secret(&mut self, err: &mut impl FnMut(&str, String)) {
        let secret = match (self.secret.take(), self.secret_file.take()) {
            (Some(s), None) => Some(s),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => match text.lines().next().map(str::trim).filter(|l| !l.is_empty()) {
                    Some(line) => Some(line.to_string()),
                    None => {
                        err(
                            "client_secret_file",
                            format!("'{path}' is empty; its first line must be the client secret"),
                        );
                        None
                    }
                },
                Err(e) => {
                    err("client_secret_file", format!("cannot read '{path}': {e}"));
                    None
                }
            },
            (Some(_), Some(_)) => {
                err(
                    "client_secret",
                    "set either client_secret or client_secret_file, not both".into(),
                );
                None
            }
            (None, None) => {
                err("client_secret", "is required (or client_secret_file): the client secret of your Mimecast API 2.0 application; use ${ENV_VAR} to keep it out of the file".into());
                None
            }
        };
        self.c.client_secret = SecretString::from(secret.unwrap_or_default());
    }
}

impl Config {
    /// Builds the configuration from a property lookup (`input_get_property` in the plugin):
    /// each property of [`PROPERTIES`] read by its own function, unset ones as their default.
    /// Every problem is reported at once.
    pub fn from_properties(get: impl Fn(&str) -> Option<String>) -> Result<Config, Vec<String>> {
        let mut errors = Vec::new();
        let mut err = |prop: &str, msg: String| errors.push(format!("property '{prop}': {msg}"));
        let mut d = Draft::new();
        for p in PROPERTIES {
            let value = get(p.name);
            let mut problems = Vec::new();
            (p.parse)(&mut d, value.as_deref().or(p.default), &mut problems);
            for m in problems {
                err(p.name, m);
            }
        }
        d.resolve_secret(&mut err);
        if errors.is_empty() {
            Ok(d.c)
        } else {
            Err(errors)
        }
    }

    /// What this instance collects, for naming its state file.
    pub fn selection(&self) -> String {
        let mut parts: Vec<String> = self.sources.iter().map(|s| s.selection(self)).collect();
        parts.sort();
        parts.join(";")
    }

    /// The names of the selected sources.
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.name()).collect()
    }
}

/// Keys Fluent Bit keeps for itself on every input (`flb_input_set_property`, 5.1.1): they
/// configure the instance and never reach the plugin. Matched case-insensitively, as Fluent Bit
/// does.
pub const HOST_KEYS: &[&str] = &[
    "name",
    "tag",
    "alias",
    "log_level",
    "log_suppress_interval",
    "routable",
    "mem_buf_limit",
    "storage.type",
    "storage.pause_on_chunks_overlimit",
    "threaded",
    "rate_window",
    "listen",
    "host",
    "port",
    "ipv6",
    "tls",
];

/// Families of keys Fluent Bit keeps for itself: every key starting with one of these.
pub const HOST_KEY_PREFIXES: &[&str] = &["thread.ring_buffer.", "rate_gate", "net.", "tls."];

/// True for a key Fluent Bit keeps for itself (see [`HOST_KEYS`], [`HOST_KEY_PREFIXES`]).
pub fn is_host_key(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase();
    HOST_KEYS.contains(&k.as_str()) || HOST_KEY_PREFIXES.iter().any(|p| k.starts_with(p))
}

/// True for a key an input section may carry: one of the plugin's [`PROPERTIES`] or a key
/// Fluent Bit keeps for itself. Case-insensitive.
pub fn is_known_key(key: &str) -> bool {
    let k = key.trim().to_ascii_lowercase();
    PROPERTIES.iter().any(|p| p.name == k) || is_host_key(&k)
}

/// Edit distance counting an insertion, a deletion, a substitution or a swap of two adjacent
/// characters as one step (optimal string alignment form of Damerau-Levenshtein).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for swaps), the previous one and the current one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca) {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The valid key nearest to a misspelt one: a plugin property or a key Fluent Bit keeps, within
/// 1 edit for keys of up to 4 characters, 2 up to 8, 3 beyond; None when nothing is that near.
/// Plugin properties win ties.
pub fn nearest_property(key: &str) -> Option<&'static str> {
    let k = key.trim().to_ascii_lowercase();
    let cutoff = match k.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    PROPERTIES
        .iter()
        .map(|p| p.name)
        .chain(HOST_KEYS.iter().copied())
        .map(|name| (edit_distance(&k, name), name))
        .filter(|(d, _)| *d <= cutoff)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// The message for a key that is neither a plugin property nor one Fluent Bit keeps: the
/// nearest valid name, or every valid one when none is near. Names the key only (never a value).
pub fn unknown_key_message(key: &str) -> String {
    match nearest_property(key) {
        Some(near) => format!("unknown property '{key}': did you mean '{near}'?"),
        None => format!(
            "unknown property '{key}': the mimecast input takes {}; Fluent Bit's own keys ({}, {}*) are accepted too",
            PROPERTIES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
            HOST_KEYS.join(", "),
            HOST_KEY_PREFIXES.join("*, "),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_properties(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[("client_id", "id"), ("client_secret", "s3cr3t")]).unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.source_names(), vec!["siem_cg"]);
        assert_eq!(c.siem_types.len(), 10);
        assert_eq!(c.poll_interval, Duration::from_secs(300));
        assert_eq!(c.initial_lookback, Duration::from_secs(86_400));
        assert_eq!(c.page_size, 100);
        assert_eq!(c.buffer_max_size, 32 << 20);
        assert_eq!(c.rate_limit, 80 << 20);
        assert_eq!(c.batch_concurrency, 4);
        assert_eq!(c.siem_mode, SiemMode::Batch);
        assert!(
            !format!("{c:?}").contains("s3cr3t"),
            "secret never in Debug"
        );
    }

    #[test]
    fn all_errors_at_once_each_naming_property_and_value() {
        let e = cfg(&[
            ("base_url", "http://api.example.com"),
            ("poll_interval", "5x"),
            ("page_size", "9000"),
            ("batch_concurrency", "0"),
            ("siem_types", "receipt, bogus"),
            ("sources", "siem_cg,nope"),
        ])
        .unwrap_err();
        let all = e.join("\n");
        for needle in [
            "'client_id'",
            "'client_secret'",
            "plain http",
            "'5x'",
            "'9000'",
            "'batch_concurrency': '0'",
            "'bogus'",
            "'nope'",
        ] {
            assert!(all.contains(needle), "missing {needle} in:\n{all}");
        }
        assert_eq!(e.len(), 8, "{all}");
    }

    #[test]
    fn request_budget_is_off_by_default_and_validated() {
        let base = [("client_id", "id"), ("client_secret", "s")];
        assert_eq!(cfg(&base).unwrap().requests_per_second, None);
        let with = |v: &str| cfg(&[base[0], base[1], ("requests_per_second", v)]);
        assert_eq!(with("0.5").unwrap().requests_per_second, Some(0.5));
        assert_eq!(with(" 20 ").unwrap().requests_per_second, Some(20.0));
        assert_eq!(with("0").unwrap().requests_per_second, None);
        for bad in ["-1", "0.001", "5000", "nan", "inf", "20/m", ""] {
            let e = with(bad).unwrap_err().join("\n");
            assert!(
                e.contains("'requests_per_second'") && e.contains("0.5 for 30 a minute"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn durations_sizes_and_urls() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:1").is_ok());
        assert!(check_base_url("http://[::1]:9").is_ok());
        assert!(check_base_url("https://uk-api.services.mimecast.com/").is_ok());
        assert!(check_base_url("http://10.0.0.1").is_err());
        assert!(check_base_url("https://api.example.com/path").is_err());
        assert!(check_base_url("https://user:pw@api.example.com").is_err());
        assert!(check_base_url("ftp://x").is_err());
    }

    #[test]
    fn rate_limit_is_zero_or_at_least_a_megabyte() {
        let with = |v: &str| {
            cfg(&[
                ("client_id", "id"),
                ("client_secret", "s"),
                ("rate_limit", v),
            ])
            .map(|c| c.rate_limit)
        };
        assert_eq!(with("0"), Ok(0));
        assert_eq!(with("1M"), Ok(1 << 20));
        assert_eq!(with("200m"), Ok(200 << 20));
        for bad in ["512k", "fast", "-1", ""] {
            let e = with(bad).expect_err(bad);
            assert!(e.iter().any(|m| m.contains("rate_limit")), "{e:?}");
        }
    }

    #[test]
    fn a_bad_proxy_value_is_refused_without_echoing_it() {
        let e = cfg(&[
            ("client_id", "i"),
            ("client_secret", "s"),
            ("proxy", "ftp://u:Hunter2Secret@proxy"),
        ])
        .unwrap_err();
        assert!(e[0].starts_with("property 'proxy'"), "{e:?}");
        assert!(!e[0].contains("Hunter2Secret"));
        let c = cfg(&[
            ("client_id", "i"),
            ("client_secret", "s"),
            ("proxy", "http://u:Hunter2Secret@proxy:3128"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("Hunter2Secret"));
    }

    #[test]
    fn secret_from_file() {
        let p = std::env::temp_dir().join(format!("mc-secret-{}", std::process::id()));
        std::fs::write(&p, "from-file\n").unwrap();
        let c = cfg(&[
            ("client_id", "i"),
            ("client_secret_file", p.to_str().unwrap()),
        ])
        .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(c.client_secret.expose_secret(), "from-file");
        std::fs::remove_file(&p).unwrap();
        let e = cfg(&[("client_id", "i"), ("client_secret_file", "/nonexistent/x")]).unwrap_err();
        assert!(e[0].contains("client_secret_file"));
    }
}

#[cfg(test)]
mod doc_tests {
    /// The README's property table must list every property the code accepts, with its default.
    #[test]
    fn readme_documents_every_property() {
        let readme = include_str!("../README.md");
        for p in super::PROPERTIES {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", p.name)))
                .unwrap_or_else(|| panic!("README has no row for property '{}'", p.name));
            if let Some(d) = p.default {
                assert!(
                    row.contains(d),
                    "README row of '{}' does not show its default '{d}'",
                    p.name
                );
            }
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn known_keys_are_properties_and_host_keys_in_any_case() {
        for k in ["sources", "CLIENT_SECRET", "Client_Id", "batch_concurrency"] {
            assert!(is_known_key(k), "{k}");
        }
        for k in [
            "Name",
            "Tag",
            "storage.type",
            "Mem_Buf_Limit",
            "tls.verify",
            "TLS",
            "net.keepalive",
            "thread.ring_buffer.capacity",
            "rate_gate.limit",
            "log_suppress_interval",
        ] {
            assert!(is_known_key(k) && is_host_key(k), "{k}");
        }
        for k in [
            "sorces",
            "client-secret",
            "storage",
            "thread.ring",
            "tlsverify",
            "",
        ] {
            assert!(!is_known_key(k), "{k}");
        }
        assert!(!is_host_key("sources"));
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("sources", "sources"), 0);
        assert_eq!(edit_distance("sorces", "sources"), 1);
        assert_eq!(edit_distance("client_secert", "client_secret"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "tag"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("poll", ""), 4);
    }

    #[test]
    fn nearest_property_suggests_within_the_cutoff_only() {
        assert_eq!(nearest_property("sorces"), Some("sources"));
        assert_eq!(nearest_property("Source"), Some("sources"));
        assert_eq!(nearest_property("client_secert"), Some("client_secret"));
        assert_eq!(nearest_property("clientid"), Some("client_id"));
        assert_eq!(nearest_property("client-id"), Some("client_id"));
        assert_eq!(nearest_property("pollinterval"), Some("poll_interval"));
        assert_eq!(nearest_property("siem_type"), Some("siem_types"));
        assert_eq!(nearest_property("mem_buf_limt"), Some("mem_buf_limit"));
        assert_eq!(nearest_property("tags"), Some("tag"));
        assert_eq!(nearest_property("storage.typ"), Some("storage.type"));
        // too far from anything
        assert_eq!(nearest_property("secret"), None);
        assert_eq!(nearest_property("xyz"), None);
        assert_eq!(nearest_property("interval_poll_every"), None);
    }

    #[test]
    fn unknown_key_message_names_the_nearest_or_lists_all() {
        assert_eq!(
            unknown_key_message("sorces"),
            "unknown property 'sorces': did you mean 'sources'?"
        );
        let all = unknown_key_message("frobnicate");
        assert!(all.starts_with("unknown property 'frobnicate': "), "{all}");
        for p in PROPERTIES {
            assert!(all.contains(p.name), "{} missing from {all}", p.name);
        }
        assert!(
            all.contains("storage.type") && all.contains("net.*"),
            "{all}"
        );
    }
}
