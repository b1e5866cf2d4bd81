//! `fbhost`: run the plugin the way Fluent Bit would, printing records as JSON lines; or, with
//! `--summarize`, summarise such lines read from stdin (see `summary.rs`).

mod summary;

use fbhost::{Collected, Generation, Host, InstanceSpec, Keep, Record};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: fbhost -e PLUGIN.so (-c fluent-bit.conf | -i mimecast -p key=value ... [-i mimecast ...])
  --gen 2.0|4.1|5.0|5.1.1   host ABI generation to present (default 5.1.1)
  --print json|none         print each record as a JSON line on stdout (default json)
  --exit-after DURATION     stop gracefully after this long (e.g. 30s; default: until SIGINT/SIGTERM)
  --exit-after-records N    stop gracefully once N records arrived
Exit status: 0 ok, 1 invalid data seen (a violation), 255 an instance failed Init.

       fbhost --summarize N [--sim BASE_URL] < records.jsonl
  reads the JSON lines a host printed (fbhost's, or Fluent Bit's stdout output with format
  json_lines), passes the first N through, then prints records per source and SIEM type with
  their event-time range and, with --sim, the requests the simulator at BASE_URL answered.
  Exit status: 0, or 1 when no record arrived.";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() {
    std::process::exit(match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fbhost: {e}\n\n{USAGE}");
            2
        }
    })
}

/// What the command line asks for.
struct Options {
    lib: Option<String>,
    gen: Generation,
    specs: Vec<InstanceSpec>,
    print: bool,
    exit_after: Option<Duration>,
    exit_records: Option<u64>,
    summarize: Option<u64>,
    sim: Option<String>,
}

fn run() -> Result<i32, String> {
    let Some(opts) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(0);
    };
    if let Some(show) = opts.summarize {
        return Ok(summary::run(show, opts.sim.as_deref()));
    }
    if opts.sim.is_some() {
        return Err("--sim goes with --summarize".into());
    }
    let lib = opts.lib.clone().ok_or("-e PLUGIN.so is required")?;
    if opts.specs.is_empty() {
        return Err("no [INPUT] with Name mimecast (use -c or -i)".into());
    }
    run_host(&lib, opts)
}

/// The options, or None for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options {
        lib: None,
        gen: Generation::V5_1_1,
        specs: Vec::new(),
        print: true,
        exit_after: None,
        exit_records: None,
        summarize: None,
        sim: None,
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "-e" | "--plugin" => o.lib = Some(val()?),
            "-c" | "--config" => {
                let path = val()?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                o.specs.extend(fbhost::parse_classic_config(&text)?);
            }
            "-i" | "--input" => {
                let name = val()?;
                if name != "mimecast" {
                    return Err(format!(
                        "input '{name}': this host runs only the mimecast plugin"
                    ));
                }
                o.specs.push(InstanceSpec::new(&[]));
            }
            "-p" | "--prop" => {
                let kv = val()?;
                let (k, v) = kv.split_once('=').ok_or("-p takes key=value")?;
                let spec = o.specs.last_mut().ok_or("-p must follow -i mimecast")?;
                if k.eq_ignore_ascii_case("log_level") {
                    spec.log_level = log_level(v);
                }
                spec.props.push((k.to_string(), v.to_string()));
            }
            "--gen" => {
                let g = val()?;
                o.gen = Generation::parse(&g)
                    .ok_or(format!("--gen: '{g}' is not 2.0, 4.1, 5.0 or 5.1.1"))?;
            }
            "--print" => o.print = val()? == "json",
            "--exit-after" => {
                let v = val()?;
                let secs: u64 = v
                    .trim_end_matches('s')
                    .parse()
                    .map_err(|_| format!("--exit-after: '{v}' is not seconds"))?;
                o.exit_after = Some(Duration::from_secs(secs));
            }
            "--exit-after-records" => {
                o.exit_records = Some(
                    val()?
                        .parse()
                        .map_err(|_| "--exit-after-records takes a number")?,
                )
            }
            "--summarize" => {
                let v = val()?;
                o.summarize = Some(
                    v.parse()
                        .map_err(|_| format!("--summarize: '{v}' is not a number of records"))?,
                )
            }
            "--sim" => o.sim = Some(val()?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(Some(o))
}

/// `-p log_level=...` as a level number.
fn log_level(v: &str) -> libc::c_int {
    match v {
        "error" => 1,
        "warn" => 2,
        "debug" => 4,
        "trace" => 5,
        "off" => 0,
        _ => 3,
    }
}

/// Runs the instances until a signal or an `--exit-after*` limit, then prints the summary line.
fn run_host(lib: &str, opts: Options) -> Result<i32, String> {
    // SAFETY: installing async-signal-safe handlers that only store an atomic flag.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let printer = opts.print.then(json_printer);
    let started = Instant::now();
    let mut host = Host::load(std::path::Path::new(lib), opts.gen, Keep::Count, printer)
        .map_err(|e| e.to_string())?;
    for spec in opts.specs {
        if let Err(e) = host.add_instance(spec) {
            eprintln!("fbhost: {e}; stopping (as Fluent Bit does, exit 255)");
            host.abort_after_init_failure();
            return Ok(255);
        }
    }
    host.start();
    let collected = host.collected.clone();
    while !STOP.load(Ordering::SeqCst) {
        if opts.exit_after.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if opts
            .exit_records
            .is_some_and(|n| collected.count.load(Ordering::Relaxed) >= n)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = host.stop();
    print_summary(&c, started);
    Ok(if c.violations().is_empty() { 0 } else { 1 })
}

/// Prints each record as a JSON line on stdout.
fn json_printer() -> fbhost::Printer {
    Arc::new(|records: &[Record]| {
        let mut out = std::io::stdout().lock();
        for r in records {
            let line = serde_json::json!({"tag": r.tag, "date": r.secs as f64 + r.nanos as f64 / 1e9, "record": r.to_json()});
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    })
}

/// The `fbhost: N records, ...` line on stderr (read by the benchmark).
fn print_summary(c: &Collected, started: Instant) {
    let peak_kb = peak_rss_kb();
    let first = c
        .first_record_at
        .lock()
        .map(|f| f.map(|t| t.duration_since(started)))
        .unwrap_or(None);
    eprintln!(
        "fbhost: {} records, {} bytes in {} buffers (largest {}), first record after {}, {} violations, {} collect errors, peak RSS {} kB, host decoding CPU {} ms",
        c.count.load(Ordering::Relaxed),
        c.bytes.load(Ordering::Relaxed),
        c.buffers.load(Ordering::Relaxed),
        c.max_buffer.load(Ordering::Relaxed),
        first.map(|d| format!("{:.2}s", d.as_secs_f64())).unwrap_or_else(|| "-".into()),
        c.violations().len(),
        c.collect_errors.load(Ordering::Relaxed),
        peak_kb,
        c.host_cpu_ns.load(Ordering::Relaxed) / 1_000_000,
    );
}

/// VmHWM of this process, in kB (0 if unknown).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
}
