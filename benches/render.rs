//! Cost of producing a `/federate` body from a published snapshot, in series/s (bytes/s for
//! gzip). Keys are the synthetic ones of `common` (about 135 bytes, six labels).
//!
//! - `text`: `render_text` of every series, 100k and 1M, into a buffer sized as the server sizes
//!   it.
//! - `protobuf`: `render_protobuf` of 100k series.
//! - `gzip`: `render::gzip` (level 1) of the 100k text body.
//! - `federate_body`: the handler's whole render path over 100k series on a fresh snapshot (so
//!   never a cache hit): selector matching, the k-way merge of groups, rendering; once with
//!   `{job="node",mode="idle"}` (1/15 of the series match) and once with `{__name__=~".+"}`
//!   (everything; the matcher is skipped), text and text+gzip.
//!
//! Run: `cargo bench --bench render -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use promfed::merge::Snapshot;
use promfed::render::federate_body;
use promfed::render::{gzip, render_protobuf, render_text};
use promfed::selector::SelectorSet;

fn text_of(s: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 96);
    render_text(s.entries(), &mut out);
    out
}

fn render(c: &mut Criterion) {
    let s100k = common::snapshot(100_000);
    let first = s100k.entries().next().expect("series").key.to_string();
    eprintln!(
        "keys: mean {:.0} B, e.g. {first} ({} labels); 100k text body {} B",
        common::mean_key_len(&s100k),
        common::label_count(&first),
        text_of(&s100k).len()
    );

    let mut group = c.benchmark_group("text");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function(BenchmarkId::from_parameter("100k"), |b| b.iter(|| text_of(black_box(&s100k))));
    {
        let s1m = common::snapshot(1_000_000);
        group.throughput(Throughput::Elements(1_000_000));
        group.bench_function(BenchmarkId::from_parameter("1M"), |b| b.iter(|| text_of(black_box(&s1m))));
    }
    group.finish();

    let mut group = c.benchmark_group("protobuf");
    group.sample_size(10);
    let protobuf_of = |s: &promfed::merge::Snapshot| {
        let mut out = Vec::with_capacity(s.len() * 96);
        render_protobuf(s.entries(), &mut out);
        out
    };
    group.throughput(Throughput::Elements(100_000));
    group.bench_function(BenchmarkId::from_parameter("100k"), |b| b.iter(|| protobuf_of(black_box(&s100k))));
    {
        let s1m = common::snapshot(1_000_000);
        group.throughput(Throughput::Elements(1_000_000));
        group.bench_function(BenchmarkId::from_parameter("1M"), |b| b.iter(|| protobuf_of(black_box(&s1m))));
    }
    group.finish();

    let text = text_of(&s100k);
    eprintln!("gzip: 100k text body {} B -> {} B", text.len(), gzip(&text).len());
    let mut group = c.benchmark_group("gzip");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(BenchmarkId::from_parameter("100k_text"), |b| b.iter(|| gzip(black_box(&text))));
    group.finish();

    let mut group = c.benchmark_group("federate_body");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    for (name, selector, gzipped) in [
        ("job_node_mode_idle", r#"{job="node",mode="idle"}"#, false),
        ("all", r#"{__name__=~".+"}"#, false),
        ("all_gzip", r#"{__name__=~".+"}"#, true),
    ] {
        let raw = vec![selector.to_owned()];
        let selectors = SelectorSet::parse(raw.iter().map(String::as_str)).unwrap();
        // A fresh snapshot of the same groups per iteration: its body cache is empty.
        let fresh = || Snapshot::new(s100k.groups.iter().map(Arc::clone).collect(), true, 2);
        let matched = federate_body(&fresh(), &selectors, &raw, false, gzipped).series;
        eprintln!("federate_body {selector} gzip={gzipped}: {matched} series");
        group.bench_function(BenchmarkId::new(name, "100k"), |b| {
            b.iter(|| federate_body(&fresh(), &selectors, &raw, false, gzipped))
        });
    }
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
