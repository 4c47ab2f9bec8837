//! Keeps one scrape loop per discovered replica, and runs them.
//!
//! Each loop starts at a random offset within the interval (so replicas of many groups do not
//! all fire at once, as Prometheus spreads its targets), then scrapes at a fixed cadence. A scrape
//! that outlives its interval delays the next tick rather than piling up.

use super::fetch::{GroupClient, ScrapeError};
use crate::config::Group;
use crate::discovery::TargetSet;
use crate::merge::{Command, Outcome, StoreHandle};
use crate::telemetry::{Metrics, ReplicaLabels, ScrapeErrorLabels};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

struct GroupRuntime {
    client: Arc<GroupClient>,
    /// The settings the client was built from (the query side reads the same group by them).
    settings: Arc<Group>,
    interval: Duration,
    /// What the client and loops were built from; a reload that changes it restarts the loops.
    fingerprint: String,
    /// The `discover_groups` template that found the group; `None` for a configured group.
    template: Option<String>,
}

/// The scrape-relevant settings of a group: everything but where the replicas come from.
fn fingerprint(g: &Group) -> String {
    let mut g = g.clone();
    g.replicas.clear();
    g.file_sd.clear();
    g.ec2_sd.clear();
    g.relabel.clear();
    format!("{g:?}")
}

/// Per `discover_groups` template, the groups it found that a reload kept.
pub type FoundGroups = HashMap<String, Vec<String>>;

/// A config reload for the manager: the new groups, the epoch of the discovery that will
/// follow, and where to say whether they were taken (with the found groups that stay).
pub struct Reconfigure {
    pub groups: Vec<Group>,
    pub epoch: u64,
    pub reply: tokio::sync::oneshot::Sender<Result<FoundGroups, super::fetch::ClientError>>,
}

struct Running {
    address: String,
    token: CancellationToken,
}

/// Every running group's settings by name, configured or found by a template: what the query
/// API reads (`crate::query::fetch::Sources`). Published after every change.
pub type GroupsView = Arc<arc_swap::ArcSwap<HashMap<String, Arc<Group>>>>;

/// Owns the scrape loops.
pub struct ScrapeManager {
    groups: HashMap<String, GroupRuntime>,
    view: GroupsView,
    loops: HashMap<(String, String), Running>,
    /// The last target set of each group, re-applied when a reload restarts its loops.
    last_targets: HashMap<String, TargetSet>,
    /// Target sets of other epochs come from a discovery a reload replaced: ignored.
    epoch: u64,
    store: StoreHandle,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl ScrapeManager {
    /// A manager for these groups; builds each group's HTTP client now.
    pub fn new(
        groups: &[Group],
        store: StoreHandle,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<Self, super::fetch::ClientError> {
        let mut runtimes = HashMap::new();
        for g in groups.iter().filter(|g| !g.discover_groups) {
            runtimes.insert(g.name.clone(), runtime(g)?);
        }
        let view = GroupsView::default();
        let manager = ScrapeManager {
            groups: runtimes,
            view,
            loops: HashMap::new(),
            last_targets: HashMap::new(),
            epoch: 0,
            store,
            metrics,
            shutdown,
            tracker: TaskTracker::new(),
        };
        manager.publish();
        Ok(manager)
    }

    /// The groups as the query API sees them, kept current.
    pub fn view(&self) -> GroupsView {
        self.view.clone()
    }

    fn publish(&self) {
        let groups = self.groups.iter().map(|(name, rt)| (name.clone(), rt.settings.clone())).collect();
        self.view.store(Arc::new(groups));
    }

    /// Applies target sets and reloads until shutdown, then waits for every loop to stop.
    pub async fn run(mut self, mut targets: mpsc::Receiver<TargetSet>, mut reloads: mpsc::Receiver<Reconfigure>) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                set = targets.recv() => match set {
                    Some(set) if set.epoch != self.epoch => {
                        tracing::debug!(group = %set.group, "target set of a discovery replaced by a reload ignored");
                    }
                    Some(set) => self.apply(set).await,
                    None => self.shutdown.cancelled().await,
                },
                Some(r) = reloads.recv() => {
                    let result = self.reconfigure(r.groups, r.epoch).await;
                    let _ = r.reply.send(result);
                }
            }
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Takes a reloaded config: new groups get a client (their loops start when discovery
    /// names their replicas), removed groups stop, groups whose scrape settings changed restart
    /// their loops with the last known replicas, unchanged groups are not touched. Groups found
    /// by a template that is no longer configured stop; those of a template that stays are
    /// kept (with their loops) until the new discovery finds them again or not, and are
    /// returned. Every client is built before anything changes, so a bad TLS file leaves the
    /// old config running. From now on only target sets of `epoch` are applied.
    pub async fn reconfigure(
        &mut self,
        groups: Vec<Group>,
        epoch: u64,
    ) -> Result<FoundGroups, super::fetch::ClientError> {
        let mut built = HashMap::new();
        for g in groups.iter().filter(|g| !g.discover_groups) {
            if self.groups.get(&g.name).is_none_or(|rt| rt.fingerprint != fingerprint(g)) {
                built.insert(g.name.clone(), runtime(g)?);
            }
        }
        let configured: HashSet<&str> = groups.iter().filter(|g| !g.discover_groups).map(|g| g.name.as_str()).collect();
        let templates: HashSet<&str> = groups.iter().filter(|g| g.discover_groups).map(|g| g.name.as_str()).collect();
        let mut found = FoundGroups::new();
        let mut stop = Vec::new();
        for (name, mut rt) in std::mem::take(&mut self.groups) {
            if configured.contains(name.as_str()) {
                // A group whose client was rebuilt above is restarted below with it.
                if !built.contains_key(&name) {
                    // Configured now, whatever it was before: no template removes it.
                    rt.template = None;
                    self.groups.insert(name, rt);
                }
            } else if let Some(t) = rt.template.as_deref().filter(|t| templates.contains(t)) {
                found.entry(t.to_owned()).or_default().push(name.clone());
                self.groups.insert(name, rt);
            } else {
                tracing::info!(group = %name, "config reload: group removed");
                stop.push(name);
            }
        }
        let restart: Vec<String> = built.keys().cloned().collect();
        self.groups.extend(built);
        self.epoch = epoch;
        for name in stop.iter().chain(&restart) {
            self.stop_loops(name, "config reload");
            let last = self.last_targets.remove(name);
            if let Some(mut set) = last.filter(|_| self.groups.contains_key(name)) {
                // Restart with the last known replicas now rather than after the next discovery.
                set.found = None;
                set.epoch = epoch;
                self.apply(set).await;
            }
        }
        self.publish();
        Ok(found)
    }

    /// Stops every scrape loop of `group`.
    fn stop_loops(&mut self, group: &str, why: &str) {
        self.loops.retain(|(g, r), running| {
            if g == group {
                tracing::info!(group = %g, replica = %r, "{why}: stopping scrape loop");
                running.token.cancel();
                return false;
            }
            true
        });
    }

    /// Starts, stops or restarts loops so that `set.group` scrapes exactly `set.replicas`. A set
    /// from a `discover_groups` template creates its group when first seen, restarts it when
    /// the template's settings changed, and removes it when the template no longer finds it
    /// after a reload.
    pub async fn apply(&mut self, set: TargetSet) {
        if let Some(found) = &set.found {
            let existing = self.groups.get(&set.group);
            if existing.is_some_and(|rt| rt.template.is_none()) {
                tracing::warn!(group = %set.group, template = %found.template,
                    "a group found by discovery has the name of a configured group: ignored");
                return;
            }
            if set.remove {
                if existing.is_some_and(|rt| rt.template.as_deref() == Some(found.template.as_str())) {
                    self.groups.remove(&set.group);
                    self.publish();
                    self.last_targets.remove(&set.group);
                    self.stop_loops(&set.group, "group no longer found");
                    let _ = self.store.command(Command::RemoveGroup { group: set.group.clone() }).await;
                }
                return;
            }
            let fp = fingerprint(&found.settings);
            match self.groups.get_mut(&set.group) {
                Some(rt) if rt.fingerprint == fp => {
                    // Found by another template after a reload: that one owns it now.
                    rt.template = Some(found.template.clone());
                }
                _ => {
                    let rt = match runtime(&found.settings) {
                        Ok(rt) => GroupRuntime { template: Some(found.template.clone()), ..rt },
                        Err(e) => {
                            tracing::error!(group = %set.group, "discovered group not started: {e}");
                            return;
                        }
                    };
                    let settings = crate::merge::GroupSettings::of(&found.settings);
                    if self.store.command(Command::AddGroup { settings }).await.is_err() {
                        return;
                    }
                    self.stop_loops(&set.group, "settings changed");
                    self.groups.insert(set.group.clone(), rt);
                    self.publish();
                }
            }
        }
        let Some(rt) = self.groups.get(&set.group) else {
            tracing::warn!(group = %set.group, "targets for an unknown group ignored");
            return;
        };
        let (client, interval) = (rt.client.clone(), rt.interval);
        // The store learns the replica set first, so that the first outcome of a new loop
        // finds its replica.
        if self
            .store
            .command(Command::SetReplicas {
                group: set.group.clone(),
                replicas: set.replicas.clone(),
                rejected: set.rejected.iter().map(|r| format!("{}: {}", r.address, r.reason)).collect(),
            })
            .await
            .is_err()
        {
            return;
        }
        self.loops.retain(|(g, r), running| {
            let keep = g != &set.group || set.replicas.iter().any(|s| &s.name == r && s.address == running.address);
            if !keep {
                tracing::info!(group = %g, replica = %r, address = %running.address, "stopping scrape loop");
                running.token.cancel();
            }
            keep
        });
        for spec in &set.replicas {
            let key = (set.group.clone(), spec.name.clone());
            if self.loops.contains_key(&key) {
                continue;
            }
            let token = self.shutdown.child_token();
            tracing::info!(group = %set.group, replica = %spec.name, url = %client.url(&spec.address),
                role = %spec.role, "starting scrape loop");
            let scrape = ScrapeLoop {
                client: client.clone(),
                replica: spec.name.clone(),
                address: spec.address.clone(),
                interval,
                store: self.store.clone(),
                metrics: self.metrics.clone(),
            };
            self.tracker.spawn(scrape.run(token.clone()));
            self.loops.insert(key, Running { address: spec.address.clone(), token });
        }
        self.last_targets.insert(set.group.clone(), set);
    }
}

fn runtime(g: &Group) -> Result<GroupRuntime, super::fetch::ClientError> {
    Ok(GroupRuntime {
        client: Arc::new(GroupClient::new(g)?),
        settings: Arc::new(g.clone()),
        interval: g.scrape_interval,
        fingerprint: fingerprint(g),
        template: None,
    })
}

struct ScrapeLoop {
    client: Arc<GroupClient>,
    replica: String,
    address: String,
    interval: Duration,
    store: StoreHandle,
    metrics: Arc<Metrics>,
}

impl ScrapeLoop {
    async fn run(self, token: CancellationToken) {
        let offset = self.interval.mul_f64(fastrand::f64());
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(offset) => {}
        }
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let group = self.client.group.clone();
        let labels = ReplicaLabels { group: group.clone(), replica: self.replica.clone() };
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let started_ms = crate::clock::now_ms();
            let started = Instant::now();
            let result = tokio::select! {
                _ = token.cancelled() => return,
                r = self.client.scrape(&self.address) => r,
            };
            let duration = started.elapsed().as_secs_f64();
            self.metrics.scrapes.get_or_create(&labels).inc();
            let result = match result {
                Ok(scraped) => {
                    if last_error.take().is_some() {
                        tracing::info!(%group, replica = %self.replica, "scrape recovered");
                    }
                    self.metrics.scrape_body_bytes.get_or_create(&labels).inc_by(scraped.bytes);
                    if scraped.rejected > 0 {
                        self.metrics.scrape_rejected_samples.get_or_create(&labels).inc_by(scraped.rejected);
                        tracing::debug!(%group, replica = %self.replica, rejected = scraped.rejected,
                            "samples with a repeated label name dropped");
                    }
                    Ok(scraped.batch)
                }
                Err(e) => Err(self.failed(&e, &mut last_error)),
            };
            let outcome = Outcome { replica: self.replica.clone(), started_ms, duration_secs: duration, result };
            if self.store.submit(&group, outcome).await.is_err() {
                return;
            }
        }
    }

    fn failed(&self, e: &ScrapeError, last_error: &mut Option<String>) -> String {
        let message = e.to_string();
        self.metrics
            .scrape_errors
            .get_or_create(&ScrapeErrorLabels {
                group: self.client.group.clone(),
                replica: self.replica.clone(),
                reason: e.reason().to_owned(),
            })
            .inc();
        // Log each new error once, not every interval while a replica stays down.
        if last_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(group = %self.client.group, replica = %self.replica, reason = e.reason(), "{message}");
        }
        *last_error = Some(message.clone());
        message
    }
}
