//! promfed's remote-write sender against real receivers: Prometheus 2.42 with
//! `--web.enable-remote-write-receiver` and VictoriaMetrics (Debian packages). Samples are read
//! back through their HTTP APIs (Prometheus' range-vector query, VictoriaMetrics'
//! `/api/v1/export`, which returns raw samples, duplicates included) and compared with what
//! promfed says it sent: every sample present, none twice, per series in order.
//!
//! The fault test runs the promfed binary: VictoriaMetrics is down for two minutes, promfed is
//! SIGKILLed and restarted in the middle of the outage, and afterwards every sample of the
//! upstream's timeline is in VictoriaMetrics except the ones the upstream served only while
//! promfed itself was dead.
//!
//! Without the peers installed the tests are skipped with a notice, unless `CI` is set, where
//! they fail.

mod common;

use common::vm::VictoriaMetrics;
use common::{ChildGuard, PromApi, Prometheus, TextServer, fake_replica, free_port, metric_value, poll, samples_of};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The upstream's series: `rw_total{i}` gets a new sample every `step_ms`, timestamped at the
/// step, value `step + i` (so both replicas of a pair serve the same samples).
fn body(now_ms: u128, step_ms: u128, series: usize) -> String {
    let step = now_ms / step_ms;
    let ts = step * step_ms;
    let mut out = String::from("# TYPE rw_total counter\n");
    for i in 0..series {
        let _ = writeln!(out, "rw_total{{i=\"{i}\"}} {} {ts}", step as usize + i);
    }
    out
}

fn now_ms() -> u128 {
    common::now_ms() as u128
}

/// Per series: timestamps strictly increase (nothing twice, nothing out of order) and the
/// counter never decreases.
fn assert_clean(who: &str, series: &BTreeMap<String, Vec<(i64, f64)>>) {
    for (k, samples) in series {
        for w in samples.windows(2) {
            assert!(w[0].0 < w[1].0, "{who} {k}: timestamps {} then {} (duplicate or out of order)", w[0].0, w[1].0);
            assert!(w[0].1 <= w[1].1, "{who} {k}: counter went down {} -> {}", w[0].1, w[1].1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_victoriametrics_receive_every_sample_once() {
    let (Some(prom_bin), Some(vm_bin)) = (common::prometheus_binary(), common::vm::binary()) else { return };
    common::init_tracing();
    let prom = Prometheus::start_with_args(
        &prom_bin,
        "receiver",
        "global: {scrape_interval: 1h}\n",
        &[],
        &["--web.enable-remote-write-receiver"],
    )
    .await;
    let vm = VictoriaMetrics::start(&vm_bin).await;

    // An HA pair; the primary dies halfway, the secondary takes over.
    let primary = TextServer::start("/federate", || body(now_ms(), 100, 20)).await;
    let secondary = fake_replica(|now| body(now, 100, 20)).await;
    let data = tempfile::tempdir().expect("temp dir");
    let yaml = format!(
        r#"
server: {{listen_address: "127.0.0.1:0"}}
data_dir: {data}
global: {{scrape_interval: 50ms, scrape_timeout: 40ms}}
groups:
  - name: pair
    hold_down: 2
    replicas:
      - {{name: a, role: primary, address: "{a}"}}
      - {{name: b, role: secondary, address: "{b}"}}
remote_write:
  - {{name: prometheus, url: "{prom}/api/v1/write", queue_config: {{batch_send_deadline: 200ms, max_samples_per_send: 200}}, metadata_config: {{send_interval: 1s}}}}
  - {{name: vm, url: "{vm}/api/v1/write", queue_config: {{batch_send_deadline: 200ms, max_samples_per_send: 200}}, metadata_config: {{send_interval: 1s}}}}
"#,
        data = data.path().display(),
        a = primary.address,
        b = secondary,
        prom = prom.url(),
        vm = vm.url(),
    );
    let config = promfed::config::parse(&yaml, "remote_write_peers test").expect("valid config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
    let metrics = running.metrics.clone();
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(primary);
    tokio::time::sleep(Duration::from_secs(4)).await;
    running.shutdown();
    running.wait().await.expect("clean stop");

    let body = metrics.encode();
    let sent = |dest: &str| metric_value(&body, "promfed_remote_storage_samples_total", &[("remote_name", dest)]);
    let emitted = metric_value(&body, "promfed_merge_emitted_samples_total", &[("group", "pair")]).unwrap();
    assert!(emitted > 1000.0, "{emitted} samples emitted");
    assert_eq!(sent("prometheus"), Some(emitted), "every emitted sample accepted by Prometheus");
    assert_eq!(sent("vm"), Some(emitted), "every emitted sample accepted by VictoriaMetrics");
    // Metadata requests (rw_total's counter type, every second) are taken by both: neither
    // refuses a request holding only metadata.
    for dest in ["prometheus", "vm"] {
        let sent =
            metric_value(&body, "promfed_remote_storage_metadata_total", &[("remote_name", dest)]).unwrap_or(0.0);
        let failed = metric_value(&body, "promfed_remote_storage_metadata_failed_total", &[("remote_name", dest)])
            .unwrap_or(0.0);
        assert!(sent >= 3.0 && failed == 0.0, "{dest}: metadata sent {sent}, failed {failed}");
    }
    assert!(
        metric_value(&body, "promfed_group_failovers_total", &[("group", "pair")]).unwrap_or(0.0) >= 1.0,
        "the secondary took over"
    );

    let from_vm: BTreeMap<String, Vec<(i64, f64)>> = vm
        .settled_export(r#"{__name__="rw_total"}"#)
        .await
        .into_iter()
        .map(|(labels, samples)| (labels["i"].clone(), samples))
        .collect();
    let api = PromApi::new(prom.url());
    let from_prom: BTreeMap<String, Vec<(i64, f64)>> = api
        .query("rw_total[1h]")
        .await
        .iter()
        .map(|s| {
            let i = s["metric"]["i"].as_str().expect("label i").to_owned();
            let samples = samples_of(s).into_iter().map(|(t, v)| ((t * 1000.0).round() as i64, v)).collect();
            (i, samples)
        })
        .collect();
    assert_eq!(from_vm.len(), 20);
    assert_clean("victoria-metrics", &from_vm);
    assert_clean("prometheus", &from_prom);
    let total = |m: &BTreeMap<String, Vec<(i64, f64)>>| m.values().map(Vec::len).sum::<usize>() as f64;
    assert_eq!(total(&from_prom), emitted, "Prometheus holds every sent sample once");
    assert_eq!(total(&from_vm), emitted, "VictoriaMetrics holds every sent sample once");
    assert_eq!(from_prom, from_vm, "both receivers hold the same samples");
}

/// The promfed binary with `config`, SIGKILLed on drop.
fn spawn_promfed(config: &std::path::Path, log: &std::path::Path) -> ChildGuard {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log");
    ChildGuard::new(
        Command::new(env!("CARGO_BIN_EXE_promfed"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn promfed"),
    )
}

async fn promfed_metrics(port: u16) -> Option<String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
    client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.ok()?.text().await.ok()
}

/// How long the receiver is down.
const OUTAGE: Duration = Duration::from_secs(120);
const STEP_MS: i64 = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_outage_and_promfed_crash_lose_nothing() {
    let Some(vm_bin) = common::vm::binary() else { return };
    let mut vm = VictoriaMetrics::start(&vm_bin).await;
    let replica = fake_replica(|now| body(now, STEP_MS as u128, 100)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = dir.path().join("promfed.yml");
    std::fs::write(
        &config,
        format!(
            r#"
server: {{listen_address: "127.0.0.1:{port}"}}
data_dir: {data}
global: {{scrape_interval: 50ms, scrape_timeout: 40ms}}
groups:
  - name: g
    replicas: [{{name: a, role: primary, address: "{replica}"}}]
remote_write:
  - name: vm
    url: {vm}/api/v1/write
    remote_timeout: 2s
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 100ms, max_backoff: 2s}}
    durable_queue: {{segment_size: 64KiB, max_size: 256MiB, sync_interval: 1s}}
"#,
            data = dir.path().join("data").display(),
            vm = vm.url(),
        ),
    )
    .expect("write config");
    let log = dir.path().join("promfed.log");
    let dump_log = || eprintln!("--- promfed log ---\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    let mut promfed = spawn_promfed(&config, &log);
    let sent = |body: &str| metric_value(body, "promfed_remote_storage_samples_total", &[("remote_name", "vm")]);
    poll("promfed sends to VictoriaMetrics", Duration::from_secs(30), Duration::from_millis(200), || async {
        let body = promfed_metrics(port).await?;
        sent(&body).filter(|&n| n >= 1000.0).map(|_| ())
    })
    .await;

    // The receiver goes away; promfed queues.
    vm.kill();
    let outage_started = Instant::now();
    tokio::time::sleep(OUTAGE / 2).await;
    let body = promfed_metrics(port).await.expect("promfed metrics");
    let pending = metric_value(&body, "promfed_remote_storage_samples_pending", &[("remote_name", "vm")]).unwrap();
    assert!(pending > 10_000.0, "samples queued during the outage: {pending}");
    // promfed crashes in the middle of the outage and comes back.
    drop(promfed);
    let killed_ms = common::now_ms();
    tokio::time::sleep(Duration::from_secs(1)).await;
    promfed = spawn_promfed(&config, &log);
    let restarted: i64 = poll("promfed back", Duration::from_secs(30), Duration::from_millis(50), || async {
        let body = promfed_metrics(port).await?;
        metric_value(&body, "promfed_merge_emitted_samples_total", &[("group", "g")]).filter(|&n| n > 0.0)?;
        Some(common::now_ms())
    })
    .await;
    tokio::time::sleep(OUTAGE.saturating_sub(outage_started.elapsed())).await;
    vm.restart().await;
    let outage_ended_ms = common::now_ms();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body = promfed_metrics(port).await.unwrap_or_default();
        let pending = metric_value(&body, "promfed_remote_storage_samples_pending", &[("remote_name", "vm")]);
        // New samples keep coming (100 every 250 ms) and wait up to batch_send_deadline in a
        // shard, so "drained" is a few merges' worth at most, not 0.
        if pending.is_some_and(|p| p <= 300.0) {
            break;
        }
        if Instant::now() > deadline {
            dump_log();
            let lines: Vec<&str> = body.lines().filter(|l| l.starts_with("promfed_remote_storage")).collect();
            panic!(
                "the backlog was not delivered within 120 s; pending {pending:?}; sender metrics:\n{}",
                lines.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stopped = Command::new("kill").args(["-TERM", &promfed.id().to_string()]).status().expect("kill");
    assert!(stopped.success());
    tokio::time::sleep(Duration::from_secs(2)).await;

    let exported = vm.settled_export(r#"{__name__="rw_total"}"#).await;
    let series: BTreeMap<String, Vec<(i64, f64)>> =
        exported.into_iter().map(|(labels, samples)| (labels["i"].clone(), samples)).collect();
    if series.len() != 100 {
        dump_log();
    }
    assert_eq!(series.len(), 100);
    assert_clean("victoria-metrics", &series);
    // Every step of the upstream's timeline is there, except the ones served only while promfed
    // was dead (between the kill and its first merge after the restart).
    let mut lost = 0;
    let mut during_outage = 0;
    for (i, samples) in &series {
        let first = samples.first().expect("samples").0;
        let last = samples.last().expect("samples").0;
        let have: std::collections::HashSet<i64> = samples.iter().map(|s| s.0).collect();
        let mut t = first;
        while t <= last {
            let dead = t > killed_ms - 2 * STEP_MS && t < restarted + STEP_MS;
            if !dead && !have.contains(&t) {
                lost += 1;
                eprintln!("series {i}: step {t} missing");
            }
            if have.contains(&t) && t > killed_ms - (OUTAGE.as_millis() as i64 / 2) && t < outage_ended_ms {
                during_outage += 1;
            }
            t += STEP_MS;
        }
        let value = |t: i64| samples.iter().find(|s| s.0 == t).map(|s| s.1);
        assert_eq!(value(first), Some((first / STEP_MS) as f64 + i.parse::<f64>().unwrap()), "values intact");
    }
    if lost > 0 {
        dump_log();
    }
    assert_eq!(lost, 0, "samples lost");
    let expected_during = 100 * (OUTAGE.as_millis() as i64 / STEP_MS) * 9 / 10;
    assert!(
        during_outage >= expected_during,
        "{during_outage} samples of the outage delivered, expected ≥ {expected_during}"
    );
    eprintln!(
        "outage {OUTAGE:?} with a promfed SIGKILL: {during_outage} samples queued during the outage delivered, 0 lost"
    );
}
