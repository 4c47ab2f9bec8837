//! The replicas' raw histories of a group merged into one history per series, by the HA rules
//! of the live merge ([`crate::merge`]), so that a query over a window where a replica was down
//! or lost a target reads one gap-free series.
//!
//! Identity is the live path's: [`crate::series::BatchBuilder`] under the group's
//! [`Identity`] (replica labels dropped, the group's labels added, `honor_labels`) turns each
//! replica's label set into the canonical key, and series with equal keys are merged.
//!
//! Per series, replicas in preference order (the preferred one first):
//! - every sample of the preferred replica is kept;
//! - a sample of a later replica fills in where it fits: at a timestamp no earlier replica
//!   has, and at least 0.9 of the series' interval (the median spacing of its samples) from
//!   the neighbouring samples of *other* replicas on both sides — so replicas scraping at
//!   different phases never double the sample rate, and where replicas share timestamps
//!   (one missed a scrape, was down, lost a target) the result is exactly the union;
//! - timestamps strictly increase;
//! - a counter (by name, as the live path when no TYPE is known: `_total`, `_count`, `_sum`,
//!   `_bucket`) carries an offset across a change of replica so the switch never looks like a
//!   reset ([`crate::merge::counter_offset`], the live merge's rule);
//! - a staleness marker is kept only where it ends the history that was being followed: when
//!   the sample before it comes from its replica and no other replica's sample follows within
//!   two intervals (a replica that lost a target writes one; its twin still has the series).
//!
//! Where this differs from the live merge, and why: the live merge cannot know whether the
//! leader's next sample is late or missing, so it waits (two intervals plus a scrape) before
//! filling, and paces emission by wall-clock time; a history is read whole, so each gap is
//! known exactly and filled from both sides' neighbours. Both keep the same invariants
//! (DEDUP.md's properties 1–3, 5, 7): one copy, no interleaving, increasing time, fill,
//! counter continuity.

use crate::merge::{Last, counter_offset, is_stale_marker};
use crate::parse::{RawLabel, Sink};
use crate::series::{BatchBuilder, Identity, Kind, kind_of};
use std::collections::BTreeMap;

/// A series' samples: (milliseconds, value) in time order.
pub type Samples = Vec<(i64, f64)>;

/// One series of one replica, in preference order of its replica (0 = preferred).
#[derive(Debug)]
pub struct ReplicaSeries {
    pub rank: usize,
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(i64, f64)>,
}

/// A merged series: its canonical key (`name{a="1"}`) and samples.
#[derive(Clone, Debug, PartialEq)]
pub struct MergedSeries {
    pub key: String,
    pub samples: Vec<(i64, f64)>,
}

/// The replicas' series of one group merged by identity; sorted by key.
///
/// A label set the identity rule refuses (a repeated label name) is left out, as a scrape
/// leaves it out.
pub fn merge_group(identity: &Identity, series: Vec<ReplicaSeries>) -> Vec<MergedSeries> {
    let mut by_key: BTreeMap<String, Vec<(usize, Samples)>> = BTreeMap::new();
    for s in series {
        let Some(key) = key_of(identity, &s.labels) else { continue };
        by_key.entry(key).or_default().push((s.rank, s.samples));
    }
    by_key
        .into_iter()
        .map(|(key, mut replicas)| {
            replicas.sort_by_key(|(rank, _)| *rank);
            let counter = kind_of(crate::series::name_of(&key), None) == Kind::Counter;
            let mut lists: Vec<Samples> = replicas.into_iter().map(|(_, s)| s).collect();
            // One replica has the series: its samples as they are, moved, not copied.
            // A healthy pair: the preferred replica's list, moved.
            let samples = merged_unless_preferred(&lists, counter).unwrap_or_else(|| lists.swap_remove(0));
            MergedSeries { samples, key }
        })
        .collect()
}

/// The canonical key of a replica's label set under `identity`.
fn key_of(identity: &Identity, labels: &[(String, String)]) -> Option<String> {
    let name = labels.iter().find(|(n, _)| n == "__name__").map_or("", |(_, v)| v.as_str());
    let raw: Vec<RawLabel<'_>> = labels
        .iter()
        .filter(|(n, _)| n != "__name__")
        .map(|(n, v)| RawLabel { name: n, value: v, escaped: false })
        .collect();
    let mut builder = BatchBuilder::new(identity, 0);
    builder.sample(name, &raw, 0.0, Some(0));
    let batch = builder.finish();
    batch.entries().first().map(|e| batch.key(e))
}

/// The series' typical spacing: the median of its replicas' positive sample spacings (0 when
/// no replica has two samples).
fn typical_interval(replicas: &[Vec<(i64, f64)>]) -> i64 {
    // Scrapes of one interval, timestamps aligned to it (as Prometheus writes them when a scrape
    // starts within its timestamp tolerance): every spacing is the same, found without
    // collecting them.
    let mut spacings = replicas.iter().flat_map(|s| s.windows(2).map(|w| w[1].0 - w[0].0)).filter(|&d| d > 0);
    let first = spacings.next().unwrap_or(0);
    if spacings.all(|d| d == first) {
        return first;
    }
    let mut deltas: Vec<i64> =
        replicas.iter().flat_map(|s| s.windows(2).map(|w| w[1].0 - w[0].0)).filter(|&d| d > 0).collect();
    if deltas.is_empty() {
        return 0;
    }
    let mid = deltas.len() / 2;
    *deltas.select_nth_unstable(mid).1
}

/// One series' histories, in preference order, merged (see the module doc). Each list is in
/// time order.
pub fn merge_series(replicas: &[Vec<(i64, f64)>], counter: bool) -> Vec<(i64, f64)> {
    merged_unless_preferred(replicas, counter).unwrap_or_else(|| replicas[0].clone())
}

/// The merge of `replicas`, or `None` when it is the preferred replica's list as it is (one
/// replica, or [`preferred_alone`]): the caller then moves or copies that list.
fn merged_unless_preferred(replicas: &[Vec<(i64, f64)>], counter: bool) -> Option<Vec<(i64, f64)>> {
    if replicas.len() == 1 {
        return None;
    }
    let interval = typical_interval(replicas);
    let min_gap = interval - interval / 10;
    (!preferred_alone(replicas, min_gap)).then(|| merge_full(replicas, counter, interval))
}

/// [`merge_series`] built sample by sample (no shortcut for the preferred replica alone), for
/// a series of this `interval`: a later replica's sample keeps 0.9 of it from other replicas'.
fn merge_full(replicas: &[Vec<(i64, f64)>], counter: bool, interval: i64) -> Vec<(i64, f64)> {
    if let [only] = replicas {
        return only.clone();
    }
    let min_gap = interval - interval / 10;
    // (timestamp, value, replica) in time order.
    let mut merged: Vec<(i64, f64, u8)> = Vec::new();
    let mut markers: Vec<(i64, u8)> = Vec::new();
    for (rank, samples) in replicas.iter().enumerate() {
        let rank = rank.min(u8::MAX as usize) as u8;
        let mut accepted: Vec<(i64, f64, u8)> = Vec::new();
        // `merged[next]` is the first sample of earlier replicas at or after the candidate.
        let mut next = 0;
        for &(t, v) in samples {
            if is_stale_marker(v) {
                markers.push((t, rank));
                continue;
            }
            while next < merged.len() && merged[next].0 < t {
                next += 1;
            }
            if next < merged.len() && merged[next].0 == t {
                continue; // an earlier replica has this timestamp
            }
            if accepted.last().is_some_and(|a| a.0 >= t) {
                continue; // not in time order within the replica
            }
            // The sample before: the later of the earlier replicas' and this replica's own.
            let before_other = next.checked_sub(1).map(|i| merged[i].0);
            let before_own = accepted.last().map(|a| a.0);
            if let Some(b) = before_other
                && before_own.is_none_or(|own| own < b)
                && t - b < min_gap
            {
                continue;
            }
            if next < merged.len() && merged[next].0 - t < min_gap {
                continue;
            }
            accepted.push((t, v, rank));
        }
        merged = merge_sorted(merged, accepted);
    }
    let merged = with_markers(merged, &markers, 2 * interval);
    // Counter continuity, as the live merge does it.
    let mut out = Vec::with_capacity(merged.len());
    let mut last: Option<Last> = None;
    for (t, v, rank) in merged {
        let (offset, _) = if counter { counter_offset(last, rank, v) } else { (0.0, false) };
        let value = if is_stale_marker(v) { v } else { v + offset };
        last = Some(Last { value, source: rank, offset });
        out.push((t, value));
    }
    out
}

/// Whether the merge of `replicas` is the preferred replica's list as it is: it has no
/// staleness marker and its timestamps increase strictly, and no sample of another replica
/// fills in (each is at a timestamp the preferred one has, or closer than `min_gap` to one of
/// its neighbours). That is a healthy pair's steady state; one pass per replica tells it,
/// instead of building the merge. The rules of [`merge_series`] with nothing accepted from a
/// later replica: its markers never follow their own replica, the counter offset stays 0.
fn preferred_alone(replicas: &[Vec<(i64, f64)>], min_gap: i64) -> bool {
    let Some((first, others)) = replicas.split_first() else { return true };
    if first.iter().any(|s| is_stale_marker(s.1)) || first.windows(2).any(|w| w[0].0 >= w[1].0) {
        return false;
    }
    for other in others {
        let mut next = 0;
        for &(t, v) in other {
            if is_stale_marker(v) {
                continue;
            }
            while next < first.len() && first[next].0 < t {
                next += 1;
            }
            if first.get(next).is_some_and(|s| s.0 == t) {
                continue;
            }
            let close_before = next > 0 && t - first[next - 1].0 < min_gap;
            let close_after = first.get(next).is_some_and(|s| s.0 - t < min_gap);
            if !close_before && !close_after {
                return false;
            }
        }
    }
    true
}

fn merge_sorted(a: Vec<(i64, f64, u8)>, b: Vec<(i64, f64, u8)>) -> Vec<(i64, f64, u8)> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].0 <= b[j].0 {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Adds the staleness markers that end the history being followed (see the module doc).
fn with_markers(merged: Vec<(i64, f64, u8)>, markers: &[(i64, u8)], window: i64) -> Vec<(i64, f64, u8)> {
    let stale = f64::from_bits(crate::merge::STALE_NAN_BITS);
    let mut keep: Vec<(i64, f64, u8)> = Vec::new();
    for &(t, rank) in markers {
        let at = merged.partition_point(|s| s.0 < t);
        if merged.get(at).is_some_and(|s| s.0 == t) || keep.iter().any(|k| k.0 == t) {
            continue;
        }
        let follows_own = at > 0 && merged[at - 1].2 == rank;
        let other_soon = merged[at..].iter().take_while(|s| s.0 <= t + window).any(|s| s.2 != rank);
        if follows_own && !other_soon {
            keep.push((t, stale, rank));
        }
    }
    keep.sort_by_key(|k| k.0);
    merge_sorted(merged, keep)
}

#[cfg(test)]
mod tests;
