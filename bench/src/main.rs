//! `mimecast-bench`: prints the figures the performance work is judged by.
//!
//! 1. the in-process limit: gunzip + JSON parse + msgpack encode of the backlog's records in a
//!    tight loop, with the plugin's own code and libraries, no plugin around it (thread CPU);
//! 2. the plugin path: simulator -> plugin .so -> fbhost (a child process, so its CPU and peak
//!    RSS come from wait4): records/s, MB/s, CPU per million records, peak RSS, first record;
//! 3. the ratio of 2 to 1 in CPU per record.
//!
//! Run it through `scripts/bench.sh` (builds everything in release first).

use fluent_bit_mimecast::encode::{encode_record, TimeField};
use fluent_bit_mimecast::ffi::buffer::HostBuf;
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
    let release = PathBuf::from(
        std::env::var("BENCH_TARGET_DIR").unwrap_or_else(|_| "target/release".into()),
    );
    let lib = release.join("libfluent_bit_mimecast.so");
    let fbhost = release.join("fbhost");
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
    let sim = Sim::start(SimConfig {
        siem_rate: rate,
        seed: 2026,
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

    // Compress every file once now, untimed: during the run the simulator only sends bytes, as
    // the static file server behind Mimecast's pre-signed URLs does, and leaves the cores to
    // the plugin and the host. The limit below decodes the same bytes.
    sim.warm_batch_files(types);

    // 1. in-process limit: every file of the backlog, so that it weighs the types as the
    //    plugin path does; each file is fetched from the simulator untimed, then decoded timed.
    let (mut records, mut json_bytes, mut out_bytes, mut gz_bytes) = (0u64, 0u64, 0u64, 0usize);
    let mut out = HostBuf::with_capacity(2 << 20);
    let (mut limit_cpu, mut limit_wall) = (Duration::ZERO, Duration::ZERO);
    for (t, slot) in &slots {
        let f = sim.batch_file_bytes(t, *slot).unwrap_or_default();
        gz_bytes += f.len();
        let cpu0 = thread_cpu();
        let w0 = Instant::now();
        let (n, json, flushed) = decode_file(&f, &mut out);
        records += n;
        json_bytes += json;
        out_bytes += flushed;
        limit_cpu += thread_cpu() - cpu0;
        limit_wall += w0.elapsed();
    }
    out_bytes += out.len() as u64;
    let limit_us = limit_cpu.as_secs_f64() * 1e6 / records as f64;
    println!("\n1. in-process limit (gunzip + JSON parse + msgpack encode, same code, one thread)");
    println!("   records            {records}");
    println!(
        "   input              {:.1} MB gzip, {:.1} MB NDJSON; output {:.1} MB msgpack",
        gz_bytes as f64 / 1e6,
        json_bytes as f64 / 1e6,
        out_bytes as f64 / 1e6
    );
    println!(
        "   CPU                {:.2} s ({:.2} us/record, {:.0} records/s per core), wall {:.2} s",
        limit_cpu.as_secs_f64(),
        limit_us,
        1e6 / limit_us,
        limit_wall.as_secs_f64()
    );
    // Idle baseline: the host with the plugin loaded and collecting nothing.
    let state = std::env::temp_dir().join(format!("mimecast-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let idle_sim = Sim::start(SimConfig {
        siem_rate: 0,
        ..Default::default()
    })
    .expect("sim");
    // Given before the bench's own properties: as in Fluent Bit, the first of equal keys wins.
    let mut extra = props.clone();
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

    // 2. the plugin path
    let run = run_child(&mut host_cmd(
        &fbhost,
        &extra,
        &lib,
        &sim.base_url(),
        &state.join("run"),
        Some(total),
        Some(if long { 3600 } else { 900 }),
    ));
    let summary = run
        .stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("fbhost: "))
        .unwrap_or("")
        .to_string();
    let delivered: u64 = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let msgpack: u64 = summary
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let first = summary
        .split("first record after ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or("-")
        .to_string();
    let peak_kb = |line: &str| -> f64 {
        line.split("peak RSS ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let base_line = base
        .stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("fbhost: "))
        .unwrap_or("")
        .to_string();
    let (peak, idle) = (peak_kb(&summary) / 1024.0, peak_kb(&base_line) / 1024.0);
    let largest = summary
        .split("(largest ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    let path_us = run.cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64;
    // The host's own decoding of every record (Fluent Bit does the same work on append).
    let host_s = summary
        .split("host decoding CPU ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1e3;
    let plugin_us = (run.cpu.as_secs_f64() - host_s) * 1e6 / delivered.max(1) as f64;
    println!("\n2. plugin path (simulator -> plugin .so -> fbhost, fbhost in its own process)");
    println!(
        "   records            {delivered} of {total}{}",
        if run.ok && delivered >= total {
            ""
        } else {
            "  (INCOMPLETE)"
        }
    );
    println!(
        "   wall               {:.2} s: {:.0} records/s, {:.1} MB/s of msgpack handed to the host",
        run.wall.as_secs_f64(),
        delivered as f64 / run.wall.as_secs_f64(),
        msgpack as f64 / 1e6 / run.wall.as_secs_f64()
    );
    println!("   CPU (host+plugin)  {:.2} s ({:.2} user) = {:.2} s per million records ({path_us:.2} us/record)", run.cpu.as_secs_f64(), run.user.as_secs_f64(), run.cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64);
    println!("   of which host      {host_s:.2} s decoding the records it took in; the rest, {:.2} s, is the plugin's ({plugin_us:.2} us/record)", run.cpu.as_secs_f64() - host_s);
    println!("   peak RSS           {peak:.1} MB (idle host with plugin loaded: {idle:.1} MB, so {:.1} MB for the pull)", peak - idle);
    println!("   largest collect    {:.2} MB", largest / 1e6);
    println!("   first record       {first} after start");
    println!(
        "\n3. ratio of CPU per record, plugin path / in-process limit: {:.2}x (plugin alone, without the host's decoding: {:.2}x)",
        path_us / limit_us,
        plugin_us / limit_us
    );
    println!("   (the plugin path also includes HTTP over loopback, the hand-off, the host's decoding and the fbhost process itself)");
    let _ = std::fs::remove_dir_all(&state);
    if !run.ok || delivered < total {
        eprintln!("{}", run.stderr);
        std::process::exit(1);
    }
}

/// The value after `name` on the command line.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

/// The in-process limit for one batch file: gunzip, split lines, encode each record into `out`,
/// clearing it past 1 MiB. Returns (records, NDJSON bytes, msgpack bytes cleared from `out`).
/// Never inlined, so that `scripts/bench.sh --instructions` can count exactly this.
#[inline(never)]
fn decode_file(f: &[u8], out: &mut HostBuf) -> (u64, u64, u64) {
    let (mut records, mut json_bytes, mut flushed) = (0u64, 0u64, 0u64);
    let mut gz = GzLines::new();
    let mut on_line = |l: Line| {
        if let Line::Json(b) = l {
            json_bytes += b.len() as u64 + 1;
            if encode_record(out, b, TimeField::EpochMillis("timestamp"), "siem_cg").is_ok() {
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
