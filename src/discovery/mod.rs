//! Discovery: where the replicas of each group are.
//!
//! A [`Discoverer`] sends the full replica set of a group whenever it changes; the scrape manager
//! starts and stops scrape loops to match and tells the merge store. Static lists from the config
//! are one discoverer ([`static_config`]); EC2 and file discovery plug in the same way.

pub mod ec2;
pub mod file;
pub mod static_config;

use crate::config::target;
use crate::relabel;

pub use file::FileDiscoverer;
pub use static_config::StaticDiscoverer;

use crate::config::Group;
use crate::merge::ReplicaSpec;
use crate::telemetry::Metrics;
use std::collections::{BTreeSet, HashMap};
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

/// The running discoverers of one configuration; replaced as a whole on reload.
pub struct Discovery {
    token: CancellationToken,
    tasks: JoinSet<()>,
}

impl Discovery {
    /// Starts the discoverers `groups` need: EC2 or file discovery for groups that have it
    /// (their static replicas included), one static discoverer for the others. `handover`
    /// numbers the target sets and, after a reload, names the groups found before it.
    pub fn start(
        groups: &[Group],
        metrics: &Arc<Metrics>,
        tx: &mpsc::Sender<TargetSet>,
        parent: &CancellationToken,
        handover: &Handover,
    ) -> Self {
        let token = parent.child_token();
        let mut tasks = JoinSet::new();
        let mut statics = Vec::new();
        for g in groups {
            #[cfg(feature = "ec2")]
            if !g.ec2_sd.is_empty() {
                let announcer = Announcer::new(Arc::new(g.clone()), metrics.clone(), handover);
                let d = ec2::Ec2Discoverer::new(announcer, metrics.clone());
                tasks.spawn(Box::new(d).run(tx.clone(), token.clone()));
                continue;
            }
            if g.file_sd.is_empty() {
                statics.push(TargetSet {
                    group: g.name.clone(),
                    replicas: g.replicas.clone(),
                    rejected: Vec::new(),
                    found: None,
                    remove: false,
                    epoch: handover.epoch,
                });
            } else {
                let announcer = Announcer::new(Arc::new(g.clone()), metrics.clone(), handover);
                let d = FileDiscoverer::new(announcer, metrics.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(group: &str, role: &str, address: &str) -> relabel::Labels {
        [("federation_group", group), ("federation_role", role), ("__address__", address)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    async fn announced(a: &mut Announcer, targets: &[relabel::Labels], complete: bool) -> Vec<(String, usize, bool)> {
        let (tx, mut rx) = mpsc::channel(16);
        assert!(a.announce(targets, complete, "file", &tx).await);
        drop(tx);
        let mut out = Vec::new();
        while let Some(s) = rx.recv().await {
            assert_eq!(s.epoch, 7);
            assert_eq!(s.found.as_ref().map(|f| f.template.as_str()), Some("pairs"));
            out.push((s.group, s.replicas.len(), s.remove));
        }
        out.sort();
        out
    }

    /// Issue 3: after a reload, the groups the template found before and does not find again
    /// are removed — once a refresh read every source; a group that merely disappears later
    /// is only emptied.
    #[tokio::test]
    async fn groups_found_before_a_reload_and_not_found_again_are_removed() {
        let config = crate::config::parse(
            "groups:\n  - name: pairs\n    discover_groups: true\n    file_sd_configs: [{files: [x.json]}]\n",
            "test",
        )
        .unwrap();
        let handover =
            Handover { epoch: 7, found: [("pairs".to_owned(), vec!["eu".to_owned(), "us".to_owned()])].into() };
        let mut a = Announcer::new(Arc::new(config.groups[0].clone()), Arc::new(Metrics::new()), &handover);
        let eu = [target("eu", "primary", "127.0.0.1:1")];
        // A file failed: nothing is removed yet.
        assert_eq!(announced(&mut a, &eu, false).await, [("eu".to_owned(), 1, false)]);
        // Every file read: us, found before the reload, is removed; eu, found again, is not.
        assert_eq!(announced(&mut a, &eu, true).await, [("us".to_owned(), 0, true)]);
        // Later, a group that disappears is emptied, not removed.
        assert_eq!(announced(&mut a, &[], true).await, [("eu".to_owned(), 0, false)]);
        assert_eq!(announced(&mut a, &[], true).await, []);
    }
}
