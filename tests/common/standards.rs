//! Checks of records against the standards themselves, from fixtures derived from the
//! published schemas: `tests/fixtures/ecs-fields.json` (ECS field names, types, allowed values)
//! and `tests/fixtures/ocsf-schema.json` (OCSF classes, objects, requirements, enums); see
//! docs/research/schemas.md for how they were made.

use serde_json::{Map, Value};

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

// --- ECS ------------------------------------------------------------------------------------

fn ecs_type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "keyword" | "wildcard" | "constant_keyword" | "match_only_text" | "text" => v.is_string(),
        "long" | "integer" | "short" | "byte" | "unsigned_long" => v.is_i64() || v.is_u64(),
        "float" | "double" | "scaled_float" | "half_float" => v.is_number(),
        "boolean" => v.is_boolean(),
        "ip" => v
            .as_str()
            .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
        "date" => {
            v.as_str()
                .is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok())
                || v.is_i64()
        }
        _ => true,
    }
}

fn check_ecs_value(spec: &Value, path: &str, v: &Value, errs: &mut Vec<String>) {
    let fields = &spec["fields"];
    let def = fields.get(path);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                check_ecs_value(spec, &format!("{path}.{k}"), x, errs);
            }
        }
        Value::Array(items) if def.is_some_and(|d| d["type"] == "nested") => {
            for item in items {
                match item {
                    Value::Object(m) => {
                        for (k, x) in m {
                            check_ecs_value(spec, &format!("{path}.{k}"), x, errs);
                        }
                    }
                    other => errs.push(format!("{path}: nested field holds {other}")),
                }
            }
        }
        _ => {
            let Some(def) = def else {
                errs.push(format!("{path}: not an ECS field"));
                return;
            };
            let ty = def["type"].as_str().unwrap_or("");
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            for item in items {
                if !ecs_type_ok(ty, item) {
                    errs.push(format!("{path}: {item} is not of type {ty}"));
                }
                if let Some(allowed) = spec["allowed_values"].get(path).and_then(Value::as_array) {
                    if !allowed.contains(item) {
                        errs.push(format!("{path}: {item} is not an allowed value"));
                    }
                }
            }
        }
    }
}

pub fn check_ecs(spec: &Value, v: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let Some(m) = v.as_object() else {
        return vec!["not an object".into()];
    };
    for (k, x) in m {
        if k == "mimecast" {
            continue; // the original record, ours by ECS's custom-field convention
        }
        check_ecs_value(spec, k, x, &mut errs);
    }
    for required in ["/@timestamp", "/ecs/version", "/event/id", "/event/kind"] {
        if v.pointer(required).is_none() {
            errs.push(format!("{required} missing"));
        }
    }
    // Each event.type must be one ECS expects with one of the record's categories.
    let list = |p: &str| -> Vec<String> {
        match v.pointer(p) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let cats = list("/event/category");
    for t in list("/event/type") {
        let expected = cats.iter().any(|c| {
            spec["category_expected_types"][c.as_str()]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == t.as_str()))
        });
        if !expected {
            errs.push(format!(
                "event.type {t} is not expected with categories {cats:?}"
            ));
        }
    }
    if v.get("mimecast").is_none_or(|o| !o.is_object()) {
        errs.push("the original record is not under mimecast".into());
    }
    errs
}

// --- OCSF -----------------------------------------------------------------------------------

pub struct Ocsf {
    pub schema: Value,
}

impl Ocsf {
    fn scalar_ok(&self, ty: &str, v: &Value) -> bool {
        let t = &self.schema["types"][ty];
        let base = t["base"].as_str().unwrap_or(ty);
        let kind_ok = match base {
            "string_t" => v.is_string(),
            "integer_t" | "long_t" => v.is_i64() || v.is_u64(),
            "float_t" => v.is_number(),
            "boolean_t" => v.is_boolean(),
            _ => true,
        };
        let regex_ok = match (t["regex"].as_str(), v.as_str()) {
            (Some(_), Some(s)) if ty == "email_t" => {
                let (l, d) = s.split_once('@').unwrap_or(("", ""));
                !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace)
            }
            (Some(_), Some(s)) if ty == "ip_t" => s.parse::<std::net::IpAddr>().is_ok(),
            _ => true,
        };
        kind_ok && regex_ok
    }

    fn check_attr(
        &self,
        path: &str,
        def: &Value,
        v: &Value,
        profiles: &[String],
        errs: &mut Vec<String>,
    ) {
        let items: Vec<&Value> = if def["array"] == true {
            match v {
                Value::Array(a) => a.iter().collect(),
                other => {
                    errs.push(format!("{path}: must be an array, is {other}"));
                    return;
                }
            }
        } else {
            if v.is_array() {
                errs.push(format!("{path}: must not be an array"));
                return;
            }
            vec![v]
        };
        let ty = def["type"].as_str().unwrap_or("");
        for item in items {
            if let Some(obj) = ty.strip_prefix("object:") {
                match (item.as_object(), self.schema["objects"].get(obj)) {
                    (Some(m), Some(odef)) => self.check_object(path, obj, odef, m, profiles, errs),
                    (Some(_), None) => {}
                    (None, _) => errs.push(format!("{path}: must be an object ({obj})")),
                }
            } else if !self.scalar_ok(ty, item) {
                errs.push(format!("{path}: {item} is not of type {ty}"));
            }
            if let Some(allowed) = def["enum"].as_array() {
                if !allowed.contains(item) {
                    errs.push(format!("{path}: {item} is not one of {allowed:?}"));
                }
            }
        }
    }

    fn check_object(
        &self,
        path: &str,
        name: &str,
        def: &Value,
        m: &Map<String, Value>,
        profiles: &[String],
        errs: &mut Vec<String>,
    ) {
        let attrs = &def["attributes"];
        self.check_members(path, attrs, m, profiles, errs);
        if let Some(one_of) = def
            .pointer("/constraints/at_least_one")
            .and_then(Value::as_array)
        {
            if !one_of
                .iter()
                .any(|k| k.as_str().is_some_and(|k| m.contains_key(k)))
            {
                errs.push(format!("{path} ({name}): needs one of {one_of:?}"));
            }
        }
    }

    fn check_members(
        &self,
        path: &str,
        attrs: &Value,
        m: &Map<String, Value>,
        profiles: &[String],
        errs: &mut Vec<String>,
    ) {
        let applies = |d: &Value| {
            d["profiles"].as_array().is_none_or(|ps| {
                ps.iter()
                    .any(|p| p.as_str().is_some_and(|p| profiles.iter().any(|x| x == p)))
            })
        };
        if let Some(all) = attrs.as_object() {
            for (k, d) in all {
                if d["requirement"] == "required" && applies(d) && !m.contains_key(k) {
                    errs.push(format!("{path}.{k}: required, missing"));
                }
            }
        }
        for (k, x) in m {
            if path.is_empty() && k == "unmapped" {
                continue;
            }
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match attrs.get(k) {
                Some(d) if applies(d) => self.check_attr(&p, d, x, profiles, errs),
                Some(_) => errs.push(format!("{p}: its profile is not applied")),
                None => errs.push(format!("{p}: not an attribute here")),
            }
        }
    }

    pub fn check(&self, v: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        let Some(m) = v.as_object() else {
            return vec!["not an object".into()];
        };
        let class_uid = v["class_uid"].as_i64().unwrap_or(-1);
        let Some(class) = self.schema["classes"].get(class_uid.to_string()) else {
            return vec![format!("class_uid {class_uid} is not in the fixture")];
        };
        let profiles: Vec<String> = v
            .pointer("/metadata/profiles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        self.check_members("", &class["attributes"], m, &profiles, &mut errs);
        if v["category_uid"] != class["category_uid"] {
            errs.push(format!(
                "category_uid {} is not the class's",
                v["category_uid"]
            ));
        }
        let want = class_uid * 100 + v["activity_id"].as_i64().unwrap_or(-1);
        if v["type_uid"].as_i64() != Some(want) {
            errs.push(format!(
                "type_uid {} is not class_uid*100+activity_id = {want}",
                v["type_uid"]
            ));
        }
        errs
    }
}
