//! The canonical form of a dashboard: what the repo keeps and what `plan` compares.
//!
//! Grafana adds per-install and per-save fields to every dashboard it returns (`id`, `version`,
//! `iteration`) and `apply` adds the managed-by tag; none of them belongs in git. The canonical
//! form drops them and is written with sorted keys, two-space indentation and a final newline,
//! so that `pull` after `apply` gives back the file byte for byte and a repo diff shows only
//! what a person changed.

use serde_json::{Map, Value};

/// The tag `apply` puts on every dashboard it writes; `--prune` deletes only dashboards that
/// carry it.
pub const MANAGED_TAG: &str = "managed-by:promfed";

/// Top-level fields Grafana sets itself on each save or per install.
pub const VOLATILE: [&str; 3] = ["id", "version", "iteration"];

/// `dashboard` without the volatile fields and the managed tag (an empty `tags` goes too, so
/// that a file without tags and the same dashboard read back from Grafana are equal), with
/// every object's keys sorted.
pub fn normalize(dashboard: &Value) -> Value {
    let mut out = sorted(dashboard);
    if let Value::Object(map) = &mut out {
        for field in VOLATILE {
            map.remove(field);
        }
        if let Some(Value::Array(tags)) = map.get_mut("tags") {
            tags.retain(|t| t.as_str() != Some(MANAGED_TAG));
            if tags.is_empty() {
                map.remove("tags");
            }
        }
    }
    out
}

/// `dashboard` as `apply` sends it: the managed tag added once (after the file's own tags) and
/// `id` removed (Grafana matches by `uid`; an id is only valid in the Grafana that gave it).
pub fn for_grafana(dashboard: &Value, version: Option<u64>) -> Value {
    let mut out = dashboard.clone();
    if let Value::Object(map) = &mut out {
        map.remove("id");
        map.remove("iteration");
        match version {
            Some(v) => map.insert("version".into(), Value::from(v)),
            None => map.remove("version"),
        };
        let tags = map.entry("tags").or_insert_with(|| Value::Array(Vec::new()));
        if !tags.is_array() {
            *tags = Value::Array(Vec::new());
        }
        if let Value::Array(tags) = tags
            && !tags.iter().any(|t| t.as_str() == Some(MANAGED_TAG))
        {
            tags.push(Value::from(MANAGED_TAG));
        }
    }
    out
}

/// The canonical text: [`normalize`]d, sorted keys, two-space indentation, final newline.
pub fn to_stable_json(dashboard: &Value) -> String {
    // serde_json's pretty printer indents by two spaces; keys come out in the map's order,
    // which `sorted` made alphabetical whatever map type serde_json was built with.
    let mut text = serde_json::to_string_pretty(&normalize(dashboard)).unwrap_or_default();
    text.push('\n');
    text
}

/// A copy with every object's keys in sorted order.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volatile_fields_and_the_managed_tag_are_dropped() {
        let live = json!({"id": 7, "version": 3, "iteration": 1690000000000u64, "uid": "u", "title": "T",
                          "tags": ["promfed", MANAGED_TAG], "panels": []});
        assert_eq!(normalize(&live), json!({"uid": "u", "title": "T", "tags": ["promfed"], "panels": []}));
        let untagged = json!({"uid": "u", "tags": [MANAGED_TAG]});
        assert_eq!(normalize(&untagged), json!({"uid": "u"}));
    }

    #[test]
    fn stable_json_is_sorted_indented_and_ends_with_a_newline() {
        let d = json!({"title": "T", "uid": "u", "panels": [{"type": "stat", "id": 1}], "id": 3});
        assert_eq!(
            to_stable_json(&d),
            "{\n  \"panels\": [\n    {\n      \"id\": 1,\n      \"type\": \"stat\"\n    }\n  ],\n  \"title\": \"T\",\n  \"uid\": \"u\"\n}\n"
        );
    }

    #[test]
    fn for_grafana_adds_the_tag_once_and_sets_the_version() {
        let d = json!({"id": 4, "uid": "u", "tags": ["a"]});
        let sent = for_grafana(&d, Some(5));
        assert_eq!(sent, json!({"uid": "u", "tags": ["a", MANAGED_TAG], "version": 5}));
        assert_eq!(for_grafana(&sent, None), json!({"uid": "u", "tags": ["a", MANAGED_TAG]}));
    }
}
