//! The evaluator: an expression at one time, a range query as one evaluation per step (as
//! Prometheus' engine steps), over the series fetched for each selector.
//!
//! Values within an evaluation are [`Val`]s; the result is a [`QueryValue`]. Limits: samples
//! held at once (`max_samples`, Prometheus' `--query.max-samples`), and a deadline checked at
//! every step and selector.

use super::{EvalError, Labels, QueryValue, Series, drop_name, format_labels, label};
use crate::merge::is_stale_marker;
use promql_parser::parser::ast::{AtModifier, LabelModifier, VectorMatchCardinality};
use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::{BinaryExpr, Expr, SubqueryExpr, VectorSelector};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use super::value::{Operands, Range, Sample, Val, Window, ms, offset_ms};

/// The series of each selector of a query, keyed by the selector node's address in the AST the
/// evaluation runs on ([`selector_key`]).
#[derive(Debug, Default)]
pub struct Fetched {
    pub series: HashMap<usize, Arc<Vec<Series>>>,
}

/// The key of a selector node in [`Fetched`].
pub fn selector_key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// Settings of one evaluation.
#[derive(Clone, Debug)]
pub struct Settings {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    pub lookback_ms: i64,
    /// The step of a subquery without one (Prometheus: the global evaluation interval).
    pub default_subquery_step_ms: i64,
    pub max_samples: usize,
    pub deadline: Instant,
    /// Set when the client went away: evaluation stops at its next check.
    pub cancelled: Arc<std::sync::atomic::AtomicBool>,
}

/// One query's evaluation.
pub struct Evaluator<'a> {
    pub data: &'a Fetched,
    pub settings: Settings,
    /// Inner results of subqueries by (node, time): overlapping windows are evaluated once.
    memo: RefCell<HashMap<(usize, i64), Val>>,
    /// Per selector node and window kind, each series' position in its samples at the last
    /// step: steps move forward, so the next window is found by walking a few samples on
    /// instead of two binary searches that miss the cache every time.
    cursors: RefCell<HashMap<(usize, u8), Cursors>>,
    /// A range query's nodes evaluated series by series beforehand, by node address: the
    /// node's vector at each step, taken when the step is evaluated.
    pub(super) pre: RefCell<HashMap<usize, Vec<Option<Vec<Sample>>>>>,
    /// Whether range queries use series-major evaluation (off: the plain step order, which
    /// the tests compare it with).
    pub(super) series_major: bool,
}

/// The last window `[from, to]` of one selector and each series' `[start, end)` in it.
struct Cursors {
    from: i64,
    to: i64,
    spans: Vec<(usize, usize)>,
}

/// `[from, to]` of `samples` as indices, walking on from `span` when the window moved forward.
#[inline]
pub(super) fn window(
    samples: &[(i64, f64)],
    span: (usize, usize),
    forward: bool,
    from: i64,
    to: i64,
) -> (usize, usize) {
    if !forward {
        return (samples.partition_point(|&(ts, _)| ts < from), samples.partition_point(|&(ts, _)| ts <= to));
    }
    let (mut a, mut b) = span;
    while a < samples.len() && samples[a].0 < from {
        a += 1;
    }
    b = b.max(a);
    while b < samples.len() && samples[b].0 <= to {
        b += 1;
    }
    (a, b)
}

/// An instant selector's sample of one series: the last of its window `span` (ending at the
/// reference time), unless it is older than `from` or a staleness marker.
#[inline]
pub(super) fn latest_in(samples: &[(i64, f64)], span: (usize, usize), from: i64) -> Option<(i64, f64)> {
    let (a, b) = span;
    if b == a {
        return None;
    }
    let (ts, v) = samples[b - 1];
    (ts >= from && !is_stale_marker(v)).then_some((ts, v))
}

impl<'a> Evaluator<'a> {
    pub fn new(data: &'a Fetched, settings: Settings) -> Self {
        super::clear_label_cache();
        Evaluator {
            data,
            settings,
            memo: RefCell::new(HashMap::new()),
            cursors: RefCell::new(HashMap::new()),
            pre: RefCell::new(HashMap::new()),
            series_major: true,
        }
    }

    /// Cancellation and the deadline.
    pub(super) fn check_deadline(&self) -> Result<(), EvalError> {
        if self.settings.cancelled.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(EvalError::Canceled);
        }
        if Instant::now() > self.settings.deadline { Err(EvalError::Timeout) } else { Ok(()) }
    }

    /// The time an `@` modifier fixes, or `t`.
    pub fn at_time(&self, at: &Option<AtModifier>, t: i64) -> i64 {
        match at {
            None => t,
            Some(AtModifier::Start) => self.settings.start_ms,
            Some(AtModifier::End) => self.settings.end_ms,
            Some(AtModifier::At(time)) => system_time_ms(*time),
        }
    }

    /// An instant query at the settings' end time.
    pub fn instant(&self, expr: &Expr) -> Result<QueryValue, EvalError> {
        let t = self.settings.end_ms;
        Ok(match self.eval(expr, t)? {
            Val::Scalar(v) => QueryValue::Scalar { t, v },
            Val::Str(v) => QueryValue::String { t, v },
            Val::Vector(samples) => {
                check_unique(&samples)?;
                QueryValue::Vector(samples.into_iter().map(|s| (s.labels, t, s.v)).collect())
            }
            Val::Matrix(ranges) => QueryValue::Matrix(ranges.into_iter().map(|r| (r.labels, r.points)).collect()),
        })
    }

    /// A range query: one evaluation per step from start to end.
    pub fn range(&self, expr: &Expr) -> Result<QueryValue, EvalError> {
        let s = &self.settings;
        // Output series by labels; steps mostly return the same `Arc`s (selectors, cached
        // derived labels), found by address first. Every `Arc` whose address is in `by_ptr` is
        // kept alive in `seen`, so an address is never reused for another label set.
        let mut by_labels: hashbrown::HashMap<Labels, usize> = hashbrown::HashMap::new();
        let mut by_ptr: hashbrown::HashMap<usize, usize> = hashbrown::HashMap::new();
        let mut seen: Vec<Labels> = Vec::new();
        let mut series: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
        let mut points = 0usize;
        let mut t = s.start_ms;
        // A label set seen twice in one step is Prometheus' duplicate error: both map to the
        // same output series, whose last point is then at this step already (no hashing of
        // every label set at every step).
        let mut push = |labels: Labels, point: (i64, f64)| -> Result<(), EvalError> {
            let ptr = Arc::as_ptr(&labels) as usize;
            let i = match by_ptr.get(&ptr) {
                Some(&i) => i,
                None => {
                    let i = *by_labels.entry(labels.clone()).or_insert_with(|| {
                        series.push((labels.clone(), Vec::new()));
                        series.len() - 1
                    });
                    by_ptr.insert(ptr, i);
                    seen.push(labels);
                    i
                }
            };
            let points = &mut series[i].1;
            if points.last().is_some_and(|p| p.0 == point.0) {
                return Err(EvalError::Execution("vector cannot contain metrics with the same labelset".into()));
            }
            points.push(point);
            Ok(())
        };
        self.precompute(expr)?;
        while t <= s.end_ms {
            self.check_deadline()?;
            match self.eval(expr, t)? {
                Val::Scalar(v) => push(Arc::new(Vec::new()), (t, v))?,
                Val::Vector(samples) => {
                    points += samples.len();
                    for sample in samples {
                        push(sample.labels, (t, sample.v))?;
                    }
                }
                other => {
                    return Err(EvalError::BadData(format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                        other.type_name()
                    )));
                }
            }
            if points > s.max_samples {
                return Err(EvalError::TooManySamples);
            }
            t += s.step_ms;
        }
        // `push` (and with it `seen`) is done here.
        series.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(QueryValue::Matrix(series))
    }

    /// `expr` at time `t`.
    pub fn eval(&self, expr: &Expr, t: i64) -> Result<Val, EvalError> {
        if let Some(v) = self.take_pre(expr, t) {
            return Ok(Val::Vector(v));
        }
        match expr {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Val::Scalar(v) => Ok(Val::Scalar(-v)),
                Val::Vector(samples) => Ok(Val::Vector(
                    samples.into_iter().map(|s| Sample { labels: drop_name(&s.labels), t: s.t, v: -s.v }).collect(),
                )),
                other => Err(EvalError::Execution(format!("unary minus of a {}", other.type_name()))),
            },
            Expr::VectorSelector(vs) => self.vector_selector(vs, t),
            Expr::MatrixSelector(m) => {
                let t = self.at_time(&m.vs.at, t) - offset_ms(&m.vs.offset);
                let windows = self.matrix_slices(&m.vs, t - ms(m.range), t)?;
                Ok(Val::Matrix(
                    windows.into_iter().map(|(labels, points)| Range { labels, points: points.into_owned() }).collect(),
                ))
            }
            Expr::Subquery(sq) => Ok(Val::Matrix(self.subquery(sq, t)?)),
            Expr::Binary(b) => self.binary(b, t),
            Expr::Aggregate(a) => super::aggregate::aggregate(self, a, t),
            Expr::Call(c) => super::functions::call(self, c, t),
            Expr::Extension(_) => Err(EvalError::Execution("extension expressions are not PromQL".into())),
        }
    }

    /// The series of `vs`.
    pub(super) fn series_of(&self, vs: &VectorSelector) -> &'a [Series] {
        let data: &'a Fetched = self.data;
        data.series.get(&selector_key(vs)).map_or(&[][..], |v| v.as_slice())
    }

    /// Each series' `[from, to]` window of `vs`'s samples, in series order.
    fn spans(&self, vs: &VectorSelector, kind: u8, from: i64, to: i64) -> Vec<(usize, usize)> {
        let series = self.series_of(vs);
        let key = (selector_key(vs), kind);
        let mut cursors = self.cursors.borrow_mut();
        let c = cursors.entry(key).or_insert_with(|| Cursors {
            from: i64::MIN,
            to: i64::MIN,
            spans: vec![(0, 0); series.len()],
        });
        let forward = from >= c.from && to >= c.to;
        for (s, span) in series.iter().zip(c.spans.iter_mut()) {
            *span = window(&s.samples, *span, forward, from, to);
        }
        c.from = from;
        c.to = to;
        c.spans.clone()
    }

    fn vector_selector(&self, vs: &VectorSelector, t: i64) -> Result<Val, EvalError> {
        self.check_deadline()?;
        let reference = self.at_time(&vs.at, t) - offset_ms(&vs.offset);
        let from = reference - self.settings.lookback_ms;
        let mut out = Vec::new();
        let spans = self.spans(vs, 1, from, reference);
        for (s, span) in self.series_of(vs).iter().zip(spans) {
            if let Some((ts, v)) = latest_in(&s.samples, span, from) {
                out.push(Sample { labels: s.labels.clone(), t: ts, v });
            }
        }
        if out.len() > self.settings.max_samples {
            return Err(EvalError::TooManySamples);
        }
        Ok(Val::Vector(out))
    }

    /// The samples of `vs`'s series in `[from, to]` (closed, as in 2.42), staleness markers
    /// left out: each series' window borrowed from the fetched samples, copied only when it
    /// holds a staleness marker.
    pub fn matrix_slices(&self, vs: &VectorSelector, from: i64, to: i64) -> Result<Vec<Window<'a>>, EvalError> {
        use std::borrow::Cow;
        self.check_deadline()?;
        let series = self.series_of(vs);
        let mut out = Vec::with_capacity(series.len());
        let mut total = 0;
        let spans = self.spans(vs, 2, from, to);
        for (s, (a, b)) in series.iter().zip(spans) {
            let window = &s.samples[a..b];
            let points = if window.iter().any(|&(_, v)| is_stale_marker(v)) {
                Cow::Owned(window.iter().copied().filter(|&(_, v)| !is_stale_marker(v)).collect())
            } else {
                Cow::Borrowed(window)
            };
            if points.is_empty() {
                continue;
            }
            total += points.len();
            out.push((s.labels.clone(), points));
        }
        if total > self.settings.max_samples {
            return Err(EvalError::TooManySamples);
        }
        Ok(out)
    }

    /// A subquery at `t`: the inner expression at every step of its own, aligned to multiples
    /// of the step, within `[t - offset - range, t - offset]`.
    pub fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<Vec<Range>, EvalError> {
        let step = sq.step.map(ms).filter(|&s| s > 0).unwrap_or(self.settings.default_subquery_step_ms);
        let end = self.at_time(&sq.at, t) - offset_ms(&sq.offset);
        let start = end - ms(sq.range);
        let mut first = step * start.div_euclid(step);
        if first < start {
            first += step;
        }
        let node = &*sq.expr as *const Expr as usize;
        let mut by_labels: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
        let mut order: Vec<Labels> = Vec::new();
        let mut total = 0;
        let mut p = first;
        while p <= end {
            self.check_deadline()?;
            let cached = self.memo.borrow().get(&(node, p)).cloned();
            let value = match cached {
                Some(v) => v,
                None => {
                    let v = self.eval(&sq.expr, p)?;
                    self.memo.borrow_mut().insert((node, p), v.clone());
                    v
                }
            };
            match value {
                Val::Vector(samples) => {
                    for s in samples {
                        let entry = by_labels.entry(s.labels.clone()).or_insert_with(|| {
                            order.push(s.labels.clone());
                            Vec::new()
                        });
                        entry.push((p, s.v));
                        total += 1;
                    }
                }
                Val::Scalar(v) => {
                    let labels: Labels = Arc::new(Vec::new());
                    let entry = by_labels.entry(labels.clone()).or_insert_with(|| {
                        order.push(labels);
                        Vec::new()
                    });
                    entry.push((p, v));
                    total += 1;
                }
                other => {
                    return Err(EvalError::Execution(format!("subquery of a {}", other.type_name())));
                }
            }
            if total > self.settings.max_samples {
                return Err(EvalError::TooManySamples);
            }
            p += step;
        }
        Ok(order
            .into_iter()
            .map(|labels| {
                let points = by_labels.remove(&labels).unwrap_or_default();
                Range { labels, points }
            })
            .collect())
    }

    fn binary(&self, b: &BinaryExpr, t: i64) -> Result<Val, EvalError> {
        let op = b.op;
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let (v, keep) = scalar_op(op, l, r)?;
                if is_comparison(op) && !return_bool {
                    return Err(EvalError::BadData("comparisons between scalars must use BOOL modifier".into()));
                }
                Ok(Val::Scalar(if is_comparison(op) { if keep { 1.0 } else { 0.0 } } else { v }))
            }
            (Val::Vector(l), Val::Scalar(r)) => Ok(Val::Vector(vector_scalar(op, l, r, false, return_bool)?)),
            (Val::Scalar(l), Val::Vector(r)) => Ok(Val::Vector(vector_scalar(op, r, l, true, return_bool)?)),
            (Val::Vector(l), Val::Vector(r)) => Ok(Val::Vector(self.vector_vector(b, l, r, return_bool)?)),
            (l, r) => Err(EvalError::Execution(format!(
                "binary operator {} between a {} and a {}",
                op,
                l.type_name(),
                r.type_name()
            ))),
        }
    }

    fn vector_vector(
        &self,
        b: &BinaryExpr,
        lhs: Vec<Sample>,
        rhs: Vec<Sample>,
        return_bool: bool,
    ) -> Result<Vec<Sample>, EvalError> {
        let op = b.op;
        let modifier = b.modifier.as_ref();
        let card = modifier.map_or(
            if is_set_op(op) { VectorMatchCardinality::ManyToMany } else { VectorMatchCardinality::OneToOne },
            |m| m.card.clone(),
        );
        let (on, names): (bool, Vec<String>) = match modifier.and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            None => (false, Vec::new()),
        };
        let sig = |labels: &[(String, String)]| signature(labels, on, &names);
        match op.id() {
            token::T_LAND => {
                let right: std::collections::HashSet<String> = rhs.iter().map(|s| sig(&s.labels)).collect();
                return Ok(lhs.into_iter().filter(|s| right.contains(&sig(&s.labels))).collect());
            }
            token::T_LUNLESS => {
                let right: std::collections::HashSet<String> = rhs.iter().map(|s| sig(&s.labels)).collect();
                return Ok(lhs.into_iter().filter(|s| !right.contains(&sig(&s.labels))).collect());
            }
            token::T_LOR => {
                let left: std::collections::HashSet<String> = lhs.iter().map(|s| sig(&s.labels)).collect();
                let mut out = lhs;
                out.extend(rhs.into_iter().filter(|s| !left.contains(&sig(&s.labels))));
                return Ok(out);
            }
            _ => {}
        }
        // Arithmetic and comparison: one side is "one" (unique per signature), the other "many".
        let (many, one, swapped, include) = match &card {
            VectorMatchCardinality::OneToMany(l) => (rhs, lhs, true, l.labels.clone()),
            VectorMatchCardinality::ManyToOne(l) => (lhs, rhs, false, l.labels.clone()),
            _ => (lhs, rhs, false, Vec::new()),
        };
        let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
        let mut right: HashMap<String, &Sample> = HashMap::with_capacity(one.len());
        for s in &one {
            let key = sig(&s.labels);
            if let Some(prev) = right.insert(key, s) {
                let side = if swapped { "left" } else { "right" };
                return Err(EvalError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    format_labels(&super::grouping(&s.labels, on, &names)),
                    format_labels(&prev.labels),
                    format_labels(&s.labels),
                )));
            }
        }
        let mut out = Vec::new();
        // Prometheus' matchedSigs: one-to-one, a signature matched twice is an error; many-to-one,
        // the same result labels twice for one signature.
        let mut matched: HashMap<String, std::collections::HashSet<Vec<(String, String)>>> = HashMap::new();
        let drop_metric = !is_comparison(op) || return_bool;
        for s in many {
            let key = sig(&s.labels);
            let Some(o) = right.get(&key) else { continue };
            let (l, r) = if swapped { (o.v, s.v) } else { (s.v, o.v) };
            let (v, keep) = scalar_op(op, l, r)?;
            let value = if is_comparison(op) {
                if return_bool {
                    if keep { 1.0 } else { 0.0 }
                } else if keep {
                    l
                } else {
                    continue;
                }
            } else {
                v
            };
            // Result labels (Prometheus' resultMetric): from the "many" side.
            let mut labels: Vec<(String, String)> = s.labels.as_ref().clone();
            if drop_metric {
                labels.retain(|(n, _)| n != "__name__");
            }
            if one_to_one {
                if on {
                    labels.retain(|(n, _)| names.contains(n));
                } else {
                    labels.retain(|(n, _)| !names.contains(n));
                }
            }
            for name in &include {
                labels.retain(|(n, _)| n != name);
                let v = label(&o.labels, name);
                if !v.is_empty() {
                    labels.push((name.clone(), v.to_owned()));
                }
            }
            labels.sort();
            let inserted = matched.entry(key);
            if one_to_one {
                if matches!(inserted, std::collections::hash_map::Entry::Occupied(_)) {
                    return Err(EvalError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
                inserted.or_default();
            } else if !inserted.or_default().insert(labels.clone()) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches".into(),
                ));
            }
            out.push(Sample { labels: Arc::new(labels), t: s.t, v: value });
        }
        Ok(out)
    }
}

impl Drop for Evaluator<'_> {
    fn drop(&mut self) {
        super::clear_label_cache();
    }
}

/// The milliseconds of a `SystemTime`.
pub fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The vector-matching key of `labels`: only `names` (`on`), or all but `names` and `__name__`.
fn signature(labels: &[(String, String)], on: bool, names: &[String]) -> String {
    let mut key = String::new();
    for (n, v) in labels.iter().filter(|(n, _)| super::grouped(n, on, names)) {
        key.push_str(n);
        key.push('\u{ff}');
        key.push_str(v);
        key.push('\u{ff}');
    }
    key
}

fn is_comparison(op: TokenType) -> bool {
    matches!(op.id(), token::T_EQLC | token::T_NEQ | token::T_GTR | token::T_LSS | token::T_GTE | token::T_LTE)
}

fn is_set_op(op: TokenType) -> bool {
    matches!(op.id(), token::T_LAND | token::T_LOR | token::T_LUNLESS)
}

/// `l op r`: the arithmetic result, and for comparisons whether it holds.
fn scalar_op(op: TokenType, l: f64, r: f64) -> Result<(f64, bool), EvalError> {
    Ok(match op.id() {
        token::T_ADD => (l + r, true),
        token::T_SUB => (l - r, true),
        token::T_MUL => (l * r, true),
        token::T_DIV => (l / r, true),
        token::T_POW => (l.powf(r), true),
        // Go's math.Mod: the remainder with the sign of `l`, as Rust's `%` on f64.
        token::T_MOD => (l % r, true),
        token::T_ATAN2 => (l.atan2(r), true),
        token::T_EQLC => (l, l == r),
        token::T_NEQ => (l, l != r),
        token::T_GTR => (l, l > r),
        token::T_LSS => (l, l < r),
        token::T_GTE => (l, l >= r),
        token::T_LTE => (l, l <= r),
        _ => return Err(EvalError::Execution(format!("operator {op} not done yet"))),
    })
}

fn vector_scalar(
    op: TokenType,
    vector: Vec<Sample>,
    scalar: f64,
    scalar_left: bool,
    return_bool: bool,
) -> Result<Vec<Sample>, EvalError> {
    let mut out = Vec::with_capacity(vector.len());
    for s in vector {
        let (l, r) = if scalar_left { (scalar, s.v) } else { (s.v, scalar) };
        let (v, keep) = scalar_op(op, l, r)?;
        if is_comparison(op) {
            if return_bool {
                out.push(Sample { labels: drop_name(&s.labels), t: s.t, v: if keep { 1.0 } else { 0.0 } });
            } else if keep {
                // A filter: the vector's own value stays.
                out.push(s);
            }
        } else {
            out.push(Sample { labels: drop_name(&s.labels), t: s.t, v });
        }
    }
    Ok(out)
}

/// A vector with two samples of the same labels cannot be returned (Prometheus:
/// "vector cannot contain metrics with the same labelset").
fn check_unique(samples: &[Sample]) -> Result<(), EvalError> {
    if samples.len() < 2 {
        return Ok(());
    }
    let mut seen = hashbrown::HashSet::with_capacity(samples.len());
    for s in samples {
        if !seen.insert(&s.labels) {
            return Err(EvalError::Execution("vector cannot contain metrics with the same labelset".into()));
        }
    }
    Ok(())
}

/// Whether `labels` satisfy every matcher of `vs` (its name included).
pub fn matches(vs: &VectorSelector, labels: &[(String, String)]) -> bool {
    if let Some(name) = &vs.name
        && label(labels, "__name__") != name
    {
        return false;
    }
    vs.matchers.matchers.iter().all(|m| m.is_match(label(labels, &m.name)))
}

/// The operators' view of the evaluator ([`Operands`]): the inherent methods.
impl<'a> Operands<'a> for Evaluator<'a> {
    fn eval(&self, e: &Expr, t: i64) -> Result<Val, EvalError> {
        Evaluator::eval(self, e, t)
    }
    fn at_time(&self, at: &Option<AtModifier>, t: i64) -> i64 {
        Evaluator::at_time(self, at, t)
    }
    fn matrix_slices(&self, vs: &VectorSelector, from: i64, to: i64) -> Result<Vec<Window<'a>>, EvalError> {
        Evaluator::matrix_slices(self, vs, from, to)
    }
    fn subquery(&self, sq: &SubqueryExpr, t: i64) -> Result<Vec<Range>, EvalError> {
        Evaluator::subquery(self, sq, t)
    }
}
