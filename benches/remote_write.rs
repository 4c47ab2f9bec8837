//! Remote-Write 1.0, both directions, without a network.
//!
//! `remote_write_decode`: promfed's borrowing decoder (`promfed::remote::decode`, which also
//! validates the spec's label rules and limits) against prost decoding the same bytes into owned
//! structs (which validates nothing). Inputs: the three request bodies a real Prometheus 2.42
//! sent (`tests/fixtures/remote_write_*.snappy.pb`, ~600 series each), and a synthetic request of
//! 2 000 series × 1 sample shaped like Prometheus' `max_samples_per_send` batches. Throughput is
//! reported in samples/s; snappy decompression is measured on its own.
//!
//! `remote_write_send/<step>/<series>`: the sender's hot path, step by step, for one merge of a
//! group of 10k and 100k series (the synthetic `/federate` series of `benches/common`, one
//! sample each), as `promfed::remote::send::Destination` runs it: the emitted samples encoded as
//! `TimeSeries` into records of about 1 MiB and snappy-compressed (`encode`); the records
//! appended to the durable queue, read back and committed (`queue`, fsync when `sync_interval`
//! (1s) is due, as the sender does; the once-a-second `persist` of the committed position is run
//! between iterations and not timed); each record decompressed and its series split over 4
//! shards by label hash, cut at `max_samples_per_send` 500 (`split`); each part
//! snappy-compressed as a request body (`request`); and all four in a row (`all`). The
//! `Destination` methods are private and need a running task, so the steps are written out here
//! with the same public pieces (`remote::encode`, `remote::queue`, snappy, xxh3): keep them in
//! step with `src/remote/send.rs`. Bytes per sample on disk and on the wire are printed.
//!
//! Run: `cargo bench --no-default-features --bench remote_write -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::borrow::Cow;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use promfed::merge::Emitted;
use promfed::remote::decode::{Limits, decode, decompress};
use promfed::remote::encode::put_series;
use promfed::remote::proto::{Label, Sample, TimeSeries, WriteRequest};
use promfed::remote::queue::{Queue, QueueSettings};
use promfed::remote::send::{RECORD_BYTES, ShardPart, split_record, wire_labels};
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
    snap::raw::Encoder::new()
        .compress_vec(&WriteRequest { timeseries, metadata: vec![] }.encode_to_vec())
        .expect("snappy")
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut inputs: Vec<(String, Vec<u8>)> =
        (0..3).map(|i| (format!("prometheus_2.42_body_{i}"), fixture(i))).collect();
    // Synthetic requests with the series count as parameter (a real sender batches 2000 series
    // by default; a receiver behind many senders sees far bigger totals).
    for n in [2_000, 10_000, 100_000] {
        inputs.push((format!("synthetic_series/{n}"), synthetic(n)));
    }
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

/// One merge of a group of `n` series: what the store hands the sender.
fn emitted(n: usize) -> Emitted {
    let mut g = common::merged_group(n, 2);
    g.record_emitted(true);
    let id = common::identity();
    let batch = common::decode_batch(Bytes::from(common::text_body(n, "a", 2, 0, true)), common::TEXT, &id);
    let now = common::now_after(2) + 100;
    g.apply(common::outcome("a", now - 100, batch), now);
    let e = g.take_emitted().expect("recording");
    assert_eq!(e.entries.len(), n, "one sample per series emitted");
    e
}

/// `Destination::enqueue` + `flush_record`: snappy records of about [`RECORD_BYTES`] and their
/// sample counts.
fn encode_records(batch: &Emitted) -> Vec<(Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut record = Vec::with_capacity(RECORD_BYTES + (64 << 10));
    let mut samples = 0u32;
    let mut labels: Vec<(&str, Cow<'_, str>)> = Vec::new();
    let flush = |record: &mut Vec<u8>, samples: &mut u32, out: &mut Vec<(Vec<u8>, u32)>| {
        if *samples > 0 {
            out.push((snap::raw::Encoder::new().compress_vec(record).expect("snappy"), *samples));
            record.clear();
            *samples = 0;
        }
    };
    for e in &batch.entries {
        wire_labels(batch.key(e), &mut labels);
        put_series(&mut record, labels.iter().map(|(n, v)| (*n, v.as_ref())), &[(e.ts, e.value)]);
        samples += 1;
        if record.len() >= RECORD_BYTES {
            flush(&mut record, &mut samples, &mut out);
        }
    }
    flush(&mut record, &mut samples, &mut out);
    out
}

fn open_queue(dir: &std::path::Path) -> Queue {
    let settings = QueueSettings {
        dir: dir.to_owned(),
        max_bytes: 1 << 30,
        segment_bytes: 16 << 20,
        sync_interval: Duration::from_secs(1),
    };
    Queue::open(settings).expect("queue").0
}

/// Appends the records, reads them back and commits them (`flush_record`, `dispatch`, `ack`).
fn through_queue(queue: &mut Queue, records: &[(Vec<u8>, u32)]) -> Vec<Vec<u8>> {
    for (payload, samples) in records {
        queue.append(payload, *samples).expect("append");
        if queue.sync_due() {
            queue.sync().expect("sync");
        }
    }
    let mut read = Vec::with_capacity(records.len());
    while let Some(rec) = queue.read_next().expect("read") {
        queue.commit(rec.end).expect("commit");
        read.push(rec.payload);
    }
    assert_eq!(read.len(), records.len());
    read
}

/// `Destination::split` of every record: parts per shard, cut at `max` samples.
fn split(records: &[Vec<u8>], shards: usize, max: u32) -> Vec<ShardPart> {
    let mut parts = Vec::new();
    for payload in records {
        let raw = snap::raw::Decoder::new().decompress_vec(payload).expect("snappy");
        parts.extend(split_record(&raw, shards, max, i64::MIN).expect("well-formed").0);
    }
    parts
}

/// `send`: each part snappy-compressed as a request body; returns the bytes on the wire.
fn requests(parts: &[ShardPart]) -> usize {
    parts.iter().map(|p| snap::raw::Encoder::new().compress_vec(&p.bytes).expect("snappy").len()).sum()
}

fn bench_send(c: &mut Criterion) {
    const SHARDS: usize = 4;
    const MAX_PER_SEND: u32 = 500;
    let mut g = c.benchmark_group("remote_write_send");
    for n in [10_000usize, 100_000] {
        let batch = emitted(n);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut queue = open_queue(dir.path());
        let records = encode_records(&batch);
        let read = through_queue(&mut queue, &records);
        let parts = split(&read, SHARDS, MAX_PER_SEND);
        assert_eq!(parts.iter().map(|p| p.samples as usize).sum::<usize>(), n);
        let wire = requests(&parts);
        let disk: usize = records.iter().map(|r| r.0.len() + 12).sum();
        eprintln!(
            "remote_write_send/{n}: {} records ({:.1} MB raw), {} requests; {:.1} bytes/sample in the queue, \
             {:.1} bytes/sample on the wire (snappy bodies)",
            records.len(),
            encode_records_raw_len(&batch) as f64 / 1e6,
            parts.len(),
            disk as f64 / n as f64,
            wire as f64 / n as f64,
        );
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("encode", n), |b| b.iter(|| encode_records(black_box(&batch)).len()));
        // Persisting the committed position (an fsync'd file, once a second in the sender) is
        // done between iterations, untimed; it also deletes the segments read.
        let mut timed = |b: &mut criterion::Bencher<'_>, f: &mut dyn FnMut(&mut Queue) -> usize| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    black_box(f(&mut queue));
                    total += t.elapsed();
                    queue.persist().expect("persist");
                }
                total
            })
        };
        g.bench_function(BenchmarkId::new("queue", n), |b| timed(b, &mut |q| through_queue(q, &records).len()));
        g.bench_function(BenchmarkId::new("split", n), |b| {
            b.iter(|| split(black_box(&read), SHARDS, MAX_PER_SEND).len())
        });
        g.bench_function(BenchmarkId::new("request", n), |b| b.iter(|| requests(black_box(&parts))));
        g.bench_function(BenchmarkId::new("all", n), |b| {
            timed(b, &mut |q| {
                let records = encode_records(&batch);
                let read = through_queue(q, &records);
                requests(&split(&read, SHARDS, MAX_PER_SEND))
            })
        });
    }
    g.finish();
}

/// Uncompressed size of the records (for the printout).
fn encode_records_raw_len(batch: &Emitted) -> usize {
    encode_records(batch).iter().map(|(c, _)| snap::raw::decompress_len(c).expect("snappy")).sum()
}

criterion_group!(benches, bench, bench_send);
criterion_main!(benches);
