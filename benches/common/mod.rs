//! Synthetic `/federate` data shared by the benches: the series a Prometheus HA pair federates,
//! as text and protobuf bodies, and the merged [`Snapshot`] promfed would serve for them.
//!
//! Series look like node_exporter and recording-rule output seen through `/federate`: ten metric
//! names (half of them recording rules with `:`), six labels after the replica label is removed
//! (`cluster`, `cpu`, `instance`, `job`, `mode`, `pod`), canonical keys of about
//! 135 bytes (see [`mean_key_len`]). Every bench builds them the same way so their numbers can be
//! compared.

#![allow(dead_code)] // each bench uses a different part of this module

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use promfed::merge::GroupSnapshot;
use promfed::merge::{Group, GroupSettings, Outcome, ReplicaSpec, Role, Snapshot};
use promfed::parse::proto::{LabelPair, Metric, MetricFamily, MetricType as WireType, Untyped};
use promfed::scrape::fetch::decode;
use promfed::series::{Batch, Identity};
use prost::Message as _;

/// Metric names as `/federate` returns them: recording rules (`level:metric:operations`) and raw
/// metrics, in sorted order (Prometheus' `/federate` output is sorted by name).
pub const NAMES: [&str; 10] = [
    "cluster:container_memory_working_set_bytes:sum",
    "container_memory_working_set_bytes",
    "http_requests_total",
    "instance:node_cpu_seconds:rate1m",
    "instance_mode:node_cpu_seconds:rate5m",
    "job:http_requests_total:rate5m",
    "namespace_pod:http_request_duration_seconds_bucket:rate1m",
    "node_network_receive_bytes_total",
    "process_resident_memory_bytes",
    "up",
];

pub const JOBS: [&str; 3] = ["node", "api", "prometheus"];
pub const MODES: [&str; 5] = ["idle", "user", "system", "iowait", "steal"];

/// A start time for synthetic timestamps (November 2026).
pub const T0_MS: i64 = 1_795_314_944_000;

/// The labels of series `i` of a metric, sorted by name, with the replica label in its sorted
/// place (as Prometheus' `/federate` writes external labels).
pub fn labels(i: usize, replica: &str) -> [(&'static str, String); 7] {
    [
        ("cluster", "eu-west-1".to_owned()),
        ("cpu", (i % 16).to_string()),
        ("instance", format!("10.{}.{}.{}:9100", (i >> 16) & 255, (i >> 8) & 255, i & 255)),
        ("job", JOBS[i % JOBS.len()].to_owned()),
        ("mode", MODES[i % MODES.len()].to_owned()),
        ("pod", format!("node-exporter-{:05x}", (i * 7919) & 0xfffff)),
        ("replica", replica.to_owned()),
    ]
}

/// The value of series `i` in round `round`: counters grow, the rest move a little.
pub fn value(name: &str, i: usize, round: u64) -> f64 {
    if name.ends_with("_total") {
        (i as f64) * 10.0 + round as f64 * 3.0
    } else {
        ((i * 31 + round as usize) % 1000) as f64 / 8.0
    }
}

/// A text `/federate` body of `n` series as replica `replica` serves it at round `round`
/// (timestamps `T0_MS + round * 5 s + skew_ms`). With `timestamps: false` the samples carry no
/// timestamp, so the scrape's start time is used instead (see `merge` bench).
pub fn text_body(n: usize, replica: &str, round: u64, skew_ms: i64, timestamps: bool) -> String {
    let mut body = String::with_capacity(n * 170);
    let per_name = n.div_ceil(NAMES.len());
    let ts = T0_MS + round as i64 * 5000 + skew_ms;
    let mut written = 0;
    for name in NAMES {
        writeln!(body, "# TYPE {name} untyped").unwrap();
        for i in 0..per_name.min(n - written) {
            body.push_str(name);
            for (j, (k, v)) in labels(i, replica).iter().enumerate() {
                body.push(if j == 0 { '{' } else { ',' });
                write!(body, "{k}=\"{v}\"").unwrap();
            }
            body.push_str("} ");
            write!(body, "{}", value(name, i, round)).unwrap();
            if timestamps {
                write!(body, " {ts}").unwrap();
            }
            body.push('\n');
            written += 1;
        }
    }
    body
}

/// The same series as length-delimited `MetricFamily` protobuf (what promfed asks for first).
pub fn protobuf_body(n: usize, replica: &str, round: u64, skew_ms: i64) -> Vec<u8> {
    let mut body = Vec::with_capacity(n * 200);
    let per_name = n.div_ceil(NAMES.len());
    let ts = T0_MS + round as i64 * 5000 + skew_ms;
    let mut written = 0;
    for name in NAMES {
        let count = per_name.min(n - written);
        written += count;
        let family = MetricFamily {
            name: Some(name.to_owned()),
            r#type: Some(WireType::Untyped as i32),
            metric: (0..count)
                .map(|i| Metric {
                    label: labels(i, replica)
                        .into_iter()
                        .map(|(k, v)| LabelPair { name: Some(k.to_owned()), value: Some(v) })
                        .collect(),
                    untyped: Some(Untyped { value: Some(value(name, i, round)) }),
                    timestamp_ms: Some(ts),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        family.encode_length_delimited(&mut body).unwrap();
    }
    body
}

pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// The identity rule of a default group: the replica labels are dropped, nothing is added.
pub fn identity() -> Identity {
    Identity::new(vec!["replica".into(), "prometheus_replica".into(), "__replica__".into()], vec![], true)
}

/// Decodes a body as a scrape does (parse + canonical keys).
pub fn decode_batch(body: Bytes, content_type: &str, identity: &Identity) -> Batch {
    decode("http://bench/federate", body, "", content_type, u64::MAX, identity).expect("synthetic body decodes").batch
}

/// A group of two replicas `a` (primary) and `b`, with Prometheus' default lookback.
pub fn group() -> Group {
    let mut g = Group::new(GroupSettings {
        name: "bench".into(),
        hold_down: 2,
        lookback_ms: 300_000,
        scrape_interval_ms: 5_000,
    });
    g.set_replicas(&[
        ReplicaSpec { name: "a".into(), role: Role::Primary, address: "127.0.0.1:1".into() },
        ReplicaSpec { name: "b".into(), role: Role::Secondary, address: "127.0.0.1:2".into() },
    ]);
    g
}

/// A successful scrape outcome of `replica` started at `started_ms`.
pub fn outcome(replica: &str, started_ms: i64, batch: Batch) -> Outcome {
    Outcome { replica: replica.into(), started_ms, duration_secs: 0.1, result: Ok(batch) }
}

/// A group that has merged `rounds` rounds of both replicas' scrapes of `n` series.
pub fn merged_group(n: usize, rounds: u64) -> Group {
    let id = identity();
    let mut g = group();
    for round in 0..rounds {
        for (replica, skew) in [("a", 0), ("b", 1200)] {
            let batch = decode_batch(Bytes::from(text_body(n, replica, round, skew, true)), TEXT, &id);
            let now = T0_MS + round as i64 * 5000 + skew + 100;
            g.apply(outcome(replica, now - 100, batch), now);
        }
    }
    g
}

/// The time right after the last round of [`merged_group`].
pub fn now_after(rounds: u64) -> i64 {
    T0_MS + rounds as i64 * 5000
}

/// A published snapshot of one group holding `n` merged series.
pub fn snapshot(n: usize) -> Snapshot {
    let mut g = merged_group(n, 2);
    let group: GroupSnapshot = g.snapshot(now_after(2));
    assert_eq!(group.entries.len(), n, "every series is served");
    Snapshot::new(vec![Arc::new(group)], true, 1)
}

/// Mean canonical key length of the served series, in bytes.
pub fn mean_key_len(s: &Snapshot) -> f64 {
    s.entries().map(|e| e.key.to_string().len()).sum::<usize>() as f64 / s.len().max(1) as f64
}

/// Labels in a key (`,` separated inside the braces; our values never contain a `,`).
pub fn label_count(key: &str) -> usize {
    key.find('{').map_or(0, |i| key[i..].matches(',').count() + 1)
}
