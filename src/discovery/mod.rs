//! Discovery: where the replicas of each group are.
//!
//! A [`Discoverer`] sends the full replica set of a group whenever it changes; the scrape manager
//! starts and stops scrape loops to match and tells the merge store. Static lists from the config
//! are one discoverer ([`static_config`]); EC2 and file discovery plug in the same way.

pub mod ec2;
pub mod file;
pub mod relabel;
pub mod static_config;
pub mod target;

pub use file::FileDiscoverer;
pub use static_config::StaticDiscoverer;

use crate::config::Group;
use crate::merge::ReplicaSpec;
use crate::telemetry::Metrics;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The complete, current replica set of one group.
#[derive(Clone, Debug)]
pub struct TargetSet {
    pub group: String,
    pub replicas: Vec<ReplicaSpec>,
    /// Discovered targets that could not become replicas (no valid role, …), for status.
    pub rejected: Vec<target::Rejected>,
    /// For a group found by a `discover_groups` template: its settings (the template's, named
    /// after the group), so that it can be created when first seen.
    pub template: Option<Arc<Group>>,
}

impl PartialEq for TargetSet {
    /// The same replicas and rejections for the same group (templates are compared by the
    /// scrape manager, which restarts a group whose settings changed).
    fn eq(&self, other: &Self) -> bool {
        self.group == other.group && self.replicas == other.replicas && self.rejected == other.rejected
    }
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
pub struct Announcer {
    config: Arc<Group>,
    metrics: Arc<Metrics>,
    last: std::collections::HashMap<String, TargetSet>,
    last_ungrouped: usize,
}

impl Announcer {
    /// An announcer for a group (or template) of the config.
    pub fn new(config: Arc<Group>, metrics: Arc<Metrics>) -> Self {
        Announcer { config, metrics, last: Default::default(), last_ungrouped: usize::MAX }
    }

    /// Sends what changed; false when the receiver is gone.
    pub async fn announce(
        &mut self,
        targets: &[relabel::Labels],
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
                .map(|(name, (replicas, rejected))| {
                    let mut settings = (**c).clone();
                    settings.name.clone_from(&name);
                    // `$group` in an added label's value names the group: `{federation_group: $group}`.
                    for (_, v) in &mut settings.labels {
                        *v = v.replace("$group", &name);
                    }
                    settings.discover_groups = false;
                    settings.file_sd.clear();
                    settings.ec2_sd.clear();
                    settings.relabel.clear();
                    TargetSet { group: name, replicas, rejected, template: Some(Arc::new(settings)) }
                })
                .collect();
            for (gone, old) in &self.last {
                if !sets.iter().any(|s| &s.group == gone) {
                    sets.push(TargetSet { replicas: Vec::new(), rejected: Vec::new(), ..old.clone() });
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
            vec![TargetSet { group: c.name.clone(), replicas, rejected, template: None }]
        };
        for set in sets {
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
            if set.replicas.is_empty() && set.template.is_some() && set.rejected.is_empty() {
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

/// The running discoverers of one configuration; replaced as a whole on reload.
pub struct Discovery {
    token: CancellationToken,
    tasks: JoinSet<()>,
}

impl Discovery {
    /// Starts the discoverers `groups` need: EC2 or file discovery for groups that have it
    /// (their static replicas included), one static discoverer for the others.
    pub fn start(
        groups: &[Group],
        metrics: &Arc<Metrics>,
        tx: &mpsc::Sender<TargetSet>,
        parent: &CancellationToken,
    ) -> Self {
        let token = parent.child_token();
        let mut tasks = JoinSet::new();
        let mut statics = Vec::new();
        for g in groups {
            #[cfg(feature = "ec2")]
            if !g.ec2_sd.is_empty() {
                let d = ec2::Ec2Discoverer::new(Arc::new(g.clone()), metrics.clone());
                tasks.spawn(Box::new(d).run(tx.clone(), token.clone()));
                continue;
            }
            if g.file_sd.is_empty() {
                statics.push(TargetSet {
                    group: g.name.clone(),
                    replicas: g.replicas.clone(),
                    rejected: Vec::new(),
                    template: None,
                });
            } else {
                let d = FileDiscoverer::new(Arc::new(g.clone()), metrics.clone());
                tasks.spawn(Box::new(d).run(tx.clone(), token.clone()));
            }
        }
        tasks.spawn(Box::new(StaticDiscoverer::new(statics)).run(tx.clone(), token.clone()));
        Discovery { token, tasks }
    }

    /// Stops every discoverer and waits for them.
    pub async fn stop(mut self) {
        self.token.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}
