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
        data.series.insert(selector_key(n.selector), matching);
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
