//! The map in docs/architecture.md, checked against the code: every module of `src/` is in the
//! room the map gives it, and no module reaches up to a room above its own (the one documented
//! exception: `config` validates the `sources` property against the source registry).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Rooms from the bottom of the house to the top; a module may use its own room and those
/// below it.
const ROOMS: &[(&str, &[&str])] = &[
    ("leaves", &["hash", "ffi::buffer"]),
    (
        "records and state",
        &["log", "metrics", "encode", "schema", "state"],
    ),
    ("configuration and hand-off", &["config", "handoff"]),
    ("Mimecast client", &["mimecast"]),
    (
        "stream plumbing",
        &["sources::context", "sources::emit", "sources::gzlines"],
    ),
    ("sources", &["sources"]),
    ("connection check", &["probe"]),
    ("instance", &["instance"]),
    ("FFI", &["ffi"]),
];

/// Upward uses that are part of the design, with why.
const ALLOWED_UP: &[(&str, &str)] = &[
    // The `sources` property is parsed against the registry, so the selection is typed once.
    ("config", "sources"),
];

fn rank(module: &str) -> Option<usize> {
    // The longest prefix wins: `sources::emit` before `sources`.
    let mut best: Option<(usize, usize)> = None;
    for (i, (_, members)) in ROOMS.iter().enumerate() {
        for m in *members {
            let hit = module == *m || module.starts_with(&format!("{m}::"));
            if hit && best.is_none_or(|(len, _)| m.len() > len) {
                best = Some((m.len(), i));
            }
        }
    }
    best.map(|(_, i)| i)
}

/// `src/sources/emit.rs` -> `sources::emit`; `src/state/mod.rs` -> `state`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix("src").unwrap_or(path);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            if !p.ends_with("bin") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|e| e == "rs") && !p.ends_with("lib.rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its tests (tests may reach anywhere).
fn non_test_code(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Paths a file uses: `crate::a::b` as `a::b`, and `super::x` resolved against its module.
fn uses(module: &str, code: &str) -> Vec<String> {
    let parent: Vec<&str> = {
        let mut p: Vec<&str> = module.split("::").collect();
        p.pop();
        p
    };
    let ident = |s: &str| -> Vec<String> {
        // The path after the prefix: segments of identifiers, or a `{...}` group.
        let s = s.trim_start();
        if let Some(group) = s.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            return group[..end]
                .split(',')
                .map(|x| {
                    x.trim()
                        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .filter(|x| !x.is_empty())
                .collect();
        }
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(s.len());
        vec![s[..end].trim_end_matches(':').to_string()]
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        out.extend(ident(&code[i + 7..]));
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("::") {
            continue;
        }
        for name in ident(&code[i + 7..]) {
            let mut full: Vec<&str> = parent.clone();
            full.push(&name);
            out.push(full.join("::"));
        }
    }
    out
}

#[test]
fn no_module_uses_a_room_above_its_own() {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        let module = module_of(f);
        let Some(own) = rank(&module) else {
            violations.push(format!(
                "{}: module {module} is in no room of the map",
                f.display()
            ));
            continue;
        };
        seen.insert(module.clone(), own);
        let text = std::fs::read_to_string(f).unwrap();
        for used in uses(&module, non_test_code(&text)) {
            let Some(r) = rank(&used) else { continue };
            let top = used.split("::").next().unwrap_or("");
            let allowed = ALLOWED_UP
                .iter()
                .any(|(from, to)| module.starts_with(from) && top == *to);
            if r > own && !allowed {
                violations.push(format!(
                    "{module} ({}) uses {used} ({})",
                    ROOMS[own].0, ROOMS[r].0
                ));
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(
        violations.is_empty(),
        "uses against the map:\n{}",
        violations.join("\n")
    );
    // The check looked at the rooms it claims to: the FFI and the sources among them.
    for m in [
        "ffi::exports",
        "sources::siem_batch",
        "sources::emit",
        "handoff",
    ] {
        assert!(seen.contains_key(m), "{m} not scanned");
    }
}

#[test]
fn the_architecture_page_names_every_module() {
    let doc = std::fs::read_to_string("docs/architecture.md").expect("docs/architecture.md");
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .map(|f| f.display().to_string())
        .filter(|f| !doc.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md does not mention: {missing:?}"
    );
}

#[test]
fn the_scanner_sees_upward_uses() {
    // The check itself can fail: a leaf using the FFI is caught.
    let used = uses(
        "sources::emit",
        "use super::siem::Family; use crate::ffi::exports::X;",
    );
    assert!(
        used.contains(&"sources::siem::Family".to_string()),
        "{used:?}"
    );
    assert!(rank("sources::siem::Family") > rank("sources::emit"));
    assert!(used.contains(&"ffi::exports::X".to_string()), "{used:?}");
    assert!(rank("ffi::exports") > rank("hash"));
    assert_eq!(rank("ffi::buffer"), Some(0));
    let grouped = uses("sources::api_logs", "use super::{explain, context::X};");
    assert!(
        grouped.contains(&"sources::explain".to_string()),
        "{grouped:?}"
    );
}

/// The source contract holds: outside its own module no code names a source (a special case
/// by name in the runner, the probe or the FFI would be a second place to change). The one
/// exception is the default of the `sources` property.
#[test]
fn only_its_own_module_names_a_source() {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let code: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            (module_of(f), non_test_code(&text).to_string())
        })
        .collect();
    let mut problems = Vec::new();
    for name in fluent_bit_mimecast::config::SOURCES.iter() {
        let literal = format!("\"{name}\"");
        let naming: Vec<&str> = code
            .iter()
            .filter(|(_, c)| c.contains(&literal))
            .map(|(m, _)| m.as_str())
            .filter(|m| !(*m == "config" && *name == "siem_cg"))
            .collect();
        match naming.as_slice() {
            [one] if one.starts_with("sources::") => {}
            other => problems.push(format!("{name}: named in {other:?}")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
