//! The configuration reference, `docs/configuration.md`, generated from the config structs: their
//! JSON schema (schemars, from the serde attributes), their doc comments and their defaults.
//! A test compares the committed file with this output, so the reference cannot drift from
//! what promfed reads.

use super::FileConfig;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// The reference as Markdown.
pub fn markdown() -> String {
    let root = schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<FileConfig>();
    let root = root.as_value();
    let empty = serde_json::Map::new();
    let defs = root.get("$defs").and_then(Value::as_object).unwrap_or(&empty);

    // Each section once, in the order they are first reached from the top, with every place
    // that uses it.
    let mut order: Vec<String> = Vec::new();
    let mut used_at: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue: VecDeque<(String, &Value)> = VecDeque::from([(String::new(), root)]);
    while let Some((path, schema)) = queue.pop_front() {
        for (key, prop) in properties(schema) {
            let at = if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
            for (name, suffix) in refs(prop) {
                let place = format!("{at}{suffix}");
                let first = !used_at.contains_key(&name);
                used_at.entry(name.clone()).or_default().push(place.clone());
                if first && let Some(def) = defs.get(&name) {
                    order.push(name.clone());
                    queue.push_back((place, def));
                }
            }
        }
    }

    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the config structs by `PROMFED_BLESS=1 cargo test --test config_reference`\n\
         (a test fails when this file and the code disagree). `deploy/promfed.yml` is a commented\n\
         example; `promfed check-config FILE` checks a file against exactly this.\n\n\
         Types: a *duration* is Prometheus' (`1h30m`, `15s`, `250ms`); a *size* is bytes with an\n\
         optional unit (`256MiB`, `10KB`: powers of 1024). Unknown keys are errors, every one\n\
         reported with its path.\n\n",
    );
    section(&mut out, "The file", None, root, &[]);
    for name in &order {
        let def = &defs[name];
        section(&mut out, name, Some(name), def, used_at.get(name).map(Vec::as_slice).unwrap_or(&[]));
    }
    out
}

fn properties(schema: &Value) -> Vec<(&str, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

/// The definitions a property refers to, each with the suffix its place takes (`[]` for a list
/// item, `.<name>` for a map value).
fn refs(schema: &Value) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        out.push((r.trim_start_matches("#/$defs/").to_owned(), ""));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for s in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.extend(refs(s));
        }
    }
    if let Some(items) = schema.get("items") {
        out.extend(refs(items).into_iter().map(|(n, _)| (n, "[]")));
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        out.extend(refs(values).into_iter().map(|(n, _)| (n, ".<name>")));
    }
    out
}

fn section(out: &mut String, title: &str, anchor: Option<&str>, schema: &Value, used_at: &[String]) {
    match anchor {
        Some(a) => out.push_str(&format!("## <a id=\"{}\"></a>`{title}`\n\n", a.to_ascii_lowercase())),
        None => out.push_str(&format!("## {title}\n\n")),
    }
    if !used_at.is_empty() {
        let places: Vec<String> = used_at.iter().map(|p| format!("`{p}`")).collect();
        out.push_str(&format!("At {}.\n\n", places.join(", ")));
    }
    if let Some(d) = schema.get("description").and_then(Value::as_str) {
        out.push_str(&paragraph(d));
        out.push_str("\n\n");
    }
    if let Some(values) = enum_values(schema) {
        out.push_str(&format!("One of: {}.\n\n", values.join(", ")));
        return;
    }
    let props = properties(schema);
    if props.is_empty() {
        return;
    }
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
    for (key, prop) in props {
        let default = if required.contains(&key) {
            "required".to_owned()
        } else {
            prop.get("default").map(default_text).unwrap_or_default()
        };
        let meaning = prop.get("description").and_then(Value::as_str).map(paragraph).unwrap_or_default();
        out.push_str(&format!("| `{key}` | {} | {} | {} |\n", cell(&type_text(prop)), cell(&default), cell(&meaning)));
    }
    out.push('\n');
}

/// `a`, `b` of a string enum (plain, or one variant per documented `const`).
fn enum_values(schema: &Value) -> Option<Vec<String>> {
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        return Some(e.iter().map(|v| format!("`{}`", scalar(v))).collect());
    }
    let variants = schema.get("oneOf").and_then(Value::as_array)?;
    variants
        .iter()
        .map(|v| {
            v.get("const").map(|c| format!("`{}`", scalar(c))).or_else(|| {
                v.get("enum")
                    .and_then(Value::as_array)
                    .map(|e| e.iter().map(|x| format!("`{}`", scalar(x))).collect::<Vec<_>>().join(", "))
            })
        })
        .collect()
}

fn type_text(schema: &Value) -> String {
    if schema.as_bool() == Some(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
        return "any".into();
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return format!("[{name}](#{})", name.to_ascii_lowercase());
    }
    if let Some(values) = enum_values(schema)
        && schema.get("type").is_some_and(|t| t != "object")
    {
        return values.join(" \\| ");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let parts: Vec<String> =
                alts.iter().filter(|a| a.get("type").and_then(Value::as_str) != Some("null")).map(type_text).collect();
            return parts.join(" or ");
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => vec![],
    };
    match types.first().copied() {
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            Some("duration") => "duration".into(),
            Some("size") => "size".into(),
            _ => "string".into(),
        },
        Some("integer") => "integer".into(),
        Some("number") => "number".into(),
        Some("boolean") => "boolean".into(),
        Some("array") => format!("list of {}", schema.get("items").map(type_text).unwrap_or_else(|| "any".into())),
        Some("object") => match schema.get("additionalProperties") {
            Some(v) if v.is_object() => format!("map of string to {}", type_text(v)),
            _ => "map".into(),
        },
        _ => "any".into(),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A default as a YAML user writes it: `15s`, `[a, b]`, `{}`; nothing for "not set".
fn default_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if s.is_empty() => "`\"\"`".into(),
        Value::Array(a) if a.is_empty() => "`[]`".into(),
        Value::Object(o) if o.is_empty() => "`{}`".into(),
        // A section's defaults are in its own table.
        Value::Object(_) => "see its section".into(),
        Value::Array(a) => format!("`[{}]`", a.iter().map(scalar).collect::<Vec<_>>().join(", ")),
        other => format!("`{}`", scalar(other)),
    }
}

/// A doc comment as one paragraph per blank-line-separated block.
fn paragraph(doc: &str) -> String {
    doc.split("\n\n").map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n\n")
}

/// Text that fits in a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}
