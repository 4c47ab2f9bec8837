//! The aggregation operators (`sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `quantile`, `count_values`) with `by` / `without`, computed as
//! Prometheus 2.42 computes them (incremental mean, Welford's variance, NaN handling of
//! min/max), so results agree to the last bits where the order of series agrees.

use super::value::{Operands, Sample, Val};
use super::{EvalError, Labels};
use promql_parser::parser::AggregateExpr;
use promql_parser::parser::ast::LabelModifier;
use promql_parser::parser::token;
use std::sync::Arc;

pub fn aggregate(ev: &dyn Operands<'_>, a: &AggregateExpr, t: i64) -> Result<Val, EvalError> {
    let op = a.op.id();
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, t)?),
        None => None,
    };
    let Val::Vector(input) = ev.eval(&a.expr, t)? else {
        return Err(EvalError::Execution("aggregation over something that is not an instant vector".into()));
    };
    let (by, names): (bool, Vec<String>) = match &a.modifier {
        Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        None => (true, Vec::new()),
    };
    let group_of = |labels: &[(String, String)]| super::grouping(labels, by, &names);
    if op == token::T_COUNT_VALUES {
        let Some(Val::Str(dst)) = param else {
            return Err(EvalError::Execution("count_values needs a string parameter".into()));
        };
        if !crate::series::is_label_name(dst.as_bytes()) {
            return Err(EvalError::Execution(format!("invalid label name {dst:?}")));
        }
        let groups = super::group_in_order(input.iter().map(|s| {
            let mut g = group_of(&s.labels);
            g.retain(|(n, _)| n != &dst);
            g.push((dst.clone(), format_value(s.v)));
            g.sort();
            (g, ())
        }));
        return Ok(Val::Vector(
            groups.into_iter().map(|(g, members)| Sample { v: members.len() as f64, labels: Arc::new(g), t }).collect(),
        ));
    }
    if op == token::T_TOPK || op == token::T_BOTTOMK {
        let k = scalar_param(param, "k")?;
        return Ok(Val::Vector(top_bottom(input, k, op == token::T_TOPK, group_of)));
    }
    let phi = if op == token::T_QUANTILE { Some(scalar_param(param, "phi")?) } else { None };
    // Groups in order of first appearance, as Prometheus keeps them. A series' group is found
    // once per evaluation ([`super::Groups`]); per step, `slot` maps a group to its state.
    let node = a as *const AggregateExpr as usize;
    let mut states: Vec<(Labels, State)> = Vec::new();
    super::with_groups(node, |groups| {
        let mut slot: Vec<u32> = vec![0; groups.labels.len()];
        for s in &input {
            let id = groups.id(&s.labels, || group_of(&s.labels));
            if slot.len() <= id {
                slot.resize(id + 1, 0);
            }
            match slot[id] {
                0 => {
                    states.push((groups.labels[id].clone(), State::new(op, s.v)));
                    slot[id] = states.len() as u32;
                }
                i => states[i as usize - 1].1.add(op, s.v),
            }
        }
    });
    let out = states.into_iter().map(|(labels, state)| Sample { labels, t, v: state.result(op, phi) }).collect();
    Ok(Val::Vector(out))
}

fn scalar_param(param: Option<Val>, what: &str) -> Result<f64, EvalError> {
    match param {
        Some(Val::Scalar(v)) => Ok(v),
        _ => Err(EvalError::Execution(format!("the aggregation's {what} must be a scalar"))),
    }
}

/// One group's running aggregate.
struct State {
    value: f64,
    mean: f64,
    count: f64,
    values: Vec<f64>,
}

impl State {
    fn new(op: u16, v: f64) -> State {
        let values = if op == token::T_QUANTILE { vec![v] } else { Vec::new() };
        let value = match op {
            token::T_STDDEV | token::T_STDVAR => 0.0,
            token::T_GROUP | token::T_COUNT => 1.0,
            _ => v,
        };
        State { value, mean: v, count: 1.0, values }
    }

    fn add(&mut self, op: u16, v: f64) {
        match op {
            token::T_SUM => self.value += v,
            token::T_AVG => {
                self.count += 1.0;
                if self.mean.is_infinite() {
                    if v.is_infinite() && (self.mean > 0.0) == (v > 0.0) {
                        return;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        return;
                    }
                }
                // Each side divided by the count so that large values do not overflow.
                self.mean += v / self.count - self.mean / self.count;
            }
            token::T_COUNT => self.value += 1.0,
            token::T_GROUP => {}
            token::T_MAX if self.value < v || self.value.is_nan() => self.value = v,
            token::T_MIN if self.value > v || self.value.is_nan() => self.value = v,
            token::T_STDDEV | token::T_STDVAR => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            token::T_QUANTILE => self.values.push(v),
            _ => {}
        }
    }

    fn result(self, op: u16, phi: Option<f64>) -> f64 {
        match op {
            token::T_AVG => self.mean,
            token::T_STDVAR => self.value / self.count,
            token::T_STDDEV => (self.value / self.count).sqrt(),
            token::T_QUANTILE => quantile(phi.unwrap_or(f64::NAN), self.values),
            _ => self.value,
        }
    }
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks; below 0 is -Inf,
/// above 1 is +Inf, NaN is NaN.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // Go's sort.Float64s: NaN first.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).expect("not NaN"),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `topk` / `bottomk`: the k largest (smallest) per group, with their own labels. NaN sorts
/// last for both, as in Prometheus.
fn top_bottom(
    input: Vec<Sample>,
    k: f64,
    top: bool,
    group_of: impl Fn(&[(String, String)]) -> Vec<(String, String)>,
) -> Vec<Sample> {
    if k < 1.0 || k.is_nan() {
        return Vec::new();
    }
    let k = if k > input.len() as f64 { input.len() } else { k as usize };
    let mut out = Vec::new();
    for (_, mut members) in super::group_in_order(input.into_iter().map(|s| (group_of(&s.labels), s))) {
        members.sort_by(|a, b| {
            let (x, y) = (a.v, b.v);
            match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if top => y.total_cmp(&x),
                _ => x.total_cmp(&y),
            }
        });
        members.truncate(k);
        out.extend(members);
    }
    out
}

/// A value as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it (count_values' label).
pub fn format_value(v: f64) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// [`format_value`] appended to `out` (the query API writes every point this way).
pub fn write_value(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}
