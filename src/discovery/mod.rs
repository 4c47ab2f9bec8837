//! Discovery: where the replicas of each group are.
//!
//! A [`Discoverer`] sends the full replica set of a group whenever it changes; the scrape manager
//! starts and stops scrape loops to match and tells the merge store. Static lists from the config
//! are one discoverer ([`static_config`]); EC2 and file discovery plug in the same way.

pub mod file;
pub mod relabel;
pub mod static_config;
pub mod target;

pub use file::FileDiscoverer;
pub use static_config::StaticDiscoverer;

use crate::merge::ReplicaSpec;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;
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
