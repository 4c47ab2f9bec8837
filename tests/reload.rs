//! Config reload through `POST /-/reload`: new groups start, groups that stay keep their state
//! (pin, leader, series: no gap, no counter jump), changed scrape settings restart only that
//! group's loops, an invalid file is refused with its problems while the old config keeps
//! running, and groups found by a `discover_groups` template go when the reloaded template no
//! longer finds them.
//!
//! The upstreams are `FakeReplica`s (in-process servers with a small federate body).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

async fn fake_replica(name: &'static str) -> SocketAddr {
    common::fake_replica(move |now| {
        format!("up{{job=\"{name}\",replica=\"{name}\"}} 1 {now}\nreqs_total{{replica=\"{name}\"}} 5 {now}\n")
    })
    .await
}

fn group(name: &str, interval: &str, a: SocketAddr, b: SocketAddr) -> String {
    format!(
        "  - name: {name}\n    scrape_interval: {interval}\n    scrape_timeout: 250ms\n    labels: {{federation_group: {name}}}\n    replicas:\n      - {{name: a, role: primary, address: \"{a}\"}}\n      - {{name: b, role: secondary, address: \"{b}\"}}\n"
    )
}

/// The config file at `path`; its `data_dir` (leader pins) next to it, not in the checkout.
fn write(path: &Path, groups: &[String]) {
    let data = path.with_file_name("data");
    std::fs::write(path, format!("data_dir: \"{}\"\ngroups:\n{}", data.display(), groups.concat())).unwrap();
}

async fn groups(client: &reqwest::Client, addr: SocketAddr) -> serde_json::Value {
    let v: serde_json::Value =
        client.get(format!("http://{addr}/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
    v["data"].clone()
}

async fn wait_for(client: &reqwest::Client, addr: SocketAddr, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let g = groups(client, addr).await;
        if ok(&g) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {g:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reload(client: &reqwest::Client, addr: SocketAddr) -> (u16, String) {
    let r = client.post(format!("http://{addr}/-/reload")).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn reload_adds_groups_keeps_state_and_refuses_bad_files() {
    promfed::serve::install_crypto_provider();
    let (a, b, c, d) =
        (fake_replica("a").await, fake_replica("b").await, fake_replica("c").await, fake_replica("d").await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("promfed.yml");
    write(&file, &[group("g", "300ms", a, b)]);
    let config = promfed::config::load(&file).unwrap();
    let running = promfed::run::start_from_file(
        config,
        Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
        Some(file.clone()),
    )
    .await
    .unwrap();
    let addr = running.address;
    let client = reqwest::Client::new();
    wait_for(&client, addr, "g healthy", |g| g[0]["replicas"][1]["healthy"] == true && g[0]["leader"] == "a").await;
    // The load at start counts as the first successful one, as in Prometheus.
    let reloaded_at = |metrics: &str| {
        common::metric_value(metrics, "promfed_config_last_reload_success_timestamp_seconds", &[]).unwrap_or(0.0)
    };
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    let started_at = reloaded_at(&metrics);
    assert!(started_at > 1.6e9, "{metrics}");
    let pin = client.post(format!("http://{addr}/api/v1/leader/g")).body(r#"{"replica":"b"}"#).send().await.unwrap();
    assert_eq!(pin.status(), 200);

    // Add group h.
    write(&file, &[group("g", "300ms", a, b), group("h", "300ms", c, d)]);
    assert_eq!(reload(&client, addr).await, (200, "configuration reloaded\n".to_owned()));
    wait_for(&client, addr, "h running", |g| {
        g.as_array().unwrap().len() == 2 && g[1]["replicas"][0]["healthy"] == true
    })
    .await;
    let g = groups(&client, addr).await;
    assert_eq!(g[0]["pinned"], "b", "g kept its state: {g:#}");
    assert_eq!(g[0]["leader"], "b");
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    let added_at = reloaded_at(&metrics);
    assert!(added_at > started_at, "{metrics}");

    // A bad file is refused with its problem; the old config keeps running.
    std::fs::write(&file, "groups:\n  - name: g\n    scrape_intervall: 1s\n").unwrap();
    let (code, body) = reload(&client, addr).await;
    assert_eq!(code, 500);
    assert!(body.contains("scrape_intervall"), "{body}");
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("promfed_config_last_reload_successful 0"), "{metrics}");
    assert_eq!(reloaded_at(&metrics), added_at, "a failed reload leaves the time of the last good one");
    assert_eq!(groups(&client, addr).await.as_array().unwrap().len(), 2);

    // Changing g's interval restarts g's loops only; its pin survives; h is removed.
    write(&file, &[group("g", "400ms", a, b)]);
    assert_eq!(reload(&client, addr).await.0, 200);
    let g = groups(&client, addr).await;
    assert_eq!(g.as_array().unwrap().len(), 1);
    assert_eq!(g[0]["pinned"], "b");
    wait_for(&client, addr, "g scraping again", |g| g[0]["replicas"][1]["healthy"] == true).await;
    let body = client
        .get(format!("http://{addr}/federate"))
        .query(&[("match[]", "{__name__=~\".+\"}")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("federation_group=\"g\""), "{body}");
    assert!(!body.contains("federation_group=\"h\""), "h's series are gone with h: {body}");
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("promfed_config_last_reload_successful 1"), "{metrics}");
    assert!(reloaded_at(&metrics) > added_at, "{metrics}");
    running.shutdown();
    running.wait().await.unwrap();
}

/// A fake replica whose counter `reqs_total` counts its scrapes from `base`.
async fn counting_replica(name: &'static str, base: u64) -> SocketAddr {
    let scrapes = Arc::new(AtomicU64::new(0));
    common::fake_replica(move |now| {
        let v = base + scrapes.fetch_add(1, Ordering::Relaxed);
        format!("up{{job=\"{name}\",replica=\"{name}\"}} 1 {now}\nreqs_total{{replica=\"{name}\"}} {v} {now}\n")
    })
    .await
}

async fn federate(client: &reqwest::Client, addr: SocketAddr) -> String {
    let r = client.get(format!("http://{addr}/federate")).query(&[("match[]", "{__name__=~\".+\"}")]).send().await;
    r.unwrap().text().await.unwrap()
}

/// The value and timestamp of `reqs_total{federation_group="<group>"}` in a federate body.
fn counter_of(body: &str, group: &str) -> Option<(f64, i64)> {
    let prefix = format!("reqs_total{{federation_group=\"{group}\"}} ");
    let line = body.lines().find_map(|l| l.strip_prefix(prefix.as_str()))?;
    let mut parts = line.split(' ');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Reads `/federate` every 20 ms until `stop` and checks that `group`'s counter is in every
/// answer, that its timestamp never goes back and its value never decreases. Returns how many
/// answers were read and how many distinct timestamps were seen.
fn watch_counter(
    client: reqwest::Client,
    addr: SocketAddr,
    group: &'static str,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let (mut reads, mut distinct, mut last) = (0, 0, None::<(f64, i64)>);
        while !stop.is_cancelled() {
            let body = federate(&client, addr).await;
            let Some((v, ts)) = counter_of(&body, group) else {
                panic!("read {reads}: {group}'s counter is missing (a gap):\n{body}");
            };
            if let Some((lv, lts)) = last {
                assert!(ts >= lts, "read {reads}: {group}'s timestamp went back from {lts} to {ts}");
                assert!(v >= lv, "read {reads}: {group}'s counter went down from {lv} to {v} (a counter jump)");
                if ts > lts {
                    distinct += 1;
                }
            }
            last = Some((v, ts));
            reads += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (reads, distinct)
    })
}

/// Issue 3: a surviving group keeps serving its counter across reloads — reloads that change
/// nothing, that restart its loops (a new interval), that add and remove another group — with
/// no answer missing it, no timestamp going back and no decrease. The primary's counter is far
/// above the secondary's, so a merge state rebuilt from scratch would risk taking the
/// secondary's lower value; a fresh group would have no series at all for a moment.
#[tokio::test]
async fn reload_keeps_a_surviving_group_without_gap_or_counter_jump() {
    promfed::serve::install_crypto_provider();
    let (a, b) = (counting_replica("a", 1_000_000).await, counting_replica("b", 0).await);
    let (c, d) = (fake_replica("c").await, fake_replica("d").await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("promfed.yml");
    write(&file, &[group("g", "300ms", a, b)]);
    let config = promfed::config::load(&file).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = promfed::run::start_from_file(config, Some(listener), Some(file.clone())).await.unwrap();
    let addr = running.address;
    let client = reqwest::Client::new();
    wait_for(&client, addr, "g led by a", |g| g[0]["leader"] == "a" && g[0]["replicas"][1]["healthy"] == true).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter_of(&federate(&client, addr).await, "g").is_none() {
        assert!(Instant::now() < deadline, "g's counter never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stop = CancellationToken::new();
    let watcher = watch_counter(client.clone(), addr, "g", stop.clone());
    let configs = [
        vec![group("g", "300ms", a, b)],
        vec![group("g", "400ms", a, b)],
        vec![group("g", "400ms", a, b), group("h", "300ms", c, d)],
        vec![group("g", "300ms", a, b)],
        vec![group("g", "300ms", a, b)],
    ];
    for (i, groups) in configs.iter().enumerate() {
        write(&file, groups);
        assert_eq!(reload(&client, addr).await.0, 200, "reload {i}");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    stop.cancel();
    let (reads, distinct) = watcher.await.unwrap();
    assert!(reads > 50 && distinct > 5, "the counter kept moving: {reads} reads, {distinct} new timestamps");
    let body = federate(&client, addr).await;
    let (v, _) = counter_of(&body, "g").unwrap();
    assert!(v >= 1_000_000.0, "still the primary's counter: {v}");
    let g = groups(&client, addr).await;
    assert_eq!(g[0]["failovers"], 0, "no reload caused a failover: {g:#}");
    running.shutdown();
    running.wait().await.unwrap();
}

fn write_targets(path: &Path, targets: &[(SocketAddr, &str, &str, &str)]) {
    let entries: Vec<String> = targets
        .iter()
        .map(|(addr, group, role, name)| {
            format!(
                r#"{{"targets": ["{addr}"], "labels": {{"federation_group": "{group}", "federation_role": "{role}", "name": "{name}"}}}}"#
            )
        })
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("[{}]", entries.join(", "))).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn template(files: &Path) -> String {
    format!(
        r#"  - name: pairs
    discover_groups: true
    scrape_interval: 100ms
    scrape_timeout: 90ms
    labels: {{federation_group: $group}}
    file_sd_configs:
      - files: ["{}"]
        refresh_interval: 1h
    relabel_configs:
      - {{source_labels: [name], target_label: __federation_replica__}}
"#,
        files.display()
    )
}

fn names(g: &serde_json::Value) -> Vec<String> {
    g.as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap().to_owned()).collect()
}

/// Issue 3: a group found by a `discover_groups` template is removed when a reload changes the
/// template so that it no longer finds the group (its replicas stop being scraped, it leaves
/// status, `/federate` and the metrics, as a removed configured group does), and when a reload
/// removes the template; a group the reloaded template still finds keeps its merge state (pin,
/// series: no gap, no counter jump).
#[tokio::test]
async fn reload_removes_found_groups_the_template_no_longer_finds() {
    promfed::serve::install_crypto_provider();
    let (a, b) = (counting_replica("a", 1_000_000).await, counting_replica("b", 0).await);
    let (c, d) = (counting_replica("c", 1_000_000).await, counting_replica("d", 0).await);
    let (e, f) = (fake_replica("e").await, fake_replica("f").await);
    let dir = tempfile::tempdir().unwrap();
    let (both, eu_only) = (dir.path().join("both.json"), dir.path().join("eu.json"));
    let eu = [(a, "eu", "primary", "a"), (b, "eu", "secondary", "b")];
    let us = [(c, "us", "primary", "c"), (d, "us", "secondary", "d")];
    write_targets(&both, &[eu[0], eu[1], us[0], us[1]]);
    write_targets(&eu_only, &eu);
    let file = dir.path().join("promfed.yml");
    write(&file, &[template(&both)]);
    let config = promfed::config::load(&file).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = promfed::run::start_from_file(config, Some(listener), Some(file.clone())).await.unwrap();
    let addr = running.address;
    let client = reqwest::Client::new();
    wait_for(&client, addr, "eu and us led", |g| {
        names(g) == ["eu", "us"] && g.as_array().unwrap().iter().all(|g| g["replicas"][1]["healthy"] == true)
    })
    .await;
    let pin = client.post(format!("http://{addr}/api/v1/leader/eu")).body(r#"{"replica":"b"}"#).send().await.unwrap();
    assert_eq!(pin.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = federate(&client, addr).await;
        if counter_of(&body, "eu").is_some() && counter_of(&body, "us").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "both counters served: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The template now reads a file that only yields eu.
    let stop = CancellationToken::new();
    let watcher = watch_counter(client.clone(), addr, "eu", stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    write(&file, &[template(&eu_only)]);
    assert_eq!(reload(&client, addr).await, (200, "configuration reloaded\n".to_owned()));
    wait_for(&client, addr, "us removed", |g| names(g) == ["eu"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let (reads, distinct) = watcher.await.unwrap();
    assert!(reads > 20 && distinct > 3, "eu kept moving across the reload: {reads} reads, {distinct} new timestamps");
    let g = groups(&client, addr).await;
    assert_eq!(g[0]["pinned"], "b", "eu kept its merge state: {g:#}");
    assert_eq!(g[0]["leader"], "b", "{g:#}");
    let body = federate(&client, addr).await;
    assert!(counter_of(&body, "eu").is_some(), "{body}");
    assert!(!body.contains("federation_group=\"us\""), "us' series went with it: {body}");
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    for gone in
        ["promfed_group_up{group=\"us\"}", "promfed_sd_targets{group=\"us\"}", "promfed_replica_up{group=\"us\""]
    {
        assert!(!metrics.contains(gone), "{gone} is still exported:\n{metrics}");
    }
    // us' replicas are no longer scraped: their scrape counters stop.
    let scrapes = |m: &str| common::metric_value(m, "promfed_scrapes_total", &[("group", "us"), ("replica", "c")]);
    let before = scrapes(&metrics);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(scrapes(&metrics), before, "c is still scraped");

    // The template is removed (a configured group instead): eu goes too.
    write(&file, &[group("g", "300ms", e, f)]);
    assert_eq!(reload(&client, addr).await.0, 200);
    wait_for(&client, addr, "only g", |g| names(g) == ["g"] && g[0]["replicas"][1]["healthy"] == true).await;
    let body = federate(&client, addr).await;
    assert!(!body.contains("federation_group=\"eu\""), "eu's series went with it: {body}");
    running.shutdown();
    running.wait().await.unwrap();
}
