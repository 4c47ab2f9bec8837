//! The store task: owns every [`Group`], applies scrape outcomes and operator commands in the
//! order they arrive, updates the merge metrics, and publishes a new [`Snapshot`] after each.
//!
//! One task owns the state, so there are no locks on the write side; readers load the published
//! snapshot through `ArcSwap`. Inputs come through a bounded channel: a slow merge slows the
//! scrapers down (they wait to hand over their batch) instead of growing memory.

use super::group::push::Push;
use super::group::{ApplyStats, CommandError, Emitted, Group, GroupSettings, GroupStatus, Outcome, ReplicaSpec};
use super::snapshot::{GroupSnapshot, Snapshot};
use crate::clock::now_ms;
use crate::telemetry::{GroupLabels, Metrics, ReplicaLabels};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// An operator or discovery request to the store.
#[derive(Debug)]
pub enum Command {
    /// Pin `replica` as the leader of `group`.
    Pin { group: String, replica: String },
    /// Restore the configured preference of `group`.
    Unpin { group: String },
    /// Set the replicas of `group` (from discovery), with the discovered targets that could not
    /// become replicas (`address: reason`), shown in status.
    SetReplicas { group: String, replicas: Vec<ReplicaSpec>, rejected: Vec<String> },
    /// Replace the set of groups (config reload): groups that remain keep their state, as do
    /// the groups created by pushes and the groups found by discovery named in `discovered`
    /// (their template stays; its new discovery finds them again or removes them). Every other
    /// group is removed.
    Reconfigure { groups: Vec<GroupSettings>, discovered: Vec<String> },
    /// Change where emitted samples go (a reload of `remote_write`): keep the senders named in
    /// `keep` (dropping the others closes their input, and they stop), add `add`.
    SetEmitTo { keep: Vec<String>, add: Vec<(String, mpsc::Sender<Arc<Emitted>>)> },
    /// Add a group found by discovery (a `discover_groups` template), unless it exists.
    AddGroup { settings: GroupSettings },
    /// Remove a group found by discovery that its template no longer finds after a reload
    /// (configured and pushed groups are not removed this way).
    RemoveGroup { group: String },
}

enum Input {
    Outcome {
        group: String,
        outcome: Outcome,
    },
    Push {
        group: String,
        lookback_ms: i64,
        push: Push,
        reply: oneshot::Sender<ApplyStats>,
    },
    Command {
        command: Command,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Publish what pushes changed now (a reader wants a snapshot with every acknowledged push).
    Flush {
        reply: oneshot::Sender<()>,
    },
}

/// The store's inputs are closed: promfed is shutting down.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the merge store has stopped")]
pub struct StoreClosed;

/// A cheap, cloneable handle to the store: submit outcomes and commands, read snapshots.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Input>,
    published: Arc<ArcSwap<Snapshot>>,
    /// Set while acknowledged pushes wait for their coalesced publication.
    unpublished: Arc<AtomicBool>,
}

impl StoreHandle {
    /// The current snapshot; never waits.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published.load_full()
    }

    /// The current snapshot, including every push acknowledged so far: pushes are published
    /// coalesced (at most every [`PUSH_PUBLISH_EVERY`]), and a reader that must see them (a
    /// `/federate` scrape right after a 2xx to its pusher) asks the store to publish first.
    /// Costs one round trip to the store only while such a publication is pending.
    pub async fn fresh_snapshot(&self) -> Result<Arc<Snapshot>, StoreClosed> {
        if self.unpublished.load(Ordering::Acquire) {
            let (reply, rx) = oneshot::channel();
            self.tx.send(Input::Flush { reply }).await.map_err(|_| StoreClosed)?;
            rx.await.map_err(|_| StoreClosed)?;
        }
        Ok(self.snapshot())
    }

    /// Hands a scrape outcome of `group` to the store (waits while the store is busy).
    pub async fn submit(&self, group: &str, outcome: Outcome) -> Result<(), StoreClosed> {
        self.tx.send(Input::Outcome { group: group.to_owned(), outcome }).await.map_err(|_| StoreClosed)
    }

    /// Hands an accepted push to the store and waits until it is applied (so that a 2xx answer
    /// means the samples are in the merged view). `group` is created on first use, with
    /// `lookback_ms`.
    pub async fn push(&self, group: String, lookback_ms: i64, push: Push) -> Result<ApplyStats, StoreClosed> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Input::Push { group, lookback_ms, push, reply }).await.map_err(|_| StoreClosed)?;
        rx.await.map_err(|_| StoreClosed)
    }

    /// Runs a command and waits for its result.
    pub async fn command(&self, command: Command) -> Result<Result<(), CommandError>, StoreClosed> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Input::Command { command, reply }).await.map_err(|_| StoreClosed)?;
        rx.await.map_err(|_| StoreClosed)
    }
}

/// The state owner; run it with [`Store::run`].
pub struct Store {
    groups: Vec<Slot>,
    /// The last published snapshot of each group, in the order of `groups`.
    snapshots: Vec<Arc<GroupSnapshot>>,
    generation: u64,
    last_publish: Instant,
    /// When the groups changed by pushes are published at the latest (None: none is waiting).
    publish_due: Option<tokio::time::Instant>,
    /// Shared with the handles: a publication of pushes is pending.
    unpublished: Arc<AtomicBool>,
    /// Ready with no group at all (a receiver-only promfed); otherwise a first group is awaited.
    ready_when_empty: bool,
    /// Every group has merged once. It stays so: a group added later by a reload or by
    /// discovery must not turn `/federate` into a 503 for the groups already served (a
    /// downstream Prometheus would see a failed scrape, a gap in every series).
    ready: bool,
    rx: mpsc::Receiver<Input>,
    published: Arc<ArcSwap<Snapshot>>,
    metrics: Arc<Metrics>,
    on_publish: Option<PublishHook>,
    /// Where emitted samples go (the remote-write senders); empty: nothing is recorded.
    emit_to: Vec<(String, mpsc::Sender<Arc<Emitted>>)>,
    /// Emitted samples not yet handed to `emit_to`.
    outbox: Vec<Arc<Emitted>>,
    /// The operator's pins, kept across restarts (`None`: not kept, as in tests).
    pins: Option<super::pins::PinFile>,
}

/// One group and what the store knows about it.
struct Slot {
    group: Group,
    /// Found by a `discover_groups` template rather than listed in the config: kept across a
    /// reload only while its template is.
    discovered: bool,
    /// Fed by pushes: expired by the store's tick, kept across reloads.
    pushed: bool,
    /// Has merged a first input (readiness).
    applied: bool,
    /// Changed since it was last published.
    dirty: bool,
}

impl Slot {
    fn new(group: Group, discovered: bool) -> Self {
        Slot { group, discovered, pushed: false, applied: false, dirty: false }
    }
}

/// Longest time pushed samples wait to be published while inputs keep arriving.
pub const PUSH_PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// How often pushed groups are checked for expired series.
const EXPIRE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Called with every newly published snapshot (from the store task, inside the runtime).
pub type PublishHook = Box<dyn Fn(Arc<Snapshot>) + Send>;

impl Store {
    /// A store for these groups, and its handle.
    pub fn new(groups: Vec<GroupSettings>, metrics: Arc<Metrics>) -> (Store, StoreHandle) {
        let (tx, rx) = mpsc::channel(64);
        let published = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
        let unpublished = Arc::new(AtomicBool::new(false));
        let mut store = Store {
            groups: Vec::new(),
            snapshots: Vec::new(),
            generation: 0,
            // As if long ago: the first push is published at once.
            last_publish: Instant::now().checked_sub(PUSH_PUBLISH_EVERY).unwrap_or_else(Instant::now),
            publish_due: None,
            unpublished: unpublished.clone(),
            ready_when_empty: false,
            ready: false,
            rx,
            published: published.clone(),
            metrics,
            on_publish: None,
            emit_to: Vec::new(),
            outbox: Vec::new(),
            pins: None,
        };
        store.reconfigure(groups, &[]);
        store.publish_all();
        (store, StoreHandle { tx, published, unpublished })
    }

    fn reconfigure(&mut self, settings: Vec<GroupSettings>, discovered: &[String]) {
        let mut old = std::mem::take(&mut self.groups);
        for settings in settings {
            match old.iter().position(|slot| slot.group.name() == settings.name) {
                Some(i) => {
                    let mut slot = old.swap_remove(i);
                    slot.group.set_settings(settings);
                    slot.discovered = false;
                    self.groups.push(slot);
                }
                None => self.groups.push(Slot::new(Group::new(settings), false)),
            }
        }
        let (keep, old): (Vec<_>, Vec<_>) = old
            .into_iter()
            .partition(|slot| slot.pushed || (slot.discovered && discovered.iter().any(|d| d == slot.group.name())));
        self.groups.extend(keep);
        for slot in old {
            tracing::info!(group = %slot.group.name(), "group removed by reload");
            self.forget(&slot.group);
        }
    }

    /// Removes the metrics of a removed group.
    fn forget(&self, g: &Group) {
        self.metrics.forget_group(g.name());
        for r in g.status().replicas {
            self.metrics.forget_replica(g.name(), &r.name);
        }
    }

    fn publish_all(&mut self) {
        let now = now_ms();
        self.snapshots = self.groups.iter_mut().map(|slot| Arc::new(slot.group.snapshot(now))).collect();
        self.publish();
    }

    fn publish_group(&mut self, i: usize) {
        self.groups[i].dirty = true;
        self.publish_dirty();
    }

    /// Publishes every group changed since the last publication.
    fn publish_dirty(&mut self) {
        let now = now_ms();
        for (slot, snapshot) in self.groups.iter_mut().zip(&mut self.snapshots) {
            if slot.dirty {
                *snapshot = Arc::new(slot.group.snapshot(now));
            }
        }
        self.publish();
    }

    /// Adds `group` (with its first snapshot) and returns its index.
    fn add(&mut self, mut slot: Slot) -> usize {
        self.snapshots.push(Arc::new(slot.group.snapshot(now_ms())));
        self.groups.push(slot);
        self.groups.len() - 1
    }

    fn push(&mut self, group: String, lookback_ms: i64, push: Push) -> ApplyStats {
        let (i, created) = match self.index(&group) {
            Ok(i) => (i, false),
            Err(_) => {
                tracing::info!(%group, "group created by a remote-write push");
                let g =
                    Group::new(GroupSettings { name: group.clone(), hold_down: 0, lookback_ms, scrape_interval_ms: 0 });
                (self.add(Slot::new(g, false)), true)
            }
        };
        let started = Instant::now();
        let recording = !self.emit_to.is_empty();
        let slot = &mut self.groups[i];
        slot.group.record_emitted(recording);
        let stats = slot.group.apply_push(push, now_ms());
        self.collect_emitted(i);
        let slot = &mut self.groups[i];
        slot.pushed = true;
        slot.applied = true;
        slot.dirty = true;
        // Before the pusher hears back: a reader it then tells must find the push pending.
        self.unpublished.store(true, Ordering::Release);
        if created {
            // A new group is shown at once (status, readiness); later pushes are coalesced.
            self.publish_changed();
        }
        self.metrics.merge_duration_seconds.observe(started.elapsed().as_secs_f64());
        self.count(i, &stats);
        stats
    }

    /// Expires the series of pushed groups nothing pushed for their lookback.
    fn expire_pushed(&mut self) {
        let now = now_ms();
        for i in 0..self.groups.len() {
            if self.groups[i].pushed {
                let expired = self.groups[i].group.expire(now);
                self.collect_emitted(i);
                if expired > 0 {
                    self.count(i, &ApplyStats { expired, ..ApplyStats::default() });
                    self.groups[i].dirty = true;
                }
            }
        }
    }

    fn count(&self, i: usize, stats: &ApplyStats) {
        let gl = GroupLabels { group: self.groups[i].group.name().to_owned() };
        let m = &self.metrics;
        m.merge_emitted_samples.get_or_create(&gl).inc_by(stats.emitted);
        m.merge_filled_samples.get_or_create(&gl).inc_by(stats.filled);
        m.merge_duplicate_samples.get_or_create(&gl).inc_by(stats.duplicates);
        m.merge_counter_offsets.get_or_create(&gl).inc_by(stats.offsets_applied);
        m.merge_expired_series.get_or_create(&gl).inc_by(stats.expired);
    }

    fn publish(&mut self) {
        self.last_publish = Instant::now();
        self.publish_due = None;
        self.groups.iter_mut().for_each(|slot| slot.dirty = false);
        self.generation += 1;
        self.ready = self.ready
            || ((self.ready_when_empty || !self.groups.is_empty()) && self.groups.iter().all(|slot| slot.applied));
        let snapshot = Arc::new(Snapshot::new(self.snapshots.clone(), self.ready, self.generation));
        self.published.store(snapshot.clone());
        self.unpublished.store(false, Ordering::Release);
        if let Some(hook) = &self.on_publish {
            hook(snapshot);
        }
    }

    /// Makes the store ready while it has no group (no group is configured: promfed only receives
    /// pushes, whose groups appear with them).
    pub fn ready_when_empty(&mut self) {
        self.ready_when_empty = true;
        self.publish();
    }

    /// Sends every sample emitted from now on to `tx` (a remote-write sender), in emission
    /// order. The store waits while `tx` is full: a sender that cannot keep up with its disk
    /// slows the merge down rather than losing samples.
    pub fn emit_to(&mut self, name: String, tx: mpsc::Sender<Arc<Emitted>>) {
        self.emit_to.push((name, tx));
    }

    fn collect_emitted(&mut self, i: usize) {
        if let Some(e) = self.groups[i].group.take_emitted() {
            self.outbox.push(Arc::new(e));
        }
    }

    /// Hands the emitted samples to every sender.
    async fn send_emitted(&mut self) {
        for e in std::mem::take(&mut self.outbox) {
            for (_, tx) in &self.emit_to {
                // A sender that stopped is shutting down with the rest: nothing to do.
                let _ = tx.send(e.clone()).await;
            }
        }
    }

    /// Calls `hook` with every snapshot published from now on (e.g. to render it ahead).
    pub fn on_publish(&mut self, hook: PublishHook) {
        self.on_publish = Some(hook);
    }

    fn update_group_metrics(&self, i: usize) {
        let status = &self.snapshots[i].status;
        let m = &self.metrics;
        let gl = GroupLabels { group: status.name.clone() };
        m.group_up.get_or_create(&gl).set(i64::from(!status.down));
        m.group_series.get_or_create(&gl).set(status.series as i64);
        m.group_failover_active.get_or_create(&gl).set(i64::from(failover_active(status)));
        let failovers = m.group_failovers.get_or_create(&gl);
        let seen = failovers.get();
        if status.failovers > seen {
            failovers.inc_by(status.failovers - seen);
        }
        for r in &status.replicas {
            let rl = ReplicaLabels { group: status.name.clone(), replica: r.name.clone() };
            m.replica_up.get_or_create(&rl).set(i64::from(r.healthy == Some(true)));
            m.group_leader.get_or_create(&rl).set(i64::from(status.leader.as_deref() == Some(r.name.as_str())));
            m.group_pinned.get_or_create(&rl).set(i64::from(status.pinned.as_deref() == Some(r.name.as_str())));
            if r.healthy == Some(true) {
                m.scrape_samples.get_or_create(&rl).set(r.last_samples as i64);
            }
            if let Some(d) = r.last_duration_seconds {
                m.scrape_duration_seconds.get_or_create(&rl).set(d);
            }
            if let Some(ms) = r.newest_sample_ms {
                m.replica_newest_sample_timestamp_seconds.get_or_create(&rl).set(ms as f64 / 1000.0);
            }
        }
    }

    /// Keeps the operator's pins in `pins` from now on, and applies those it holds (each as soon
    /// as its group and replica exist).
    pub fn keep_pins(&mut self, pins: super::pins::PinFile) {
        self.pins = Some(pins);
        self.restore_pins();
    }

    /// Applies the kept pins whose group has no pin yet and has the replica.
    fn restore_pins(&mut self) {
        let Some(pins) = &self.pins else { return };
        let mut restored = Vec::new();
        for (group, replica) in &pins.wanted {
            if let Some(i) = self.groups.iter().position(|s| s.group.name() == group)
                && self.groups[i].group.pinned().is_none()
                && self.groups[i].group.has_replica(replica)
                && self.groups[i].group.pin(replica).is_ok()
            {
                tracing::info!(%group, %replica, file = %pins.path().display(), "leader pin restored");
                restored.push(i);
            }
        }
        for i in restored {
            self.publish_group(i);
            self.update_group_metrics(i);
        }
    }

    /// Writes a pin change to the pins file, if pins are kept; a failure is logged (the pin
    /// holds until the restart).
    fn record_pin(&mut self, group: &str, replica: Option<&str>) {
        if let Some(pins) = &mut self.pins
            && let Err(e) = pins.set(group, replica)
        {
            tracing::error!(%group, error = %e, "leader pin not saved: it will not survive a restart");
        }
    }

    fn index(&self, group: &str) -> Result<usize, CommandError> {
        self.groups
            .iter()
            .position(|slot| slot.group.name() == group)
            .ok_or_else(|| CommandError::NoSuchGroup(group.to_owned()))
    }

    fn command(&mut self, command: Command) -> Result<(), CommandError> {
        match command {
            Command::Pin { group, replica } => {
                let i = self.index(&group)?;
                self.groups[i].group.pin(&replica)?;
                tracing::info!(%group, %replica, "leader pinned by operator");
                self.record_pin(&group, Some(&replica));
                self.publish_group(i);
                self.update_group_metrics(i);
            }
            Command::Unpin { group } => {
                let i = self.index(&group)?;
                self.groups[i].group.unpin();
                tracing::info!(%group, "leader unpinned by operator");
                self.record_pin(&group, None);
                self.publish_group(i);
                self.update_group_metrics(i);
            }
            Command::SetReplicas { group, replicas, rejected } => {
                let i = self.index(&group)?;
                self.groups[i].group.set_rejected_targets(rejected);
                let before: Vec<String> = self.groups[i].group.status().replicas.into_iter().map(|r| r.name).collect();
                self.groups[i].group.set_replicas(&replicas);
                for gone in before.iter().filter(|n| !replicas.iter().any(|r| &r.name == *n)) {
                    self.metrics.forget_replica(&group, gone);
                }
                self.publish_group(i);
                self.update_group_metrics(i);
            }
            Command::Reconfigure { groups, discovered } => {
                self.reconfigure(groups, &discovered);
                self.publish_all();
            }
            Command::SetEmitTo { keep, add } => {
                self.emit_to.retain(|(name, _)| keep.contains(name));
                self.emit_to.extend(add);
            }
            Command::RemoveGroup { group } => {
                let i = self.index(&group)?;
                if self.groups[i].discovered && !self.groups[i].pushed {
                    let slot = self.groups.remove(i);
                    self.snapshots.remove(i);
                    tracing::info!(%group, "group removed: its template no longer finds it");
                    self.forget(&slot.group);
                    self.publish();
                }
            }
            Command::AddGroup { settings } => match self.index(&settings.name) {
                Ok(i) => self.groups[i].group.set_settings(settings),
                Err(_) => {
                    tracing::info!(group = %settings.name, "group found by discovery");
                    self.add(Slot::new(Group::new(settings), true));
                    self.publish();
                }
            },
        }
        Ok(())
    }

    fn outcome(&mut self, group: &str, outcome: Outcome) {
        let Ok(i) = self.index(group) else {
            tracing::debug!(%group, "outcome for a group removed by reload");
            return;
        };
        let started = Instant::now();
        self.groups[i].group.record_emitted(!self.emit_to.is_empty());
        let stats = self.groups[i].group.apply(outcome, now_ms());
        self.collect_emitted(i);
        self.groups[i].applied = true;
        self.publish_group(i);
        self.metrics.merge_duration_seconds.observe(started.elapsed().as_secs_f64());
        self.count(i, &stats);
        self.update_group_metrics(i);
    }

    /// Applies inputs until `shutdown` is cancelled or every handle is dropped.
    ///
    /// Scrape outcomes and commands are published at once. Pushes arrive far more often (every
    /// few ms under load, each a few hundred samples), and rebuilding the group's snapshot after
    /// each took about a third of the receiver's CPU: their groups are published coalesced, at
    /// most [`PUSH_PUBLISH_EVERY`] after the first unpublished push, or sooner when a reader asks
    /// for a fresh snapshot ([`StoreHandle::fresh_snapshot`]).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(EXPIRE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = self.publish_due;
            let input = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    self.expire_pushed();
                    None
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    self.publish_changed();
                    None
                }
                input = self.rx.recv() => match input {
                    Some(input) => Some(input),
                    None => break,
                },
            };
            match input {
                None => {}
                Some(Input::Outcome { group, outcome }) => self.outcome(&group, outcome),
                Some(Input::Push { group, lookback_ms, push, reply }) => {
                    let _ = reply.send(self.push(group, lookback_ms, push));
                }
                Some(Input::Command { command, reply }) => {
                    let result = self.command(command);
                    // Replicas or groups may have come that a kept pin waited for.
                    self.restore_pins();
                    let _ = reply.send(result);
                }
                Some(Input::Flush { reply }) => {
                    self.publish_changed();
                    let _ = reply.send(());
                }
            }
            if !self.outbox.is_empty() {
                self.send_emitted().await;
            }
            if self.groups.iter().any(|slot| slot.dirty) {
                if self.last_publish.elapsed() >= PUSH_PUBLISH_EVERY {
                    self.publish_changed();
                } else if self.publish_due.is_none() {
                    self.publish_due = Some(tokio::time::Instant::from_std(self.last_publish + PUSH_PUBLISH_EVERY));
                    self.unpublished.store(true, Ordering::Release);
                }
            }
        }
        tracing::debug!("merge store stopped");
    }

    /// Publishes the groups changed since the last publication, and updates their metrics.
    fn publish_changed(&mut self) {
        let changed: Vec<usize> = (0..self.groups.len()).filter(|&i| self.groups[i].dirty).collect();
        if changed.is_empty() {
            self.publish_due = None;
            self.unpublished.store(false, Ordering::Release);
            return;
        }
        self.publish_dirty();
        for i in changed {
            self.update_group_metrics(i);
        }
    }
}

/// A failover is active while the group has a leader that is not its preferred replica. The
/// preferred replica is the pinned one when there is a pin, so a pin that moved the leader is
/// not a failover; a pinned replica that is down while another leads is one.
fn failover_active(status: &GroupStatus) -> bool {
    status.leader.is_some() && status.preferred.is_some() && status.leader != status.preferred
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::Role;
    use crate::series::Batch;
    use std::time::Duration;

    fn settings(name: &str) -> GroupSettings {
        GroupSettings { name: name.into(), hold_down: 2, lookback_ms: 300_000, scrape_interval_ms: 5_000 }
    }

    #[tokio::test]
    async fn publishes_after_each_input_and_reports_readiness() {
        let metrics = Arc::new(Metrics::new());
        let (store, handle) = Store::new(vec![settings("g")], metrics.clone());
        let token = CancellationToken::new();
        let task = tokio::spawn(store.run(token.clone()));
        assert!(!handle.snapshot().ready);
        let replicas = vec![ReplicaSpec { name: "a".into(), role: Role::Primary, address: "x".into() }];
        handle.command(Command::SetReplicas { group: "g".into(), replicas, rejected: vec![] }).await.unwrap().unwrap();
        let outcome =
            Outcome { replica: "a".into(), started_ms: now_ms(), duration_secs: 0.1, result: Ok(Batch::default()) };
        handle.submit("g", outcome).await.unwrap();
        // A command is answered after the outcome before it was applied.
        let err = handle.command(Command::Unpin { group: "nope".into() }).await.unwrap();
        assert_eq!(err, Err(CommandError::NoSuchGroup("nope".into())));
        let snap = handle.snapshot();
        assert!(snap.ready);
        assert_eq!(snap.group("g").unwrap().status.leader.as_deref(), Some("a"));
        assert!(metrics.encode().contains("promfed_replica_up{group=\"g\",replica=\"a\"} 1"));
        // A group added later (by a reload or discovery) does not make the store unready again.
        handle.command(Command::AddGroup { settings: settings("late") }).await.unwrap().unwrap();
        let reconfigure = Command::Reconfigure { groups: vec![settings("g"), settings("new")], discovered: vec![] };
        handle.command(reconfigure).await.unwrap().unwrap();
        assert!(handle.snapshot().ready, "still ready with groups that have not merged yet");
        token.cancel();
        task.await.unwrap();
    }

    /// Issue 6: `promfed_group_failover_active` is 1 exactly while the leader is not the
    /// preferred replica (a pin that moved the leader is not a failover), and
    /// `promfed_replica_newest_sample_timestamp_seconds` follows each replica's last good scrape.
    #[tokio::test]
    async fn failover_active_and_newest_sample_metrics() {
        let metrics = Arc::new(Metrics::new());
        let (store, handle) = Store::new(vec![settings("g")], metrics.clone());
        let token = CancellationToken::new();
        let task = tokio::spawn(store.run(token.clone()));
        let replicas = vec![
            ReplicaSpec { name: "a".into(), role: Role::Primary, address: "x".into() },
            ReplicaSpec { name: "b".into(), role: Role::Secondary, address: "y".into() },
        ];
        handle.command(Command::SetReplicas { group: "g".into(), replicas, rejected: vec![] }).await.unwrap().unwrap();
        let scrape = |replica: &str, started_ms: i64, ok: bool| Outcome {
            replica: replica.into(),
            started_ms,
            duration_secs: 0.1,
            result: if ok { Ok(Batch::default()) } else { Err("cannot connect".into()) },
        };
        let gl = GroupLabels { group: "g".into() };
        let active = || metrics.group_failover_active.get_or_create(&gl).get();
        let newest = |r: &str| {
            let rl = ReplicaLabels { group: "g".into(), replica: r.into() };
            metrics.replica_newest_sample_timestamp_seconds.get_or_create(&rl).get()
        };
        // A command is answered after every input submitted before it (here: an unknown group).
        let sync = |h: &StoreHandle| {
            let h = h.clone();
            async move {
                let _ = h.command(Command::Unpin { group: "no such group".into() }).await.unwrap();
            }
        };
        let leader = |h: &StoreHandle| h.snapshot().group("g").unwrap().status.leader.clone().unwrap();

        handle.submit("g", scrape("a", 1_700_000_000_250, true)).await.unwrap();
        handle.submit("g", scrape("b", 1_700_000_001_500, true)).await.unwrap();
        sync(&handle).await;
        assert_eq!((leader(&handle).as_str(), active()), ("a", 0), "the primary leads: no failover");
        // A body without timestamps counts as fresh at the scrape's start.
        assert_eq!((newest("a"), newest("b")), (1_700_000_000.25, 1_700_000_001.5));

        handle.submit("g", scrape("a", 1_700_000_015_000, false)).await.unwrap();
        sync(&handle).await;
        assert_eq!((leader(&handle).as_str(), active()), ("b", 1), "failed over to the secondary");
        assert_eq!(newest("a"), 1_700_000_000.25, "a failed scrape leaves the last good value");

        handle.command(Command::Pin { group: "g".into(), replica: "b".into() }).await.unwrap().unwrap();
        assert_eq!((leader(&handle).as_str(), active()), ("b", 0), "pinned: b is the preferred replica");
        handle.command(Command::Unpin { group: "g".into() }).await.unwrap().unwrap();
        assert_eq!(active(), 1, "unpinned while a is still down: the failover is active again");

        // a is back: it leads again after hold_down (2) good scrapes.
        handle.submit("g", scrape("a", 1_700_000_030_000, true)).await.unwrap();
        sync(&handle).await;
        assert_eq!((leader(&handle).as_str(), active()), ("b", 1), "one good scrape is not enough");
        handle.submit("g", scrape("a", 1_700_000_045_000, true)).await.unwrap();
        sync(&handle).await;
        assert_eq!((leader(&handle).as_str(), active()), ("a", 0), "a leads again: failover over");
        assert_eq!(newest("a"), 1_700_000_045.0);

        let text = metrics.encode();
        assert!(text.contains("promfed_group_failover_active{group=\"g\"} 0"), "{text}");
        assert!(
            text.contains("promfed_replica_newest_sample_timestamp_seconds{group=\"g\",replica=\"a\"} 1700000045.0"),
            "{text}"
        );
        token.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn reconfigure_keeps_surviving_groups() {
        let (store, handle) = Store::new(vec![settings("g"), settings("h")], Arc::new(Metrics::new()));
        let token = CancellationToken::new();
        let task = tokio::spawn(store.run(token.clone()));
        let replicas = vec![ReplicaSpec { name: "a".into(), role: Role::Primary, address: "x".into() }];
        handle.command(Command::SetReplicas { group: "g".into(), replicas, rejected: vec![] }).await.unwrap().unwrap();
        let reconfigure = Command::Reconfigure { groups: vec![settings("g"), settings("k")], discovered: vec![] };
        handle.command(reconfigure).await.unwrap().unwrap();
        let snap = handle.snapshot();
        let names: Vec<&str> = snap.groups.iter().map(|g| g.status.name.as_str()).collect();
        assert_eq!(names, ["g", "k"]);
        assert_eq!(snap.group("g").unwrap().status.replicas.len(), 1, "g kept its replicas");
        token.cancel();
        task.await.unwrap();
    }

    /// Issue 3: a group found by a template survives a reload only while the reload names it
    /// (its template stays); pushed groups always survive; `RemoveGroup` removes only found
    /// groups.
    #[tokio::test]
    async fn reconfigure_keeps_pushed_groups_and_only_the_named_found_groups() {
        let metrics = Arc::new(Metrics::new());
        let (store, handle) = Store::new(vec![settings("g")], metrics.clone());
        let token = CancellationToken::new();
        let task = tokio::spawn(store.run(token.clone()));
        for found in ["eu", "us", "ap"] {
            handle.command(Command::AddGroup { settings: settings(found) }).await.unwrap().unwrap();
            let replicas = vec![ReplicaSpec { name: "a".into(), role: Role::Primary, address: "x".into() }];
            let set = Command::SetReplicas { group: found.into(), replicas, rejected: vec![] };
            handle.command(set).await.unwrap().unwrap();
        }
        let push = Push { replica: "r".into(), elected: true, fill_after_ms: None, batch: Batch::default() };
        handle.push("push/c".into(), 300_000, push).await.unwrap();
        let names = |h: &StoreHandle| -> Vec<String> {
            let mut v: Vec<String> = h.snapshot().groups.iter().map(|g| g.status.name.clone()).collect();
            v.sort();
            v
        };
        assert_eq!(names(&handle), ["ap", "eu", "g", "push/c", "us"]);

        let reconfigure =
            Command::Reconfigure { groups: vec![settings("g")], discovered: vec!["eu".into(), "ap".into()] };
        handle.command(reconfigure).await.unwrap().unwrap();
        assert_eq!(names(&handle), ["ap", "eu", "g", "push/c"], "us is gone, the pushed group stays");
        assert_eq!(handle.snapshot().group("eu").unwrap().status.replicas.len(), 1, "eu kept its state");
        assert!(!metrics.encode().contains("group=\"us\""), "us' metrics are gone:\n{}", metrics.encode());

        handle.command(Command::RemoveGroup { group: "ap".into() }).await.unwrap().unwrap();
        for not_found in ["g", "push/c"] {
            handle.command(Command::RemoveGroup { group: not_found.into() }).await.unwrap().unwrap();
        }
        assert_eq!(names(&handle), ["eu", "g", "push/c"], "only a found group is removed by RemoveGroup");
        let snap = handle.snapshot();
        assert_eq!(snap.group("eu").unwrap().status.name, "eu", "snapshots stay aligned with groups");
        token.cancel();
        task.await.unwrap();
    }

    /// Issue 4: pushes are published coalesced (a snapshot rebuild after every push took a
    /// third of the receiver's CPU), but a reader asking for a fresh snapshot sees every
    /// acknowledged push, and an unread push is published within [`PUSH_PUBLISH_EVERY`].
    #[tokio::test]
    async fn pushes_are_published_coalesced_and_on_demand() {
        let metrics = Arc::new(Metrics::new());
        let (store, handle) = Store::new(vec![], metrics.clone());
        let token = CancellationToken::new();
        let task = tokio::spawn(store.run(token.clone()));
        let id = crate::series::Identity::new(vec![], vec![], true);
        let push = |name: &str| {
            let mut b = crate::series::BatchBuilder::new(&id, 0);
            crate::parse::Sink::sample(&mut b, name, &[], 1.0, Some(now_ms()));
            Push { replica: "r".into(), elected: true, fill_after_ms: None, batch: b.finish() }
        };
        let series = |s: &Snapshot| s.group("p").map_or(0, |g| g.status.series);
        // The first push after a quiet spell is published at once.
        handle.push("p".into(), 300_000, push("a")).await.unwrap();
        assert_eq!(series(&handle.snapshot()), 1);
        // The next ones, within PUSH_PUBLISH_EVERY, wait...
        handle.push("p".into(), 300_000, push("b")).await.unwrap();
        handle.push("p".into(), 300_000, push("c")).await.unwrap();
        assert_eq!(series(&handle.snapshot()), 1, "pushes right after a publication are coalesced");
        // ...unless a reader asks for them,
        let generation = handle.snapshot().generation;
        assert_eq!(series(&handle.fresh_snapshot().await.unwrap()), 3);
        assert_eq!(handle.snapshot().generation, generation + 1, "one publication for both");
        // which costs nothing when nothing is pending.
        handle.fresh_snapshot().await.unwrap();
        assert_eq!(handle.snapshot().generation, generation + 1);
        // An unread push is published by the timer.
        tokio::time::sleep(PUSH_PUBLISH_EVERY / 5).await;
        handle.push("p".into(), 300_000, push("d")).await.unwrap();
        let published = Instant::now();
        while series(&handle.snapshot()) < 4 {
            assert!(published.elapsed() < PUSH_PUBLISH_EVERY * 4, "the timer published the push");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        token.cancel();
        task.await.unwrap();
    }
}
