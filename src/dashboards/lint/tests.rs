use super::*;
use serde_json::json;

/// A change to the good dashboard.
type Change = Box<dyn Fn(&mut Value)>;

fn lint_one(d: &Value) -> Vec<String> {
    let mut report = Report::default();
    lint_dashboard("d.json", d, &mut report);
    report.problems.iter().map(ToString::to_string).collect()
}

fn good() -> Value {
    json!({
        "uid": "good", "title": "Good", "id": null,
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "group", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": "label_values(promfed_group_up, group)", "refId": "A"}}
        ]},
        "panels": [
            {"id": 1, "type": "timeseries", "title": "Scrapes", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "fieldConfig": {"defaults": {"unit": "reqps"}},
             "targets": [{"refId": "A", "expr": "sum by (group) (rate(promfed_scrapes_total{group=~\"$group\"}[$__rate_interval]))"}]},
            {"id": 2, "type": "row", "title": "More", "collapsed": true, "panels": [
                {"id": 3, "type": "stat", "title": "Failovers today", "datasource": "$datasource",
                 "fieldConfig": {"defaults": {"unit": "short"}},
                 "targets": [{"refId": "A", "expr": "sum(increase(promfed_group_failovers_total[$__range]))"}]}
            ]},
            {"id": 4, "type": "text", "options": {"content": "notes"}}
        ]
    })
}

#[test]
fn a_good_dashboard_has_no_problem_and_its_metrics_are_known() {
    let mut report = Report::default();
    lint_dashboard("d.json", &good(), &mut report);
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    let metrics: Vec<&str> = report.metrics.keys().map(String::as_str).collect();
    assert_eq!(metrics, ["promfed_group_failovers_total", "promfed_group_up", "promfed_scrapes_total"]);
}

#[test]
fn each_rule_has_its_message() {
    let cases: Vec<(&str, Change, &str)> = vec![
        ("title", Box::new(|d| d["title"] = json!("")), "d.json: dashboard has no title"),
        ("uid", Box::new(|d| d["uid"] = json!("a/b")), "d.json: uid \"a/b\" may hold only letters"),
        ("id", Box::new(|d| d["id"] = json!(12)), "d.json: \"id\": 12 belongs to one Grafana install"),
        (
            "no datasource variable",
            Box::new(|d| d["templating"]["list"].as_array_mut().unwrap().remove(0).to_string().clear()),
            "d.json: no datasource variable",
        ),
        (
            "hard-coded datasource",
            Box::new(|d| d["panels"][0]["datasource"] = json!({"type": "prometheus", "uid": "P1809F7CD0C75ACF3"})),
            "d.json: panel \"Scrapes\": datasource \"P1809F7CD0C75ACF3\" is hard-coded: use ${datasource}",
        ),
        (
            "missing datasource",
            Box::new(|d| d["panels"][0].as_object_mut().unwrap().remove("datasource").map(drop).unwrap_or(())),
            "d.json: panel \"Scrapes\": no datasource",
        ),
        (
            "target datasource",
            Box::new(|d| d["panels"][0]["targets"][0]["datasource"] = json!({"uid": "prom-1"})),
            "d.json: panel \"Scrapes\": target A: datasource \"prom-1\" is hard-coded",
        ),
        (
            "variable datasource",
            Box::new(|d| d["templating"]["list"][1]["datasource"] = json!("Prometheus")),
            "d.json: variable \"group\": datasource \"Prometheus\" is hard-coded",
        ),
        (
            "parse",
            Box::new(|d| d["panels"][0]["targets"][0]["expr"] = json!("sum(rate(x[$__rate_interval])")),
            "d.json: panel \"Scrapes\": target A: query does not parse:",
        ),
        (
            "rate interval",
            Box::new(|d| d["panels"][0]["targets"][0]["expr"] = json!("rate(x[5m]) + irate(y[$__interval])")),
            "d.json: panel \"Scrapes\": target A: rate() over [5m]: use [$__rate_interval]",
        ),
        (
            "undefined variable",
            Box::new(|d| d["panels"][0]["targets"][0]["expr"] = json!("up{job=\"$job\"}")),
            "d.json: panel \"Scrapes\": target A: variable $job is not defined",
        ),
        ("title of panel", Box::new(|d| d["panels"][0]["title"] = json!("")), "d.json: panel #1: panel has no title"),
        (
            "unit",
            Box::new(|d| d["panels"][1]["panels"][0]["fieldConfig"]["defaults"] = json!({})),
            "d.json: panel \"Failovers today\": no unit",
        ),
        (
            "empty query",
            Box::new(|d| d["panels"][0]["targets"][0]["expr"] = json!(" ")),
            "d.json: panel \"Scrapes\": target A: empty query",
        ),
    ];
    for (name, change, want) in cases {
        let mut d = good();
        change(&mut d);
        let got = lint_one(&d);
        assert!(got.iter().any(|p| p.starts_with(want)), "{name}: want {want:?}, got {got:#?}");
    }
}

#[test]
fn an_exported_dashboards_input_is_not_the_variable() {
    let mut d = good();
    d["panels"][0]["datasource"] = json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    assert_eq!(
        lint_one(&d),
        [
            "d.json: panel \"Scrapes\": datasource \"${DS_PROMETHEUS}\" is not the datasource variable: use ${datasource}"
        ]
    );
}

#[test]
fn irate_over_interval_is_named_by_its_variable() {
    let mut d = good();
    d["panels"][0]["targets"][0]["expr"] = json!("irate(y[$__interval])");
    assert_eq!(
        lint_one(&d),
        ["d.json: panel \"Scrapes\": target A: irate() over [$__interval]: use [$__rate_interval]"]
    );
}

#[test]
fn mixed_panels_need_the_variable_on_each_target() {
    let mut d = good();
    d["panels"][0]["datasource"] = json!({"type": "datasource", "uid": "-- Mixed --"});
    assert_eq!(
        lint_one(&d),
        [
            "d.json: panel \"Scrapes\": target A: no datasource: Grafana would use its default one; set it to ${datasource}"
        ]
    );
    d["panels"][0]["targets"][0]["datasource"] = json!({"type": "prometheus", "uid": "$datasource"});
    assert!(lint_one(&d).is_empty());
}

#[test]
fn uids_are_unique_across_files() {
    let mut report = Report::default();
    lint_dashboard("a.json", &good(), &mut report);
    lint_dashboard("b.json", &good(), &mut report);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].to_string(), "b.json: uid \"good\" is also the uid of a.json: uids must be unique");
}

#[test]
fn live_check_skips_recorded_names_and_variable_values() {
    let mut report = Report::default();
    report.uses("up", "a.json", "panel \"x\"");
    report.uses("job:up:sum", "a.json", "panel \"y\"");
    report.uses("nope", "a.json", "panel \"z\"");
    report.recorded.insert("job:up:sum".into());
    let known: BTreeSet<String> = ["up".to_owned()].into();
    report.check_live(&known, "http://p");
    let got: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(got, ["a.json: panel \"z\": metric \"nope\" is not known to http://p (no series of that name)"]);
}
