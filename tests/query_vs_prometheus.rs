//! Issue 14's differential suite: promfed's query API over an HA pair of real Prometheus 2.42
//! servers against a third, reference Prometheus 2.42 holding the union of what the two hold.
//!
//! Hours of history are backfilled in seconds (`promtool tsdb create-blocks-from openmetrics`):
//! the primary misses a window (down) and one target for another window (lost it), the
//! secondary misses a third window (down). The reference holds every sample either has — what
//! one Prometheus that saw every scrape would hold. Every query of the list, instant at times
//! inside each gap and range over the whole history, must give the reference's result: the same
//! series, the same timestamps, values within 1e-6 relative (NaN equal to NaN). promfed adds
//! the group label `federation_group="pair"`, which the comparison leaves out; group pruning is
//! checked on its own. A query both refuse alike (the same `errorType`) counts as equal.

mod common;

use common::{Prometheus, now_ms};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const STEP: i64 = 15_000;
const POINTS: i64 = 200;
const MIN: i64 = 60_000;

/// Which samples a replica lacks: (from minute, to minute, instance or all).
type Drops = &'static [(i64, i64, Option<&'static str>)];
const PRIMARY_DROPS: Drops = &[(10, 18, None), (25, 35, Some("i3"))];
const SECONDARY_DROPS: Drops = &[(30, 38, None)];

fn dropped(drops: Drops, t0: i64, t: i64, instance: &str) -> bool {
    drops.iter().any(|&(a, b, only)| t >= t0 + a * MIN && t < t0 + b * MIN && only.is_none_or(|i| i == instance))
}

/// The OpenMetrics history held by a server holding what any of `holders` holds (each a
/// replica's drops): one replica's, or the reference's union.
fn history(t0: i64, holders: &[Drops]) -> String {
    let kept = |t: i64, instance: &str| holders.iter().any(|d| !dropped(d, t0, t, instance));
    let ts = |t: i64| format!("{}.{:03}", t / 1000, t % 1000);
    let mut om = String::new();
    om.push_str("# TYPE rr_requests counter\n");
    for i in 0..6 {
        for code in ["200", "500"] {
            let inst = format!("i{i}");
            let mut v = 0.0;
            for k in 0..POINTS {
                let t = t0 + k * STEP;
                v += if code == "200" { 3.0 + (i * k % 7) as f64 } else { (k % 3) as f64 * 0.5 };
                if i == 2 && code == "500" && k == 80 {
                    v = 0.5; // a counter reset
                }
                if kept(t, &inst) {
                    om.push_str(&format!("rr_requests_total{{code=\"{code}\",instance=\"{inst}\"}} {v} {}\n", ts(t)));
                }
            }
        }
    }
    om.push_str("# TYPE rr_temperature gauge\n");
    for i in 0..6 {
        let inst = format!("i{i}");
        for k in 0..POINTS {
            let t = t0 + k * STEP;
            let v = ((k as f64) * 0.21 + i as f64).sin() * 40.0 - i as f64;
            if kept(t, &inst) {
                om.push_str(&format!("rr_temperature{{instance=\"{inst}\",zone=\"z{}\"}} {v} {}\n", i % 3, ts(t)));
            }
        }
    }
    om.push_str("# TYPE rr_up gauge\n");
    for i in 0..6 {
        let inst = format!("i{i}");
        for k in 0..POINTS {
            let t = t0 + k * STEP;
            let v = if i == 4 && (60..90).contains(&k) { 0 } else { 1 };
            if kept(t, &inst) {
                om.push_str(&format!("rr_up{{instance=\"{inst}\"}} {v} {}\n", ts(t)));
            }
        }
    }
    om.push_str("# TYPE rr_latency histogram\n");
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
    for i in 0..6 {
        let inst = format!("i{i}");
        let mut counts = [0.0f64; 6];
        let mut sum = 0.0;
        let mut lines: Vec<Vec<String>> = vec![Vec::new(); 8];
        for k in 0..POINTS {
            let t = t0 + k * STEP;
            // New observations per bucket this step, cumulative over buckets.
            let mut cum = 0.0;
            for (b, c) in counts.iter_mut().enumerate() {
                cum += ((i + b as i64 + k) % 4) as f64 + 1.0;
                *c += cum;
            }
            sum += counts[5] * 0.01 + i as f64;
            if kept(t, &inst) {
                for (b, le) in bounds.iter().enumerate() {
                    lines[b].push(format!(
                        "rr_latency_bucket{{instance=\"{inst}\",le=\"{le}\"}} {} {}\n",
                        counts[b],
                        ts(t)
                    ));
                }
                lines[6].push(format!("rr_latency_count{{instance=\"{inst}\"}} {} {}\n", counts[5], ts(t)));
                lines[7].push(format!("rr_latency_sum{{instance=\"{inst}\"}} {sum} {}\n", ts(t)));
            }
        }
        for l in lines {
            om.extend(l);
        }
    }
    om.push_str("# EOF\n");
    om
}

/// Instant queries, evaluated at several times.
const INSTANT: &[&str] = &[
    "rr_requests_total",
    "rr_requests_total{code=\"200\"}",
    "rr_requests_total{code=~\"5..\",instance!=\"i0\"}",
    "rate(rr_requests_total[5m])",
    "rate(rr_requests_total[1m])",
    "sum by (code) (rate(rr_requests_total[5m]))",
    "sum(rate(rr_requests_total[5m]))",
    "sum without (instance) (rate(rr_requests_total[2m]))",
    "increase(rr_requests_total[10m])",
    "irate(rr_requests_total[2m])",
    "resets(rr_requests_total[30m])",
    "delta(rr_temperature[10m])",
    "idelta(rr_temperature[5m])",
    "deriv(rr_temperature[10m])",
    "predict_linear(rr_temperature[10m], 600)",
    "avg_over_time(rr_temperature[10m])",
    "min_over_time(rr_temperature[10m])",
    "max_over_time(rr_temperature[10m])",
    "sum_over_time(rr_temperature[10m])",
    "count_over_time(rr_temperature[10m])",
    "stddev_over_time(rr_temperature[10m])",
    "stdvar_over_time(rr_temperature[10m])",
    "last_over_time(rr_temperature[10m])",
    "present_over_time(rr_temperature[10m])",
    "quantile_over_time(0.9, rr_temperature[10m])",
    "changes(rr_temperature[10m])",
    "changes(rr_up[30m])",
    "holt_winters(rr_temperature[10m], 0.5, 0.3)",
    "histogram_quantile(0.9, sum by (le) (rate(rr_latency_bucket[5m])))",
    "histogram_quantile(0.5, rate(rr_latency_bucket[5m]))",
    "histogram_quantile(0.99, sum by (le, instance) (rate(rr_latency_bucket[10m])))",
    "rate(rr_latency_sum[5m]) / rate(rr_latency_count[5m])",
    "topk(3, rr_temperature)",
    "bottomk(2, rr_temperature)",
    "topk by (zone) (1, rr_temperature)",
    "quantile(0.75, rr_temperature)",
    "count_values(\"value\", rr_up)",
    "avg(rr_temperature)",
    "stddev(rr_temperature)",
    "stdvar by (zone) (rr_temperature)",
    "max by (zone) (rr_temperature)",
    "min without (instance) (rr_temperature)",
    "group by (zone) (rr_temperature)",
    "count(rr_temperature > 0)",
    "rr_temperature > bool 0",
    "rr_temperature > 5",
    "rr_temperature + rr_temperature",
    "rr_temperature * on (instance) group_left rr_up",
    "rr_up * on (instance) group_right rr_temperature",
    "rate(rr_requests_total[5m]) / ignoring (code) group_left sum without (code) (rate(rr_requests_total[5m]))",
    "rr_requests_total and rr_requests_total{code=\"500\"}",
    "rr_temperature unless rr_temperature{zone=\"z1\"}",
    "rr_temperature or rr_up",
    "rr_up == 0",
    "rr_temperature % 7",
    "rr_temperature ^ 2",
    "-rr_temperature",
    "rr_temperature atan2 rr_up",
    "abs(rr_temperature)",
    "ceil(rr_temperature)",
    "floor(rr_temperature)",
    "round(rr_temperature, 0.5)",
    "sqrt(abs(rr_temperature))",
    "exp(rr_temperature / 100)",
    "ln(abs(rr_temperature) + 1)",
    "log2(rr_up + 1)",
    "log10(abs(rr_temperature) + 1)",
    "sgn(rr_temperature)",
    "clamp(rr_temperature, -10, 10)",
    "clamp_min(rr_temperature, 0)",
    "clamp_max(rr_temperature, 0)",
    "sin(rr_temperature)",
    "deg(rr_up)",
    "label_replace(rr_temperature, \"z\", \"$1\", \"zone\", \"z(.*)\")",
    "label_join(rr_temperature, \"where\", \"-\", \"zone\", \"instance\")",
    "absent(rr_nonexistent{job=\"x\"})",
    "absent(rr_temperature)",
    "absent_over_time(rr_nonexistent[5m])",
    "timestamp(rr_temperature)",
    "time()",
    "vector(3)",
    "scalar(sum(rr_up))",
    "sum(rr_up) + scalar(count(rr_up))",
    "1 + 2 * 3 - 4 / 2",
    "2 ^ 3 ^ 2",
    "rr_temperature offset 10m",
    "rate(rr_requests_total[5m] offset 7m)",
    "max_over_time(rr_temperature[10m:1m])",
    "rate(rr_requests_total[5m:30s])",
    "avg_over_time(sum by (zone) (rr_temperature)[15m:2m])",
    "sort(rr_temperature)",
    "sort_desc(sum by (zone) (rr_temperature))",
    "minute(timestamp(rr_up))",
    "hour(vector(time()))",
    "day_of_week()",
    "days_in_month(vector(1709251200))",
    "sum by (instance) (increase(rr_latency_count[10m]))",
    // More of each family: trigonometry and math, dates, modifiers, subqueries, matching,
    // aggregations with parameters, edge values.
    "asin(clamp(rr_temperature / 50, -1, 1))",
    "acos(clamp(rr_temperature / 50, -1, 1))",
    "atan(rr_temperature)",
    "sinh(rr_temperature / 40)",
    "cosh(rr_temperature / 40)",
    "tanh(rr_temperature)",
    "asinh(rr_temperature)",
    "acosh(abs(rr_temperature) + 1)",
    "atanh(clamp(rr_temperature / 50, -0.99, 0.99))",
    "cos(rr_temperature)",
    "tan(rr_temperature / 30)",
    "rad(rr_temperature)",
    "pi() * rr_up",
    "exp(-rr_up)",
    "day_of_month(timestamp(rr_up))",
    "day_of_year(timestamp(rr_up))",
    "month(timestamp(rr_up))",
    "year(timestamp(rr_up))",
    "days_in_month()",
    "minute()",
    "rr_temperature @ start()",
    "rr_temperature @ end()",
    "rate(rr_requests_total[5m] @ end())",
    "last_over_time(rr_temperature[5m] offset 3m)",
    "max_over_time(rate(rr_requests_total[2m])[10m:1m])",
    "avg_over_time(rr_temperature[10m:1m] offset 5m)",
    "max_over_time(max_over_time(rr_temperature[2m:30s])[6m:2m])",
    "deriv(rr_temperature[10m:1m])",
    "delta(sum(rr_temperature)[10m:1m])",
    "changes(rr_requests_total[1h])",
    "increase(rr_requests_total[10m] offset 5m)",
    "predict_linear(rr_temperature[10m], -600)",
    "holt_winters(rr_temperature[20m], 0.1, 0.9)",
    "histogram_quantile(1.5, rate(rr_latency_bucket[5m]))",
    "histogram_quantile(-1, rate(rr_latency_bucket[5m]))",
    "histogram_quantile(0, rate(rr_latency_bucket[5m]))",
    "histogram_quantile(1, rate(rr_latency_bucket[5m]))",
    "scalar(rr_up)",
    "vector(time())",
    "clamp(rr_temperature, 10, -10)",
    "round(rr_temperature)",
    "-(-rr_temperature)",
    "2 ^ rr_up",
    "2 * rr_up",
    "rr_up - 1",
    "10 / rr_temperature",
    "1 - rr_temperature > bool 0",
    "rr_temperature != 0",
    "rr_temperature < bool rr_temperature",
    "rr_temperature >= on (instance, zone) rr_temperature",
    "rr_temperature <= ignoring (zone) group_left (zone) rr_up",
    "rr_up == bool on (instance) rr_up",
    "rr_temperature and on (instance) rr_up == 1",
    "rr_temperature unless on (zone) rr_temperature{zone=\"z2\"}",
    // (`federation_group`, the label promfed adds, is ignored too: the reference lacks it.)
    "rr_up or ignoring (instance, federation_group) vector(0)",
    "rr_temperature * on () group_left scalar(sum(rr_up))",
    "sum(rr_temperature) * on () group_right rr_up",
    "max(sum by (zone) (rr_temperature))",
    "count(count by (zone) (rr_temperature))",
    "avg without (zone, instance) (rr_temperature)",
    "quantile by (zone) (0.5, rr_temperature)",
    "topk without (instance) (1, rr_temperature)",
    "bottomk by (zone) (1, rr_temperature)",
    "count_values by (zone) (\"v\", ceil(rr_temperature / 20))",
    "stddev without (instance) (rr_temperature)",
    "group without (instance) (rr_temperature)",
    "sum by (le) (rr_latency_bucket)",
    "label_replace(rr_up, \"dst\", \"$1\", \"instance\", \"nomatch(.*)\")",
    "label_replace(rr_up, \"instance\", \"\", \"instance\", \".*\")",
    "label_join(rr_up, \"joined\", \",\")",
    "absent_over_time(rr_up[5m])",
    "absent(rr_up{instance=\"nowhere\", job=\"x\"})",
    "sort_desc(rate(rr_requests_total[5m]))",
    "rr_requests_total{code=~\"2.*|5.*\", instance=~\"i[0-2]\"}",
    "rr_requests_total{instance!~\"i[0-2]\"}",
    "{__name__=~\"rr_(up|temperature)\"}",
];

/// Range queries over the whole history.
const RANGE: &[&str] = &[
    "rr_temperature",
    "rr_requests_total{code=\"500\"}",
    "rate(rr_requests_total[5m])",
    "sum by (code) (rate(rr_requests_total[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(rr_latency_bucket[5m])))",
    "avg_over_time(rr_temperature[5m])",
    "count_over_time(rr_up[5m])",
    "max by (zone) (rr_temperature)",
    "rr_temperature * on (instance) group_left rr_up",
    "increase(rr_requests_total[3m])",
    "topk(2, rr_temperature)",
    "rate(rr_requests_total[5m:1m])",
    "time() - timestamp(rr_up)",
    "1",
    "rr_up == 0",
    "rr_temperature @ start()",
    "rr_temperature offset 5m",
    "max_over_time(rr_temperature[5m:1m])",
    "sum by (zone) (avg_over_time(rr_temperature[5m]))",
    "absent(rr_nonexistent)",
    "label_replace(rr_up, \"n\", \"$1\", \"instance\", \"i(.*)\")",
    "scalar(sum(rr_up))",
    "rr_temperature > bool 0",
    "holt_winters(rr_temperature[10m], 0.3, 0.3)",
    "deriv(rr_temperature[5m])",
];

/// A result keyed by labels (without `federation_group`): per series its points.
fn keyed(body: &Value) -> (String, BTreeMap<String, Vec<(f64, String)>>) {
    assert_eq!(body["status"], "success", "{body}");
    let data = &body["data"];
    let kind = data["resultType"].as_str().expect("resultType").to_owned();
    let mut out = BTreeMap::new();
    let point = |p: &Value| (p[0].as_f64().expect("time"), p[1].as_str().expect("value").to_owned());
    match kind.as_str() {
        "scalar" | "string" => {
            out.insert(String::new(), vec![point(&data["result"])]);
        }
        _ => {
            for s in data["result"].as_array().expect("result") {
                let mut metric: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).expect("metric");
                metric.remove("federation_group");
                let points = match s.get("values") {
                    Some(v) => v.as_array().expect("values").iter().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                out.insert(format!("{metric:?}"), points);
            }
        }
    }
    (kind, out)
}

fn close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) else { return false };
    if x.is_nan() && y.is_nan() {
        return true;
    }
    let scale = x.abs().max(y.abs());
    (x - y).abs() <= 1e-6 * scale || (x - y).abs() < 1e-9
}

/// The first difference between promfed's and the reference's answers, or `None`.
fn difference(ours: &Value, reference: &Value) -> Option<String> {
    let (kind_a, a) = keyed(ours);
    let (kind_b, b) = keyed(reference);
    if kind_a != kind_b {
        return Some(format!("result type {kind_a} against {kind_b}"));
    }
    if a.len() != b.len() || a.keys().ne(b.keys()) {
        let only_ours: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).take(3).collect();
        let only_ref: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).take(3).collect();
        return Some(format!(
            "{} series against {}; only promfed: {only_ours:?}; only the reference: {only_ref:?}",
            a.len(),
            b.len()
        ));
    }
    for (k, pa) in &a {
        let pb = &b[k];
        if pa.len() != pb.len() {
            return Some(format!("{k}: {} points against {}", pa.len(), pb.len()));
        }
        for (x, y) in pa.iter().zip(pb) {
            if x.0 != y.0 || !close(&x.1, &y.1) {
                return Some(format!("{k}: {x:?} against {y:?}"));
            }
        }
    }
    None
}

async fn get(client: &reqwest::Client, base: &str, path: &str, params: &[(&str, String)]) -> Value {
    let r = client
        .get(format!("{base}{path}"))
        .query(params)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{base}{path} {params:?}: not JSON ({e}): {text}"))
}

/// promfed federating `a` (primary) and `b` (secondary) as group `pair`, with `extra` group
/// settings (indented as group keys), once it knows both replicas; and an HTTP client.
async fn start_pair(a: &Prometheus, b: &Prometheus, extra: &str) -> (promfed::run::Running, String, reqwest::Client) {
    let yaml = format!(
        "server: {{listen_address: \"127.0.0.1:0\"}}\ngroups:\n  - name: pair\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n{extra}    replicas:\n      - {{name: a, role: primary, address: \"{}\"}}\n      - {{name: b, role: secondary, address: \"{}\"}}\n",
        a.address(),
        b.address()
    );
    let (running, base) = common::start_promfed(&yaml, "query_vs_prometheus").await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    common::wait_for_groups(&client, &base, "promfed to know the pair's replicas", |d| {
        d[0]["replicas"].as_array().is_some_and(|r| r.len() == 2)
    })
    .await;
    (running, base, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_over_the_pair_equal_one_prometheus_holding_the_union() {
    let Some(binary) = common::prometheus_binary() else { return };
    common::init_tracing();
    let end = (now_ms() - 2 * MIN) / STEP * STEP;
    let t0 = end - (POINTS - 1) * STEP;
    let a = Prometheus::start_backfilled(
        &binary,
        "query-a",
        "global:\n  external_labels: {replica: a}\n",
        &history(t0, &[PRIMARY_DROPS]),
    )
    .await;
    let b = Prometheus::start_backfilled(
        &binary,
        "query-b",
        "global:\n  external_labels: {replica: b}\n",
        &history(t0, &[SECONDARY_DROPS]),
    )
    .await;
    let reference = Prometheus::start_backfilled(
        &binary,
        "query-ref",
        "global: {}\n",
        &history(t0, &[PRIMARY_DROPS, SECONDARY_DROPS]),
    )
    .await;

    let (running, base, client) = start_pair(&a, &b, "    labels: {federation_group: pair}\n").await;

    let secs = |t: i64| format!("{}", t as f64 / 1000.0);
    // Inside the primary's outage, while it lacks i3, while the secondary is down too, after.
    let times = [t0 + 14 * MIN, t0 + 27 * MIN + 7_000, t0 + 32 * MIN, t0 + 45 * MIN, end];
    let mut failures = Vec::new();
    let mut compared = 0;
    for q in INSTANT {
        for &t in &times {
            let params = [("query", q.to_string()), ("time", secs(t))];
            let ours = get(&client, &base, "/api/v1/query", &params).await;
            let theirs = get(&client, &reference.url(), "/api/v1/query", &params).await;
            if theirs["status"] != "success" {
                // Refused by both alike (e.g. a label set twice in a result) is equal.
                if ours["status"] != "error" || ours["errorType"] != theirs["errorType"] {
                    failures.push(format!("{q} at {t}: the reference refused it ({theirs}), promfed: {ours}"));
                }
                compared += 1;
                continue;
            }
            if ours["status"] != "success" {
                failures.push(format!("{q} at {t}: promfed: {ours}"));
                continue;
            }
            compared += 1;
            if let Some(d) = difference(&ours, &theirs) {
                let warnings = ours.get("warnings").map(|w| format!(" (promfed's warnings: {w})")).unwrap_or_default();
                failures.push(format!("{q} at {t}: {d}{warnings}"));
            }
        }
    }
    for q in RANGE {
        for (start, stop, step) in [(t0 + 6 * MIN, end, "60"), (t0 + 8 * MIN, t0 + 40 * MIN, "15s")] {
            let params =
                [("query", q.to_string()), ("start", secs(start)), ("end", secs(stop)), ("step", step.to_string())];
            let ours = get(&client, &base, "/api/v1/query_range", &params).await;
            let theirs = get(&client, &reference.url(), "/api/v1/query_range", &params).await;
            if ours["status"] != "success" {
                failures.push(format!("range {q} step {step}: promfed: {ours}"));
                continue;
            }
            compared += 1;
            if let Some(d) = difference(&ours, &theirs) {
                failures.push(format!("range {q} step {step}: {d}"));
            }
        }
    }
    eprintln!("{compared} answers compared, {} differences", failures.len());
    assert!(failures.is_empty(), "{} differences from the reference:\n{}", failures.len(), failures.join("\n"));

    // Group pruning: the group's own label selects it, another value asks nobody.
    let params = [("query", "count(rr_up{federation_group=\"pair\"})".to_string()), ("time", secs(end))];
    let body = get(&client, &base, "/api/v1/query", &params).await;
    assert_eq!(body["data"]["result"][0]["value"][1], "6", "{body}");
    let params = [("query", "rr_up{federation_group=\"elsewhere\"}".to_string()), ("time", secs(end))];
    let body = get(&client, &base, "/api/v1/query", &params).await;
    assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(0), "{body}");
    running.shutdown();
    drop((a, b, reference));
}

/// Replicas scraping at different phases (the secondary 7 s after the primary, its values a
/// little different): while both have data the merged history is the primary's alone — no
/// doubled sample rate: `count_over_time` and `rate` equal the primary's own answers — and
/// across the primary's outage the secondary fills at about one sample per interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_shifted_replicas_do_not_double_the_sample_rate() {
    let Some(binary) = common::prometheus_binary() else { return };
    let end = (now_ms() - 2 * MIN) / STEP * STEP;
    let t0 = end - (POINTS - 1) * STEP;
    let series = |shift: i64, bump: f64, gap: Option<(i64, i64)>| {
        let mut om = String::from("# TYPE ps_requests counter\n");
        for k in 0..POINTS {
            let t = t0 + k * STEP + shift;
            if gap.is_some_and(|(a, b)| t >= t0 + a * MIN && t < t0 + b * MIN) || t > now_ms() - 60_000 {
                continue;
            }
            let v = k as f64 * 4.0 + bump;
            om.push_str(&format!("ps_requests_total{{job=\"app\"}} {v} {}.{:03}\n", t / 1000, t % 1000));
        }
        om.push_str("# EOF\n");
        om
    };
    let a = Prometheus::start_backfilled(
        &binary,
        "phase-a",
        "global:\n  external_labels: {replica: a}\n",
        &series(0, 0.0, Some((20, 26))),
    )
    .await;
    let b = Prometheus::start_backfilled(
        &binary,
        "phase-b",
        "global:\n  external_labels: {replica: b}\n",
        &series(7_000, 0.5, None),
    )
    .await;
    let (running, base, client) = start_pair(&a, &b, "").await;
    let secs = |t: i64| format!("{}", t as f64 / 1000.0);
    let value = |body: &Value| -> f64 {
        body["data"]["result"][0]["value"][1].as_str().unwrap_or_else(|| panic!("{body}")).parse().expect("number")
    };
    // Both healthy (minutes 5 to 15): exactly the primary's answers.
    for q in
        ["count_over_time(ps_requests_total[5m])", "rate(ps_requests_total[5m])", "increase(ps_requests_total[2m])"]
    {
        let params = [("query", q.to_string()), ("time", secs(t0 + 15 * MIN))];
        let ours = get(&client, &base, "/api/v1/query", &params).await;
        let primary = get(&client, &a.url(), "/api/v1/query", &params).await;
        assert_eq!(value(&ours), value(&primary), "{q}: {ours} against the primary's {primary}");
    }
    // Across the primary's outage (minutes 20 to 26): one sample per interval, no gap wider
    // than two intervals.
    let params = [("query", "count_over_time(ps_requests_total[10m])".to_string()), ("time", secs(t0 + 30 * MIN))];
    let count = value(&get(&client, &base, "/api/v1/query", &params).await);
    assert!((38.0..=41.0).contains(&count), "about 40 samples in 10 minutes at 15 s, not 80: {count}");
    let params = [("query", "ps_requests_total[12m]".to_string()), ("time", secs(t0 + 30 * MIN))];
    let body = get(&client, &base, "/api/v1/query", &params).await;
    let times: Vec<f64> = body["data"]["result"][0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| p[0].as_f64().unwrap())
        .collect();
    let widest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let narrowest = times.windows(2).map(|w| w[1] - w[0]).fold(f64::MAX, f64::min);
    assert!(widest <= 30.0 && narrowest >= 13.5, "spacing between {narrowest} s and {widest} s: {times:?}");
    // The counter never goes back at the switches (B's values are 0.5 higher).
    let values: Vec<f64> = body["data"]["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(values.windows(2).all(|w| w[1] >= w[0]), "{values:?}");
    running.shutdown();
}

/// The primary killed live (SIGKILL) and restarted while both replicas scrape a target every
/// second: the history promfed answers over that window has no gap wider than two intervals and
/// no two samples closer than 0.9 of one, while the primary's own history has the outage's gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_killed_during_a_range_leaves_no_gap() {
    let Some(binary) = common::prometheus_binary() else { return };
    // A target whose value is the time: replicas scraping it at different moments agree.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target_address = target.local_addr().expect("address");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            format!("# TYPE live_seconds gauge\nlive_seconds {}\n", now_ms() as f64 / 1000.0)
        }),
    );
    tokio::spawn(async move { axum::serve(target, app).await });
    let config = |replica: &str| {
        format!(
            "global:\n  scrape_interval: 1s\n  external_labels: {{replica: {replica}}}\nscrape_configs:\n  - job_name: live\n    static_configs: [{{targets: ['{target_address}']}}]\n"
        )
    };
    let mut a = Prometheus::start(&binary, "live-a", &config("a"), &[]).await;
    let b = Prometheus::start(&binary, "live-b", &config("b"), &[]).await;
    let (running, base, client) = start_pair(&a, &b, "").await;
    let started = now_ms();
    tokio::time::sleep(Duration::from_secs(6)).await;
    a.kill();
    let killed = now_ms();
    tokio::time::sleep(Duration::from_secs(6)).await;
    a.restart().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let at = now_ms() - 1000;
    let range = (at - started) / 1000 - 2;
    let times = |body: &Value| -> Vec<i64> {
        body["data"]["result"][0]["values"]
            .as_array()
            .unwrap_or_else(|| panic!("a matrix: {body}"))
            .iter()
            .map(|p| (p[0].as_f64().unwrap() * 1000.0).round() as i64)
            .collect()
    };
    let params = [("query", format!("live_seconds[{range}s]")), ("time", format!("{}", at as f64 / 1000.0))];
    let ours = times(&get(&client, &base, "/api/v1/query", &params).await);
    let primary_body = get(&client, &a.url(), "/api/v1/query", &params).await;
    let primary = times(&primary_body);
    let gaps = |t: &[i64]| t.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>();
    let ours_gaps = gaps(&ours);
    // (A SIGKILLed Prometheus also loses the samples its WAL had not written out yet.)
    let outage = |t: &&i64| **t > killed + 500 && **t < killed + 4500;
    assert_eq!(primary.iter().filter(outage).count(), 0, "the primary has nothing of its outage: {primary_body}");
    assert!(ours.iter().filter(outage).count() >= 3, "the secondary filled the outage: {ours:?}");
    assert!(ours_gaps.iter().all(|&g| g <= 2200), "no gap wider than two intervals: {ours_gaps:?}");
    assert!(ours_gaps.iter().all(|&g| g >= 900), "no doubled sample rate: {ours_gaps:?}");
    running.shutdown();
}
