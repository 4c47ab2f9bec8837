//! What a query reads: for each selector of the expression, the time window evaluation will
//! look at; for each group that can match, every replica's raw samples over that window
//! (one remote-read request per replica holding all the selectors); merged per series by
//! [`super::history`]; filtered by the full selector on the merged labels.
//!
//! Group pruning: a matcher on a label the group adds (`federation_group="eu-west-1"`) is
//! decided here against the group's value and never sent to its replicas; matchers on replica
//! labels are not sent either (the merged view has no replica label, so they match what the
//! final filter says). A group whose every replica failed makes the answer partial, with a
//! warning naming it; a replica that failed while another answered is named in a warning too.

use super::engine::eval::{Fetched, matches, ms, offset_ms, selector_key};
use super::engine::{EvalError, Series};
use super::history::{ReplicaSeries, merge_group};
use super::proto::{LabelMatcher, MatchType, Query};
use super::remote_read::{Budget, Limits, ReadClient, ReadError};
use crate::merge::StoreHandle;
use crate::series::{Identity, labels_of, name_of, unescape_label_value};
use promql_parser::label::MatchOp;
use promql_parser::parser::ast::AtModifier;
use promql_parser::parser::{Expr, VectorSelector};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// One group as the query side reads it.
pub struct GroupSource {
    pub name: String,
    pub client: ReadClient,
    pub identity: Identity,
}

impl GroupSource {
    /// The remote-read side of a group's settings.
    pub fn new(g: &crate::config::Group, limits: &crate::config::Query) -> Result<Self, crate::client::ClientError> {
        let owner = format!("group {} (remote read)", g.name);
        Ok(GroupSource {
            name: g.name.clone(),
            client: ReadClient::new(&owner, &g.scheme, &g.tls, &g.auth, limits.timeout)?,
            identity: Identity::new(g.replica_labels.clone(), g.labels.clone(), g.honor_labels),
        })
    }
}

/// A group's source and the settings it was built from.
type Built = (Arc<crate::config::Group>, Arc<GroupSource>);

/// The groups the query API reads — every running group, configured or found by a
/// `discover_groups` template, as the scrape manager publishes them (a reload's changes
/// included) — and the store that knows their replicas now.
pub struct Sources {
    view: crate::scrape::manager::GroupsView,
    limits: crate::config::Query,
    pub store: StoreHandle,
    /// Built sources by group name, with the settings they were built from.
    built: std::sync::Mutex<HashMap<String, Built>>,
    /// Per replica address: its remote-read slots.
    slots: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Fetches in flight, shared by the queries that read the same ([`fetch`]).
    inflight: super::inflight::InFlight<SharedFetch>,
    /// `remote_reads`, `remote_read_errors`.
    metrics: Arc<crate::telemetry::Metrics>,
}

impl Sources {
    pub fn new(
        view: crate::scrape::manager::GroupsView,
        limits: crate::config::Query,
        store: StoreHandle,
        metrics: Arc<crate::telemetry::Metrics>,
    ) -> Self {
        Sources {
            view,
            limits,
            store,
            built: std::sync::Mutex::new(HashMap::new()),
            slots: std::sync::Mutex::new(HashMap::new()),
            inflight: Default::default(),
            metrics,
        }
    }

    /// The current groups, sorted by name; a group whose client cannot be built is a warning.
    fn groups(&self, warnings: &mut Vec<String>) -> Vec<Arc<GroupSource>> {
        let view = self.view.load_full();
        let mut built = self.built.lock().expect("sources lock");
        built.retain(|name, _| view.contains_key(name));
        let mut names: Vec<&String> = view.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let settings = &view[name];
            match built.get(name) {
                Some((from, source)) if Arc::ptr_eq(from, settings) => out.push(source.clone()),
                _ => match GroupSource::new(settings, &self.limits) {
                    Ok(source) => {
                        let source = Arc::new(source);
                        built.insert(name.clone(), (settings.clone(), source.clone()));
                        out.push(source);
                    }
                    Err(e) => warnings.push(format!("group {name}: {e}")),
                },
            }
        }
        out
    }

    /// The remote-read slots of the replica at `address` (`remote_read_concurrency` of them).
    fn slots_of(&self, address: &str) -> Arc<Semaphore> {
        let n = self.limits.remote_read_concurrency.max(1);
        let mut slots = self.slots.lock().expect("slots lock");
        slots.entry(address.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(n))).clone()
    }
}

/// Groups fed by the Remote-Write receiver (in the store, not scraped): they have no history
/// to read, so their series come from the live merged snapshot — the latest sample of each,
/// when it falls in a selector's window — and a window longer than the lookback (a range) is
/// said in a warning.
fn pushed(
    sources: &Sources,
    snapshot: &crate::merge::Snapshot,
    needs: &[Need<'_>],
    per_need: &mut [Vec<Series>],
    warnings: &mut Vec<String>,
) {
    let lookback = sources.limits.lookback.as_millis() as i64;
    let scraped = sources.view.load();
    let mut wire = Vec::new();
    for group in snapshot.groups.iter().filter(|g| !scraped.contains_key(&g.status.name)) {
        let mut contributed = false;
        let mut ranged = false;
        for (need, out) in needs.iter().zip(per_need.iter_mut()) {
            for e in group.served() {
                if e.ts < need.from_ms || e.ts > need.to_ms {
                    continue;
                }
                crate::remote::send::wire_labels(e.key, &mut wire);
                let labels: Vec<(String, String)> =
                    wire.iter().map(|(n, v)| ((*n).to_owned(), v.clone().into_owned())).collect();
                if matches(need.selector, &labels) {
                    out.push(Series { labels: Arc::new(labels), samples: vec![(e.ts, e.value)] });
                    contributed = true;
                    ranged |= need.to_ms - need.from_ms > lookback;
                }
            }
        }
        if contributed && ranged {
            warnings.push(format!(
                "group {} is fed by Remote-Write: promfed holds only its latest samples, so a range over it shows those",
                group.status.name
            ));
        }
    }
}

/// `GET path_and_query` (`/api/v1/rules?type=alert`) from each group's leader (then its other
/// replicas in preference order, until one answers): per group its source and the answer's
/// `data`, and warnings for groups none of whose replicas answered.
pub async fn from_leaders(
    sources: &Sources,
    path_and_query: &str,
) -> (Vec<(Arc<GroupSource>, serde_json::Value)>, Vec<String>) {
    let mut warnings = Vec::new();
    let groups = sources.groups(&mut warnings);
    let snapshot = sources.store.snapshot();
    let mut out = Vec::new();
    for group in groups {
        let Some(status) = snapshot.groups.iter().find(|g| g.status.name == group.name).map(|g| &g.status) else {
            continue;
        };
        let mut replicas: Vec<&crate::merge::group::ReplicaStatus> = status.replicas.iter().collect();
        // The leader first, then the preferred, then the rest.
        replicas.sort_by_key(|r| (Some(&r.name) != status.leader.as_ref(), Some(&r.name) != status.preferred.as_ref()));
        let mut errors = Vec::new();
        let mut answered = false;
        for r in replicas {
            match group.client.get_json(&r.address, path_and_query).await {
                Ok(body) if body["status"] == "success" => {
                    out.push((group.clone(), body["data"].clone()));
                    answered = true;
                    break;
                }
                Ok(body) => errors.push(format!("replica {}: {}", r.name, body["error"])),
                Err(e) => errors.push(format!("replica {}: {e}", r.name)),
            }
        }
        if !answered {
            warnings.push(format!("group {}: no replica answered ({})", group.name, errors.join("; ")));
        }
    }
    (out, warnings)
}

/// A selector of the query and the window its evaluation reads.
pub struct Need<'e> {
    pub selector: &'e VectorSelector,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// The selectors of `expr` evaluated at times in `[lo, hi]` (query start/end) and the window
/// each reads: lookback or range, offsets, `@`, subqueries' ranges.
pub fn needs<'e>(expr: &'e Expr, lo: i64, hi: i64, start: i64, end: i64, lookback: i64, out: &mut Vec<Need<'e>>) {
    let at = |a: &Option<AtModifier>, lo: i64, hi: i64| -> (i64, i64) {
        match a {
            None => (lo, hi),
            Some(AtModifier::Start) => (start, start),
            Some(AtModifier::End) => (end, end),
            Some(AtModifier::At(t)) => {
                let t = super::engine::eval::system_time_ms(*t);
                (t, t)
            }
        }
    };
    match expr {
        Expr::VectorSelector(vs) => {
            let (a, b) = at(&vs.at, lo, hi);
            let off = offset_ms(&vs.offset);
            out.push(Need { selector: vs, from_ms: a - off - lookback, to_ms: b - off });
        }
        Expr::MatrixSelector(m) => {
            let (a, b) = at(&m.vs.at, lo, hi);
            let off = offset_ms(&m.vs.offset);
            out.push(Need { selector: &m.vs, from_ms: a - off - ms(m.range), to_ms: b - off });
        }
        Expr::Subquery(s) => {
            let (a, b) = at(&s.at, lo, hi);
            let off = offset_ms(&s.offset);
            needs(&s.expr, a - off - ms(s.range), b - off, start, end, lookback, out);
        }
        Expr::Paren(p) => needs(&p.expr, lo, hi, start, end, lookback, out),
        Expr::Unary(u) => needs(&u.expr, lo, hi, start, end, lookback, out),
        Expr::Binary(b) => {
            needs(&b.lhs, lo, hi, start, end, lookback, out);
            needs(&b.rhs, lo, hi, start, end, lookback, out);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                needs(p, lo, hi, start, end, lookback, out);
            }
            needs(&a.expr, lo, hi, start, end, lookback, out);
        }
        Expr::Call(c) => {
            for arg in &c.args.args {
                needs(arg, lo, hi, start, end, lookback, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The remote-read matchers of `vs` for a group of this `identity` (its added labels decided
/// here, its replica labels not sent); `None` when an added-label matcher rules the group out.
fn matchers_for(vs: &VectorSelector, identity: &Identity) -> Option<Vec<LabelMatcher>> {
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(LabelMatcher { r#type: MatchType::Eq as i32, name: "__name__".into(), value: name.clone() });
    }
    for m in &vs.matchers.matchers {
        if let Some((_, value)) = identity.add.iter().find(|(n, _)| n == &m.name) {
            if !m.is_match(value) {
                return None;
            }
            continue;
        }
        if identity.drop.iter().any(|d| d == &m.name) {
            continue;
        }
        let (kind, value) = match &m.op {
            MatchOp::Equal => (MatchType::Eq, m.value.clone()),
            MatchOp::NotEqual => (MatchType::Neq, m.value.clone()),
            MatchOp::Re(_) => (MatchType::Re, m.value.clone()),
            MatchOp::NotRe(_) => (MatchType::Nre, m.value.clone()),
        };
        out.push(LabelMatcher { r#type: kind as i32, name: m.name.clone(), value });
    }
    if out.is_empty() {
        // Only group or replica labels were matched on: every series of the group.
        out.push(LabelMatcher { r#type: MatchType::Re as i32, name: "__name__".into(), value: ".+".into() });
    }
    Some(out)
}

/// Labels of a canonical key, sorted, `__name__` included.
fn labels_of_key(key: &str) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> =
        labels_of(key).map(|(n, v)| (n.to_owned(), unescape_label_value(v).into_owned())).collect();
    let name = name_of(key);
    if !name.is_empty() {
        labels.push(("__name__".to_owned(), name.to_owned()));
    }
    labels.sort();
    labels
}

/// One fetch's merged series per need and its warnings, shared by the queries in flight
/// that read the same selectors over the same windows.
type SharedFetch = Result<Arc<(Vec<Arc<Vec<Series>>>, Vec<String>)>, EvalError>;

/// Fetches every selector's merged series; returns them with the warnings to show. A replica
/// that has not answered within `read_timeout` is given up (a warning), so one hanging
/// replica makes an answer partial, not late.
///
/// Queries in flight at the same time that read the same selectors over the same windows (a
/// dashboard's panels over one metric, the same panel in several browsers at different
/// steps) share one fetch: the replicas are read once, and the merged series are held once.
pub async fn fetch(
    sources: &Sources,
    needs: &[Need<'_>],
    limits: Limits,
    read_timeout: std::time::Duration,
) -> Result<(Fetched, Vec<String>), EvalError> {
    use std::fmt::Write;
    let mut key = format!("{read_timeout:?}|{}|{}", limits.max_bytes, limits.max_samples);
    for n in needs {
        let _ = write!(key, "|{}|{}|{}", n.selector, n.from_ms, n.to_ms);
    }
    let shared: SharedFetch = sources
        .inflight
        .run(key, || async {
            let (series, warnings) = fetch_now(sources, needs, limits, read_timeout).await?;
            Ok(Arc::new((series.into_iter().map(Arc::new).collect(), warnings)))
        })
        .await;
    let shared = shared?;
    let mut fetched = Fetched::default();
    for (need, series) in needs.iter().zip(&shared.0) {
        fetched.series.insert(selector_key(need.selector), series.clone());
    }
    Ok((fetched, shared.1.clone()))
}

/// [`fetch`] itself: each need's merged series, in the order of `needs`.
async fn fetch_now(
    sources: &Sources,
    needs: &[Need<'_>],
    limits: Limits,
    read_timeout: std::time::Duration,
) -> Result<(Vec<Vec<Series>>, Vec<String>), EvalError> {
    let snapshot = sources.store.snapshot();
    let mut per_need: Vec<Vec<Series>> = needs.iter().map(|_| Vec::new()).collect();
    let mut warnings = Vec::new();
    let groups = sources.groups(&mut warnings);
    // One task per (group, replica): a request with one query per selector the group can match.
    // Tasks live in a JoinSet: a query dropped (the client went away, a timeout) aborts them.
    let mut tasks = tokio::task::JoinSet::new();
    // The query's bytes and samples, over all its remote reads.
    let budget = Arc::new(Budget::default());
    for (gi, group) in groups.iter().enumerate() {
        let mut queries = Vec::new();
        let mut which = Vec::new();
        for (ni, need) in needs.iter().enumerate() {
            if let Some(matchers) = matchers_for(need.selector, &group.identity) {
                queries.push(Query {
                    start_timestamp_ms: need.from_ms,
                    end_timestamp_ms: need.to_ms,
                    matchers,
                    hints: None,
                });
                which.push(ni);
            }
        }
        if queries.is_empty() {
            continue;
        }
        let Some(status) = snapshot.groups.iter().find(|g| g.status.name == group.name).map(|g| &g.status) else {
            warnings.push(format!("group {}: not known to the store yet", group.name));
            continue;
        };
        // The preferred replica first, then the others as configured.
        let mut replicas: Vec<(String, String)> =
            status.replicas.iter().map(|r| (r.name.clone(), r.address.clone())).collect();
        if let Some(p) = &status.preferred
            && let Some(i) = replicas.iter().position(|(n, _)| n == p)
        {
            let preferred = replicas.remove(i);
            replicas.insert(0, preferred);
        }
        if replicas.is_empty() {
            warnings.push(format!("group {}: no replica discovered; its series are missing", group.name));
            continue;
        }
        let queries = Arc::new(queries);
        let which = Arc::new(which);
        for (rank, (name, address)) in replicas.into_iter().enumerate() {
            let slots = sources.slots_of(&address);
            let (queries, which) = (queries.clone(), which.clone());
            let client = group.client.clone();
            let budget = budget.clone();
            tasks.spawn(async move {
                let read = async {
                    let _slot = slots.acquire_owned().await.expect("slots are never closed");
                    client.read_shared(&address, &queries, limits, &budget).await
                };
                let answer = tokio::time::timeout(read_timeout, read).await.map_err(|_| read_timeout);
                (gi, rank, name, which, answer)
            });
        }
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.push(done.map_err(|e| EvalError::Execution(format!("a remote read task failed: {e}")))?);
    }
    // Replicas in rank order within each group, whatever order they finished in.
    results.sort_by_key(|r| (r.0, r.1));
    // Per group: per selector, the replicas' series.
    let mut per_group: HashMap<usize, (Vec<Vec<ReplicaSeries>>, usize, usize)> = HashMap::new();
    let mut failures: HashMap<usize, Vec<String>> = HashMap::new();
    for (gi, rank, name, which, answer) in results {
        let replica = crate::telemetry::ReplicaLabels { group: groups[gi].name.clone(), replica: name.clone() };
        sources.metrics.remote_reads.get_or_create(&replica).inc();
        let reason = match &answer {
            Err(_) => Some("no_answer"),
            Ok(Err(e)) => Some(e.reason()),
            Ok(Ok(_)) => None,
        };
        if let Some(reason) = reason {
            let labels = crate::telemetry::ScrapeErrorLabels {
                group: replica.group,
                replica: replica.replica,
                reason: reason.to_owned(),
            };
            sources.metrics.remote_read_errors.get_or_create(&labels).inc();
        }
        let entry = per_group.entry(gi).or_insert_with(|| ((0..needs.len()).map(|_| Vec::new()).collect(), 0, 0));
        entry.2 += 1;
        match answer {
            Err(waited) => {
                failures.entry(gi).or_default().push(format!("replica {name}: no answer within {waited:?}"));
            }
            Ok(Ok(answer)) => {
                entry.1 += 1;
                for skipped in answer.skipped {
                    warnings.push(format!("group {}: replica {name}: {skipped} skipped", groups[gi].name));
                }
                for (qi, series) in answer.results.into_iter().enumerate() {
                    let ni = which[qi];
                    entry.0[ni].extend(series.into_iter().map(|s| ReplicaSeries {
                        rank,
                        labels: s.labels,
                        samples: s.samples,
                    }));
                }
            }
            Ok(Err(ReadError::TooManySamples { .. })) => return Err(EvalError::TooManySamples),
            Ok(Err(ReadError::TooLarge { limit, .. })) => {
                return Err(EvalError::Execution(format!(
                    "the query's remote reads exceed {limit} bytes (query.max_bytes_per_query)"
                )));
            }
            Ok(Err(e)) => failures.entry(gi).or_default().push(format!("replica {name}: {e}")),
        }
    }
    pushed(sources, &snapshot, needs, &mut per_need, &mut warnings);
    let mut answered_groups: Vec<usize> = per_group.keys().copied().collect();
    answered_groups.sort_unstable();
    for gi in answered_groups {
        let (replicas_per_need, answered, asked) = per_group.remove(&gi).expect("present");
        let group = &groups[gi];
        let failed = failures.remove(&gi).unwrap_or_default();
        if answered == 0 {
            warnings.push(format!(
                "group {}: no replica answered, its series are missing from this answer ({})",
                group.name,
                failed.join("; ")
            ));
            continue;
        }
        if answered < asked {
            warnings.push(format!("group {}: {} (filled from the others)", group.name, failed.join("; ")));
        }
        for (ni, series) in replicas_per_need.into_iter().enumerate() {
            if series.is_empty() {
                continue;
            }
            let vs = needs[ni].selector;
            let out = &mut per_need[ni];
            for merged in merge_group(&group.identity, series) {
                let labels = labels_of_key(&merged.key);
                if matches(vs, &labels) {
                    out.push(Series { labels: Arc::new(labels), samples: merged.samples });
                }
            }
        }
    }
    Ok((per_need, warnings))
}
