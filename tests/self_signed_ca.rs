//! Issue 13: a certificate made by `openssl req -x509 … -addext subjectAltName=IP:127.0.0.1` (a
//! self-signed certificate with `CA:TRUE`), given as `ca_file` to a client of a server presenting
//! that same certificate, is accepted by Go (Prometheus, blackbox_exporter); promfed's clients
//! accept it too, and refuse a different self-signed certificate.
//!
//! Real Prometheus 2.42 servers over HTTPS with such a certificate: one a replica promfed
//! scrapes, one the Remote-Write receiver promfed sends to; promfed serving its own API with
//! the same kind of certificate for the on-call CLI. (Probes and Grafana: in
//! `probes_vs_blackbox.rs` and `dashboards_cli.rs`.)

mod common;

use common::{Prometheus, now_ms, openssl_self_signed, poll};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_promfed");

fn replica_config(target: &str) -> String {
    format!(
        r#"
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  external_labels: {{replica: a}}
scrape_configs:
  - job_name: app
    metrics_path: /federate
    static_configs: [{{targets: ['{target}']}}]
"#
    )
}

fn promfed_yaml(
    cert: &Path,
    key: &Path,
    ca: &Path,
    other: &Path,
    replica: &str,
    receiver: &str,
    data: &Path,
) -> String {
    format!(
        r#"
data_dir: "{data}"
server:
  listen_address: "127.0.0.1:0"
  tls_server_config: {{cert_file: "{cert}", key_file: "{key}"}}
groups:
  - name: trusted
    scheme: https
    tls_config: {{ca_file: "{ca}"}}
    scrape_interval: 1s
    scrape_timeout: 900ms
    match: ['{{job="app"}}']
    labels: {{federation_group: trusted}}
    replicas:
      - {{name: a, role: primary, address: "{replica}"}}
  - name: untrusted
    scheme: https
    tls_config: {{ca_file: "{other}"}}
    scrape_interval: 1s
    scrape_timeout: 900ms
    match: ['{{job="app"}}']
    replicas:
      - {{name: a, role: primary, address: "{replica}"}}
remote_write:
  - {{url: "{receiver}/api/v1/write", name: tls, tls_config: {{ca_file: "{ca}"}}, queue_config: {{batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 200ms}}}}
"#,
        data = data.display(),
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
        other = other.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_remote_write_and_cli_accept_an_openssl_self_signed_ca_and_refuse_another() {
    let Some(binary) = common::prometheus_binary() else { return };
    common::init_tracing();
    promfed::serve::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    // One certificate for every server here, exactly as the issue makes it; and a second one,
    // made the same way, that nothing presents.
    let (cert, key) = openssl_self_signed(dir.path(), "c", "IP:127.0.0.1");
    let (other, _) = openssl_self_signed(dir.path(), "other", "IP:127.0.0.1");

    let target = common::fake_replica(|_| "# TYPE selfsigned_up gauge\nselfsigned_up 1\n".to_owned()).await;
    let tls = Some((cert.as_path(), key.as_path()));
    let replica =
        Prometheus::start_full(&binary, "tls-replica", &replica_config(&target.to_string()), &[], &[], tls).await;
    let receiver = Prometheus::start_full(
        &binary,
        "tls-receiver",
        "global: {scrape_interval: 1m}\n",
        &[],
        &["--web.enable-remote-write-receiver"],
        tls,
    )
    .await;

    let data = dir.path().join("data");
    let yaml = promfed_yaml(&cert, &key, &cert, &other, &replica.address(), &receiver.url(), &data);
    let config = promfed::config::parse(&yaml, "self_signed_ca test").expect("valid config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
    let base = format!("https://127.0.0.1:{}", running.address.port());

    // Scrape: the trusted group serves the replica's series; the other one names the reason.
    // The test's own reads (reqwest's verifier is plain webpki, which refuses this certificate:
    // the point of the issue) skip verification; promfed's clients are what is under test.
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let status = |group: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let v: serde_json::Value =
                client.get(format!("{base}/api/v1/status/groups")).send().await.ok()?.json().await.ok()?;
            let replica: serde_json::Value =
                v["data"].as_array()?.iter().find(|g| g["name"] == group)?["replicas"][0].clone();
            Some(replica)
        }
    };
    let trusted = poll("the trusted replica scraped", Duration::from_secs(30), Duration::from_millis(200), || async {
        status("trusted").await.filter(|r| r["healthy"] == true && r["last_samples"].as_u64() > Some(0))
    })
    .await;
    assert!(trusted["last_error"].is_null(), "{trusted}");
    let untrusted =
        poll("the untrusted replica failed", Duration::from_secs(30), Duration::from_millis(200), || async {
            status("untrusted").await.filter(|r| r["last_error"].is_string())
        })
        .await;
    let error = untrusted["last_error"].as_str().unwrap();
    assert!(error.contains("certificate") || error.contains("UnknownIssuer"), "{error}");
    let body = client
        .get(format!("{base}/federate?match%5B%5D=selfsigned_up"))
        .send()
        .await
        .expect("GET /federate")
        .text()
        .await
        .unwrap();
    assert!(body.contains("selfsigned_up{") && body.contains("federation_group=\"trusted\""), "{body}");

    // Remote-Write: the merged stream reaches the receiver over TLS.
    let rx = reqwest::Client::builder().tls_danger_accept_invalid_certs(true).build().unwrap();
    let since = now_ms();
    poll("the receiver has promfed's samples", Duration::from_secs(30), Duration::from_millis(300), || async {
        let v: serde_json::Value = rx
            .get(format!("{}/api/v1/query", receiver.url()))
            .query(&[("query", "selfsigned_up{federation_group=\"trusted\"}")])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (!v["data"]["result"].as_array()?.is_empty()).then_some(())
    })
    .await;
    assert!(now_ms() - since < 30_000);

    // The on-call CLI against promfed's own openssl certificate.
    let (code, stdout, stderr) = cli(&base, &cert).await;
    // Exit 1 here means "a group without a healthy leader" (the untrusted one), after the
    // status was read over TLS: the table is there and the trusted group is ok.
    assert!(
        stdout.contains("GROUP") && stdout.lines().any(|l| l.starts_with("trusted") && l.contains(" ok ")),
        "{code:?} {stdout}{stderr}"
    );
    assert!(!stderr.contains("TLS"), "{stderr}");
    let (code, stdout, stderr) = cli(&base, &other).await;
    assert_eq!(code, Some(1), "another self-signed certificate must fail: {stdout}{stderr}");
    assert!(!stdout.contains("GROUP"), "{stdout}");
    assert!(stderr.contains("TLS") && stderr.contains("--ca-file"), "{stderr}");
    running.shutdown();
}

/// `promfed status --url BASE --ca-file CA`: exit code, stdout, stderr.
async fn cli(base: &str, ca: &Path) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(["status", "--url", base, "--ca-file"])
        .arg(ca)
        .output()
        .await
        .expect("run promfed status");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
