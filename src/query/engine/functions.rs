//! PromQL 2.42's functions. Each follows Prometheus' `promql/functions.go` of that release:
//! the rate family's extrapolation, `histogram_quantile`'s bucket interpolation,
//! `holt_winters`, `predict_linear`'s regression, which functions keep the metric name.

use super::aggregate::quantile;
use super::value::{Operands, Sample, Val, Window, ms, offset_ms};
use super::{EvalError, Labels, drop_name, label};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};
use std::borrow::Cow;
use std::sync::Arc;

/// The functions of Prometheus 2.42 (promql-parser knows later ones too, which 2.42 refuses).
pub const FUNCTIONS_2_42: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// A range-vector argument and where its window ends. A selector's windows borrow the
/// fetched samples (copied only when a staleness marker has to be left out), so a range query
/// does not copy every window of every step.
struct MatrixArg<'d> {
    ranges: Vec<Window<'d>>,
    range_ms: i64,
    /// The end of the window: the evaluation time (or `@`) minus the offset.
    end_ms: i64,
}

fn matrix_arg<'d>(ev: &dyn Operands<'d>, e: &Expr, t: i64) -> Result<MatrixArg<'d>, EvalError> {
    match e {
        Expr::MatrixSelector(m) => {
            let end_ms = ev.at_time(&m.vs.at, t) - offset_ms(&m.vs.offset);
            let range_ms = ms(m.range);
            Ok(MatrixArg { ranges: ev.matrix_slices(&m.vs, end_ms - range_ms, end_ms)?, range_ms, end_ms })
        }
        Expr::Subquery(s) => {
            let end_ms = ev.at_time(&s.at, t) - offset_ms(&s.offset);
            let ranges = ev.subquery(s, t)?.into_iter().map(|r| (r.labels, Cow::Owned(r.points))).collect();
            Ok(MatrixArg { ranges, range_ms: ms(s.range), end_ms })
        }
        Expr::Paren(p) => matrix_arg(ev, &p.expr, t),
        _ => Err(EvalError::Execution("expected a range vector argument".into())),
    }
}

fn vector_arg(ev: &dyn Operands<'_>, e: &Expr, t: i64) -> Result<Vec<Sample>, EvalError> {
    match ev.eval(e, t)? {
        Val::Vector(v) => Ok(v),
        other => Err(EvalError::Execution(format!("expected an instant vector, got a {}", other.type_name()))),
    }
}

fn scalar_arg(ev: &dyn Operands<'_>, e: &Expr, t: i64) -> Result<f64, EvalError> {
    match ev.eval(e, t)? {
        Val::Scalar(v) => Ok(v),
        other => Err(EvalError::Execution(format!("expected a scalar, got a {}", other.type_name()))),
    }
}

fn string_arg(ev: &dyn Operands<'_>, e: &Expr, t: i64) -> Result<String, EvalError> {
    match ev.eval(e, t)? {
        Val::Str(s) => Ok(s),
        other => Err(EvalError::Execution(format!("expected a string, got a {}", other.type_name()))),
    }
}

/// Applies `f` to every sample's value, dropping the metric name.
fn map_values(v: Vec<Sample>, f: impl Fn(f64) -> f64) -> Val {
    Val::Vector(v.into_iter().map(|s| Sample { labels: drop_name(&s.labels), t: s.t, v: f(s.v) }).collect())
}

/// Applies `f` to every series of a range vector; `None` drops the series.
fn over_time(arg: MatrixArg<'_>, t: i64, keep_name: bool, f: impl Fn(&[(i64, f64)]) -> Option<f64>) -> Val {
    Val::Vector(
        arg.ranges
            .into_iter()
            .filter_map(|(labels, points)| {
                let v = f(&points)?;
                let labels = if keep_name { labels } else { drop_name(&labels) };
                Some(Sample { labels, t, v })
            })
            .collect(),
    )
}

pub fn call(ev: &dyn Operands<'_>, c: &Call, t: i64) -> Result<Val, EvalError> {
    let args = &c.args.args;
    let name = c.func.name;
    let arg = |i: usize| -> &Expr { &args[i] };
    // Date functions take `vector(time())` when called without an argument.
    let date_input = |ev: &dyn Operands<'_>| -> Result<Vec<Sample>, EvalError> {
        if args.is_empty() {
            Ok(vec![Sample { labels: Arc::new(Vec::new()), t, v: t as f64 / 1000.0 }])
        } else {
            vector_arg(ev, arg(0), t)
        }
    };
    Ok(match name {
        "time" => Val::Scalar(t as f64 / 1000.0),
        "pi" => Val::Scalar(std::f64::consts::PI),
        "vector" => Val::Vector(vec![Sample { labels: Arc::new(Vec::new()), t, v: scalar_arg(ev, arg(0), t)? }]),
        "scalar" => {
            let v = vector_arg(ev, arg(0), t)?;
            Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN })
        }
        "abs" => map_values(vector_arg(ev, arg(0), t)?, f64::abs),
        "ceil" => map_values(vector_arg(ev, arg(0), t)?, f64::ceil),
        "floor" => map_values(vector_arg(ev, arg(0), t)?, f64::floor),
        "exp" => map_values(vector_arg(ev, arg(0), t)?, f64::exp),
        "sqrt" => map_values(vector_arg(ev, arg(0), t)?, f64::sqrt),
        "ln" => map_values(vector_arg(ev, arg(0), t)?, f64::ln),
        "log2" => map_values(vector_arg(ev, arg(0), t)?, f64::log2),
        "log10" => map_values(vector_arg(ev, arg(0), t)?, f64::log10),
        "sin" => map_values(vector_arg(ev, arg(0), t)?, f64::sin),
        "cos" => map_values(vector_arg(ev, arg(0), t)?, f64::cos),
        "tan" => map_values(vector_arg(ev, arg(0), t)?, f64::tan),
        "asin" => map_values(vector_arg(ev, arg(0), t)?, f64::asin),
        "acos" => map_values(vector_arg(ev, arg(0), t)?, f64::acos),
        "atan" => map_values(vector_arg(ev, arg(0), t)?, f64::atan),
        "sinh" => map_values(vector_arg(ev, arg(0), t)?, f64::sinh),
        "cosh" => map_values(vector_arg(ev, arg(0), t)?, f64::cosh),
        "tanh" => map_values(vector_arg(ev, arg(0), t)?, f64::tanh),
        "asinh" => map_values(vector_arg(ev, arg(0), t)?, f64::asinh),
        "acosh" => map_values(vector_arg(ev, arg(0), t)?, f64::acosh),
        "atanh" => map_values(vector_arg(ev, arg(0), t)?, f64::atanh),
        "deg" => map_values(vector_arg(ev, arg(0), t)?, |v| v * 180.0 / std::f64::consts::PI),
        "rad" => map_values(vector_arg(ev, arg(0), t)?, |v| v * std::f64::consts::PI / 180.0),
        "sgn" => map_values(vector_arg(ev, arg(0), t)?, |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }),
        "round" => {
            let v = vector_arg(ev, arg(0), t)?;
            let to = if args.len() > 1 { scalar_arg(ev, arg(1), t)? } else { 1.0 };
            // Prometheus rounds to the nearest multiple of `to`, halves up, via the inverse.
            let inverse = 1.0 / to;
            map_values(v, |x| (x * inverse + 0.5).floor() / inverse)
        }
        "clamp" => {
            let v = vector_arg(ev, arg(0), t)?;
            let (lo, hi) = (scalar_arg(ev, arg(1), t)?, scalar_arg(ev, arg(2), t)?);
            if hi < lo { Val::Vector(Vec::new()) } else { map_values(v, |x| x.max(lo).min(hi)) }
        }
        "clamp_min" => {
            let v = vector_arg(ev, arg(0), t)?;
            let lo = scalar_arg(ev, arg(1), t)?;
            map_values(v, |x| x.max(lo))
        }
        "clamp_max" => {
            let v = vector_arg(ev, arg(0), t)?;
            let hi = scalar_arg(ev, arg(1), t)?;
            map_values(v, |x| x.min(hi))
        }
        "timestamp" => {
            let v = vector_arg(ev, arg(0), t)?;
            Val::Vector(
                v.into_iter().map(|s| Sample { labels: drop_name(&s.labels), t, v: s.t as f64 / 1000.0 }).collect(),
            )
        }
        "sort" | "sort_desc" => {
            let mut v = vector_arg(ev, arg(0), t)?;
            // Prometheus sorts NaN last in both directions... by its Less: NaN compares false.
            v.sort_by(|a, b| {
                let o = a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal);
                if name == "sort" { o } else { o.reverse() }
            });
            Val::Vector(v)
        }
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month" | "month" | "year" => {
            let v = date_input(ev)?;
            map_values(v, |x| date_part(name, x))
        }
        n if RANGE_FUNCTIONS.contains(&n) => {
            // The range argument first, then the scalar ones (Prometheus evaluates all
            // arguments before the function checks them).
            let m = matrix_arg(ev, arg(if n == "quantile_over_time" { 1 } else { 0 }), t)?;
            let f = range_fn(ev, c, t)?;
            let (end, range) = (m.end_ms, m.range_ms);
            over_time(m, t, f.keep_name, |p| (f.value)(p, end, range))
        }
        "absent" => {
            let v = vector_arg(ev, arg(0), t)?;
            if v.is_empty() {
                Val::Vector(vec![Sample { labels: absent_labels(arg(0)), t, v: 1.0 }])
            } else {
                Val::Vector(Vec::new())
            }
        }
        "absent_over_time" => {
            let m = matrix_arg(ev, arg(0), t)?;
            if m.ranges.is_empty() {
                Val::Vector(vec![Sample { labels: absent_labels(arg(0)), t, v: 1.0 }])
            } else {
                Val::Vector(Vec::new())
            }
        }
        "label_replace" => {
            let v = vector_arg(ev, arg(0), t)?;
            let (dst, replacement, src, regex) = (
                string_arg(ev, arg(1), t)?,
                string_arg(ev, arg(2), t)?,
                string_arg(ev, arg(3), t)?,
                string_arg(ev, arg(4), t)?,
            );
            let re = regex::Regex::new(&format!("^(?:{regex})$")).map_err(|e| {
                EvalError::Execution(format!("invalid regular expression in label_replace(): {regex}: {e}"))
            })?;
            if !crate::series::is_label_name(dst.as_bytes()) {
                return Err(EvalError::Execution(format!("invalid destination label name in label_replace(): {dst}")));
            }
            let mut out = Vec::with_capacity(v.len());
            for s in v {
                let value = label(&s.labels, &src).to_owned();
                let labels = match re.captures(&value) {
                    Some(caps) => {
                        let mut expanded = String::new();
                        caps.expand(&replacement, &mut expanded);
                        with_label(&s.labels, &dst, &expanded)
                    }
                    None => s.labels,
                };
                out.push(Sample { labels, t: s.t, v: s.v });
            }
            Val::Vector(out)
        }
        "label_join" => {
            let v = vector_arg(ev, arg(0), t)?;
            let (dst, sep) = (string_arg(ev, arg(1), t)?, string_arg(ev, arg(2), t)?);
            let mut srcs = Vec::new();
            for i in 3..args.len() {
                srcs.push(string_arg(ev, arg(i), t)?);
            }
            if !crate::series::is_label_name(dst.as_bytes()) {
                return Err(EvalError::Execution(format!("invalid destination label name in label_join(): {dst}")));
            }
            Val::Vector(
                v.into_iter()
                    .map(|s| {
                        let joined: Vec<&str> = srcs.iter().map(|n| label(&s.labels, n)).collect();
                        Sample { labels: with_label(&s.labels, &dst, &joined.join(&sep)), t: s.t, v: s.v }
                    })
                    .collect(),
            )
        }
        "histogram_quantile" => {
            let q = scalar_arg(ev, arg(0), t)?;
            let v = vector_arg(ev, arg(1), t)?;
            Val::Vector(histogram_quantile(q, v, t))
        }
        // Native-histogram functions: float series are not histograms, so nothing comes out.
        "histogram_count" | "histogram_sum" | "histogram_fraction" => {
            let _ = vector_arg(ev, arg(args.len() - 1), t)?;
            Val::Vector(Vec::new())
        }
        other => return Err(EvalError::Execution(format!("function {other}() is not done yet in promfed"))),
    })
}

/// Functions of one range vector whose value for a series depends only on that series' window
/// (and literal or scalar arguments): [`range_fn`] gives the value of one window.
pub const RANGE_FUNCTIONS: &[&str] = &[
    "avg_over_time",
    "changes",
    "count_over_time",
    "delta",
    "deriv",
    "holt_winters",
    "idelta",
    "increase",
    "irate",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rate",
    "resets",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
];

/// The value of one window of a range function: `(points, window end, range)` (points in time
/// order, staleness markers left out, never empty); `None` gives no sample.
pub type WindowValue<'f> = Box<dyn Fn(&[(i64, f64)], i64, i64) -> Option<f64> + 'f>;

/// One of the [`RANGE_FUNCTIONS`], its scalar arguments evaluated at `t`.
pub struct RangeFn<'f> {
    /// Which argument is the range vector.
    pub arg: usize,
    /// `last_over_time` keeps the metric name; the others drop it.
    pub keep_name: bool,
    pub value: WindowValue<'f>,
}

/// The range function `c` (one of [`RANGE_FUNCTIONS`]) with its scalar arguments at `t`.
/// The step order ([`call`]) and series-major evaluation (`by_series`) both apply it.
pub fn range_fn<'f>(ev: &dyn Operands<'_>, c: &'f Call, t: i64) -> Result<RangeFn<'f>, EvalError> {
    let args = &c.args.args;
    let name = c.func.name;
    let mut arg = 0;
    let value: WindowValue<'f> = match name {
        "rate" | "increase" | "delta" => {
            let (counter, rate) = (name != "delta", name == "rate");
            Box::new(move |p, end, range| extrapolated_rate(p, end - range, end, range, counter, rate))
        }
        "irate" | "idelta" => Box::new(move |p, _, _| instant_value(p, name == "irate")),
        "resets" => Box::new(|p, _, _| Some(p.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64)),
        "changes" => Box::new(|p, _, _| {
            Some(p.windows(2).filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan())).count() as f64)
        }),
        "deriv" => Box::new(|p, _, _| {
            if p.len() < 2 {
                return None;
            }
            Some(linear_regression(p, p[0].0).0)
        }),
        "predict_linear" => {
            let seconds = scalar_arg(ev, &args[1], t)?;
            let offset = offset_of(&args[0]);
            Box::new(move |p, end, _| {
                if p.len() < 2 {
                    return None;
                }
                let (slope, intercept) = linear_regression(p, end + offset);
                Some(slope * seconds + intercept)
            })
        }
        "holt_winters" => {
            let (sf, tf) = (scalar_arg(ev, &args[1], t)?, scalar_arg(ev, &args[2], t)?);
            if !(sf > 0.0 && sf < 1.0) {
                return Err(EvalError::Execution(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}")));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return Err(EvalError::Execution(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf}")));
            }
            Box::new(move |p, _, _| holt_winters(p, sf, tf))
        }
        "avg_over_time" => Box::new(|p, _, _| {
            let mut mean = 0.0f64;
            let mut count = 0.0f64;
            for &(_, v) in p {
                count += 1.0;
                if mean.is_infinite() {
                    if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                mean += v / count - mean / count;
            }
            Some(mean)
        }),
        "sum_over_time" => Box::new(|p, _, _| Some(p.iter().map(|x| x.1).sum())),
        "count_over_time" => Box::new(|p, _, _| Some(p.len() as f64)),
        "max_over_time" => Box::new(|p, _, _| {
            Some(p.iter().skip(1).fold(p[0].1, |m, &(_, v)| if v > m || m.is_nan() { v } else { m }))
        }),
        "min_over_time" => Box::new(|p, _, _| {
            Some(p.iter().skip(1).fold(p[0].1, |m, &(_, v)| if v < m || m.is_nan() { v } else { m }))
        }),
        "last_over_time" => Box::new(|p, _, _| p.last().map(|x| x.1)),
        "present_over_time" => Box::new(|_, _, _| Some(1.0)),
        "stddev_over_time" | "stdvar_over_time" => Box::new(move |p, _, _| {
            let (mut count, mut mean, mut aux) = (0.0, 0.0, 0.0);
            for &(_, v) in p {
                count += 1.0;
                let delta = v - mean;
                mean += delta / count;
                aux += delta * (v - mean);
            }
            let var = aux / count;
            Some(if name == "stddev_over_time" { var.sqrt() } else { var })
        }),
        "quantile_over_time" => {
            let q = scalar_arg(ev, &args[0], t)?;
            arg = 1;
            Box::new(move |p, _, _| Some(quantile(q, p.iter().map(|x| x.1).collect())))
        }
        other => return Err(EvalError::Execution(format!("{other}() is not a range function"))),
    };
    Ok(RangeFn { arg, keep_name: name == "last_over_time", value })
}

/// The offset of a range argument (for `predict_linear`'s intercept time: the evaluation time).
fn offset_of(e: &Expr) -> i64 {
    match e {
        Expr::MatrixSelector(m) => offset_ms(&m.vs.offset),
        Expr::Subquery(s) => offset_ms(&s.offset),
        Expr::Paren(p) => offset_of(&p.expr),
        _ => 0,
    }
}

/// `labels` with `name` set to `value` (removed when empty), sorted.
fn with_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut l: Vec<(String, String)> = labels.iter().filter(|(n, _)| n != name).cloned().collect();
    if !value.is_empty() {
        l.push((name.to_owned(), value.to_owned()));
        l.sort();
    }
    Arc::new(l)
}

/// `absent()`'s labels: the equality matchers of a selector argument (not `__name__`), each
/// name once.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(m) => &m.vs,
        _ => return Arc::new(Vec::new()),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut repeated: Vec<String> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == "__name__" {
            continue;
        }
        if out.iter().any(|(n, _)| n == &m.name) {
            repeated.push(m.name.clone());
        }
        if matches!(m.op, MatchOp::Equal) {
            out.push((m.name.clone(), m.value.clone()));
        }
    }
    out.retain(|(n, _)| !repeated.contains(n));
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    Arc::new(out)
}

/// Prometheus 2.42's `extrapolatedRate`.
fn extrapolated_rate(
    p: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (first, last) = (p[0], p[p.len() - 1]);
    let mut result = last.1 - first.1;
    if counter {
        let mut last_value = 0.0;
        for &(_, v) in p {
            if v < last_value {
                result += last_value;
            }
            last_value = v;
        }
    }
    let mut duration_to_start = (first.0 - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average = sampled / (p.len() - 1) as f64;
    if counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < duration_to_start {
            duration_to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if duration_to_start < threshold { duration_to_start } else { average / 2.0 };
    interval += if duration_to_end < threshold { duration_to_end } else { average / 2.0 };
    let mut value = result * (interval / sampled);
    if rate {
        value /= range_ms as f64 / 1000.0;
    }
    Some(value)
}

/// `irate` / `idelta`: from the last two samples.
fn instant_value(p: &[(i64, f64)], rate: bool) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (prev, last) = (p[p.len() - 2], p[p.len() - 1]);
    let mut v = if rate && last.1 < prev.1 { last.1 } else { last.1 - prev.1 };
    if rate {
        let dt = (last.0 - prev.0) as f64 / 1000.0;
        if dt == 0.0 {
            return None;
        }
        v /= dt;
    }
    Some(v)
}

/// Least-squares slope and intercept at `intercept_ms` (seconds as x).
fn linear_regression(p: &[(i64, f64)], intercept_ms: i64) -> (f64, f64) {
    let (mut n, mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let first = p[0].1;
    let mut constant = true;
    for (i, &(ts, v)) in p.iter().enumerate() {
        if constant && i > 0 && v != first {
            constant = false;
        }
        n += 1.0;
        let x = (ts - intercept_ms) as f64 / 1000.0;
        sx += x;
        sy += v;
        sxy += x * v;
        sx2 += x * x;
    }
    if constant {
        if first.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first);
    }
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn holt_winters(p: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, p[0].1);
    let mut b = p[1].1 - p[0].1;
    for (i, &(_, v)) in p.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// `histogram_quantile` over classic buckets (`le` labels), per label set without `le`.
fn histogram_quantile(q: f64, v: Vec<Sample>, t: i64) -> Vec<Sample> {
    // Per label set without `le`: its buckets as (upper bound, count).
    let buckets = v.into_iter().filter_map(|s| {
        let le = parse_le(label(&s.labels, "le")).ok()?;
        let key: Vec<(String, String)> =
            s.labels.iter().filter(|(n, _)| n != "le" && n != "__name__").cloned().collect();
        Some((key, (le, s.v)))
    });
    super::group_in_order(buckets)
        .into_iter()
        .map(|(key, buckets)| Sample { labels: Arc::new(key), t, v: bucket_quantile(q, buckets) })
        .collect()
}

/// Go's `strconv.ParseFloat` as `le` values need it (`+Inf`, `1e3`, `0.5`).
fn parse_le(s: &str) -> Result<f64, ()> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| ()),
    }
}

/// Prometheus 2.42's `bucketQuantile`.
fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Coalesce buckets of the same upper bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    // Ensure monotonic counts.
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = merged[..merged.len() - 1].partition_point(|x| x.1 < rank);
    if b == merged.len() - 1 {
        return merged[merged.len() - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let (mut start, end, mut count) = (0.0, merged[b].0, merged[b].1);
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

/// The date functions on a Unix time in seconds, in UTC.
fn date_part(name: &str, seconds: f64) -> f64 {
    let secs = seconds.floor() as i64;
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "minute" => ((in_day / 60) % 60) as f64,
        "hour" => (in_day / 3600) as f64,
        "day_of_week" => ((days + 4).rem_euclid(7)) as f64,
        "day_of_month" => d as f64,
        "day_of_year" => (days - days_from_civil(y, 1, 1) + 1) as f64,
        "days_in_month" => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as f64
        }
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

/// Howard Hinnant's `civil_from_days`: (year, month, day) of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
