//! `mimecast-bench --vs-tail`: the plugin against Fluent Bit's own `tail` input, both inside the
//! real Fluent Bit named by `FLUENT_BIT_BIN`, on the same records: the backlog's batch files
//! served by the simulator to the plugin, and the same records as one local NDJSON file read
//! by `tail` with the json parser. Each run is one `fluent-bit` process with the `null` output
//! and its HTTP server on; the harness polls the input's record counter
//! (`/api/v1/metrics`) and the process's `/proc` figures every 50 ms, and prints rate, host
//! CPU per record, peak and steady RSS, first-record time, and the plugin's ratios to `tail`.
//!
//! `--soak MINUTES` runs the plugin alone for that long on a simulator whose clock runs 60x
//! (an hour of new SIEM files a minute), sends Fluent Bit a hot reload (SIGHUP, `-Y`) every
//! minute, and prints its RSS minute by minute: flat after warm-up is the goal.
//!
//! `--latency ROUNDS` times records to a destination (Fluent Bit's `http` output to a listener
//! here): the first record of a backlog after start, and for each round the first record of a
//! newly published batch file, from the moment the plugin read it and from its publication.

use fluent_bit_mimecast::sources::gzlines::{GzLines, Line};
use mimecast_sim::Sim;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What one run inside Fluent Bit measured.
pub struct HostRun {
    pub label: String,
    pub records: u64,
    /// Start to the first record counted by the input.
    pub first: Option<Duration>,
    /// Start to the last record.
    pub done: Option<Duration>,
    /// CPU seconds of the whole process when the last record was counted.
    pub cpu: f64,
    /// VmHWM at the end, MB.
    pub peak_mb: f64,
    /// Median VmRSS over the second half of the drain, MB.
    pub steady_mb: f64,
    /// CPU seconds per thread name when the last record was counted, most first.
    pub threads: Vec<(String, f64)>,
    /// Of `cpu`, the seconds spent in the kernel.
    pub sys: f64,
    /// VmRSS (MB) when the input had counted 10%, 20%, ... 100% of the records: flat or not.
    pub rss_by_tenth: Vec<f64>,
}

impl HostRun {
    /// Records per second from the first record to the last.
    pub fn rate(&self) -> f64 {
        match (self.first, self.done) {
            (Some(f), Some(d)) if d > f => self.records as f64 / (d - f).as_secs_f64(),
            _ => 0.0,
        }
    }
    pub fn cpu_us(&self) -> f64 {
        self.cpu * 1e6 / self.records.max(1) as f64
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(2020)
}

/// The `records` counter of input `name` from Fluent Bit's `/api/v1/metrics`.
fn input_records(port: u16, name: &str) -> Option<u64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /api/v1/metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("input")?.get(name)?.get("records")?.as_u64()
}

/// (VmRSS, VmHWM) in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// (utime, stime) in seconds from a `/proc/.../stat` file.
fn stat_cpu(path: &Path) -> (f64, f64) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|n| n.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) / hz, ticks(12) / hz)
}

/// utime + stime of the process, seconds.
fn cpu_s(pid: u32) -> f64 {
    let (u, s) = stat_cpu(&PathBuf::from(format!("/proc/{pid}/stat")));
    u + s
}

/// CPU seconds of the process's live threads, summed per thread name, most first: which part
/// of Fluent Bit (engine, output workers) or of the plugin (its pulling thread) did the work.
fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    for task in tasks {
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        let (u, s) = stat_cpu(&task.join("stat"));
        let name = name.trim().to_string();
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += u + s,
            None => by_name.push((name, u + s)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_name
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn stop(child: &mut Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// How long a run may count no new record before it is given up (Fluent Bit 4.0.3's `tail`
/// was seen reading nothing from the file at all).
const STALL: Duration = Duration::from_secs(90);

/// Runs `fluent-bit` with `conf` until input `input` counted `total` records (or 30 min passed,
/// or no record came for [`STALL`]).
fn measure(
    fb: &Path,
    conf: &Path,
    port: u16,
    input: &str,
    total: u64,
    label: &str,
    log: &Path,
) -> HostRun {
    let limit = Duration::from_secs(1800);
    let t0 = Instant::now();
    let mut child = spawn(fb, &[], conf, log);
    let pid = child.id();
    let (mut first, mut done, mut cpu, mut sys) = (None, None, 0.0, 0.0);
    let mut threads = Vec::new();
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut rss_by_tenth: Vec<f64> = Vec::new();
    let mut records = 0;
    let mut moved = Duration::ZERO;
    while t0.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        let n = input_records(port, input).unwrap_or(0);
        let now = t0.elapsed();
        let rss_kb = memory_kb(pid).0;
        samples.push((now, rss_kb));
        while (rss_by_tenth.len() as u64) < 10 && n * 10 >= total * (rss_by_tenth.len() as u64 + 1)
        {
            rss_by_tenth.push(rss_kb as f64 / 1024.0);
        }
        if n != records || now < Duration::from_secs(1) {
            moved = now;
        } else if now - moved > STALL {
            eprintln!(
                "mimecast-bench: {label}: no new record for {} s at {n} of {total}; giving up (see {})",
                STALL.as_secs(),
                log.display()
            );
            break;
        }
        if n > 0 && first.is_none() {
            first = Some(now);
        }
        records = n;
        if n >= total {
            done = Some(now);
            cpu = cpu_s(pid);
            sys = stat_cpu(&PathBuf::from(format!("/proc/{pid}/stat"))).1;
            threads = thread_cpu(pid);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if done.is_some() {
        // Anything counted after the last record is one too many (the simulator's clock
        // stands still, so nothing new is published): give it a moment to show.
        std::thread::sleep(Duration::from_millis(1500));
        records = input_records(port, input).unwrap_or(records).max(records);
    }
    let peak_kb = memory_kb(pid).1;
    stop(&mut child);
    let from = first.unwrap_or_default();
    let to = done.unwrap_or_else(|| t0.elapsed());
    let half = from + (to.saturating_sub(from)) / 2;
    let steady: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t >= half)
        .map(|(_, kb)| *kb as f64 / 1024.0)
        .collect();
    HostRun {
        label: label.to_string(),
        records,
        first,
        done,
        cpu,
        peak_mb: peak_kb as f64 / 1024.0,
        steady_mb: median(steady),
        threads,
        sys,
        rss_by_tenth,
    }
}

fn service(port: u16, extra: &str) -> String {
    format!(
        "[SERVICE]\n    flush 1\n    grace 1\n    log_level warn\n    http_server on\n    http_listen 127.0.0.1\n    http_port {port}\n{extra}"
    )
}

/// A plugins file loading `lib`, as a `[SERVICE]` line (a hot reload reads it again).
fn plugins_file(lib: &Path, work: &Path) -> String {
    let path = work.join("plugins.conf");
    std::fs::write(&path, format!("[PLUGINS]\n    Path {}\n", lib.display()))
        .expect("plugins file");
    format!("    plugins_file {}\n", path.display())
}

/// Writes every record of the backlog's files, in order, as one NDJSON file.
fn write_ndjson(sim: &Sim, slots: &[(&str, i64)], path: &Path) -> u64 {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("NDJSON file"));
    let mut n = 0u64;
    for (t, slot) in slots {
        let f = sim.batch_file_bytes(t, *slot).unwrap_or_default();
        let mut gz = GzLines::new();
        let mut on_line = |l: Line| {
            if let Line::Json(b) = l {
                let _ = out.write_all(b);
                let _ = out.write_all(b"\n");
                n += 1;
            }
        };
        for piece in f.chunks(16 << 10) {
            gz.feed(piece, &mut on_line).expect("gzip");
        }
        gz.finish(&mut on_line).expect("gzip end");
    }
    out.flush().expect("NDJSON file");
    n
}

fn plugin_input(base: &str, types: &[&str], props: &[String], state: &Path) -> String {
    let mut s = format!(
        "[INPUT]\n    Name mimecast\n    Tag mimecast\n    client_id sim-client\n    client_secret sim-secret\n    base_url {base}\n    siem_types {}\n    initial_lookback 24h\n    poll_interval 2s\n",
        types.join(","),
    );
    // `--prop state_dir=...` puts the state elsewhere (on tmpfs, say, to see what the disk costs).
    if !props.iter().any(|p| p.starts_with("state_dir=")) {
        s.push_str(&format!("    state_dir {}\n", state.display()));
    }
    for p in props {
        if let Some((k, v)) = p.split_once('=') {
            s.push_str(&format!("    {k} {v}\n"));
        }
    }
    s
}

/// Writes `<name>.conf` in `work`: the plugin on the simulator at `base`, the null output, the
/// HTTP server on `port`; its state in `<name>-state`.
fn plugin_config(
    work: &Path,
    name: &str,
    port: u16,
    lib: &Path,
    base: &str,
    types: &[&str],
    props: &[String],
) -> PathBuf {
    let conf = work.join(format!("{name}.conf"));
    let state = work.join(format!("{name}-state"));
    std::fs::write(
        &conf,
        format!(
            "{}\n{}\n{NULL_OUTPUT}",
            service(port, &plugins_file(lib, work)),
            plugin_input(base, types, props, &state)
        ),
    )
    .expect("plugin config");
    conf
}

/// Starts `fluent-bit [args] -c conf`, its log into `log`.
fn spawn(fb: &Path, args: &[&str], conf: &Path, log: &Path) -> Child {
    Command::new(fb)
        .args(args)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(log)
                .map(Stdio::from)
                .unwrap_or(Stdio::null()),
        )
        .spawn()
        .expect("start fluent-bit")
}

const NULL_OUTPUT: &str = "[OUTPUT]\n    Name null\n    Match *\n";

/// The comparison: `tail` on the NDJSON file, then the plugin on the simulator.
#[allow(clippy::too_many_arguments)]
pub fn vs_tail(
    fb: &Path,
    lib: &Path,
    sim: &Sim,
    slots: &[(&str, i64)],
    total: u64,
    types: &[&str],
    props: &[String],
    work: &Path,
) -> bool {
    let version = Command::new(fb)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default();
    let file = work.join("records.ndjson");
    let n = write_ndjson(sim, slots, &file);
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    if n != total {
        eprintln!("mimecast-bench: the NDJSON file has {n} records, the backlog {total}");
        return false;
    }
    println!(
        "\nreal host: {version} ({}), null output; the same {n} records as {} batch files from the simulator (plugin) and as one {:.0} MB NDJSON file (tail, json parser)",
        fb.display(),
        slots.len(),
        size as f64 / 1e6
    );
    let port = free_port();
    std::fs::write(
        work.join("parsers.conf"),
        "[PARSER]\n    Name json\n    Format json\n",
    )
    .expect("parsers file");
    let tail_conf = work.join("tail.conf");
    std::fs::write(
        &tail_conf,
        format!(
            "{}\n[INPUT]\n    Name tail\n    Path {}\n    Read_from_Head on\n    Parser json\n\n{NULL_OUTPUT}",
            service(
                port,
                &format!("    parsers_file {}\n", work.join("parsers.conf").display())
            ),
            file.display()
        ),
    )
    .expect("tail config");
    let tail = measure(
        fb,
        &tail_conf,
        port,
        "tail.0",
        n,
        "tail input",
        &work.join("tail.log"),
    );
    let _ = std::fs::remove_file(&file);

    let port = free_port();
    let plugin_conf = plugin_config(work, "plugin", port, lib, &sim.base_url(), types, props);
    let plugin = measure(
        fb,
        &plugin_conf,
        port,
        "mimecast.0",
        n,
        "plugin",
        &work.join("plugin.log"),
    );
    print_table(&tail, &plugin, n);
    let complete = tail.records == n && plugin.records == n;
    if tail.records > n || plugin.records > n {
        eprintln!(
            "mimecast-bench: more records than the backlog's {n} (tail {}, plugin {}): something was delivered twice",
            tail.records, plugin.records
        );
    }
    if !complete {
        for log in ["tail.log", "plugin.log"] {
            let text = std::fs::read_to_string(work.join(log)).unwrap_or_default();
            eprintln!("--- {log} (end)");
            for l in text.lines().rev().take(15).collect::<Vec<_>>().iter().rev() {
                eprintln!("{l}");
            }
        }
    }
    complete
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2} s", d.as_secs_f64()))
        .unwrap_or_else(|| "-".into())
}

fn print_table(tail: &HostRun, plugin: &HostRun, n: u64) {
    println!(
        "\n   {:<28} {:>16} {:>16} {:>10}",
        "", tail.label, plugin.label, "plugin/tail"
    );
    let row = |name: &str, a: String, b: String, r: String| {
        println!("   {name:<28} {a:>16} {b:>16} {r:>10}");
    };
    let ratio = |a: f64, b: f64| {
        if a > 0.0 {
            format!("{:.2}x", b / a)
        } else {
            "-".into()
        }
    };
    row(
        "records",
        format!("{} of {n}", tail.records),
        format!("{} of {n}", plugin.records),
        String::new(),
    );
    row(
        "records/s (first to last)",
        format!("{:.0}", tail.rate()),
        format!("{:.0}", plugin.rate()),
        ratio(tail.rate(), plugin.rate()),
    );
    row(
        "host CPU per record",
        format!("{:.2} us", tail.cpu_us()),
        format!("{:.2} us", plugin.cpu_us()),
        ratio(tail.cpu_us(), plugin.cpu_us()),
    );
    row(
        "peak RSS",
        format!("{:.1} MB", tail.peak_mb),
        format!("{:.1} MB", plugin.peak_mb),
        ratio(tail.peak_mb, plugin.peak_mb),
    );
    row(
        "steady RSS (2nd half)",
        format!("{:.1} MB", tail.steady_mb),
        format!("{:.1} MB", plugin.steady_mb),
        ratio(tail.steady_mb, plugin.steady_mb),
    );
    row(
        "first record",
        secs(tail.first),
        secs(plugin.first),
        String::new(),
    );
    row(
        "last record",
        secs(tail.done),
        secs(plugin.done),
        String::new(),
    );
    for run in [tail, plugin] {
        let per = |s: f64| s * 1e6 / run.records.max(1) as f64;
        let parts: Vec<String> = run
            .threads
            .iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(n, s)| format!("{n} {:.2}", per(*s)))
            .collect();
        println!(
            "   {}: CPU us/record by thread: {}; kernel {:.2} of {:.2}",
            run.label,
            parts.join(", "),
            per(run.sys),
            run.cpu_us()
        );
        let tenths: Vec<String> = run.rss_by_tenth.iter().map(|m| format!("{m:.0}")).collect();
        println!(
            "   {}: RSS MB at 10%, 20%, ... of the records: {}",
            run.label,
            tenths.join(" ")
        );
    }
    println!(
        "figures: tail_rate={:.0} plugin_rate={:.0} tail_cpu_us={:.3} plugin_cpu_us={:.3} tail_peak_mb={:.1} plugin_peak_mb={:.1} tail_steady_mb={:.1} plugin_steady_mb={:.1} tail_first_s={:.2} plugin_first_s={:.2}",
        tail.rate(),
        plugin.rate(),
        tail.cpu_us(),
        plugin.cpu_us(),
        tail.peak_mb,
        plugin.peak_mb,
        tail.steady_mb,
        plugin.steady_mb,
        tail.first.map_or(-1.0, |d| d.as_secs_f64()),
        plugin.first.map_or(-1.0, |d| d.as_secs_f64()),
    );
}

/// The soak: the plugin alone for `minutes`, new files arriving all along, a hot reload every
/// minute; prints RSS per minute.
pub fn soak(
    fb: &Path,
    lib: &Path,
    types: &[&str],
    props: &[String],
    work: &Path,
    minutes: u64,
) -> bool {
    let sim = Sim::start(mimecast_sim::SimConfig {
        siem_rate: 2000,
        speed: 60.0,
        seed: 7,
        ..Default::default()
    })
    .expect("sim");
    let port = free_port();
    let conf = plugin_config(work, "soak", port, lib, &sim.base_url(), types, props);
    let mut child = spawn(fb, &["-Y"], &conf, &work.join("soak.log"));
    let pid = child.id();
    println!(
        "\nsoak: the plugin alone in {} for {minutes} min, simulator clock 60x (an hour of SIEM files a minute), a hot reload (SIGHUP) every minute",
        fb.display()
    );
    println!("   minute   records   RSS MB   peak MB");
    let t0 = Instant::now();
    let mut rss: Vec<f64> = Vec::new();
    let mut ok = true;
    let mut records_in_all = 0u64;
    for minute in 1..=minutes {
        while t0.elapsed() < Duration::from_secs(60 * minute) {
            if let Ok(Some(_)) = child.try_wait() {
                ok = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if !ok {
            println!(
                "   fluent-bit exited early (see {})",
                work.join("soak.log").display()
            );
            break;
        }
        let (now, peak) = memory_kb(pid);
        // The counter restarts with each reload: these are the records since the last one.
        let n = input_records(port, "mimecast.0").unwrap_or(0);
        records_in_all += n;
        rss.push(now as f64 / 1024.0);
        println!(
            "   {minute:>6} {n:>9} {:>8.1} {:>9.1}",
            now as f64 / 1024.0,
            peak as f64 / 1024.0
        );
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    }
    stop(&mut child);
    if rss.len() >= 4 {
        let warm = rss.len() / 3;
        let after: Vec<f64> = rss.iter().skip(warm).copied().collect();
        let (lo, hi) = after
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        println!(
            "   after warm-up (minute {} on): RSS {lo:.1}-{hi:.1} MB, first {:.1} last {:.1} ({:+.1} MB); {records_in_all} records in all",
            warm + 1,
            after.first().copied().unwrap_or(0.0),
            after.last().copied().unwrap_or(0.0),
            after.last().copied().unwrap_or(0.0) - after.first().copied().unwrap_or(0.0)
        );
    }
    ok
}

/// When each piece of output arrived at a TCP listener standing in for a destination.
type Arrivals = std::sync::Arc<std::sync::Mutex<Vec<Instant>>>;

/// A minimal HTTP destination on a free loopback port (Fluent Bit's `http` output posts to it):
/// it notes when each request starts to arrive and answers 200; the port and the times.
fn destination() -> (u16, Arrivals) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let seen: Arrivals = Default::default();
    let keep = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || serve_posts(conn, &keep));
        }
    });
    (port, seen)
}

/// Reads requests off one connection (headers, then `Content-Length` bytes) and answers each.
fn serve_posts(mut conn: TcpStream, seen: &Arrivals) {
    let mut buf: Vec<u8> = Vec::new();
    let mut piece = vec![0u8; 1 << 16];
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut piece) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if buf.is_empty() {
                        if let Ok(mut v) = seen.lock() {
                            v.push(Instant::now());
                        }
                    }
                    buf.extend_from_slice(piece.get(..n).unwrap_or_default());
                }
            }
        };
        let head = String::from_utf8_lossy(buf.get(..head_end).unwrap_or_default()).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match conn.read(&mut piece) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(piece.get(..n).unwrap_or_default()),
            }
        }
        buf.drain(..head_end + len);
        if conn
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn first_after(seen: &Arrivals, t: Instant) -> Option<Instant> {
    seen.lock().ok()?.iter().copied().find(|a| *a >= t)
}

/// Waits until nothing has arrived for `quiet`, or `limit` passed.
fn settle(seen: &Arrivals, quiet: Duration, limit: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let last = seen.lock().ok().and_then(|v| v.last().copied());
        if last.is_some_and(|l| l.elapsed() >= quiet) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The latency check: the plugin in Fluent Bit with the `http` output (json_lines) posting to a
/// listener here, on a simulator whose clock stands still. It catches up with a small
/// backlog (the first record's time at the destination is printed), then each round moves the
/// clock by 15 minutes, which publishes one new batch file per SIEM type, and times the first
/// record of them at the destination from the moment the plugin asked for the first of those
/// files (read) and from the moment they were published (which adds the wait for the
/// plugin's next poll, `poll_interval 2s` here).
pub fn latency(
    fb: &Path,
    lib: &Path,
    types: &[&str],
    props: &[String],
    work: &Path,
    rounds: u64,
) -> bool {
    let sim = Sim::start(mimecast_sim::SimConfig {
        siem_rate: 200,
        speed: 0.0,
        seed: 11,
        ..Default::default()
    })
    .expect("sim");
    let (dest, seen) = destination();
    let conf = work.join("latency.conf");
    let state = work.join("latency-state");
    std::fs::write(
        &conf,
        format!(
            "[SERVICE]\n    flush 1\n    grace 1\n    log_level warn\n{}\n{}\n[OUTPUT]\n    Name http\n    Match *\n    Host 127.0.0.1\n    Port {dest}\n    URI /\n    Format json_lines\n",
            plugins_file(lib, work),
            plugin_input(&sim.base_url(), types, props, &state)
        ),
    )
    .expect("latency config");
    println!(
        "\nlatency: the plugin in {} with the http output (json_lines) to a listener here, flush 1; the simulator's clock stands still but for 15-minute steps",
        fb.display()
    );
    let start = Instant::now();
    let mut child = spawn(fb, &[], &conf, &work.join("latency.log"));
    settle(&seen, Duration::from_secs(3), Duration::from_secs(60));
    let Some(first) = first_after(&seen, start) else {
        println!("   nothing reached the destination in 60 s (see latency.log)");
        stop(&mut child);
        return false;
    };
    println!(
        "   first record of the backlog at the destination {:.2} s after start",
        (first - start).as_secs_f64()
    );
    let tail_first = tail_first_record(fb, work, dest, &seen);
    if let Some(t) = tail_first {
        println!("   (tail input, same output, a one-line file: {t:.2} s)");
    }
    let mut read = Vec::new();
    let mut published = Vec::new();
    for round in 1..=rounds {
        // A pause of 0-1 s first, so that rounds fall anywhere between Fluent Bit's flushes.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::thread::sleep(Duration::from_nanos(u64::from(
            nanos.wrapping_mul(2_654_435_761) % 1_000_000_000,
        )));
        let t = Instant::now();
        sim.advance(Duration::from_secs(900));
        let limit = Duration::from_secs(30);
        let out = loop {
            if let Some(a) = first_after(&seen, t) {
                break Some(a);
            }
            if t.elapsed() > limit {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let fetched = sim
            .arrival_times()
            .into_iter()
            .find(|(a, ep)| *a >= t && *ep == "batch_file")
            .map(|(a, _)| a);
        match (out, fetched) {
            (Some(o), Some(f)) if o >= f => {
                read.push((o - f).as_secs_f64());
                published.push((o - t).as_secs_f64());
                println!(
                    "   round {round}: {:.3} s after the plugin read the file, {:.3} s after it was published",
                    (o - f).as_secs_f64(),
                    (o - t).as_secs_f64()
                );
            }
            _ => {
                println!("   round {round}: no new record within 30 s");
                stop(&mut child);
                return false;
            }
        }
        settle(&seen, Duration::from_millis(1500), Duration::from_secs(30));
    }
    stop(&mut child);
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (
            v.first().copied().unwrap_or(0.0),
            v.get(v.len() / 2).copied().unwrap_or(0.0),
            v.last().copied().unwrap_or(0.0),
        )
    };
    let (a, b, c) = stats(&read);
    let (d, e, f) = stats(&published);
    println!("   from read to destination: min {a:.3} s, median {b:.3} s, max {c:.3} s");
    println!("   from publication to destination: min {d:.3} s, median {e:.3} s, max {f:.3} s");
    println!(
        "figures: first_s={:.3} tail_first_s={:.3} read_median_s={b:.3} read_max_s={c:.3} published_median_s={e:.3} published_max_s={f:.3}",
        (first - start).as_secs_f64(),
        tail_first.unwrap_or(-1.0)
    );
    true
}

/// For comparison: when the first record of Fluent Bit's `tail` input (one line in a file)
/// reaches the same destination after start, seconds.
fn tail_first_record(fb: &Path, work: &Path, dest: u16, seen: &Arrivals) -> Option<f64> {
    let file = work.join("one.ndjson");
    std::fs::write(&file, b"{\"event\":\"one\"}\n").ok()?;
    let conf = work.join("latency-tail.conf");
    std::fs::write(
        &conf,
        format!(
            "[SERVICE]\n    flush 1\n    grace 1\n    log_level warn\n\n[INPUT]\n    Name tail\n    Path {}\n    Read_from_Head on\n\n[OUTPUT]\n    Name http\n    Match *\n    Host 127.0.0.1\n    Port {dest}\n    URI /\n    Format json_lines\n",
            file.display()
        ),
    )
    .ok()?;
    let start = Instant::now();
    let mut child = spawn(fb, &[], &conf, &work.join("latency-tail.log"));
    let mut first = None;
    while start.elapsed() < Duration::from_secs(10) && first.is_none() {
        first = first_after(seen, start);
        std::thread::sleep(Duration::from_millis(5));
    }
    stop(&mut child);
    first.map(|f| (f - start).as_secs_f64())
}

/// `FLUENT_BIT_BIN`, or a message saying how to set it.
pub fn fluent_bit() -> Result<PathBuf, String> {
    match std::env::var_os("FLUENT_BIT_BIN") {
        Some(p) if Path::new(&p).is_file() => Ok(PathBuf::from(p)),
        Some(p) => Err(format!(
            "FLUENT_BIT_BIN={} is not a file",
            Path::new(&p).display()
        )),
        None => Err(
            "--vs-tail and --soak run a real Fluent Bit: set FLUENT_BIT_BIN (e.g. ../shared/fluent-bit/5.1.1/bin/fluent-bit)"
                .into(),
        ),
    }
}
