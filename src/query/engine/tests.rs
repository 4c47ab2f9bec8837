use super::eval::{Evaluator, Fetched, Settings, selector_key};
use super::*;
use promql_parser::parser::{self, Expr};
use std::time::{Duration, Instant};

/// Evaluates `q` at `t` over `series` given to every selector of the query.
fn instant(q: &str, t: i64, series: &[Series]) -> Result<QueryValue, EvalError> {
    let expr = parser::parse(q).expect("parses");
    let mut data = Fetched::default();
    fill(&expr, series, &mut data);
    let settings = Settings {
        start_ms: t,
        end_ms: t,
        step_ms: 1,
        lookback_ms: 300_000,
        default_subquery_step_ms: 60_000,
        max_samples: 1_000_000,
        deadline: Instant::now() + Duration::from_secs(10),
        cancelled: Default::default(),
    };
    Evaluator::new(&data, settings).instant(&expr)
}

fn fill(e: &Expr, series: &[Series], data: &mut Fetched) {
    let mut needs = Vec::new();
    crate::query::fetch::needs(e, 0, 0, 0, 0, 0, &mut needs);
    for n in needs {
        let matching = series.iter().filter(|s| eval::matches(n.selector, &s.labels)).cloned().collect();
        data.series.insert(selector_key(n.selector), Arc::new(matching));
    }
}

fn series(name: &str, extra: &[(&str, &str)], samples: Vec<(i64, f64)>) -> Series {
    let mut labels: Vec<(String, String)> = vec![("__name__".into(), name.into())];
    labels.extend(extra.iter().map(|(n, v)| ((*n).into(), (*v).into())));
    labels.sort();
    Series { labels: Arc::new(labels), samples }
}

fn scalar_of(v: QueryValue) -> f64 {
    match v {
        QueryValue::Vector(s) if s.len() == 1 => s[0].2,
        QueryValue::Scalar { v, .. } => v,
        other => panic!("not one value: {other:?}"),
    }
}

#[test]
fn rate_extrapolates_as_prometheus() {
    // A counter +10 every 15 s, samples at 0..=300 s; rate over [60 s, 300 s] at 300 s.
    let s = series("c_total", &[], (0..=20).map(|i| (i * 15_000, i as f64 * 10.0)).collect());
    let v = scalar_of(instant("rate(c_total[4m])", 300_000, std::slice::from_ref(&s)).unwrap());
    assert!((v - 10.0 / 15.0).abs() < 1e-12, "{v}");
    let v = scalar_of(instant("increase(c_total[4m])", 300_000, &[s]).unwrap());
    assert!((v - 160.0).abs() < 1e-9, "{v}");
}

#[test]
fn lookback_and_staleness() {
    let stale = f64::from_bits(crate::merge::STALE_NAN_BITS);
    let s = series("g", &[], vec![(0, 1.0), (60_000, 2.0), (120_000, stale)]);
    assert_eq!(scalar_of(instant("g", 60_000, std::slice::from_ref(&s)).unwrap()), 2.0);
    assert_eq!(
        scalar_of(instant("g", 360_000, &[series("g", &[], vec![(60_000, 2.0)])]).unwrap()),
        2.0,
        "5 m back, closed"
    );
    assert_eq!(instant("g", 360_001, &[series("g", &[], vec![(60_000, 2.0)])]).unwrap(), QueryValue::Vector(vec![]));
    assert_eq!(instant("g", 130_000, &[s]).unwrap(), QueryValue::Vector(vec![]), "a staleness marker ends it");
}

#[test]
fn matching_and_aggregation() {
    let a = series("a", &[("job", "x"), ("i", "1")], vec![(0, 3.0)]);
    let b = series("a", &[("job", "x"), ("i", "2")], vec![(0, 5.0)]);
    let c = series("b", &[("job", "x")], vec![(0, 2.0)]);
    let all = [a, b, c];
    assert_eq!(scalar_of(instant("sum(a)", 0, &all).unwrap()), 8.0);
    assert_eq!(scalar_of(instant("avg by (job) (a)", 0, &all).unwrap()), 4.0);
    let QueryValue::Vector(v) = instant("a * on(job) group_left b", 0, &all).unwrap() else { panic!() };
    assert_eq!(v.iter().map(|s| s.2).collect::<Vec<_>>(), [6.0, 10.0]);
    let e = instant("a * on(job) b", 0, &all).unwrap_err();
    assert!(e.to_string().contains("many-to-one matching must be explicit"), "{e}");
    assert_eq!(scalar_of(instant("quantile(0.5, a)", 0, &all).unwrap()), 4.0);
    assert_eq!(scalar_of(instant("count(a > 4)", 0, &all).unwrap()), 1.0);
}

#[test]
fn histogram_quantile_interpolates_in_the_bucket() {
    let b = |le: &str, v: f64| series("h_bucket", &[("le", le)], vec![(0, v)]);
    let all = [b("0.1", 10.0), b("0.5", 60.0), b("1", 90.0), b("+Inf", 100.0)];
    let v = scalar_of(instant("histogram_quantile(0.5, h_bucket)", 0, &all).unwrap());
    assert!((v - (0.1 + 0.4 * (40.0 / 50.0))).abs() < 1e-12, "{v}");
}

/// `q` parsed with the 2.42 functions known.
fn parse(q: &str) -> Expr {
    crate::query::api::register_2_42_functions();
    parser::parse(q).expect("parses")
}

/// A range query over `series`, series-major where it applies or in plain step order.
fn range(q: &str, series: &[Series], series_major: bool, max_samples: usize) -> Result<QueryValue, EvalError> {
    let expr = parse(q);
    let mut data = Fetched::default();
    let mut needs = Vec::new();
    crate::query::fetch::needs(&expr, 0, 1_200_000, 0, 1_200_000, 300_000, &mut needs);
    for n in needs {
        let matching = series.iter().filter(|s| eval::matches(n.selector, &s.labels)).cloned().collect();
        data.series.insert(selector_key(n.selector), Arc::new(matching));
    }
    let settings = Settings {
        start_ms: 300_000,
        end_ms: 1_200_000,
        step_ms: 45_000,
        lookback_ms: 300_000,
        default_subquery_step_ms: 60_000,
        max_samples,
        deadline: Instant::now() + Duration::from_secs(10),
        cancelled: Default::default(),
    };
    let mut ev = Evaluator::new(&data, settings);
    ev.series_major = series_major;
    ev.range(&expr)
}

#[test]
fn series_major_range_evaluation_gives_the_step_order_answer() {
    let stale = f64::from_bits(crate::merge::STALE_NAN_BITS);
    let mut all = Vec::new();
    for i in 0..12 {
        // Counters every 15 s with a reset, a gap and (for some) a staleness marker.
        let mut samples: Vec<(i64, f64)> = (0..80)
            .map(|k| (k * 15_000 + i * 1000, ((k * (i + 1)) % 97) as f64 + (k / 40) as f64 * 3.0))
            .filter(|&(t, _)| !(400_000 + i * 20_000..520_000 + i * 20_000).contains(&t))
            .collect();
        if i % 4 == 0 {
            samples[30].1 = stale;
        }
        let x = format!("x{}", i % 3);
        let name = if i < 10 { "m_total" } else { "n_total" };
        all.push(series(name, &[("x", &x), ("i", &format!("i{i}"))], samples));
    }
    // Two series equal but for the name: a duplicate label set once the name is dropped.
    all.push(series("d_total", &[("x", "dup")], (0..80).map(|k| (k * 15_000, k as f64)).collect()));
    all.push(series("e_total", &[("x", "dup")], (0..80).map(|k| (k * 15_000, k as f64)).collect()));
    let queries = [
        "m_total",
        "rate(m_total[5m])",
        "sum by (x) (rate(m_total[5m]))",
        "increase(m_total[2m]) / on(i) group_left rate(m_total[4m])",
        "quantile_over_time(0.3, m_total[3m])",
        "holt_winters(m_total[5m], 0.5, 0.4)",
        "holt_winters(m_total[5m], 2, 0.4)",
        "m_total offset 2m",
        "m_total @ 600",
        "rate(m_total[5m] @ end())",
        "absent_over_time(nope[5m])",
        "absent(nope)",
        "absent_over_time(m_total[1m])",
        "max_over_time(rate(m_total[1m])[5m:1m])",
        "topk(2, m_total) + on(i) group_left m_total",
        "count_over_time({__name__=~\"m_total|n_total\"}[5m])",
        "last_over_time(m_total[5m])",
        "timestamp(m_total)",
        "changes(m_total[5m]) + resets(m_total[5m])",
        "rate({x=\"dup\"}[5m])",
        "{x=\"dup\"}",
        "deriv(m_total[5m]) > bool 0",
        "predict_linear(m_total[5m], 600)",
        "(rate((m_total[5m])))",
        "label_replace(rate(m_total[5m]), \"y\", \"$1\", \"x\", \"x(.*)\")",
    ];
    for q in queries {
        for max_samples in [1_000_000, 150, 20] {
            let step_order = range(q, &all, false, max_samples);
            let by_series = range(q, &all, true, max_samples);
            assert_eq!(format!("{by_series:?}"), format!("{step_order:?}"), "{q} (max_samples {max_samples})");
        }
    }
    // Every range function, both ways.
    for name in functions::RANGE_FUNCTIONS {
        let q = match *name {
            "quantile_over_time" => format!("{name}(0.7, m_total[4m])"),
            "predict_linear" => format!("{name}(m_total[4m], 120)"),
            "holt_winters" => format!("{name}(m_total[4m], 0.3, 0.6)"),
            _ => format!("{name}(m_total[4m])"),
        };
        let by_series = range(&q, &all, true, 1_000_000);
        assert!(matches!(&by_series, Ok(QueryValue::Matrix(m)) if !m.is_empty()), "{q}: {by_series:?}");
        assert_eq!(format!("{by_series:?}"), format!("{:?}", range(&q, &all, false, 1_000_000)), "{q}");
    }
    // Not vacuous: answers, a duplicate error and the samples limit are among the outcomes.
    assert!(
        matches!(range("sum by (x) (rate(m_total[5m]))", &all, true, 1_000_000), Ok(QueryValue::Matrix(m)) if m.len() == 3)
    );
    let e = range("rate({x=\"dup\"}[5m])", &all, true, 1_000_000).unwrap_err();
    assert!(e.to_string().contains("same labelset"), "{e}");
    assert!(matches!(range("m_total", &all, true, 20), Err(EvalError::TooManySamples)));
}

#[test]
fn series_major_evaluation_is_taken_for_per_series_nodes_only() {
    let s = [series("m_total", &[], (0..80).map(|k| (k * 15_000, k as f64)).collect())];
    for (q, precomputed) in [
        ("rate(m_total[5m])", 1),
        ("sum(rate(m_total[5m])) + m_total", 2),
        ("absent_over_time(m_total[5m])", 0),
        ("max_over_time(rate(m_total[1m])[5m:1m])", 0),
        ("holt_winters(m_total[5m], 0.5, 0.4)", 1),
        ("quantile_over_time(scalar(m_total), m_total[5m])", 1),
    ] {
        let expr = parse(q);
        let mut data = Fetched::default();
        fill(&expr, &s, &mut data);
        let settings = Settings {
            start_ms: 300_000,
            end_ms: 900_000,
            step_ms: 60_000,
            lookback_ms: 300_000,
            default_subquery_step_ms: 60_000,
            max_samples: 1_000_000,
            deadline: Instant::now() + Duration::from_secs(10),
            cancelled: Default::default(),
        };
        let ev = Evaluator::new(&data, settings);
        ev.precompute(&expr).expect("no deadline");
        assert_eq!(ev.pre.borrow().len(), precomputed, "{q}");
    }
}
