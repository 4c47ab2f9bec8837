//! File discovery end to end: replicas named in a target file are scraped and merged; when the
//! file changes the scrape loops follow; targets without a valid role are reported, not guessed;
//! a broken file keeps the last good replica set.
//!
//! The upstreams are `FakeReplica`s (in-process servers serving a small federate body); the
//! tests against real Prometheus are in `prometheus_pair.rs`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A fake replica serving two series with its replica label and fresh timestamps.
async fn fake_replica(name: &'static str) -> SocketAddr {
    common::fake_replica(move |now| {
        format!("up{{job=\"x\",replica=\"{name}\"}} 1 {now}\nreqs_total{{replica=\"{name}\"}} 5 {now}\n")
    })
    .await
}

fn write_targets(path: &Path, json: &str) {
    // Write then rename, as a careful provisioning tool does.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn status(client: &reqwest::Client, addr: SocketAddr) -> serde_json::Value {
    let v: serde_json::Value =
        client.get(format!("http://{addr}/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
    v["data"][0].clone()
}

async fn wait_for(client: &reqwest::Client, addr: SocketAddr, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = status(client, addr).await;
        if ok(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn replica_names(s: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> =
        s["replicas"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn replicas_follow_the_target_file() {
    promfed::serve::install_crypto_provider();
    let (a, b, c) = (fake_replica("a").await, fake_replica("b").await, fake_replica("c").await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pair.json");
    write_targets(
        &file,
        &format!(
            r#"[{{"targets": ["{a}"], "labels": {{"federation_role": "primary", "name": "a"}}}},
               {{"targets": ["{b}"], "labels": {{"federation_role": "secondary", "name": "b"}}}},
               {{"targets": ["127.0.0.1:1"], "labels": {{"name": "norole"}}}}]"#
        ),
    );
    let yaml = format!(
        r#"
groups:
  - name: g
    scrape_interval: 300ms
    scrape_timeout: 250ms
    file_sd_configs:
      - files: ["{}/*.json"]
        refresh_interval: 200ms
    relabel_configs:
      - {{source_labels: [name], target_label: __federation_replica__}}
"#,
        dir.path().display()
    );
    let config = promfed::config::parse(&yaml, "test").unwrap();
    let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
    let addr = running.address;
    let client = reqwest::Client::new();

    wait_for(&client, addr, "a and b discovered, a leading", |s| {
        replica_names(s) == ["a", "b"] && s["leader"] == "a" && s["replicas"][0]["healthy"] == true
    })
    .await;
    let s = status(&client, addr).await;
    let rejected = s["rejected_targets"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{s:#}");
    assert!(rejected[0].as_str().unwrap().contains("no role label"), "{s:#}");
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("promfed_sd_rejected_targets{group=\"g\"} 1"), "{metrics}");
    assert!(metrics.contains("promfed_sd_targets{group=\"g\"} 2"), "{metrics}");

    // The primary is replaced by c (a new instance): a stops being scraped, c leads.
    write_targets(
        &file,
        &format!(
            r#"[{{"targets": ["{c}"], "labels": {{"federation_role": "primary", "name": "c"}}}},
               {{"targets": ["{b}"], "labels": {{"federation_role": "secondary", "name": "b"}}}}]"#
        ),
    );
    wait_for(&client, addr, "c replacing a", |s| replica_names(s) == ["b", "c"]).await;
    wait_for(&client, addr, "c leading", |s| s["leader"] == "c").await;
    let body = client
        .get(format!("http://{addr}/federate"))
        .query(&[("match[]", "{__name__=~\".+\"}")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.lines().filter(|l| !l.starts_with('#')).count(), 2, "{body}");

    // A broken file keeps the last good set and counts a failure.
    std::fs::write(&file, "[{\"targets\": [").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
        if m.lines().any(|l| l.starts_with("promfed_sd_refresh_failures_total{mechanism=\"file\"}")) {
            break;
        }
        assert!(Instant::now() < deadline, "no refresh failure counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(replica_names(&status(&client, addr).await), ["b", "c"]);
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn one_template_yields_a_group_per_label_value() {
    promfed::serve::install_crypto_provider();
    let (a, b, c, d) =
        (fake_replica("a").await, fake_replica("b").await, fake_replica("c").await, fake_replica("d").await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.json");
    let target = |addr: SocketAddr, group: &str, role: &str| {
        format!(
            r#"{{"targets": ["{addr}"], "labels": {{"federation_group": "{group}", "federation_role": "{role}"}}}}"#
        )
    };
    write_targets(
        &file,
        &format!(
            "[{}, {}, {}, {}, {}]",
            target(a, "eu", "primary"),
            target(b, "eu", "secondary"),
            target(c, "us", "primary"),
            target(d, "us", "secondary"),
            r#"{"targets": ["127.0.0.1:1"], "labels": {"federation_role": "primary"}}"#
        ),
    );
    let yaml = format!(
        r#"
groups:
  - name: all-pairs
    discover_groups: true
    scrape_interval: 300ms
    scrape_timeout: 250ms
    labels: {{source: file, federation_group: $group}}
    file_sd_configs:
      - files: ["{}/*.json"]
        refresh_interval: 200ms
"#,
        dir.path().display()
    );
    let config = promfed::config::parse(&yaml, "test").unwrap();
    let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
    let addr = running.address;
    let client = reqwest::Client::new();
    let all = |client: reqwest::Client| async move {
        let v: serde_json::Value =
            client.get(format!("http://{addr}/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
        v["data"].as_array().unwrap().clone()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let groups = all(client.clone()).await;
        let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
        let led = groups.iter().all(|g| g["leader"].is_string() && g["replicas"][0]["healthy"] == true);
        if names == ["eu", "us"] && led {
            break;
        }
        assert!(Instant::now() < deadline, "two groups from one template: {groups:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = client
        .get(format!("http://{addr}/federate"))
        .query(&[("match[]", "up")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // One `up` per group (not per replica), told apart by the `$group` label.
    let ups: Vec<&str> = body.lines().filter(|l| l.starts_with("up{")).collect();
    assert_eq!(ups.len(), 2, "{body}");
    assert!(ups[0].starts_with("up{federation_group=\"eu\",job=\"x\",source=\"file\"}"), "{body}");
    assert!(ups[1].starts_with("up{federation_group=\"us\",job=\"x\",source=\"file\"}"), "{body}");
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("promfed_sd_rejected_targets{group=\"all-pairs\"} 1"),
        "ungrouped target reported: {metrics}"
    );

    // The us pair is gone from the file: its replicas stop; eu is untouched.
    write_targets(&file, &format!("[{}, {}]", target(a, "eu", "primary"), target(b, "eu", "secondary")));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let groups = all(client.clone()).await;
        let us = groups.iter().find(|g| g["name"] == "us").unwrap();
        if us["replicas"].as_array().unwrap().is_empty() {
            let eu = groups.iter().find(|g| g["name"] == "eu").unwrap();
            assert_eq!(eu["replicas"].as_array().unwrap().len(), 2);
            break;
        }
        assert!(Instant::now() < deadline, "us not emptied: {groups:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown();
    running.wait().await.unwrap();
}
