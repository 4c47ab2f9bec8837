//! Replicas listed in the config file: sent once, then nothing changes until a reload.

use super::source::{Discoverer, DiscoveryFuture, TargetSet};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Sends fixed target sets once.
pub struct StaticDiscoverer {
    sets: Vec<TargetSet>,
}

impl StaticDiscoverer {
    /// A discoverer for these sets.
    pub fn new(sets: Vec<TargetSet>) -> Self {
        StaticDiscoverer { sets }
    }
}

impl Discoverer for StaticDiscoverer {
    fn run(self: Box<Self>, tx: mpsc::Sender<TargetSet>, shutdown: CancellationToken) -> DiscoveryFuture {
        Box::pin(async move {
            for set in self.sets {
                if tx.send(set).await.is_err() {
                    return;
                }
            }
            // Nothing changes later; stay alive so the supervisor does not see an early exit.
            shutdown.cancelled().await;
        })
    }
}
