//! Prometheus rule files (`groups: [{name, rules: [{alert|record, expr, …}]}]`) as lint reads
//! them: every `expr` parses (promql-parser), and its metric names join the `--live` check;
//! recording rules' names count as known metrics. Alerting rules also need what issue 6 asks
//! of every alert: a `severity` label, a `summary` or `description` and a `runbook_url`.
//!
//! `promtool check rules` stays the authority on the rest of the format; YAML files that are
//! `promtool test rules` inputs (`rule_files:`, `tests:`) or Grafana provisioning files
//! (`apiVersion:`) are skipped.

use super::expr::analyse;
use super::report::Report;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;

/// Lints one YAML file.
pub fn lint_rule_file(path: &Path, report: &mut Report) {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return report.problem(&file, "", format!("cannot read: {e}")),
    };
    let doc: Value = match serde_saphyr::from_str(&text) {
        Ok(v) => v,
        Err(e) => return report.problem(&file, "", format!("invalid YAML: {}", first_line(&e.to_string()))),
    };
    let Some(top) = doc.as_object() else {
        return report.problem(&file, "", "not a Prometheus rule file (no `groups:`)");
    };
    let Some(groups) = top.get("groups") else {
        if !(top.contains_key("rule_files") || top.contains_key("tests") || top.contains_key("apiVersion")) {
            report.problem(&file, "", "not a Prometheus rule file (no `groups:`)");
        }
        return;
    };
    let Some(groups) = groups.as_array() else {
        return report.problem(&file, "", "`groups` must be a list");
    };
    let mut names = HashSet::new();
    for (g, group) in groups.iter().enumerate() {
        let name = group.get("name").and_then(Value::as_str).unwrap_or_default();
        let place = if name.is_empty() { format!("group #{}", g + 1) } else { format!("group {name:?}") };
        if name.is_empty() {
            report.problem(&file, &place, "group has no name");
        } else if !names.insert(name) {
            report.problem(&file, &place, "group name repeated in the same file");
        }
        let rules = group.get("rules").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        for (r, rule) in rules.iter().enumerate() {
            lint_rule(&file, &place, r, rule, report);
        }
    }
}

fn lint_rule(file: &str, group: &str, index: usize, rule: &Value, report: &mut Report) {
    let alert = rule.get("alert").and_then(Value::as_str);
    let record = rule.get("record").and_then(Value::as_str);
    let place = match (alert, record) {
        (Some(a), _) => format!("{group}: alert {a:?}"),
        (None, Some(r)) => format!("{group}: record {r:?}"),
        (None, None) => format!("{group}: rule #{}", index + 1),
    };
    if alert.is_some() == record.is_some() {
        report.problem(file, &place, "a rule needs exactly one of `alert` and `record`");
    }
    let expr = match rule.get("expr") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if expr.trim().is_empty() {
        report.problem(file, &place, "no expr");
    } else {
        match analyse(&expr) {
            Ok(a) => {
                for m in &a.metrics {
                    report.uses(m, file, &place);
                }
            }
            Err(e) => report.problem(file, &place, format!("expr does not parse: {}", e.trim().replace('\n', " "))),
        }
    }
    if let Some(name) = record {
        if valid_metric_name(name) {
            report.recorded.insert(name.to_owned());
        } else {
            report.problem(file, &place, format!("{name:?} is not a valid metric name"));
        }
    }
    if alert.is_some() {
        if rule.pointer("/labels/severity").and_then(Value::as_str).is_none_or(str::is_empty) {
            report.problem(file, &place, "no `severity` label");
        }
        let annotation = |k: &str| rule.pointer(&format!("/annotations/{k}")).and_then(Value::as_str);
        if annotation("summary").is_none() && annotation("description").is_none() {
            report.problem(file, &place, "no `summary` or `description` annotation");
        }
        if annotation("runbook_url").is_none_or(str::is_empty) {
            report.problem(file, &place, "no `runbook_url` annotation");
        }
    }
}

fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
