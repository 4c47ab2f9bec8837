//! The Remote-Write receiver (`POST /api/v1/write`) over TLS with basic auth, end to end through
//! promfed's listener: the spec's cases (sorted, repeated and empty labels, the name label,
//! staleness markers, timestamps, headers, ordering), the bad-input cases of the issue (each
//! answered with the right status, a message, a metric, and nothing stored), and the HA election
//! between two pushing replicas with a short failover timeout.
//!
//! Requests are built with promfed's prost structs and the `snap` crate, as a sender would. Real
//! Prometheus servers pushing to promfed are in `remote_write_prometheus.rs`.

mod common;

use common::{TlsFiles, metric_value, now_ms, text_series};
use promfed::remote::proto::{Label, Sample, TimeSeries, WriteRequest};
use promfed::run::Running;
use prost::Message as _;
use std::time::Duration;
use tokio::net::TcpListener;

const USER: &str = "pusher";
const PASSWORD: &str = "s3cret";

struct Receiver {
    running: Running,
    client: reqwest::Client,
    base: String,
    _tls: TlsFiles,
}

impl Receiver {
    /// promfed with only a receiver: HA on `cluster`/`__replica__`, 1 s update and 2 s failover
    /// timeouts, small limits to test them.
    async fn start(extra: &str) -> Receiver {
        let tls = TlsFiles::new();
        let yaml = format!(
            r#"
server:
  listen_address: "127.0.0.1:0"
  tls_server_config: {tls}
  basic_auth: {{username: {USER}, password: {PASSWORD}}}
remote_write_receiver:
  max_body_size: 64KiB
  max_decoded_size: 256KiB
  max_labels_per_series: 8
  max_label_name_length: 64
  max_label_value_length: 128
  ha_tracker:
    update_timeout: 1s
    failover_timeout: 2s
{extra}
"#,
            tls = tls.server_config_yaml(false)
        );
        let config = promfed::config::parse(&yaml, "remote_write_api test").expect("valid config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let running = promfed::run::start(config, Some(listener)).await.expect("promfed starts");
        let base = format!("https://127.0.0.1:{}", running.address.port());
        Receiver { client: tls.client(None), base, running, _tls: tls }
    }

    async fn post_raw(&self, body: Vec<u8>, headers: &[(&str, &str)], auth: bool) -> (u16, String) {
        let mut req = self.client.post(format!("{}/api/v1/write", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if auth {
            req = req.basic_auth(USER, Some(PASSWORD));
        }
        let resp = req.send().await.expect("POST /api/v1/write");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    /// Posts `request` as Prometheus does: snappy, protobuf, the spec's headers.
    async fn write(&self, request: &WriteRequest) -> (u16, String) {
        self.post_raw(snappy(&request.encode_to_vec()), SPEC_HEADERS, true).await
    }

    async fn federate(&self) -> String {
        let resp = self
            .client
            .get(format!("{}/federate?match%5B%5D=%7B__name__%3D~%22.%2B%22%7D", self.base))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("GET /federate");
        assert_eq!(resp.status(), 200);
        resp.text().await.expect("body")
    }

    /// The served series: every acknowledged push is in them (pushes are published coalesced,
    /// and `/federate` asks the store to publish a pending one first).
    async fn served(&self) -> std::collections::BTreeMap<String, common::Sample> {
        text_series(self.federate().await.as_bytes(), &[])
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.running.metrics.encode(), name, labels).unwrap_or(0.0)
    }

    async fn ha_status(&self) -> serde_json::Value {
        let resp = self
            .client
            .get(format!("{}/api/v1/status/ha", self.base))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("GET status");
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("JSON")
    }
}

const SPEC_HEADERS: &[(&str, &str)] = &[
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
    ("User-Agent", "promfed-test/1"),
];

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).expect("snappy")
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect(),
        samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
        exemplars: vec![],
    }
}

fn request(ts: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest { timeseries: ts, metadata: vec![] }
}

/// A series of `cluster`, pushed by `replica`.
fn pushed(name: &str, cluster: &str, replica: &str, extra: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut labels = vec![("__name__", name), ("__replica__", replica), ("cluster", cluster)];
    labels.extend_from_slice(extra);
    labels.sort();
    series(&labels, samples)
}

#[tokio::test]
async fn spec_cases_are_accepted_and_served() {
    let r = Receiver::start("").await;
    let t = now_ms();
    let stale = f64::from_bits(promfed::merge::group::STALE_NAN_BITS);
    let (status, body) = r
        .write(&request(vec![
            // Several samples of one series, in order; labels sorted with uppercase first (byte
            // order); an empty-valued label, which is the same as no label.
            series(
                &[("Zone", "z1"), ("__name__", "requests_total"), ("empty", ""), ("job", "api")],
                &[(t - 2000, 1.0), (t - 1000, 2.0), (t, 3.0)],
            ),
            // A recording-rule name with colons and an escaped-looking value.
            series(&[("__name__", "job:up:sum"), ("path", "C:\\tmp \"q\"\n")], &[(t, 1.0)]),
            // A staleness marker is accepted (and not served as a value).
            series(&[("__name__", "gone")], &[(t, stale)]),
        ]))
        .await;
    assert_eq!(status, 204, "{body}");
    let served = r.served().await;
    let keys: Vec<&str> = served.keys().map(String::as_str).collect();
    assert_eq!(keys, [r#"job:up:sum{path="C:\\tmp \"q\"\n"}"#, r#"requests_total{Zone="z1",job="api"}"#]);
    let last = served[r#"requests_total{Zone="z1",job="api"}"#];
    assert_eq!((last.value, last.timestamp_ms), (3.0, Some(t)), "the newest of the three samples");
    assert_eq!(r.metric("promfed_remote_write_samples_received_total", &[]), 5.0);
    assert_eq!(r.metric("promfed_remote_write_samples_dropped_total", &[("reason", "stale_marker")]), 1.0);
    assert_eq!(r.metric("promfed_merge_emitted_samples_total", &[("group", "push")]), 4.0);

    // Re-sending the same samples (a sender's retry) stores nothing twice.
    let (status, _) = r
        .write(&request(vec![series(
            &[("Zone", "z1"), ("__name__", "requests_total"), ("job", "api")],
            &[(t - 1000, 2.0), (t, 3.0)],
        )]))
        .await;
    assert_eq!(status, 204);
    assert_eq!(r.metric("promfed_remote_write_samples_dropped_total", &[("reason", "too_old")]), 2.0);
    assert_eq!(r.metric("promfed_merge_emitted_samples_total", &[("group", "push")]), 4.0);
    r.running.shutdown();
}

/// A bad request: what it is, its bytes, headers, the status, the refusal reason, a piece of the
/// message.
type Case<'a> = (&'a str, Vec<u8>, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);

#[tokio::test]
async fn bad_requests_are_refused_whole_with_a_reason() {
    let r = Receiver::start("").await;
    let t = now_ms();
    let good = || series(&[("__name__", "good"), ("job", "a")], &[(t, 1.0)]);
    // Each case: request bytes (already snappy unless said), headers, expected status, reason of
    // the refusal metric, and a piece of the message.
    let valid_then = |bad: TimeSeries| snappy(&request(vec![good(), bad]).encode_to_vec());
    let raw = request(vec![good()]).encode_to_vec();
    let big_label = "x".repeat(100);
    let cases: Vec<Case<'_>> = vec![
        ("corrupt snappy", b"\x05not snappy at all".to_vec(), SPEC_HEADERS, 400, "snappy", "snappy"),
        ("truncated protobuf", snappy(&raw[..raw.len() - 3]), SPEC_HEADERS, 400, "protobuf", "protobuf"),
        (
            "unsorted labels",
            valid_then(series(&[("__name__", "x"), ("b", "1"), ("a", "1")], &[(t, 1.0)])),
            SPEC_HEADERS,
            400,
            "unsorted_labels",
            "series 1: labels not sorted",
        ),
        (
            "repeated label",
            valid_then(series(&[("__name__", "x"), ("a", "1"), ("a", "2")], &[(t, 1.0)])),
            SPEC_HEADERS,
            400,
            "duplicate_label",
            "repeated",
        ),
        (
            "empty label name",
            valid_then(series(&[("", "v"), ("__name__", "x")], &[(t, 1.0)])),
            SPEC_HEADERS,
            400,
            "empty_label_name",
            "empty label name",
        ),
        ("no name label", valid_then(series(&[("job", "x")], &[(t, 1.0)])), SPEC_HEADERS, 400, "no_name", "__name__"),
        (
            "samples out of order",
            valid_then(series(&[("__name__", "x")], &[(t, 1.0), (t - 1, 1.0)])),
            SPEC_HEADERS,
            400,
            "samples_out_of_order",
            "out of timestamp order",
        ),
        (
            "too many labels",
            valid_then(series(
                &[
                    ("__name__", "x"),
                    ("a", "1"),
                    ("b", "1"),
                    ("c", "1"),
                    ("d", "1"),
                    ("e", "1"),
                    ("f", "1"),
                    ("g", "1"),
                    ("h", "1"),
                ],
                &[(t, 1.0)],
            )),
            SPEC_HEADERS,
            413,
            "too_many_labels",
            "9 labels, over the limit of 8",
        ),
        (
            "label value too long",
            valid_then(series(&[("__name__", "x"), ("a", &big_label.repeat(2))], &[(t, 1.0)])),
            SPEC_HEADERS,
            413,
            "label_value_too_long",
            "over the limit of 128",
        ),
        (
            "decoded body too large (a snappy bomb)",
            snappy(&request(vec![series(&[("__name__", "x"), ("a", &big_label)], &[(t, 1.0)]); 3000]).encode_to_vec()),
            SPEC_HEADERS,
            413,
            "decoded_too_large",
            "over the limit of 262144 bytes",
        ),
        (
            "gzip instead of snappy",
            snappy(&raw),
            &[("Content-Encoding", "gzip"), ("Content-Type", "application/x-protobuf")],
            415,
            "content_encoding",
            "only snappy",
        ),
        (
            "JSON content type",
            snappy(&raw),
            &[("Content-Encoding", "snappy"), ("Content-Type", "application/json")],
            415,
            "content_type",
            "application/x-protobuf",
        ),
        (
            "Remote-Write 2.0",
            snappy(&raw),
            &[
                ("Content-Encoding", "snappy"),
                ("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"),
            ],
            415,
            "content_type",
            "Remote-Write 1.0",
        ),
    ];
    for (what, body, headers, want, reason, message) in cases {
        let before = r.metric("promfed_remote_write_refused_requests_total", &[("reason", reason)]);
        let (status, text) = r.post_raw(body, headers, true).await;
        assert_eq!(status, want, "{what}: {text}");
        assert!(text.contains(message), "{what}: message {text:?} lacks {message:?}");
        let after = r.metric("promfed_remote_write_refused_requests_total", &[("reason", reason)]);
        assert_eq!(after, before + 1.0, "{what}: refusal counted under reason {reason}");
    }
    // A body over max_body_size (64 KiB) is refused before it is read whole.
    let (status, _) = r.post_raw(vec![0u8; 100 << 10], SPEC_HEADERS, true).await;
    assert_eq!(status, 413);
    // Nothing of any refused request was stored, not even its valid first series.
    assert!(r.served().await.is_empty(), "refused requests stored nothing");
    assert_eq!(r.metric("promfed_group_series", &[("group", "push")]), 0.0);
    // Without credentials: 401, as for /federate.
    let (status, _) = r.post_raw(snappy(&raw), SPEC_HEADERS, false).await;
    assert_eq!(status, 401);
    // After all that, a good request is taken.
    assert_eq!(r.write(&request(vec![good()])).await.0, 204);
    assert_eq!(r.served().await.len(), 1);
    r.running.shutdown();
}

#[tokio::test]
async fn one_replica_per_cluster_is_elected_and_fails_over() {
    let r = Receiver::start("").await;
    let t = now_ms();
    let push = |replica: &str, ts: i64, v: f64| {
        request(vec![
            pushed("req_total", "eu", replica, &[("job", "api")], &[(ts, v)]),
            pushed("temp", "eu", replica, &[], &[(ts, 20.0 + v)]),
        ])
    };
    // a pushes first: elected. b's pushes are answered 202 and dropped.
    assert_eq!(r.write(&push("a", t, 100.0)).await.0, 204);
    let (status, text) = r.write(&push("b", t + 100, 101.0)).await;
    assert_eq!(status, 202, "{text}");
    assert!(text.contains("not the elected"), "{text}");
    // Another cluster elects on its own.
    assert_eq!(r.write(&request(vec![pushed("temp", "us", "b", &[], &[(t, 1.0)])])).await.0, 204);
    assert_eq!(r.metric("promfed_remote_write_samples_dropped_total", &[("reason", "not_elected")]), 2.0);
    assert_eq!(r.metric("promfed_ha_elected_replica", &[("cluster", "eu"), ("replica", "a")]), 1.0);

    let served = r.served().await;
    assert_eq!(
        served.keys().map(String::as_str).collect::<Vec<_>>(),
        [r#"req_total{cluster="eu",job="api"}"#, r#"temp{cluster="eu"}"#, r#"temp{cluster="us"}"#],
        "the replica label is removed, the cluster label kept"
    );
    assert_eq!(served[r#"req_total{cluster="eu",job="api"}"#].value, 100.0);

    // a goes silent; within the failover timeout b is still refused, after it b takes over.
    assert_eq!(r.write(&push("b", t + 1000, 102.0)).await.0, 202);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(r.write(&push("b", t + 3000, 99.0)).await.0, 204);
    assert_eq!(r.metric("promfed_ha_failovers_total", &[("cluster", "eu")]), 1.0);
    assert_eq!(r.metric("promfed_ha_elected_replica", &[("cluster", "eu"), ("replica", "b")]), 1.0);
    assert_eq!(r.metric("promfed_ha_elected_replica", &[("cluster", "eu"), ("replica", "a")]), 0.0);
    // b's counter is behind a's: an offset keeps it from looking like a reset.
    let served = r.served().await;
    let c = served[r#"req_total{cluster="eu",job="api"}"#];
    assert_eq!((c.value, c.timestamp_ms), (100.0, Some(t + 3000)));
    // a comes back: refused, b stays elected.
    assert_eq!(r.write(&push("a", t + 4000, 104.0)).await.0, 202);

    let ha = r.ha_status().await;
    let eu = ha["data"].as_array().unwrap().iter().find(|c| c["cluster"] == "eu").expect("eu tracked").clone();
    assert_eq!((eu["elected"].as_str(), eu["failovers"].as_u64()), (Some("b"), Some(1)), "{ha:#}");
    let groups: serde_json::Value = r
        .client
        .get(format!("{}/api/v1/status/groups", r.base))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let group = groups["data"].as_array().unwrap().iter().find(|g| g["name"] == "push/eu").expect("group push/eu");
    assert_eq!(group["leader"], "b", "{group:#}");
    r.running.shutdown();
}

#[tokio::test]
async fn fill_from_non_elected_takes_series_the_elected_replica_lacks() {
    let r = Receiver::start("    fill_from_non_elected: true\n    fill_after: 5s").await;
    let t = now_ms();
    assert_eq!(r.write(&request(vec![pushed("up", "eu", "a", &[("i", "1")], &[(t, 1.0)])])).await.0, 204);
    // b has the same series (not taken: a sends it) and one a lacks (taken).
    let (status, _) = r
        .write(&request(vec![
            pushed("up", "eu", "b", &[("i", "1")], &[(t + 10, 0.0)]),
            pushed("up", "eu", "b", &[("i", "2")], &[(t + 10, 1.0)]),
        ]))
        .await;
    assert_eq!(status, 204, "part of the request was taken");
    let served = r.served().await;
    assert_eq!(served[r#"up{cluster="eu",i="1"}"#].value, 1.0, "a's value, not b's");
    assert_eq!(served[r#"up{cluster="eu",i="2"}"#].value, 1.0);
    assert_eq!(r.metric("promfed_merge_filled_samples_total", &[("group", "push/eu")]), 1.0);
    r.running.shutdown();
}

/// Issue 14: pushed series answer the query API from the live merged view — the latest sample
/// at the current time; a range over them says in a warning that promfed holds only that.
#[tokio::test]
async fn pushed_series_answer_queries_from_the_live_view() {
    let r = Receiver::start("").await;
    let t = now_ms();
    let (status, body) = r
        .write(&request(vec![pushed("pushed_gauge", "eu", "a", &[("job", "api")], &[(t - 1000, 4.0), (t, 5.0)])]))
        .await;
    assert_eq!(status, 204, "{body}");
    let query = |path: &'static str, params: Vec<(&'static str, String)>| {
        let req = r.client.get(format!("{}{path}", r.base)).basic_auth(USER, Some(PASSWORD)).query(&params);
        async move {
            let text = req.send().await.expect("query").text().await.expect("body");
            serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        }
    };
    let secs = |t: i64| format!("{}", t as f64 / 1000.0);
    let body = query("/api/v1/query", vec![("query", "pushed_gauge".into()), ("time", secs(t + 500))]).await;
    assert_eq!(body["data"]["result"][0]["value"][1], "5", "{body}");
    assert_eq!(body["data"]["result"][0]["metric"]["cluster"], "eu", "{body}");
    assert!(body["data"]["result"][0]["metric"].get("__replica__").is_none(), "{body}");
    assert!(body.get("warnings").is_none(), "an instant query needs no warning: {body}");
    let body = query(
        "/api/v1/query_range",
        vec![
            ("query", "pushed_gauge".into()),
            ("start", secs(t - 600_000)),
            ("end", secs(t + 500)),
            ("step", "60".into()),
        ],
    )
    .await;
    assert!(body["warnings"].to_string().contains("fed by Remote-Write"), "{body}");
    r.running.shutdown();
}
