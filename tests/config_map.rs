//! The opt-in config map (MIMECAST_FLB_CONFIG_MAP=on). Its own test binary: the variable is
//! process-wide and is read by every Register.

mod common;
use common::*;
use fbhost::{Generation, HostError};

#[test]
fn config_map_only_on_request_and_then_validates_keys() {
    let sim = sim_with(|_| {});
    // Without the opt-in: no map, unknown keys pass silently (as Fluent Bit does without one).
    std::env::remove_var("MIMECAST_FLB_CONFIG_MAP");
    let plugin = Plugin::copy();
    let mut h = host(&plugin, Generation::V5_1_1);
    assert!(h.config_map.is_none());
    h.add_instance(spec(&sim, &[("siem_typos", "x")])).unwrap();
    h.stop();

    std::env::set_var("MIMECAST_FLB_CONFIG_MAP", "on");
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
    h.stop();

    // Why it is opt-in: on an older host the same write lands past the 40-byte def.
    let plugin = Plugin::copy();
    let err = fbhost::Host::load(&plugin.path, Generation::V5_0, fbhost::Keep::All, None)
        .err()
        .expect("the guard bytes catch it");
    assert!(
        err.to_string().contains("wrote past the 40-byte def"),
        "{err}"
    );
    std::env::remove_var("MIMECAST_FLB_CONFIG_MAP");
}
