//! File discovery end to end: replicas named in a target file are scraped and merged; when the
//! file changes the scrape loops follow; targets without a valid role are reported, not guessed;
//! a broken file keeps the last good replica set.
//!
//! Files are re-read when their modification time changes (checked every
//! [`promfed::discovery::file::CHECK_EVERY`], however long `refresh_interval` is) and on
//! `refresh_interval` (even without a visible change); the last-success timestamp moves with
//! good refreshes only. Several promfeds can split one template's groups with `hashmod`.
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

fn pair(primary: (SocketAddr, &str), secondary: (SocketAddr, &str)) -> String {
    format!(
        r#"[{{"targets": ["{}"], "labels": {{"federation_role": "primary", "name": "{}"}}}},
            {{"targets": ["{}"], "labels": {{"federation_role": "secondary", "name": "{}"}}}}]"#,
        primary.0, primary.1, secondary.0, secondary.1
    )
}

fn one_group(dir: &Path, refresh: &str) -> String {
    format!(
        r#"
groups:
  - name: g
    scrape_interval: 300ms
    scrape_timeout: 250ms
    file_sd_configs:
      - files: ["{}/*.json"]
        refresh_interval: {refresh}
    relabel_configs:
      - {{source_labels: [name], target_label: __federation_replica__}}
"#,
        dir.display()
    )
}

/// Writes `text` into `path` in place and gives the file back its previous modification time:
/// a change that only a forced re-read (`refresh_interval`) can see.
fn write_keeping_mtime(path: &Path, text: &str) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::File::options().write(true).open(path).unwrap().set_modified(mtime).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
}

/// Polls status until `ok`, for at most `limit`; returns how long it took.
async fn time_until(
    client: &reqwest::Client,
    addr: SocketAddr,
    limit: Duration,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let s = status(client, addr).await;
        if ok(&s) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what} not seen within {limit:?}: {s:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 3: with a `refresh_interval` of an hour, a file whose modification time changes is
/// re-read within the change poll ([`CHECK_EVERY`]); a change that keeps the modification time
/// is not seen (so the next test's quick re-read really is the refresh interval's).
#[tokio::test]
async fn a_changed_file_is_reread_without_waiting_for_refresh_interval() {
    use promfed::discovery::file::CHECK_EVERY;
    promfed::serve::install_crypto_provider();
    let (a, b, c) = (fake_replica("a").await, fake_replica("b").await, fake_replica("c").await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pair.json");
    write_targets(&file, &pair((a, "a"), (b, "b")));
    let config = promfed::config::parse(&one_group(dir.path(), "1h"), "test").unwrap();
    let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
    let (addr, client) = (running.address, reqwest::Client::new());
    wait_for(&client, addr, "a and b", |s| replica_names(s) == ["a", "b"]).await;

    write_targets(&file, &pair((c, "c"), (b, "b")));
    let took = time_until(&client, addr, CHECK_EVERY + Duration::from_secs(2), "c replacing a", |s| {
        replica_names(s) == ["b", "c"]
    })
    .await;
    eprintln!("change seen after {took:?} (change poll {CHECK_EVERY:?}, refresh_interval 1h)");

    write_keeping_mtime(&file, &pair((a, "a"), (b, "b")));
    tokio::time::sleep(CHECK_EVERY + Duration::from_secs(1)).await;
    assert_eq!(
        replica_names(&status(&client, addr).await),
        ["b", "c"],
        "an unchanged modification time is not re-read"
    );
    running.shutdown();
    running.wait().await.unwrap();
}

/// Issue 3: every `refresh_interval` the files are re-read whether or not their modification
/// time changed.
#[tokio::test]
async fn files_are_reread_on_refresh_interval() {
    promfed::serve::install_crypto_provider();
    let (a, b, c) = (fake_replica("a").await, fake_replica("b").await, fake_replica("c").await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pair.json");
    write_targets(&file, &pair((a, "a"), (b, "b")));
    let config = promfed::config::parse(&one_group(dir.path(), "1s"), "test").unwrap();
    let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
    let (addr, client) = (running.address, reqwest::Client::new());
    wait_for(&client, addr, "a and b", |s| replica_names(s) == ["a", "b"]).await;

    write_keeping_mtime(&file, &pair((c, "c"), (b, "b")));
    let took =
        time_until(&client, addr, Duration::from_secs(4), "c replacing a", |s| replica_names(s) == ["b", "c"]).await;
    eprintln!("change with the old modification time seen after {took:?} (refresh_interval 1s)");
    running.shutdown();
    running.wait().await.unwrap();
}

fn last_success(metrics: &str) -> Option<f64> {
    common::metric_value(metrics, "promfed_sd_last_success_timestamp_seconds", &[("mechanism", "file")])
}

fn refresh_failures(metrics: &str) -> f64 {
    common::metric_value(metrics, "promfed_sd_refresh_failures_total", &[("mechanism", "file")]).unwrap_or(0.0)
}

/// Issue 3: `promfed_sd_last_success_timestamp_seconds{mechanism="file"}` is the time of the
/// last good refresh: set at start, moving forward while refreshes succeed, standing still
/// (while failures are counted) while a file is broken, moving again once it is fixed.
#[tokio::test]
async fn last_success_timestamp_moves_with_good_refreshes_only() {
    promfed::serve::install_crypto_provider();
    let (a, b) = (fake_replica("a").await, fake_replica("b").await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pair.json");
    write_targets(&file, &pair((a, "a"), (b, "b")));
    let config = promfed::config::parse(&one_group(dir.path(), "500ms"), "test").unwrap();
    let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
    let (addr, client) = (running.address, reqwest::Client::new());
    let metrics = || async { client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap() };
    wait_for(&client, addr, "a and b", |s| replica_names(s) == ["a", "b"]).await;
    let first = last_success(&metrics().await).expect("set after the first refresh");
    assert!((common::now_secs() - first).abs() < 5.0, "a wall-clock time: {first}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = last_success(&metrics().await).unwrap();
    assert!(second > first, "moves forward: {first} then {second}");

    // A broken file: failures counted, the timestamp stands still.
    std::fs::write(&file, "[{\"targets\": [").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while refresh_failures(&metrics().await) == 0.0 {
        assert!(Instant::now() < deadline, "no failure counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stuck = last_success(&metrics().await).unwrap();
    let failures = refresh_failures(&metrics().await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = metrics().await;
    assert_eq!(last_success(&m), Some(stuck), "no good refresh while the file is broken");
    assert!(refresh_failures(&m) > failures, "every refresh fails");

    write_targets(&file, &pair((a, "a"), (b, "b")));
    let deadline = Instant::now() + Duration::from_secs(5);
    while last_success(&metrics().await) == Some(stuck) {
        assert!(Instant::now() < deadline, "the timestamp did not move after the fix");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown();
    running.wait().await.unwrap();
}

/// Issue 3: `hashmod` on the group label splits one template's groups between several
/// promfeds (here two, modulus 2, each keeping its shard): every group is served by exactly
/// one of them, with both replicas.
#[tokio::test]
async fn hashmod_splits_groups_between_two_promfeds() {
    promfed::serve::install_crypto_provider();
    let (a, b) = (fake_replica("a").await, fake_replica("b").await);
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<String> = (1..=8).map(|i| format!("pair-{i}")).collect();
    let targets: Vec<String> = all
        .iter()
        .flat_map(|g| {
            [(a, "primary"), (b, "secondary")].map(|(addr, role)| {
                format!(
                    r#"{{"targets": ["{addr}"], "labels": {{"federation_group": "{g}", "federation_role": "{role}"}}}}"#
                )
            })
        })
        .collect();
    write_targets(&dir.path().join("all.json"), &format!("[{}]", targets.join(",\n")));
    let mut served = Vec::new();
    for shard in 0..2 {
        let yaml = format!(
            r#"
groups:
  - name: all-pairs
    discover_groups: true
    scrape_interval: 300ms
    scrape_timeout: 250ms
    file_sd_configs:
      - files: ["{}/*.json"]
    relabel_configs:
      - {{source_labels: [federation_group], modulus: 2, target_label: __tmp_shard, action: hashmod}}
      - {{source_labels: [__tmp_shard], regex: "{shard}", action: keep}}
"#,
            dir.path().display()
        );
        let config = promfed::config::parse(&yaml, "test").unwrap();
        let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
        let (addr, client) = (running.address, reqwest::Client::new());
        // Discovery runs once at start (refresh_interval 5m): wait until every group found is led.
        let deadline = Instant::now() + Duration::from_secs(10);
        let names = loop {
            let v: serde_json::Value =
                client.get(format!("http://{addr}/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
            let groups = v["data"].as_array().unwrap().clone();
            if !groups.is_empty()
                && groups.iter().all(|g| g["leader"] == a.to_string() && g["replicas"].as_array().unwrap().len() == 2)
            {
                break groups.iter().map(|g| g["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
            }
            assert!(Instant::now() < deadline, "shard {shard}: {groups:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        served.push(names);
        running.shutdown();
        running.wait().await.unwrap();
    }
    eprintln!("shard 0 serves {:?}, shard 1 serves {:?}", served[0], served[1]);
    assert!(!served[0].is_empty() && !served[1].is_empty(), "both promfeds have work: {served:?}");
    assert!(served[0].iter().all(|g| !served[1].contains(g)), "no group served twice: {served:?}");
    let mut union: Vec<String> = served.concat();
    union.sort();
    assert_eq!(union, all, "every group served once");
}
