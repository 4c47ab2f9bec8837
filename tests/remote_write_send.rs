//! The remote-write sender against a recording receiver on loopback, reproducing the
//! Remote-Write compliance cases that concern a sender: the spec's headers, sorted labels with
//! the name label, per-series timestamp order, retry on 500 (the same body again), backoff on
//! 429 honouring `Retry-After`, no retry on 400 (samples dropped and counted), and every
//! emitted sample accepted exactly once.
//!
//! The receiver here is a test harness, not a stand-in for a product: the real receivers
//! (Prometheus 2.42, VictoriaMetrics) are in `remote_write_peers.rs`.

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{fake_replica, metric_value, poll};
use promfed::remote::proto::WriteRequest;
use prost::Message;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// One request the harness received, and what it answered.
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
    request: WriteRequest,
    status: StatusCode,
}

/// Answers the n-th request with `script[n]` (200 once the script is over) and records it.
async fn recording_receiver(script: Vec<(StatusCode, Option<&'static str>)>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let log: Arc<Mutex<Vec<Received>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new().route(
        "/push",
        axum::routing::post({
            let log = log.clone();
            move |headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                let script = script.clone();
                async move {
                    let raw = snap::raw::Decoder::new().decompress_vec(&body).expect("the sender sends snappy");
                    let request = WriteRequest::decode(&raw[..]).expect("the sender sends a WriteRequest");
                    let mut log = log.lock().unwrap();
                    let (status, retry_after) = script.get(log.len()).copied().unwrap_or((StatusCode::OK, None));
                    log.push(Received { at: Instant::now(), headers, body, request, status });
                    let mut resp = axum::http::Response::builder().status(status);
                    if let Some(r) = retry_after {
                        resp = resp.header("Retry-After", r);
                    }
                    resp.body(axum::body::Body::from(format!("scripted {status}"))).unwrap()
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}/push"), log)
}

/// promfed started in-process from `yaml`, listening on a free loopback port.
async fn start(yaml: &str) -> promfed::run::Running {
    let config = promfed::config::parse(yaml, "remote_write_send test").expect("valid config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    promfed::run::start(config, Some(listener)).await.expect("promfed starts")
}

/// A federating replica whose 20 series get a new sample every 100 ms (timestamped), plus a
/// series the destination's write_relabel_configs drop.
async fn replica() -> std::net::SocketAddr {
    fake_replica(|now| {
        let step = now / 100;
        let ts = step * 100;
        let mut out = String::from("# TYPE sent_total counter\n");
        for i in 0..20 {
            let _ = writeln!(out, "sent_total{{i=\"{i}\",path=\"a\\\"b\"}} {} {ts}", step as f64 + i as f64);
        }
        let _ = writeln!(out, "# TYPE dropped_gauge gauge\ndropped_gauge 1 {ts}");
        out
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_follows_the_protocol_retries_5xx_and_429_and_drops_400() {
    common::init_tracing();
    let script = vec![
        (StatusCode::INTERNAL_SERVER_ERROR, None),
        (StatusCode::SERVICE_UNAVAILABLE, None),
        (StatusCode::TOO_MANY_REQUESTS, Some("1")),
        (StatusCode::OK, None),
        (StatusCode::BAD_REQUEST, None),
    ];
    let (url, log) = recording_receiver(script).await;
    let replica = replica().await;
    let data = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
server: {{listen_address: "127.0.0.1:0"}}
data_dir: {data}
global: {{scrape_interval: 50ms, scrape_timeout: 40ms}}
groups:
  - name: g
    replicas: [{{name: a, role: primary, address: "{replica}"}}]
remote_write:
  - url: {url}
    name: harness
    headers: {{X-Scope-OrgID: tenant-1}}
    basic_auth: {{username: promfed, password: secret}}
    write_relabel_configs:
      - {{source_labels: [__name__], regex: dropped_.*, action: drop}}
    queue_config: {{max_samples_per_send: 30, batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 200ms}}
"#,
        data = data.path().display()
    );
    let running = start(&yaml).await;
    let metrics = running.metrics.clone();

    // Run until well past the scripted failures and a few hundred samples accepted.
    poll("30 accepted requests", Duration::from_secs(30), Duration::from_millis(100), || {
        let n = log.lock().unwrap().iter().filter(|r| r.status == StatusCode::OK).count();
        async move { (n >= 30).then_some(()) }
    })
    .await;
    running.shutdown();
    running.wait().await.expect("clean stop");

    let log = log.lock().unwrap();
    // Headers of the spec (and the configured ones) on every request.
    for r in log.iter() {
        let h = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(h("content-encoding"), "snappy");
        assert_eq!(h("content-type"), "application/x-protobuf");
        assert_eq!(h("x-prometheus-remote-write-version"), "0.1.0");
        assert!(h("user-agent").starts_with("promfed/"), "{}", h("user-agent"));
        assert_eq!(h("x-scope-orgid"), "tenant-1");
        assert_eq!(h("authorization"), "Basic cHJvbWZlZDpzZWNyZXQ=");
    }
    // Retry on 500 and 503: the same body again; after 429 the next try waits Retry-After.
    assert_eq!(log[1].body, log[0].body, "a 500 is retried with the same request");
    assert_eq!(log[2].body, log[1].body, "a 503 is retried with the same request");
    assert_eq!(log[3].body, log[2].body, "a 429 is retried with the same request");
    let waited = log[3].at - log[2].at;
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 honoured, waited {waited:?}");
    // The 400's samples are dropped, never sent again.
    let refused = &log[4];
    let refused_samples: usize = refused.request.timeseries.iter().map(|t| t.samples.len()).sum();
    assert!(refused_samples > 0);
    let key = |t: &promfed::remote::proto::TimeSeries| {
        t.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect::<Vec<_>>().join(",")
    };
    let mut accepted: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in log.iter().filter(|r| r.status == StatusCode::OK) {
        for t in &r.request.timeseries {
            // Sorted by name, the name label among them, no empty names or values.
            let names: Vec<&str> = t.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "labels sorted");
            assert!(names.contains(&"__name__"));
            assert!(t.labels.iter().all(|l| !l.name.is_empty() && !l.value.is_empty()));
            let name = &t.labels.iter().find(|l| l.name == "__name__").unwrap().value;
            assert_ne!(name, "dropped_gauge", "write_relabel_configs drop it");
            if name == "sent_total" {
                let path = &t.labels.iter().find(|l| l.name == "path").unwrap().value;
                assert_eq!(path, "a\"b", "label values are sent unescaped");
            }
            accepted.entry(key(t)).or_default().extend(t.samples.iter().map(|s| s.timestamp));
        }
    }
    for t in &refused.request.timeseries {
        let k = key(t);
        for s in &t.samples {
            assert!(!accepted.get(&k).is_some_and(|v| v.contains(&s.timestamp)), "a 400's sample was sent again");
        }
    }
    // Per series: timestamps strictly increase across requests (order kept, nothing twice).
    assert_eq!(accepted.len(), 20);
    for (k, ts) in &accepted {
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{k}: out of order or duplicated: {ts:?}");
    }
    let accepted_samples: usize = accepted.values().map(Vec::len).sum();

    // The books balance: everything emitted was queued or dropped by relabeling; everything
    // queued was accepted or refused; nothing is pending after a clean stop with the
    // receiver up.
    let body = metrics.encode();
    let m = |name: &str, labels: &[(&str, &str)]| metric_value(&body, name, labels).unwrap_or(0.0);
    let dest = [("remote_name", "harness")];
    let emitted = m("promfed_merge_emitted_samples_total", &[("group", "g")]);
    let queued = m("promfed_remote_storage_samples_in_total", &dest);
    let relabel_dropped =
        m("promfed_remote_storage_samples_dropped_total", &[("remote_name", "harness"), ("reason", "relabel")]);
    let sent = m("promfed_remote_storage_samples_total", &dest);
    let failed =
        m("promfed_remote_storage_samples_failed_total", &[("remote_name", "harness"), ("reason", "http_400")]);
    let retried = m("promfed_remote_storage_samples_retried_total", &dest);
    assert_eq!(emitted, queued + relabel_dropped, "emitted = queued + dropped by relabeling");
    assert_eq!(failed as usize, refused_samples);
    assert_eq!(sent as usize, accepted_samples);
    assert_eq!(queued, sent + failed, "every queued sample was answered");
    assert_eq!(m("promfed_remote_storage_samples_pending", &dest), 0.0);
    assert_eq!(retried as usize, 3 * log[0].request.timeseries.iter().map(|t| t.samples.len()).sum::<usize>());
    assert!(m("promfed_remote_storage_queue_highest_sent_timestamp_seconds", &dest) > 1.7e9);
}

/// A restarted promfed re-emits every series' latest sample at its first merge; what the
/// previous run queued already is not queued again (the queue remembers it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_send_the_last_samples_again() {
    use std::sync::atomic::{AtomicI64, Ordering};
    common::init_tracing();
    let (url, log) = recording_receiver(Vec::new()).await;
    let ts = Arc::new(AtomicI64::new(common::now_ms() - 1000));
    let replica = fake_replica({
        let ts = ts.clone();
        move |_| {
            let t = ts.load(Ordering::SeqCst);
            let mut out = String::from("# TYPE g gauge\n");
            for i in 0..20 {
                let _ = writeln!(out, "g{{i=\"{i}\"}} {i} {t}");
            }
            out
        }
    })
    .await;
    let data = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
server: {{listen_address: "127.0.0.1:0"}}
data_dir: {data}
global: {{scrape_interval: 50ms, scrape_timeout: 40ms}}
groups:
  - name: g
    replicas: [{{name: a, role: primary, address: "{replica}"}}]
remote_write:
  - {{url: "{url}", name: r, queue_config: {{batch_send_deadline: 50ms}}}}
"#,
        data = data.path().display()
    );
    let sent_samples = |log: &Arc<Mutex<Vec<Received>>>| -> usize {
        log.lock().unwrap().iter().flat_map(|r| r.request.timeseries.iter()).map(|t| t.samples.len()).sum()
    };
    for run in 0..2 {
        let running = start(&yaml).await;
        let metrics = running.metrics.clone();
        let emitted = || metric_value(&metrics.encode(), "promfed_merge_emitted_samples_total", &[("group", "g")]);
        poll("the first merge", Duration::from_secs(10), Duration::from_millis(50), || {
            let n = emitted();
            async move { n.filter(|&n| n >= 20.0).map(|_| ()) }
        })
        .await;
        if run == 1 {
            // The same samples again: emitted by the merge, not queued.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let body = metrics.encode();
            let repeated = metric_value(
                &body,
                "promfed_remote_storage_samples_dropped_total",
                &[("remote_name", "r"), ("reason", "queued_before_restart")],
            );
            assert_eq!(repeated, Some(20.0), "the restarted run recognised what it had queued");
            assert_eq!(sent_samples(&log), 20, "nothing sent twice");
            // A new sample still goes out.
            ts.fetch_add(1000, Ordering::SeqCst);
        }
        poll("samples sent", Duration::from_secs(10), Duration::from_millis(50), || {
            let n = sent_samples(&log);
            async move { (n >= 20 * (run + 1)).then_some(()) }
        })
        .await;
        running.shutdown();
        running.wait().await.expect("clean stop");
    }
    assert_eq!(sent_samples(&log), 40);
    let mut seen = std::collections::HashSet::new();
    for r in log.lock().unwrap().iter() {
        for t in &r.request.timeseries {
            for s in &t.samples {
                let k = format!("{:?}{}", t.labels, s.timestamp);
                assert!(seen.insert(k), "sent twice: {:?} at {}", t.labels, s.timestamp);
            }
        }
    }
}

/// Compliance case "staleness": a series that ends is closed with a staleness marker (the
/// exact NaN Prometheus uses) once the lookback has passed without it, and nothing follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_that_ends_gets_a_staleness_marker() {
    use std::sync::atomic::{AtomicBool, Ordering};
    common::init_tracing();
    let (url, log) = recording_receiver(Vec::new()).await;
    let with_y = Arc::new(AtomicBool::new(true));
    let replica = fake_replica({
        let with_y = with_y.clone();
        move |now| {
            let ts = now / 100 * 100;
            let mut out = format!("# TYPE x gauge\nx 1 {ts}\n");
            if with_y.load(Ordering::SeqCst) {
                out.push_str(&format!("# TYPE y gauge\ny 2 {ts}\n"));
            }
            out
        }
    })
    .await;
    let data = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
server: {{listen_address: "127.0.0.1:0"}}
data_dir: {data}
global: {{scrape_interval: 50ms, scrape_timeout: 40ms, lookback_delta: 1s}}
groups:
  - name: g
    replicas: [{{name: a, role: primary, address: "{replica}"}}]
remote_write:
  - {{url: "{url}", name: r, queue_config: {{batch_send_deadline: 50ms}}}}
"#,
        data = data.path().display()
    );
    let running = start(&yaml).await;
    let y_samples = |log: &Arc<Mutex<Vec<Received>>>| -> Vec<(i64, f64)> {
        log.lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.request.timeseries.iter())
            .filter(|t| t.labels.iter().any(|l| l.name == "__name__" && l.value == "y"))
            .flat_map(|t| t.samples.iter().map(|s| (s.timestamp, s.value)))
            .collect()
    };
    poll("y sent", Duration::from_secs(10), Duration::from_millis(50), || {
        let n = y_samples(&log).len();
        async move { (n >= 3).then_some(()) }
    })
    .await;
    with_y.store(false, Ordering::SeqCst);
    let gone = common::now_ms();
    poll("y's staleness marker", Duration::from_secs(10), Duration::from_millis(50), || {
        let stale = y_samples(&log).iter().any(|s| s.1.is_nan());
        async move { stale.then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.shutdown();
    running.wait().await.expect("clean stop");
    let y = y_samples(&log);
    let (last_ts, last) = *y.last().unwrap();
    assert_eq!(last.to_bits(), 0x7ff0_0000_0000_0002, "Prometheus' staleness NaN, last of y");
    assert_eq!(y.iter().filter(|s| s.1.is_nan()).count(), 1);
    let last_real = y[y.len() - 2].0;
    assert!(last_ts > last_real + 1000, "after the lookback: marker at {last_ts}, y's last sample at {last_real}");
    assert!(last_real <= gone, "y's last sample {last_real} before it went at {gone}");
    assert!(y.windows(2).all(|w| w[0].0 < w[1].0), "in order");
}

/// Per series (by labels), the timestamps a receiver got.
fn timestamps(log: &Arc<Mutex<Vec<Received>>>) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in log.lock().unwrap().iter().filter(|r| r.status == StatusCode::OK) {
        for t in &r.request.timeseries {
            let k = t.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect::<Vec<_>>().join(",");
            out.entry(k).or_default().extend(t.samples.iter().map(|s| s.timestamp));
        }
    }
    out
}

/// A reload changes destinations as Prometheus does: one whose URL changed goes on from where it
/// was (nothing lost at the switch), one added starts, one removed stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_adds_and_removes_destinations() {
    common::init_tracing();
    let (url1, log1) = recording_receiver(Vec::new()).await;
    let (url2, log2) = recording_receiver(Vec::new()).await;
    let (url3, log3) = recording_receiver(Vec::new()).await;
    let replica = replica().await;
    let data = tempfile::tempdir().expect("temp dir");
    let path = data.path().join("promfed.yml");
    let write = |destinations: &str| {
        let yaml = format!(
            r#"
server: {{listen_address: "127.0.0.1:0"}}
data_dir: {data}
global: {{scrape_interval: 50ms, scrape_timeout: 40ms}}
groups:
  - name: g
    replicas: [{{name: a, role: primary, address: "{replica}"}}]
remote_write:
{destinations}
"#,
            data = data.path().display()
        );
        std::fs::write(&path, yaml).expect("write config");
    };
    let count = |log: &Arc<Mutex<Vec<Received>>>| timestamps(log).values().map(Vec::len).sum::<usize>();
    let wait = |log: Arc<Mutex<Vec<Received>>>, n: usize, what: &'static str| async move {
        poll(what, Duration::from_secs(15), Duration::from_millis(50), || {
            let c = timestamps(&log).values().map(Vec::len).sum::<usize>();
            async move { (c >= n).then_some(()) }
        })
        .await
    };
    let qc = "queue_config: {batch_send_deadline: 50ms}";
    write(&format!("  - {{name: a, url: '{url1}', {qc}}}"));
    let config = promfed::config::load(&path).expect("valid config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = promfed::run::start_from_file(config, Some(listener), Some(path.clone())).await.expect("starts");
    wait(log1.clone(), 100, "a sends to the first URL").await;

    write(&format!(
        "  - {{name: a, url: '{url2}', {qc}}}\n  - {{name: b, url: '{url3}', {qc}, durable_queue: {{max_size: 64MiB}}}}"
    ));
    running.reload.reload().await.expect("reload");
    wait(log2.clone(), 100, "a sends to its new URL").await;
    wait(log3.clone(), 100, "b, added, sends").await;
    // Each destination exports its queue's limit (the queue-near-full alert divides by it).
    let body = running.metrics.encode();
    let max_bytes = |name: &str, url: &str| {
        metric_value(&body, "promfed_remote_storage_queue_max_bytes", &[("remote_name", name), ("url", url)])
    };
    assert_eq!(max_bytes("a", &url2), Some(f64::from(1u32 << 30)), "a: the default 1GiB, under its new URL");
    assert_eq!(max_bytes("a", &url1), None, "a's old URL is forgotten");
    assert_eq!(max_bytes("b", &url3), Some(f64::from(64u32 << 20)));
    let first_after_switch = count(&log1);

    write(&format!("  - {{name: a, url: '{url2}', {qc}}}"));
    running.reload.reload().await.expect("reload");
    let b_stopped = count(&log3);
    let a_then = count(&log2);
    wait(log2.clone(), a_then + 100, "a goes on").await;
    assert_eq!(count(&log3), b_stopped, "b, removed, sends nothing more");
    assert!(count(&log1) <= first_after_switch + 20, "a's old URL gets nothing after the switch");
    let body = running.metrics.encode();
    assert!(!body.contains("remote_name=\"b\""), "b's series are gone from /metrics");
    // A reload with a destination whose queue cannot be opened fails and changes nothing.
    write(&format!(
        "  - {{name: a, url: '{url2}', {qc}}}\n  - {{name: c, url: '{url3}', durable_queue: {{max_size: 1GiB}}}}"
    ));
    std::fs::create_dir_all(data.path().join("remote_write")).unwrap();
    std::fs::write(data.path().join("remote_write/c"), "a file where the queue directory goes").unwrap();
    let err = running.reload.reload().await.expect_err("c cannot open its queue");
    assert!(err.to_string().contains("remote_write c"), "{err}");
    let a_now = count(&log2);
    wait(log2.clone(), a_now + 50, "a still sends").await;
    running.shutdown();
    running.wait().await.expect("clean stop");

    // Destination a, across its two URLs: every step of every series, none missing.
    let (old, new) = (timestamps(&log1), timestamps(&log2));
    assert_eq!(new.len(), 21, "20 sent_total and dropped_gauge");
    for (k, ts) in &new {
        let mut all: Vec<i64> = old.get(k).cloned().unwrap_or_default();
        all.extend(ts);
        all.sort_unstable();
        all.dedup();
        for w in all.windows(2) {
            assert_eq!(w[1] - w[0], 100, "{k}: a step is missing between {} and {}", w[0], w[1]);
        }
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{k}: the new URL got a sample twice or out of order");
    }
}

/// `metadata_config`: every typed family's type, in requests of their own, every
/// `send_interval`, at most `max_samples_per_send` a request; untyped families (the histogram's
/// series, as federation serves them) are not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_sent_every_interval_with_each_familys_type() {
    common::init_tracing();
    let (url, log) = recording_receiver(Vec::new()).await;
    let replica = fake_replica(|now| {
        let ts = now / 100 * 100;
        format!(
            "# TYPE jobs_total counter\njobs_total 1 {ts}\n# TYPE temp gauge\ntemp 2 {ts}\n\
             # TYPE rpc_seconds histogram\nrpc_seconds_bucket{{le=\"1\"}} 1 {ts}\nrpc_seconds_bucket{{le=\"+Inf\"}} 1 {ts}\n\
             rpc_seconds_sum 0.5 {ts}\nrpc_seconds_count 1 {ts}\n"
        )
    })
    .await;
    let data = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
server: {{listen_address: "127.0.0.1:0"}}
data_dir: {data}
global: {{scrape_interval: 50ms, scrape_timeout: 40ms}}
groups:
  - name: g
    replicas: [{{name: a, role: primary, address: "{replica}"}}]
remote_write:
  - url: {url}
    name: r
    queue_config: {{batch_send_deadline: 50ms}}
    metadata_config: {{send_interval: 300ms, max_samples_per_send: 1}}
"#,
        data = data.path().display()
    );
    let running = start(&yaml).await;
    let metadata_requests = |log: &Arc<Mutex<Vec<Received>>>| -> Vec<(Instant, Vec<(String, i32)>)> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| !r.request.metadata.is_empty())
            .map(|r| {
                assert!(r.request.timeseries.is_empty(), "metadata goes in requests of its own");
                (r.at, r.request.metadata.iter().map(|m| (m.metric_family_name.clone(), m.r#type)).collect())
            })
            .collect()
    };
    poll("two rounds of metadata", Duration::from_secs(15), Duration::from_millis(50), || {
        let n = metadata_requests(&log).len();
        async move { (n >= 4).then_some(()) }
    })
    .await;
    let metrics = running.metrics.clone();
    running.shutdown();
    running.wait().await.expect("clean stop");
    use promfed::remote::proto::MetadataType;
    let rounds = metadata_requests(&log);
    // Two typed families, one a request: two requests a round.
    let first: Vec<(String, i32)> = rounds[0].1.iter().chain(rounds[1].1.iter()).cloned().collect();
    assert_eq!(
        first,
        [("jobs_total".to_owned(), MetadataType::Counter as i32), ("temp".to_owned(), MetadataType::Gauge as i32)]
    );
    assert!(rounds.iter().all(|r| r.1.len() == 1));
    let apart = rounds[2].0 - rounds[0].0;
    assert!(apart >= Duration::from_millis(250), "once per send_interval: {apart:?}");
    let body = metrics.encode();
    assert!(metric_value(&body, "promfed_remote_storage_metadata_total", &[("remote_name", "r")]).unwrap() >= 4.0);
}

/// `queue_config.sample_age_limit`: while the destination fails, samples older than the limit
/// are dropped (counted `too_old`) instead of being sent late; what is sent after recovery is
/// recent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_age_limit_drops_what_got_too_old_while_the_destination_failed() {
    common::init_tracing();
    // 40 failures at 50-100 ms backoff: about 3 s down.
    let script = vec![(StatusCode::SERVICE_UNAVAILABLE, None); 40];
    let (url, log) = recording_receiver(script).await;
    let replica = replica().await;
    let data = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
server: {{listen_address: "127.0.0.1:0"}}
data_dir: {data}
global: {{scrape_interval: 50ms, scrape_timeout: 40ms}}
groups:
  - name: g
    replicas: [{{name: a, role: primary, address: "{replica}"}}]
remote_write:
  - url: {url}
    name: aged
    queue_config: {{batch_send_deadline: 50ms, min_backoff: 50ms, max_backoff: 100ms, sample_age_limit: 1s}}
"#,
        data = data.path().display()
    );
    let running = start(&yaml).await;
    poll("accepted after the outage", Duration::from_secs(30), Duration::from_millis(100), || {
        let n = log.lock().unwrap().iter().filter(|r| r.status == StatusCode::OK).count();
        async move { (n >= 10).then_some(()) }
    })
    .await;
    let metrics = running.metrics.clone();
    running.shutdown();
    running.wait().await.expect("clean stop");
    let body = metrics.encode();
    let too_old = metric_value(
        &body,
        "promfed_remote_storage_samples_dropped_total",
        &[("remote_name", "aged"), ("reason", "too_old")],
    )
    .unwrap_or(0.0);
    assert!(too_old > 0.0, "samples older than 1s were dropped");
    // The replica's samples are timestamped when scraped: an accepted one was at most the limit
    // old when its request was last tried (plus a batch deadline and a backoff).
    let log = log.lock().unwrap();
    let start = log[0].at;
    for r in log.iter().filter(|r| r.status == StatusCode::OK) {
        let newest = r.request.timeseries.iter().flat_map(|t| t.samples.iter().map(|s| s.timestamp)).max().unwrap();
        let sent_at = common::now_ms() - r.at.elapsed().as_millis() as i64;
        assert!(sent_at - newest < 1_500, "sent {} ms old, {:?} after the first try", sent_at - newest, r.at - start);
    }
}
