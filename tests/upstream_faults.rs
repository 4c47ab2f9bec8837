//! Bad input from an upstream replica: each fault fails that replica's scrape with a clear
//! reason (in `promfed_scrape_errors_total{reason}` and the status API's `last_error`), the
//! other replica keeps the group served, and nothing panics.
//!
//! The upstreams here are `FaultyReplica`s: small in-process HTTP servers that misbehave on
//! purpose (real Prometheus never sends a gzip bomb). The good replica serves the real capture
//! from Prometheus 2.42 in `tests/fixtures/`.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use promfed::serve::{ServeOptions, TlsReloader, TlsSettings, install_crypto_provider};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const FIXTURE: &str = include_str!("fixtures/federate_prometheus_2.42.txt");

/// Serves `router` on 127.0.0.1:0, optionally over TLS with `tls`.
async fn serve(router: Router, tls: Option<std::sync::Arc<TlsReloader>>) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    tokio::spawn(promfed::serve::serve(listener, tls, router, ServeOptions::default(), token.clone()));
    (addr, token)
}

fn text(body: impl Into<Bytes>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body.into()).into_response()
}

/// The real capture with replica label `b` and every timestamp moved to now (the capture is
/// older than the lookback).
fn fresh_capture() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let mut out = String::with_capacity(FIXTURE.len());
    for line in FIXTURE.replace("replica=\"a\"", "replica=\"b\"").lines() {
        match line.rsplit_once(' ') {
            Some((rest, _ts)) if !line.starts_with('#') => out.push_str(&format!("{rest} {now}\n")),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The good replica: the real Prometheus capture, fresh timestamps.
fn good_replica() -> Router {
    Router::new().route("/federate", get(|| async { text(fresh_capture()) }))
}

fn faulty(handler: fn() -> Response) -> Router {
    Router::new().route("/federate", get(move || async move { handler() }))
}

struct Harness {
    running: promfed::run::Running,
    client: reqwest::Client,
    _upstreams: Vec<CancellationToken>,
}

impl Harness {
    async fn start(group_yaml: &str, upstreams: Vec<CancellationToken>) -> Harness {
        install_crypto_provider();
        let yaml = format!("groups:\n{group_yaml}");
        let config = promfed::config::parse(&yaml, "test").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = promfed::run::start(config, Some(listener)).await.unwrap();
        Harness { running, client: reqwest::Client::new(), _upstreams: upstreams }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.address)
    }

    async fn status(&self) -> serde_json::Value {
        let v: serde_json::Value =
            self.client.get(self.url("/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
        v["data"][0].clone()
    }

    /// Waits (bounded) until replica `a` has failed and `b` leads; returns a's last error.
    async fn wait_for_failover(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.status().await;
            let a = s["replicas"].as_array().unwrap().iter().find(|r| r["name"] == "a").cloned().unwrap();
            if s["leader"] == "b" && a["healthy"] == false && a["last_error"].is_string() {
                return a["last_error"].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no failover to b within 15s: {s:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }

    /// The group is still served in full from b.
    async fn assert_still_served(&self) {
        let body = self
            .client
            .get(self.url("/federate"))
            .query(&[("match[]", "{__name__=~\".+\"}")])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lines = body.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(lines, 940, "all 940 series of the capture are served from b");
        assert!(!body.contains("replica="), "replica label removed");
    }

    async fn assert_reason(&self, reason: &str) {
        let m = self.metrics().await;
        let needle = format!("promfed_scrape_errors_total{{group=\"g\",replica=\"a\",reason=\"{reason}\"}}");
        assert!(m.lines().any(|l| l.starts_with(&needle)), "{needle} missing in:\n{m}");
        assert!(m.contains("promfed_replica_up{group=\"g\",replica=\"a\"} 0"), "{m}");
    }
}

/// A group of a (primary) and b; `extra` adds keys, and may override the short default interval
/// (500ms) and timeout (400ms).
fn group_yaml(a: SocketAddr, b: SocketAddr, extra: &str) -> String {
    let mut timing = String::new();
    if !extra.contains("scrape_interval") {
        timing.push_str("    scrape_interval: 500ms\n");
    }
    if !extra.contains("scrape_timeout") {
        timing.push_str("    scrape_timeout: 400ms\n");
    }
    format!(
        "  - name: g\n{timing}{extra}    replicas:\n      - {{name: a, role: primary, address: \"{a}\"}}\n      - {{name: b, role: secondary, address: \"{b}\"}}\n"
    )
}

async fn run_case(bad: Router, extra: &str) -> (Harness, String) {
    let (a, ta) = serve(bad, None).await;
    let (b, tb) = serve(good_replica(), None).await;
    let h = Harness::start(&group_yaml(a, b, extra), vec![ta, tb]).await;
    let err = h.wait_for_failover().await;
    (h, err)
}

#[tokio::test]
async fn malformed_body_fails_with_the_line_number() {
    let (h, err) = run_case(faulty(|| text("up 1\nup{job=\"x\" 2\n")), "").await;
    assert!(err.contains("text body does not parse: line 2"), "{err}");
    h.assert_reason("parse").await;
    h.assert_still_served().await;
}

#[tokio::test]
async fn truncated_body_fails_the_whole_scrape() {
    // Cut the real capture in the middle of a line: no series may flip to b one by one.
    let (h, err) = run_case(faulty(|| text(&FIXTURE[..FIXTURE.len() / 2])), "").await;
    assert!(err.contains("truncated"), "{err}");
    h.assert_reason("parse").await;
    h.assert_still_served().await;
}

fn ten_megabyte_line() -> Response {
    static BODY: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    text(
        BODY.get_or_init(|| Bytes::from(format!("up{{a=\"{}\"}} 1\n", "x".repeat(10 << 20)).replace('"', "x"))).clone(),
    )
}

#[tokio::test]
async fn ten_megabyte_line_is_rejected() {
    ten_megabyte_line(); // built before the first scrape
    // A generous timeout: a debug build on a loaded machine reads 10 MB slowly, and this test is
    // about the parse error, not the clock.
    let (h, err) = run_case(faulty(ten_megabyte_line), "    scrape_interval: 3s\n    scrape_timeout: 2s\n").await;
    assert!(err.contains("does not parse: line 1"), "{err}");
    h.assert_reason("parse").await;
    h.assert_still_served().await;
}

#[tokio::test]
async fn body_over_the_limit_is_refused() {
    // The capture is 158 KB: b's fits, a's (three times as much) does not.
    let (h, err) = run_case(faulty(|| text(FIXTURE.repeat(3))), "    body_size_limit: 256KiB\n").await;
    assert!(err.contains("body exceeds 262144 bytes"), "{err}");
    h.assert_reason("body_too_large").await;
}

fn gzip_bomb() -> Response {
    // 256 MiB of zeros compress to about 256 KiB.
    static BOMB: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let bomb = BOMB.get_or_init(|| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        Bytes::from(enc.finish().unwrap())
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4"), (header::CONTENT_ENCODING, "gzip")], bomb.clone())
        .into_response()
}

#[tokio::test]
async fn gzip_bomb_stops_at_the_decompressed_limit() {
    let yaml_limit = "global: {decompressed_size_limit: 16MiB, body_size_limit: 16MiB}\n";
    gzip_bomb(); // build it before the first scrape, which would otherwise time out waiting
    let (a, ta) = serve(faulty(gzip_bomb), None).await;
    let (b, tb) = serve(good_replica(), None).await;
    install_crypto_provider();
    let yaml =
        format!("{yaml_limit}groups:\n{}", group_yaml(a, b, "    scrape_interval: 1s\n    scrape_timeout: 900ms\n"));
    let config = promfed::config::parse(&yaml, "test").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
    let h = Harness { running, client: reqwest::Client::new(), _upstreams: vec![ta, tb] };
    let err = h.wait_for_failover().await;
    assert!(err.contains("decompressed body exceeds 16777216 bytes"), "{err}");
    h.assert_reason("decompressed_too_large").await;
    h.assert_still_served().await;
}

#[tokio::test]
async fn wrong_content_type_is_named() {
    let (h, err) =
        run_case(faulty(|| ([(header::CONTENT_TYPE, "text/html")], "<html>login</html>").into_response()), "").await;
    assert!(err.contains("unsupported content type \"text/html\""), "{err}");
    h.assert_reason("content_type").await;
    h.assert_still_served().await;
}

#[tokio::test]
async fn http_error_status_fails_over() {
    let (h, err) = run_case(faulty(|| (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response()), "").await;
    assert!(err.contains("HTTP status 503"), "{err}");
    h.assert_reason("http_status").await;
    h.assert_still_served().await;
}

#[tokio::test]
async fn slow_upstream_times_out() {
    let slow = Router::new().route(
        "/federate",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            text("up 1\n")
        }),
    );
    let (h, err) = run_case(slow, "").await;
    assert!(err.contains("timed out after 400ms"), "{err}");
    h.assert_reason("timeout").await;
    h.assert_still_served().await;
}

#[tokio::test]
async fn dead_upstream_is_a_connect_error() {
    // Bind and drop: nothing listens on that port any more.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let (b, tb) = serve(good_replica(), None).await;
    let h = Harness::start(&group_yaml(dead, b, ""), vec![tb]).await;
    let err = h.wait_for_failover().await;
    assert!(err.contains("cannot connect"), "{err}");
    h.assert_reason("connect").await;
    h.assert_still_served().await;
}

#[tokio::test]
async fn untrusted_certificate_is_a_tls_error() {
    install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    // b's certificate is signed by the CA promfed trusts; a's is self-signed by someone else.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let b_key = rcgen::KeyPair::generate().unwrap();
    let b_cert =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&b_key, &issuer).unwrap();
    let a_self = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let ca_file = write("ca.crt", ca.pem());
    let tls = |cert: String, key: String, n: &str| {
        TlsReloader::load(TlsSettings {
            cert_file: write(&format!("{n}.crt"), cert),
            key_file: write(&format!("{n}.key"), key),
            client_ca_file: None,
            min_version: None,
        })
        .unwrap()
    };
    let (a, ta) = serve(good_replica(), Some(tls(a_self.cert.pem(), a_self.signing_key.serialize_pem(), "a"))).await;
    let (b, tb) = serve(good_replica(), Some(tls(b_cert.pem(), b_key.serialize_pem(), "b"))).await;
    let extra = format!("    scheme: https\n    tls_config: {{ca_file: \"{}\"}}\n", ca_file.display());
    let h = Harness::start(&group_yaml(a, b, &extra), vec![ta, tb]).await;
    let err = h.wait_for_failover().await;
    assert!(err.contains("TLS"), "{err}");
    h.assert_reason("tls").await;
    h.assert_still_served().await;
}
