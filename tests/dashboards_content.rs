//! The Grafana dashboards in `dashboards/` (issue 6, item 1): every JSON file has the structure
//! Grafana 10/11 imports (a stable uid, a title, the schema version), a `${datasource}`
//! variable of type datasource used by every panel and query (no datasource UID written in),
//! titles, descriptions and units on every panel; every PromQL query parses with promql-parser
//! once Grafana's variables are substituted, its rates use `$__rate_interval`, and every metric
//! it names is one promfed really exports (a promfed started in-process, see
//! `common::content::promfed_exported_names`).

mod common;

use common::content::{
    RANGE, RATE_INTERVAL, duration, files_ending, label_values_selector, metric_names, parse_promql,
    promfed_exported_names, range_functions, repo_root, substitute_grafana_variables,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The datasource every panel, target, annotation and query variable uses.
const DATASOURCE_UID: &str = "${datasource}";

/// Grafana 10.0 (38) to 11.x/12.0 (41).
const SCHEMA_VERSIONS: std::ops::RangeInclusive<u64> = 38..=41;

fn dashboards() -> Vec<(PathBuf, Value)> {
    let dir = repo_root().join("dashboards");
    files_ending(&dir, ".json")
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (p.strip_prefix(&dir).expect("under dashboards/").to_owned(), v)
        })
        .collect()
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

fn variable_names(d: &Value) -> Vec<String> {
    d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .map(str::to_owned)
        .collect()
}

/// Every PromQL expression of a dashboard with where it is: panel targets, annotations, and
/// the selectors of `label_values` variable queries.
fn expressions(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default().to_owned();
            let (title, ref_id) = (p["title"].as_str().unwrap_or_default(), t["refId"].as_str().unwrap_or_default());
            out.push((format!("panel {title:?} target {ref_id}"), expr));
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = a["expr"].as_str() {
            out.push((format!("annotation {:?}", a["name"].as_str().unwrap_or_default()), expr.to_owned()));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten().filter(|v| v["type"] == "query") {
        let query = v["query"]["query"].as_str().or_else(|| v["query"].as_str()).unwrap_or_default();
        let selector = label_values_selector(query).unwrap_or_else(|| {
            panic!("variable {:?}: only label_values(…) queries are used here: {query:?}", v["name"])
        });
        out.push((format!("variable {:?}", v["name"].as_str().unwrap_or_default()), selector.to_owned()));
    }
    out
}

/// Every `datasource` reference anywhere in the JSON (panels, targets, annotations, variables)
/// that is not the `${datasource}` variable.
fn hard_coded_datasources(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{path}.{k}");
                if k == "datasource" {
                    let ok = child.get("uid").and_then(Value::as_str) == Some(DATASOURCE_UID)
                        && child.get("type").and_then(Value::as_str) == Some("prometheus");
                    if !ok {
                        out.push(format!("{here} = {child}"));
                    }
                }
                hard_coded_datasources(child, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                hard_coded_datasources(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn dashboards_have_grafana_structure() {
    let all = dashboards();
    let names: Vec<String> = all.iter().map(|(p, _)| p.display().to_string()).collect();
    for want in ["promfed/overview.json", "promfed/remote-write.json", "promfed/discovery.json", "promfed/probes.json"]
    {
        assert!(names.iter().any(|n| n == want), "dashboards/{want} is missing: {names:?}");
    }
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for (path, d) in &all {
        let mut problem = |p: String| problems.push(format!("{}: {p}", path.display()));
        let uid = d["uid"].as_str().unwrap_or_default();
        // Grafana: at most 40 characters of letters, digits, '-' and '_'.
        if uid.is_empty() || uid.len() > 40 || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            problem(format!("uid {uid:?} is not a stable Grafana uid"));
        }
        if !uids.insert(uid.to_owned()) {
            problem(format!("uid {uid:?} used twice"));
        }
        let title = d["title"].as_str().unwrap_or_default();
        if title.is_empty() || !titles.insert(title.to_owned()) {
            problem(format!("title {title:?} empty or used twice"));
        }
        if d["description"].as_str().unwrap_or_default().is_empty() {
            problem("no description".into());
        }
        if !d["schemaVersion"].as_u64().is_some_and(|v| SCHEMA_VERSIONS.contains(&v)) {
            problem(format!("schemaVersion {} is not Grafana 10/11's {SCHEMA_VERSIONS:?}", d["schemaVersion"]));
        }
        // A numeric id or a version would tie the file to one Grafana's database.
        for volatile in ["id", "version"] {
            if !d[volatile].is_null() {
                problem(format!("{volatile} is set ({}): leave it to Grafana", d[volatile]));
            }
        }
        if !d["tags"].as_array().is_some_and(|t| t.contains(&Value::from("promfed"))) {
            problem("not tagged promfed (the dashboards' links find each other by that tag)".into());
        }
        let vars = d["templating"]["list"].as_array().cloned().unwrap_or_default();
        let ds = vars.iter().find(|v| v["name"] == "datasource");
        match ds {
            Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
            other => problem(format!("no datasource variable of type datasource, query prometheus: {other:?}")),
        }
        for v in vars.iter().filter(|v| v["type"] == "query") {
            if v["datasource"]["uid"] != DATASOURCE_UID {
                problem(format!("variable {} does not query ${{datasource}}", v["name"]));
            }
        }
        let mut hard = Vec::new();
        hard_coded_datasources(d, "", &mut hard);
        for h in hard {
            problem(format!("datasource not ${{datasource}}: {h}"));
        }
        let mut ids = BTreeSet::new();
        let all_panels = panels(d);
        let queried: Vec<&&Value> = all_panels.iter().filter(|p| p["type"] != "row").collect();
        if queried.len() < 4 {
            problem(format!("only {} panels", queried.len()));
        }
        for p in &all_panels {
            let t = p["title"].as_str().unwrap_or_default();
            if !p["id"].as_u64().is_some_and(|id| ids.insert(id)) {
                problem(format!("panel {t:?}: missing or repeated id {}", p["id"]));
            }
            if t.is_empty() || p["gridPos"]["w"].as_u64().is_none() {
                problem(format!("panel {}: no title or gridPos", p["id"]));
            }
        }
        for p in queried {
            let t = p["title"].as_str().unwrap_or_default();
            if p["datasource"]["uid"] != DATASOURCE_UID {
                problem(format!("panel {t:?}: datasource is not ${{datasource}}"));
            }
            if p["description"].as_str().unwrap_or_default().is_empty() {
                problem(format!("panel {t:?}: no description"));
            }
            if p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or_default().is_empty() {
                problem(format!("panel {t:?}: no unit"));
            }
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                problem(format!("panel {t:?}: no query"));
            }
            let mut ref_ids = BTreeSet::new();
            for target in &targets {
                if target["datasource"]["uid"] != DATASOURCE_UID {
                    problem(format!("panel {t:?} target {}: datasource is not ${{datasource}}", target["refId"]));
                }
                if !target["refId"].as_str().is_some_and(|r| ref_ids.insert(r.to_owned())) {
                    problem(format!("panel {t:?}: missing or repeated refId {}", target["refId"]));
                }
                if target["expr"].as_str().unwrap_or_default().trim().is_empty() {
                    problem(format!("panel {t:?} target {}: empty expr", target["refId"]));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn every_query_parses_and_rates_use_rate_interval() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (path, d) in dashboards() {
        let vars = variable_names(&d);
        for (at, expr) in expressions(&d) {
            count += 1;
            let substituted = match substitute_grafana_variables(&expr, &vars) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{} {at}: {e}", path.display()));
                    continue;
                }
            };
            let parsed = match parse_promql(&substituted) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(format!("{} {at}: does not parse: {e}\n  {substituted}", path.display()));
                    continue;
                }
            };
            // rate and friends over $__rate_interval (increase also over $__range, for "in the
            // selected range" stats): a fixed window is wrong at some zoom level.
            for (function, range) in range_functions(&parsed, &["rate", "irate", "increase", "changes", "deriv"]) {
                let ok = range == Some(duration(RATE_INTERVAL))
                    || (function == "increase" && range == Some(duration(RANGE)));
                if !ok {
                    problems
                        .push(format!("{} {at}: {function}(…) is not over $__rate_interval: {expr}", path.display()));
                }
            }
        }
    }
    assert!(count > 50, "only {count} expressions found");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// What the issue asks each dashboard to show, as the metrics it must read.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "promfed/overview.json",
        &[
            "promfed_group_up",
            "promfed_replica_up",
            "promfed_group_leader",
            "promfed_group_pinned",
            "promfed_group_failover_active",
            "promfed_group_failovers_total",
            "promfed_scrape_duration_seconds",
            "promfed_scrape_errors_total",
            "promfed_group_series",
            "promfed_http_request_duration_seconds_bucket",
            "promfed_federate_bytes_total",
        ],
    ),
    (
        "promfed/remote-write.json",
        &[
            "promfed_remote_storage_samples_pending",
            "promfed_remote_storage_highest_timestamp_in_seconds",
            "promfed_remote_storage_queue_highest_sent_timestamp_seconds",
            "promfed_remote_storage_samples_failed_total",
            "promfed_remote_storage_samples_retried_total",
            "promfed_remote_storage_samples_dropped_total",
            "promfed_remote_storage_queue_bytes",
            "promfed_remote_storage_queue_max_bytes",
            "promfed_remote_storage_shards",
            "promfed_remote_write_refused_requests_total",
            "promfed_remote_write_samples_received_total",
            "promfed_remote_write_samples_dropped_total",
            "promfed_ha_elected_replica",
            "promfed_ha_failovers_total",
        ],
    ),
    (
        "promfed/discovery.json",
        &[
            "promfed_sd_targets",
            "promfed_sd_rejected_targets",
            "promfed_sd_refresh_failures_total",
            "promfed_sd_last_success_timestamp_seconds",
            "promfed_config_last_reload_successful",
        ],
    ),
    (
        "promfed/probes.json",
        &[
            "probe_success",
            "probe_duration_seconds",
            "probe_http_duration_seconds",
            "probe_ssl_earliest_cert_expiry",
            "probe_failure_info",
        ],
    ),
];

/// Every metric a dashboard names is exported by promfed, and each dashboard shows what the
/// issue asks of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_is_one_promfed_exports() {
    common::init_tracing();
    let exported = promfed_exported_names().await;
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (path, d) in dashboards() {
        let vars = variable_names(&d);
        let file = path.display().to_string();
        for (at, expr) in expressions(&d) {
            let substituted = substitute_grafana_variables(&expr, &vars).expect("checked by the parse test");
            let parsed = parse_promql(&substituted).unwrap_or_else(|e| panic!("{file} {at}: {e}"));
            for name in metric_names(&parsed) {
                if !exported.contains(&name) {
                    unknown.push(format!("{file} {at}: {name}"));
                }
                used.entry(file.clone()).or_default().insert(name);
            }
        }
    }
    assert!(unknown.is_empty(), "metrics promfed does not export:\n{}\n(exported: {exported:?})", unknown.join("\n"));
    for (file, required) in REQUIRED {
        let names = used.get(*file).cloned().unwrap_or_default();
        let missing: Vec<&&str> = required.iter().filter(|r| !names.contains(**r)).collect();
        assert!(missing.is_empty(), "{file} does not show {missing:?}");
    }
}

#[test]
fn grafana_variables_are_substituted() {
    let vars = vec!["group".to_owned(), "job".to_owned()];
    let s = |e: &str| substitute_grafana_variables(e, &vars);
    assert_eq!(
        s(r#"sum by (group) (rate(x_total{group=~"$group", job=~"${job:regex}"}[$__rate_interval]))"#).unwrap(),
        r#"sum by (group) (rate(x_total{group=~".*", job=~".*"}[61s]))"#
    );
    assert_eq!(s("increase(x[${__range}]) / $__range_s").unwrap(), "increase(x[3607s]) / 3607");
    assert_eq!(
        s(r#"label_replace(x, "a", "$1", "b", "(.*)")"#).unwrap(),
        r#"label_replace(x, "a", "$1", "b", "(.*)")"#
    );
    assert_eq!(s(r#"x{g=~"[[group]]"}[5m]"#).unwrap(), r#"x{g=~".*"}[5m]"#);
    assert!(s(r#"x{g=~"$grup"}"#).unwrap_err().contains("$grup"), "an undefined variable is an error");
    let e = parse_promql(&s("sum(rate(a_total[$__rate_interval])) / on (job) group_left b").unwrap()).unwrap();
    assert_eq!(metric_names(&e), BTreeSet::from(["a_total".to_owned(), "b".to_owned()]));
    assert_eq!(
        label_values_selector(r#"label_values(up{job=~"$job", a="b"}, instance)"#),
        Some(r#"up{job=~"$job", a="b"}"#)
    );
    assert_eq!(label_values_selector("label_values(promfed_build_info, job)"), Some("promfed_build_info"));
}
