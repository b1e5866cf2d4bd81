//! `mimecast-sim`: run the simulator by hand.

use mimecast_sim::{Client, FaultRule, RateLimit, Sim, SimConfig};
use std::time::Duration;

const USAGE: &str = "usage: mimecast-sim [options]
  --port N             listen on 127.0.0.1:N (default 0 = any free port)
  --seed N             data seed (default 1)
  --tls                serve HTTPS with a CA generated at start
  --ca-file PATH       where to write that CA (PEM)
  --client-id ID       accepted client id (default sim-client)
  --client-secret S    accepted client secret (default sim-secret)
  --token-ttl SECS     access token lifetime (default 1799)
  --siem-rate N        events per hour for every SIEM type (default 400)
  --api-rate N         events per hour for every /api/... log source (default 60)
  --rate STREAM=N      per-stream override, repeatable (receipt=5000, audit=10, ...)
  --speed X            simulated seconds per real second (default 1)
  --start-ms MS        simulated time at start, epoch ms (default now)
  --rate-limit N/SECS  per-client request budget, e.g. 100/60
  --fault JSON         add a fault rule at start, repeatable (see sim/README.md)
  --forbid ENDPOINT    the client lacks permission for ENDPOINT (403), repeatable
  --unlicensed ENDPOINT  the tenant has no licence for ENDPOINT (404), repeatable
  --siem-error-style fail|error
Prints `listening <base_url>` on stdout once ready, then serves until killed.";

fn main() {
    if let Err(e) = run() {
        eprintln!("mimecast-sim: {e}\n\n{USAGE}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let Some((cfg, faults)) = parse_args(std::env::args().skip(1))? else {
        return Ok(());
    };
    let sim = Sim::start(cfg).map_err(|e| format!("cannot start: {e}"))?;
    for f in faults {
        sim.add_fault(f);
    }
    println!("listening {}", sim.base_url());
    if let Some(ca) = sim.ca_file() {
        println!("ca_file {}", ca.display());
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The configuration and the faults to add at start; `None` after printing the usage.
fn parse_args(
    mut args: impl Iterator<Item = String>,
) -> Result<Option<(SimConfig, Vec<FaultRule>)>, String> {
    let mut cfg = SimConfig::default();
    let mut faults = Vec::new();
    let mut client = Client {
        id: "sim-client".into(),
        secret: "sim-secret".into(),
        forbidden: vec![],
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        let num = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{a}: '{v}' is not a number"))
        };
        match a.as_str() {
            "--port" => cfg.bind.set_port(num(val()?)? as u16),
            "--seed" => cfg.seed = num(val()?)?,
            "--tls" => cfg.tls = true,
            "--ca-file" => cfg.ca_file = Some(val()?.into()),
            "--client-id" => client.id = val()?,
            "--client-secret" => client.secret = val()?,
            "--token-ttl" => cfg.token_ttl = Duration::from_secs(num(val()?)?),
            "--siem-rate" => cfg.siem_rate = num(val()?)?,
            "--api-rate" => cfg.api_rate = num(val()?)?,
            "--rate" => {
                let v = val()?;
                let (k, n) = v.split_once('=').ok_or("--rate takes STREAM=N")?;
                cfg.rates.insert(k.to_string(), num(n.to_string())?);
            }
            "--speed" => cfg.speed = val()?.parse().map_err(|_| "--speed takes a number")?,
            "--start-ms" => {
                cfg.start_ms = Some(val()?.parse().map_err(|_| "--start-ms takes epoch ms")?)
            }
            "--rate-limit" => {
                let v = val()?;
                let (n, secs) = v.split_once('/').ok_or("--rate-limit takes N/SECS")?;
                cfg.rate_limit = Some(RateLimit {
                    limit: num(n.to_string())?,
                    window: Duration::from_secs(num(secs.to_string())?),
                    headers_always: false,
                });
            }
            "--fault" => faults.push(
                serde_json::from_str::<FaultRule>(&val()?).map_err(|e| format!("--fault: {e}"))?,
            ),
            "--forbid" => client.forbidden.push(val()?),
            "--unlicensed" => cfg.unlicensed.push(val()?),
            "--siem-error-style" => cfg.siem_error_style = error_style(&val()?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    cfg.clients = vec![client];
    Ok(Some((cfg, faults)))
}

fn error_style(v: &str) -> Result<mimecast_sim::SiemErrorStyle, String> {
    match v {
        "fail" => Ok(mimecast_sim::SiemErrorStyle::Fail),
        "error" => Ok(mimecast_sim::SiemErrorStyle::Error),
        other => Err(format!(
            "--siem-error-style: '{other}' is not fail or error"
        )),
    }
}
