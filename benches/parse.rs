//! Throughput of the exposition parsers on synthetic `/federate`-like bodies of 10k and 100k
//! series (the series count is each benchmark's parameter).
//!
//! Groups (each reports bytes/s; samples/s = series / time per iteration):
//! - `text_federate`: our text parser on names with and without `:` (recording rules).
//! - `text_no_colon`: our text parser and `prometheus-parse` 0.2 on the same body whose names have
//!   no `:`. prometheus-parse silently drops every series whose name contains `:`, so on the
//!   federate body it would do less work and look faster while losing data; this variant keeps the
//!   comparison fair. Its API takes one owned `String` per line, which is part of its cost.
//! - `protobuf`: our length-delimited `MetricFamily` decoder on the same series, encoded with our
//!   prost structs.
//!
//! Run: `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 3`. Compare ratios
//! within one run: wall-clock numbers on shared 2-core machines are noisy.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use promfed::parse::proto::{LabelPair, Metric, MetricFamily, MetricType as WireType, Untyped};
use promfed::parse::{MetricType, RawLabel, Sink, parse_protobuf_delimited, parse_text};
use prost::Message as _;

/// The series counts benchmarked.
const SIZES: [(usize, &str); 2] = [(10_000, "10k"), (100_000, "100k")];

/// Metric names as `/federate` returns them: recording rules (`level:metric:operations`) and raw
/// metrics.
const NAMES: [&str; 10] = [
    "instance:node_cpu_seconds:rate1m",
    "job:http_requests_total:rate5m",
    "instance_mode:node_cpu_seconds:rate5m",
    "cluster:container_memory_working_set_bytes:sum",
    "namespace_pod:http_request_duration_seconds_bucket:rate1m",
    "node_network_receive_bytes_total",
    "container_memory_working_set_bytes",
    "http_requests_total",
    "process_resident_memory_bytes",
    "up",
];

/// One federated series: name, labels in body order, value, timestamp.
struct Series {
    name: String,
    labels: Vec<(&'static str, String)>,
    value: f64,
    timestamp_ms: i64,
}

fn series(colons: bool, count: usize) -> Vec<Series> {
    let mut rng = fastrand::Rng::with_seed(1);
    let modes = ["idle", "user", "system", "iowait", "steal"];
    let mut out = Vec::with_capacity(count);
    // Grouped by name as /federate groups families: count / NAMES.len() series per name.
    for (n, name) in NAMES.iter().enumerate() {
        let name = if colons { (*name).to_owned() } else { name.replace(':', "_") };
        for i in 0..count / NAMES.len() {
            let value = match rng.u8(..4) {
                0 => f64::from(rng.u32(..100_000)),
                1 => rng.f64(),
                2 => rng.f64() * 1e9,
                _ => (rng.f64() * 1000.0).round() / 8.0,
            };
            out.push(Series {
                name: name.clone(),
                labels: vec![
                    ("instance", format!("10.{}.{}.{}:9100", n, i / 256, i % 256)),
                    ("job", ["node", "api", "prometheus"][i % 3].to_owned()),
                    ("mode", modes[i % modes.len()].to_owned()),
                    ("pod", format!("api-7f9c8d{:04x}-x{}", i % 4096, i % 97)),
                    ("cluster", "eu-west-1".to_owned()),
                    ("replica", "a".to_owned()),
                ],
                value,
                timestamp_ms: 1_795_314_944_783 + (i % 5000) as i64,
            });
        }
    }
    out
}

fn text_body(series: &[Series]) -> String {
    let mut body = String::with_capacity(series.len() * 180);
    let mut last = "";
    for s in series {
        if s.name != last {
            writeln!(body, "# TYPE {} untyped", s.name).unwrap();
            last = &s.name;
        }
        body.push_str(&s.name);
        body.push('{');
        for (i, (k, v)) in s.labels.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            write!(body, "{k}=\"{v}\"").unwrap();
        }
        // Go's %g-like output is not needed: any valid float spelling will do.
        writeln!(body, "}} {} {}", s.value, s.timestamp_ms).unwrap();
    }
    body
}

fn protobuf_body(series: &[Series]) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in series.chunk_by(|a, b| a.name == b.name) {
        let family = MetricFamily {
            name: Some(chunk[0].name.clone()),
            r#type: Some(WireType::Untyped as i32),
            metric: chunk
                .iter()
                .map(|s| Metric {
                    label: s
                        .labels
                        .iter()
                        .map(|(k, v)| LabelPair { name: Some((*k).to_owned()), value: Some(v.clone()) })
                        .collect(),
                    untyped: Some(Untyped { value: Some(s.value) }),
                    timestamp_ms: Some(s.timestamp_ms),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        family.encode_length_delimited(&mut body).unwrap();
    }
    body
}

/// Counts samples and touches every label so that nothing is optimised away.
#[derive(Default)]
struct Count {
    samples: usize,
    bytes: usize,
}

impl Sink for Count {
    fn family(&mut self, family: &str, _: MetricType) {
        self.bytes += family.len();
    }

    fn sample(&mut self, name: &str, labels: &[RawLabel<'_>], value: f64, timestamp_ms: Option<i64>) {
        self.samples += 1;
        self.bytes += name.len() + labels.iter().map(|l| l.name.len() + l.value.len()).sum::<usize>();
        black_box((value, timestamp_ms));
    }
}

fn ours_text(body: &[u8]) -> usize {
    let mut sink = Count::default();
    parse_text(body, &mut sink).unwrap();
    black_box(sink.bytes);
    sink.samples
}

fn ours_protobuf(body: &[u8]) -> usize {
    let mut sink = Count::default();
    parse_protobuf_delimited(body, &mut sink).unwrap();
    black_box(sink.bytes);
    sink.samples
}

fn prometheus_parse(body: &str) -> usize {
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).unwrap().samples.len()
}

fn bench(c: &mut Criterion) {
    let mut text_federate = c.benchmark_group("text_federate");
    let mut bodies = Vec::new();
    for (n, label) in SIZES {
        let with_colons = series(true, n);
        let without_colons = series(false, n);
        let text = text_body(&with_colons);
        let text_plain = text_body(&without_colons);
        let pb = protobuf_body(&with_colons);
        assert_eq!(ours_text(text.as_bytes()), n);
        assert_eq!(ours_text(text_plain.as_bytes()), n);
        assert_eq!(ours_protobuf(&pb), n);
        assert_eq!(prometheus_parse(&text_plain), n);
        eprintln!(
            "{label}: text {} B, text without ':' {} B, protobuf {} B; prometheus-parse keeps {} of {n} \
             series of the body with ':' names",
            text.len(),
            text_plain.len(),
            pb.len(),
            prometheus_parse(&text),
        );
        text_federate.throughput(Throughput::Bytes(text.len() as u64));
        text_federate.bench_function(BenchmarkId::new("promfed_with_colons", label), |b| {
            b.iter(|| ours_text(black_box(text.as_bytes())))
        });
        text_federate.throughput(Throughput::Bytes(text_plain.len() as u64));
        text_federate.bench_function(BenchmarkId::new("promfed_without_colons", label), |b| {
            b.iter(|| ours_text(black_box(text_plain.as_bytes())))
        });
        bodies.push((label, text_plain, pb));
    }
    text_federate.finish();

    let mut group = c.benchmark_group("text_no_colon");
    for (label, text_plain, _) in &bodies {
        group.throughput(Throughput::Bytes(text_plain.len() as u64));
        group.bench_function(BenchmarkId::new("promfed", label), |b| {
            b.iter(|| ours_text(black_box(text_plain.as_bytes())))
        });
        group.bench_function(BenchmarkId::new("prometheus_parse_0.2", label), |b| {
            b.iter(|| prometheus_parse(black_box(text_plain)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("protobuf");
    for (label, _, pb) in &bodies {
        group.throughput(Throughput::Bytes(pb.len() as u64));
        group.bench_function(BenchmarkId::new("promfed_delimited", label), |b| b.iter(|| ours_protobuf(black_box(pb))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
