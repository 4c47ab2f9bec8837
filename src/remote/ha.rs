//! The HA tracker: of the replicas pushing for one cluster, one is elected and only its samples
//! are taken, the way Mimir's distributor HA tracker works (one process here, so no KV store):
//!
//! - the first replica seen for a cluster is elected;
//! - a push from the elected replica is accepted and refreshes its "last received" time, at most
//!   once per `update_timeout` (Mimir writes its KV store that often; kept so the failover timing
//!   is the same: between `failover_timeout` and `failover_timeout + update_timeout` after the
//!   elected replica's last push);
//! - a push from another replica is refused (the receiver answers 202 and drops it, counted)
//!   unless the elected replica's last received time is older than `failover_timeout`: then the
//!   pushing replica is elected (a failover) and its push accepted.
//!
//! The tracker remembers at most `max_clusters` clusters; a cluster not heard from for
//! `forget_after` is forgotten when room is needed.

use hashbrown::HashMap;
use serde::Serialize;
use std::sync::Mutex;

pub use crate::config::receiver::HaSettings;

/// The answer for one push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// From the elected replica (`elected_now`: it was just elected, first of its cluster).
    Accept { elected_now: bool },
    /// The elected replica was silent for longer than the failover timeout: `replica` takes over.
    Failover { from: String },
    /// Not the elected replica: drop its samples.
    NotElected { elected: String },
    /// A new cluster, but the tracker already tracks `max_clusters`.
    TooManyClusters { limit: usize },
}

impl Decision {
    /// True when the push's samples are taken.
    pub fn accepted(&self) -> bool {
        matches!(self, Decision::Accept { .. } | Decision::Failover { .. })
    }
}

#[derive(Clone, Debug)]
struct Elected {
    replica: String,
    /// Last push of the elected replica (refreshed at most once per update timeout).
    received_ms: i64,
    elected_ms: i64,
    failovers: u64,
}

/// One cluster as shown by the status API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub elected: String,
    pub elected_at_ms: i64,
    pub last_received_ms: i64,
    pub failovers: u64,
}

/// The tracker; shared by the receiver's requests.
#[derive(Debug)]
pub struct HaTracker {
    settings: HaSettings,
    clusters: Mutex<HashMap<String, Elected>>,
}

impl HaTracker {
    pub fn new(settings: HaSettings) -> Self {
        HaTracker { settings, clusters: Mutex::new(HashMap::new()) }
    }

    /// Decides whether a push from `replica` for `cluster` at `now_ms` is taken.
    pub fn check(&self, cluster: &str, replica: &str, now_ms: i64) -> Decision {
        let s = &self.settings;
        let mut clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = clusters.get_mut(cluster) {
            if e.replica == replica {
                if now_ms - e.received_ms >= s.update_timeout_ms {
                    e.received_ms = now_ms;
                }
                return Decision::Accept { elected_now: false };
            }
            if now_ms - e.received_ms > s.failover_timeout_ms {
                let from = std::mem::replace(&mut e.replica, replica.to_owned());
                e.received_ms = now_ms;
                e.elected_ms = now_ms;
                e.failovers += 1;
                tracing::warn!(%cluster, %from, to = %replica, "elected replica silent past the failover timeout: failing over");
                return Decision::Failover { from };
            }
            return Decision::NotElected { elected: e.replica.clone() };
        }
        if clusters.len() >= s.max_clusters {
            let forget = s.forget_after_ms;
            clusters.retain(|_, e| now_ms - e.received_ms <= forget);
            if clusters.len() >= s.max_clusters {
                return Decision::TooManyClusters { limit: s.max_clusters };
            }
        }
        tracing::info!(%cluster, %replica, "replica elected for a new cluster");
        clusters.insert(
            cluster.to_owned(),
            Elected { replica: replica.to_owned(), received_ms: now_ms, elected_ms: now_ms, failovers: 0 },
        );
        Decision::Accept { elected_now: true }
    }

    /// Every tracked cluster, sorted by name.
    pub fn status(&self) -> Vec<ClusterStatus> {
        let clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ClusterStatus> = clusters
            .iter()
            .map(|(c, e)| ClusterStatus {
                cluster: c.clone(),
                elected: e.replica.clone(),
                elected_at_ms: e.elected_ms,
                last_received_ms: e.received_ms,
                failovers: e.failovers,
            })
            .collect();
        out.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> HaTracker {
        HaTracker::new(HaSettings {
            update_timeout_ms: 15_000,
            failover_timeout_ms: 30_000,
            max_clusters: 2,
            forget_after_ms: 600_000,
        })
    }

    #[test]
    fn first_replica_is_elected_and_others_are_refused() {
        let t = tracker();
        assert_eq!(t.check("eu", "a", 0), Decision::Accept { elected_now: true });
        assert_eq!(t.check("eu", "b", 1_000), Decision::NotElected { elected: "a".into() });
        assert_eq!(t.check("eu", "a", 2_000), Decision::Accept { elected_now: false });
        // Clusters are independent.
        assert_eq!(t.check("us", "b", 2_000), Decision::Accept { elected_now: true });
        assert_eq!(t.status().iter().map(|c| c.elected.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn failover_after_the_timeout_counted_from_the_last_recorded_push() {
        let t = tracker();
        t.check("eu", "a", 0);
        // Pushes within the update timeout do not move the recorded time (Mimir's KV writes).
        t.check("eu", "a", 10_000);
        assert_eq!(t.check("eu", "b", 30_000), Decision::NotElected { elected: "a".into() });
        assert_eq!(t.check("eu", "b", 30_001), Decision::Failover { from: "a".into() });
        assert_eq!(t.check("eu", "a", 30_002), Decision::NotElected { elected: "b".into() });
        // After 15 s a push refreshes the time: b stays elected while it pushes.
        t.check("eu", "b", 45_001);
        assert_eq!(t.check("eu", "a", 75_001), Decision::NotElected { elected: "b".into() });
        assert_eq!(t.check("eu", "a", 75_002), Decision::Failover { from: "b".into() });
        let s = &t.status()[0];
        assert_eq!((s.elected.as_str(), s.failovers, s.elected_at_ms), ("a", 2, 75_002));
    }

    #[test]
    fn cluster_count_is_bounded_and_silent_clusters_make_room() {
        let t = tracker();
        t.check("one", "a", 0);
        t.check("two", "a", 0);
        assert_eq!(t.check("three", "a", 1_000), Decision::TooManyClusters { limit: 2 });
        assert!(!t.check("three", "a", 1_000).accepted());
        t.check("two", "a", 500_000);
        // "one" silent for more than forget_after: forgotten to make room.
        assert_eq!(t.check("three", "a", 700_000), Decision::Accept { elected_now: true });
        let names: Vec<String> = t.status().into_iter().map(|c| c.cluster).collect();
        assert_eq!(names, ["three", "two"]);
    }
}
