//! Issue 14, the history path's first stage: promfed's remote-read client against a real
//! Prometheus 2.42 holding hours of backfilled history (`promtool tsdb create-blocks-from
//! openmetrics`). The streamed XOR chunks and the samples answer must both equal what
//! Prometheus' own query API returns for the same series and range, sample for sample and bit
//! for bit; a sub-range is cut inclusively at both ends, as a 2.42 range selector is; a bad
//! matcher is Prometheus' 500, its reason kept.

mod common;

use common::{Prometheus, now_ms};
use promfed::query::proto::{LabelMatcher, MatchType, Query, ResponseType};
use promfed::query::remote_read::{Limits, RawSeries, ReadClient, ReadError};
use std::collections::BTreeMap;
use std::time::Duration;

const LIMITS: Limits = Limits { max_bytes: 1 << 30, max_samples: 50_000_000 };

/// 60 counters and 60 gauges, every 15 s (some with jitter) over 50 minutes ending 2 minutes
/// ago: values with fractions, negatives, big jumps, a reset.
fn history(end_ms: i64) -> (String, i64) {
    let start_ms = end_ms - 50 * 60 * 1000;
    let mut om = String::from("# TYPE rr_requests counter\n");
    for i in 0..60 {
        let mut v = 0.0;
        for step in 0..200 {
            let t = start_ms + step * 15_000 + if i % 7 == 0 { (step * 37 % 900) - 450 } else { 0 };
            v += (i as f64) * 0.25 + (step % 5) as f64;
            if i == 3 && step == 100 {
                v = 1.0; // a reset
            }
            om.push_str(&format!("rr_requests_total{{instance=\"i{i}\"}} {v} {}.{:03}\n", t / 1000, t % 1000));
        }
    }
    om.push_str("# TYPE rr_temperature gauge\n");
    for i in 0..60 {
        for step in 0..200i64 {
            let t = start_ms + step * 15_000;
            let v =
                ((step as f64) * 0.37 + i as f64).sin() * 1e3 - (i as f64) / 3.0 + if step == 50 { 1e12 } else { 0.0 };
            om.push_str(&format!(
                "rr_temperature{{instance=\"i{i}\",zone=\"z{}\"}} {v} {}.{:03}\n",
                i % 3,
                t / 1000,
                t % 1000
            ));
        }
    }
    om.push_str("# EOF\n");
    (om, start_ms)
}

/// `{__name__=~"rr_.*"}[range]` at `at_ms` from the query API: raw samples per series (the
/// labels as Prometheus' API gives them: without external labels).
async fn api_range(p: &Prometheus, range_s: i64, at_ms: i64) -> BTreeMap<String, Vec<(i64, u64)>> {
    let client = reqwest::Client::new();
    let body: serde_json::Value = client
        .get(format!("{}/api/v1/query", p.url()))
        .query(&[
            ("query", format!("{{__name__=~\"rr_.*\"}}[{range_s}s]")),
            ("time", format!("{}", at_ms as f64 / 1000.0)),
        ])
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "success", "{body}");
    let mut out = BTreeMap::new();
    for series in body["data"]["result"].as_array().expect("matrix") {
        let metric: BTreeMap<String, String> = serde_json::from_value(series["metric"].clone()).expect("labels");
        let samples = series["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|pair| {
                let t = (pair[0].as_f64().expect("time") * 1000.0).round() as i64;
                let v: f64 = pair[1].as_str().expect("value string").parse().expect("float");
                (t, v.to_bits())
            })
            .collect();
        out.insert(format!("{metric:?}"), samples);
    }
    out
}

/// The remote-read series keyed as [`api_range`] keys them (external labels dropped).
fn keyed(series: &[RawSeries]) -> BTreeMap<String, Vec<(i64, u64)>> {
    series
        .iter()
        .map(|s| {
            let labels: BTreeMap<String, String> = s.labels.iter().filter(|(n, _)| n != "replica").cloned().collect();
            (format!("{labels:?}"), s.samples.iter().map(|&(t, v)| (t, v.to_bits())).collect())
        })
        .collect()
}

/// The first difference between two keyed sets, for a readable failure.
fn diff(left: &BTreeMap<String, Vec<(i64, u64)>>, right: &BTreeMap<String, Vec<(i64, u64)>>) -> String {
    if left.len() != right.len() {
        return format!("{} series against {}", left.len(), right.len());
    }
    for ((kl, l), (kr, r)) in left.iter().zip(right) {
        if kl != kr {
            return format!("series {kl} against {kr}");
        }
        if l != r {
            let at = l.iter().zip(r).position(|(a, b)| a != b).unwrap_or(l.len().min(r.len()));
            return format!(
                "{kl}: {} samples against {}; first difference at {at}: {:?} against {:?} (first {:?} / {:?}, last {:?} / {:?})",
                l.len(),
                r.len(),
                l.get(at),
                r.get(at),
                l.first(),
                r.first(),
                l.last(),
                r.last()
            );
        }
    }
    String::new()
}

fn rr_query(start: i64, end: i64) -> Query {
    Query {
        start_timestamp_ms: start,
        end_timestamp_ms: end,
        matchers: vec![LabelMatcher { r#type: MatchType::Re as i32, name: "__name__".into(), value: "rr_.*".into() }],
        hints: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chunks_and_samples_equal_prometheus_own_api() {
    let Some(binary) = common::prometheus_binary() else { return };
    let end_ms = (now_ms() - 2 * 60 * 1000) / 1000 * 1000;
    let (om, start_ms) = history(end_ms);
    let config = "global:\n  external_labels: {replica: a}\n";
    let p = Prometheus::start_backfilled(&binary, "remote-read", config, &om).await;
    let client = ReadClient::new("test", "http", &Default::default(), &Default::default(), Duration::from_secs(30))
        .expect("client");

    // The whole history, both ways, against the API's raw samples.
    let whole = api_range(&p, (end_ms - start_ms) / 1000 + 120, end_ms + 1000).await;
    assert_eq!(whole.len(), 120);
    assert!(whole.values().all(|s| s.len() == 200), "backfilled 200 samples per series");
    let q = [rr_query(start_ms - 60_000, end_ms + 1000)];
    let streamed = client.read(&p.address(), &q, LIMITS).await.expect("streamed read");
    assert_eq!(streamed.response_type, "streamed");
    assert!(
        streamed.results[0].iter().all(|s| s.labels.iter().any(|l| l == &("replica".into(), "a".into()))),
        "external labels come with remote read"
    );
    let got = keyed(&streamed.results[0]);
    assert!(got == whole, "streamed XOR chunks: {}", diff(&got, &whole));
    let samples = client.read_as(&p.address(), &q, LIMITS, &[ResponseType::Samples]).await.expect("samples read");
    assert_eq!(samples.response_type, "samples");
    let got = keyed(&samples.results[0]);
    assert!(got == whole, "samples: {}", diff(&got, &whole));

    // A sub-range: remote read is inclusive at both ends, and so is a 2.42 range selector
    // (Prometheus 3 made it open at the left).
    let (from, to) = (start_ms + 10 * 60 * 1000, start_ms + 20 * 60 * 1000);
    let window = api_range(&p, (to - from) / 1000, to).await;
    let q = [rr_query(from, to)];
    let streamed = client.read(&p.address(), &q, LIMITS).await.expect("streamed read");
    let got = keyed(&streamed.results[0]);
    assert!(got == window, "a window: {}", diff(&got, &window));
    assert!(window.values().all(|s| s.len() >= 39 && s.len() <= 41), "about 40 samples each");

    // Two queries in one request come back in their places.
    let q = [rr_query(from, to), rr_query(start_ms - 60_000, end_ms + 1000)];
    let both = client.read(&p.address(), &q, LIMITS).await.expect("two queries");
    let (first, second) = (keyed(&both.results[0]), keyed(&both.results[1]));
    assert!(first == window && second == whole, "{} / {}", diff(&first, &window), diff(&second, &whole));

    // Limits and Prometheus' own refusals.
    let q = [rr_query(start_ms - 60_000, end_ms + 1000)];
    let few = Limits { max_bytes: 1 << 30, max_samples: 1000 };
    assert!(matches!(client.read(&p.address(), &q, few).await, Err(ReadError::TooManySamples { limit: 1000, .. })));
    let small = Limits { max_bytes: 10_000, max_samples: 50_000_000 };
    assert!(matches!(client.read(&p.address(), &q, small).await, Err(ReadError::TooLarge { limit: 10_000, .. })));
    let bad = [Query {
        matchers: vec![LabelMatcher { r#type: MatchType::Re as i32, name: "__name__".into(), value: "(".into() }],
        ..rr_query(start_ms, end_ms)
    }];
    let err = client.read(&p.address(), &bad, LIMITS).await.expect_err("a bad regex");
    assert!(matches!(err, ReadError::Status { status: 500, .. }), "Prometheus answers 500: {err}");
    assert!(err.to_string().contains("missing closing )"), "Prometheus' reason is kept: {err}");
    // Nobody listening.
    let dead = format!("127.0.0.1:{}", common::free_port());
    let err = client.read(&dead, &q, LIMITS).await.expect_err("dead");
    assert_eq!(err.reason(), "connect");
}
