//! `mimecast-bench`: prints the figures the performance work is judged by.
//!
//! 1. the in-process limit: gunzip + JSON parse + msgpack encode of the backlog's records in a
//!    tight loop, with the plugin's own code and libraries, no plugin around it (thread CPU);
//!    and, as a control, the same in the rhythm the host's 1 s collect timer sets the plugin;
//! 2. the plugin path: simulator -> plugin .so -> fbhost (a child process, so its CPU and peak
//!    RSS come from wait4): records/s, MB/s, CPU per million records, peak RSS, first record;
//! 3. the ratio of 2 to 1 in CPU per record.
//!
//! `--repeat N` alternates N rounds of 1 and 2 and prints the median ratios.
//!
//! With `FLUENT_BIT_BIN` set, `--vs-tail` runs the plugin and Fluent Bit's own `tail` input on
//! the same records inside that real Fluent Bit instead, and `--soak MINUTES` watches the
//! plugin's memory there over hot reloads, and `--latency ROUNDS` times records from the moment
//! the plugin reads a new batch file to the moment they reach an output (see `real_host.rs`).
//!
//! Run it through `scripts/bench.sh` (builds everything in release first).

mod real_host;

use fluent_bit_mimecast::encode::{encode_as, Layout, Scratch, TimeField};
use fluent_bit_mimecast::sources::gzlines::{GzLines, Line};
use mimecast_sim::{Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// All ten Cloud Gateway SIEM types (the default backlog).
const ALL_TYPES: &[&str] = fluent_bit_mimecast::config::CG_TYPES;

fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

struct ChildRun {
    wall: Duration,
    cpu: Duration,
    user: Duration,
    stderr: String,
    ok: bool,
}

fn run_child(cmd: &mut Command) -> ChildRun {
    let t0 = Instant::now();
    // Reaped below with wait4, which also returns the child's resource usage.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fbhost");
    let pid = child.id() as libc::pid_t;
    let mut stderr_pipe = child.stderr;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = stderr_pipe.as_mut() {
            use std::io::Read;
            let _ = p.read_to_string(&mut s);
        }
        s
    });
    let mut status = 0;
    // SAFETY: wait4 on our own child with valid out-pointers.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t0.elapsed();
    ChildRun {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        user: tv(ru.ru_utime),
        stderr: reader.join().unwrap_or_default(),
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

fn day_start_ms(back: Duration) -> i64 {
    let t = jiff::Timestamp::now().as_millisecond() - back.as_millis() as i64;
    t.div_euclid(86_400_000) * 86_400_000
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let long = args.iter().any(|a| a == "--long");
    let target: u64 = flag(&args, "--events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if long { 5_000_000 } else { 1_000_000 });
    // `--types receipt,spam`: a backlog of these types only, pulled by one instance.
    let chosen: Vec<&str> = match flag(&args, "--types") {
        Some(list) => {
            let chosen: Vec<&str> = list.split(',').map(str::trim).collect();
            if let Some(bad) = chosen.iter().find(|t| !ALL_TYPES.contains(t)) {
                eprintln!(
                    "--types: unknown SIEM type {bad:?}; known: {}",
                    ALL_TYPES.join(", ")
                );
                std::process::exit(2);
            }
            chosen
        }
        None => ALL_TYPES.to_vec(),
    };
    let types: &[&str] = &chosen;
    // `--repeat N`: N rounds of limit and plugin path, alternating, and the medians.
    let repeat: usize = match flag(&args, "--repeat").map(str::parse) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            eprintln!("--repeat takes a count of at least 1");
            std::process::exit(2);
        }
    };
    // `--prop key=value` (repeatable): more plugin properties, e.g. buffer_max_size=8M.
    let props: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--prop")
        .map(|w| w[1].clone())
        .collect();
    if let Some(bad) = props.iter().find(|p| !p.contains('=')) {
        eprintln!("--prop takes key=value, not {bad:?}");
        std::process::exit(2);
    }
    // `--prop schema=ecs` also makes the in-process limit encode in that schema, so the two
    // stay comparable.
    if let Some(v) = props.iter().find_map(|p| p.strip_prefix("schema=")) {
        match fluent_bit_mimecast::schema::Schema::parse(v) {
            Some(s) => {
                let _ = LIMIT_SCHEMA.set(s);
            }
            None => {
                eprintln!("--prop schema={v}: choose raw, ecs or ocsf");
                std::process::exit(2);
            }
        }
    }
    let release = PathBuf::from(
        std::env::var("BENCH_TARGET_DIR").unwrap_or_else(|_| "target/release".into()),
    );
    let lib = release.join("libfluent_bit_mimecast.so");
    let fbhost = release.join("fbhost");
    let vs_tail = args.iter().any(|a| a == "--vs-tail");
    let soak: Option<u64> = flag(&args, "--soak").map(|v| {
        v.parse().ok().filter(|m| *m >= 2).unwrap_or_else(|| {
            eprintln!("--soak takes whole minutes, at least 2");
            std::process::exit(2);
        })
    });
    let latency: Option<u64> = flag(&args, "--latency").map(|v| {
        v.parse().ok().filter(|m| *m >= 1).unwrap_or_else(|| {
            eprintln!("--latency takes a number of rounds, at least 1");
            std::process::exit(2);
        })
    });
    let real = if vs_tail || soak.is_some() || latency.is_some() {
        match real_host::fluent_bit() {
            Ok(fb) => Some(fb),
            Err(e) => {
                eprintln!("mimecast-bench: SKIPPED: {e}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };
    for p in [&lib, &fbhost] {
        assert!(
            p.exists(),
            "{} not built: run scripts/bench.sh",
            p.display()
        );
    }

    // The backlog: the chosen CG types (all ten by default), from the start of yesterday (UTC) to the last published file.
    let from = day_start_ms(Duration::from_secs(86_400));
    let probe = Sim::start(SimConfig::default()).expect("sim");
    let hours = ((probe.now_ms() - 60_000) / 900_000 * 900_000 - from) as f64 / 3_600_000.0;
    drop(probe);
    let rate = (target as f64 / (types.len() as f64 * hours)).ceil() as u64;
    // The clock stands still: no batch file is published during the run, so the backlog is
    // exactly what every run reads, and a count above it is a duplicate.
    let sim = Sim::start(SimConfig {
        siem_rate: rate,
        seed: 2026,
        speed: 0.0,
        ..Default::default()
    })
    .expect("sim");
    let keys: Vec<_> = types
        .iter()
        .flat_map(|t| {
            sim.truth_batch(t)
                .into_iter()
                .filter(|k| k.slot * 900_000 >= from)
        })
        .collect();
    let total = keys.len() as u64;
    let mut slots: Vec<(&str, i64)> = Vec::new();
    for &t in types {
        let id = mimecast_sim::model::stream_id(t).unwrap_or(0);
        let mut s: Vec<i64> = keys
            .iter()
            .filter(|k| k.stream == id)
            .map(|k| k.slot)
            .collect();
        s.dedup();
        slots.extend(s.into_iter().map(|slot| (t, slot)));
    }
    println!("mimecast-bench: {} cores, backlog {} SIEM events in {} batch files ({} types, {:.0} h, {} events/h/type)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), total, slots.len(), types.len(), hours, rate);

    if let Some(fb) = &real {
        let work = std::env::temp_dir().join(format!("mimecast-bench-real-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&work);
        let mut ok = true;
        if vs_tail {
            sim.warm_batch_files(types);
            ok &= real_host::vs_tail(fb, &lib, &sim, &slots, total, types, &props, &work);
        }
        if let Some(minutes) = soak {
            ok &= real_host::soak(fb, &lib, types, &props, &work, minutes);
        }
        if let Some(rounds) = latency {
            ok &= real_host::latency(fb, &lib, types, &props, &work, rounds);
        }
        if std::env::var_os("MIMECAST_BENCH_KEEP").is_some() {
            println!(
                "kept {} (MIMECAST_BENCH_KEEP): configurations and Fluent Bit logs",
                work.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&work);
        }
        std::process::exit(if ok { 0 } else { 1 });
    }

    // Compress every file once now, untimed: during the run the simulator only sends bytes, as
    // the static file server behind Mimecast's pre-signed URLs does, and leaves the cores to
    // the plugin and the host. The limit below decodes the same bytes.
    sim.warm_batch_files(types);

    let buffer = props
        .iter()
        .find_map(|p| p.strip_prefix("buffer_max_size="))
        .map(|v| {
            fluent_bit_mimecast::config::parse_size(v).unwrap_or_else(|| {
                eprintln!("--prop buffer_max_size={v}: not a size (k or M suffix)");
                std::process::exit(2);
            })
        })
        .unwrap_or(32 << 20);
    let rhythm = (!args.iter().any(|a| a == "--no-rhythm")).then_some(buffer);

    // Idle baseline: the host with the plugin loaded and collecting nothing.
    let state = std::env::temp_dir().join(format!("mimecast-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let idle_sim = Sim::start(SimConfig {
        siem_rate: 0,
        ..Default::default()
    })
    .expect("sim");
    // Given before the bench's own properties: as in Fluent Bit, the first of equal keys wins.
    let mut extra = props;
    extra.push(format!("siem_types={}", types.join(",")));
    let base = run_child(&mut host_cmd(
        &fbhost,
        &extra,
        &lib,
        &idle_sim.base_url(),
        &state.join("idle"),
        None,
        Some(3),
    ));
    drop(idle_sim);
    let idle = peak_mb(summary_line(&base.stderr));

    let mut rounds: Vec<(Limit, Option<Limit>, PathRun)> = Vec::new();
    for round in 0..repeat {
        let limit = run_limit(&sim, &slots, None);
        let in_rhythm = rhythm.map(|size| run_limit(&sim, &slots, Some(size)));
        let path = run_path(
            host_cmd(
                &fbhost,
                &extra,
                &lib,
                &sim.base_url(),
                &state.join(format!("run{round}")),
                Some(total),
                Some(if long { 3600 } else { 900 }),
            ),
            total,
        );
        if round == 0 {
            print_round(&limit, in_rhythm.as_ref(), &path, total, idle, buffer);
        } else {
            println!(
                "\nround {}: limit {:.2} us/record{}, plugin path {:.2} (plugin alone {:.2}): ratio {:.2}x ({:.2}x)",
                round + 1,
                limit.us(),
                in_rhythm
                    .as_ref()
                    .map(|r| format!(" ({:.2} in the host's rhythm)", r.us()))
                    .unwrap_or_default(),
                path.us(),
                path.plugin_us(),
                path.us() / limit.us(),
                path.plugin_us() / limit.us()
            );
        }
        // For scripts (scripts/bench.sh --instructions): the round's counts as key=value.
        println!(
            "figures: round={} limit_records={} path_records={} limit_us={:.3} path_us={:.3} plugin_us={:.3}",
            round + 1,
            limit.records,
            path.delivered,
            limit.us(),
            path.us(),
            path.plugin_us()
        );
        if !path.complete {
            let _ = std::fs::remove_dir_all(&state);
            eprintln!("{}", path.run.stderr);
            std::process::exit(1);
        }
        rounds.push((limit, in_rhythm, path));
    }
    if repeat > 1 {
        let ratio = median(rounds.iter().map(|(l, _, p)| p.us() / l.us()));
        let alone = median(rounds.iter().map(|(l, _, p)| p.plugin_us() / l.us()));
        println!(
            "\nmedian of {repeat} rounds: ratio plugin path / in-process limit {ratio:.2}x (plugin alone {alone:.2}x); limit {:.2} us/record, plugin path {:.2}, plugin alone {:.2}",
            median(rounds.iter().map(|(l, _, _)| l.us())),
            median(rounds.iter().map(|(_, _, p)| p.us())),
            median(rounds.iter().map(|(_, _, p)| p.plugin_us())),
        );
        if rhythm.is_some() {
            let r = median(
                rounds
                    .iter()
                    .filter_map(|(_, r, p)| r.as_ref().map(|r| p.us() / r.us())),
            );
            println!("   against the limit in the host's rhythm: {r:.2}x");
        }
        let peak = rounds.iter().map(|(_, _, p)| p.peak).fold(0.0, f64::max);
        println!(
            "   highest peak RSS   {peak:.1} MB, {:.1} MB above the idle host",
            peak - idle
        );
    }
    let _ = std::fs::remove_dir_all(&state);
}

/// One pass of the in-process limit over every file of the backlog.
#[derive(Default)]
struct Limit {
    records: u64,
    json_bytes: u64,
    out_bytes: u64,
    gz_bytes: usize,
    cpu: Duration,
    wall: Duration,
}

impl Limit {
    fn us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.records.max(1) as f64
    }
}

/// The in-process limit: every file of the backlog, so that it weighs the types as the plugin
/// path does; each file is fetched from the simulator untimed, then decoded timed. With
/// `rhythm`, it pauses after each `rhythm` bytes of output until a second has passed since that
/// burst began: the rhythm the host's 1 s collect timer sets the plugin when a backlog fills
/// its buffer every time (a control: how much this machine slows work done in bursts).
fn run_limit(sim: &Sim, slots: &[(&str, i64)], rhythm: Option<usize>) -> Limit {
    let mut l = Limit::default();
    let mut out = Vec::with_capacity(2 << 20);
    let (mut burst_start, mut burst_bytes) = (Instant::now(), 0u64);
    for (t, slot) in slots {
        let f = sim.batch_file_bytes(t, *slot).unwrap_or_default();
        l.gz_bytes += f.len();
        let cpu0 = thread_cpu();
        let w0 = Instant::now();
        let (n, json, flushed) = decode_file(&f, &mut out);
        l.cpu += thread_cpu() - cpu0;
        l.wall += w0.elapsed();
        l.records += n;
        l.json_bytes += json;
        l.out_bytes += flushed;
        if let Some(size) = rhythm {
            burst_bytes += flushed;
            if burst_bytes >= size as u64 {
                std::thread::sleep(Duration::from_secs(1).saturating_sub(burst_start.elapsed()));
                (burst_start, burst_bytes) = (Instant::now(), 0);
            }
        }
    }
    l.out_bytes += out.len() as u64;
    l
}

/// One run of the plugin path, from fbhost's summary line and its resource usage.
struct PathRun {
    run: ChildRun,
    delivered: u64,
    msgpack: u64,
    first: String,
    peak: f64,
    largest: f64,
    /// CPU seconds the host spent decoding the records it took in.
    host_s: f64,
    complete: bool,
}

impl PathRun {
    fn us(&self) -> f64 {
        self.run.cpu.as_secs_f64() * 1e6 / self.delivered.max(1) as f64
    }
    fn plugin_us(&self) -> f64 {
        (self.run.cpu.as_secs_f64() - self.host_s) * 1e6 / self.delivered.max(1) as f64
    }
}

fn summary_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("fbhost: "))
        .unwrap_or("")
}

/// Peak RSS in MB from an fbhost summary line.
fn peak_mb(line: &str) -> f64 {
    line.split("peak RSS ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn run_path(mut cmd: Command, total: u64) -> PathRun {
    let run = run_child(&mut cmd);
    let summary = summary_line(&run.stderr);
    let word = |i: usize| -> u64 {
        summary
            .split_whitespace()
            .nth(i)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (delivered, msgpack) = (word(1), word(3));
    let first = summary
        .split("first record after ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or("-")
        .to_string();
    let largest = summary
        .split("(largest ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    // The host's own decoding of every record (Fluent Bit does the same work on append).
    let host_s = summary
        .split("host decoding CPU ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1e3;
    PathRun {
        complete: run.ok && delivered >= total,
        peak: peak_mb(summary),
        run,
        delivered,
        msgpack,
        first,
        largest,
        host_s,
    }
}

fn print_round(
    limit: &Limit,
    in_rhythm: Option<&Limit>,
    p: &PathRun,
    total: u64,
    idle: f64,
    buffer: usize,
) {
    println!("\n1. in-process limit (gunzip + JSON parse + msgpack encode, same code, one thread)");
    println!("   records            {}", limit.records);
    println!(
        "   input              {:.1} MB gzip, {:.1} MB NDJSON; output {:.1} MB msgpack",
        limit.gz_bytes as f64 / 1e6,
        limit.json_bytes as f64 / 1e6,
        limit.out_bytes as f64 / 1e6
    );
    println!(
        "   CPU                {:.2} s ({:.2} us/record, {:.0} records/s per core), wall {:.2} s",
        limit.cpu.as_secs_f64(),
        limit.us(),
        1e6 / limit.us(),
        limit.wall.as_secs_f64()
    );
    if let Some(r) = in_rhythm {
        println!(
            "   in host's rhythm   {:.2} us/record: the same, pausing after each {} MiB of output until a second has passed, as the plugin does between collects (a control for what work in bursts costs on this machine)",
            r.us(),
            buffer >> 20
        );
    }
    let cpu = p.run.cpu.as_secs_f64();
    println!("\n2. plugin path (simulator -> plugin .so -> fbhost, fbhost in its own process)");
    println!(
        "   records            {} of {}{}",
        p.delivered,
        total,
        if p.complete { "" } else { "  (INCOMPLETE)" }
    );
    println!(
        "   wall               {:.2} s: {:.0} records/s, {:.1} MB/s of msgpack handed to the host",
        p.run.wall.as_secs_f64(),
        p.delivered as f64 / p.run.wall.as_secs_f64(),
        p.msgpack as f64 / 1e6 / p.run.wall.as_secs_f64()
    );
    println!(
        "   CPU (host+plugin)  {cpu:.2} s ({:.2} user) = {:.2} s per million records ({:.2} us/record)",
        p.run.user.as_secs_f64(),
        p.us(),
        p.us()
    );
    println!(
        "   of which host      {:.2} s decoding the records it took in; the rest, {:.2} s, is the plugin's ({:.2} us/record)",
        p.host_s,
        cpu - p.host_s,
        p.plugin_us()
    );
    println!(
        "   peak RSS           {:.1} MB (idle host with plugin loaded: {idle:.1} MB, so {:.1} MB for the pull)",
        p.peak,
        p.peak - idle
    );
    println!("   largest collect    {:.2} MB", p.largest / 1e6);
    println!("   first record       {} after start", p.first);
    println!(
        "\n3. ratio of CPU per record, plugin path / in-process limit: {:.2}x (plugin alone, without the host's decoding: {:.2}x)",
        p.us() / limit.us(),
        p.plugin_us() / limit.us()
    );
    if let Some(r) = in_rhythm {
        println!(
            "   against the limit in the host's rhythm: {:.2}x (plugin alone {:.2}x)",
            p.us() / r.us(),
            p.plugin_us() / r.us()
        );
    }
    println!("   (the plugin path also includes HTTP over loopback, the hand-off, the host's decoding and the fbhost process itself)");
}

fn median(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The value after `name` on the command line.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

/// The schema the in-process limit encodes in (`raw` unless `--prop schema=...`).
static LIMIT_SCHEMA: std::sync::OnceLock<fluent_bit_mimecast::schema::Schema> =
    std::sync::OnceLock::new();

/// The in-process limit for one batch file: gunzip, split lines, encode each record into `out`,
/// clearing it past 1 MiB. Returns (records, NDJSON bytes, msgpack bytes cleared from `out`).
/// Never inlined, so that `scripts/bench.sh --instructions` can count exactly this.
#[inline(never)]
fn decode_file(f: &[u8], out: &mut Vec<u8>) -> (u64, u64, u64) {
    let (mut records, mut json_bytes, mut flushed) = (0u64, 0u64, 0u64);
    let mut gz = GzLines::new();
    let schema = LIMIT_SCHEMA
        .get()
        .copied()
        .unwrap_or(fluent_bit_mimecast::schema::Schema::Raw);
    let layout = Layout {
        source: "siem_cg",
        norm: schema.normalizer(fluent_bit_mimecast::schema::Records::Siem),
    };
    let mut scratch = Scratch::default();
    let mut on_line = |l: Line| {
        if let Line::Json(b) = l {
            json_bytes += b.len() as u64 + 1;
            let time = TimeField::EpochMillis("timestamp");
            if encode_as(out, b, time, &layout, &[], &mut scratch).is_ok() {
                records += 1;
            }
            if out.len() > 1 << 20 {
                flushed += out.len() as u64;
                out.clear();
            }
        }
    };
    for piece in f.chunks(16 << 10) {
        gz.feed(piece, &mut on_line).expect("gzip");
    }
    gz.finish(&mut on_line).expect("gzip end");
    (records, json_bytes, flushed)
}

fn host_cmd(
    fbhost: &Path,
    extra: &[String],
    lib: &Path,
    base: &str,
    state: &Path,
    records: Option<u64>,
    max_secs: Option<u64>,
) -> Command {
    let mut c = Command::new(fbhost);
    c.arg("-e").arg(lib).args(["-i", "mimecast"]);
    for p in extra.iter().chain(&[
        "client_id=sim-client".to_string(),
        "client_secret=sim-secret".to_string(),
        format!("base_url={base}"),
        format!("state_dir={}", state.display()),
        "initial_lookback=24h".to_string(),
        "poll_interval=2s".to_string(),
        "log_level=warn".to_string(),
    ]) {
        c.args(["-p", p]);
    }
    c.args(["--print", "none"]);
    if let Some(n) = records {
        c.args(["--exit-after-records", &n.to_string()]);
    }
    if let Some(s) = max_secs {
        c.args(["--exit-after", &format!("{s}s")]);
    }
    c
}
