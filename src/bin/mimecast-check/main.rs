//! `mimecast-check`: checks a configuration of the Mimecast input before Fluent Bit runs it.
//! Reads the properties (from Fluent Bit configuration files, classic or YAML, or from `-p`),
//! refuses unknown keys (naming the nearest valid one) and invalid values, then gets a token and
//! probes each selected source with one minimal request, printing a table: OK, auth failed,
//! missing permission (named), not licensed, rate limited, network or TLS error, with what to do.
//!
//! Exit status: 0 when every selected source is usable, 1 when one is not, 2 on a bad
//! configuration (or bad arguments).

mod fbconfig;

use fluent_bit_mimecast::config::{self, Config};
use fluent_bit_mimecast::probe;
use std::collections::HashMap;
use std::path::Path;

const USAGE: &str = "usage: mimecast-check -c FILE [-c FILE ...] [--sample]
       mimecast-check -p key=value [-p key=value ...] [--sample]
       mimecast-check --help | --version";

const HELP: &str =
    "mimecast-check: checks the Mimecast input's configuration before Fluent Bit runs it.

It reads the input's properties, refuses unknown keys (naming the nearest valid one) and invalid
values, then gets a token and makes one minimal request per selected source, and prints what
works and what to do about what does not. Nothing is collected and no position is saved.

Options:
  -c, --config FILE     a Fluent Bit configuration; every input with name mimecast in it is
                        checked. Classic (e.g. fluent-bit.conf.example; @INCLUDE and @SET are
                        followed) or YAML (e.g. fluent-bit.yaml.example; includes: and env: are
                        followed). Fluent Bit reads YAML only from files named .yaml or .yml;
                        this check also recognises YAML content under another name, with a note.
                        Repeatable.
  -p, --prop key=value  one property of an instance given on the command line, as with
                        fluent-bit -i mimecast -p key=value. All -p together form one instance.
  --sample              also print one decoded record per source that has one (for SIEM batch,
                        the first record of the first listed file).
  -h, --help            this help.
  -V, --version         the version of mimecast-check (the plugin's version).

${VAR} in values is expanded as Fluent Bit does (@SET / env: first, then the environment), in
-p values too: single-quote '${VAR}' to keep a secret out of the process list.

Exit status: 0 every selected source is usable, 1 one is not, 2 the configuration is invalid.

Examples:
  export MIMECAST_CLIENT_ID=... MIMECAST_CLIENT_SECRET=...
  mimecast-check -c fluent-bit.yaml.example
  mimecast-check -c fluent-bit.conf.example
  mimecast-check -p 'client_id=${MIMECAST_CLIENT_ID}' -p 'client_secret=${MIMECAST_CLIENT_SECRET}' \\
                 -p sources=siem_cg,audit --sample";

fn main() {
    std::process::exit(run(std::env::args().skip(1).collect()));
}

/// What the command line asks for.
enum Command {
    Help,
    Version,
    Check {
        files: Vec<String>,
        props: Vec<(String, String)>,
        sample: bool,
    },
}

fn parse_args(args: Vec<String>) -> Result<Command, String> {
    let mut files = Vec::new();
    let mut props = Vec::new();
    let mut sample = false;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-c" | "--config" => files.push(
                args.next()
                    .ok_or("-c needs a file, e.g. -c fluent-bit.yaml.example")?,
            ),
            "-p" | "--prop" => {
                let kv = args
                    .next()
                    .ok_or("-p needs key=value, e.g. -p sources=siem_cg")?;
                match kv.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        props.push((k.trim().to_ascii_lowercase(), v.to_string()))
                    }
                    // the argument may hold a secret: never echo it
                    _ => return Err("-p takes key=value, e.g. -p sources=siem_cg".into()),
                }
            }
            "--sample" => sample = true,
            // a key=value argument may hold a secret: never echo it
            other if other.contains('=') => {
                return Err("a key=value argument goes after -p, e.g. -p sources=siem_cg".into())
            }
            other if other.starts_with('-') => return Err(format!("unknown option '{other}'")),
            other => {
                return Err(format!(
                    "unexpected argument '{other}'; a configuration file goes after -c"
                ))
            }
        }
    }
    if files.is_empty() && props.is_empty() {
        return Err("nothing to check: give -c FILE or -p key=value".into());
    }
    Ok(Command::Check {
        files,
        props,
        sample,
    })
}

/// One instance of the input to check.
struct Instance {
    /// Where it comes from, for messages: `FILE:LINE`, `FILE: pipeline.inputs[N]` or `-p`.
    origin: Option<String>,
    /// Keys lower-cased with values expanded, in order, repeats kept.
    props: Vec<(String, String)>,
    /// What makes the instance invalid.
    problems: Vec<String>,
    /// Worth knowing, not fatal.
    notes: Vec<String>,
}

impl Instance {
    fn new(
        origin: Option<String>,
        raw: &[(String, String)],
        vars: &HashMap<String, String>,
    ) -> Self {
        let mut notes = Vec::new();
        let props = raw
            .iter()
            .map(|(k, v)| {
                let mut unset = Vec::new();
                let value = fbconfig::expand(v, vars, &mut unset);
                for var in unset {
                    notes.push(format!(
                        "'{k}' refers to ${{{var}}}, which is not set (neither by @SET / env: nor in the environment); Fluent Bit would read it as empty"
                    ));
                }
                (k.clone(), value)
            })
            .collect();
        Instance {
            origin,
            props,
            problems: Vec::new(),
            notes,
        }
    }

    /// Checks the keys and values; the configuration, or the problems recorded on `self`.
    fn validate(&mut self) -> Option<Config> {
        let mut map: HashMap<&str, &str> = HashMap::new();
        let mut times: Vec<(&str, usize)> = Vec::new();
        for (k, v) in &self.props {
            if !config::is_known_key(k) {
                self.problems.push(config::unknown_key_message(k));
                continue;
            }
            if config::is_host_key(k) {
                continue;
            }
            match times.iter_mut().find(|(key, _)| key == k) {
                Some((_, n)) => *n += 1,
                None => times.push((k, 1)),
            }
            // Fluent Bit hands the plugin the first value; an empty one counts as unset.
            map.entry(k.as_str()).or_insert(v.as_str());
        }
        for (k, n) in times.into_iter().filter(|(_, n)| *n > 1) {
            self.notes.push(format!(
                "'{k}' is set {n} times; Fluent Bit hands the plugin the first one"
            ));
        }
        let cfg = Config::from_properties(|k| {
            map.get(k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.to_string())
        });
        match cfg {
            Ok(c) if self.problems.is_empty() => Some(c),
            Ok(_) => None,
            Err(errors) => {
                self.problems.extend(errors);
                None
            }
        }
    }
}

/// The instances a file defines; prints what is wrong with the file and returns None if it
/// cannot be checked.
fn instances_of(file: &str) -> Option<Vec<Instance>> {
    let loaded = match fbconfig::load(Path::new(file)) {
        Ok(l) => l,
        Err(errors) => {
            for e in errors {
                eprintln!("mimecast-check: {e}");
            }
            return None;
        }
    };
    for n in &loaded.notes {
        eprintln!("mimecast-check: note: {n}");
    }
    let (ours, others): (Vec<_>, Vec<_>) = loaded
        .inputs
        .into_iter()
        .partition(|i| i.name.trim().eq_ignore_ascii_case("mimecast"));
    if ours.is_empty() {
        let found = if others.is_empty() {
            "found no inputs".to_string()
        } else {
            let names: Vec<&str> = others
                .iter()
                .map(|i| {
                    if i.name.is_empty() {
                        "(no name)"
                    } else {
                        i.name.as_str()
                    }
                })
                .collect();
            format!("found inputs: {}", names.join(", "))
        };
        eprintln!("mimecast-check: {file}: no input with name mimecast; {found}");
        return None;
    }
    Some(
        ours.into_iter()
            .map(|i| {
                let mut inst = Instance::new(Some(i.origin), &i.props, &loaded.vars);
                inst.problems.extend(i.problems);
                inst
            })
            .collect(),
    )
}

fn run(args: Vec<String>) -> i32 {
    let (files, props, sample) = match parse_args(args) {
        Ok(Command::Help) => {
            println!("{HELP}");
            return 0;
        }
        Ok(Command::Version) => {
            println!("mimecast-check {}", fluent_bit_mimecast::VERSION);
            return 0;
        }
        Ok(Command::Check {
            files,
            props,
            sample,
        }) => (files, props, sample),
        Err(e) => {
            eprintln!("mimecast-check: {e}\n{USAGE}\nRun mimecast-check --help for more.");
            return 2;
        }
    };
    let mut invalid = false;
    let mut instances = Vec::new();
    for file in &files {
        match instances_of(file) {
            Some(found) => instances.extend(found),
            None => invalid = true,
        }
    }
    if !props.is_empty() {
        instances.push(Instance::new(None, &props, &HashMap::new()));
    }
    let mut checked = Vec::new();
    for (i, inst) in instances.iter_mut().enumerate() {
        let label = match &inst.origin {
            Some(o) => format!("input {i} ({o})"),
            None => format!("input {i}"),
        };
        let cfg = inst.validate();
        for n in &inst.notes {
            eprintln!("mimecast-check: {label}: note: {n}");
        }
        for p in &inst.problems {
            eprintln!("mimecast-check: {label}: {p}");
        }
        match cfg {
            Some(c) => checked.push((label, c)),
            None => invalid = true,
        }
    }
    if invalid {
        eprintln!("mimecast-check: the configuration is invalid; nothing was sent to Mimecast");
        return 2;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mimecast-check: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let mut worst = 0;
    for (label, cfg) in &checked {
        println!("{label}: client_id {} at {}", cfg.client_id, cfg.base_url);
        match rt.block_on(probe::check(cfg, sample)) {
            Ok(probes) => {
                print!("{}", probe::table(&probes));
                if probes.iter().any(|p| p.verdict != probe::Verdict::Ok) {
                    worst = 1;
                }
            }
            Err(e) => {
                eprintln!("mimecast-check: {label}: {e}");
                return 2;
            }
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert!(matches!(parse_args(args(&["--help"])), Ok(Command::Help)));
        assert!(matches!(
            parse_args(args(&["--version"])),
            Ok(Command::Version)
        ));
        assert!(matches!(
            parse_args(args(&["-p", "a=b", "-h"])),
            Ok(Command::Help)
        ));
        match parse_args(args(&["-c", "x.yaml", "-p", "Sources=a=b", "--sample"])) {
            Ok(Command::Check {
                files,
                props,
                sample,
            }) => {
                assert_eq!(files, ["x.yaml"]);
                assert_eq!(props, [("sources".to_string(), "a=b".to_string())]);
                assert!(sample);
            }
            _ => panic!("not parsed"),
        }
        assert!(parse_args(args(&[])).is_err());
        assert!(parse_args(args(&["-c"])).is_err());
        assert!(parse_args(args(&["fluent-bit.conf"])).is_err());
        // A forgotten -p: the error does not echo what may be a secret.
        for a in ["client_secret=hunter2", "--client_secret=hunter2"] {
            match parse_args(args(&["-p", "client_id=x", a])) {
                Err(e) => assert!(!e.contains("hunter2") && e.contains("-p"), "{e}"),
                Ok(_) => panic!("{a} accepted"),
            }
        }
        let e = parse_args(args(&["-p", "s3cr3t"]))
            .err()
            .unwrap_or_default();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    fn instance(pairs: &[(&str, &str)]) -> Instance {
        let raw: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Instance::new(None, &raw, &HashMap::new())
    }

    #[test]
    fn unknown_keys_and_repeats() {
        let mut i = instance(&[
            ("client_id", "id"),
            ("client_secret", "s"),
            ("sorces", "audit"),
            ("tag", "mimecast"),
            ("storage.type", "filesystem"),
        ]);
        assert!(i.validate().is_none());
        assert_eq!(
            i.problems,
            ["unknown property 'sorces': did you mean 'sources'?"]
        );

        let mut i = instance(&[
            ("client_id", "id"),
            ("client_secret", "s"),
            ("sources", "audit"),
            ("sources", "dlp"),
            ("page_size", ""),
        ]);
        let cfg = i.validate().expect("valid");
        assert_eq!(cfg.source_names(), ["audit"], "the first value counts");
        assert_eq!(cfg.page_size, 100, "an empty value is unset");
        assert!(i
            .notes
            .iter()
            .any(|n| n.contains("'sources' is set 2 times")));
    }
}
