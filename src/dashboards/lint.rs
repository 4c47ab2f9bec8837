//! `promfed dashboards lint`: dashboards (`*.json`) and Prometheus rule files (`*.yml`,
//! `*.yaml`, see [`super::rules`]) checked before they reach Grafana or Prometheus.
//!
//! Dashboard rules, in the spirit of Grafana's dashboard-linter
//! (<https://github.com/grafana/dashboard-linter>): valid JSON; a title and a uid Grafana
//! accepts, unique across every tree linted; no per-install `id`; a datasource template
//! variable (type `datasource`, query `prometheus`) that every panel, target and query variable
//! uses instead of a hard-coded datasource; every PromQL target parses (promql-parser) once
//! Grafana's variables are replaced ([`super::variables`]); variables used are defined;
//! `rate()`, `irate()` and `increase()` take `[$__rate_interval]` (`increase` may also take
//! `[$__range]`, the usual "over the dashboard's time range" stat); panels have titles, and
//! panels that show numbers have a unit. Every metric name met is remembered for `--live`.

use super::expr::analyse;
use super::tree::{self, TreeError};
use super::variables::{self, Variables};
use serde_json::Value;
#[cfg(test)]
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use super::report::{Problem, Report};

/// Lints every dashboard and rule file under `paths` (directories or files); `alerts`:
/// directories or files of rule files only.
pub fn lint(paths: &[PathBuf], alerts: &[PathBuf]) -> Result<Report, TreeError> {
    let mut report = Report::default();
    for root in paths {
        for (path, _) in tree::files(root, &["json", "yml", "yaml"])? {
            lint_file(&path, &mut report);
        }
    }
    for root in alerts {
        for (path, _) in tree::files(root, &["yml", "yaml"])? {
            lint_file(&path, &mut report);
        }
    }
    Ok(report)
}

fn lint_file(path: &Path, report: &mut Report) {
    report.files += 1;
    let file = path.display().to_string();
    if path.extension().is_some_and(|e| e == "json") {
        match tree::read_json(path) {
            Ok(json) => lint_dashboard(&file, &json, report),
            Err(e) => report.problem(&file, "", e),
        }
    } else {
        super::rules::lint_rule_file(path, report);
    }
}

/// Panel types that show numbers and so want a unit.
const NUMERIC_PANELS: [&str; 6] = ["timeseries", "graph", "stat", "gauge", "bargauge", "singlestat"];

/// The rules for one dashboard.
pub fn lint_dashboard(file: &str, d: &Value, report: &mut Report) {
    if !d.is_object() {
        report.problem(file, "", "not a dashboard: the file must hold one JSON object");
        return;
    }
    let title = d.get("title").and_then(Value::as_str).unwrap_or_default();
    if title.trim().is_empty() {
        report.problem(file, "", "dashboard has no title");
    }
    let uid = d.get("uid").and_then(Value::as_str).unwrap_or_default();
    if !tree::valid_uid(uid) {
        report.problem(file, "", tree::uid_problem(uid));
    } else if let Some(other) = report.uids.get(uid) {
        let other = other.clone();
        report.problem(file, "", format!("uid {uid:?} is also the uid of {other}: uids must be unique"));
    } else {
        report.uids.insert(uid.to_owned(), file.to_owned());
    }
    if let Some(id) = d.get("id").filter(|v| !v.is_null()) {
        report.problem(file, "", format!("\"id\": {id} belongs to one Grafana install: remove it (pull drops it)"));
    }
    if d.get("rows").is_some() && d.get("panels").is_none() {
        report.problem(file, "", "old `rows` layout: open and save it in Grafana 5 or later, then pull it");
    }
    let vars = Variables::of(d);
    let list = d.pointer("/templating/list").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let datasource_var = list
        .iter()
        .find(|v| {
            v.get("type").and_then(Value::as_str) == Some("datasource")
                && v.get("query").and_then(Value::as_str) == Some("prometheus")
        })
        .and_then(|v| v.get("name").and_then(Value::as_str));
    if datasource_var.is_none() {
        report.problem(
            file,
            "",
            "no datasource variable: add a templating variable of type \"datasource\" with query \"prometheus\" \
             (named datasource) and use ${datasource} in every panel",
        );
    }
    let ctx = Ctx { file, vars: &vars, datasource_var };
    for var in list {
        lint_variable(&ctx, var, report);
    }
    let panels = d.get("panels").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    for panel in panels {
        lint_panel(&ctx, panel, report);
    }
}

struct Ctx<'a> {
    file: &'a str,
    vars: &'a Variables,
    datasource_var: Option<&'a str>,
}

impl Ctx<'_> {
    /// Whether `ds` (a panel's, target's or variable's `datasource`) is the datasource variable.
    fn uses_variable(&self, ds: &Value) -> bool {
        let text = match ds {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o.get("uid").and_then(Value::as_str).unwrap_or_default(),
            _ => "",
        };
        let Some(name) = self.datasource_var else {
            // Without the variable every reference is a problem reported once already; accept
            // any variable here rather than repeat it for every panel.
            return text.starts_with('$');
        };
        text == format!("${name}") || text == format!("${{{name}}}") || text == format!("[[{name}]]")
    }

    fn datasource_problem(&self, ds: Option<&Value>) -> Option<String> {
        let want = format!("${{{}}}", self.datasource_var.unwrap_or("datasource"));
        match ds {
            None | Some(Value::Null) => {
                Some(format!("no datasource: Grafana would use its default one; set it to {want}"))
            }
            Some(ds) if self.uses_variable(ds) => None,
            Some(ds) => {
                let shown = match ds {
                    Value::Object(o) => o.get("uid").map_or_else(|| ds.to_string(), Value::to_string),
                    other => other.to_string(),
                };
                // `${DS_PROMETHEUS}`: an input of a dashboard exported "for sharing externally",
                // replaced at import time, not a variable of the dashboard.
                let what = if shown.trim_matches('"').starts_with('$') {
                    "is not the datasource variable"
                } else {
                    "is hard-coded"
                };
                Some(format!("datasource {shown} {what}: use {want}"))
            }
        }
    }
}

fn is_mixed(ds: Option<&Value>) -> bool {
    let uid = match ds {
        Some(Value::Object(o)) => o.get("uid").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    uid == Some("-- Mixed --")
}

fn lint_variable(ctx: &Ctx, var: &Value, report: &mut Report) {
    let name = var.get("name").and_then(Value::as_str).unwrap_or_default();
    let place = format!("variable {name:?}");
    if var.get("type").and_then(Value::as_str) != Some("query") {
        return;
    }
    if let Some(problem) = ctx.datasource_problem(var.get("datasource")) {
        report.problem(ctx.file, &place, problem);
    }
    let query = match var.get("query") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => o.get("query").and_then(Value::as_str).unwrap_or_default(),
        _ => "",
    };
    // Grafana's Prometheus variable queries are functions of its own around PromQL:
    // label_values(selector, label), query_result(expr); label_names() and metrics() hold none.
    let promql = if let Some(inner) = query.trim().strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')) {
        // label_values(label) has no selector.
        split_last_argument(inner).map(|(selector, _label)| selector)
    } else {
        query.trim().strip_prefix("query_result(").and_then(|r| r.strip_suffix(')'))
    };
    if let Some(promql) = promql {
        check_promql(ctx, &place, "query", promql, false, report);
    }
}

/// `a, b` → `(a, b)` split at the last comma outside strings, parentheses and braces.
fn split_last_argument(s: &str) -> Option<(&str, &str)> {
    let (mut depth, mut quote, mut at) = (0i32, None, None);
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            ',' if depth == 0 => at = Some(i),
            _ => {}
        }
    }
    at.map(|i| (s[..i].trim(), s[i + 1..].trim()))
}

fn lint_panel(ctx: &Ctx, panel: &Value, report: &mut Report) {
    let kind = panel.get("type").and_then(Value::as_str).unwrap_or_default();
    let title = panel.get("title").and_then(Value::as_str).unwrap_or_default();
    let place = if title.trim().is_empty() {
        match panel.get("id") {
            Some(id) => format!("panel #{id}"),
            None => "panel without id".to_owned(),
        }
    } else {
        format!("panel {title:?}")
    };
    if kind == "row" {
        // A collapsed row keeps its panels inside it.
        for p in panel.get("panels").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
            lint_panel(ctx, p, report);
        }
        return;
    }
    if title.trim().is_empty() && kind != "text" {
        report.problem(ctx.file, &place, "panel has no title");
    }
    let targets = panel.get("targets").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let queries: Vec<&Value> = targets.iter().filter(|t| t.get("expr").is_some()).collect();
    if queries.is_empty() {
        return;
    }
    let panel_ds = panel.get("datasource");
    let mixed = is_mixed(panel_ds);
    if !mixed && let Some(problem) = ctx.datasource_problem(panel_ds) {
        report.problem(ctx.file, &place, problem);
    }
    for (i, target) in queries.iter().enumerate() {
        let ref_id = target.get("refId").and_then(Value::as_str).map_or_else(|| format!("#{}", i + 1), str::to_owned);
        let target_place = format!("{place}: target {ref_id}");
        let target_ds = target.get("datasource");
        if (mixed || target_ds.is_some_and(|d| !d.is_null()))
            && let Some(problem) = ctx.datasource_problem(target_ds)
        {
            report.problem(ctx.file, &target_place, problem);
        }
        let expr = target.get("expr").and_then(Value::as_str).unwrap_or_default();
        check_promql(ctx, &target_place, "query", expr, true, report);
    }
    if NUMERIC_PANELS.contains(&kind) {
        let unit = panel.pointer("/fieldConfig/defaults/unit").and_then(Value::as_str).unwrap_or_default();
        let graph_unit = panel.pointer("/yaxes/0/format").and_then(Value::as_str).unwrap_or_default();
        if unit.is_empty() && graph_unit.is_empty() {
            report.problem(
                ctx.file,
                &place,
                "no unit: set fieldConfig.defaults.unit (e.g. \"short\", \"s\", \"bytes\", \"percentunit\", \"none\")",
            );
        }
    }
}

/// Parses a PromQL text with the dashboard's variables replaced; `rate_rule`: apply the
/// `$__rate_interval` rule (panels; not variable queries).
fn check_promql(ctx: &Ctx, place: &str, what: &str, expr: &str, rate_rule: bool, report: &mut Report) {
    if expr.trim().is_empty() {
        report.problem(ctx.file, place, format!("empty {what}"));
        return;
    }
    let expanded = ctx.vars.expand(expr);
    for name in &expanded.undefined {
        report.problem(ctx.file, place, format!("variable ${name} is not defined in the dashboard's templating"));
    }
    report.variable_values.extend(expanded.bare_values.iter().cloned());
    let analysis = match analyse(&expanded.text) {
        Ok(a) => a,
        Err(e) => {
            let e = e.trim().replace('\n', " ");
            let shown = if expanded.text == expr {
                String::new()
            } else {
                format!(" (as sent, variables replaced: {})", expanded.text)
            };
            report.problem(ctx.file, place, format!("{what} does not parse: {e}{shown}"));
            return;
        }
    };
    for metric in &analysis.metrics {
        if !expanded.bare_values.contains(metric) {
            report.uses(metric, ctx.file, place);
        }
    }
    if rate_rule {
        for (func, range) in &analysis.rate_ranges {
            let ok = *range == variables::RATE_INTERVAL || (*func == "increase" && *range == variables::RANGE);
            if !ok {
                let shown = variables::range_name(*range)
                    .map_or_else(|| promql_parser::util::display_duration(range), str::to_owned);
                report.problem(ctx.file, place, format!("{func}() over [{shown}]: use [$__rate_interval]"));
            }
        }
    }
}

#[cfg(test)]
mod tests;
