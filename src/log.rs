//! Instance-scoped logging: `[input:mimecast:<instance>] message`, level-checked by the sink,
//! and problems reported once per distinct cause with a count instead of once per retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// Where log lines go: the host's logger in the plugin, stderr or memory in tools and tests.
pub trait LogSink: Send + Sync {
    fn enabled(&self, level: Level) -> bool;
    fn write(&self, level: Level, line: &str);
}

pub struct StderrSink(pub Level);

impl LogSink for StderrSink {
    fn enabled(&self, level: Level) -> bool {
        level <= self.0
    }
    fn write(&self, level: Level, line: &str) {
        eprintln!("[{level:?}] {line}");
    }
}

/// Keeps every line, for tests.
#[derive(Default)]
pub struct CaptureSink(pub Mutex<Vec<(Level, String)>>);

impl LogSink for CaptureSink {
    fn enabled(&self, _: Level) -> bool {
        true
    }
    fn write(&self, level: Level, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((level, line.to_string()));
    }
}

/// How often one ongoing problem is repeated in the log.
const REPEAT_EVERY: Duration = Duration::from_secs(60);

struct Problem {
    last_logged: Instant,
    suppressed: u64,
}

#[derive(Clone)]
pub struct Logger {
    sink: Arc<dyn LogSink>,
    prefix: Arc<str>,
    problems: Arc<Mutex<HashMap<String, Problem>>>,
}

impl Logger {
    pub fn new(sink: Arc<dyn LogSink>, instance: &str) -> Self {
        Logger {
            sink,
            prefix: format!("[input:mimecast:{instance}]").into(),
            problems: Arc::default(),
        }
    }

    pub fn log(&self, level: Level, msg: impl std::fmt::Display) {
        if self.sink.enabled(level) {
            self.sink.write(level, &format!("{} {msg}", self.prefix));
        }
    }

    pub fn error(&self, msg: impl std::fmt::Display) {
        self.log(Level::Error, msg)
    }
    pub fn warn(&self, msg: impl std::fmt::Display) {
        self.log(Level::Warn, msg)
    }
    pub fn info(&self, msg: impl std::fmt::Display) {
        self.log(Level::Info, msg)
    }
    pub fn debug(&self, msg: impl std::fmt::Display) {
        self.log(Level::Debug, msg)
    }

    /// Reports a problem identified by `key`: the first time at once, then at most once a
    /// minute with how many times it happened meanwhile.
    pub fn problem(&self, key: &str, level: Level, msg: impl std::fmt::Display) {
        let now = Instant::now();
        let repeated = {
            let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
            match p.get_mut(key) {
                None => {
                    p.insert(
                        key.to_string(),
                        Problem {
                            last_logged: now,
                            suppressed: 0,
                        },
                    );
                    Some(0)
                }
                Some(pr) if now.duration_since(pr.last_logged) >= REPEAT_EVERY => {
                    let n = pr.suppressed;
                    pr.last_logged = now;
                    pr.suppressed = 0;
                    Some(n)
                }
                Some(pr) => {
                    pr.suppressed += 1;
                    None
                }
            }
        };
        match repeated {
            Some(0) => self.log(level, msg),
            Some(n) => self.log(
                level,
                format_args!("{msg} (happened {n} more times in the last minute)"),
            ),
            None => {}
        }
    }

    /// Marks a problem as over; logs that it recovered if it had been reported.
    pub fn resolved(&self, key: &str, msg: impl std::fmt::Display) {
        let was = self
            .problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
            .is_some();
        if was {
            self.info(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_logged_once_per_cause() {
        let cap = Arc::new(CaptureSink::default());
        let log = Logger::new(cap.clone(), "mimecast.0");
        for _ in 0..50 {
            log.problem("429 siem", Level::Warn, "rate limited");
        }
        log.problem("other", Level::Error, "auth failed");
        log.resolved("429 siem", "rate limit over");
        log.resolved("never", "not logged");
        let lines = cap.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].1, "[input:mimecast:mimecast.0] rate limited");
        assert_eq!(lines[1].0, Level::Error);
        assert!(lines[2].1.ends_with("rate limit over"));
    }
}
