//! Prometheus' status endpoints on a real promfed (`/api/v1/status/config`, `status/flags`,
//! `targets`, `status/buildinfo`) and state that survives a restart (leader pins in
//! `data_dir`).

mod common;

use common::{fake_replica, free_port, now_ms, wait_for_groups};
use serde_json::Value;
use std::time::Duration;

/// A pair `pair` of fake replicas a (primary) and b (secondary), a replica c on a closed port in
/// group `dead`, and a file-SD group whose one target has no role (dropped).
async fn config(data: &std::path::Path, sd_file: &std::path::Path) -> String {
    let ts = now_ms();
    let a = fake_replica(move |_| format!("up{{job=\"node\",replica=\"a\"}} 1 {ts}\n")).await;
    let b = fake_replica(move |_| format!("up{{job=\"node\",replica=\"b\"}} 1 {ts}\n")).await;
    std::fs::write(sd_file, "[{\"targets\": [\"127.0.0.1:9\"], \"labels\": {}}]").unwrap();
    format!(
        r#"
data_dir: "{data}"
server:
  basic_auth: {{username: ops, password: s3cret-pw}}
global: {{scrape_interval: 200ms, scrape_timeout: 150ms}}
groups:
  - name: pair
    match: ['{{job="node"}}']
    replicas:
      - {{name: a, role: primary, address: "{a}"}}
      - {{name: b, role: secondary, address: "{b}"}}
  - name: dead
    replicas: [{{name: c, role: primary, address: "127.0.0.1:{dead}"}}]
  - name: files
    file_sd_configs: [{{files: ["{sd}"], refresh_interval: 1s}}]
"#,
        data = data.display(),
        dead = free_port(),
        sd = sd_file.display(),
    )
}

async fn start(path: &std::path::Path) -> promfed::run::Running {
    let mut c = promfed::config::load(path).expect("valid config");
    c.flags.insert("config.file".into(), path.display().to_string());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    promfed::run::start_from_file(c, Some(listener), Some(path.to_owned())).await.expect("promfed starts")
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let r = client.get(format!("{base}{path}")).basic_auth("ops", Some("s3cret-pw")).send().await.expect("request");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_endpoints_answer_as_prometheus_does() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("promfed.yml");
    std::fs::write(&path, config(&dir.path().join("data"), &dir.path().join("sd.json")).await).unwrap();
    let running = start(&path).await;
    let base = format!("http://{}", running.address);
    let client = reqwest::Client::new();
    let authed = authed_client();
    wait_for_groups(&authed, &base, "pair scraped, dead tried", |d| {
        let g = |name: &str| d.as_array().unwrap().iter().find(|g| g["name"] == name).cloned().unwrap_or_default();
        g("pair")["replicas"][0]["healthy"] == true && g("dead")["replicas"][0]["healthy"] == false
    })
    .await;

    // The loaded config, secrets redacted.
    let (code, config) = get(&client, &base, "/api/v1/status/config").await;
    assert_eq!(code, 200);
    let yaml = config["data"]["yaml"].as_str().unwrap();
    assert!(!yaml.contains("s3cret-pw") && yaml.contains("<secret>"), "{yaml}");
    assert!(yaml.contains("name: pair") && yaml.contains("scrape_interval: 200ms"), "{yaml}");

    let (_, flags) = get(&client, &base, "/api/v1/status/flags").await;
    assert_eq!(flags["data"]["config.file"], path.display().to_string());

    // Every replica as a target; the file-SD target without a role as dropped.
    poll_targets(&client, &base).await;
    let (_, t) = get(&client, &base, "/api/v1/targets").await;
    let active = t["data"]["activeTargets"].as_array().unwrap();
    let target = |name: &str| active.iter().find(|t| t["labels"]["replica"] == name).unwrap().clone();
    let a = target("a");
    assert_eq!(a["scrapePool"], "pair");
    assert_eq!(a["health"], "up");
    assert_eq!(a["leader"], true);
    assert_eq!(a["scrapeInterval"], "200ms");
    assert!(a["scrapeUrl"].as_str().unwrap().ends_with("/federate?match%5B%5D=%7Bjob%3D%22node%22%7D"), "{a}");
    assert!(a["lastScrape"].as_str().unwrap().starts_with("20"), "{a}");
    let c = target("c");
    assert_eq!(c["health"], "down");
    assert!(!c["lastError"].as_str().unwrap().is_empty(), "{c}");
    let dropped = t["data"]["droppedTargets"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{t}");
    assert_eq!(dropped[0]["discoveredLabels"]["__address__"], "127.0.0.1:9");
    assert!(dropped[0]["reason"].as_str().unwrap().contains("no role label"), "{t}");

    let (_, only) = get(&client, &base, "/api/v1/targets?state=active&scrapePool=dead").await;
    assert_eq!(only["data"]["activeTargets"].as_array().unwrap().len(), 1);
    assert!(only["data"].get("droppedTargets").is_none());
    let (code, bad) = get(&client, &base, "/api/v1/targets?state=sleepy").await;
    assert_eq!((code, bad["errorType"].as_str()), (400, Some("bad_data")));

    // Prometheus' build fields, the compiler where Prometheus has goVersion.
    let (_, b) = get(&client, &base, "/api/v1/status/buildinfo").await;
    assert_eq!(b["data"]["promfedVersion"], env!("CARGO_PKG_VERSION"));
    assert!(b["data"]["goVersion"].as_str().unwrap().starts_with("rustc "), "{b}");
    for field in ["revision", "branch", "buildUser", "buildDate"] {
        assert!(!b["data"][field].as_str().unwrap().is_empty(), "{field}: {b}");
    }
    running.shutdown();
    running.wait().await.expect("clean stop");
}

async fn poll_targets(client: &reqwest::Client, base: &str) {
    common::poll("a dropped target", Duration::from_secs(15), Duration::from_millis(100), || async {
        let (_, t) = get(client, base, "/api/v1/targets?state=dropped").await;
        (!t["data"]["droppedTargets"].as_array()?.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_pin_survives_a_restart_and_an_unpin_too() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("promfed.yml");
    std::fs::write(&path, config(&dir.path().join("data"), &dir.path().join("sd.json")).await).unwrap();
    let client = reqwest::Client::new();
    let pinned_b = |d: &Value| d.as_array().unwrap().iter().any(|g| g["name"] == "pair" && g["pinned"] == "b");

    let running = start(&path).await;
    let base = format!("http://{}", running.address);
    let pin = client
        .post(format!("{base}/api/v1/leader/pair"))
        .basic_auth("ops", Some("s3cret-pw"))
        .json(&serde_json::json!({"replica": "b"}))
        .send()
        .await
        .unwrap();
    assert!(pin.status().is_success(), "{}", pin.text().await.unwrap());
    let saved = std::fs::read_to_string(dir.path().join("data/pins.json")).expect("pins.json written");
    assert!(saved.contains("\"pair\": \"b\""), "{saved}");
    running.shutdown();
    running.wait().await.expect("clean stop");

    // Restarted: the pin is back before anyone says so again, and b leads.
    let running = start(&path).await;
    let base = format!("http://{}", running.address);
    let authed = authed_client();
    wait_for_groups(&authed, &base, "pin restored, b leading", |d| {
        pinned_b(d) && d.as_array().unwrap().iter().any(|g| g["name"] == "pair" && g["leader"] == "b")
    })
    .await;
    let unpin = authed.delete(format!("{base}/api/v1/leader/pair")).send().await.unwrap();
    assert!(unpin.status().is_success());
    running.shutdown();
    running.wait().await.expect("clean stop");

    let running = start(&path).await;
    let base = format!("http://{}", running.address);
    wait_for_groups(&authed, &base, "a leads, unpinned", |d| {
        d.as_array().unwrap().iter().any(|g| g["name"] == "pair" && g["leader"] == "a" && g["pinned"].is_null())
    })
    .await;
    running.shutdown();
    running.wait().await.expect("clean stop");
}

fn authed_client() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("authorization", "Basic b3BzOnMzY3JldC1wdw==".parse().unwrap());
    reqwest::Client::builder().default_headers(h).build().unwrap()
}
