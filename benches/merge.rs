//! Cost of the scrape-to-snapshot path per series count (10k, 100k), in samples/s:
//!
//! - `decode/text`, `decode/protobuf`: a replica's `/federate` body to a [`Batch`] — parse plus
//!   canonical keys (replica label removed, labels sorted, xxh3) — through `scrape::decode`, as
//!   a scrape does after reading the body.
//! - `apply`: `Group::apply` in steady state: the series already exist and every outcome brings
//!   newer samples; outcomes alternate between replica `a` (leader) and `b`, as the scrape loops
//!   deliver them. Each call ingests N samples and re-selects N series. The batches are decoded
//!   outside the timed part; their bodies carry no timestamps, so each sample takes its scrape's
//!   start time, which lets one body per replica stand for every round (same code path as
//!   explicit timestamps: `timestamp.unwrap_or(scrape_ms)`). Dropping the batch is timed: apply
//!   consumes it.
//! - `snapshot_entries`: `Group::snapshot`, what the store does after every apply to publish a
//!   snapshot.
//!
//! Run: `cargo bench --bench merge -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;

use bytes::Bytes;
use common::{PROTOBUF, T0_MS, TEXT};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [(usize, &str); 2] = [(10_000, "10k"), (100_000, "100k")];

fn decode(c: &mut Criterion) {
    let id = common::identity();
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    for (n, label) in SIZES {
        let text = Bytes::from(common::text_body(n, "a", 0, 0, true));
        let pb = Bytes::from(common::protobuf_body(n, "a", 0, 0));
        assert_eq!(common::decode_batch(text.clone(), TEXT, &id).len(), n);
        assert_eq!(common::decode_batch(pb.clone(), PROTOBUF, &id).len(), n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("text", label), |b| {
            b.iter(|| common::decode_batch(black_box(text.clone()), TEXT, &id))
        });
        group.bench_function(BenchmarkId::new("protobuf", label), |b| {
            b.iter(|| common::decode_batch(black_box(pb.clone()), PROTOBUF, &id))
        });
    }
    group.finish();
}

fn apply(c: &mut Criterion) {
    let id = common::identity();
    let mut group = c.benchmark_group("apply");
    group.sample_size(10);
    for (n, label) in SIZES {
        const ROUNDS: u64 = 3;
        let mut g = common::merged_group(n, ROUNDS);
        let bodies = [
            ("a", 0, Bytes::from(common::text_body(n, "a", 0, 0, false))),
            ("b", 1200, Bytes::from(common::text_body(n, "b", 0, 1200, false))),
        ];
        // Outcome k: replica k % 2, in round ROUNDS + k / 2.
        let mut k: u64 = 0;
        let mut emitted = 0u64;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_batched(
                || {
                    let (replica, skew, body) = &bodies[(k % 2) as usize];
                    let started = T0_MS + (ROUNDS + k / 2) as i64 * 5000 + skew;
                    k += 1;
                    (common::outcome(replica, started, common::decode_batch(body.clone(), TEXT, &id)), started + 100)
                },
                |(outcome, now)| emitted += g.apply(outcome, now).emitted,
                BatchSize::PerIteration,
            )
        });
        // Steady state really emits: every leader outcome brings a newer sample for each series.
        assert!(emitted >= n as u64, "apply emitted {emitted} samples");
        assert_eq!(g.series_count(), n);
    }
    group.finish();
}

fn snapshot_entries(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_entries");
    group.sample_size(10);
    for (n, label) in SIZES {
        let mut g = common::merged_group(n, 2);
        let now = common::now_after(2);
        assert_eq!(g.snapshot(now).entries.len(), n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(label), |b| b.iter(|| g.snapshot(black_box(now))));
    }
    group.finish();
}

criterion_group!(benches, decode, apply, snapshot_entries);
criterion_main!(benches);
