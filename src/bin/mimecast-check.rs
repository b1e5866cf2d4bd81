//! `mimecast-check`: checks a configuration before running it. Gets a token, then probes each
//! selected source with one minimal request and prints a table: OK, auth failed, missing
//! permission (named), not licensed, rate limited, network or TLS error, with what to do.
//!
//!   mimecast-check -c fluent-bit.conf          (every [INPUT] with Name mimecast)
//!   mimecast-check -p client_id=... -p client_secret=... -p sources=siem_cg,audit [--sample]
//!
//! Exit status: 0 when every selected source is usable, 1 when one is not, 2 on a bad
//! configuration.

use fluent_bit_mimecast::config::Config;
use fluent_bit_mimecast::probe;
use std::collections::HashMap;

fn main() {
    std::process::exit(run());
}

fn expand_env(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find('}') {
            Some(end) => {
                out.push_str(&std::env::var(&rest[start + 2..start + 2 + end]).unwrap_or_default());
                rest = &rest[start + 2 + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `[INPUT]` sections with `Name mimecast` of a classic config, as property maps.
fn inputs_of(text: &str) -> Vec<HashMap<String, String>> {
    let mut out = Vec::new();
    let mut cur: Option<(String, HashMap<String, String>)> = None;
    let mut flush = |c: Option<(String, HashMap<String, String>)>| {
        if let Some((section, props)) = c {
            if section.eq_ignore_ascii_case("input")
                && props.get("name").map(String::as_str) == Some("mimecast")
            {
                out.push(props);
            }
        }
    };
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line.starts_with('[') && line.ends_with(']') {
            flush(cur.take());
            cur = Some((line[1..line.len() - 1].trim().to_string(), HashMap::new()));
        } else if let (Some((_, props)), Some((k, v))) =
            (cur.as_mut(), line.split_once(char::is_whitespace))
        {
            props
                .entry(k.trim().to_ascii_lowercase())
                .or_insert_with(|| expand_env(v.trim()));
        }
    }
    flush(cur.take());
    out
}

fn run() -> i32 {
    let mut sets: Vec<HashMap<String, String>> = Vec::new();
    let mut props: HashMap<String, String> = HashMap::new();
    let mut sample = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-c" => match args
                .next()
                .map(|p| std::fs::read_to_string(&p).map_err(|e| format!("cannot read {p}: {e}")))
            {
                Some(Ok(text)) => sets.extend(inputs_of(&text)),
                Some(Err(e)) => {
                    eprintln!("mimecast-check: {e}");
                    return 2;
                }
                None => return usage(),
            },
            "-p" => match args.next().as_deref().and_then(|kv| kv.split_once('=')) {
                Some((k, v)) => {
                    props.insert(k.to_ascii_lowercase(), expand_env(v));
                }
                None => return usage(),
            },
            "--sample" => sample = true,
            _ => return usage(),
        }
    }
    if !props.is_empty() {
        sets.push(props);
    }
    if sets.is_empty() {
        return usage();
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mimecast-check: {e}");
            return 2;
        }
    };
    let mut worst = 0;
    for (i, set) in sets.iter().enumerate() {
        let cfg = match Config::from_properties(|k| set.get(k).cloned().filter(|v| !v.is_empty())) {
            Ok(c) => c,
            Err(errors) => {
                for e in errors {
                    eprintln!("mimecast-check: input {i}: {e}");
                }
                return 2;
            }
        };
        println!("input {i}: client_id {} at {}", cfg.client_id, cfg.base_url);
        match rt.block_on(probe::check(&cfg, sample)) {
            Ok(probes) => {
                print!("{}", probe::table(&probes));
                if probes.iter().any(|p| p.verdict != probe::Verdict::Ok) {
                    worst = 1;
                }
            }
            Err(e) => {
                eprintln!("mimecast-check: {e}");
                return 2;
            }
        }
    }
    worst
}

fn usage() -> i32 {
    eprintln!("usage: mimecast-check (-c fluent-bit.conf | -p key=value ...) [--sample]");
    2
}
