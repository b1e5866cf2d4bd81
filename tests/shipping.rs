//! The shipped files agree with each other and with the plugin: the Debian package's paths and
//! plugins file, the container image (`Dockerfile`), the Helm values (`deploy/helm/`), the
//! changelog. The Dockerfile and the Helm values cannot be built or rendered here (no container
//! engine, no Helm): these checks are what can be checked of them. The package itself is
//! installed and loaded by `scripts/check-package.sh` in CI.

use fluent_bit_mimecast::config::{self, Config, DEFAULT_STATE_DIR};
use std::collections::HashMap;
use yaml_rust2::{Yaml, YamlLoader};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Fluent Bit releases the real-host tests run on (../shared/fluent-bit, .ci/run).
const TESTED_HOSTS: &[&str] = &["5.1.1", "4.0.3"];
/// The distroless base image's "nonroot" user.
const NONROOT: &str = "65532";

fn read(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `Path` of a `[PLUGINS]` file.
fn plugin_path(text: &str) -> String {
    let paths: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Path "))
        .map(str::trim)
        .collect();
    assert_eq!(paths.len(), 1, "one Path in:\n{text}");
    paths[0].to_string()
}

/// The properties of a classic `[INPUT]` section, keys lower-cased.
fn section_props(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('[') && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once(char::is_whitespace)?;
            Some((k.to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// Dockerfile instructions: (instruction, its arguments), continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let text = read("Dockerfile");
    let mut joined = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => joined.push_str(part),
            None => {
                joined.push_str(line);
                let (i, rest) = joined.split_once(' ').unwrap_or((&joined, ""));
                out.push((i.to_string(), rest.trim().to_string()));
                joined.clear();
            }
        }
    }
    out
}

/// The destination of the `COPY` whose arguments end in `to`-like text, by its source.
fn copy_dest(ins: &[(String, String)], source: &str) -> String {
    let copy = ins
        .iter()
        .filter(|(i, _)| i == "COPY")
        .map(|(_, a)| a.split_whitespace().collect::<Vec<_>>())
        .find(|a| a.len() >= 2 && a[a.len() - 2] == source)
        .unwrap_or_else(|| panic!("no COPY of {source} in the Dockerfile"));
    copy[copy.len() - 1].to_string()
}

fn values() -> Yaml {
    let docs = YamlLoader::load_from_str(&read("deploy/helm/values.yaml")).expect("valid YAML");
    docs.into_iter().next().expect("one document")
}

#[test]
fn the_image_loads_the_plugin_it_copies_and_keeps_state_where_the_plugin_looks() {
    let ins = dockerfile();
    let lib = copy_dest(&ins, "/out/libfluent_bit_mimecast.so");
    let plugins = copy_dest(&ins, "packaging/docker/plugins.conf");
    assert_eq!(plugin_path(&read("packaging/docker/plugins.conf")), lib);
    // The image's default configuration names plugins.conf beside it.
    assert_eq!(plugins, "/fluent-bit/etc/plugins.conf");
    assert_eq!(copy_dest(&ins, "/out/state"), DEFAULT_STATE_DIR);
    let arg = |name: &str| {
        ins.iter()
            .filter(|(i, _)| i == "VOLUME" || i == "USER" || i == "ARG")
            .find_map(|(i, a)| (i == name).then_some(a.clone()))
    };
    assert_eq!(arg("VOLUME").as_deref(), Some(DEFAULT_STATE_DIR));
    assert_eq!(arg("USER"), Some(format!("{NONROOT}:{NONROOT}")));
    assert!(ins.iter().any(|(i, a)| i == "COPY"
        && a.contains(&format!("--chown={NONROOT}:{NONROOT}"))
        && a.ends_with(DEFAULT_STATE_DIR)));
    // The base image is a release the real-host tests run on.
    let fb = ins
        .iter()
        .find_map(|(i, a)| {
            (i == "ARG")
                .then(|| a.strip_prefix("FLUENT_BIT_VERSION="))
                .flatten()
        })
        .expect("ARG FLUENT_BIT_VERSION=<release>");
    assert!(
        TESTED_HOSTS.contains(&fb),
        "{fb} is not one of {TESTED_HOSTS:?}"
    );
    assert!(ins
        .iter()
        .any(|(i, a)| i == "FROM" && a == "fluent/fluent-bit:${FLUENT_BIT_VERSION}"));
}

#[test]
fn the_helm_values_run_one_collector_of_that_image_with_valid_properties() {
    let v = values();
    assert_eq!(v["kind"].as_str(), Some("Deployment"), "never a DaemonSet");
    assert_eq!(v["replicaCount"].as_i64(), Some(1));
    assert_eq!(v["updateStrategy"]["type"].as_str(), Some("Recreate"));
    let fb = dockerfile()
        .into_iter()
        .find_map(|(i, a)| {
            (i == "ARG")
                .then(|| a.strip_prefix("FLUENT_BIT_VERSION=").map(str::to_string))
                .flatten()
        })
        .expect("the Dockerfile's Fluent Bit version");
    assert_eq!(
        v["image"]["tag"].as_str(),
        Some(format!("{VERSION}-fluent-bit-{fb}").as_str())
    );
    let user = NONROOT.parse::<i64>().unwrap();
    assert_eq!(v["securityContext"]["runAsUser"].as_i64(), Some(user));
    assert_eq!(v["podSecurityContext"]["fsGroup"].as_i64(), Some(user));
    assert_eq!(v["securityContext"]["runAsNonRoot"].as_bool(), Some(true));

    // The plugins file of the image, and the state volume where the input keeps its state.
    let service = section_props(v["config"]["service"].as_str().expect("config.service"));
    assert_eq!(
        service.get("plugins_file").map(String::as_str),
        Some("/fluent-bit/etc/plugins.conf")
    );
    let mounts = v["extraVolumeMounts"].as_vec().expect("extraVolumeMounts");
    assert!(mounts
        .iter()
        .any(|m| m["mountPath"].as_str() == Some(DEFAULT_STATE_DIR)));
    let volume = mounts[0]["name"].as_str().unwrap();
    assert!(v["extraVolumes"]
        .as_vec()
        .unwrap()
        .iter()
        .any(|x| x["name"].as_str() == Some(volume) && !x["persistentVolumeClaim"].is_badvalue()));

    // The input: every key known, every value valid, secrets from the Secret's variables.
    let input = section_props(v["config"]["inputs"].as_str().expect("config.inputs"));
    assert_eq!(input.get("name").map(String::as_str), Some("mimecast"));
    assert_eq!(
        input.get("state_dir").map(String::as_str),
        Some(DEFAULT_STATE_DIR)
    );
    for k in input.keys() {
        assert!(
            config::is_known_key(k) || config::is_host_key(k),
            "{}",
            config::unknown_key_message(k)
        );
    }
    let env: Vec<&str> = v["env"]
        .as_vec()
        .expect("env")
        .iter()
        .filter(|e| !e["valueFrom"]["secretKeyRef"]["name"].is_badvalue())
        .filter_map(|e| e["name"].as_str())
        .collect();
    for (k, var) in [
        ("client_id", "MIMECAST_CLIENT_ID"),
        ("client_secret", "MIMECAST_CLIENT_SECRET"),
    ] {
        assert_eq!(input.get(k), Some(&format!("${{{var}}}")));
        assert!(env.contains(&var), "{var} comes from a Secret");
    }
    let expanded = |k: &str| {
        input.get(k).map(|v| {
            if v.starts_with("${") {
                "synthetic".to_string()
            } else {
                v.clone()
            }
        })
    };
    if let Err(e) = Config::from_properties(expanded) {
        panic!("the Helm values' input is invalid: {e:?}");
    }
}

#[test]
fn the_debian_package_installs_the_plugin_where_its_plugins_file_points() {
    let cargo = read("Cargo.toml");
    let asset = |src: &str| -> String {
        let line = cargo
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("[\"{src}\"")))
            .unwrap_or_else(|| panic!("no deb asset {src}"));
        line.split('"').nth(3).expect("a destination").to_string()
    };
    let lib_dir = asset("target/release/libfluent_bit_mimecast.so");
    let plugins = asset("packaging/plugins-mimecast.conf");
    assert_eq!(
        plugin_path(&read("packaging/plugins-mimecast.conf")),
        format!("/{lib_dir}libfluent_bit_mimecast.so")
    );
    assert!(cargo.contains(&format!("conf-files = [\"/{plugins}\"]")));
    // Beside the official package's configuration, without taking over its plugins.conf.
    assert!(plugins.starts_with("etc/fluent-bit/") && !plugins.ends_with("/plugins.conf"));
    assert_eq!(asset("target/release/mimecast-check"), "usr/bin/");
    let postinst = read("packaging/deb/postinst");
    assert!(postinst.contains(&format!("install -d -m 0750 {DEFAULT_STATE_DIR}")));
    let check = read("scripts/check-package.sh");
    assert!(check.contains(&format!("lib=/{lib_dir}libfluent_bit_mimecast.so")));
    assert!(check.contains(&format!("plugins=/{plugins}")));
}

#[test]
fn the_changelog_has_this_version() {
    let log = read("CHANGELOG.md");
    assert!(
        log.lines()
            .any(|l| l.starts_with(&format!("## [{VERSION}] - "))),
        "CHANGELOG.md has no section for {VERSION}"
    );
    assert!(log.contains("## [Unreleased]"));
}
