//! promfed's own HTTP API over TLS, end to end: `/federate` (selectors, union, protobuf, gzip),
//! health and readiness, the leader pin API, basic auth, mTLS and `/metrics`.
//!
//! The upstreams are [`FakeReplica`]s: in-process servers answering `/federate` with the real
//! Prometheus 2.42 capture in `tests/fixtures/`, re-labelled per replica and re-stamped to a fixed
//! recent time (the capture's own timestamps are older than the lookback). These tests are about
//! promfed's API, not about Prometheus; `prometheus_pair.rs` runs real Prometheus servers.

mod common;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use common::{Pem, Sample, TlsFiles, now_ms, poll, protobuf_series, text_series};
use promfed::run::Running;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const FIXTURE: &str = include_str!("fixtures/federate_prometheus_2.42.txt");
const PROTOBUF: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
const ALL: &str = r#"{__name__=~".+"}"#;

/// A stand-in for one Prometheus replica's `/federate`: a fixed body, optionally answered late.
struct FakeReplica {
    address: SocketAddr,
    stop: CancellationToken,
}

impl FakeReplica {
    /// Serves the fixture as replica `name` with every timestamp set to `timestamp_ms`.
    async fn start(name: &str, timestamp_ms: i64, delay: Duration) -> Self {
        let body: Arc<str> = fixture_as(name, timestamp_ms).into();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake replica");
        let address = listener.local_addr().expect("address");
        let app = Router::new().route(
            "/federate",
            get(move || {
                let body = body.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body.to_string())
                        .into_response()
                }
            }),
        );
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        FakeReplica { address, stop }
    }
}

impl Drop for FakeReplica {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The fixture with `replica="a"` replaced by `replica="{name}"` and every sample's timestamp set
/// to `timestamp_ms`.
fn fixture_as(name: &str, timestamp_ms: i64) -> String {
    let mut out = String::with_capacity(FIXTURE.len());
    for line in FIXTURE.lines() {
        if line.starts_with('#') {
            out.push_str(line);
        } else {
            let (sample, _ts) = line.rsplit_once(' ').expect("fixture lines carry a timestamp");
            out.push_str(&sample.replace("replica=\"a\"", &format!("replica=\"{name}\"")));
            out.push(' ');
            out.push_str(&timestamp_ms.to_string());
        }
        out.push('\n');
    }
    out
}

/// promfed started over TLS in front of fake replicas `a` (primary) and `b`.
struct Harness {
    tls: TlsFiles,
    running: Running,
    base: String,
    client: reqwest::Client,
    _replicas: Vec<FakeReplica>,
}

struct Options {
    delay: Duration,
    /// Extra lines under `server:` (indented two spaces).
    server: &'static str,
    mtls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { delay: Duration::ZERO, server: "", mtls: false }
    }
}

impl Harness {
    async fn start(options: Options) -> Harness {
        common::init_tracing();
        let ts = now_ms() - 1000;
        let a = FakeReplica::start("a", ts, options.delay).await;
        let b = FakeReplica::start("b", ts, options.delay).await;
        let tls = TlsFiles::new();
        let yaml = format!(
            r#"
server:
  listen_address: "127.0.0.1:0"
  tls_server_config: {tls_config}
{server}
groups:
  - name: pair
    scrape_interval: 1s
    scrape_timeout: 900ms
    replicas:
      - {{name: a, role: primary, address: "{a}"}}
      - {{name: b, role: secondary, address: "{b}"}}
"#,
            tls_config = tls.server_config_yaml(options.mtls),
            server = options.server,
            a = a.address,
            b = b.address,
        );
        let config = promfed::config::parse(&yaml, "federate_api test").expect("valid config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind promfed");
        let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
        let base = format!("https://127.0.0.1:{}", running.address.port());
        let client =
            if options.mtls { tls.client(Some(&tls.pki.client("global-prometheus"))) } else { tls.client(None) };
        Harness { tls, running, base, client, _replicas: vec![a, b] }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A `/federate` URL with these `match[]` values.
    fn federate_url(&self, selectors: &[&str]) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(selectors.iter().map(|s| ("match[]", *s)))
            .finish();
        self.url(&format!("/federate?{query}"))
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn federate(&self, selectors: &[&str]) -> BTreeMap<String, Sample> {
        let resp = self.client.get(self.federate_url(selectors)).send().await.expect("GET /federate");
        assert_eq!(resp.status(), 200, "/federate {selectors:?}");
        text_series(&resp.bytes().await.expect("body"), &[])
    }

    async fn status(&self) -> serde_json::Value {
        let json = json_body(self.get("/api/v1/status/groups").await).await;
        json["data"][0].clone()
    }

    /// Waits until promfed is ready and both replicas have been scraped successfully.
    async fn wait_until_both_scraped(&self) {
        poll("both replicas to be scraped", Duration::from_secs(15), Duration::from_millis(100), || async {
            let status = self.status().await;
            let healthy = status["replicas"].as_array()?.iter().all(|r| r["healthy"] == true);
            healthy.then_some(())
        })
        .await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.running.shutdown();
    }
}

/// The fixture's series as promfed should serve them: replica label removed.
fn expected_series() -> BTreeMap<String, Sample> {
    text_series(fixture_as("a", 0).as_bytes(), &["replica"])
}

/// The body as JSON (this reqwest is built without its `json` feature).
async fn json_body(resp: reqwest::Response) -> serde_json::Value {
    let body = resp.text().await.expect("body");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {body}"))
}

// -------------------------------------------------------------------------------------------------
// /federate

#[tokio::test]
async fn federate_without_match_is_a_bad_request_saying_so() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    let resp = h.get("/federate").await;
    assert_eq!(resp.status(), 400);
    let json = json_body(resp).await;
    assert_eq!(json["status"], "error");
    assert!(json["error"].as_str().is_some_and(|e| e.contains("match[]")), "{json}");
}

#[tokio::test]
async fn federate_rejects_a_bad_selector_and_names_it() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    for bad in ["rate(x[5m])", r#"{job=""}"#, "up{"] {
        let resp = h.client.get(h.federate_url(&[ALL, bad])).send().await.expect("GET /federate");
        assert_eq!(resp.status(), 400, "{bad}");
        let json = json_body(resp).await;
        assert_eq!(json["errorType"], "bad_data", "{bad}: {json}");
        let error = json["error"].as_str().unwrap_or_default();
        // The message quotes the selector as Rust's `{:?}` does.
        assert!(error.contains(&format!("{bad:?}")), "{bad}: error does not name the selector: {error}");
    }
}

#[tokio::test]
async fn federate_serves_every_series_once_without_the_replica_label() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    let served = h.federate(&[ALL]).await;
    let expected = expected_series();
    assert!(expected.len() > 900);
    assert!(served.keys().eq(expected.keys()), "{}", common::key_diff(&expected, &served, 10));
    for (key, sample) in &expected {
        assert_eq!(served[key].value.to_bits(), sample.value.to_bits(), "{key}");
    }
}

#[tokio::test]
async fn several_match_parameters_are_a_union() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    let up = h.federate(&["up"]).await;
    let node = h.federate(&[r#"{job="node"}"#]).await;
    let goroutines = h.federate(&["go_goroutines"]).await;
    assert!(!up.is_empty() && !node.is_empty() && !goroutines.is_empty());

    let union = h.federate(&["up", "go_goroutines"]).await;
    let mut expected = up.clone();
    expected.extend(goroutines.clone());
    assert_eq!(union.len(), up.len() + goroutines.len(), "disjoint selectors add up");
    assert_eq!(union, expected);

    // Overlapping selectors: a series matched by both is served once.
    let overlapping = h.federate(&["up", r#"{job="node"}"#]).await;
    let mut expected = up;
    expected.extend(node.clone());
    assert_eq!(overlapping, expected);
    assert!(overlapping.len() < expected.len() + node.len());
}

#[tokio::test]
async fn protobuf_is_served_when_accepted_with_the_same_series_as_text() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    let text = h.federate(&[ALL]).await;
    let resp = h.client.get(h.federate_url(&[ALL])).header(header::ACCEPT, PROTOBUF).send().await.expect("GET");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()[header::CONTENT_TYPE].to_str().expect("ascii").to_owned();
    assert!(content_type.replace(' ', "").starts_with(PROTOBUF), "{content_type}");
    let decoded = protobuf_series(&resp.bytes().await.expect("body"), &[]);
    assert!(decoded.keys().eq(text.keys()), "{}", common::key_diff(&text, &decoded, 10));
    for (key, sample) in &text {
        let got = decoded[key];
        assert_eq!((got.value.to_bits(), got.timestamp_ms), (sample.value.to_bits(), sample.timestamp_ms), "{key}");
    }

    // promfed's own Accept (a promfed federating another) gets protobuf; q=0 refuses it.
    let own = promfed::config::validate::accept_header(&["PrometheusProto".into(), "PrometheusText0.0.4".into()]);
    for (accept, protobuf) in [
        (own.as_str(), true),
        (&format!("{PROTOBUF};q=0.5"), true),
        (&format!("{PROTOBUF}; q=0.0,text/plain;version=0.0.4"), false),
        (&format!("{PROTOBUF};q=0"), false),
        ("text/plain;version=0.0.4", false),
    ] {
        let resp = h.client.get(h.federate_url(&["up"])).header(header::ACCEPT, accept).send().await.expect("GET");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()[header::CONTENT_TYPE].to_str().expect("ascii").to_owned();
        assert_eq!(content_type.starts_with("application/vnd.google.protobuf"), protobuf, "Accept: {accept}");
    }
}

#[tokio::test]
async fn gzip_is_served_when_accepted() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    let plain = h.client.get(h.federate_url(&[ALL])).send().await.expect("GET").bytes().await.expect("body");
    // This reqwest is built without its gzip feature: the body arrives as sent.
    let resp = h.client.get(h.federate_url(&[ALL])).header(header::ACCEPT_ENCODING, "gzip").send().await.expect("GET");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    let compressed = resp.bytes().await.expect("body");
    assert_eq!(&compressed[..2], &[0x1f, 0x8b], "gzip magic");
    assert!(compressed.len() < plain.len() / 3, "{} vs {} bytes", compressed.len(), plain.len());
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut inflated).expect("valid gzip");
    assert_eq!(inflated, plain, "same body once decompressed (timestamps are fixed, so nothing changed)");

    // Quality values (RFC 9110 §12.5.3): any q above 0 accepts gzip, q=0 refuses it.
    for (accept_encoding, gzipped) in [
        ("gzip;q=0.5", true),
        ("deflate, gzip; q=0.8", true),
        ("br;q=1.0, gzip;q=0.01", true),
        ("gzip;q=0", false),
        ("gzip;q=0.000", false),
        ("identity", false),
    ] {
        let resp = h
            .client
            .get(h.federate_url(&[ALL]))
            .header(header::ACCEPT_ENCODING, accept_encoding)
            .send()
            .await
            .expect("GET");
        assert_eq!(resp.status(), 200);
        let encoding = resp.headers().get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").to_owned());
        assert_eq!(encoding.as_deref() == Some("gzip"), gzipped, "Accept-Encoding: {accept_encoding}: {encoding:?}");
    }
}

// -------------------------------------------------------------------------------------------------
// Health and readiness

#[tokio::test]
async fn ready_is_unavailable_until_the_first_merge_while_healthy_always_answers() {
    // Replicas answering after 700ms (within the 900ms timeout): nothing can be merged before.
    let h = Harness::start(Options { delay: Duration::from_millis(700), ..Options::default() }).await;
    assert_eq!(h.get("/-/ready").await.status(), 503);
    assert_eq!(h.get("/-/healthy").await.status(), 200);
    assert_eq!(h.client.get(h.federate_url(&[ALL])).send().await.expect("GET").status(), 503);

    poll("/-/ready to answer 200", Duration::from_secs(10), Duration::from_millis(50), || async {
        (h.get("/-/ready").await.status() == 200).then_some(())
    })
    .await;
    assert_eq!(h.get("/-/healthy").await.status(), 200);
    h.wait_until_both_scraped().await;
    assert!(!h.federate(&[ALL]).await.is_empty());
}

// -------------------------------------------------------------------------------------------------
// Leader API

#[tokio::test]
async fn pin_makes_the_replica_leader_and_unpin_restores_the_primary() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    assert_eq!(h.status().await["leader"], "a");

    let resp = h.client.post(h.url("/api/v1/leader/pair")).body(r#"{"replica":"b"}"#).send().await.expect("POST");
    assert_eq!(resp.status(), 200);
    let answered = json_body(resp).await;
    assert_eq!(answered["data"]["pinned"], "b", "{answered}");
    assert_eq!(answered["data"]["leader"], "b", "b is healthy: the pin applies at once; {answered}");
    let status = h.status().await;
    assert_eq!((&status["pinned"], &status["leader"]), (&json!("b"), &json!("b")), "{status}");
    let metrics = h.get("/metrics").await.text().await.expect("body");
    assert_eq!(common::metric_value(&metrics, "promfed_group_pinned", &[("replica", "b")]), Some(1.0));

    let resp = h.client.delete(h.url("/api/v1/leader/pair")).send().await.expect("DELETE");
    assert_eq!(resp.status(), 200);
    let answered = json_body(resp).await;
    assert_eq!(answered["data"]["pinned"], serde_json::Value::Null, "{answered}");
    // a has long had its hold-down's worth of good scrapes: it leads again at the next election.
    poll("a to lead again after the unpin", Duration::from_secs(10), Duration::from_millis(100), || async {
        (h.status().await["leader"] == "a").then_some(())
    })
    .await;
}

#[tokio::test]
async fn leader_api_rejects_unknown_groups_unknown_replicas_and_bad_bodies() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    let post = |group: &str, body: &'static str| h.client.post(h.url(&format!("/api/v1/leader/{group}"))).body(body);

    let resp = post("nope", r#"{"replica":"b"}"#).send().await.expect("POST");
    assert_eq!(resp.status(), 404);
    assert!(json_body(resp).await["error"].as_str().is_some_and(|e| e.contains("nope")));
    assert_eq!(h.client.delete(h.url("/api/v1/leader/nope")).send().await.expect("DELETE").status(), 404);

    let resp = post("pair", r#"{"replica":"zz"}"#).send().await.expect("POST");
    assert_eq!(resp.status(), 404);
    assert!(json_body(resp).await["error"].as_str().is_some_and(|e| e.contains("zz")));

    for body in ["", "{", r#"{"replica": 3}"#, r#"{"replica":"b","extra":1}"#, "replica=b"] {
        let resp = post("pair", body).send().await.expect("POST");
        assert_eq!(resp.status(), 400, "body {body:?}");
        assert_eq!(json_body(resp).await["errorType"], "bad_data", "body {body:?}");
    }
    let status = h.status().await;
    assert_eq!((&status["pinned"], &status["leader"]), (&json!(null), &json!("a")), "unchanged");
}

// -------------------------------------------------------------------------------------------------
// Authentication and mTLS

#[tokio::test]
async fn basic_auth_protects_everything_but_the_health_checks() {
    let server = "  basic_auth: {username: global, password: s3cret}";
    let h = Harness::start(Options { server, ..Options::default() }).await;
    let federate = h.federate_url(&["up"]);
    for url in [federate.as_str(), &h.url("/metrics"), &h.url("/api/v1/status/groups")] {
        let resp = h.client.get(url).send().await.expect("GET");
        assert_eq!(resp.status(), 401, "{url} without credentials");
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE), "{url}: a challenge");
        let wrong = h.client.get(url).basic_auth("global", Some("guess")).send().await.expect("GET");
        assert_eq!(wrong.status(), 401, "{url} with a wrong password");
    }
    assert_eq!(h.get("/-/healthy").await.status(), 200);

    poll("promfed to be ready", Duration::from_secs(10), Duration::from_millis(50), || async {
        (h.get("/-/ready").await.status() == 200).then_some(())
    })
    .await;
    for url in [federate.as_str(), &h.url("/metrics"), &h.url("/api/v1/status/groups")] {
        let resp = h.client.get(url).basic_auth("global", Some("s3cret")).send().await.expect("GET");
        assert_eq!(resp.status(), 200, "{url} with credentials");
    }
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate_from_the_ca() {
    let h = Harness::start(Options { mtls: true, ..Options::default() }).await;
    // h.client presents a certificate from the CA.
    assert_eq!(h.get("/-/healthy").await.status(), 200);

    let anonymous = h.tls.client(None);
    let refused = anonymous.get(h.url("/-/healthy")).send().await;
    assert!(refused.is_err(), "a client without a certificate was served: {refused:?}");

    let stranger: Pem = common::Pki::new("other CA").client("mallory");
    let refused = h.tls.client(Some(&stranger)).get(h.url("/-/healthy")).send().await;
    assert!(refused.is_err(), "a client with a certificate from another CA was served: {refused:?}");

    assert_eq!(h.get("/-/healthy").await.status(), 200, "still serving trusted clients");
}

// -------------------------------------------------------------------------------------------------
// /metrics

#[tokio::test]
async fn metrics_expose_replica_group_scrape_and_http_series() {
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    assert_eq!(h.get("/-/healthy").await.status(), 200);
    let resp = h.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.expect("body");
    for (name, labels) in [
        ("promfed_replica_up", vec![("group", "pair"), ("replica", "a")]),
        ("promfed_replica_up", vec![("group", "pair"), ("replica", "b")]),
        ("promfed_group_leader", vec![("group", "pair"), ("replica", "a")]),
    ] {
        assert_eq!(common::metric_value(&body, name, &labels), Some(1.0), "{name}{labels:?} in:\n{body}");
    }
    assert_eq!(common::metric_value(&body, "promfed_group_leader", &[("group", "pair"), ("replica", "b")]), Some(0.0));
    let duration = common::metric_value(&body, "promfed_scrape_duration_seconds", &[("replica", "a")]);
    assert!(duration.is_some_and(|d| d > 0.0 && d < 1.0), "promfed_scrape_duration_seconds = {duration:?}");
    let requests =
        common::metric_value(&body, "promfed_http_requests_total", &[("handler", "/-/healthy"), ("code", "200")]);
    assert!(requests >= Some(1.0), "promfed_http_requests_total for /-/healthy = {requests:?}\n{body}");
}

// -------------------------------------------------------------------------------------------------
// Issue 13: request targets sent unencoded, as `curl -g` and runbooks send them

/// The GETs of the API with unencoded query strings, and their encoded forms.
fn unencoded_requests() -> Vec<(&'static str, String)> {
    let encode = |target: &str| {
        let (path, query) = target.split_once('?').expect("a query");
        let pairs: Vec<(String, String)> = query
            .split('&')
            .map(|p| p.split_once('=').map_or((p.to_owned(), String::new()), |(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        format!("{path}?{query}")
    };
    [
        r#"/federate?match[]={job="node"}"#,
        r#"/federate?match[]={job="node", __name__=~"node_cpu.*"}&match[]=up{job="prometheus"}"#,
        r#"/federate?match[]={job=""}"#,
        r#"/api/v1/status/groups?x="y""#,
        r#"/api/v1/status/ha?x=<y>"#,
        r#"/metrics?x="1""#,
        r#"/-/healthy?x="1""#,
        r#"/-/ready?x="1""#,
    ]
    .into_iter()
    .map(|raw| (raw, encode(raw)))
    .collect()
}

/// The part of a response both forms must share: the status, the series of a `/federate` body,
/// the `status` and `errorType` of a JSON body, the first line of anything else.
fn comparable(path: &str, status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if path.starts_with("/federate") && status == 200 {
        let series = text_series(body, &[]);
        assert!(!series.is_empty(), "{path}: no series");
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        series.keys().for_each(|k| k.hash(&mut hasher));
        return format!("{status} {} series, keys hashed to {:x}", series.len(), hasher.finish());
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        return format!("{status} {} {} {}", json["status"], json["errorType"], json["error"]);
    }
    format!("{status} {}", text.lines().next().unwrap_or(""))
}

#[tokio::test]
async fn unencoded_query_strings_are_answered_like_their_encoded_form_over_http1_and_h2() {
    use common::raw_http::{H2Client, H2Outcome, connect, h1_get};
    let h = Harness::start(Options::default()).await;
    h.wait_until_both_scraped().await;
    let address = format!("127.0.0.1:{}", h.running.address.port());
    let ca = h.tls.ca();
    let requests = unencoded_requests();
    let mut expected = Vec::new();
    for (raw, encoded) in &requests {
        let resp = h.get(encoded).await;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.expect("body");
        expected.push(comparable(raw, status, &body));
    }
    assert!(expected[2].starts_with("400") && expected[2].contains("bad_data"), "{}", expected[2]);

    // HTTP/1.1, one connection per request, the target as typed.
    for ((raw, _), want) in requests.iter().zip(&expected) {
        let mut io = connect(&address, Some(&ca), b"http/1.1").await;
        let resp = h1_get(&mut *io, raw, "").await;
        assert_eq!(&comparable(raw, resp.status, &resp.body), want, "HTTP/1.1 {raw}: {}", resp.text());
    }
    // HTTP/2, all on one connection whose client indexes its headers: encoded requests before
    // and after the unencoded ones (the HPACK tables must stay in step throughout).
    let io = connect(&address, Some(&ca), b"h2").await;
    let mut client = H2Client::start(io, &address).await;
    let mut h2_order: Vec<usize> = vec![0];
    h2_order.extend(0..requests.len());
    h2_order.push(3);
    for (round, &i) in h2_order.iter().enumerate() {
        let (raw, encoded) = &requests[i];
        let path: &str = if round == 0 || round == h2_order.len() - 1 { encoded } else { raw };
        let H2Outcome::Response(resp) = client.get(path, &[("x-scope-orgid", "team-a")]).await else {
            panic!("h2 {path}: the stream was reset");
        };
        assert_eq!(comparable(raw, resp.status, &resp.body), expected[i], "h2 {path}: {}", resp.text());
    }

    // Each rewrite counted once, by protocol.
    let metrics = h.get("/metrics").await.text().await.expect("metrics");
    let count = |protocol: &str| {
        common::metric_value(&metrics, "promfed_http_request_targets_encoded_total", &[("protocol", protocol)])
    };
    assert_eq!(count("http1"), Some(requests.len() as f64), "{metrics}");
    assert_eq!(count("h2"), Some(requests.len() as f64), "{metrics}");
}
