//! What a discoverer is and what it sends: the target sets of groups (their replicas and the
//! targets rejected), and the announcer that turns found targets into them.

use crate::config::target;
use crate::relabel;

use crate::config::Group;
use crate::merge::ReplicaSpec;
use crate::telemetry::Metrics;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The complete, current replica set of one group.
#[derive(Clone, Debug)]
pub struct TargetSet {
    pub group: String,
    pub replicas: Vec<ReplicaSpec>,
    /// Discovered targets that could not become replicas (no valid role, …), for status.
    pub rejected: Vec<target::Rejected>,
    /// For a group found by a `discover_groups` template: which template, and the group's
    /// settings, so that it can be created when first seen.
    pub found: Option<Found>,
    /// The group is to be removed: a reload changed its template so that it no longer finds
    /// the group (`replicas` is then empty).
    pub remove: bool,
    /// The [`Discovery`] that sent the set; the scrape manager ignores sets of a discovery that
    /// a reload has replaced.
    pub epoch: u64,
}

/// How a `discover_groups` template found a group.
#[derive(Clone, Debug)]
pub struct Found {
    /// The template's name.
    pub template: String,
    /// The group's settings: the template's, named after the group.
    pub settings: Arc<Group>,
}

impl PartialEq for TargetSet {
    /// The same replicas and rejections for the same group (templates are compared by the
    /// scrape manager, which restarts a group whose settings changed).
    fn eq(&self, other: &Self) -> bool {
        self.group == other.group
            && self.replicas == other.replicas
            && self.rejected == other.rejected
            && self.remove == other.remove
    }
}

/// What a reload hands over to the discovery it starts.
#[derive(Debug, Default)]
pub struct Handover {
    /// Numbers the new discovery's target sets ([`TargetSet::epoch`]).
    pub epoch: u64,
    /// Per `discover_groups` template (by name), the groups it had found before the reload
    /// and that still exist: those it does not find again are removed.
    pub found: HashMap<String, Vec<String>>,
}

/// Counts a failed refresh, or records the time of a successful one.
pub fn record_refresh(metrics: &Metrics, mechanism: &crate::telemetry::MechanismLabels, failed: bool) {
    if failed {
        metrics.sd_refresh_failures.get_or_create(mechanism).inc();
    } else {
        let now = crate::clock::now_secs();
        metrics.sd_last_success_timestamp_seconds.get_or_create(mechanism).set(now);
    }
}

/// Turns what a discoverer found into target sets, and sends those that changed since the
/// last call: one set for a plain group (its static replicas included), or one per group value
/// for a `discover_groups` template — with an empty set for a group that is no longer found.
///
/// A group that a template no longer finds keeps existing with no replicas (instances being
/// replaced come back under the same group), except across a reload: the groups the template
/// had found before it and does not find again are removed, as a group removed from the file is.
pub struct Announcer {
    config: Arc<Group>,
    metrics: Arc<Metrics>,
    epoch: u64,
    last: HashMap<String, TargetSet>,
    last_ungrouped: usize,
    /// Groups found before the last reload and not found since: removed after the first
    /// complete refresh that does not find them either.
    before_reload: BTreeSet<String>,
}

impl Announcer {
    /// An announcer for a group (or template) of the config, for the discovery `handover`
    /// describes.
    pub fn new(config: Arc<Group>, metrics: Arc<Metrics>, handover: &Handover) -> Self {
        let before_reload = match handover.found.get(&config.name) {
            Some(groups) if config.discover_groups => groups.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        Announcer {
            config,
            metrics,
            epoch: handover.epoch,
            last: Default::default(),
            last_ungrouped: usize::MAX,
            before_reload,
        }
    }

    /// The group (or template) announced for.
    pub fn config(&self) -> &Arc<Group> {
        &self.config
    }

    /// The settings of a group found by this template.
    fn settings_of(&self, name: &str) -> Arc<Group> {
        let mut settings = (*self.config).clone();
        settings.name = name.to_owned();
        // `$group` in an added label's value names the group: `{federation_group: $group}`.
        for (_, v) in &mut settings.labels {
            *v = v.replace("$group", name);
        }
        settings.discover_groups = false;
        settings.file_sd.clear();
        settings.ec2_sd.clear();
        settings.relabel.clear();
        Arc::new(settings)
    }

    fn found(&self, name: &str) -> Found {
        Found { template: self.config.name.clone(), settings: self.settings_of(name) }
    }

    /// Sends what changed; false when the receiver is gone. `complete` says that every source
    /// was read this time (no file or API error): only then are groups found before a reload
    /// and missing now removed.
    pub async fn announce(
        &mut self,
        targets: &[relabel::Labels],
        complete: bool,
        mechanism: &str,
        tx: &mpsc::Sender<TargetSet>,
    ) -> bool {
        let c = &self.config;
        let sets: Vec<TargetSet> = if c.discover_groups {
            let (groups, ungrouped) = target::replicas_by_group(targets, &c.relabel);
            if ungrouped.len() != self.last_ungrouped {
                for r in &ungrouped {
                    tracing::warn!(template = %c.name, address = %r.address, "discovered target rejected: {}", r.reason);
                }
                let labels = crate::telemetry::GroupLabels { group: c.name.clone() };
                self.metrics.sd_rejected_targets.get_or_create(&labels).set(ungrouped.len() as i64);
                self.last_ungrouped = ungrouped.len();
            }
            let mut sets: Vec<TargetSet> = groups
                .into_iter()
                .map(|(name, (replicas, rejected))| TargetSet {
                    found: Some(self.found(&name)),
                    group: name,
                    replicas,
                    rejected,
                    remove: false,
                    epoch: self.epoch,
                })
                .collect();
            for (gone, old) in &self.last {
                if !sets.iter().any(|s| &s.group == gone) {
                    sets.push(TargetSet { replicas: Vec::new(), rejected: Vec::new(), ..old.clone() });
                }
            }
            self.before_reload.retain(|g| !sets.iter().any(|s| &s.group == g));
            if complete {
                for gone in std::mem::take(&mut self.before_reload) {
                    tracing::info!(template = %c.name, group = %gone, "{mechanism} discovery: group no longer found after the reload; removing it");
                    sets.push(TargetSet {
                        found: Some(self.found(&gone)),
                        group: gone,
                        replicas: Vec::new(),
                        rejected: Vec::new(),
                        remove: true,
                        epoch: self.epoch,
                    });
                }
            }
            sets
        } else {
            let (mut replicas, rejected) = target::replicas(targets, &c.relabel);
            for s in &c.replicas {
                if !replicas.iter().any(|r| r.name == s.name) {
                    replicas.push(s.clone());
                }
            }
            vec![TargetSet { group: c.name.clone(), replicas, rejected, found: None, remove: false, epoch: self.epoch }]
        };
        for set in sets {
            if set.remove {
                self.last.remove(&set.group);
                if tx.send(set).await.is_err() {
                    return false;
                }
                continue;
            }
            if self.last.get(&set.group) == Some(&set) {
                continue;
            }
            let labels = crate::telemetry::GroupLabels { group: set.group.clone() };
            self.metrics.sd_targets.get_or_create(&labels).set(set.replicas.len() as i64);
            self.metrics.sd_rejected_targets.get_or_create(&labels).set(set.rejected.len() as i64);
            for r in &set.rejected {
                tracing::warn!(group = %set.group, address = %r.address, "discovered target rejected: {}", r.reason);
            }
            tracing::info!(group = %set.group, replicas = set.replicas.len(), "{mechanism} discovery: replica set changed");
            if tx.send(set.clone()).await.is_err() {
                return false;
            }
            if set.replicas.is_empty() && set.found.is_some() && set.rejected.is_empty() {
                self.last.remove(&set.group);
            } else {
                self.last.insert(set.group.clone(), set);
            }
        }
        true
    }
}

/// A boxed discovery task.
pub type DiscoveryFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of target sets.
pub trait Discoverer: Send + 'static {
    /// Runs until `shutdown`, sending a group's whole target set each time it changes.
    fn run(self: Box<Self>, tx: mpsc::Sender<TargetSet>, shutdown: CancellationToken) -> DiscoveryFuture;
}
