//! The query side's hot loops (issue 14): XOR chunk decoding (every remote-read answer), the
//! merge of two replicas' histories, and the evaluator on dashboard-shaped queries.
//!
//! - `chunk/decode`: 120-sample chunks (Prometheus' usual chunk) of a counter at 15 s, samples/s;
//! - `history/merge_1k_series_2h`: two replicas of 1k series × 480 samples (2 h at 15 s), the
//!   secondary filling a 10-minute outage of the primary, samples/s; `_healthy`: both whole
//!   (the merge is the primary's list, after a one-pass check);
//! - `engine/*`: range queries over 1k series × 2 h at a 60 s step: a selector,
//!   `sum by (x) (rate(m[5m]))`, `histogram_quantile` over 100 histograms of 8 buckets.
//!
//! Run: `cargo bench --no-default-features --bench query`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use promfed::query::chunk::{decode_xor, encode_xor};
use promfed::query::engine::Series;
use promfed::query::engine::eval::{Evaluator, Fetched, Settings, matches, selector_key};
use promfed::query::history::merge_series;
use std::sync::Arc;
use std::time::{Duration, Instant};

const STEP: i64 = 15_000;
const POINTS: i64 = 480;

fn counter(offset: f64) -> Vec<(i64, f64)> {
    (0..POINTS).map(|k| (k * STEP, offset + k as f64 * 3.0 + (k % 7) as f64)).collect()
}

fn labels(pairs: &[(&str, String)]) -> Arc<Vec<(String, String)>> {
    let mut l: Vec<(String, String)> = pairs.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
    l.sort();
    Arc::new(l)
}

fn data(expr: &promql_parser::parser::Expr, series: &[Series]) -> Fetched {
    let mut needs = Vec::new();
    promfed::query::fetch::needs(expr, 0, 0, 0, 0, 0, &mut needs);
    let mut f = Fetched::default();
    for n in needs {
        f.series.insert(
            selector_key(n.selector),
            std::sync::Arc::new(series.iter().filter(|s| matches(n.selector, &s.labels)).cloned().collect()),
        );
    }
    f
}

fn settings() -> Settings {
    Settings {
        start_ms: 10 * 60_000,
        end_ms: (POINTS - 1) * STEP,
        step_ms: 60_000,
        lookback_ms: 300_000,
        default_subquery_step_ms: 60_000,
        max_samples: 50_000_000,
        deadline: Instant::now() + Duration::from_secs(3600),
        cancelled: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("query/chunk");
    let samples = &counter(0.0)[..120];
    let chunk = encode_xor(samples);
    g.throughput(Throughput::Elements(120));
    g.bench_function("decode", |b| {
        let mut out = Vec::with_capacity(120);
        b.iter(|| {
            out.clear();
            decode_xor(&chunk, &mut out).expect("decodes");
            out.len()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("query/history");
    let primary: Vec<(i64, f64)> =
        counter(0.0).into_iter().filter(|s| !(200 * STEP..240 * STEP).contains(&s.0)).collect();
    let secondary = counter(0.0);
    g.throughput(Throughput::Elements(1000 * 2 * POINTS as u64));
    g.bench_function("merge_1k_series_2h", |b| {
        b.iter(|| (0..1000).map(|_| merge_series(&[primary.clone(), secondary.clone()], true).len()).sum::<usize>())
    });
    // Both replicas whole: the merge is the primary's list (checked, then copied here).
    let whole = counter(0.0);
    g.bench_function("merge_1k_series_2h_healthy", |b| {
        b.iter(|| (0..1000).map(|_| merge_series(&[whole.clone(), secondary.clone()], true).len()).sum::<usize>())
    });
    g.finish();

    let mut g = c.benchmark_group("query/engine");
    g.sample_size(10);
    let series: Vec<Series> = (0..1000)
        .map(|i| Series {
            labels: labels(&[("__name__", "m_total".into()), ("x", format!("x{}", i % 10)), ("i", format!("i{i}"))]),
            samples: counter(i as f64),
        })
        .chain((0..100).flat_map(|h| {
            ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"].into_iter().enumerate().map(move |(b, le)| Series {
                labels: labels(&[("__name__", "h_bucket".into()), ("le", le.into()), ("h", format!("h{h}"))]),
                samples: counter((b as f64 + 1.0) * 100.0),
            })
        }))
        .collect();
    for (name, q) in [
        ("selector", "m_total"),
        ("sum_by_rate", "sum by (x) (rate(m_total[5m]))"),
        ("histogram_quantile", "histogram_quantile(0.99, sum by (le, h) (rate(h_bucket[5m])))"),
    ] {
        let expr = promql_parser::parser::parse(q).expect("parses");
        let fetched = data(&expr, &series);
        g.bench_function(name, |b| {
            b.iter(|| {
                let ev = Evaluator::new(&fetched, settings());
                ev.range(&expr).expect("evaluates")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
