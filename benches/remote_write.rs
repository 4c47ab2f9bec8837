//! Decoding Remote-Write 1.0 requests: promfed's borrowing decoder (`promfed::remote::decode`,
//! which also validates the spec's label rules and limits) against prost decoding the same bytes
//! into owned structs (which validates nothing). Inputs: the three request bodies a real
//! Prometheus 2.42 sent (`tests/fixtures/remote_write_*.snappy.pb`, ~600 series each), and a
//! synthetic request of 2 000 series × 1 sample shaped like Prometheus' `max_samples_per_send`
//! batches. Throughput is reported in samples/s; snappy decompression is measured on its own.
//!
//! Run: `cargo bench --no-default-features --bench remote_write -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use promfed::remote::decode::{Limits, decode, decompress};
use promfed::remote::proto::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message as _;

fn fixture(i: usize) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/remote_write_{i}.snappy.pb", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn synthetic(series: usize) -> Vec<u8> {
    let timeseries = (0..series)
        .map(|i| {
            let labels = [
                ("__name__", format!("http_requests_total_{}", i % 50)),
                ("cluster", "eu-west-1".to_owned()),
                ("instance", format!("10.0.{}.{}:9100", i / 256 % 256, i % 256)),
                ("job", "node".to_owned()),
                ("pod", format!("api-{:05}", i)),
                ("__replica__", "a".to_owned()),
            ];
            let mut labels: Vec<Label> =
                labels.into_iter().map(|(n, v)| Label { name: n.to_owned(), value: v }).collect();
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            TimeSeries {
                labels,
                samples: vec![Sample { value: i as f64, timestamp: 1_700_000_000_000 + i as i64 }],
                exemplars: vec![],
            }
        })
        .collect();
    snap::raw::Encoder::new().compress_vec(&WriteRequest { timeseries }.encode_to_vec()).expect("snappy")
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut inputs: Vec<(String, Vec<u8>)> =
        (0..3).map(|i| (format!("prometheus_2.42_body_{i}"), fixture(i))).collect();
    inputs.push(("synthetic_2000_series".to_owned(), synthetic(2000)));
    let mut g = c.benchmark_group("remote_write_decode");
    for (name, body) in &inputs {
        let raw = decompress(body, usize::MAX).expect("snappy");
        let samples = decode(&raw, &limits).expect("valid").sample_count() as u64;
        g.throughput(Throughput::Elements(samples));
        g.bench_function(format!("{name}/snappy"), |b| b.iter(|| decompress(black_box(body), usize::MAX).unwrap()));
        g.bench_function(format!("{name}/promfed"), |b| {
            b.iter(|| decode(black_box(&raw), &limits).unwrap().sample_count())
        });
        g.bench_function(format!("{name}/prost"), |b| {
            b.iter(|| WriteRequest::decode(black_box(raw.as_slice())).unwrap().timeseries.len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
