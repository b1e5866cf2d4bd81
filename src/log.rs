//! Instance-scoped logging: `[input:mimecast:<instance>] message`, level-checked by the sink,
//! and problems reported once per distinct cause, however many of the instance's streams it
//! hits, naming how many; then a reminder a minute with a count instead of once per retry, and
//! a line when it is over.

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
pub const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// How long a problem that some streams of the instance hit waits for the others before its
/// first line, so that one line names every stream it affects.
pub const GATHER: Duration = Duration::from_secs(1);

/// How often the instance calls [`Logger::tick`] to write problems whose gathering is over.
pub const TICK: Duration = Duration::from_millis(250);

/// Stream names a line lists; the rest are counted.
const NAMES_SHOWN: usize = 3;

/// Which of the instance's streams (`siem_cg/receipt`, `audit`, ...) a problem touches.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// None in particular (the state file, a stream's own oddity named in its message).
    Unscoped,
    /// One stream.
    Stream(&'a str),
    /// Every stream: what they all share (the access token).
    All,
}

tokio::task_local! {
    /// The stream the running task pulls, for problems found below it (in the HTTP client).
    static STREAM: Arc<str>;
}

/// Runs `fut` as the stream `name`: problems the HTTP client meets for it are counted for it.
pub fn in_stream<F: std::future::Future>(
    name: &str,
    fut: F,
) -> impl std::future::Future<Output = F::Output> {
    STREAM.scope(name.into(), fut)
}

/// The stream the current task pulls, if it is one.
pub fn current_stream() -> Option<Arc<str>> {
    STREAM.try_with(Arc::clone).ok()
}

/// A stream has one current cause of each kind (the key's part before its first `|`): a new
/// one replaces the stream's earlier one, which is dropped once no stream is left on it. So a
/// cause whose text varies from one occurrence to the next (an id in Mimecast's error text)
/// cannot pile up entries while it lasts.
fn supersede(problems: &mut HashMap<String, Problem>, key: &str, stream: &str) {
    let kind = |k: &str| k.split('|').next().unwrap_or_default().to_string();
    let this = kind(key);
    problems.retain(|k, p| {
        if k == key || kind(k) != this {
            return true;
        }
        match &mut p.affected {
            Affected::Streams(v) => {
                v.retain(|s| s != stream);
                !v.is_empty()
            }
            Affected::Unscoped | Affected::All => true,
        }
    });
}

enum Affected {
    Unscoped,
    All,
    /// In the order they were first hit.
    Streams(Vec<String>),
}

impl Affected {
    fn of(scope: Scope<'_>) -> Self {
        match scope {
            Scope::Unscoped => Affected::Unscoped,
            Scope::All => Affected::All,
            Scope::Stream(s) => Affected::Streams(vec![s.to_string()]),
        }
    }

    fn add(&mut self, scope: Scope<'_>) {
        match (&mut *self, scope) {
            (Affected::Streams(v), Scope::Stream(s)) if !v.iter().any(|x| x == s) => {
                v.push(s.to_string())
            }
            (_, Scope::All) => *self = Affected::All,
            _ => {}
        }
    }

    /// Every stream it can affect has been seen (or there is nothing to wait for).
    fn complete(&self, total: usize) -> bool {
        match self {
            Affected::Streams(v) => total <= 1 || v.len() >= total,
            Affected::Unscoped | Affected::All => true,
        }
    }

    /// "affects 3 of 10 streams: a, b, c", or None when not tied to streams.
    fn describe(&self, all: &[String]) -> Option<String> {
        let total = all.len();
        let noun = |n: usize| if n == 1 { "stream" } else { "streams" };
        match self {
            Affected::Unscoped => None,
            Affected::All if total == 0 => Some("affects every stream".into()),
            Affected::All if total == 1 => Some(format!("affects the only stream, {}", names(all))),
            Affected::All => Some(format!("affects all {total} streams: {}", names(all))),
            Affected::Streams(v) if total == 0 => Some(format!("affects {}", names(v))),
            Affected::Streams(v) => Some(format!(
                "affects {} of {total} {}: {}",
                v.len(),
                noun(total),
                names(v)
            )),
        }
    }
}

fn names(v: &[String]) -> String {
    let shown: Vec<&str> = v.iter().take(NAMES_SHOWN).map(String::as_str).collect();
    match v.len().saturating_sub(NAMES_SHOWN) {
        0 => shown.join(", "),
        rest => format!("{} and {rest} more", shown.join(", ")),
    }
}

/// One cause of trouble, however many streams and times it hits.
struct Problem {
    level: Level,
    /// What failed, without advice; the same whichever stream met it first.
    text: String,
    /// What to do; may be empty.
    advice: String,
    affected: Affected,
    since: Instant,
    /// When its last line was written; None while it gathers the streams it affects.
    logged: Option<Instant>,
    /// Occurrences since its last line (all of them before the first).
    unreported: u64,
}

impl Problem {
    fn first_line(&self, all: &[String]) -> String {
        let mut line = self.text.clone();
        if let Some(a) = self.affected.describe(all) {
            line.push_str(&format!(" ({a})"));
        }
        self.with_advice(line)
    }

    fn reminder(&self, all: &[String], now: Instant) -> String {
        let secs = self
            .logged
            .map(|t| now.duration_since(t).as_secs())
            .unwrap_or_default();
        let n = self.unreported;
        let mut line = format!(
            "{} (still happening: {n} more {} in the last {secs} s",
            self.text,
            if n == 1 { "time" } else { "times" }
        );
        if let Some(a) = self.affected.describe(all) {
            line.push_str(&format!("; {a}"));
        }
        line.push(')');
        self.with_advice(line)
    }

    fn with_advice(&self, mut line: String) -> String {
        if !self.advice.is_empty() {
            line.push_str("; ");
            line.push_str(&self.advice);
        }
        line
    }

    /// Writes its first line now.
    fn report(&mut self, all: &[String], now: Instant, out: &mut Vec<(Level, String)>) {
        out.push((self.level, self.first_line(all)));
        self.logged = Some(now);
        self.unreported = 0;
    }
}

#[derive(Default)]
struct Board {
    problems: HashMap<String, Problem>,
    /// Every stream of the instance, in the order they were started.
    streams: Vec<String>,
}

impl Board {
    /// First lines of the problems whose gathering is over.
    fn flush(&mut self, now: Instant, out: &mut Vec<(Level, String)>) {
        let Board { problems, streams } = self;
        for p in problems.values_mut() {
            if p.logged.is_none() && now.duration_since(p.since) >= GATHER {
                p.report(streams, now, out);
            }
        }
    }

    /// Forgets `key`, writing what the operator needs to hear of it: that it is over if it had
    /// been reported. A warning that passed while its streams were being gathered is only a
    /// debug line; an error is written anyway, as it needs the operator even when the next
    /// attempt works, and whether that attempt came before the gathering ended is chance.
    fn recover(&mut self, key: &str, now: Instant, out: &mut Vec<(Level, String)>) {
        let Some(mut p) = self.problems.remove(key) else {
            return;
        };
        let secs = now.duration_since(p.since).as_secs();
        match p.logged {
            Some(_) => out.push((Level::Info, format!("recovered after {secs} s: {}", p.text))),
            None if p.level == Level::Error => {
                p.report(&self.streams, now, out);
                out.push((Level::Info, format!("recovered after {secs} s: {}", p.text)));
            }
            None => out.push((
                Level::Debug,
                format!("passed before it was reported: {}", p.text),
            )),
        }
    }
}

#[derive(Clone)]
pub struct Logger {
    sink: Arc<dyn LogSink>,
    prefix: Arc<str>,
    board: Arc<Mutex<Board>>,
}

impl Logger {
    pub fn new(sink: Arc<dyn LogSink>, instance: &str) -> Self {
        Logger {
            sink,
            prefix: format!("[input:mimecast:{instance}]").into(),
            board: Arc::default(),
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

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_all(&self, out: Vec<(Level, String)>) {
        for (level, line) in out {
            self.log(level, line);
        }
    }

    /// Names the instance's streams, so that lines say how many of them a problem affects.
    pub fn set_streams(&self, names: Vec<String>) {
        self.board().streams = names;
    }

    /// Reports a problem identified by `key`: the first time at once, then at most once a
    /// minute with how many times it happened meanwhile.
    pub fn problem(&self, key: &str, level: Level, msg: impl std::fmt::Display) {
        self.failure(key, Scope::Unscoped, level, msg, "");
    }

    /// Reports one occurrence of the cause `key` for `scope`. Its first line comes at once
    /// when it affects every stream it can, else after [`GATHER`] (from [`Logger::tick`]),
    /// naming the streams hit by then; afterwards at most one line per [`REPEAT_EVERY`], with
    /// the occurrences since the last line. The text and advice of its first occurrence stay.
    pub fn failure(
        &self,
        key: &str,
        scope: Scope<'_>,
        level: Level,
        text: impl std::fmt::Display,
        advice: impl std::fmt::Display,
    ) {
        self.failure_at(Instant::now(), key, scope, level, text, advice)
    }

    fn failure_at(
        &self,
        now: Instant,
        key: &str,
        scope: Scope<'_>,
        level: Level,
        text: impl std::fmt::Display,
        advice: impl std::fmt::Display,
    ) {
        let mut out = Vec::new();
        {
            let mut b = self.board();
            b.flush(now, &mut out);
            let Board { problems, streams } = &mut *b;
            if let Scope::Stream(stream) = scope {
                supersede(problems, key, stream);
            }
            let total = streams.len();
            match problems.get_mut(key) {
                None => {
                    let mut p = Problem {
                        level,
                        text: text.to_string(),
                        advice: advice.to_string(),
                        affected: Affected::of(scope),
                        since: now,
                        logged: None,
                        unreported: 1,
                    };
                    if p.affected.complete(total) {
                        p.report(streams, now, &mut out);
                    }
                    problems.insert(key.to_string(), p);
                }
                Some(p) => {
                    p.affected.add(scope);
                    p.unreported += 1;
                    match p.logged {
                        None if p.affected.complete(total) => p.report(streams, now, &mut out),
                        Some(at) if now.duration_since(at) >= REPEAT_EVERY => {
                            out.push((p.level, p.reminder(streams, now)));
                            p.logged = Some(now);
                            p.unreported = 0;
                        }
                        _ => {}
                    }
                }
            }
        }
        self.write_all(out);
    }

    /// Writes the first lines of problems whose gathering is over; the instance calls it every
    /// [`TICK`].
    pub fn tick(&self) {
        self.tick_at(Instant::now())
    }

    fn tick_at(&self, now: Instant) {
        let mut out = Vec::new();
        self.board().flush(now, &mut out);
        self.write_all(out);
    }

    /// `stream` works again: it no longer counts for any problem; a problem it was the last
    /// stream of is over, which is logged if it had been reported.
    pub fn stream_ok(&self, stream: &str) {
        self.stream_ok_at(Instant::now(), stream)
    }

    fn stream_ok_at(&self, now: Instant, stream: &str) {
        let mut out = Vec::new();
        {
            let mut b = self.board();
            let mut over = Vec::new();
            for (key, p) in b.problems.iter_mut() {
                if let Affected::Streams(v) = &mut p.affected {
                    if let Some(i) = v.iter().position(|s| s == stream) {
                        // The last stream stays named, for an error's late first line.
                        if v.len() == 1 {
                            over.push(key.clone());
                        } else {
                            v.remove(i);
                        }
                    }
                }
            }
            for key in over {
                b.recover(&key, now, &mut out);
            }
        }
        self.write_all(out);
    }

    /// The cause `key` is over (whichever streams it affected); logged if it was reported.
    pub fn clear(&self, key: &str) {
        let mut out = Vec::new();
        self.board().recover(key, Instant::now(), &mut out);
        self.write_all(out);
    }

    /// Marks a problem as over; logs `msg` if it had been reported.
    pub fn resolved(&self, key: &str, msg: impl std::fmt::Display) {
        let was = self
            .board()
            .problems
            .remove(key)
            .is_some_and(|p| p.logged.is_some());
        if was {
            self.info(msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(cap: &CaptureSink) -> Vec<(Level, String)> {
        cap.0.lock().unwrap().clone()
    }

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
        let lines = lines(&cap);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].1, "[input:mimecast:mimecast.0] rate limited");
        assert_eq!(lines[1].0, Level::Error);
        assert!(lines[2].1.ends_with("rate limit over"));
    }

    fn ten() -> Vec<String> {
        [
            "receipt", "process", "delivery", "av", "spam", "journal", "a", "b", "c", "d",
        ]
        .iter()
        .map(|t| format!("siem_cg/{t}"))
        .collect()
    }

    #[test]
    fn one_line_for_a_cause_every_stream_shares() {
        let cap = Arc::new(CaptureSink::default());
        let log = Logger::new(cap.clone(), "mimecast.0");
        log.set_streams(ten());
        let t0 = Instant::now();
        for _ in 0..10 {
            log.failure_at(
                t0,
                "token",
                Scope::All,
                Level::Error,
                "Mimecast refused the client credentials",
                "check client_id",
            );
        }
        let got = lines(&cap);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            got[0].1,
            "[input:mimecast:mimecast.0] Mimecast refused the client credentials (affects all 10 \
             streams: siem_cg/receipt, siem_cg/process, siem_cg/delivery and 7 more); check client_id"
        );
        // A reminder a minute, with the count since the last line.
        let later = t0 + REPEAT_EVERY;
        log.failure_at(later, "token", Scope::All, Level::Error, "x", "y");
        let got = lines(&cap);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[1]
                .1
                .contains("credentials (still happening: 10 more times in the last 60 s; affects all 10 streams"),
            "{got:?}"
        );
        log.clear("token");
        let got = lines(&cap);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].0, Level::Info);
        assert!(
            got[2].1.contains("recovered after ")
                && got[2]
                    .1
                    .ends_with("s: Mimecast refused the client credentials"),
            "{got:?}"
        );
    }

    #[test]
    fn streams_hit_by_one_cause_are_gathered_into_its_first_line() {
        let cap = Arc::new(CaptureSink::default());
        let log = Logger::new(cap.clone(), "mimecast.0");
        log.set_streams(ten());
        let t0 = Instant::now();
        let hit = |s: &str, at: Instant| {
            log.failure_at(at, "503", Scope::Stream(s), Level::Warn, "HTTP 503", "")
        };
        hit("siem_cg/av", t0);
        hit("siem_cg/spam", t0 + Duration::from_millis(300));
        hit("siem_cg/av", t0 + Duration::from_millis(400));
        log.tick_at(t0 + Duration::from_millis(900));
        assert!(lines(&cap).is_empty(), "still gathering");
        log.tick_at(t0 + GATHER);
        hit("siem_cg/journal", t0 + GATHER + Duration::from_millis(1));
        let got = lines(&cap);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0]
                .1
                .ends_with("HTTP 503 (affects 2 of 10 streams: siem_cg/av, siem_cg/spam)"),
            "{got:?}"
        );
        // Over only when every stream it hit works again.
        log.stream_ok("siem_cg/av");
        log.stream_ok("siem_cg/spam");
        assert_eq!(lines(&cap).len(), 1);
        log.stream_ok("siem_cg/journal");
        let got = lines(&cap);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[1].1.contains("recovered after"), "{got:?}");
        // A cause every stream hits needs no gathering.
        for s in ten() {
            log.failure("403", Scope::Stream(&s), Level::Error, "HTTP 403", "add it");
        }
        let got = lines(&cap);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[2].1.ends_with(
                "HTTP 403 (affects 10 of 10 streams: siem_cg/receipt, siem_cg/process, \
                 siem_cg/delivery and 7 more); add it"
            ),
            "{got:?}"
        );
    }

    #[test]
    fn a_stream_keeps_one_cause_of_a_kind_however_its_text_varies() {
        let cap = Arc::new(CaptureSink::default());
        let log = Logger::new(cap.clone(), "mimecast.0");
        log.set_streams(ten());
        for i in 0..100 {
            let key = format!("server|HTTP 500 request id {i}");
            log.failure(&key, Scope::Stream("audit"), Level::Warn, "HTTP 500", "");
        }
        log.failure(
            "forbidden|x",
            Scope::Stream("audit"),
            Level::Error,
            "403",
            "",
        );
        log.failure(
            "server|y",
            Scope::Stream("dlp"),
            Level::Warn,
            "HTTP 500",
            "",
        );
        let b = log.board();
        let mut keys: Vec<&str> = b.problems.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["forbidden|x", "server|HTTP 500 request id 99", "server|y"],
            "one cause per stream and kind"
        );
    }

    #[test]
    fn a_cause_that_passes_before_its_line_is_only_a_debug_line() {
        let cap = Arc::new(CaptureSink::default());
        let log = Logger::new(cap.clone(), "mimecast.0");
        log.set_streams(ten());
        log.failure("t", Scope::Stream("siem_cg/av"), Level::Warn, "blip", "");
        log.stream_ok("siem_cg/av");
        log.tick_at(Instant::now() + GATHER);
        let got = lines(&cap);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, Level::Debug);
    }

    #[test]
    fn an_error_that_passes_before_its_line_is_still_written() {
        let cap = Arc::new(CaptureSink::default());
        let log = Logger::new(cap.clone(), "mimecast.0");
        log.set_streams(ten());
        let fix = "remove 'dlp' from sources";
        log.failure("e", Scope::Stream("dlp"), Level::Error, "dlp: outage", fix);
        assert!(lines(&cap).is_empty(), "still gathering");
        log.stream_ok("dlp");
        log.tick_at(Instant::now() + GATHER);
        let got = lines(&cap);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, Level::Error);
        assert!(
            got[0].1.contains("dlp: outage") && got[0].1.contains(fix),
            "{got:?}"
        );
        assert!(got[0].1.contains("1 of 10 streams: dlp"), "{got:?}");
        assert_eq!(got[1].0, Level::Info);
        assert!(got[1].1.contains("recovered after"), "{got:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tasks_know_their_stream() {
        assert!(current_stream().is_none());
        let name = in_stream("audit", async { current_stream() }).await;
        assert_eq!(name.as_deref(), Some("audit"));
    }
}
