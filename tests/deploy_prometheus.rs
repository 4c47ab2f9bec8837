//! `deploy/prometheus.yml` (issue 15, item 6): the global Prometheus' jobs for promfed, started
//! unchanged but for addresses and file paths, in a real Prometheus 2.42 with the repo's alert
//! rules, against a real promfed serving TLS and basic auth: every job's target is up, the
//! probe succeeds, and `PromfedDown` does not fire.

mod common;

use common::{PromApi, Prometheus, TlsFiles, poll};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_prometheus_jobs_scrape_promfed() {
    let Some(binary) = common::prometheus_binary() else { return };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tls = TlsFiles::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let yaml = format!(
        r#"
server:
  listen_address: "127.0.0.1:0"
  tls_server_config: {tls}
  basic_auth: {{username: global-prometheus, password_file: "{password}"}}
probes:
  modules:
    http_2xx: {{prober: http, timeout: 5s, http: {{tls_config: {{ca_file: "{ca}"}}}}}}
groups:
  - name: pair
    scrape_interval: 1s
    scrape_timeout: 900ms
    replicas:
      - {{name: a, role: primary, address: "127.0.0.1:1"}}
      - {{name: b, role: secondary, address: "127.0.0.1:2"}}
"#,
        tls = tls.server_config_yaml(false),
        password = password.display(),
        ca = tls.ca().display(),
    );
    let config = promfed::config::parse(&yaml, "deploy_prometheus test").expect("valid promfed config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
    let promfed = running.address.to_string();

    let shipped = std::fs::read_to_string(root.join("deploy/prometheus.yml")).expect("deploy/prometheus.yml");
    for (placeholder, what) in [
        ("promfed:9443", "the target"),
        ("/etc/prometheus/promfed-ca.crt", "the CA"),
        ("/etc/prometheus/promfed-password", "the password file"),
        ("scrape_interval: 15s", "the interval"),
    ] {
        assert!(shipped.contains(placeholder), "deploy/prometheus.yml no longer names {what} as {placeholder}");
    }
    let prometheus_yml = shipped
        .replace("promfed:9443", &promfed)
        .replace("/etc/prometheus/promfed-ca.crt", &tls.ca().display().to_string())
        .replace("/etc/prometheus/promfed-password", &password.display().to_string())
        .replace("scrape_interval: 15s", "scrape_interval: 1s\n  evaluation_interval: 1s");
    let rules = std::fs::read_to_string(root.join("alerts/promfed.rules.yml")).expect("alert rules");
    let prom = Prometheus::start(&binary, "deploy-jobs", &prometheus_yml, &[("promfed.rules.yml", &rules)]).await;
    let api = PromApi::new(prom.url());
    poll("every shipped job up", Duration::from_secs(30), Duration::from_millis(250), || async {
        let up = api.query("up == 1").await;
        let jobs: Vec<&str> = up.iter().filter_map(|s| s["metric"]["job"].as_str()).collect();
        ["federate", "promfed", "promfed-probe"].iter().all(|j| jobs.contains(j)).then_some(())
    })
    .await;
    let probe = api.query(r#"probe_success{job="promfed-probe"}"#).await;
    assert_eq!(probe.len(), 1, "{probe:?}");
    assert_eq!(probe[0]["value"][1], "1", "promfed's /-/healthy probed through its /probe: {probe:?}");
    assert!(
        api.query(r#"up{job="promfed"} == 0 or absent(up{job="promfed"})"#).await.is_empty(),
        "PromfedDown's expression"
    );
    // The rules are loaded: PromfedDown went pending at the first evaluation, before the first
    // scrape (`absent(up{job="promfed"})`), and is gone now that the job's target is up.
    poll("PromfedDown neither pending nor firing", Duration::from_secs(15), Duration::from_millis(250), || async {
        api.query(r#"ALERTS{alertname="PromfedDown"}"#).await.is_empty().then_some(())
    })
    .await;
    let rules: serde_json::Value =
        reqwest::get(format!("{}/api/v1/rules", prom.url())).await.unwrap().json().await.unwrap();
    assert!(rules.to_string().contains("\"PromfedDown\""), "the repo's rules loaded: {rules}");
    running.shutdown();
}
