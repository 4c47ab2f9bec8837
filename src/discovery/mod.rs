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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSet {
    pub group: String,
    pub replicas: Vec<ReplicaSpec>,
    /// Discovered targets that could not become replicas (no valid role, …), for status.
    pub rejected: Vec<target::Rejected>,
}

/// A boxed discovery task.
pub type DiscoveryFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of target sets.
pub trait Discoverer: Send + 'static {
    /// A short name for logs and metrics (`static`, `ec2`, `file`).
    fn mechanism(&self) -> &'static str;

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
                let d = ec2::Ec2Discoverer::new(
                    g.name.clone(),
                    g.ec2_sd.clone(),
                    g.relabel.clone(),
                    g.replicas.clone(),
                    metrics.clone(),
                );
                tasks.spawn(Box::new(d).run(tx.clone(), token.clone()));
                continue;
            }
            if g.file_sd.is_empty() {
                statics.push(TargetSet { group: g.name.clone(), replicas: g.replicas.clone(), rejected: Vec::new() });
            } else {
                let d = FileDiscoverer::new(
                    g.name.clone(),
                    g.file_sd.clone(),
                    g.relabel.clone(),
                    g.replicas.clone(),
                    metrics.clone(),
                );
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
