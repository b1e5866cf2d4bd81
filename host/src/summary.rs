//! `fbhost --summarize N`: reads the JSON lines a host printed (fbhost's own
//! `{"date","record","tag"}` lines or Fluent Bit's `stdout` output with `format json_lines`,
//! `{"date", ...fields}`), passes the first N through, and at the end of input prints what
//! arrived: records per source and SIEM type with their event-time range, and, given the
//! simulator's address, the requests it answered per endpoint. Used by scripts/demo.sh.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::time::Duration;

/// The simulator's request counts: endpoint -> HTTP status -> requests.
type SimStats = BTreeMap<String, BTreeMap<String, u64>>;

/// Records of one source (and SIEM type).
#[derive(Default)]
struct Group {
    records: u64,
    /// Event times, epoch seconds.
    first: Option<f64>,
    last: Option<f64>,
}

impl Group {
    fn add(&mut self, date: Option<f64>) {
        self.records += 1;
        if let Some(d) = date {
            self.first = Some(self.first.map_or(d, |f| f.min(d)));
            self.last = Some(self.last.map_or(d, |l| l.max(d)));
        }
    }
}

/// What has been read so far.
#[derive(Default)]
pub struct Summary {
    /// By (source, SIEM type or "").
    groups: BTreeMap<(String, String), Group>,
    /// Error records (`mimecast_error`), by source.
    errors: BTreeMap<String, u64>,
    /// Lines that were not a JSON object.
    other_lines: u64,
    shown: u64,
}

impl Summary {
    /// Takes one line; true if it is a record.
    pub fn add_line(&mut self, line: &str) -> bool {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) else {
            self.other_lines += 1;
            return false;
        };
        let date = obj.get("date").and_then(Value::as_f64);
        let record: &Map<String, Value> = match obj.get("record") {
            Some(Value::Object(r)) => r,
            _ => &obj,
        };
        let text = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or_default();
        let source = match text("mimecast_source") {
            "" => "(no mimecast_source)".to_string(),
            s => s.to_string(),
        };
        if record.contains_key("mimecast_error") {
            *self.errors.entry(source).or_default() += 1;
            return true;
        }
        let ty = if source.starts_with("siem_") {
            text("type").to_string()
        } else {
            String::new()
        };
        self.groups.entry((source, ty)).or_default().add(date);
        true
    }

    pub fn records(&self) -> u64 {
        self.groups.values().map(|g| g.records).sum::<u64>() + self.errors.values().sum::<u64>()
    }

    /// The summary table (and the simulator's request counts, if given).
    pub fn report(&self, sim: Option<&Result<SimStats, String>>) -> String {
        let mut out = String::new();
        let total = self.records();
        out.push_str(&format!(
            "==> summary of the {} records the host printed ({} shown above)\n",
            thousands(total),
            self.shown.min(total)
        ));
        if total == 0 {
            out.push_str("    no records arrived; see the host's log\n");
        } else {
            self.push_groups(&mut out);
        }
        for (source, n) in &self.errors {
            out.push_str(&format!(
                "    {source}: {} error records (mimecast_error: data that could not be delivered as it came)\n",
                thousands(*n)
            ));
        }
        if self.other_lines > 0 {
            out.push_str(&format!(
                "    ({} lines were not records and were left out)\n",
                self.other_lines
            ));
        }
        match sim {
            None => {}
            Some(Err(e)) => out.push_str(&format!(
                "    (the simulator's request counts are not available: {e})\n"
            )),
            Some(Ok(stats)) => push_sim_stats(&mut out, stats),
        }
        out
    }

    /// Records per source and SIEM type, with their event-time range.
    fn push_groups(&self, out: &mut String) {
        let w_src = self
            .groups
            .keys()
            .map(|(s, _)| s.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let w_ty = self
            .groups
            .keys()
            .map(|(_, t)| t.len())
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!(
            "    {:<w_src$}  {:<w_ty$}  {:>9}  event time (UTC)\n",
            "source", "type", "records"
        ));
        for ((source, ty), g) in &self.groups {
            let range = match (g.first, g.last) {
                (Some(f), Some(l)) => format!("{} .. {}", utc(f), utc(l)),
                _ => "-".into(),
            };
            let ty = if ty.is_empty() { "-" } else { ty.as_str() };
            out.push_str(&format!(
                "    {source:<w_src$}  {ty:<w_ty$}  {:>9}  {range}\n",
                thousands(g.records)
            ));
        }
    }
}

/// The requests the simulator answered, by endpoint (token first, batch files last).
fn push_sim_stats(out: &mut String, stats: &SimStats) {
    out.push_str("    requests the simulator answered, by endpoint:\n");
    let w = stats.keys().map(String::len).max().unwrap_or(8);
    let mut names: Vec<&String> = stats.keys().collect();
    names.sort_by_key(|n| {
        (
            n.as_str() != "token",
            n.as_str() == "batch_file",
            n.as_str(),
        )
    });
    for name in names {
        let by_status = stats.get(name).map(|m| {
            m.iter()
                .map(|(status, n)| format!("{n} x HTTP {status}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        out.push_str(&format!(
            "      {name:<w$}  {:<18}  {}\n",
            by_status.unwrap_or_default(),
            endpoint_role(name)
        ));
    }
}

/// What a simulator endpoint stands for, for the demo's reader.
fn endpoint_role(name: &str) -> String {
    match name {
        "token" => "OAuth2 token (client credentials)".into(),
        "batch_file" => {
            "the gzip batch files those listings name (pre-signed URLs, no token)".into()
        }
        n if n.starts_with("siem_batch_") => format!(
            "SIEM batch-file listings: source siem_{}",
            n.trim_start_matches("siem_batch_")
        ),
        n if n.starts_with("siem_stream_") => format!(
            "SIEM events inline: source siem_{}",
            n.trim_start_matches("siem_stream_")
        ),
        n => format!("source {n}"),
    }
}

/// 6510 -> "6,510".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Epoch seconds as `YYYY-MM-DD HH:MM:SS` (UTC); `-` outside jiff's range.
fn utc(secs: f64) -> String {
    jiff::Timestamp::from_second(secs.floor() as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| "-".into())
}

/// The simulator's request counts (`GET /__sim/stats`): endpoint -> HTTP status -> requests.
fn sim_stats(base: &str) -> Result<SimStats, String> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or("only an http:// simulator address can be asked")?
        .trim_end_matches('/');
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or(format!("{hostport}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{hostport} is not a loopback address"));
    }
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connecting to {hostport}: {e}"))?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    write!(
        conn,
        "GET /__sim/stats HTTP/1.0\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("asking {hostport}: {e}"))?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)
        .map_err(|e| format!("reading from {hostport}: {e}"))?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or("the answer has no body")?;
    if !head.lines().next().is_some_and(|l| l.contains(" 200")) {
        return Err(format!(
            "answered {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    serde_json::from_str(body).map_err(|e| format!("unexpected answer: {e}"))
}

/// Runs the mode: stdin to stdout. Exit status 0, or 1 when no record arrived.
pub fn run(show: u64, sim: Option<&str>) -> i32 {
    let mut summary = Summary::default();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("fbhost --summarize: reading stdin failed: {e}");
                break;
            }
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        if summary.add_line(line) && summary.shown < show {
            summary.shown += 1;
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
    let stats = sim.map(sim_stats);
    let _ = write!(out, "{}", summary.report(stats.as_ref()));
    let _ = out.flush();
    i32::from(summary.records() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_line_formats_are_counted_by_source_and_type() {
        let mut s = Summary::default();
        // fbhost's own lines
        assert!(s.add_line(r#"{"date":1796169635.903,"record":{"mimecast_source":"siem_cg","type":"receipt"},"tag":"t"}"#));
        assert!(s.add_line(r#"{"date":1796169600.0,"record":{"mimecast_source":"siem_cg","type":"receipt"},"tag":"t"}"#));
        // Fluent Bit's json_lines
        assert!(s.add_line(r#"{"date":1796170000.5,"type":"av","mimecast_source":"siem_cg"}"#));
        assert!(s.add_line(
            r#"{"date":1796170000.5,"mimecast_source":"audit","id":"x","type":"ignored"}"#
        ));
        assert!(s.add_line(
            r#"{"date":1,"record":{"mimecast_source":"siem_cg","mimecast_error":"bad"}}"#
        ));
        assert!(!s.add_line("[2026/12/02 18:09:18] [ info] not a record"));
        assert!(!s.add_line(""));
        assert_eq!(s.records(), 5);
        let r = s.report(None);
        assert!(r.contains("summary of the 5 records"), "{r}");
        let row = |needle: &str| {
            r.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle} row in\n{r}"))
                .to_string()
        };
        let receipt = row("receipt");
        assert!(
            receipt.contains(" 2  ")
                && receipt.contains("2026-12-02 00:00:00 .. 2026-12-02 00:00:35"),
            "{receipt}"
        );
        assert!(row(" av ").contains(" 1  "), "{r}");
        assert!(
            row("audit").contains(" -  "),
            "non-SIEM sources have no type: {r}"
        );
        assert!(r.contains("siem_cg: 1 error records"), "{r}");
        assert!(r.contains("2 lines were not records"), "{r}");
    }

    #[test]
    fn simulator_counts_are_listed_with_their_role() {
        let s = Summary::default();
        let stats: SimStats = serde_json::from_str(
            r#"{"batch_file":{"200":216},"siem_batch_cg":{"200":9},"token":{"200":1,"401":2}}"#,
        )
        .unwrap();
        let r = s.report(Some(&Ok(stats)));
        let lines: Vec<&str> = r.lines().collect();
        let at = |n: &str| {
            lines
                .iter()
                .position(|l| l.trim_start().starts_with(n))
                .unwrap()
        };
        assert!(
            at("token") < at("siem_batch_cg") && at("siem_batch_cg") < at("batch_file"),
            "{r}"
        );
        assert!(r.contains("1 x HTTP 200, 2 x HTTP 401"), "{r}");
        assert!(r.contains("source siem_cg"), "{r}");
        assert!(r.contains("no records arrived"), "{r}");
        let r = s.report(Some(&Err("refused".into())));
        assert!(r.contains("not available: refused"), "{r}");
    }

    #[test]
    fn numbers_and_dates() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(6510), "6,510");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(utc(1_796_169_635.903), "2026-12-02 00:00:35");
        assert_eq!(utc(-1.0), "1969-12-31 23:59:59");
    }

    #[test]
    fn stats_are_asked_of_loopback_only() {
        assert!(sim_stats("https://127.0.0.1:1").is_err());
        assert!(sim_stats("http://192.0.2.1:80")
            .unwrap_err()
            .contains("not a loopback"));
        assert!(sim_stats("http://127.0.0.1:1")
            .unwrap_err()
            .contains("connecting"));
    }
}
