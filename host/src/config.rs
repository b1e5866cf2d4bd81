//! Instance configuration as Fluent Bit reads it: `[INPUT]` sections of a classic config,
//! `${VAR}` expansion, and the keys the host keeps for itself.

use std::ffi::c_int;

/// One `[INPUT]` section.
#[derive(Clone, Debug, Default)]
pub struct InstanceSpec {
    pub props: Vec<(String, String)>,
    pub log_level: c_int,
}

impl InstanceSpec {
    pub fn new(props: &[(&str, &str)]) -> Self {
        InstanceSpec {
            props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log_level: 3,
        }
    }
}

/// Keys Fluent Bit keeps for itself (flb_input_set_property, v5.1.1): never passed on.
pub fn host_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    matches!(
        k.as_str(),
        "tag"
            | "alias"
            | "log_level"
            | "log_suppress_interval"
            | "routable"
            | "mem_buf_limit"
            | "storage.type"
            | "storage.pause_on_chunks_overlimit"
            | "threaded"
            | "rate_window"
            | "listen"
            | "host"
            | "port"
            | "ipv6"
            | "tls"
    ) || k.starts_with("thread.ring_buffer.")
        || k.starts_with("rate_gate")
        || k.starts_with("net.")
        || k.starts_with("tls.")
}

/// `${VAR}` expansion as Fluent Bit does when reading the configuration.
pub fn expand_env(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find('}') {
            Some(end) => {
                let name = &rest[start + 2..start + 2 + end];
                out.push_str(&std::env::var(name).unwrap_or_default());
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

/// A section's name and its properties in order.
type Section = (String, Vec<(String, String)>);

/// Instances as Fluent Bit's classic config would give them: every `[INPUT]` with
/// `Name mimecast`; other sections are ignored.
pub fn parse_classic_config(text: &str) -> Result<Vec<InstanceSpec>, String> {
    let mut sections: Vec<Section> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("@") {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            sections.push((line[1..line.len() - 1].trim().to_string(), Vec::new()));
            continue;
        }
        let (k, v) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("line {}: expected 'key value'", n + 1))?;
        match sections.last_mut() {
            Some((_, props)) => props.push((k.trim().to_string(), v.trim().to_string())),
            None => return Err(format!("line {}: property outside a section", n + 1)),
        }
    }
    Ok(sections.into_iter().filter_map(mimecast_input).collect())
}

/// The instance a section configures, if it is an `[INPUT]` with `Name mimecast`.
fn mimecast_input((section, props): Section) -> Option<InstanceSpec> {
    let is_ours = props
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("name") && v == "mimecast");
    if !section.eq_ignore_ascii_case("input") || !is_ours {
        return None;
    }
    let log_level = props
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("log_level"))
        .map(|(_, v)| log_level_of(v))
        .unwrap_or(3);
    let props = props
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("name"))
        .collect();
    Some(InstanceSpec { props, log_level })
}

/// A `log_level` value as Fluent Bit's level number (info, 3, for what it does not know).
fn log_level_of(v: &str) -> c_int {
    match v {
        "error" => 1,
        "warn" | "warning" => 2,
        "debug" => 4,
        "trace" => 5,
        "off" => 0,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_config_and_env() {
        std::env::set_var("FBHOST_T_SECRET", "xyz");
        let specs = parse_classic_config(
            "[SERVICE]\n  flush 1\n[INPUT]\n  Name mimecast\n  client_secret ${FBHOST_T_SECRET}\n  log_level debug\n[INPUT]\n  Name dummy\n[OUTPUT]\n  Name stdout\n",
        )
        .unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].log_level, 4);
        assert_eq!(expand_env(&specs[0].props[0].1), "xyz");
        assert!(
            host_key("Tag")
                && host_key("tls.verify")
                && host_key("net.keepalive")
                && !host_key("client_id")
        );
    }
}
