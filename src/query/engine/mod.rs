//! PromQL evaluated in promfed, on `promql-parser`'s AST, with Prometheus 2.42's semantics, over
//! series already fetched (and merged) for the query's selectors.
//!
//! - [`eval`]: the evaluator — steps, selectors (lookback, staleness, `offset`, `@`),
//!   subqueries, unary and binary operators with vector matching;
//! - [`aggregate`]: the aggregation operators;
//! - [`functions`]: the functions.
//!
//! Semantics followed where 2.42 differs from later Prometheus: a range selector and the
//! lookback window are closed at both ends (`[t - range, t]`, `[t - lookback, t]`); `holt_winters`
//! (renamed in 3.0) exists; functions added after 2.42 are refused as unknown, as 2.42 would.
//! Native histograms are not evaluated. A construct not done yet is an `execution` error naming
//! it — never a silently different answer.

pub mod aggregate;
mod by_series;
pub mod eval;
pub mod functions;
pub mod value;

use std::sync::Arc;

/// A series' labels, `__name__` included, sorted by name.
pub type Labels = Arc<Vec<(String, String)>>;

/// A fetched series: labels and samples in time order (milliseconds, value).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// A query's result, as the API renders it.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    Scalar {
        t: i64,
        v: f64,
    },
    String {
        t: i64,
        v: String,
    },
    /// An instant vector: (labels, t, v).
    Vector(Vec<(Labels, i64, f64)>),
    /// A range vector or a range query's result: labels and points.
    Matrix(Vec<(Labels, Vec<(i64, f64)>)>),
}

/// Why evaluation failed; the API maps each to Prometheus' `errorType`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// `execution` (422): the query cannot be evaluated as asked.
    #[error("{0}")]
    Execution(String),
    /// `bad_data` (400): a problem Prometheus reports at parse or check time.
    #[error("{0}")]
    BadData(String),
    /// `execution`: Prometheus' limit on samples held.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// `timeout` (503).
    #[error("query timed out in query execution")]
    Timeout,
    /// `canceled`: the client went away.
    #[error("query was canceled in query execution")]
    Canceled,
}

/// Label value of `name`, or "".
pub fn label<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    labels.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
}

/// Derived label sets of one evaluation, by the address of the set they were derived from: a
/// series' labels without its name are made once, not once per step (a range query's steps
/// all see the same series). Each entry keeps its source alive, so an address is never reused
/// for another set while it is cached; the cache is emptied when an evaluation starts and ends.
#[derive(Default)]
pub(crate) struct LabelCache {
    dropped: hashbrown::HashMap<usize, (Labels, Labels)>,
    /// Per aggregation node: its groups.
    groups: hashbrown::HashMap<usize, Groups>,
}

/// One aggregation's groups during an evaluation: each input label set (by address, kept
/// alive so the address is not reused) → its group's id, and each group's labels by id. A
/// range query's steps see the same series again and again; each sample then costs one
/// lookup by address.
#[derive(Default)]
pub(crate) struct Groups {
    ids: hashbrown::HashMap<usize, (Labels, u32)>,
    by_labels: hashbrown::HashMap<Labels, u32>,
    /// Group labels by id.
    pub labels: Vec<Labels>,
}

impl Groups {
    /// The id of the group of `labels`, whose group labels `make` gives the first time.
    pub fn id(&mut self, labels: &Labels, make: impl FnOnce() -> Vec<(String, String)>) -> usize {
        let ptr = Arc::as_ptr(labels) as usize;
        if let Some(&(_, id)) = self.ids.get(&ptr) {
            return id as usize;
        }
        let group: Labels = Arc::new(make());
        let next = self.labels.len() as u32;
        let id = *self.by_labels.entry(group.clone()).or_insert_with(|| next);
        if id == next {
            self.labels.push(group);
        }
        self.ids.insert(ptr, (labels.clone(), id));
        id as usize
    }
}

/// Runs `f` on the groups of the aggregation node `node` (its address) in this evaluation.
pub(crate) fn with_groups<R>(node: usize, f: impl FnOnce(&mut Groups) -> R) -> R {
    LABEL_CACHE.with(|c| f(c.borrow_mut().groups.entry(node).or_default()))
}

thread_local! {
    pub(crate) static LABEL_CACHE: std::cell::RefCell<LabelCache> = std::cell::RefCell::new(LabelCache::default());
}

/// Empties this thread's [`LabelCache`].
pub(crate) fn clear_label_cache() {
    LABEL_CACHE.with(|c| *c.borrow_mut() = LabelCache::default());
}

/// `labels` without `__name__` (the same `Arc` for the same input during an evaluation).
pub fn drop_name(labels: &Labels) -> Labels {
    if !labels.iter().any(|(n, _)| n == "__name__") {
        return labels.clone();
    }
    let key = Arc::as_ptr(labels) as usize;
    LABEL_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((_, dropped)) = c.dropped.get(&key) {
            return dropped.clone();
        }
        let dropped: Labels = Arc::new(labels.iter().filter(|(n, _)| n != "__name__").cloned().collect());
        c.dropped.insert(key, (labels.clone(), dropped.clone()));
        dropped
    })
}

/// Whether label `name` is part of a grouping: listed with `include` (`by`, `on`), or not
/// listed and not `__name__` (`without`, `ignoring`, which always drop the name).
pub(crate) fn grouped(name: &str, include: bool, names: &[String]) -> bool {
    if include { names.iter().any(|n| n == name) } else { name != "__name__" && !names.iter().any(|n| n == name) }
}

/// The labels of `labels` that are part of a grouping ([`grouped`]).
pub(crate) fn grouping(labels: &[(String, String)], include: bool, names: &[String]) -> Vec<(String, String)> {
    labels.iter().filter(|(n, _)| grouped(n, include, names)).cloned().collect()
}

/// `(key, item)` pairs grouped by key, groups in order of first appearance (the order
/// Prometheus keeps its groups in).
pub(crate) fn group_in_order<K: std::hash::Hash + Eq + Clone, T>(
    items: impl IntoIterator<Item = (K, T)>,
) -> Vec<(K, Vec<T>)> {
    let mut index: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for (key, item) in items {
        match index.get(&key) {
            Some(&i) => groups[i].1.push(item),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![item]));
            }
        }
    }
    groups
}

/// Prometheus' rendering of a label set, for error messages: `{a="1", b="2"}`.
pub fn format_labels(labels: &[(String, String)]) -> String {
    let pairs: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests;
