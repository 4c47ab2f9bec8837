//! One HA group's merge state: its replicas, its leader, and per series what each replica last
//! reported and what was last emitted.
//!
//! [`Group::apply`] takes one scrape outcome and a clock reading and is otherwise pure, so every
//! rule below is tested without a network or a real clock.
//!
//! Rules (see the README, "Merge semantics"):
//! - identity: labels minus replica labels (done by [`crate::series`]);
//! - the leader is the preferred replica (pinned, else the primary, else the first listed); a
//!   replica whose last scrape failed is unhealthy and loses leadership at once to the healthiest
//!   follower in preference order (a failover); the preferred replica takes it back after
//!   `hold_down` consecutive good scrapes;
//! - per series the leader's sample is emitted while the leader has it present in its latest
//!   scrape and fresh; when the leader lacks it, or its timestamp lags the newest follower's by more
//!   than twice the series' learned interval plus one promfed scrape interval, the newest
//!   follower sample fills in;
//! - per series a sample is emitted only if its timestamp is newer than the last emitted one;
//! - at a change of source the new source's oldest sample newer than the last emitted one comes
//!   first (each replica's previous sample is kept), and a series emits at most about one sample
//!   per interval of wall-clock time ([`paced`]), so a downstream sees no gap at a failover;
//! - counters carry an offset across a change of source so that the emitted value never drops
//!   because of the switch; a drop inside one source is a real reset and clears the offset;
//! - a series no replica has reported for longer than the lookback is dropped.

use super::arena::{Chunks, ValRef, ValueArena};
use super::snapshot::GroupSnapshot;
use crate::key::{KeyRef, Schemas, hash_values};
use crate::parse::MetricType;
use crate::series::{Batch, Entry, Kind};
use hashbrown::HashTable;
use std::sync::Arc;

pub use crate::config::target::{ReplicaSpec, Role};

/// Per-group settings the merge needs.
#[derive(Clone, Debug)]
pub struct GroupSettings {
    pub name: String,
    /// Consecutive good scrapes before the preferred replica becomes leader again.
    pub hold_down: u32,
    /// Series not reported for this long disappear (Prometheus' lookback delta).
    pub lookback_ms: i64,
    /// promfed's own scrape interval for the group: slack when judging freshness.
    pub scrape_interval_ms: i64,
}

impl GroupSettings {
    /// The settings the merge needs for one configured group.
    pub fn of(g: &crate::config::Group) -> GroupSettings {
        GroupSettings {
            name: g.name.clone(),
            hold_down: g.hold_down,
            lookback_ms: g.lookback.as_millis() as i64,
            scrape_interval_ms: g.scrape_interval.as_millis() as i64,
        }
    }

    /// The settings of every group of `config` that is not a `discover_groups` template.
    pub fn all(config: &crate::config::Config) -> Vec<GroupSettings> {
        config.groups.iter().filter(|g| !g.discover_groups).map(GroupSettings::of).collect()
    }
}

/// What one scrape of one replica produced.
#[derive(Debug)]
pub struct Outcome {
    pub replica: String,
    /// Wall-clock time the scrape started, in ms since the epoch.
    pub started_ms: i64,
    pub duration_secs: f64,
    pub result: Result<Batch, String>,
}

/// Why the last emitted sample of a series came from where it did; counted in metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Samples emitted by this apply.
    pub emitted: u64,
    /// Of those, samples taken from a follower while the leader was healthy (per-series fill).
    pub filled: u64,
    /// Counter samples whose source changed and whose value needed an offset.
    pub offsets_applied: u64,
    /// Samples repeated inside one scrape once replica labels were removed (newest kept).
    pub duplicates: u64,
    /// Series dropped because nothing reported them within the lookback.
    pub expired: u64,
    /// Stale markers received and ignored.
    pub stale_markers: u64,
    /// Pushed samples not newer than the series' last emitted sample (re-sent after a
    /// failover, or out of order), dropped.
    pub too_old: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Latest {
    ts: i64,
    value: f64,
    /// The replica's scrape generation that reported it; equal to the replica's current
    /// generation means "present in its latest scrape". 16 bits: a sample 65 536 scrapes old
    /// could look present again, but its series expired long before (the lookback).
    generation: u16,
    /// The sample the replica reported before this one, from an earlier scrape ([`NEVER`]:
    /// none): emitted first when it is newer than the last emitted sample, so that a change
    /// of source never skips the new source's sample that follows the old source's last one
    /// (rule 6 in the README: the failover gap stays within one interval).
    prev_ts: i64,
    prev_value: f64,
}

impl Latest {
    /// The sample to emit from this replica after `emitted_ts`: its oldest newer one.
    fn next_after(self, emitted_ts: i64) -> Latest {
        if self.prev_ts != NEVER && self.prev_ts > emitted_ts && self.prev_ts < self.ts {
            Latest { ts: self.prev_ts, value: self.prev_value, ..self }
        } else {
            self
        }
    }
}

/// One series of the slab; 104 bytes (a million of them are held, see `docs/benchmarks.md`).
/// The replicas' latest samples, and the one before each, are kept inline for the first two
/// replica slots (an HA pair) as separate arrays (no padding), and in [`Group::more`] for
/// further slots.
struct Series {
    /// The label values of the key ([`crate::key`]) in the group's arena; the schema is
    /// `schema` in the group's table.
    values: ValRef,
    /// [`FREE`] for a free slab slot.
    schema: u32,
    interval_ms: u32,
    /// When the last sample was emitted: wall-clock milliseconds, wrapping (only differences
    /// of less than 24 days are read). See [`paced`].
    emitted_at: u32,
    emitted_ts: i64,
    emitted_value: f64,
    latest_ts: [i64; 2],
    latest_value: [f64; 2],
    latest_generation: [u16; 2],
    /// `latest_ts - prev_ts` of [`Latest`], 0 for none: 4 bytes instead of 8 (a previous
    /// sample more than 49 days older is forgotten).
    prev_age: [u32; 2],
    prev_value: [f64; 2],
    source: u8,
    /// The series has a counter offset in [`Group::offsets`].
    has_offset: bool,
    kind: Kind,
    render_type: MetricType,
}

const NEVER: i64 = i64::MIN;
const NO_SOURCE: u8 = u8::MAX;
/// The schema of a free slab slot.
const FREE: u32 = u32::MAX;
const NO_SAMPLE: Latest = Latest { ts: NEVER, value: 0.0, generation: 0, prev_ts: NEVER, prev_value: 0.0 };

impl Series {
    /// What replica `slot` last reported ([`NO_SAMPLE`] if nothing).
    fn get(&self, slot: usize, more: &[Latest]) -> Latest {
        if slot < 2 {
            let ts = self.latest_ts[slot];
            let age = self.prev_age[slot];
            Latest {
                ts,
                value: self.latest_value[slot],
                generation: self.latest_generation[slot],
                prev_ts: if age == 0 || ts == NEVER { NEVER } else { ts - i64::from(age) },
                prev_value: self.prev_value[slot],
            }
        } else {
            more.get(slot - 2).copied().unwrap_or(NO_SAMPLE)
        }
    }

    /// Records `l` for `slot`; `more` is the series' entry of [`Group::more`], touched only for
    /// slots from 2 on.
    fn set(&mut self, slot: usize, l: Latest, more: &mut Vec<Vec<Latest>>, idx: usize) {
        if slot < 2 {
            self.latest_ts[slot] = l.ts;
            self.latest_value[slot] = l.value;
            self.latest_generation[slot] = l.generation;
            self.prev_age[slot] = match l.ts.checked_sub(l.prev_ts) {
                Some(age) if l.prev_ts != NEVER && l.ts != NEVER && age > 0 => u32::try_from(age).unwrap_or(0),
                _ => 0,
            };
            self.prev_value[slot] = l.prev_value;
        } else {
            if l.ts == NEVER && more.get(idx).is_none_or(|m| m.len() <= slot - 2) {
                // Clearing a slot that holds nothing: no room to make for it.
                return;
            }
            if more.len() <= idx {
                more.resize_with(idx + 1, Vec::new);
            }
            let more = &mut more[idx];
            if more.len() <= slot - 2 {
                more.resize(slot - 1, NO_SAMPLE);
            }
            more[slot - 2] = l;
        }
    }

    fn latest(&self, slot: usize, more: &[Latest]) -> Option<Latest> {
        Some(self.get(slot, more)).filter(|l| l.ts != NEVER)
    }

    fn newest_known(&self, more: &[Latest]) -> i64 {
        let more = more.iter().map(|l| l.ts);
        self.latest_ts.iter().copied().chain(more).fold(self.emitted_ts, i64::max)
    }
}

pub use super::snapshot::{GroupStatus, ReplicaStatus, SnapEntry, TextEntry};

/// Errors of operator commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("group {0:?} does not exist")]
    NoSuchGroup(String),
    #[error("replica {replica:?} is not a member of group {group:?}")]
    NoSuchReplica { group: String, replica: String },
}

/// The merge state of one group.
pub struct Group {
    settings: GroupSettings,
    replicas: Vec<ReplicaStatus>,
    leader: Option<usize>,
    pin: Option<usize>,
    failovers: u64,
    series: Vec<Series>,
    /// Counter offsets by slab index (rule 7): only series whose source changed while it was
    /// behind have one, so they are kept beside the slab rather than 8 bytes in every series.
    offsets: Offsets,
    /// Per slab index, the latest samples of replica slots 2 and up: empty for an HA pair, so
    /// that its series do not carry the room for a third replica.
    more: Vec<Vec<Latest>>,
    free: Vec<u32>,
    /// Slab indices by key hash ([`KeyRef::hash`]); the hash is recomputed when the table grows
    /// rather than stored in every series.
    index: HashTable<u32>,
    schemas: Schemas,
    /// The label values of the series.
    arena: ValueArena,
    /// Live slab indices sorted by key, so snapshots come out sorted without a sort per merge.
    order: Vec<u32>,
    order_dirty: bool,
    tried: bool,
    rejected_targets: Vec<String>,
    /// Samples emitted since the last [`Group::take_emitted`], kept only while someone sends
    /// them on (a `remote_write` destination): `None` otherwise.
    emitted: Option<Vec<SnapEntry>>,
}

/// Samples a group emitted, in emission order (per series, timestamps increase), with the
/// schema table their keys refer to: what the remote-write sender sends.
#[derive(Debug)]
pub struct Emitted {
    pub schemas: Arc<Vec<Arc<crate::key::Schema>>>,
    pub values: Arc<Chunks>,
    pub entries: Vec<SnapEntry>,
}

impl Emitted {
    /// The key of `entry` (one of these entries).
    #[inline]
    pub fn key<'a>(&'a self, entry: &'a SnapEntry) -> KeyRef<'a> {
        KeyRef { schema: &self.schemas[entry.schema as usize], values: self.values.get(entry.values) }
    }
}

impl Group {
    /// A group with no replicas yet.
    pub fn new(settings: GroupSettings) -> Self {
        Group {
            settings,
            replicas: Vec::new(),
            leader: None,
            pin: None,
            failovers: 0,
            series: Vec::new(),
            offsets: Offsets::default(),
            more: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            schemas: Schemas::default(),
            arena: ValueArena::default(),
            order: Vec::new(),
            order_dirty: false,
            tried: false,
            rejected_targets: Vec::new(),
            emitted: None,
        }
    }

    /// Starts (or stops) keeping the samples this group emits, for [`Group::take_emitted`].
    pub fn record_emitted(&mut self, on: bool) {
        if on != self.emitted.is_some() {
            self.emitted = on.then(Vec::new);
        }
    }

    /// The samples emitted since the last call, if recording and any. Call it right after an
    /// apply: the schema table is the one the entries refer to until the next apply.
    pub fn take_emitted(&mut self) -> Option<Emitted> {
        let log = self.emitted.as_mut()?;
        if log.is_empty() {
            return None;
        }
        let entries = std::mem::take(log);
        Some(Emitted { schemas: self.schemas.shared(), values: self.arena.shared(), entries })
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Replaces the settings (on reload); state is kept.
    pub fn set_settings(&mut self, settings: GroupSettings) {
        self.settings = settings;
    }

    /// Makes the replica set equal to `specs`: new replicas get a slot, vanished ones are
    /// deactivated (their samples no longer count), changed roles or addresses are updated.
    pub fn set_replicas(&mut self, specs: &[ReplicaSpec]) {
        for r in &mut self.replicas {
            if !specs.iter().any(|s| s.name == r.name) {
                r.active = false;
                r.healthy = None;
                r.consecutive_good_scrapes = 0;
                // A new generation makes every sample it reported "absent".
                r.generation = r.generation.wrapping_add(1);
            }
        }
        for spec in specs {
            if let Some(r) = self.replicas.iter_mut().find(|r| r.name == spec.name) {
                r.role = spec.role;
                r.address.clone_from(&spec.address);
                r.active = true;
                continue;
            }
            let status = ReplicaStatus {
                name: spec.name.clone(),
                role: spec.role,
                address: spec.address.clone(),
                healthy: None,
                consecutive_good_scrapes: 0,
                last_scrape_ms: None,
                last_duration_seconds: None,
                last_error: None,
                last_samples: 0,
                newest_sample_ms: None,
                active: true,
                generation: 0,
            };
            // Reuse the slot of a replica that is gone, keeping its generation counter so the
            // samples it left behind never look present for the newcomer.
            if let Some(slot) = self.replicas.iter().position(|r| !r.active) {
                let generation = self.replicas[slot].generation.wrapping_add(1);
                if self.pin == Some(slot) {
                    self.pin = None;
                }
                self.replicas[slot] = ReplicaStatus { generation, ..status };
                // The series last emitted from the vanished replica were not emitted from the
                // newcomer: its first sample is a change of source (rule 7), not a reset.
                for (idx, s) in self.series.iter_mut().enumerate() {
                    if usize::from(s.source) == slot {
                        s.source = NO_SOURCE;
                    }
                    // Nor is what the vanished replica reported the newcomer's previous sample.
                    s.set(slot, NO_SAMPLE, &mut self.more, idx);
                }
            } else if self.replicas.len() < usize::from(NO_SOURCE) {
                self.replicas.push(status);
            }
        }
        if self.leader.is_some_and(|l| !self.replicas[l].active) {
            self.leader = None;
        }
        self.elect();
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.replicas.iter().position(|r| r.active && r.name == name)
    }

    /// The replica that should lead when healthy: the pinned one, else the primary, else the
    /// first listed.
    ///
    /// Two or more primaries (discovery found a misconfigured pair) are a problem shown in status;
    /// meanwhile the group is served from the primary with the freshest data, and stays with it
    /// while it is healthy (no flapping between two primaries).
    fn preferred(&self) -> Option<usize> {
        if let Some(p) = self.pin {
            return Some(p);
        }
        let active = || self.replicas.iter().enumerate().filter(|(_, r)| r.active);
        let primaries: Vec<usize> = active().filter(|(_, r)| r.role == Role::Primary).map(|(i, _)| i).collect();
        match primaries.as_slice() {
            [] => active().next().map(|(i, _)| i),
            [one] => Some(*one),
            many => {
                if let Some(l) = self.leader
                    && many.contains(&l)
                    && self.replicas[l].healthy != Some(false)
                {
                    return Some(l);
                }
                many.iter()
                    .copied()
                    .filter(|&i| self.replicas[i].healthy == Some(true))
                    .max_by_key(|&i| (self.replicas[i].newest_sample_ms, std::cmp::Reverse(i)))
                    .or(Some(many[0]))
            }
        }
    }

    fn problems(&self) -> Vec<String> {
        let primaries: Vec<&str> =
            self.replicas.iter().filter(|r| r.active && r.role == Role::Primary).map(|r| r.name.as_str()).collect();
        let mut p = Vec::new();
        if primaries.len() > 1 {
            p.push(format!(
                "{} replicas have role primary ({}): a pair has one; serving from the one with the freshest data",
                primaries.len(),
                primaries.join(", ")
            ));
        }
        p
    }

    /// Replicas in preference order: preferred first, then primaries, then the rest as listed.
    fn preference_order(&self) -> Vec<usize> {
        let preferred = self.preferred();
        let mut order: Vec<usize> = (0..self.replicas.len()).filter(|&i| self.replicas[i].active).collect();
        order.sort_by_key(|&i| (Some(i) != preferred, self.replicas[i].role != Role::Primary, i));
        order
    }

    fn elect(&mut self) {
        let healthy = |i: usize| self.replicas[i].active && self.replicas[i].healthy == Some(true);
        let preferred = self.preferred();
        match self.leader {
            // A leader not yet scraped keeps its place: only a failed scrape causes a failover.
            Some(l) if self.replicas[l].active && self.replicas[l].healthy != Some(false) => {
                if let Some(p) = preferred
                    && p != l
                    && healthy(p)
                    && self.replicas[p].consecutive_good_scrapes >= self.settings.hold_down
                {
                    tracing::info!(group = %self.settings.name, from = %self.replicas[l].name,
                        to = %self.replicas[p].name, "preferred replica is leader again");
                    self.leader = Some(p);
                }
            }
            current => {
                let next = self
                    .preference_order()
                    .into_iter()
                    .find(|&i| healthy(i))
                    .or_else(|| if current.is_none() { preferred } else { None });
                if let Some(n) = next
                    && Some(n) != current
                {
                    if let Some(c) = current {
                        self.failovers += 1;
                        tracing::warn!(group = %self.settings.name, from = %self.replicas[c].name,
                            to = %self.replicas[n].name, "leader failed, failing over");
                    }
                    self.leader = Some(n);
                }
            }
        }
    }

    /// Records the discovered targets that could not become replicas (shown in status).
    pub fn set_rejected_targets(&mut self, rejected: Vec<String>) {
        self.rejected_targets = rejected;
    }

    /// Pins `replica` as the preferred leader; it takes over as soon as it is healthy.
    pub fn pin(&mut self, replica: &str) -> Result<(), CommandError> {
        let slot = self.slot(replica).ok_or_else(|| CommandError::NoSuchReplica {
            group: self.settings.name.clone(),
            replica: replica.to_owned(),
        })?;
        self.pin = Some(slot);
        // An operator's pin takes effect at once when the replica is healthy; otherwise the
        // usual failover and hold-down bring it back.
        if self.replicas[slot].healthy == Some(true) && self.leader != Some(slot) {
            tracing::info!(group = %self.settings.name, replica = %replica, "leader pinned");
            self.leader = Some(slot);
        }
        self.elect();
        Ok(())
    }

    /// The pinned replica's name, if any.
    pub fn pinned(&self) -> Option<&str> {
        self.pin.map(|i| self.replicas[i].name.as_str())
    }

    /// True when `replica` is one of the group's (active) replicas.
    pub fn has_replica(&self, replica: &str) -> bool {
        self.slot(replica).is_some()
    }

    /// Removes the pin; the configured preference applies again (with the usual hold-down).
    pub fn unpin(&mut self) {
        self.pin = None;
        self.elect();
    }

    /// Applies one scrape outcome at wall-clock time `now_ms` and re-evaluates every series.
    pub fn apply(&mut self, outcome: Outcome, now_ms: i64) -> ApplyStats {
        let mut stats = ApplyStats::default();
        self.tried = true;
        let Some(slot) = self.slot(&outcome.replica) else {
            tracing::debug!(group = %self.settings.name, replica = %outcome.replica, "outcome of a replica no longer discovered");
            return stats;
        };
        {
            let r = &mut self.replicas[slot];
            r.last_scrape_ms = Some(outcome.started_ms);
            r.last_duration_seconds = Some(outcome.duration_secs);
            r.generation = r.generation.wrapping_add(1);
        }
        match outcome.result {
            Ok(batch) => {
                let r = &mut self.replicas[slot];
                r.healthy = Some(true);
                r.consecutive_good_scrapes = r.consecutive_good_scrapes.saturating_add(1);
                r.last_error = None;
                r.last_samples = batch.len();
                r.newest_sample_ms =
                    batch.entries().iter().filter_map(|e| e.timestamp_ms).max().or(Some(outcome.started_ms));
                self.ingest(slot, &batch, outcome.started_ms, &mut stats);
            }
            Err(e) => {
                let r = &mut self.replicas[slot];
                r.healthy = Some(false);
                r.consecutive_good_scrapes = 0;
                r.last_error = Some(e);
                r.last_samples = 0;
            }
        }
        self.elect();
        self.select(now_ms, &mut stats);
        stats
    }

    /// Compacts the value arena when garbage or small chunks piled up; only between applies
    /// (no emitted samples waiting to be taken hold references into the current arena).
    fn maybe_compact(&mut self) {
        if !self.arena.wants_compaction() || self.emitted.as_ref().is_some_and(|log| !log.is_empty()) {
            return;
        }
        let (arena, series) = (&mut self.arena, &mut self.series);
        arena.compact(series.iter_mut().filter(|s| s.schema != FREE).map(|s| &mut s.values));
    }

    fn ingest(&mut self, slot: usize, batch: &Batch, scrape_ms: i64, stats: &mut ApplyStats) {
        self.maybe_compact();
        let generation = self.replicas[slot].generation;
        // The group's id of each of the batch's schemas, looked up on first use.
        let mut schema_ids = vec![FREE; batch.schema_count()];
        for entry in batch.entries() {
            if is_stale_marker(entry.value) {
                stats.stale_markers += 1;
                continue;
            }
            let schema = self.schema_for(batch, entry, &mut schema_ids);
            let values = batch.values(entry);
            let ts = entry.timestamp_ms.unwrap_or(scrape_ms);
            let idx = self.series_index(entry, schema, values);
            let s = &mut self.series[idx];
            let l = s.get(slot, more_of(&self.more, idx));
            // What came before this sample: the previous scrape's, kept while the same sample is
            // reported again or replaced by a newer duplicate of this scrape.
            let (mut prev_ts, mut prev_value) = (l.prev_ts, l.prev_value);
            if l.generation == generation && l.ts != NEVER {
                stats.duplicates += 1;
                if ts <= l.ts {
                    continue;
                }
            } else if l.ts != NEVER && ts > l.ts {
                (prev_ts, prev_value) = (l.ts, l.value);
            } else if ts < l.ts {
                // The replica went back in time (restarted with another clock): start afresh.
                prev_ts = NEVER;
            }
            // The series' interval is learned from samples of consecutive scrapes only: a
            // replica that was down or lost the series for a while says nothing about it.
            if l.ts != NEVER && ts > l.ts && l.generation == generation.wrapping_sub(1) {
                let delta = (ts - l.ts).min(i64::from(u32::MAX)) as u32;
                s.interval_ms = if s.interval_ms == 0 {
                    delta
                } else {
                    // Smoothed, leaning to the smaller value: a missed upstream scrape doubles
                    // one delta but should not double the expected interval.
                    ((u64::from(s.interval_ms) * 3 + u64::from(delta)) / 4).min(u64::from(delta.max(s.interval_ms)))
                        as u32
                };
            }
            s.set(slot, Latest { ts, value: entry.value, generation, prev_ts, prev_value }, &mut self.more, idx);
        }
    }

    /// The group's schema id for `entry`'s schema, interned on first use in this batch
    /// (`schema_ids` has one slot per schema of the batch).
    fn schema_for(&mut self, batch: &Batch, entry: &Entry, schema_ids: &mut [u32]) -> u32 {
        let (b, schema_hash) = batch.schema_of(entry);
        if schema_ids[b] == FREE {
            schema_ids[b] = self.schemas.intern(batch.schema_text(entry), schema_hash);
        }
        schema_ids[b]
    }

    /// The slab index of the series (`schema`, `values`), with `entry`'s hash and types,
    /// created if new.
    fn series_index(&mut self, entry: &Entry, schema: u32, values: &[u8]) -> usize {
        let (series, arena) = (&self.series, &self.arena);
        let found = self.index.find(entry.hash, |&i| {
            let s = &series[i as usize];
            s.schema == schema && arena.get(s.values) == values
        });
        if let Some(&i) = found {
            return i as usize;
        }
        let s = Series {
            values: self.arena.push(values),
            schema,
            interval_ms: 0,
            emitted_at: 0,
            emitted_ts: NEVER,
            emitted_value: 0.0,
            has_offset: false,
            latest_ts: [NEVER; 2],
            latest_value: [0.0; 2],
            latest_generation: [0; 2],
            prev_age: [0; 2],
            prev_value: [0.0; 2],
            source: NO_SOURCE,
            kind: entry.kind,
            render_type: entry.render_type,
        };
        self.schemas.acquire(schema);
        let i = match self.free.pop() {
            Some(i) => {
                self.series[i as usize] = s;
                i
            }
            None => {
                self.series.push(s);
                (self.series.len() - 1) as u32
            }
        };
        let (series, schemas, arena) = (&self.series, &self.schemas, &self.arena);
        self.index.insert_unique(entry.hash, i, |&j| {
            let s = &series[j as usize];
            hash_values(schemas.get(s.schema).hash(), arena.get(s.values))
        });
        self.order.push(i);
        self.order_dirty = true;
        i as usize
    }

    /// Forgets the series at slab index `idx` (expired); its slot is reused.
    fn remove_series(&mut self, idx: usize) {
        let s = &mut self.series[idx];
        let hash = hash_values(self.schemas.get(s.schema).hash(), self.arena.get(s.values));
        self.schemas.release(s.schema);
        self.arena.remove(s.values);
        s.schema = FREE;
        s.values = ValRef::NONE;
        s.latest_ts = [NEVER; 2];
        s.prev_age = [0; 2];
        self.offsets.set(s, idx, 0.0);
        if let Some(more) = self.more.get_mut(idx) {
            *more = Vec::new();
        }
        s.emitted_ts = NEVER;
        if let Ok(e) = self.index.find_entry(hash, |&i| i as usize == idx) {
            e.remove();
        }
        self.free.push(idx as u32);
        self.order_dirty = true;
    }

    /// What replica `slot` reports for the series at slab index `idx` in its latest scrape, if
    /// it is healthy and the series was in it.
    fn present(&self, idx: usize, slot: usize) -> Option<Latest> {
        let r = &self.replicas[slot];
        if !r.active || r.healthy != Some(true) {
            return None;
        }
        self.series[idx].latest(slot, more_of(&self.more, idx)).filter(|l| l.generation == r.generation)
    }

    fn select(&mut self, now_ms: i64, stats: &mut ApplyStats) {
        let leader = self.leader;
        let order = self.preference_order();
        let followers: Vec<usize> = order.iter().copied().filter(|&i| Some(i) != leader).collect();
        let lookback = self.settings.lookback_ms;
        let slack = self.settings.scrape_interval_ms;
        let mut expired = Vec::new();
        for idx in 0..self.series.len() {
            if self.series[idx].schema == FREE {
                continue;
            }
            let s = &self.series[idx];
            let from_leader = leader.and_then(|l| self.present(idx, l).map(|x| (l, x)));
            let mut best: Option<(usize, Latest)> = None;
            for &f in &followers {
                if let Some(x) = self.present(idx, f)
                    && best.is_none_or(|(_, b)| x.ts > b.ts)
                {
                    best = Some((f, x));
                }
            }
            let interval = if s.interval_ms == 0 { slack } else { i64::from(s.interval_ms) };
            let candidate = match (from_leader, best) {
                (Some(l), Some(f)) if f.1.ts - l.1.ts > 2 * interval + slack => Some((f, true)),
                (Some(l), _) => Some((l, false)),
                (None, Some(f)) => Some((f, leader.is_some_and(|l| self.replicas[l].healthy == Some(true)))),
                (None, None) => None,
            };
            let s = &mut self.series[idx];
            if let Some(((src, latest), fill)) = candidate
                && let sample = latest.next_after(s.emitted_ts)
                && sample.ts > s.emitted_ts
                && paced(s, now_ms, interval, slack)
            {
                emit(s, &mut self.offsets, idx, src as u8, sample, stats);
                s.emitted_at = now_ms as u32;
                record(&mut self.emitted, s);
                stats.emitted += 1;
                if fill {
                    stats.filled += 1;
                }
            }
            if now_ms - s.newest_known(more_of(&self.more, idx)) > lookback {
                expired.push(idx);
            }
        }
        for idx in expired {
            self.end_series(idx, now_ms);
            stats.expired += 1;
        }
    }

    /// Removes an expired series; when recording, a staleness marker at `now_ms` tells the
    /// remote-write destinations that it ended, as Prometheus does for a series that left its
    /// scrape (promfed knows only once the lookback has passed without it).
    fn end_series(&mut self, idx: usize, now_ms: i64) {
        let s = &self.series[idx];
        if let Some(log) = &mut self.emitted
            && s.emitted_ts != NEVER
            && now_ms > s.emitted_ts
        {
            log.push(SnapEntry {
                values: s.values,
                ts: now_ms,
                value: f64::from_bits(STALE_NAN_BITS),
                schema: s.schema,
                render_type: s.render_type,
            });
        }
        self.remove_series(idx);
    }

    /// Live series count.
    pub fn series_count(&self) -> usize {
        self.index.len()
    }

    /// The series to serve at `now_ms`, sorted by key: every series with an emitted sample no
    /// older than the lookback.
    fn served(&mut self, now_ms: i64) -> Vec<SnapEntry> {
        if self.order_dirty {
            let (series, schemas, arena) = (&self.series, &self.schemas, &self.arena);
            let key = |i: u32| {
                let s = &series[i as usize];
                KeyRef { schema: schemas.get(s.schema), values: arena.get(s.values) }
            };
            let index_len = self.index.len();
            self.order.retain(|&i| series[i as usize].schema != FREE);
            self.order.dedup();
            // Mostly sorted with new keys appended: the stable sort merges the runs cheaply.
            self.order.sort_by(|&a, &b| key(a).cmp(&key(b)));
            self.order.dedup_by(|a, b| {
                let (a, b) = (&series[*a as usize], &series[*b as usize]);
                a.schema == b.schema && arena.get(a.values) == arena.get(b.values)
            });
            debug_assert_eq!(self.order.len(), index_len);
            self.order_dirty = false;
        }
        let lookback = self.settings.lookback_ms;
        self.order
            .iter()
            .map(|&i| &self.series[i as usize])
            .filter(|s| s.emitted_ts != NEVER && now_ms - s.emitted_ts <= lookback)
            .map(|s| SnapEntry {
                values: s.values,
                ts: s.emitted_ts,
                value: s.emitted_value,
                schema: s.schema,
                render_type: s.render_type,
            })
            .collect()
    }

    /// The group's part of a snapshot at `now_ms`: its status, the series to serve (every
    /// series with an emitted sample no older than the lookback, sorted by key) and the schema
    /// table their keys refer to.
    pub fn snapshot(&mut self, now_ms: i64) -> GroupSnapshot {
        let entries = self.served(now_ms);
        GroupSnapshot { status: self.status(), schemas: self.schemas.shared(), values: self.arena.shared(), entries }
    }

    /// The series [`Group::snapshot`] would serve at `now_ms`, with their keys as text (tests
    /// and tools).
    pub fn snapshot_entries(&mut self, now_ms: i64) -> Vec<TextEntry> {
        let snapshot = self.snapshot(now_ms);
        snapshot
            .served()
            .map(|e| TextEntry { key: e.key.to_string(), ts: e.ts, value: e.value, render_type: e.render_type })
            .collect()
    }

    /// The group's state for the status API and metrics.
    pub fn status(&self) -> GroupStatus {
        let name = |i: Option<usize>| i.map(|i| self.replicas[i].name.clone());
        let active: Vec<&ReplicaStatus> = self.replicas.iter().filter(|r| r.active).collect();
        GroupStatus {
            name: self.settings.name.clone(),
            leader: name(self.leader),
            preferred: name(self.preferred()),
            pinned: name(self.pin),
            down: self.tried && !active.is_empty() && active.iter().all(|r| r.healthy != Some(true)),
            failovers: self.failovers,
            series: self.series_count(),
            replicas: active.into_iter().cloned().collect(),
            rejected_targets: self.rejected_targets.clone(),
            problems: self.problems(),
        }
    }
}

/// Whether a series may emit a new sample at wall-clock `now_ms`: not before its last one was
/// served for one `interval` of the series, less a tolerance (a tenth of it, at most half of
/// promfed's scrape interval `slack`) so that scrape-time jitter never holds a sample back in
/// steady state, where a source's samples come one interval apart anyway.
///
/// After a change of source this is what keeps the new source's samples that promfed already
/// had (its previous and latest, from scrapes made while another replica led) from replacing
/// each other within a second or two: each is served for about an interval, so a downstream
/// scraping every interval sees every one of them, whatever its phase. Without it, a promfed
/// scraping faster than the replicas would serve the new source's first sample only until its
/// next scrape, and a downstream would miss it: a gap of up to two intervals.
fn paced(s: &Series, now_ms: i64, interval: i64, slack: i64) -> bool {
    if s.emitted_ts == NEVER {
        return true;
    }
    let since = i64::from((now_ms as u32).wrapping_sub(s.emitted_at));
    since >= interval - (interval / 10).min(slack / 2)
}

/// The latest samples of replica slots 2 and up of the series at slab index `idx`.
#[inline]
fn more_of(more: &[Vec<Latest>], idx: usize) -> &[Latest] {
    more.get(idx).map_or(&[], Vec::as_slice)
}

/// Counter offsets of the series that have one, by slab index; [`Series::has_offset`] says
/// which, so that series without one never look here.
#[derive(Debug, Default)]
struct Offsets(hashbrown::HashMap<u32, f64>);

impl Offsets {
    fn get(&self, s: &Series, idx: usize) -> f64 {
        if s.has_offset { self.0.get(&(idx as u32)).copied().unwrap_or(0.0) } else { 0.0 }
    }

    fn set(&mut self, s: &mut Series, idx: usize, offset: f64) {
        if offset != 0.0 {
            self.0.insert(idx as u32, offset);
            s.has_offset = true;
        } else if s.has_offset {
            self.0.remove(&(idx as u32));
            s.has_offset = false;
        }
    }
}

/// Emits `sample` from replica `src` for the series `s` at slab index `idx`.
fn emit(s: &mut Series, offsets: &mut Offsets, idx: usize, src: u8, sample: Latest, stats: &mut ApplyStats) {
    let v = sample.value;
    let last = (s.kind == Kind::Counter && s.emitted_ts != NEVER).then(|| Last {
        value: s.emitted_value,
        source: s.source,
        offset: offsets.get(s, idx),
    });
    let (offset, applied) = counter_offset(last, src, v);
    if applied {
        stats.offsets_applied += 1;
    }
    offsets.set(s, idx, offset);
    s.emitted_value = v + offset;
    s.emitted_ts = sample.ts;
    s.source = src;
}

/// What was last emitted for a counter series: the counter-continuity rule's input.
#[derive(Clone, Copy, Debug)]
pub struct Last {
    /// The value emitted (raw value plus offset).
    pub value: f64,
    /// The replica (slot, or rank in a history) it came from.
    pub source: u8,
    /// The offset it carried.
    pub offset: f64,
}

/// The counter-continuity rule, shared by the live merge and the merge of histories
/// ([`crate::query::history`]): the offset to add to raw value `v` from `source`, and whether a
/// new offset was taken. `last` is `None` for a series that is not a counter or has emitted
/// nothing yet.
///
/// A drop within one source is a real reset: passed through, offset cleared. A change of
/// source to a value below the last emitted one carries the difference, so the switch does not
/// look like a reset downstream. A non-finite value (or last value) clears the offset.
pub fn counter_offset(last: Option<Last>, source: u8, v: f64) -> (f64, bool) {
    let Some(last) = last else { return (0.0, false) };
    if !v.is_finite() || !last.value.is_finite() {
        return (0.0, false);
    }
    if source == last.source {
        // A real reset inside one source (below the last raw value): pass it through.
        if v < last.value - last.offset { (0.0, false) } else { (last.offset, false) }
    } else if v < last.value {
        // The new source is behind the last emitted value: carry the difference so the
        // switch does not look like a reset.
        (last.value - v, true)
    } else {
        (0.0, false)
    }
}

/// Adds the sample `s` just emitted to `log`, when recording.
#[inline]
fn record(log: &mut Option<Vec<SnapEntry>>, s: &Series) {
    if let Some(log) = log {
        log.push(SnapEntry {
            values: s.values,
            ts: s.emitted_ts,
            value: s.emitted_value,
            schema: s.schema,
            render_type: s.render_type,
        });
    }
}

/// Prometheus' staleness marker: a NaN with this exact bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is Prometheus' staleness marker.
pub fn is_stale_marker(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

pub mod push;

#[cfg(test)]
mod tests;
