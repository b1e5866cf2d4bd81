//! Reads Fluent Bit configuration files the way Fluent Bit 5.1.1 does, as far as finding the
//! inputs and their properties goes:
//!
//! - classic (any name but `.yaml`/`.yml`): `[INPUT]` sections, `@INCLUDE` (a relative path is
//!   tried from the working directory, then from the main file's directory; `*` and `?` globs
//!   from the main file's directory) and `@SET KEY=VALUE`;
//! - YAML (`.yaml`/`.yml`): `pipeline: inputs:`, `includes:` (relative to the including file)
//!   and `env:`.
//!
//! Values are kept as written; [`expand`] resolves `${VAR}` from `@SET`/`env:` first, then the
//! environment, as Fluent Bit does. Everything Fluent Bit would refuse (a missing include, a
//! key without a value, broken YAML) is reported with the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// Fluent Bit refuses deeper nesting of includes long before this; it stops include loops.
const MAX_DEPTH: usize = 32;

/// One input section.
pub struct Input {
    /// Where it is defined: `FILE:LINE` (classic) or `FILE: pipeline.inputs[N]` (YAML).
    pub origin: String,
    /// The plugin name (`Name` / `name:`), as written; empty if the section has none.
    pub name: String,
    /// Keys lower-cased, in file order, repeats kept; values as written (before `${VAR}`).
    pub props: Vec<(String, String)>,
    /// What Fluent Bit would misread in this section (a YAML list given as a value, ...).
    pub problems: Vec<String>,
}

/// Everything read from one file and its includes.
#[derive(Default)]
pub struct Loaded {
    pub inputs: Vec<Input>,
    /// Variables from `@SET` and `env:`.
    pub vars: HashMap<String, String>,
    /// Worth knowing about the files, not fatal.
    pub notes: Vec<String>,
}

/// The directory of `path`: `.` for a bare file name (whose parent is the empty path).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads `path` and everything it includes. Errors name the file and line and say what to fix.
pub fn load(path: &Path) -> Result<Loaded, Vec<String>> {
    let mut r = Reader {
        root: dir_of(path),
        seen: Vec::new(),
        out: Loaded::default(),
        errors: Vec::new(),
    };
    if is_yaml(path) {
        r.yaml(path, 0);
    } else if reads_like_yaml(path) {
        // Fluent Bit itself would read it as classic and refuse it; check it as what it is.
        r.out.notes.push(format!(
            "{} is YAML, read as such here; Fluent Bit reads YAML only from files named .yaml or .yml (and this one as classic, which it refuses): copy or rename it before fluent-bit -c",
            path.display()
        ));
        r.yaml(path, 0);
    } else {
        r.classic(path, 0);
    }
    if r.errors.is_empty() {
        Ok(r.out)
    } else {
        Err(r.errors)
    }
}

/// `${VAR}` expansion as Fluent Bit does it: `vars` (`@SET`, `env:`) first, then the
/// environment; an unknown variable becomes empty and its name is added to `unset`.
pub fn expand(v: &str, vars: &HashMap<String, String>, unset: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(start) = rest.find("${") {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 2..).unwrap_or_default();
        match after.split_once('}') {
            Some((name, tail)) => {
                match vars.get(name).cloned().or_else(|| std::env::var(name).ok()) {
                    Some(value) => out.push_str(&value),
                    None => unset.push(name.to_string()),
                }
                rest = tail;
            }
            None => {
                out.push_str(rest.get(start..).unwrap_or_default());
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A file not named as YAML whose first line of content is a top-level `key:` and that has no
/// `[SECTION]` header, e.g. `fluent-bit.yaml.example`.
fn reads_like_yaml(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut content = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let first_is_key = content.next().is_some_and(|l| {
        !l.starts_with(char::is_whitespace)
            && l.split_once(':').is_some_and(|(k, rest)| {
                !k.is_empty()
                    && !k.contains(char::is_whitespace)
                    && (rest.is_empty() || rest.starts_with(char::is_whitespace))
            })
    });
    first_is_key && !text.lines().any(|l| l.starts_with('['))
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

struct Reader {
    /// The main file's directory (classic includes are resolved against it).
    root: PathBuf,
    /// Files read so far (canonical), to refuse reading one twice as Fluent Bit does.
    seen: Vec<PathBuf>,
    out: Loaded,
    errors: Vec<String>,
}

/// The classic section being read.
enum Section {
    None,
    Input(usize),
    Other,
}

impl Reader {
    /// Reads a file's text once; false (with the error recorded) if it cannot or may not be read.
    fn open(&mut self, path: &Path, depth: usize, from: Option<&str>) -> Option<String> {
        let at = from.map(|f| format!("{f}: ")).unwrap_or_default();
        if depth > MAX_DEPTH {
            self.errors.push(format!(
                "{at}includes nest deeper than {MAX_DEPTH} levels at {}; is a file including itself?",
                path.display()
            ));
            return None;
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.seen.contains(&canonical) {
            self.errors.push(format!(
                "{at}{} is included a second time; Fluent Bit refuses to read a file twice, so remove one of the includes",
                path.display()
            ));
            return None;
        }
        self.seen.push(canonical);
        match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                self.errors
                    .push(format!("{at}cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    fn classic(&mut self, path: &Path, depth: usize) {
        self.classic_from(path, depth, None)
    }

    fn classic_from(&mut self, path: &Path, depth: usize, from: Option<&str>) {
        let Some(text) = self.open(path, depth, from) else {
            return;
        };
        let file = path.display().to_string();
        let mut section = Section::None;
        // Indentation of an indented `[group]` header while its lines are read.
        let mut group: Option<usize> = None;
        for (n, raw) in text.lines().enumerate() {
            let at = format!("{file}:{}", n + 1);
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let body = line.trim_start();
            if body.is_empty() || line.starts_with('#') {
                continue;
            }
            let indent = line.len() - body.len();
            if indent == 0 {
                if let Some(rest) = strip_prefix_ci(line, "@INCLUDE ") {
                    self.include_classic(rest.trim(), depth, &at);
                    continue;
                }
                if let Some(rest) = strip_prefix_ci(line, "@SET ") {
                    match rest.split_once('=') {
                        Some((k, v)) => {
                            self.out
                                .vars
                                .insert(k.trim().to_string(), v.trim().to_string());
                        }
                        None => self.errors.push(format!(
                            "{at}: @SET needs KEY=VALUE, e.g. @SET state_dir=/var/lib/fluent-bit/mimecast"
                        )),
                    }
                    continue;
                }
                if line.starts_with('@') {
                    continue; // other meta commands do not concern inputs
                }
                if let Some(header) = line.strip_prefix('[') {
                    group = None;
                    match header.split_once(']') {
                        Some((name, _)) if name.trim().eq_ignore_ascii_case("input") => {
                            self.out.inputs.push(Input {
                                origin: at,
                                name: String::new(),
                                props: Vec::new(),
                                problems: Vec::new(),
                            });
                            section = Section::Input(self.out.inputs.len() - 1);
                        }
                        Some(_) => section = Section::Other,
                        None => self.errors.push(format!(
                            "{at}: section header without closing ']'; write e.g. [INPUT]"
                        )),
                    }
                    continue;
                }
            }
            if body.starts_with('#') {
                continue;
            }
            if group.is_some_and(|g| indent <= g) {
                group = None;
            }
            if body.starts_with('[') {
                group = Some(indent); // a group's keys are not the section's own
                continue;
            }
            let (key, value) = match body.split_once(char::is_whitespace) {
                Some((k, v)) if !v.trim().is_empty() => (k, v.trim()),
                _ => {
                    // Only the key: a line such as `client_secret=...` holds a secret.
                    let key = body.trim_end().split(['=', ':']).next().unwrap_or_default();
                    self.errors.push(format!(
                        "{at}: '{key}' has no value; each line of a section is 'key value'{}",
                        if body.contains(['=', ':']) {
                            " (write 'key value', not key=value)"
                        } else {
                            ""
                        }
                    ));
                    continue;
                }
            };
            match section {
                Section::None => self.errors.push(format!(
                    "{at}: '{key}' comes before any [SECTION] header; put it under [INPUT] (or where it belongs)"
                )),
                Section::Input(i) if group.is_none() => {
                    if let Some(input) = self.out.inputs.get_mut(i) {
                        if key.eq_ignore_ascii_case("name") && input.name.is_empty() {
                            input.name = value.to_string();
                        }
                        input
                            .props
                            .push((key.to_ascii_lowercase(), value.to_string()));
                    }
                }
                _ => {}
            }
        }
    }

    fn include_classic(&mut self, pattern: &str, depth: usize, at: &str) {
        if pattern.is_empty() {
            self.errors
                .push(format!("{at}: @INCLUDE needs a file name"));
            return;
        }
        if pattern.contains(['*', '?']) {
            let full = if Path::new(pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                self.root.join(pattern)
            };
            let files = glob(&full);
            if files.is_empty() {
                self.errors.push(format!(
                    "{at}: @INCLUDE {pattern} matches no file (looked for {}); Fluent Bit refuses to start then",
                    full.display()
                ));
            }
            for f in files {
                self.classic_from(&f, depth + 1, Some(at));
            }
            return;
        }
        let as_given = PathBuf::from(pattern);
        let path = if as_given.exists() || as_given.is_absolute() {
            as_given
        } else {
            self.root.join(pattern)
        };
        if !path.exists() {
            self.errors.push(format!(
                "{at}: @INCLUDE {pattern}: no such file (looked in the working directory and in {})",
                self.root.display()
            ));
            return;
        }
        self.classic_from(&path, depth + 1, Some(at));
    }

    fn yaml(&mut self, path: &Path, depth: usize) {
        self.yaml_from(path, depth, None)
    }

    fn yaml_from(&mut self, path: &Path, depth: usize, from: Option<&str>) {
        let Some(text) = self.open(path, depth, from) else {
            return;
        };
        let file = path.display().to_string();
        let docs = match YamlLoader::load_from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                self.errors.push(format!("{file}: not valid YAML: {e}"));
                return;
            }
        };
        let Some(doc) = docs.into_iter().next() else {
            return; // an empty file
        };
        let top = match doc {
            Yaml::Hash(h) => h,
            Yaml::Null => return,
            _ => {
                self.errors.push(format!(
                    "{file}: the top level must be a mapping (service:, pipeline:, ...)"
                ));
                return;
            }
        };
        let dir = dir_of(path);
        for (k, v) in top {
            match scalar(&k).as_deref() {
                Some("env") => match v {
                    Yaml::Hash(env) => {
                        for (name, value) in env {
                            if let (Some(n), Some(val)) = (scalar(&name), scalar(&value)) {
                                self.out.vars.insert(n, val);
                            }
                        }
                    }
                    Yaml::Null => {}
                    _ => self
                        .errors
                        .push(format!("{file}: env: must be a mapping of NAME: value")),
                },
                Some("includes") => {
                    let list = match v {
                        Yaml::Array(a) => a,
                        Yaml::Null => Vec::new(),
                        other => vec![other],
                    };
                    for item in list {
                        let Some(inc) = scalar(&item) else {
                            self.errors
                                .push(format!("{file}: includes: lists file names only"));
                            continue;
                        };
                        self.include_yaml(&dir, &inc, depth, &file);
                    }
                }
                Some("pipeline") => {
                    let Yaml::Hash(pipeline) = v else {
                        continue;
                    };
                    for (pk, pv) in pipeline {
                        if scalar(&pk).as_deref() != Some("inputs") {
                            continue;
                        }
                        match pv {
                            Yaml::Array(inputs) => {
                                for (i, input) in inputs.into_iter().enumerate() {
                                    let origin = format!("{file}: pipeline.inputs[{i}]");
                                    self.yaml_input(origin, input);
                                }
                            }
                            Yaml::Null => {}
                            _ => self.errors.push(format!(
                                "{file}: pipeline.inputs must be a list (- name: mimecast ...)"
                            )),
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn include_yaml(&mut self, dir: &Path, inc: &str, depth: usize, from: &str) {
        let full = if Path::new(inc).is_absolute() {
            PathBuf::from(inc)
        } else {
            dir.join(inc)
        };
        if inc.contains(['*', '?']) {
            let files = glob(&full);
            if files.is_empty() {
                self.errors.push(format!(
                    "{from}: includes: {inc} matches no file (looked for {})",
                    full.display()
                ));
            }
            for f in files {
                self.yaml_from(&f, depth + 1, Some(from));
            }
        } else if full.exists() {
            self.yaml_from(&full, depth + 1, Some(from));
        } else {
            self.errors.push(format!(
                "{from}: includes: {inc}: no such file (looked for {})",
                full.display()
            ));
        }
    }

    fn yaml_input(&mut self, origin: String, input: Yaml) {
        let Yaml::Hash(map) = input else {
            self.errors.push(format!(
                "{origin}: an input must be a mapping (- name: mimecast ...)"
            ));
            return;
        };
        let mut inp = Input {
            origin,
            name: String::new(),
            props: Vec::new(),
            problems: Vec::new(),
        };
        for (k, v) in map {
            let Some(key) = scalar(&k).map(|k| k.to_ascii_lowercase()) else {
                inp.problems
                    .push("a key that is not a plain name".to_string());
                continue;
            };
            match v {
                Yaml::Array(_) => inp.problems.push(format!(
                    "property '{key}' is a YAML list, and Fluent Bit hands the plugin only one of its items; write it as one comma-separated value, e.g. {key}: a, b"
                )),
                Yaml::Hash(_) if key == "processors" => {} // Fluent Bit's, not the plugin's
                Yaml::Hash(_) => inp.problems.push(format!(
                    "property '{key}' is a YAML mapping; the plugin takes a single value"
                )),
                other => {
                    let value = scalar(&other).unwrap_or_default();
                    if key == "name" && inp.name.is_empty() {
                        inp.name = value.clone();
                    }
                    inp.props.push((key, value));
                }
            }
        }
        self.out.inputs.push(inp);
    }
}

/// A YAML scalar as the text Fluent Bit sees; None for lists, mappings and other nodes.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

fn strip_prefix_ci<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| line.get(prefix.len()..))
        .flatten()
}

/// Files matching a pattern with `*` and `?` in any of its components, sorted. As with
/// glob(3), a wildcard does not match a leading dot.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for comp in pattern.components() {
        let part = comp.as_os_str().to_string_lossy();
        if !part.contains(['*', '?']) {
            for f in &mut found {
                f.push(comp);
            }
            continue;
        }
        let mut next = Vec::new();
        for base in &found {
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && !part.starts_with('.') {
                    continue;
                }
                if wild_match(&part, &name) {
                    next.push(base.join(&name));
                }
            }
        }
        found = next;
    }
    found.retain(|p| p.is_file());
    found.sort();
    found
}

/// `*` (any run) and `?` (any one character) matching of a whole name.
fn wild_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mc-fbconfig-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn props(i: &Input) -> Vec<(&str, &str)> {
        i.props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn classic_sections_includes_globs_and_set() {
        let d = dir("classic");
        std::fs::create_dir_all(d.join("conf.d")).unwrap();
        std::fs::write(
            d.join("main.conf"),
            "# comment\n@SET region=uk\n[SERVICE]\n    flush 1\n\n[INPUT]\n    Name   mimecast\n    Sources  siem_cg, audit\n    base_url https://${region}-api.services.mimecast.com\n    # indented comment\n@INCLUDE conf.d/*.conf\n@INCLUDE tail.conf\n",
        )
        .unwrap();
        std::fs::write(d.join("conf.d/b.conf"), "[INPUT]\n    Name dummy\n").unwrap();
        std::fs::write(
            d.join("conf.d/a.conf"),
            "[INPUT]\r\n    Name mimecast\r\n    client_id x\r\n",
        )
        .unwrap();
        std::fs::write(d.join("conf.d/.hidden.conf"), "[INPUT]\n    Name hidden\n").unwrap();
        std::fs::write(
            d.join("tail.conf"),
            "[INPUT]\n    Name tail\n    Path /var/log/*.log\n    [GROUP]\n        inner 1\n",
        )
        .unwrap();
        let l = load(&d.join("main.conf")).unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = l.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["mimecast", "mimecast", "dummy", "tail"]);
        assert_eq!(
            props(&l.inputs[0]),
            [
                ("name", "mimecast"),
                ("sources", "siem_cg, audit"),
                ("base_url", "https://${region}-api.services.mimecast.com")
            ]
        );
        assert!(
            l.inputs[0].origin.ends_with("main.conf:6"),
            "{}",
            l.inputs[0].origin
        );
        assert_eq!(
            props(&l.inputs[1]),
            [("name", "mimecast"), ("client_id", "x")]
        );
        assert_eq!(
            props(&l.inputs[3]),
            [("name", "tail"), ("path", "/var/log/*.log")]
        );
        let mut unset = Vec::new();
        assert_eq!(
            expand(&l.inputs[0].props[2].1, &l.vars, &mut unset),
            "https://uk-api.services.mimecast.com"
        );
        assert!(unset.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn classic_errors_name_file_and_line() {
        let d = dir("classic-bad");
        std::fs::write(
            d.join("main.conf"),
            "orphan value\n[INPUT]\n    Name mimecast\n    client_id\n    client_secret=hunter2\n@INCLUDE missing.conf\n@INCLUDE none/*.conf\n@INCLUDE main.conf\n",
        )
        .unwrap();
        let e = load(&d.join("main.conf")).err().unwrap().join("\n");
        assert!(
            e.contains("main.conf:1: 'orphan' comes before any [SECTION]"),
            "{e}"
        );
        assert!(e.contains("main.conf:4: 'client_id' has no value"), "{e}");
        assert!(
            e.contains("main.conf:5: 'client_secret' has no value")
                && e.contains("not key=value")
                && !e.contains("hunter2"),
            "a key=value line is named by its key only: {e}"
        );
        assert!(
            e.contains("main.conf:6: @INCLUDE missing.conf: no such file"),
            "{e}"
        );
        assert!(
            e.contains("main.conf:7: @INCLUDE none/*.conf matches no file"),
            "{e}"
        );
        assert!(e.contains("included a second time"), "{e}");
        let e = load(&d.join("nope.conf")).err().unwrap().join("\n");
        assert!(e.contains("cannot read") && e.contains("nope.conf"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn yaml_inputs_includes_and_env() {
        let d = dir("yaml");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(
            d.join("main.yaml"),
            "env:\n  REGION: uk\nincludes:\n  - sub/inputs.yaml\nservice:\n  flush: 1\npipeline:\n  inputs:\n    - name: dummy\n    - name: mimecast\n      sources: siem_cg, audit\n      page_size: 100\n      startup_check: true\n      base_url: https://${REGION}-api.services.mimecast.com\n      processors:\n        logs:\n          - name: content_modifier\n      siem_types: [receipt, av]\n  outputs:\n    - name: stdout\n      match: '*'\n",
        )
        .unwrap();
        // relative to the including file: sub/more.yaml, not ./more.yaml
        std::fs::write(
            d.join("sub/inputs.yaml"),
            "includes: [more.yaml]\npipeline:\n  inputs:\n    - name: tail\n      path: /var/log/x\n",
        )
        .unwrap();
        std::fs::write(
            d.join("sub/more.yaml"),
            "pipeline:\n  inputs:\n    - name: mimecast\n      client_id: from-more\n",
        )
        .unwrap();
        let l = load(&d.join("main.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
        let names: Vec<&str> = l.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["mimecast", "tail", "dummy", "mimecast"]);
        assert_eq!(
            props(&l.inputs[0]),
            [("name", "mimecast"), ("client_id", "from-more")]
        );
        let ours = &l.inputs[3];
        assert!(
            ours.origin.ends_with("main.yaml: pipeline.inputs[1]"),
            "{}",
            ours.origin
        );
        assert_eq!(
            props(ours),
            [
                ("name", "mimecast"),
                ("sources", "siem_cg, audit"),
                ("page_size", "100"),
                ("startup_check", "true"),
                ("base_url", "https://${REGION}-api.services.mimecast.com"),
            ]
        );
        assert_eq!(ours.problems.len(), 1, "{:?}", ours.problems);
        assert!(ours.problems[0].contains("'siem_types' is a YAML list"));
        assert_eq!(l.vars.get("REGION").map(String::as_str), Some("uk"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn yaml_without_a_yaml_name_is_read_as_yaml_with_a_note() {
        let d = dir("sniff");
        std::fs::write(
            d.join("fb.yaml.example"),
            "# comment\n\nservice:\n  flush: 1\npipeline:\n  inputs:\n    - name: mimecast\n",
        )
        .unwrap();
        let l = load(&d.join("fb.yaml.example")).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(l.inputs.len(), 1);
        assert!(l.notes[0].contains("Fluent Bit reads YAML only from files named .yaml"));
        // classic stays classic
        std::fs::write(d.join("c.conf"), "[INPUT]\n    Name mimecast\n").unwrap();
        let l = load(&d.join("c.conf")).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((l.inputs.len(), l.notes.len()), (1, 0));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn yaml_errors_are_reported() {
        let d = dir("yaml-bad");
        std::fs::write(
            d.join("bad.yaml"),
            "pipeline:\n  inputs:\n    - name: [unclosed\n",
        )
        .unwrap();
        let e = load(&d.join("bad.yaml")).err().unwrap().join("\n");
        assert!(e.contains("bad.yaml: not valid YAML"), "{e}");
        std::fs::write(d.join("inc.yaml"), "includes:\n  - gone.yaml\n").unwrap();
        let e = load(&d.join("inc.yaml")).err().unwrap().join("\n");
        assert!(e.contains("includes: gone.yaml: no such file"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn expansion_prefers_set_variables_and_reports_unset_ones() {
        let vars = HashMap::from([("A".to_string(), "set".to_string())]);
        let mut unset = Vec::new();
        assert_eq!(expand("x${A}y", &vars, &mut unset), "xsety");
        assert_eq!(
            expand("${MC_CHECK_SURELY_UNSET_VAR}", &vars, &mut unset),
            ""
        );
        assert_eq!(unset, ["MC_CHECK_SURELY_UNSET_VAR"]);
        assert_eq!(expand("open ${A", &vars, &mut unset), "open ${A");
    }

    #[test]
    fn wildcards() {
        assert!(wild_match("*.conf", "a.conf"));
        assert!(wild_match("in_?.conf", "in_1.conf"));
        assert!(wild_match("*", "x"));
        assert!(wild_match("a*b*c", "aXXbYYc"));
        assert!(!wild_match("*.conf", "a.yaml"));
        assert!(!wild_match("in_?.conf", "in_12.conf"));
        assert!(!wild_match("", "x"));
    }
}
