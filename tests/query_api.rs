//! The query API's edges (issue 14): Prometheus' errors for bad queries, times, steps and
//! limits; a replica answering remote read with garbage, a truncated stream, a cut chunk, a 5xx
//! or nothing at all while its twin (a real Prometheus 2.42) answers — the answer comes from the
//! twin with a warning naming what was wrong, in time, and promfed keeps serving; both replicas
//! failing — a partial answer with a warning; Grafana's calls (form POST, label values, the
//! `1+1` health check, buildinfo); and real clients: `promtool query` 2.42 and vmalert 1.79
//! evaluating the repo's alert rules against promfed.

mod common;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use common::{Prometheus, now_ms};
use prost::Message;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

const STEP: i64 = 15_000;

/// 40 minutes of `rr_temperature{instance="i0".."i5"}` every 15 s, ending `end`.
fn history(end: i64) -> String {
    let mut om = String::from("# TYPE rr_temperature gauge\n");
    for i in 0..6 {
        for k in 0..160i64 {
            let t = end - (159 - k) * STEP;
            let v = (k as f64 * 0.1 + i as f64).sin() * 10.0;
            om.push_str(&format!("rr_temperature{{instance=\"i{i}\"}} {v} {}.{:03}\n", t / 1000, t % 1000));
        }
    }
    om.push_str("# EOF\n");
    om
}

/// How the faulty replica answers `POST /api/v1/read`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum Fault {
    Hang = 0,
    Status500 = 1,
    Garbage = 2,
    Truncated = 3,
    CutChunk = 4,
    /// A 500 after half a second: requests overlap.
    Slow500 = 5,
}

/// A fault injector standing in for a broken replica's remote-read endpoint.
async fn faulty_replica(mode: Arc<AtomicU8>) -> SocketAddr {
    faulty_replica_counting(mode, Default::default(), Default::default()).await
}

/// Counts, on drop, a hanging answer that its client gave up on.
struct Abandoned(Arc<std::sync::atomic::AtomicUsize>);
impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// [`faulty_replica`] counting the remote reads it receives in `reads`, and in `abandoned` the
/// hanging ones whose client went away.
async fn faulty_replica_counting(
    mode: Arc<AtomicU8>,
    reads: Arc<std::sync::atomic::AtomicUsize>,
    abandoned: Arc<std::sync::atomic::AtomicUsize>,
) -> SocketAddr {
    let app = Router::new().route(
        "/api/v1/read",
        post(move || {
            let (mode, reads, abandoned) = (mode.clone(), reads.clone(), abandoned.clone());
            async move {
                reads.fetch_add(1, Ordering::SeqCst);
                let streamed =
                    [(header::CONTENT_TYPE, "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")];
                match mode.load(Ordering::SeqCst) {
                    0 => {
                        let guard = Abandoned(abandoned);
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        std::mem::forget(guard);
                        "late".into_response()
                    }
                    1 => {
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "overloaded: too many queries").into_response()
                    }
                    2 => (streamed, vec![0x05, 1, 2, 3, 4, 9, 9, 9, 9, 9]).into_response(),
                    3 => (streamed, frame(&[1, 2, 3])[..12].to_vec()).into_response(),
                    5 => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "slow and broken").into_response()
                    }
                    _ => (streamed, frame(&[0, 9, 0xff])).into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// One frame of a streamed answer holding one `rr_temperature` series whose chunk is `data`.
fn frame(data: &[u8]) -> Vec<u8> {
    use promfed::query::proto::{Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, Label};
    let message = ChunkedReadResponse {
        chunked_series: vec![ChunkedSeries {
            labels: vec![
                Label { name: "__name__".into(), value: "rr_temperature".into() },
                Label { name: "instance".into(), value: "i0".into() },
            ],
            chunks: vec![Chunk {
                min_time_ms: 0,
                max_time_ms: i64::MAX,
                r#type: ChunkEncoding::Xor as i32,
                data: data.to_vec(),
            }],
        }],
        query_index: 0,
    }
    .encode_to_vec();
    let mut out = vec![message.len() as u8];
    out.extend_from_slice(&crc32c::crc32c(&message).to_be_bytes());
    out.extend_from_slice(&message);
    out
}

struct Setup {
    _real: Prometheus,
    mode: Arc<AtomicU8>,
    /// Remote reads the faulty replica received, and hanging ones given up by promfed.
    reads: Arc<std::sync::atomic::AtomicUsize>,
    abandoned: Arc<std::sync::atomic::AtomicUsize>,
    running: promfed::run::Running,
    base: String,
    client: reqwest::Client,
    end: i64,
}

async fn setup(binary: &std::path::Path, query_section: &str) -> Setup {
    let end = (now_ms() - 60_000) / STEP * STEP;
    let real =
        Prometheus::start_backfilled(binary, "query-api", "global:\n  external_labels: {replica: a}\n", &history(end))
            .await;
    let mode = Arc::new(AtomicU8::new(Fault::Status500 as u8));
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let abandoned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let faulty = faulty_replica_counting(mode.clone(), reads.clone(), abandoned.clone()).await;
    let yaml = format!(
        r#"
server:
  listen_address: "127.0.0.1:0"
query: {query_section}
groups:
  - name: pair
    scrape_interval: 1s
    scrape_timeout: 900ms
    replicas:
      - {{name: a, role: primary, address: "{}"}}
      - {{name: b, role: secondary, address: "{faulty}"}}
"#,
        real.address()
    );
    let (running, base) = common::start_promfed(&yaml, "query_api").await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    common::wait_for_groups(&client, &base, "the group's replicas", |d| {
        d[0]["replicas"].as_array().is_some_and(|r| r.len() == 2)
    })
    .await;
    Setup { _real: real, mode, reads, abandoned, running, base, client, end }
}

async fn get(s: &Setup, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    let r = s.client.get(format!("{}{path}", s.base)).query(params).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}")))
}

async fn futures_join4<T>(
    a: impl std::future::Future<Output = T>,
    b: impl std::future::Future<Output = T>,
    c: impl std::future::Future<Output = T>,
    d: impl std::future::Future<Output = T>,
) -> [T; 4] {
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    [a, b, c, d]
}

fn secs(t: i64) -> String {
    format!("{}", t as f64 / 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_replica_makes_a_warning_and_its_twin_answers() {
    let Some(binary) = common::prometheus_binary() else { return };
    let s = setup(&binary, "{timeout: 4s}").await;
    let q = [("query", "count(rr_temperature)".to_string()), ("time", secs(s.end))];
    for (fault, said) in [
        (Fault::Status500, "answered HTTP 500: overloaded: too many queries"),
        (Fault::Garbage, "a frame"),
        (Fault::Truncated, "the stream ends inside a frame"),
        (Fault::CutChunk, "XOR chunk"),
        (Fault::Hang, "no answer within"),
    ] {
        s.mode.store(fault as u8, Ordering::SeqCst);
        let started = Instant::now();
        let (status, body) = get(&s, "/api/v1/query", &q).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{fault:?}: {body}");
        assert_eq!(body["data"]["result"][0]["value"][1], "6", "{fault:?}: the real replica's six series: {body}");
        let warnings = body["warnings"].to_string();
        assert!(warnings.contains("replica b") && warnings.contains(said), "{fault:?}: {warnings}");
        assert!(took < Duration::from_secs(4), "{fault:?} answered in {took:?}, within the query timeout");
    }
    // Each failure is counted by replica and reason on promfed's /metrics.
    let metrics = s.client.get(format!("{}/metrics", s.base)).send().await.expect("metrics").text().await.unwrap();
    for reason in ["http_status", "malformed", "chunk", "no_answer"] {
        let line = format!("promfed_remote_read_errors_total{{group=\"pair\",replica=\"b\",reason=\"{reason}\"}} ");
        assert!(metrics.lines().any(|l| l.starts_with(&line) && !l.ends_with(" 0")), "{line}\n{metrics}");
    }
    assert!(!metrics.contains("promfed_remote_read_errors_total{group=\"pair\",replica=\"a\""), "{metrics}");
    assert!(metrics.contains("promfed_remote_reads_total{group=\"pair\",replica=\"a\"} 5"), "{metrics}");
    // Four identical queries at once (a dashboard open in four browsers) are answered by one
    // fetch: the replica is asked once.
    s.mode.store(Fault::Slow500 as u8, Ordering::SeqCst);
    let before = s.reads.load(Ordering::SeqCst);
    let answers = futures_join4(
        get(&s, "/api/v1/query", &q),
        get(&s, "/api/v1/query", &q),
        get(&s, "/api/v1/query", &q),
        get(&s, "/api/v1/query", &q),
    )
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["data"]["result"][0]["value"][1], "6", "{body}");
    }
    assert_eq!(
        s.reads.load(Ordering::SeqCst) - before,
        1,
        "one remote read of the slow replica for four identical queries"
    );
    // Four different queries over the same selector and window at once (a dashboard's panels)
    // share one fetch: the replica is asked once, each query evaluated on its own.
    let before = s.reads.load(Ordering::SeqCst);
    let at = |query: &str| [("query", query.to_string()), ("time", secs(s.end))];
    let (count, sum, max, compare) = (
        at("count(rr_temperature)"),
        at("sum(rr_temperature)"),
        at("max(rr_temperature)"),
        at("count(rr_temperature > -1000)"),
    );
    let answers = futures_join4(
        get(&s, "/api/v1/query", &count),
        get(&s, "/api/v1/query", &sum),
        get(&s, "/api/v1/query", &max),
        get(&s, "/api/v1/query", &compare),
    )
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(answers[0].1["data"]["result"][0]["value"][1], "6", "{}", answers[0].1);
    assert_eq!(answers[3].1["data"]["result"][0]["value"][1], "6", "{}", answers[3].1);
    assert_ne!(answers[1].1["data"]["result"], answers[2].1["data"]["result"], "sum and max differ");
    assert_eq!(s.reads.load(Ordering::SeqCst) - before, 1, "one remote read of the slow replica for four queries");
    // A client that goes away cancels the fetches: promfed drops its remote read of the
    // hanging replica at once, not at the query timeout.
    s.mode.store(Fault::Hang as u8, Ordering::SeqCst);
    let before = s.abandoned.load(Ordering::SeqCst);
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().expect("client");
    let gave_up = impatient.get(format!("{}/api/v1/query", s.base)).query(&q).send().await;
    assert!(gave_up.is_err(), "the client timed out");
    common::poll(
        "promfed to drop its read of the hanging replica",
        Duration::from_secs(2),
        Duration::from_millis(50),
        || async { (s.abandoned.load(Ordering::SeqCst) > before).then_some(()) },
    )
    .await;
    // promfed still serves, and the failures did not stay.
    s.mode.store(Fault::Status500 as u8, Ordering::SeqCst);
    let healthy = s.client.get(format!("{}/-/healthy", s.base)).send().await.expect("healthy");
    assert_eq!(healthy.status(), 200);
    let (status, body) = get(&s, "/api/v1/query", &q).await;
    assert_eq!((status, body["data"]["result"][0]["value"][1].clone()), (200, Value::from("6")), "{body}");
    s.running.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_errors_for_bad_requests() {
    let Some(binary) = common::prometheus_binary() else { return };
    let s = setup(&binary, "{max_samples: 100}").await;
    let t = secs(s.end);
    // (path, parameters, status, errorType, part of the message)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("/api/v1/query", vec![("query", "sum(".into())], 400, "bad_data", "invalid parameter \"query\""),
        ("/api/v1/query", vec![], 400, "bad_data", "no expression found"),
        (
            "/api/v1/query",
            vec![("query", "up".into()), ("time", "yesterday".into())],
            400,
            "bad_data",
            "cannot parse \"yesterday\" to a valid timestamp",
        ),
        (
            "/api/v1/query",
            vec![("query", "sort_by_label(up)".into())],
            400,
            "bad_data",
            "unknown function with name \"sort_by_label\"",
        ),
        (
            "/api/v1/query",
            vec![("query", "rr_temperature[40m]".into()), ("time", t.clone())],
            422,
            "execution",
            "query processing would load too many samples into memory",
        ),
        (
            "/api/v1/query_range",
            vec![("query", "up".into()), ("start", "100".into()), ("end", "50".into()), ("step", "10".into())],
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range",
            vec![("query", "up".into()), ("start", "0".into()), ("end", "100".into()), ("step", "0".into())],
            400,
            "bad_data",
            "zero or negative query resolution step widths are not accepted",
        ),
        (
            "/api/v1/query_range",
            vec![("query", "up".into()), ("start", "0".into()), ("end", "20000".into()), ("step", "1".into())],
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "rr_temperature[5m]".into()),
                ("start", secs(s.end - 60_000)),
                ("end", t.clone()),
                ("step", "15".into()),
            ],
            400,
            "bad_data",
            "invalid expression type \"range vector\" for range query",
        ),
        ("/api/v1/series", vec![], 400, "bad_data", "no match[] parameter provided"),
        ("/api/v1/series", vec![("match[]", "rate(x[5m])".into())], 400, "bad_data", "is not a series selector"),
        ("/api/v1/label/0bad/values", vec![], 400, "bad_data", "invalid label name"),
    ];
    for (path, params, status, kind, message) in cases {
        let (got, body) = get(&s, path, &params).await;
        assert_eq!(got, status, "{path} {params:?}: {body}");
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["errorType"], kind, "{path} {params:?}: {body}");
        assert!(body["error"].as_str().unwrap_or("").contains(message), "{path} {params:?}: {body}");
    }
    s.running.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_calls_and_real_clients() {
    let Some(binary) = common::prometheus_binary() else { return };
    let s = setup(&binary, "{}").await;
    // Grafana: the `1+1` health check, buildinfo, a form POST, label values, series.
    let (status, body) = get(&s, "/api/v1/query", &[("query", "1+1".into()), ("time", secs(s.end))]).await;
    assert_eq!((status, body["data"]["result"][1].clone()), (200, Value::from("2")), "{body}");
    let (_, body) = get(&s, "/api/v1/status/buildinfo", &[]).await;
    assert!(body["data"]["version"].as_str().is_some_and(|v| v.starts_with("2.")), "{body}");
    assert!(body["data"].get("features").is_none());
    let form = [
        ("query", "avg by (instance) (rr_temperature)".to_string()),
        ("start", secs(s.end - 600_000)),
        ("end", secs(s.end)),
        ("step", "60".to_string()),
    ];
    let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter()).finish();
    let r = s
        .client
        .post(format!("{}/api/v1/query_range", s.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(encoded)
        .send()
        .await
        .expect("POST");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["resultType"], "matrix", "{body}");
    assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(6), "{body}");
    assert_eq!(body["data"]["result"][0]["values"].as_array().map(Vec::len), Some(11));
    let (_, body) =
        get(&s, "/api/v1/label/instance/values", &[("start", secs(s.end - 600_000)), ("end", secs(s.end))]).await;
    assert_eq!(body["data"], serde_json::json!(["i0", "i1", "i2", "i3", "i4", "i5"]), "{body}");
    let (_, body) = get(
        &s,
        "/api/v1/series",
        &[
            ("match[]", "rr_temperature{instance=\"i2\"}".into()),
            ("start", secs(s.end - 600_000)),
            ("end", secs(s.end)),
        ],
    )
    .await;
    assert_eq!(body["data"], serde_json::json!([{"__name__": "rr_temperature", "instance": "i2"}]), "{body}");
    let (_, body) = get(&s, "/api/v1/labels", &[("start", secs(s.end - 600_000)), ("end", secs(s.end))]).await;
    assert_eq!(body["data"], serde_json::json!(["__name__", "instance"]), "{body}");

    // promtool 2.42 as a client.
    let promtool = common::promtool_binary().expect("promtool comes with prometheus");
    let run = |args: &[&str]| {
        let out = Command::new(&promtool).args(args).output().expect("promtool");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = run(&["query", "instant", "--time", &secs(s.end), &s.base, "count(rr_temperature)"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("=> 6 @"), "{out}");
    let (code, out) = run(&[
        "query",
        "range",
        "--start",
        &secs(s.end - 120_000),
        "--end",
        &secs(s.end),
        "--step",
        "1m",
        &s.base,
        "sum(rr_temperature)",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.matches(" @[").count(), 3, "three points: {out}");
    let (code, out) = run(&[
        "query",
        "series",
        "--match",
        "rr_temperature{instance=\"i1\"}",
        "--start",
        &secs(s.end - 600_000),
        "--end",
        &secs(s.end),
        &s.base,
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("instance=\"i1\""), "{out}");
    let (code, out) =
        run(&["query", "labels", "--start", &secs(s.end - 600_000), "--end", &secs(s.end), &s.base, "instance"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("i5"), "{out}");
    s.running.shutdown();
}

/// vmalert 1.79 (Debian's victoria-metrics) evaluating the repo's alert rules with promfed as
/// its datasource: every rule is evaluated, none with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vmalert_evaluates_the_repos_rules_against_promfed() {
    let Some(binary) = common::prometheus_binary() else { return };
    let Some(vmalert) = common::vm::vmalert_binary() else { return };
    let s = setup(&binary, "{}").await;
    // Where vmalert sends firing alerts: a sink (Alertmanager's API is not what is tested).
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sink_address = sink.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(sink, Router::new().fallback(|| async { "ok" })).await });
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/promfed.rules.yml");
    let port = common::free_port();
    let child = Command::new(vmalert)
        .arg(format!("-datasource.url={}", s.base))
        .arg(format!("-rule={}", rules.display()))
        .arg("-evaluationInterval=1s")
        .arg(format!("-notifier.url=http://{sink_address}"))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn vmalert");
    let _guard = common::ChildGuard::new(child);
    let url = format!("http://127.0.0.1:{port}/api/v1/rules");
    let rules: Value =
        common::poll("vmalert to evaluate every rule", Duration::from_secs(30), Duration::from_millis(300), || {
            let (client, url) = (s.client.clone(), url.clone());
            async move {
                let body: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
                let all: Vec<&Value> = body["data"]["groups"]
                    .as_array()?
                    .iter()
                    .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                    .collect();
                let evaluated = !all.is_empty()
                    && all.iter().all(|r| r["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001")));
                evaluated.then_some(body)
            }
        })
        .await;
    let mut count = 0;
    for group in rules["data"]["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            count += 1;
            let error = rule["lastError"].as_str().unwrap_or("");
            assert!(error.is_empty(), "rule {} ({}): {error}", rule["name"], rule["query"]);
        }
    }
    assert!(count >= 10, "the repo's rules: {count}");
    eprintln!("vmalert evaluated {count} rules against promfed without an error");
    s.running.shutdown();
}

/// Groups found by a `discover_groups` template are queried too, each with its own label
/// (`federation_group: $group`), and a matcher on that label asks only its group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_found_by_a_template_are_queried() {
    let Some(binary) = common::prometheus_binary() else { return };
    let end = (now_ms() - 60_000) / STEP * STEP;
    let eu =
        Prometheus::start_backfilled(&binary, "found-eu", "global:\n  external_labels: {replica: a}\n", &history(end))
            .await;
    let us =
        Prometheus::start_backfilled(&binary, "found-us", "global:\n  external_labels: {replica: a}\n", &history(end))
            .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let target = |addr: String, group: &str| {
        format!(
            r#"{{"targets": ["{addr}"], "labels": {{"federation_group": "{group}", "federation_role": "primary"}}}}"#
        )
    };
    std::fs::write(
        dir.path().join("all.json"),
        format!("[{}, {}]", target(eu.address(), "eu"), target(us.address(), "us")),
    )
    .expect("write targets");
    let yaml = format!(
        "server: {{listen_address: \"127.0.0.1:0\"}}\ngroups:\n  - name: all-pairs\n    discover_groups: true\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    labels: {{federation_group: $group}}\n    file_sd_configs:\n      - files: [\"{}/*.json\"]\n",
        dir.path().display()
    );
    let (running, base) = common::start_promfed(&yaml, "found").await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    common::wait_for_groups(&client, &base, "both groups found", |d| d.as_array().is_some_and(|g| g.len() == 2)).await;
    let query = |q: &str| {
        let (client, base, q) = (client.clone(), base.clone(), q.to_owned());
        async move {
            let r = client
                .get(format!("{base}/api/v1/query"))
                .query(&[("query", q), ("time", secs(end))])
                .send()
                .await
                .expect("query");
            r.json::<Value>().await.expect("json")
        }
    };
    let body = query("count by (federation_group) (rr_temperature)").await;
    let mut got: Vec<(String, String)> = body["data"]["result"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|s| {
            (s["metric"]["federation_group"].as_str().unwrap().to_owned(), s["value"][1].as_str().unwrap().to_owned())
        })
        .collect();
    got.sort();
    assert_eq!(got, [("eu".to_owned(), "6".to_owned()), ("us".to_owned(), "6".to_owned())], "{body}");
    let body = query("count(rr_temperature{federation_group=\"us\"})").await;
    assert_eq!(body["data"]["result"][0]["value"][1], "6", "{body}");
    running.shutdown();
}

/// `/api/v1/rules` and `/api/v1/alerts`: what the group's leader (a real Prometheus 2.42
/// evaluating a rule file) evaluates, with the group's label added and the replica label gone;
/// the broken twin is not asked while the leader answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_alerts_come_from_the_leader_with_the_group_label() {
    let Some(binary) = common::prometheus_binary() else { return };
    let rules = "groups:\n  - name: demo\n    rules:\n      - record: job:demo:sum\n        expr: vector(2)\n      - alert: AlwaysFiring\n        expr: vector(1) > 0\n        labels: {severity: page}\n        annotations: {summary: it fires}\n";
    let config = "global:\n  evaluation_interval: 1s\n  external_labels: {replica: a}\nrule_files: [rules.yml]\n";
    let leader = Prometheus::start(&binary, "rules-a", config, &[("rules.yml", rules)]).await;
    let mode = Arc::new(AtomicU8::new(Fault::Status500 as u8));
    let twin = faulty_replica(mode).await;
    let yaml = format!(
        "server: {{listen_address: \"127.0.0.1:0\"}}\ngroups:\n  - name: pair\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n    labels: {{federation_group: pair}}\n    replicas:\n      - {{name: a, role: primary, address: \"{}\"}}\n      - {{name: b, role: secondary, address: \"{twin}\"}}\n",
        leader.address()
    );
    let (running, base) = common::start_promfed(&yaml, "rules").await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let alerts: Value =
        common::poll("the alert to fire on the leader", Duration::from_secs(20), Duration::from_millis(200), || {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let body: Value = client.get(format!("{base}/api/v1/alerts")).send().await.ok()?.json().await.ok()?;
                (body["data"]["alerts"].as_array()?.len() == 1).then_some(body)
            }
        })
        .await;
    let alert = &alerts["data"]["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "AlwaysFiring", "{alerts}");
    assert_eq!(alert["labels"]["federation_group"], "pair", "{alerts}");
    assert!(alert["labels"].get("replica").is_none(), "{alerts}");
    assert!(alerts.get("warnings").is_none(), "the leader answered, the twin was not asked: {alerts}");
    let body: Value =
        client.get(format!("{base}/api/v1/rules")).send().await.expect("rules").json().await.expect("json");
    let group = &body["data"]["groups"][0];
    assert_eq!(group["name"], "demo", "{body}");
    assert!(group["file"].as_str().is_some_and(|f| f.starts_with("pair: ")), "{body}");
    let names: Vec<&str> = group["rules"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["job:demo:sum", "AlwaysFiring"], "{body}");
    assert_eq!(group["rules"][1]["labels"]["federation_group"], "pair");
    let body: Value =
        client.get(format!("{base}/api/v1/rules?type=record")).send().await.expect("rules").json().await.expect("json");
    assert_eq!(body["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(1), "type=record passed on: {body}");
    running.shutdown();
}

/// `promfed dashboards lint --live` against a real promfed: the names its dashboards use are
/// looked up in the query API (the groups' history) and in promfed's own `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_lint_live_reads_a_real_promfeds_query_api() {
    let Some(binary) = common::prometheus_binary() else { return };
    let s = setup(&binary, "{timeout: 10s}").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dashboards/good/home.json"),
    )
    .expect("fixture");
    let expr = "sum(promfed_group_up) + sum(rr_temperature) + sum(rr_no_such_metric)";
    assert!(home.contains("\"sum(promfed_group_up)\""), "the fixture's query changed");
    std::fs::write(dir.path().join("home.json"), home.replace("\"sum(promfed_group_up)\"", &format!("\"{expr}\"")))
        .unwrap();
    let (path, base) = (dir.path().to_str().unwrap().to_owned(), s.base.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_promfed")).args(["dashboards", "lint", &path, "--live", &base]).output()
    })
    .await
    .expect("joined")
    .expect("promfed runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let problems: Vec<&str> = stdout.lines().collect();
    assert_eq!(problems.len(), 1, "only the missing name: {stdout}{stderr}");
    assert!(problems[0].contains("metric \"rr_no_such_metric\" is not known"), "{stdout}");
    assert!(stderr.contains("3 metric name(s) looked up"), "{stderr}");
    s.running.shutdown();
}
