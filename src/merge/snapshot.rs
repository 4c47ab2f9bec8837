//! Immutable views of the merged store, published after every merge.
//!
//! Readers (`/federate`, the status API, `/metrics`) load the current [`Snapshot`] through an
//! `ArcSwap` and never wait for the scraper or the merge. The rendered bodies of a snapshot are
//! cached inside it, so a thousand scrapes of the same snapshot render it once.

use super::arena::ValRef;
use super::arena::{Chunks, ValueArena};
use crate::config::target::Role;
use crate::key::{KeyRef, Schema, Schemas};
use crate::parse::MetricType;
use bytes::Bytes;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, OnceLock};

/// Health and history of one replica, as shown in status.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaStatus {
    pub name: String,
    pub role: Role,
    pub address: String,
    /// `None` until the first scrape completes.
    pub healthy: Option<bool>,
    pub consecutive_good_scrapes: u32,
    pub last_scrape_ms: Option<i64>,
    pub last_duration_seconds: Option<f64>,
    pub last_error: Option<String>,
    pub last_samples: usize,
    /// The newest sample timestamp of its last good scrape (how fresh its data is).
    pub newest_sample_ms: Option<i64>,
    /// False once discovery no longer lists it (its slot is kept until reused).
    #[serde(skip)]
    pub active: bool,
    /// Bumped at every scrape and every change of the replica (the merge's own bookkeeping).
    #[serde(skip)]
    pub(super) generation: u16,
}

/// A group's state as shown by the status API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GroupStatus {
    pub name: String,
    pub leader: Option<String>,
    pub preferred: Option<String>,
    pub pinned: Option<String>,
    /// True when no replica's last scrape succeeded (and at least one was tried).
    pub down: bool,
    pub failovers: u64,
    pub series: usize,
    pub replicas: Vec<ReplicaStatus>,
    /// Discovered targets that could not become replicas, `address: reason`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_targets: Vec<String>,
    /// Configuration problems found at run time (e.g. two primaries), and what promfed does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One series as published in a snapshot (32 bytes); its key is `schema` in the snapshot's
/// schema table and `values` ([`crate::key`]).
#[derive(Clone, Copy, Debug)]
pub struct SnapEntry {
    /// Resolved through the [`Chunks`] published with it.
    pub values: ValRef,
    pub ts: i64,
    pub value: f64,
    pub schema: u32,
    pub render_type: MetricType,
}

/// One served series with its key as text: what [`Group::snapshot_entries`] returns, for tests
/// and tools (the store publishes the compact [`Group::snapshot`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TextEntry {
    pub key: String,
    pub ts: i64,
    pub value: f64,
    pub render_type: MetricType,
}

/// A k-way merge cursor: the next key, the group, the index in it.
type HeapItem<'a> = (KeyRef<'a>, usize, usize);

/// One group's part of a snapshot.
#[derive(Debug)]
pub struct GroupSnapshot {
    pub status: GroupStatus,
    /// The group's schema table as it was at the snapshot: [`SnapEntry::schema`] indexes it.
    pub schemas: Arc<Vec<Arc<Schema>>>,
    /// The group's label values as they were at the snapshot: [`SnapEntry::values`] resolve here.
    pub values: Arc<Chunks>,
    /// Served series, sorted by key.
    pub entries: Vec<SnapEntry>,
}

/// One served series as readers see it: its key, and the sample to serve.
#[derive(Clone, Copy, Debug)]
pub struct Served<'a> {
    pub key: KeyRef<'a>,
    pub ts: i64,
    pub value: f64,
    pub render_type: MetricType,
}

impl GroupSnapshot {
    /// A group snapshot of series given with text keys (sorted by key), with a schema table of
    /// its own (tests, tools).
    pub fn from_text(status: GroupStatus, entries: &[TextEntry]) -> GroupSnapshot {
        let mut schemas = Schemas::default();
        let mut arena = ValueArena::default();
        let entries = entries
            .iter()
            .map(|e| {
                let (schema, values) = crate::key::split(&e.key);
                let id = schemas.intern(&schema, crate::key::hash_schema(&schema));
                schemas.acquire(id);
                SnapEntry {
                    values: arena.push(&values),
                    ts: e.ts,
                    value: e.value,
                    schema: id,
                    render_type: e.render_type,
                }
            })
            .collect();
        GroupSnapshot { status, schemas: schemas.shared(), values: arena.shared(), entries }
    }

    /// The key of `entry` (one of this snapshot's entries).
    #[inline]
    pub fn key<'a>(&'a self, entry: &'a SnapEntry) -> KeyRef<'a> {
        KeyRef { schema: &self.schemas[entry.schema as usize], values: self.values.get(entry.values) }
    }

    /// The served series, sorted by key.
    pub fn served(&self) -> impl Iterator<Item = Served<'_>> {
        self.entries.iter().map(|e| self.served_at(e))
    }

    #[inline]
    fn served_at<'a>(&'a self, e: &'a SnapEntry) -> Served<'a> {
        Served { key: self.key(e), ts: e.ts, value: e.value, render_type: e.render_type }
    }
}

/// What a body in the cache was rendered for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BodyKey {
    /// The `match[]` values, sorted.
    pub selectors: Vec<String>,
    pub protobuf: bool,
    pub gzip: bool,
}

/// A rendered body and how many series it holds.
#[derive(Clone, Debug)]
pub struct Body {
    pub bytes: Bytes,
    pub series: u64,
}

/// How many distinct bodies a snapshot keeps; Prometheus servers scraping with the same few
/// `match[]` sets is the normal case, anything else renders on demand.
const BODY_CACHE_SIZE: usize = 8;

/// The whole merged view at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub groups: Vec<Arc<GroupSnapshot>>,
    /// True once every group has applied at least one scrape outcome.
    pub ready: bool,
    /// Increases with every publication.
    pub generation: u64,
    bodies: Mutex<Vec<(BodyKey, Arc<OnceLock<Body>>)>>,
}

impl Snapshot {
    /// A snapshot of these groups.
    pub fn new(groups: Vec<Arc<GroupSnapshot>>, ready: bool, generation: u64) -> Self {
        Snapshot { groups, ready, generation, bodies: Mutex::new(Vec::new()) }
    }

    /// Every served series of every group, sorted by key (a k-way merge of the sorted groups),
    /// so that a metric family is contiguous in the output whatever group its series come from.
    ///
    /// A series that two groups both serve (their labels collide: give groups distinguishing
    /// labels) is served once, with the newest sample; each group's timestamps only grow, so
    /// the newest of them does too.
    pub fn entries(&self) -> Box<dyn Iterator<Item = Served<'_>> + '_> {
        // One group (the usual case): its entries are the answer, without a merge.
        if let [only] = self.groups.as_slice() {
            return Box::new(only.served());
        }
        let mut merged = self.merged().peekable();
        Box::new(std::iter::from_fn(move || {
            let mut best = merged.next()?;
            while let Some(next) = merged.next_if(|n| n.key.same(&best.key)) {
                if next.ts > best.ts {
                    best = next;
                }
            }
            Some(best)
        }))
    }

    fn merged(&self) -> impl Iterator<Item = Served<'_>> {
        let mut heap: BinaryHeap<Reverse<HeapItem<'_>>> = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(g, gs)| gs.entries.first().map(|e| Reverse((gs.key(e), g, 0))))
            .collect();
        std::iter::from_fn(move || {
            let Reverse((_, g, i)) = heap.pop()?;
            let gs = &self.groups[g];
            if let Some(next) = gs.entries.get(i + 1) {
                heap.push(Reverse((gs.key(next), g, i + 1)));
            }
            Some(gs.served_at(&gs.entries[i]))
        })
    }

    /// Number of served series.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.entries.len()).sum()
    }

    /// True when nothing is served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached body for `key`, or renders it with `render` and caches it. Concurrent callers
    /// for the same key wait for the one render (callers are on the blocking pool); other keys
    /// and other snapshots are not held up.
    pub fn body(&self, key: BodyKey, render: impl FnOnce(&Snapshot) -> Body) -> Body {
        let cell = {
            let mut cache = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
            match cache.iter().find(|(k, _)| *k == key) {
                Some((_, cell)) => cell.clone(),
                None => {
                    if cache.len() >= BODY_CACHE_SIZE {
                        cache.remove(0);
                    }
                    let cell = Arc::new(OnceLock::new());
                    cache.push((key, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_init(|| render(self)).clone()
    }

    /// The body for `key` if it has been rendered already (does not render).
    pub fn cached(&self, key: &BodyKey) -> Option<Body> {
        let cache = self.bodies.lock().unwrap_or_else(|e| e.into_inner());
        cache.iter().find(|(k, _)| k == key).and_then(|(_, cell)| cell.get().cloned())
    }

    /// The status of the group named `name`.
    pub fn group(&self, name: &str) -> Option<&GroupSnapshot> {
        self.groups.iter().map(|g| &**g).find(|g| g.status.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(keys: &[&str]) -> Arc<GroupSnapshot> {
        group_at(keys.iter().map(|k| (*k, 0)).collect())
    }

    fn group_at(keys: Vec<(&str, i64)>) -> Arc<GroupSnapshot> {
        let status = GroupStatus { name: "g".into(), series: keys.len(), ..Default::default() };
        let entries: Vec<TextEntry> = keys
            .into_iter()
            .map(|(k, ts)| TextEntry { key: k.into(), ts, value: 0.0, render_type: MetricType::Untyped })
            .collect();
        Arc::new(GroupSnapshot::from_text(status, &entries))
    }

    #[test]
    fn entries_of_groups_are_merged_in_key_order() {
        let s = Snapshot::new(
            vec![group(&["a", "c{g=\"1\"}", "c_x", "d"]), group(&[]), group(&["b", "c", "c{g=\"2\"}"])],
            true,
            1,
        );
        let keys: Vec<String> = s.entries().map(|e| e.key.to_string()).collect();
        assert_eq!(keys, vec!["a", "b", "c", "c{g=\"1\"}", "c{g=\"2\"}", "c_x", "d"]);
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn a_series_two_groups_serve_is_served_once_with_the_newest_sample() {
        let g1 = group_at(vec![("a", 0), ("x", 5)]);
        let g2 = group_at(vec![("x", 7), ("y", 0)]);
        let s = Snapshot::new(vec![g1, g2], true, 1);
        let got: Vec<(String, i64)> = s.entries().map(|e| (e.key.to_string(), e.ts)).collect();
        let got: Vec<(&str, i64)> = got.iter().map(|(k, ts)| (k.as_str(), *ts)).collect();
        assert_eq!(got, vec![("a", 0), ("x", 7), ("y", 0)]);
    }

    #[test]
    fn bodies_are_rendered_once_per_key() {
        let s = Snapshot::new(vec![group(&["a"])], true, 1);
        let key = BodyKey { selectors: vec![], protobuf: false, gzip: false };
        let mut renders = 0;
        for _ in 0..3 {
            s.body(key.clone(), |_| {
                renders += 1;
                Body { bytes: Bytes::from_static(b"x"), series: 1 }
            });
        }
        assert_eq!(renders, 1);
    }
}
