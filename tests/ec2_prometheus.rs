//! End to end with EC2 discovery: two real Prometheus 2.42 replicas are found through the moto EC2
//! emulator, federated by promfed, and scraped by a global Prometheus (`honor_labels`, HTTPS);
//! then one instance is terminated (and its Prometheus killed) and replaced by a new instance on
//! another port. The global must see no gap, no counter decrease and no out-of-order sample.
//!
//! ```text
//!   moto: i-A {primary,   test-port=a}  ──DescribeInstances 1s──> promfed (group pair)
//!         i-B {secondary, test-port=b}
//!         i-C {primary,   test-port=c}  (phase 2, replaces i-A)
//!
//!   synthetic /metrics ──1s──> replica a ──╮
//!                      ──1s──> replica b ──┼──1s──> promfed ──https 1s──> global
//!                      ──1s──> replica c ──╯  (c from phase 2 on)
//! ```
//!
//! The emulator's instances have fake 10.x/54.x addresses that are never contacted: relabeling
//! keeps only instances with a `test-port` tag and rewrites `__address__` to `127.0.0.1:<port>`.
//!
//! Without `prometheus` or `moto_server` the test prints a notice and passes without running,
//! unless `CI` is set, where it fails.
#![cfg(feature = "ec2")]

mod common;

use aws_sdk_ec2::Client;
use common::moto::{Moto, REGION, ec2_client, launch_tagged, moto_binary};
use common::{PromApi, Prometheus, TextServer, TlsFiles, now_secs, poll, samples_of, text_series};
use promfed::merge::StoreHandle;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Scrape interval everywhere (replicas, promfed, global) and EC2 refresh interval, in seconds.
const INTERVAL_S: f64 = 1.0;

/// Largest allowed distance between two successive raw samples of a series in the global
/// Prometheus, in seconds: the same bound and reasoning as `tests/prometheus_pair.rs`.
///
/// Each hop samples at 1s with an independent phase (replica → promfed → global), and a sample's
/// timestamp is the replica's scrape time, so the stored series steps by ~1s. When two hops fire
/// within a few milliseconds of each other, jitter can make the later hop miss one sample and
/// pick up the next: one 2s step. A failover (or the switch to the replacement) adds at most one
/// interval (the other replica's next sample after the last emitted one) but does not stack with
/// that. 2.5s = one interval + one missed sample + 0.5s of scheduling jitter on a shared machine;
/// a real gap (a lost failover, a stall until discovery or the hold-down) is several seconds.
const MAX_GAP_S: f64 = 2.5;

/// The counter series whose raw samples are checked for gaps and decreases, as one selector.
const COUNTERS_SELECTOR: &str = r#"{__name__=~"synthetic_.+_(total|bucket|sum|count)",job="synthetic"}"#;

/// Every counter the target exposes (histogram parts included), for `resets()`, which drops the
/// metric name and so needs one query per name.
const COUNTERS: [&str; 5] = [
    "synthetic_requests_total",
    "synthetic_bytes_total",
    "synthetic_request_duration_seconds_bucket",
    "synthetic_request_duration_seconds_sum",
    "synthetic_request_duration_seconds_count",
];

// -------------------------------------------------------------------------------------------------
// The synthetic target

/// An in-process exporter on loopback: counters growing with time (the same function of time for
/// every replica that scrapes it), a gauge and a histogram; ~45 series.
///
/// Started on a loopback port; stopped when dropped.
async fn synthetic_target() -> TextServer {
    let started = Instant::now();
    TextServer::start("/metrics", move || synthetic_metrics(started.elapsed().as_secs_f64())).await
}

const PODS: usize = 4;
const PATHS: [&str; 2] = ["/api", "/login"];
const BUCKETS: [f64; 5] = [0.01, 0.05, 0.25, 1.0, 5.0];

/// The exposition at `t` seconds after start.
fn synthetic_metrics(t: f64) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str("# HELP synthetic_requests_total Requests served.\n# TYPE synthetic_requests_total counter\n");
    for pod in 0..PODS {
        for (i, path) in PATHS.iter().enumerate() {
            for (code, rate) in [("200", 20.0), ("500", 0.5)] {
                let v = 1000.0 + (t * rate * (1.0 + (pod + i) as f64 / 10.0)).floor();
                let _ =
                    writeln!(out, "synthetic_requests_total{{pod=\"pod-{pod}\",path=\"{path}\",code=\"{code}\"}} {v}");
            }
        }
    }
    out.push_str("# HELP synthetic_bytes_total Bytes moved.\n# TYPE synthetic_bytes_total counter\n");
    for pod in 0..PODS {
        for dir in ["rx", "tx"] {
            let v = (t * 12345.0 * (pod + 1) as f64).floor();
            let _ = writeln!(out, "synthetic_bytes_total{{pod=\"pod-{pod}\",direction=\"{dir}\"}} {v}");
        }
    }
    out.push_str("# HELP synthetic_temperature_celsius A gauge.\n# TYPE synthetic_temperature_celsius gauge\n");
    for pod in 0..PODS {
        let v = 40.0 + 10.0 * (t / 7.0 + pod as f64).sin();
        let _ = writeln!(out, "synthetic_temperature_celsius{{pod=\"pod-{pod}\"}} {v:.3}");
    }
    out.push_str(
        "# HELP synthetic_request_duration_seconds Latency.\n# TYPE synthetic_request_duration_seconds histogram\n",
    );
    for (i, path) in PATHS.iter().enumerate() {
        let count = (t * 30.0 * (i + 1) as f64).floor();
        for (b, le) in BUCKETS.iter().enumerate() {
            let v = (count * (b + 1) as f64 / (BUCKETS.len() + 1) as f64).floor();
            let _ = writeln!(out, "synthetic_request_duration_seconds_bucket{{path=\"{path}\",le=\"{le}\"}} {v}");
        }
        let _ = writeln!(out, "synthetic_request_duration_seconds_bucket{{path=\"{path}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "synthetic_request_duration_seconds_sum{{path=\"{path}\"}} {:.3}", count * 0.042);
        let _ = writeln!(out, "synthetic_request_duration_seconds_count{{path=\"{path}\"}} {count}");
    }
    out
}

// -------------------------------------------------------------------------------------------------
// The EC2 emulator

/// Launches one instance of group `pair` with this role and `test-port` tag; returns its id.
async fn launch(ec2: &Client, role: &str, port: u16) -> String {
    let port = port.to_string();
    let tags = [("federation-group", "pair"), ("federation-role", role), ("test-port", port.as_str())];
    launch_tagged(ec2, 1, &tags).await.remove(0)
}

// -------------------------------------------------------------------------------------------------
// Configs

fn replica_config(replica: &str, target: SocketAddr) -> String {
    format!(
        r#"
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  external_labels: {{replica: {replica}, cluster: test}}
scrape_configs:
  - job_name: synthetic
    static_configs: [{{targets: ['{target}']}}]
"#
    )
}

fn global_config(promfed: SocketAddr, ca: &Path) -> String {
    format!(
        r#"
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: promfed
    scheme: https
    tls_config: {{ca_file: "{ca}"}}
    honor_labels: true
    metrics_path: /federate
    params: {{'match[]': ['{{__name__=~".+"}}']}}
    static_configs: [{{targets: ['{promfed}']}}]
"#,
        ca = ca.display()
    )
}

fn promfed_config(tls: &TlsFiles, endpoint: &str) -> promfed::config::Config {
    let yaml = format!(
        r#"
server:
  listen_address: "127.0.0.1:0"
  tls_server_config: {tls}
groups:
  - name: pair
    scrape_interval: 1s
    scrape_timeout: 900ms
    hold_down: 2
    ec2_sd_configs:
      - {{region: {REGION}, endpoint: "{endpoint}", access_key: testing, secret_key: testing, refresh_interval: 1s,
          port: 9090, filters: [{{name: "tag:federation-group", values: [pair]}}]}}
    relabel_configs:
      # Never connect to the emulator's fake addresses: only instances with a test-port tag, and
      # scraped on loopback at that port.
      - {{source_labels: [__meta_ec2_tag_test_port], regex: '[0-9]+', action: keep}}
      - {{source_labels: [__meta_ec2_tag_test_port], target_label: __address__, replacement: "127.0.0.1:$1"}}
"#,
        tls = tls.server_config_yaml(false),
    );
    promfed::config::parse(&yaml, "ec2_prometheus test").expect("valid promfed config")
}

// -------------------------------------------------------------------------------------------------
// promfed as a client sees it

struct Promfed {
    base: String,
    client: reqwest::Client,
}

impl Promfed {
    async fn get(&self, path: &str) -> String {
        let url = format!("{}{path}", self.base);
        let resp = self.client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(resp.status(), 200, "GET {url}");
        resp.text().await.expect("body")
    }

    async fn status(&self) -> serde_json::Value {
        let json: serde_json::Value =
            serde_json::from_str(&self.get("/api/v1/status/groups").await).expect("status JSON");
        json["data"][0].clone()
    }
}

/// Prints promfed's group status when the test fails, read straight from the store.
struct StatusOnPanic(StoreHandle);

impl Drop for StatusOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let snapshot = self.0.snapshot();
            let status: Vec<_> = snapshot.groups.iter().map(|g| &g.status).collect();
            eprintln!(
                "--- promfed status at failure ---\n{}",
                serde_json::to_string_pretty(&status).unwrap_or_default()
            );
        }
    }
}

/// The sorted replica names of a status.
fn replica_names(status: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = status["replicas"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn replica<'a>(status: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    status["replicas"].as_array().and_then(|rs| rs.iter().find(|r| r["name"] == name))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// -------------------------------------------------------------------------------------------------
// The scenario

#[test]
fn ec2_discovered_pair_survives_instance_replacement_without_a_gap() {
    // Never let the SDK probe the instance-metadata address.
    // SAFETY: set before the runtime and any SDK client exist; this test binary has one test, so
    // no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
    // Both checks run (each prints its own notice, or fails under CI) before anything starts.
    let (prometheus, moto) = (common::prometheus_binary(), moto_binary());
    let (Some(prometheus), Some(moto)) = (prometheus, moto) else { return };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    runtime.block_on(scenario(&prometheus, &moto));
}

async fn scenario(binary: &Path, moto_binary: &Path) {
    common::init_tracing();
    let t0 = now_secs();
    let at = |t: f64| format!("+{:.1}s", t - t0);

    let target = synthetic_target().await;
    let (a_config, b_config) = (replica_config("a", target.address), replica_config("b", target.address));
    let (moto, mut a, b) = tokio::join!(
        Moto::start(moto_binary),
        Prometheus::start(binary, "replica-a", &a_config, &[]),
        Prometheus::start(binary, "replica-b", &b_config, &[]),
    );
    let ec2 = ec2_client(&moto.endpoint);
    let id_a = launch(&ec2, "primary", a.port).await;
    let id_b = launch(&ec2, "secondary", b.port).await;
    eprintln!("{} instances {id_a} (a, {}) and {id_b} (b, {}) running", at(now_secs()), a.address(), b.address());

    let tls = TlsFiles::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind promfed");
    let running =
        promfed::run::start(promfed_config(&tls, &moto.endpoint), Some(listener)).await.expect("promfed starts");
    let _status_on_panic = StatusOnPanic(running.store.clone());
    let promfed = Promfed { base: format!("https://127.0.0.1:{}", running.address.port()), client: tls.client(None) };
    let global = Prometheus::start(binary, "global", &global_config(running.address, &tls.ca()), &[]).await;
    let global_api = PromApi::new(global.url());

    // ---- Phase 1: both instances discovered, the pipeline flowing.
    let want = sorted(vec![id_a.clone(), id_b.clone()]);
    let status = poll(
        "promfed to discover both instances, A leading",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let (promfed, want, id_a) = (&promfed, &want, &id_a);
            async move {
                let s = promfed.status().await;
                (replica_names(&s) == *want && s["leader"] == id_a.as_str()).then_some(s)
            }
        },
    )
    .await;
    assert_eq!(replica(&status, &id_a).unwrap()["address"], a.address(), "{status:#}");
    assert_eq!(replica(&status, &id_b).unwrap()["address"], b.address(), "{status:#}");
    assert_eq!(replica(&status, &id_a).unwrap()["role"], "primary", "{status:#}");
    assert_eq!(replica(&status, &id_b).unwrap()["role"], "secondary", "{status:#}");
    assert!(status.get("rejected_targets").is_none(), "{status:#}");
    eprintln!("{} promfed discovered both instances", at(now_secs()));

    let api = &global_api;
    poll(
        "the global to have the target's series",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || async move {
            (!api.query(r#"synthetic_requests_total{pod="pod-0",path="/api",code="200"}"#).await.is_empty())
                .then_some(())
        },
    )
    .await;
    eprintln!("{} pipeline up", at(now_secs()));
    every_series_appears_once_without_the_replica_label(&promfed, &a, &global_api, "phase 1").await;

    // ~8s of data from the original pair.
    tokio::time::sleep(Duration::from_secs(8)).await;

    // ---- Phase 2: instance A is terminated (its Prometheus dies with it) and replaced by C.
    let replaced_at = now_secs();
    ec2.terminate_instances().instance_ids(&id_a).send().await.expect("TerminateInstances");
    a.kill();
    eprintln!("{} instance {id_a} terminated, replica a killed", at(replaced_at));
    let c_config = replica_config("c", target.address);
    let c = Prometheus::start(binary, "replica-c", &c_config, &[]).await;
    assert_ne!(c.port, a.port, "the replacement must run on another port");
    let id_c = launch(&ec2, "primary", c.port).await;
    eprintln!("{} instance {id_c} (c, {}) running", at(now_secs()), c.address());

    let c_leads_at = replacement_leads_only_after_the_hold_down(&promfed, &id_a, &id_b, &id_c, &c).await;
    eprintln!("{} {id_c} leads", at(c_leads_at));
    let metrics = promfed.get("/metrics").await;
    let leader_c = common::metric_value(&metrics, "promfed_group_leader", &[("group", "pair"), ("replica", &id_c)]);
    assert_eq!(leader_c, Some(1.0), "promfed_group_leader for {id_c}");

    // Let the global store several samples that came through c.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // ---- Over the whole window.
    let max_gap = whole_window_is_gap_free_monotonic_and_in_order(&global_api, t0, replaced_at, c_leads_at).await;
    every_series_appears_once_without_the_replica_label(&promfed, &b, &global_api, "phase 2").await;

    running.shutdown();
    tokio::time::timeout(Duration::from_secs(10), running.wait())
        .await
        .expect("promfed stops within 10s")
        .expect("promfed stops cleanly");
    eprintln!(
        "scenario done in {:.1}s; max gap between raw counter samples in the global: {max_gap:.3}s",
        now_secs() - t0
    );
    drop((global, c, b, a, moto, target));
}

/// One copy of every series, without the replica label: promfed's `/federate` has the series of
/// `replica`'s own `/federate` minus that label, and the global has as many series per name in
/// job `synthetic` as `replica` has, none with a replica label.
async fn every_series_appears_once_without_the_replica_label(
    promfed: &Promfed,
    replica: &Prometheus,
    global: &PromApi,
    when: &str,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let all = "/federate?match%5B%5D=%7B__name__%3D~%22.%2B%22%7D";
    let url = format!("{}{all}", replica.url());
    // A series new on the replica may need one more scrape to reach promfed: bounded retries.
    let mut diff = String::new();
    let mut agreed = None;
    for _ in 0..20 {
        let upstream = http.get(&url).send().await.expect("replica /federate").bytes().await.expect("body");
        let upstream = text_series(&upstream, &["replica"]);
        let body = promfed.get(all).await;
        assert!(!body.contains("replica="), "{when}: promfed's /federate has a replica label:\n{body}");
        let ours = text_series(body.as_bytes(), &[]);
        if upstream.keys().eq(ours.keys()) {
            agreed = Some(ours);
            break;
        }
        diff = common::key_diff(&upstream, &ours, 10);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ours = agreed.unwrap_or_else(|| panic!("{when}: promfed's series differ from {}'s:\n{diff}", replica.name));
    // 44 from the target, 5 scrape meta series (up, scrape_*).
    assert!(ours.len() >= 49, "{when}: expected ~49 series, got {}", ours.len());

    let with_replica = global.query(r#"count({replica!=""})"#).await;
    assert!(with_replica.is_empty(), "{when}: series with a replica label reached the global: {with_replica:?}");
    let replica_api = PromApi::new(replica.url());
    let per_name = |result: Vec<serde_json::Value>| -> BTreeMap<String, String> {
        result
            .iter()
            .map(|s| {
                let name = s["metric"]["__name__"].as_str().unwrap_or("").to_owned();
                (name, s["value"][1].as_str().unwrap_or("").to_owned())
            })
            .collect()
    };
    let q = r#"count by (__name__) ({job="synthetic"})"#;
    let mut counts = (BTreeMap::new(), BTreeMap::new());
    for _ in 0..20 {
        counts = (per_name(global.query(q).await), per_name(replica_api.query(q).await));
        if counts.0 == counts.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(counts.0, counts.1, "{when}: series per name: global (left) vs {} (right)", replica.name);
}

/// Waits until the replicas are exactly {B, C} and C leads. Every status read on the way is
/// checked: a leader at all times (B takes over from A without a leaderless moment), A never
/// leading once it is gone, C leading only with `hold_down` (2) consecutive good scrapes, every
/// address on loopback. Returns when C was first seen leading.
async fn replacement_leads_only_after_the_hold_down(
    promfed: &Promfed,
    id_a: &str,
    id_b: &str,
    id_c: &str,
    c: &Prometheus,
) -> f64 {
    let want = sorted(vec![id_b.to_owned(), id_c.to_owned()]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let mut history: Vec<String> = Vec::new();
    // At most 30s / 50ms status reads.
    for _ in 0..600 {
        let status = promfed.status().await;
        let names = replica_names(&status);
        let leader = status["leader"].as_str().unwrap_or("").to_owned();
        let c_good = replica(&status, id_c).map(|r| r["consecutive_good_scrapes"].as_u64().unwrap_or(0));
        let entry = format!("replicas={names:?} leader={leader} c.consecutive_good_scrapes={c_good:?}");
        if history.last().is_none_or(|h| !h.ends_with(&entry)) {
            history.push(format!("+{:.2}s {entry}", started.elapsed().as_secs_f64()));
        }
        assert!(!leader.is_empty(), "no leader; history: {history:#?}");
        assert!(leader != id_a || names.iter().any(|n| n == id_a), "a vanished replica leads; {history:#?}");
        for r in status["replicas"].as_array().into_iter().flatten() {
            let address = r["address"].as_str().unwrap_or("");
            assert!(address.starts_with("127.0.0.1:"), "a replica not on loopback: {status:#}");
        }
        if leader == id_c {
            let good = c_good.unwrap_or(0);
            assert!(good >= 2, "{id_c} leads after only {good} good scrape(s); history: {history:#?}");
            assert_eq!(names, want, "history: {history:#?}");
            assert_eq!(replica(&status, id_c).unwrap()["address"], c.address(), "{status:#}");
            assert_eq!(replica(&status, id_c).unwrap()["role"], "primary", "{status:#}");
            eprintln!("replacement leads after {:.1}s; history: {history:#?}", started.elapsed().as_secs_f64());
            return now_secs();
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id_c} did not lead within 30s; history: {history:#?}");
}

/// Over everything the global stored since the start: raw samples of every counter series are
/// never further apart than [`MAX_GAP_S`] and never decrease, `resets()` finds nothing, the
/// global rejected no sample as out of order (or as a duplicate timestamp), and its scrapes of
/// promfed never failed. Returns the largest gap seen.
async fn whole_window_is_gap_free_monotonic_and_in_order(
    api: &PromApi,
    t0: f64,
    replaced_at: f64,
    c_leads_at: f64,
) -> f64 {
    let window = (now_secs() - t0).ceil() as u64 + 5;

    // A range vector at "now" returns every stored sample in the window.
    let raw = api.query(&format!("{COUNTERS_SELECTOR}[{window}s]")).await;
    // 16 requests, 8 bytes, 2 × (6 buckets + sum + count).
    assert_eq!(raw.len(), 40, "counter series in the global: {raw:#?}");
    let mut max_gap: (f64, String) = (0.0, String::new());
    for series in &raw {
        let name = series["metric"].to_string();
        let samples = samples_of(series);
        assert!(samples.len() >= 15, "{name}: too few samples: {samples:?}");
        let (first, last) = (samples[0].0, samples[samples.len() - 1].0);
        assert!(first < replaced_at - 3.0, "{name}: the window does not start before the replacement");
        assert!(last > c_leads_at + 2.0, "{name}: the window does not reach past the switch to c");
        let gaps: Vec<(f64, f64)> = samples.windows(2).map(|w| (w[0].0 - t0, w[1].0 - w[0].0)).collect();
        let notable: Vec<String> =
            gaps.iter().filter(|g| g.1 > 1.5 * INTERVAL_S).map(|(at, g)| format!("+{at:.1}s: {g:.3}s")).collect();
        let series_max = gaps.iter().map(|g| g.1).fold(0.0, f64::max);
        assert!(series_max <= MAX_GAP_S, "{name}: max gap {series_max:.3}s > {MAX_GAP_S}s; gaps > 1.5s: {notable:#?}");
        if series_max > max_gap.0 {
            max_gap = (series_max, format!("{name}, gaps > 1.5s: {notable:?}"));
        }
        let drops: Vec<_> = samples.windows(2).filter(|w| w[1].1 < w[0].1).collect();
        assert!(drops.is_empty(), "{name}: counter decreased: {drops:?}");
    }
    eprintln!(
        "{} counter series, replaced at +{:.1}s, c leads at +{:.1}s; max gap {:.3}s ({})",
        raw.len(),
        replaced_at - t0,
        c_leads_at - t0,
        max_gap.0,
        max_gap.1
    );

    // One query per name: resets() drops the name, and _sum/_count share their labels.
    for name in COUNTERS {
        let resets = api.query(&format!(r#"resets({name}{{job="synthetic"}}[{window}s]) > 0"#)).await;
        assert!(resets.is_empty(), "{name} series with resets in the global: {resets:#?}");
    }

    let ooo = api.self_metric("prometheus_target_scrapes_sample_out_of_order_total").await;
    assert_eq!(ooo, Some(0.0), "out-of-order samples in the global");
    let dup = api.self_metric("prometheus_target_scrapes_sample_duplicate_timestamp_total").await;
    assert_eq!(dup, Some(0.0), "same timestamp, different value, in the global");
    let up = api.query(&format!(r#"min_over_time(up{{job="promfed"}}[{window}s])"#)).await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["value"][1], "1", "a scrape of promfed by the global failed: {up:?}");
    max_gap.0
}
