//! The config map: given to the host only where the host reads it (Fluent Bit 5.1.1+, told
//! apart by its cmetrics version and the size of its def allocation), and refused keys then;
//! elsewhere the plugin says which properties it read. Its own test binary: the override
//! MIMECAST_FLB_CONFIG_MAP is process-wide and read by every Register.

mod common;
use common::*;
use fbhost::{Generation, HostError};

fn logs_of(h: &fbhost::Host) -> String {
    logs_text(&h.collected.logs())
}

#[test]
fn config_map_only_where_the_host_reads_it() {
    let sim = sim_with(|_| {});
    std::env::remove_var("MIMECAST_FLB_CONFIG_MAP");

    // 5.1.1: detected without any setting; unknown keys are refused by the host.
    let plugin = Plugin::copy();
    let mut h = host(&plugin, Generation::V5_1_1);
    let names = h.config_map.clone().expect("a 5.1.1 host got the map");
    for p in fluent_bit_mimecast::config::PROPERTIES {
        assert!(
            names.iter().any(|n| n == p.name),
            "{} missing from the map",
            p.name
        );
    }
    match h.add_instance(spec(&sim, &[("poll_intervall", "1s")])) {
        Err(HostError::UnknownProperty(k)) => assert_eq!(k, "poll_intervall"),
        other => panic!("unknown key accepted: {:?}", other.map(|_| ())),
    }
    h.add_instance(spec(&sim, &[("siem_types", "av"), ("Tag", "x")]))
        .expect("known and host keys pass");
    assert!(
        !logs_of(&h).contains("properties read"),
        "no key list where the host checks keys"
    );
    h.stop();

    // Every older layout, 5.1.0 included (same cmetrics as 5.1.1, 40-byte def): no map, nothing
    // written past the def (fbhost checks the allocation's slack), and the key list at start.
    for gen in [
        Generation::V2_0,
        Generation::V4_1,
        Generation::V5_0,
        Generation::V5_1_0,
    ] {
        let plugin = Plugin::copy();
        let mut h = host(&plugin, gen);
        assert!(h.config_map.is_none(), "{gen:?} got a config map");
        h.add_instance(spec(&sim, &[("siem_types", "av"), ("sorces", "audit")]))
            .unwrap_or_else(|e| panic!("{gen:?}: {e}"));
        let logs = logs_of(&h);
        let line = logs
            .lines()
            .find(|l| l.contains("properties read:"))
            .unwrap_or_else(|| panic!("{gen:?}: no key list at start:\n{logs}"));
        assert!(
            line.contains("siem_types") && line.contains("client_id"),
            "{line}"
        );
        assert!(
            !line.contains("sorces") && !line.contains("sim-secret"),
            "names only, of keys the plugin knows: {line}"
        );
        assert!(line.contains("mimecast-check"), "{line}");
        h.stop();
    }

    // The override: off keeps the map from a 5.1.1 host, on gives it (operator's word).
    std::env::set_var("MIMECAST_FLB_CONFIG_MAP", "off");
    let plugin = Plugin::copy();
    let mut h = host(&plugin, Generation::V5_1_1);
    assert!(h.config_map.is_none());
    h.add_instance(spec(&sim, &[("siem_typos", "x")])).unwrap();
    assert!(
        logs_of(&h).contains("MIMECAST_FLB_CONFIG_MAP=off"),
        "{}",
        logs_of(&h)
    );
    h.stop();
    std::env::set_var("MIMECAST_FLB_CONFIG_MAP", "on");
    let plugin = Plugin::copy();
    let h = host(&plugin, Generation::V5_1_1);
    assert!(h.config_map.is_some());
    std::env::remove_var("MIMECAST_FLB_CONFIG_MAP");
}

/// The keys `mimecast-check` lets pass as Fluent Bit's own are the ones the test host (which
/// follows flb_input_set_property of 5.1.1) keeps from the plugin: one fact, checked twice.
#[test]
fn host_keys_agree_with_the_test_host() {
    use fluent_bit_mimecast::config::{is_host_key, HOST_KEYS, HOST_KEY_PREFIXES};
    for k in HOST_KEYS.iter().filter(|k| **k != "name") {
        assert!(fbhost::host_key(k), "{k}: not a host key for fbhost");
    }
    for p in HOST_KEY_PREFIXES {
        let k = format!("{p}x");
        assert!(fbhost::host_key(&k) && is_host_key(&k), "{k}");
    }
    for k in ["sources", "client_id", "poll_interval", "nets.x"] {
        assert!(!fbhost::host_key(k) && !is_host_key(k), "{k}");
    }
}
