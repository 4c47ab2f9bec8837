//! Discovery: where the replicas of each group are.
//!
//! A [`Discoverer`] sends the full replica set of a group whenever it changes; the scrape manager
//! starts and stops scrape loops to match and tells the merge store. Static lists from the config
//! are one discoverer ([`static_config`]); EC2 and file discovery plug in the same way.

pub mod ec2;
pub mod file;
pub mod source;
pub mod static_config;

pub use source::{Announcer, Discoverer, DiscoveryFuture, Found, Handover, TargetSet, record_refresh};

pub use file::FileDiscoverer;
pub use static_config::StaticDiscoverer;

use crate::config::Group;
use crate::telemetry::Metrics;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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
    use crate::relabel;

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
