//! Pushed samples (Remote-Write) in a group.
//!
//! A push is not a scrape: it carries some series (Prometheus shards its series over parallel
//! requests), possibly several samples of each, and says nothing about the series it does not
//! carry. So a push updates only its own series, sample by sample in order, and never makes other
//! series look absent. Which replica a group takes its samples from is decided by the receiver's
//! HA tracker (the elected replica, see `crate::remote::ha`); the group only follows:
//!
//! - a sample of the elected replica is emitted when it is newer than the series' last emitted
//!   sample (older ones are dropped and counted: after a failover the new replica re-sends what
//!   was already taken from the old one);
//! - with `fill_after` set (the receiver's `fill_from_non_elected`), a sample of another replica
//!   is emitted for a series the elected replica has not sent for longer than `fill_after` (or
//!   never sent), so a series the elected replica lacks is not lost; counter values switching
//!   source carry an offset, as in the scrape merge (rule 7);
//! - series not pushed for the lookback expire ([`Group::expire`]).

use super::{
    ApplyStats, FREE, Group, Latest, NEVER, ReplicaSpec, Role, emit, is_stale_marker, more_of, record as record_emitted,
};
use crate::series::Batch;

/// One accepted push of one replica.
#[derive(Debug)]
pub struct Push {
    pub replica: String,
    /// The HA tracker elected this replica for the group's cluster.
    pub elected: bool,
    /// Fill series the elected replica lacks from this (non-elected) replica after this long.
    pub fill_after_ms: Option<i64>,
    pub batch: Batch,
}

/// Replica name of pushes without a replica label: its samples are taken, but it never becomes
/// the group's leader (there was no election).
pub const NO_REPLICA: &str = "-";

/// Replica address shown in status for pushing replicas.
pub const PUSH_ADDRESS: &str = "(remote write)";

impl Group {
    /// Applies one push at wall-clock time `now_ms` (samples without a timestamp get it).
    pub fn apply_push(&mut self, push: Push, now_ms: i64) -> ApplyStats {
        let mut stats = ApplyStats::default();
        self.tried = true;
        let slot = match self.slot(&push.replica) {
            Some(slot) => slot,
            None => {
                let mut specs: Vec<ReplicaSpec> = self
                    .replicas
                    .iter()
                    .filter(|r| r.active)
                    .map(|r| ReplicaSpec { name: r.name.clone(), role: r.role, address: r.address.clone() })
                    .collect();
                specs.push(ReplicaSpec {
                    name: push.replica.clone(),
                    role: Role::Secondary,
                    address: PUSH_ADDRESS.into(),
                });
                self.set_replicas(&specs);
                match self.slot(&push.replica) {
                    Some(slot) => slot,
                    None => {
                        tracing::warn!(group = %self.settings.name, replica = %push.replica, "no replica slot left for a pushing replica");
                        return stats;
                    }
                }
            }
        };
        if push.elected && push.replica != NO_REPLICA && self.leader != Some(slot) {
            if let Some(previous) = self.leader {
                self.failovers += 1;
                tracing::warn!(group = %self.settings.name, from = %self.replicas[previous].name,
                    to = %push.replica, "elected pushing replica changed");
            }
            self.leader = Some(slot);
        }
        let batch = push.batch;
        {
            let r = &mut self.replicas[slot];
            r.healthy = Some(true);
            r.last_error = None;
            r.last_scrape_ms = Some(now_ms);
            r.last_samples = batch.len();
            r.consecutive_good_scrapes = r.consecutive_good_scrapes.saturating_add(1);
            let newest = batch.entries().iter().filter_map(|e| e.timestamp_ms).max();
            r.newest_sample_ms = r.newest_sample_ms.max(newest);
        }
        self.maybe_compact();
        let generation = self.replicas[slot].generation;
        let leader = self.leader;
        let mut schema_ids = vec![FREE; batch.schema_count()];
        for entry in batch.entries() {
            if is_stale_marker(entry.value) {
                stats.stale_markers += 1;
                continue;
            }
            let ts = entry.timestamp_ms.unwrap_or(now_ms);
            let schema = self.schema_for(&batch, entry, &mut schema_ids);
            let idx = self.series_index(entry, schema, batch.values(entry));
            let s = &mut self.series[idx];
            let before = s.get(slot, more_of(&self.more, idx));
            let sample = Latest { ts, value: entry.value, generation, prev_ts: before.ts, prev_value: before.value };
            if before.ts < ts {
                s.set(slot, sample, &mut self.more, idx);
            }
            let take = if push.elected {
                true
            } else if let Some(after) = push.fill_after_ms {
                let elected_ts = leader.and_then(|l| s.latest(l, more_of(&self.more, idx))).map_or(NEVER, |l| l.ts);
                elected_ts == NEVER || ts.saturating_sub(elected_ts) > after
            } else {
                false
            };
            if !take {
                continue;
            }
            if ts <= s.emitted_ts {
                stats.too_old += 1;
                continue;
            }
            emit(s, &mut self.offsets, idx, slot as u8, sample, &mut stats);
            record_emitted(&mut self.emitted, s);
            stats.emitted += 1;
            if !push.elected {
                stats.filled += 1;
            }
        }
        stats
    }

    /// Forgets series nothing reported for the lookback (pushed groups; the scrape merge does
    /// this as it selects). Returns how many expired.
    pub fn expire(&mut self, now_ms: i64) -> u64 {
        let lookback = self.settings.lookback_ms;
        let expired: Vec<usize> = (0..self.series.len())
            .filter(|&i| {
                let s = &self.series[i];
                s.schema != FREE && now_ms - s.newest_known(more_of(&self.more, i)) > lookback
            })
            .collect();
        for &idx in &expired {
            self.end_series(idx, now_ms);
        }
        expired.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::GroupSettings;
    use crate::parse::{MetricType, RawLabel, Sink};
    use crate::series::{BatchBuilder, Identity};

    fn group() -> Group {
        Group::new(GroupSettings {
            name: "push/eu".into(),
            hold_down: 0,
            lookback_ms: 300_000,
            scrape_interval_ms: 15_000,
        })
    }

    /// A batch of `(name, instance, ts, value)` samples, in order.
    fn batch(samples: &[(&str, &str, i64, f64)]) -> Batch {
        let identity = Identity::new(vec!["__replica__".into()], vec![], true);
        let mut b = BatchBuilder::new(&identity, 1024);
        for &(name, instance, ts, value) in samples {
            b.family(name, if name.ends_with("_total") { MetricType::Counter } else { MetricType::Gauge });
            b.sample(name, &[RawLabel { name: "instance", value: instance, escaped: false }], value, Some(ts));
        }
        b.finish()
    }

    fn push(
        g: &mut Group,
        replica: &str,
        elected: bool,
        fill: Option<i64>,
        samples: &[(&str, &str, i64, f64)],
    ) -> ApplyStats {
        let p = Push { replica: replica.into(), elected, fill_after_ms: fill, batch: batch(samples) };
        g.apply_push(p, 1_000_000)
    }

    fn served(g: &mut Group) -> Vec<(String, i64, f64)> {
        g.snapshot_entries(100_000).into_iter().map(|e| (e.key.to_string(), e.ts, e.value)).collect()
    }

    #[test]
    fn elected_samples_are_emitted_in_order_and_others_only_recorded() {
        let mut g = group();
        let s =
            push(&mut g, "a", true, None, &[("up", "x", 1_000, 1.0), ("up", "x", 2_000, 1.0), ("up", "y", 2_000, 0.0)]);
        assert_eq!((s.emitted, s.filled, s.too_old), (3, 0, 0));
        let s = push(&mut g, "b", false, None, &[("up", "x", 3_000, 5.0), ("up", "z", 3_000, 5.0)]);
        assert_eq!(s.emitted, 0);
        // A push says nothing about the series it does not carry: y is still served.
        assert_eq!(
            served(&mut g),
            [("up{instance=\"x\"}".into(), 2_000, 1.0), ("up{instance=\"y\"}".into(), 2_000, 0.0)]
        );
        let status = g.status();
        assert_eq!(status.leader.as_deref(), Some("a"));
        assert_eq!(status.replicas.len(), 2);
        // A re-sent (older or equal) sample of the elected replica is dropped and counted.
        let s = push(&mut g, "a", true, None, &[("up", "x", 2_000, 1.0), ("up", "x", 1_500, 1.0)]);
        assert_eq!((s.emitted, s.too_old), (0, 2));
    }

    #[test]
    fn failover_carries_counter_offsets_and_skips_what_was_taken() {
        let mut g = group();
        push(&mut g, "a", true, None, &[("req_total", "x", 1_000, 100.0), ("req_total", "x", 2_000, 110.0)]);
        // b is elected after a failover; its counter is a little behind a's and it re-sends
        // a sample older than the last emitted one.
        let s = push(&mut g, "b", true, None, &[("req_total", "x", 1_900, 105.0), ("req_total", "x", 3_000, 108.0)]);
        assert_eq!((s.emitted, s.too_old, s.offsets_applied), (1, 1, 1));
        assert_eq!(served(&mut g), [("req_total{instance=\"x\"}".into(), 3_000, 110.0)]);
        let s = push(&mut g, "b", true, None, &[("req_total", "x", 4_000, 118.0)]);
        assert_eq!(s.emitted, 1);
        assert_eq!(served(&mut g), [("req_total{instance=\"x\"}".into(), 4_000, 120.0)]);
        assert_eq!(g.status().failovers, 1);
        assert_eq!(g.status().leader.as_deref(), Some("b"));
    }

    #[test]
    fn fill_takes_only_series_the_elected_replica_lacks() {
        let mut g = group();
        push(&mut g, "a", true, Some(30_000), &[("up", "x", 1_000, 1.0)]);
        // b has x (a sends it: not filled) and z (a never sent it: filled).
        let s = push(&mut g, "b", false, Some(30_000), &[("up", "x", 1_500, 2.0), ("up", "z", 1_500, 3.0)]);
        assert_eq!((s.emitted, s.filled), (1, 1));
        // a stops sending x: after fill_after, b's x is taken.
        let s = push(&mut g, "b", false, Some(30_000), &[("up", "x", 31_000, 2.0)]);
        assert_eq!(s.filled, 0, "not yet: 30 s since a's last x");
        let s = push(&mut g, "b", false, Some(30_000), &[("up", "x", 31_001, 2.0)]);
        assert_eq!(s.filled, 1);
        // Without the flag nothing of b is taken.
        let s = push(&mut g, "b", false, None, &[("up", "x", 90_000, 2.0), ("up", "w", 90_000, 1.0)]);
        assert_eq!(s.emitted, 0);
    }

    #[test]
    fn stale_markers_counted_and_series_expire() {
        let mut g = group();
        let stale = f64::from_bits(super::super::STALE_NAN_BITS);
        let s = push(&mut g, "a", true, None, &[("up", "x", 1_000, stale), ("up", "y", 1_000, 1.0)]);
        assert_eq!((s.stale_markers, s.emitted), (1, 1));
        assert_eq!(g.series_count(), 1);
        assert_eq!(g.expire(1_000 + 300_000), 0);
        assert_eq!(g.expire(1_000 + 300_001), 1);
        assert_eq!(g.series_count(), 0);
    }
}
