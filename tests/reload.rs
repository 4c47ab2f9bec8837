//! Config reload through `POST /-/reload`: new groups start, groups that stay keep their state
//! (pin, leader, series), changed scrape settings restart only that group's loops, and an invalid
//! file is refused with its problems while the old config keeps running.
//!
//! The upstreams are `FakeReplica`s (in-process servers with a small federate body).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

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

fn write(path: &Path, groups: &[String]) {
    std::fs::write(path, format!("groups:\n{}", groups.concat())).unwrap();
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

    // A bad file is refused with its problem; the old config keeps running.
    std::fs::write(&file, "groups:\n  - name: g\n    scrape_intervall: 1s\n").unwrap();
    let (code, body) = reload(&client, addr).await;
    assert_eq!(code, 500);
    assert!(body.contains("scrape_intervall"), "{body}");
    let metrics = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("promfed_config_last_reload_successful 0"), "{metrics}");
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
    running.shutdown();
    running.wait().await.unwrap();
}
