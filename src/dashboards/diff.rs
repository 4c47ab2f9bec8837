//! The semantic difference between a dashboard in the repo and the same dashboard in Grafana,
//! and the plan it makes: per dashboard create / update / delete / unchanged, and for an update
//! which panels, variables and fields changed, one line each.
//!
//! Both sides are compared in their [`super::normalize`]d form, so Grafana's `id`, `version`,
//! `iteration` and the managed tag never count; numbers compare by value (`1` and `1.0` are
//! equal: Grafana stores what it was sent through Go's float64). Panels are matched by `id`
//! (Grafana's panel ids are stable within a dashboard), else by title; template variables by
//! name.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Lines of detail shown per dashboard at most.
const MAX_DETAILS: usize = 20;
/// Characters of a value shown at most.
const MAX_VALUE: usize = 60;

/// What happens to one dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    /// Managed by promfed, no longer in the directory.
    Delete,
    Unchanged,
}

/// One dashboard of a plan.
#[derive(Clone, Debug)]
pub struct Entry {
    pub action: Action,
    pub uid: String,
    pub title: String,
    /// The folder's title; empty for Grafana's root folder.
    pub folder: String,
    /// The file it comes from.
    pub file: Option<String>,
    /// For an update: what changed.
    pub details: Vec<String>,
}

/// Every dashboard's fate.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub entries: Vec<Entry>,
    /// Deletes are applied (`--prune`).
    pub prune: bool,
}

impl Plan {
    /// How many entries have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.entries.iter().filter(|e| e.action == action).count()
    }

    /// Changes `apply` (with the same `--prune`) would make.
    pub fn pending(&self) -> usize {
        self.count(Action::Create)
            + self.count(Action::Update)
            + if self.prune { self.count(Action::Delete) } else { 0 }
    }

    /// The plan for people: one line per dashboard, details indented, a summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            let (mark, word) = match e.action {
                Action::Create => ('+', "create"),
                Action::Update => ('~', "update"),
                Action::Delete => ('-', "delete"),
                Action::Unchanged => ('=', "unchanged"),
            };
            let folder = if e.folder.is_empty() { "root folder".to_owned() } else { format!("folder {:?}", e.folder) };
            let _ = write!(out, "{mark} {word:<9} {} {:?} in {folder}", e.uid, e.title);
            match (&e.file, e.action) {
                (_, Action::Delete) if !self.prune => {
                    out.push_str(" (managed by promfed, not in the directory; kept: --prune deletes it)")
                }
                (_, Action::Delete) => out.push_str(" (managed by promfed, not in the directory)"),
                (Some(f), _) => {
                    let _ = write!(out, " ({f})");
                }
                (None, _) => {}
            }
            out.push('\n');
            for d in &e.details {
                let _ = writeln!(out, "    {d}");
            }
        }
        let deletes = self.count(Action::Delete);
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to update, {} to delete{}, {} unchanged.",
            self.count(Action::Create),
            self.count(Action::Update),
            deletes,
            if deletes > 0 && !self.prune { " with --prune" } else { "" },
            self.count(Action::Unchanged),
        );
        out
    }
}

/// What differs from `old` (Grafana's, normalized) to `new` (the file's, normalized), one line
/// per change, at most [`MAX_DETAILS`] (then a count of the rest).
pub fn changes(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Map::new();
    let (o, n) = (old.as_object().unwrap_or(&empty), new.as_object().unwrap_or(&empty));
    for key in keys(o, n) {
        match key.as_str() {
            "panels" => panels(o.get("panels"), n.get("panels"), &mut out),
            "templating" => {
                let list = |m: &Map<String, Value>| m.get("templating").and_then(|t| t.get("list")).cloned();
                let (ol, nl) = (list(o), list(n));
                variables(ol.as_ref(), nl.as_ref(), &mut out);
                let rest = |m: &Map<String, Value>| {
                    let mut t = m.get("templating").cloned().unwrap_or(Value::Null);
                    if let Value::Object(t) = &mut t {
                        t.remove("list");
                    }
                    t
                };
                value("", "templating", &rest(o), &rest(n), &mut out);
            }
            _ => value("", &key, o.get(&key).unwrap_or(&Value::Null), n.get(&key).unwrap_or(&Value::Null), &mut out),
        }
    }
    if out.len() > MAX_DETAILS {
        let more = out.len() - MAX_DETAILS + 1;
        out.truncate(MAX_DETAILS - 1);
        out.push(format!("… and {more} more changes"));
    }
    out
}

fn keys(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<String> {
    let mut k: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
    k.sort();
    k.dedup();
    k
}

/// Every panel, rows' collapsed panels included, with the key it is matched by and its name.
fn flatten(panels: Option<&Value>) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    fn walk(list: &[Value], out: &mut Vec<(String, String, Value)>) {
        for p in list {
            let title = p.get("title").and_then(Value::as_str).unwrap_or_default();
            let name = match (title.is_empty(), p.get("id")) {
                (false, _) => format!("panel {title:?}"),
                (true, Some(id)) => format!("panel #{id}"),
                (true, None) => "panel without id".to_owned(),
            };
            let key = match p.get("id").and_then(Value::as_u64) {
                Some(id) => format!("id:{id}"),
                None => format!("title:{title}"),
            };
            let mut own = p.clone();
            if let Some(Value::Array(nested)) = own.as_object_mut().and_then(|m| m.remove("panels")) {
                walk(&nested, out);
            }
            out.push((key, name, own));
        }
    }
    if let Some(Value::Array(list)) = panels {
        walk(list, &mut out);
    }
    out
}

fn panels(old: Option<&Value>, new: Option<&Value>, out: &mut Vec<String>) {
    let (old, new) = (flatten(old), flatten(new));
    for (key, name, n) in &new {
        match old.iter().find(|(k, _, _)| k == key) {
            None => out.push(format!("{name}: added")),
            Some((_, old_name, o)) => {
                let shown = if old_name == name { name.clone() } else { format!("{old_name} (now {name})") };
                value(&format!("{shown}: "), "", o, n, out);
            }
        }
    }
    for (key, name, _) in &old {
        if !new.iter().any(|(k, _, _)| k == key) {
            out.push(format!("{name}: removed"));
        }
    }
}

fn variables(old: Option<&Value>, new: Option<&Value>, out: &mut Vec<String>) {
    let named = |v: Option<&Value>| -> Vec<(String, Value)> {
        v.and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .map(|x| (x.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(), x.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (named(old), named(new));
    for (name, n) in &new {
        match old.iter().find(|(k, _)| k == name) {
            None => out.push(format!("variable {name:?}: added")),
            Some((_, o)) => value(&format!("variable {name:?}: "), "", o, n, out),
        }
    }
    for (name, _) in &old {
        if !new.iter().any(|(k, _)| k == name) {
            out.push(format!("variable {name:?}: removed"));
        }
    }
}

/// Recursive comparison; `prefix` names the panel or variable, `path` the field.
fn value(prefix: &str, path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if same(old, new) {
        return;
    }
    let join = |k: &str| if path.is_empty() { k.to_owned() } else { format!("{path}.{k}") };
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for k in keys(o, n) {
                value(prefix, &join(&k), o.get(&k).unwrap_or(&Value::Null), n.get(&k).unwrap_or(&Value::Null), out);
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            for i in 0..o.len().max(n.len()) {
                let p = format!("{path}[{i}]");
                match (o.get(i), n.get(i)) {
                    (Some(a), Some(b)) => value(prefix, &p, a, b, out),
                    (None, Some(b)) => out.push(format!("{prefix}{p}: added {}", shown(b))),
                    (Some(a), None) => out.push(format!("{prefix}{p}: removed (was {})", shown(a))),
                    (None, None) => {}
                }
            }
        }
        (Value::Null, n) => out.push(format!("{prefix}{}: set to {}", label(path), shown(n))),
        (o, Value::Null) => out.push(format!("{prefix}{}: removed (was {})", label(path), shown(o))),
        (o, n) => out.push(format!("{prefix}{}: {} → {}", label(path), shown(o), shown(n))),
    }
}

fn label(path: &str) -> &str {
    if path.is_empty() { "whole value" } else { path }
}

/// Equal as JSON, numbers by value.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= MAX_VALUE {
        s
    } else {
        let cut: String = s.chars().take(MAX_VALUE - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn panels_by_id_variables_by_name_fields_by_path() {
        let old = json!({"title": "A", "refresh": "30s", "panels": [
            {"id": 1, "title": "Up", "targets": [{"expr": "up", "refId": "A"}], "gridPos": {"x": 0, "y": 0}},
            {"id": 2, "title": "Gone"},
            {"id": 9, "type": "row", "title": "R", "panels": [{"id": 10, "title": "Inner", "fieldConfig": {"defaults": {"unit": "s"}}}]}
        ], "templating": {"list": [{"name": "group", "query": "a"}, {"name": "old"}]}});
        let new = json!({"title": "B", "panels": [
            {"id": 1, "title": "Up", "targets": [{"expr": "up == 1", "refId": "A"}], "gridPos": {"x": 0.0, "y": 0}},
            {"id": 3, "title": "New"},
            {"id": 9, "type": "row", "title": "R", "panels": [{"id": 10, "title": "Inner", "fieldConfig": {"defaults": {"unit": "ms"}}}]}
        ], "templating": {"list": [{"name": "group", "query": "b"}]}});
        assert_eq!(
            changes(&old, &new),
            [
                "panel \"Up\": targets[0].expr: \"up\" → \"up == 1\"",
                "panel \"New\": added",
                "panel \"Inner\": fieldConfig.defaults.unit: \"s\" → \"ms\"",
                "panel \"Gone\": removed",
                "refresh: removed (was \"30s\")",
                "variable \"group\": query: \"a\" → \"b\"",
                "variable \"old\": removed",
                "title: \"A\" → \"B\"",
            ]
        );
        assert!(changes(&old, &old).is_empty());
    }

    #[test]
    fn long_lists_of_changes_are_cut() {
        let old = json!({"panels": (0..40).map(|i| json!({"id": i, "title": format!("p{i}")})).collect::<Vec<_>>()});
        let c = changes(&old, &json!({"panels": []}));
        assert_eq!(c.len(), MAX_DETAILS);
        assert_eq!(c.last().unwrap(), "… and 21 more changes");
    }

    #[test]
    fn plan_summary_counts_deletes_only_with_prune() {
        let entry = |action| Entry {
            action,
            uid: "u".into(),
            title: "T".into(),
            folder: String::new(),
            file: None,
            details: vec![],
        };
        let mut plan = Plan { entries: vec![entry(Action::Delete), entry(Action::Unchanged)], prune: false };
        assert_eq!(plan.pending(), 0);
        assert!(plan.render().contains("1 to delete with --prune"), "{}", plan.render());
        plan.prune = true;
        assert_eq!(plan.pending(), 1);
    }
}
