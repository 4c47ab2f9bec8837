//! Real Prometheus 2.42 servers (Debian's `/usr/bin/prometheus`) pushing to promfed's receiver
//! over HTTPS: an HA pair with external labels `cluster` and `__replica__` scrapes one synthetic
//! target and remote-writes to promfed. Only the elected replica's samples are taken; when it is
//! SIGKILLed the other is elected after the failover timeout, and the merged counter keeps going
//! up with newer timestamps (no reset, nothing out of order).
//!
//! Without `prometheus` installed the test is skipped with a notice, unless `CI` is set, where it
//! fails.

mod common;

use common::{Prometheus, TextServer, TlsFiles, metric_value, poll, text_series};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const COUNTER: &str = r#"synthetic_requests_total{cluster="eu",instance="target",job="synthetic",pod="pod-1"}"#;

/// Counters growing with time (both replicas see the same values), and a gauge.
async fn synthetic_target() -> TextServer {
    let started = Instant::now();
    TextServer::start("/metrics", move || {
        let t = started.elapsed().as_secs_f64();
        let mut out = String::from("# TYPE synthetic_requests_total counter\n");
        for pod in 0..10 {
            let _ = writeln!(out, "synthetic_requests_total{{pod=\"pod-{pod}\"}} {}", (1000.0 + t * 10.0).floor());
        }
        out.push_str("# TYPE synthetic_temperature gauge\n");
        for pod in 0..10 {
            let _ = writeln!(out, "synthetic_temperature{{pod=\"pod-{pod}\"}} {:.2}", 20.0 + (t + pod as f64).sin());
        }
        out
    })
    .await
}

fn replica_config(replica: &str, target: std::net::SocketAddr, promfed: std::net::SocketAddr, ca: &str) -> String {
    format!(
        r#"
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  external_labels: {{cluster: eu, __replica__: {replica}}}
scrape_configs:
  - job_name: synthetic
    static_configs: [{{targets: ['{target}'], labels: {{instance: target}}}}]
    metric_relabel_configs:
      - {{source_labels: [__name__], regex: 'synthetic_.*', action: keep}}
remote_write:
  - url: https://{promfed}/api/v1/write
    tls_config: {{ca_file: "{ca}"}}
    queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_pair_pushes_one_replica_is_taken_and_fails_over() {
    let Some(binary) = common::prometheus_binary() else { return };
    common::init_tracing();
    let tls = TlsFiles::new();
    let yaml = format!(
        r#"
server:
  listen_address: "127.0.0.1:0"
  tls_server_config: {}
remote_write_receiver:
  ha_tracker: {{update_timeout: 1s, failover_timeout: 3s}}
"#,
        tls.server_config_yaml(false)
    );
    let config = promfed::config::parse(&yaml, "remote_write_prometheus test").expect("valid config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
    let base = format!("https://127.0.0.1:{}", running.address.port());
    let client = tls.client(None);

    let target = synthetic_target().await;
    let ca = tls.ca().display().to_string();
    let (a_config, b_config) = (
        replica_config("a", target.address, running.address, &ca),
        replica_config("b", target.address, running.address, &ca),
    );
    let (a, b) = tokio::join!(
        Prometheus::start(&binary, "pusher-a", &a_config, &[]),
        Prometheus::start(&binary, "pusher-b", &b_config, &[]),
    );
    let mut replicas = [a, b];

    let ha = || {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let v: serde_json::Value =
                client.get(format!("{base}/api/v1/status/ha")).send().await.ok()?.json().await.ok()?;
            v["data"][0]["elected"].as_str().map(str::to_owned)
        }
    };
    let federate = || {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let body = client
                .get(format!("{base}/federate?match%5B%5D=%7B__name__%3D~%22synthetic_.%2A%22%7D"))
                .send()
                .await
                .expect("GET /federate")
                .text()
                .await
                .expect("body");
            text_series(body.as_bytes(), &[])
        }
    };
    let metric = |name: &str, labels: &[(&str, &str)]| metric_value(&running.metrics.encode(), name, labels);

    // Both push; the first to arrive is elected, the other's pushes are dropped.
    let elected = poll("a replica to be elected", Duration::from_secs(30), Duration::from_millis(200), ha).await;
    poll("both replicas' pushes to arrive", Duration::from_secs(30), Duration::from_millis(200), || async {
        (metric("promfed_remote_write_samples_dropped_total", &[("reason", "not_elected")]).unwrap_or(0.0) > 0.0
            && federate().await.len() == 20)
            .then_some(())
    })
    .await;
    let served = federate().await;
    assert!(served.keys().all(|k| k.contains("cluster=\"eu\"") && !k.contains("__replica__")), "{served:#?}");
    let before = served[COUNTER];
    eprintln!("elected {elected}; counter {before:?}");

    // SIGKILL the elected replica: the other is elected after the failover timeout (3 s, plus up
    // to the 1 s update timeout), and the counter goes on from where it was.
    let (dead, other) = if elected == "a" { (0, "b") } else { (1, "a") };
    let killed = Instant::now();
    replicas[dead].kill();
    let mut seen = vec![(before.timestamp_ms.unwrap(), before.value)];
    // Bounded: 20 s at most, sampling /federate every 200 ms meanwhile.
    let deadline = killed + Duration::from_secs(20);
    loop {
        let s = federate().await[COUNTER];
        seen.push((s.timestamp_ms.unwrap(), s.value));
        if ha().await.as_deref() == Some(other) {
            break;
        }
        assert!(Instant::now() < deadline, "no failover to {other} within 20 s; seen {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("failover after {:.1}s", killed.elapsed().as_secs_f64());
    // 3 s after the last *recorded* push of the dead replica, which is refreshed once per update
    // timeout (1 s): so at least 2 s after the kill.
    assert!(killed.elapsed() >= Duration::from_secs(2), "not before the failover timeout");
    assert_eq!(metric("promfed_ha_failovers_total", &[("cluster", "eu")]), Some(1.0));

    // Five more seconds from the new replica.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let s = federate().await[COUNTER];
        seen.push((s.timestamp_ms.unwrap(), s.value));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let last = *seen.last().unwrap();
    assert!(last.0 > before.timestamp_ms.unwrap() + 5_000, "newer samples flow after the failover: {seen:?}");
    for w in seen.windows(2) {
        assert!(w[1].0 >= w[0].0, "timestamps never go back: {seen:?}");
        assert!(w[1].1 >= w[0].1, "the counter never decreases across the failover: {seen:?}");
    }
    let status: serde_json::Value =
        client.get(format!("{base}/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["data"][0]["name"], "push/eu");
    assert_eq!(status["data"][0]["leader"], other, "{status:#}");
    running.shutdown();
}
