//! Fault injection, per endpoint, switchable at run time (library call or control API).

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// What a fault does to a request it matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this HTTP status and Mimecast's error body.
    Status { code: u16 },
    /// 429 with `Retry-After` and `X-RateLimit-*` headers.
    RateLimited {
        #[serde(default = "one")]
        retry_after_s: u64,
    },
    /// Close the connection without answering.
    Reset,
    /// Answer normally after this delay.
    Slow { ms: u64 },
    /// Invalidate every issued access token, then handle the request (so it gets a 401).
    RevokeTokens,
    /// Batch file: cut the gzip stream in half.
    TruncatedGzip,
    /// Batch file: bytes that are not gzip at all.
    CorruptGzip,
    /// Batch file: every `every`-th line is not valid JSON.
    MalformedLines {
        #[serde(default = "three")]
        every: u32,
    },
    /// Batch file: answer 403 "Request has expired" as S3 does for an expired URL.
    ExpiredUrl,
    /// Listing or log page: repeat the last `count` items of the previous page.
    RepeatEvents {
        #[serde(default = "one")]
        count: u64,
    },
    /// Listing or log page: hand back the request's own page token, so paging never advances.
    StuckToken,
    /// `/api/...`: HTTP 200 whose body carries `fail[].errors[]` and no data.
    FailIn200 {
        #[serde(default = "fail_code")]
        code: String,
        #[serde(default = "fail_message")]
        message: String,
        #[serde(default)]
        retryable: bool,
    },
    /// `/api/...`: the last page carries `next` anyway, leading to empty pages that also carry
    /// `next` (as Elastic's mock does); a client must stop on empty `data`.
    DanglingNext,
}

fn one() -> u64 {
    1
}
fn three() -> u32 {
    3
}
fn fail_code() -> String {
    "err_internal_simulated".into()
}
fn fail_message() -> String {
    "Simulated function-level failure".into()
}

/// One rule: which endpoint, what fault, how often.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Endpoint name (see `Endpoint::name`) or `*` for all.
    pub endpoint: String,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many requests it fires on; `None` = until cleared.
    #[serde(default)]
    pub count: Option<u64>,
    /// Matching requests to let through before it starts firing.
    #[serde(default)]
    pub after: u64,
    /// Chance (0..=1) that a matching request is hit, drawn from the seeded generator.
    #[serde(default = "certain")]
    pub probability: f64,
    /// Only requests whose path contains this (for example one batch file's name); `None`:
    /// every path of the endpoint. Lets a test aim at one file however requests interleave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn certain() -> f64 {
    1.0
}

impl FaultRule {
    pub fn new(endpoint: &str, kind: FaultKind) -> Self {
        FaultRule {
            endpoint: endpoint.into(),
            kind,
            count: None,
            after: 0,
            probability: 1.0,
            path: None,
        }
    }
    /// Fires only on requests whose path contains `part`.
    pub fn on_path(mut self, part: &str) -> Self {
        self.path = Some(part.into());
        self
    }
    pub fn times(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }
    pub fn after(mut self, n: u64) -> Self {
        self.after = n;
        self
    }
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }
}

#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    rng: Mutex<u64>,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(seed ^ 0xFA17),
        }
    }

    pub fn add(&self, rule: FaultRule) {
        lock(&self.rules).push(rule);
    }

    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    pub fn list(&self) -> Vec<FaultRule> {
        lock(&self.rules).clone()
    }

    /// The faults that fire for one request to `endpoint` at `path` (consuming counts).
    pub fn take(&self, endpoint: &str, path: &str) -> Vec<FaultKind> {
        let mut rules = lock(&self.rules);
        let mut fired = Vec::new();
        for rule in rules.iter_mut() {
            if rule.endpoint != "*" && rule.endpoint != endpoint {
                continue;
            }
            if rule.path.as_deref().is_some_and(|p| !path.contains(p)) {
                continue;
            }
            if rule.after > 0 {
                rule.after -= 1;
                continue;
            }
            if rule.count == Some(0) {
                continue;
            }
            if rule.probability < 1.0 {
                let mut r = lock(&self.rng);
                *r = crate::model::mix(*r);
                if (*r % 1_000_000) as f64 / 1_000_000.0 >= rule.probability {
                    continue;
                }
            }
            if let Some(c) = rule.count.as_mut() {
                *c -= 1;
            }
            fired.push(rule.kind.clone());
        }
        rules.retain(|r| r.count != Some(0));
        fired
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_after_and_endpoint_matching() {
        let f = Faults::new(1);
        f.add(
            FaultRule::new("audit", FaultKind::Status { code: 503 })
                .times(2)
                .after(1),
        );
        assert!(f.take("dlp", "/").is_empty());
        assert!(f.take("audit", "/").is_empty(), "first request let through");
        assert_eq!(f.take("audit", "/"), vec![FaultKind::Status { code: 503 }]);
        assert_eq!(f.take("audit", "/").len(), 1);
        assert!(f.take("audit", "/").is_empty(), "count exhausted");
        assert!(f.list().is_empty(), "spent rules are dropped");
    }

    #[test]
    fn probability_is_seeded() {
        let run = |seed| {
            let f = Faults::new(seed);
            f.add(FaultRule::new("*", FaultKind::Reset).probability(0.3));
            (0..1000).filter(|_| !f.take("x", "/").is_empty()).count()
        };
        assert_eq!(run(5), run(5));
        let hits = run(5);
        assert!((220..380).contains(&hits), "{hits}");
    }

    #[test]
    fn rules_parse_from_control_api_json() {
        let r: FaultRule = serde_json::from_str(
            r#"{"endpoint":"batch_file","kind":"malformed_lines","every":5,"count":1}"#,
        )
        .unwrap();
        assert_eq!(r.kind, FaultKind::MalformedLines { every: 5 });
        assert_eq!(r.count, Some(1));
        assert_eq!(r.probability, 1.0);
        assert_eq!(r.path, None);
        let r: FaultRule = serde_json::from_str(
            r#"{"endpoint":"batch_file","kind":"corrupt_gzip","path":"/7.json.gz"}"#,
        )
        .unwrap();
        assert_eq!(r.path.as_deref(), Some("/7.json.gz"));
    }

    #[test]
    fn a_path_rule_fires_only_on_its_path_and_counts_only_there() {
        let f = Faults::new(1);
        f.add(
            FaultRule::new("batch_file", FaultKind::CorruptGzip)
                .on_path("/0/12.json.gz")
                .after(1)
                .times(1),
        );
        assert!(f.take("batch_file", "/s3/batch/0/11.json.gz").is_empty());
        assert!(
            f.take("batch_file", "/s3/batch/0/12.json.gz").is_empty(),
            "its first request let through"
        );
        assert!(f.take("batch_file", "/s3/batch/0/13.json.gz").is_empty());
        assert_eq!(
            f.take("batch_file", "/s3/batch/0/12.json.gz"),
            vec![FaultKind::CorruptGzip]
        );
        assert!(f.list().is_empty());
    }
}
