//! The merge rules, one test per case of the README's "Merge semantics", plus property tests.
//! Timestamps are in seconds in the test names and tables, milliseconds in the code.

use super::*;
use crate::parse::{RawLabel, Sink};
use crate::series::{BatchBuilder, Identity};
use proptest::prelude::*;
use std::collections::HashMap;

const S: i64 = 1000;

fn identity() -> Identity {
    Identity::new(vec!["replica".into()], vec![], true)
}

fn settings() -> GroupSettings {
    GroupSettings { name: "g".into(), hold_down: 2, lookback_ms: 300 * S, scrape_interval_ms: 5 * S }
}

fn group() -> Group {
    let mut g = Group::new(settings());
    g.set_replicas(&[
        ReplicaSpec { name: "a".into(), role: Role::Primary, address: "a:9090".into() },
        ReplicaSpec { name: "b".into(), role: Role::Secondary, address: "b:9090".into() },
    ]);
    g
}

/// A batch of `(name, value, ts_seconds)` with the replica label set to `replica`.
fn batch(replica: &str, samples: &[(&str, f64, i64)]) -> Batch {
    let id = identity();
    let mut b = BatchBuilder::new(&id, 0);
    for (name, value, ts) in samples {
        b.sample(name, &[RawLabel { name: "replica", value: replica, escaped: true }], *value, Some(ts * S));
    }
    b.finish()
}

fn ok(g: &mut Group, replica: &str, now_s: i64, samples: &[(&str, f64, i64)]) -> ApplyStats {
    let outcome = Outcome {
        replica: replica.into(),
        started_ms: now_s * S,
        duration_secs: 0.01,
        result: Ok(batch(replica, samples)),
    };
    g.apply(outcome, now_s * S)
}

fn fail(g: &mut Group, replica: &str, now_s: i64) -> ApplyStats {
    let outcome = Outcome {
        replica: replica.into(),
        started_ms: now_s * S,
        duration_secs: 0.01,
        result: Err("connection refused".into()),
    };
    g.apply(outcome, now_s * S)
}

/// What a downstream scrape at `now_s` would see: key → (ts seconds, value).
fn view(g: &mut Group, now_s: i64) -> HashMap<String, (i64, f64)> {
    g.snapshot_entries(now_s * S).into_iter().map(|e| (e.key.to_string(), (e.ts / S, e.value))).collect()
}

fn ts_of(g: &mut Group, now_s: i64, key: &str) -> Option<i64> {
    view(g, now_s).get(key).map(|x| x.0)
}

#[test]
fn healthy_pair_emits_only_the_primary() {
    let mut g = group();
    let mut seen = Vec::new();
    for k in 0..10 {
        let t = k * 5;
        ok(&mut g, "a", t + 1, &[("x", t as f64, t)]);
        seen.push(ts_of(&mut g, t + 1, "x").unwrap());
        ok(&mut g, "b", t + 3, &[("x", (t + 2) as f64, t + 2)]);
        seen.push(ts_of(&mut g, t + 3, "x").unwrap());
    }
    // Only A's timestamps (multiples of 5) are ever emitted, even though B's are newer.
    assert!(seen.iter().all(|t| t % 5 == 0), "{seen:?}");
    assert_eq!(g.status().leader.as_deref(), Some("a"));
    assert_eq!(g.status().failovers, 0);
}

#[test]
fn leader_failure_fails_over_at_once_and_hold_down_delays_the_return() {
    let mut g = group();
    ok(&mut g, "a", 1, &[("x", 0.0, 0)]);
    ok(&mut g, "b", 3, &[("x", 2.0, 2)]);
    ok(&mut g, "a", 6, &[("x", 5.0, 5)]);
    ok(&mut g, "b", 8, &[("x", 7.0, 7)]);
    ok(&mut g, "a", 11, &[("x", 10.0, 10)]);
    ok(&mut g, "b", 13, &[("x", 12.0, 12)]);
    assert_eq!(ts_of(&mut g, 13, "x"), Some(10));
    // A dies: the very next merge takes B's newest sample.
    fail(&mut g, "a", 16);
    assert_eq!(ts_of(&mut g, 16, "x"), Some(12));
    assert_eq!(g.status().leader.as_deref(), Some("b"));
    assert_eq!(g.status().failovers, 1);
    // B's next sample waits until 12 was served for (nine tenths of) an interval: see `paced`.
    ok(&mut g, "b", 18, &[("x", 17.0, 17)]);
    assert_eq!(ts_of(&mut g, 18, "x"), Some(12));
    // A returns: one good scrape is not enough (hold-down 2)...
    ok(&mut g, "a", 21, &[("x", 20.0, 20)]);
    assert_eq!(g.status().leader.as_deref(), Some("b"));
    assert_eq!(ts_of(&mut g, 21, "x"), Some(17));
    ok(&mut g, "b", 23, &[("x", 22.0, 22)]);
    assert_eq!(ts_of(&mut g, 23, "x"), Some(17));
    // ...the second makes it leader again, from its first sample newer than the last emitted.
    ok(&mut g, "a", 26, &[("x", 25.0, 25)]);
    assert_eq!(g.status().leader.as_deref(), Some("a"));
    assert_eq!(ts_of(&mut g, 26, "x"), Some(20));
    ok(&mut g, "b", 28, &[("x", 27.0, 27)]);
    assert_eq!(ts_of(&mut g, 28, "x"), Some(20), "B must not interleave once A leads again");
    ok(&mut g, "a", 31, &[("x", 30.0, 30)]);
    assert_eq!(ts_of(&mut g, 31, "x"), Some(25));
}

/// The failover gap of issue 7: both replicas scrape every 5 s, B 3 s after A, and promfed
/// scrapes both every 5 s, after both. When A dies, B's newest sample is 8 s after A's last;
/// B's sample before it (3 s after A's last) is emitted first, and B's samples follow one
/// behind, so a downstream scraping every 5 s never sees a gap longer than 5 s, nor on the way
/// back to A.
#[test]
fn failover_and_return_emit_the_new_sources_next_sample_without_a_gap() {
    let mut g = group();
    let mut emitted: Vec<i64> = Vec::new();
    let mut seen = |g: &mut Group, now: i64| {
        let ts = ts_of(g, now, "x").unwrap();
        if emitted.last() != Some(&ts) {
            emitted.push(ts);
        }
    };
    for k in 0..12 {
        let now = 5 * k + 4;
        let (a, b) = (5 * k, 5 * k + 3);
        ok(&mut g, "b", now, &[("x", b as f64, b)]);
        seen(&mut g, now);
        if (2..=5).contains(&k) {
            fail(&mut g, "a", now);
        } else {
            ok(&mut g, "a", now, &[("x", a as f64, a)]);
        }
        seen(&mut g, now);
    }
    // B fills in before A's first scrape; A leads; B one behind while A is down; A again, one
    // behind as well (its 55 is due at the next scrape).
    assert_eq!(emitted, vec![3, 5, 8, 13, 18, 23, 28, 33, 35, 40, 45, 50]);
    assert!(emitted.windows(2).all(|w| w[1] - w[0] <= 5), "{emitted:?}");
    assert_eq!(g.status().leader.as_deref(), Some("a"));
}

/// The longest gap a downstream scraping every 5 s at `phase_ms` sees in series x when the
/// replicas sample it every 5 s (B `lag_ms` after A, a sample visible 100 ms after it is
/// taken), promfed scrapes A and B every `every_ms` (B `offset_ms` after A), and A dies at
/// `kill_ms`. Everything in milliseconds; the first 20 s are warm-up.
fn downstream_gap(every_ms: i64, offset_ms: i64, lag_ms: i64, kill_ms: i64, phase_ms: i64) -> i64 {
    let mut g = group();
    let latest = |t: i64, lag: i64| (t - 100 - lag).div_euclid(5000) * 5000 + lag;
    let mut events: Vec<(i64, bool)> = Vec::new(); // (time, is A) promfed scrapes
    let mut t = 0;
    while t < 60_000 {
        events.push((t, true));
        events.push((t + offset_ms, false));
        t += every_ms;
    }
    let mut downstream = (0..12).map(|j| phase_ms + 5000 * j).peekable();
    events.sort_by_key(|e| (e.0, !e.1));
    let mut seen: Vec<i64> = Vec::new();
    for (t, is_a) in events {
        while let Some(d) = downstream.next_if(|&d| d < t) {
            if let Some(e) = g.snapshot_entries(d).into_iter().find(|e| e.key == "x") {
                if d >= 20_000 && seen.last() != Some(&e.ts) {
                    seen.push(e.ts);
                }
            }
        }
        let (replica, lag) = if is_a { ("a", 0) } else { ("b", lag_ms) };
        let result = if is_a && t >= kill_ms {
            Err("connection refused".to_owned())
        } else {
            let ts = latest(t, lag);
            let id = identity();
            let mut b = BatchBuilder::new(&id, 0);
            b.sample("x", &[RawLabel { name: "replica", value: replica, escaped: true }], ts as f64, Some(ts));
            Ok(b.finish())
        };
        g.apply(Outcome { replica: replica.into(), started_ms: t, duration_secs: 0.0, result }, t);
    }
    seen.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(i64::MAX)
}

/// Issue 7's failover goal over every phase: promfed scraping as often as the replicas (5 s)
/// or faster (1 s), whatever the secondary's lag, promfed's offsets, the kill time and the
/// downstream's phase, the downstream never sees a gap longer than one interval.
#[test]
fn failover_gap_stays_within_one_interval_at_every_phase() {
    let mut worst = (0, vec![]);
    for every in [1000, 2500, 5000] {
        for offset in [0, 300, 700].into_iter().filter(|&o| o < every) {
            for lag in [0, 1000, 2500, 3200, 4250, 4900] {
                for kill in [30_000, 31_200, 32_600, 34_100] {
                    for phase in [0, 900, 2100, 3300, 4500] {
                        let gap = downstream_gap(every, offset, lag, kill, phase);
                        if gap > worst.0 {
                            worst = (gap, vec![every, offset, lag, kill, phase]);
                        }
                    }
                }
            }
        }
    }
    assert!(worst.0 <= 5000, "longest gap {} ms at (every, offset, lag, kill, phase) {:?}", worst.0, worst.1);
}

#[test]
fn return_never_goes_back_in_time() {
    let mut g = group();
    ok(&mut g, "a", 1, &[("x", 0.0, 0)]);
    fail(&mut g, "a", 6);
    ok(&mut g, "b", 8, &[("x", 7.0, 7)]);
    ok(&mut g, "b", 13, &[("x", 12.0, 12)]);
    ok(&mut g, "a", 11, &[("x", 10.0, 10)]);
    // A's second good scrape carries a sample older than B's last emitted one: ignored.
    ok(&mut g, "a", 14, &[("x", 11.0, 11)]);
    assert_eq!(g.status().leader.as_deref(), Some("a"));
    assert_eq!(ts_of(&mut g, 14, "x"), Some(12));
    // 15 once 12 was served for an interval (`paced`).
    ok(&mut g, "a", 18, &[("x", 15.0, 15)]);
    assert_eq!(ts_of(&mut g, 18, "x"), Some(15));
}

#[test]
fn series_missing_from_the_leader_is_filled_from_the_follower() {
    let mut g = group();
    ok(&mut g, "a", 1, &[("x", 0.0, 0), ("y", 0.0, 0)]);
    ok(&mut g, "b", 3, &[("x", 2.0, 2), ("y", 2.0, 2)]);
    // A lost target y only: B's newest y fills in at once...
    let stats = ok(&mut g, "a", 6, &[("x", 5.0, 5)]);
    assert_eq!(stats.filled, 1);
    assert_eq!(view(&mut g, 6)["y"].0, 2, "y is filled from B");
    // ...and is served for an interval before B's next one (`paced`).
    ok(&mut g, "b", 8, &[("x", 7.0, 7), ("y", 7.0, 7)]);
    let v = view(&mut g, 8);
    assert_eq!(v["x"].0, 5, "x stays on A");
    assert_eq!(v["y"].0, 2);
    ok(&mut g, "a", 11, &[("x", 10.0, 10)]);
    assert_eq!(view(&mut g, 11)["y"].0, 7);
    assert_eq!(g.status().failovers, 0, "a fill is not a failover");
}

#[test]
fn leader_sample_that_stopped_advancing_is_filled() {
    let mut g = group();
    for k in 0..4 {
        let t = k * 5;
        ok(&mut g, "a", t + 1, &[("x", t as f64, t)]);
        ok(&mut g, "b", t + 3, &[("x", (t + 2) as f64, t + 2)]);
    }
    // A keeps reporting x at 15 (its target scrape is stuck) while B advances.
    for k in 4..8 {
        let t = k * 5;
        ok(&mut g, "a", t + 1, &[("x", 15.0, 15)]);
        ok(&mut g, "b", t + 3, &[("x", (t + 2) as f64, t + 2)]);
    }
    // Learned interval 5 s: B takes over once it is > 2*5 + 5 s ahead (at B's 32 vs A's 15),
    // from its sample before (27), then one behind: 32 after B's next scrape.
    assert_eq!(ts_of(&mut g, 38, "x"), Some(32));
}

#[test]
fn counter_switch_carries_an_offset_and_a_real_reset_clears_it() {
    let mut g = group();
    ok(&mut g, "a", 11, &[("x_total", 100.0, 10)]);
    ok(&mut g, "b", 13, &[("x_total", 99.5, 12)]);
    fail(&mut g, "a", 16);
    assert_eq!(view(&mut g, 16)["x_total"], (12, 100.0));
    assert_eq!(g.offsets.0.len(), 1, "the offset is kept beside the slab");
    ok(&mut g, "b", 21, &[("x_total", 101.5, 17)]);
    assert_eq!(view(&mut g, 21)["x_total"], (17, 102.0));
    // B's own reset is passed through and clears the offset.
    ok(&mut g, "b", 26, &[("x_total", 3.0, 22)]);
    assert_eq!(view(&mut g, 26)["x_total"], (22, 3.0));
    assert!(g.offsets.0.is_empty(), "and forgotten with the reset");
    ok(&mut g, "b", 31, &[("x_total", 4.0, 27)]);
    assert_eq!(view(&mut g, 31)["x_total"], (27, 4.0));
}

#[test]
fn gauges_switch_without_offset() {
    let mut g = group();
    ok(&mut g, "a", 11, &[("temp", 100.0, 10)]);
    ok(&mut g, "b", 13, &[("temp", 99.5, 12)]);
    fail(&mut g, "a", 16);
    assert_eq!(view(&mut g, 16)["temp"], (12, 99.5));
}

#[test]
fn both_down_keeps_last_samples_until_the_lookback_then_drops_them() {
    let mut g = group();
    ok(&mut g, "a", 20, &[("x", 1.0, 20)]);
    ok(&mut g, "b", 21, &[("x", 1.0, 21)]);
    fail(&mut g, "a", 25);
    fail(&mut g, "b", 26);
    assert!(g.status().down);
    assert_eq!(view(&mut g, 26)["x"], (21, 1.0));
    fail(&mut g, "a", 300);
    assert_eq!(view(&mut g, 300)["x"], (21, 1.0), "unchanged timestamp while within lookback");
    fail(&mut g, "a", 330);
    assert!(view(&mut g, 330).is_empty());
    assert_eq!(g.series_count(), 0, "memory returns");
}

#[test]
fn pin_prefers_the_secondary_and_unpin_restores_the_primary_after_hold_down() {
    let mut g = group();
    ok(&mut g, "a", 1, &[("x", 0.0, 0)]);
    ok(&mut g, "b", 3, &[("x", 2.0, 2)]);
    g.pin("b").unwrap();
    assert_eq!(g.status().leader.as_deref(), Some("b"));
    assert_eq!(g.status().pinned.as_deref(), Some("b"));
    ok(&mut g, "a", 6, &[("x", 5.0, 5)]);
    // b's 2 was emitted at 6 (a's scrape, b leading): 7 waits for it to be served (`paced`).
    ok(&mut g, "b", 8, &[("x", 7.0, 7)]);
    assert_eq!(ts_of(&mut g, 8, "x"), Some(2));
    ok(&mut g, "a", 11, &[("x", 10.0, 10)]);
    assert_eq!(ts_of(&mut g, 11, "x"), Some(7), "while pinned to b, a's samples are not used");
    assert!(matches!(g.pin("zz"), Err(CommandError::NoSuchReplica { .. })));
    g.unpin();
    // a has 3 consecutive good scrapes already: it leads again at once, from its sample
    // after b's last (10, then 15: no gap).
    assert_eq!(g.status().leader.as_deref(), Some("a"));
    ok(&mut g, "a", 16, &[("x", 15.0, 15)]);
    assert_eq!(ts_of(&mut g, 16, "x"), Some(10));
    ok(&mut g, "a", 21, &[("x", 20.0, 20)]);
    assert_eq!(ts_of(&mut g, 21, "x"), Some(15));
}

#[test]
fn pinned_replica_failing_fails_over_and_returns_after_hold_down() {
    let mut g = group();
    ok(&mut g, "a", 1, &[("x", 0.0, 0)]);
    ok(&mut g, "b", 3, &[("x", 2.0, 2)]);
    g.pin("b").unwrap();
    fail(&mut g, "b", 8);
    assert_eq!(g.status().leader.as_deref(), Some("a"));
    ok(&mut g, "b", 13, &[("x", 12.0, 12)]);
    assert_eq!(g.status().leader.as_deref(), Some("a"));
    ok(&mut g, "b", 18, &[("x", 17.0, 17)]);
    assert_eq!(g.status().leader.as_deref(), Some("b"));
}

#[test]
fn duplicates_inside_one_replica_keep_the_newest() {
    let mut g = group();
    // Two series of A collide once `replica` is removed.
    let id = identity();
    let mut b = BatchBuilder::new(&id, 0);
    b.sample("x", &[RawLabel { name: "replica", value: "a", escaped: true }], 1.0, Some(5 * S));
    b.sample("x", &[RawLabel { name: "replica", value: "a2", escaped: true }], 2.0, Some(6 * S));
    b.sample("x", &[RawLabel { name: "replica", value: "a3", escaped: true }], 3.0, Some(4 * S));
    let stats =
        g.apply(Outcome { replica: "a".into(), started_ms: 7 * S, duration_secs: 0.0, result: Ok(b.finish()) }, 7 * S);
    assert_eq!(stats.duplicates, 2);
    assert_eq!(view(&mut g, 7)["x"], (6, 2.0));
}

#[test]
fn follower_only_series_appear_at_once_and_vanish_after_the_lookback() {
    let mut g = group();
    ok(&mut g, "a", 1, &[("x", 0.0, 0)]);
    ok(&mut g, "b", 3, &[("x", 2.0, 2), ("new", 1.0, 2)]);
    assert_eq!(view(&mut g, 3)["new"], (2, 1.0));
    for t in (8..400).step_by(5) {
        ok(&mut g, "a", t, &[("x", t as f64, t)]);
        ok(&mut g, "b", t + 1, &[("x", t as f64, t)]);
    }
    assert!(!view(&mut g, 401).contains_key("new"));
    assert_eq!(g.series_count(), 1);
}

#[test]
fn snapshot_keeps_families_contiguous() {
    let mut g = group();
    let id = identity();
    let mut b = BatchBuilder::new(&id, 0);
    for (name, labels) in [("foo_bar", vec![]), ("foo", vec![("a", "1")]), ("foo", vec![])] {
        let raw: Vec<RawLabel> = labels.iter().map(|(n, v)| RawLabel { name: n, value: v, escaped: true }).collect();
        b.sample(name, &raw, 1.0, Some(S));
    }
    g.apply(Outcome { replica: "a".into(), started_ms: S, duration_secs: 0.0, result: Ok(b.finish()) }, S);
    let keys: Vec<String> = g.snapshot_entries(S).iter().map(|e| e.key.to_string()).collect();
    assert_eq!(keys, vec!["foo", "foo{a=\"1\"}", "foo_bar"]);
}

#[test]
fn two_primaries_are_a_problem_served_from_the_freshest_without_flapping() {
    let mut g = Group::new(settings());
    g.set_replicas(&[
        ReplicaSpec { name: "a".into(), role: Role::Primary, address: "a:1".into() },
        ReplicaSpec { name: "c".into(), role: Role::Primary, address: "c:1".into() },
    ]);
    ok(&mut g, "a", 1, &[("x", 0.0, 0)]);
    ok(&mut g, "c", 3, &[("x", 2.0, 2)]);
    let s = g.status();
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert!(s.problems[0].contains("2 replicas have role primary (a, c)"), "{:?}", s.problems);
    let first = s.leader.clone().unwrap();
    // Whichever leads keeps leading while healthy, even when the other's data is fresher.
    for t in (5..40).step_by(5) {
        ok(&mut g, "a", t + 1, &[("x", t as f64, t)]);
        ok(&mut g, "c", t + 3, &[("x", (t + 2) as f64, t + 2)]);
        assert_eq!(g.status().leader.as_deref(), Some(first.as_str()));
    }
    // The leader fails: the other primary takes over and is kept.
    fail(&mut g, &first, 41);
    let other = if first == "a" { "c" } else { "a" };
    assert_eq!(g.status().leader.as_deref(), Some(other));
    ok(&mut g, &first, 46, &[("x", 45.0, 45)]);
    ok(&mut g, &first, 51, &[("x", 50.0, 50)]);
    assert_eq!(g.status().leader.as_deref(), Some(other), "no flapping back");
    // Fixed by discovery: one primary, no problem.
    g.set_replicas(&[
        ReplicaSpec { name: "a".into(), role: Role::Primary, address: "a:1".into() },
        ReplicaSpec { name: "c".into(), role: Role::Secondary, address: "c:1".into() },
    ]);
    assert!(g.status().problems.is_empty());
}

/// A third replica's samples live outside the series (`Group::more`): it fills, leads, catches
/// up through its previous sample and keeps its series alive like the first two.
#[test]
fn a_third_replica_fills_leads_and_keeps_its_series() {
    let mut g = Group::new(settings());
    g.set_replicas(&[
        ReplicaSpec { name: "a".into(), role: Role::Primary, address: "a:1".into() },
        ReplicaSpec { name: "b".into(), role: Role::Secondary, address: "b:1".into() },
        ReplicaSpec { name: "c".into(), role: Role::Secondary, address: "c:1".into() },
    ]);
    for k in 0..3 {
        let t = 5 * k;
        ok(&mut g, "a", t + 1, &[("x", t as f64, t)]);
        ok(&mut g, "b", t + 1, &[("x", t as f64, t)]);
        ok(&mut g, "c", t + 4, &[("x", (t + 3) as f64, t + 3), ("only_c", 1.0, t + 3)]);
    }
    assert_eq!(ts_of(&mut g, 14, "x"), Some(10));
    assert_eq!(ts_of(&mut g, 14, "only_c"), Some(13), "filled from the third replica");
    // a and b die: c leads, from its sample after a's last (13), then its next (18).
    ok(&mut g, "c", 19, &[("x", 18.0, 18)]);
    fail(&mut g, "a", 16);
    fail(&mut g, "b", 16);
    assert_eq!(g.status().leader.as_deref(), Some("c"));
    assert_eq!(ts_of(&mut g, 19, "x"), Some(13));
    ok(&mut g, "c", 24, &[("x", 23.0, 23)]);
    assert_eq!(ts_of(&mut g, 24, "x"), Some(18));
    // c stops reporting only_c: it expires after the lookback (300 s), not before.
    ok(&mut g, "c", 200, &[("x", 199.0, 199)]);
    assert_eq!(ts_of(&mut g, 200, "only_c"), Some(13), "within the lookback");
    assert_eq!(g.series_count(), 2);
    ok(&mut g, "c", 320, &[("x", 319.0, 319)]);
    assert_eq!(ts_of(&mut g, 320, "only_c"), None);
    assert_eq!(g.series_count(), 1, "expired");
}

#[test]
fn emitted_samples_are_recorded_once_in_order_and_an_expired_series_ends_with_a_stale_marker() {
    let mut g = group();
    assert!(g.take_emitted().is_none(), "nothing recorded unless asked");
    g.record_emitted(true);
    let mut sent: Vec<(String, i64, f64)> = Vec::new();
    let mut take = |g: &mut Group| {
        if let Some(e) = g.take_emitted() {
            for entry in &e.entries {
                sent.push((e.key(entry).to_string(), entry.ts, entry.value));
            }
        }
    };
    ok(&mut g, "a", 20, &[("x", 1.0, 20), ("y", 5.0, 20)]);
    take(&mut g);
    ok(&mut g, "b", 21, &[("x", 1.0, 20), ("y", 5.0, 20)]);
    take(&mut g);
    ok(&mut g, "a", 25, &[("x", 2.0, 25), ("y", 6.0, 25)]);
    take(&mut g);
    // The primary fails: the secondary's newer sample is emitted, once.
    fail(&mut g, "a", 30);
    take(&mut g);
    ok(&mut g, "b", 31, &[("x", 3.0, 30)]);
    take(&mut g);
    ok(&mut g, "b", 36, &[("x", 3.0, 30)]);
    take(&mut g);
    // y is gone from both: after the lookback it ends with a staleness marker.
    ok(&mut g, "b", 400, &[("x", 4.0, 400)]);
    take(&mut g);
    let plain: Vec<(String, i64, f64)> = sent.iter().filter(|s| !s.2.is_nan()).cloned().collect();
    assert_eq!(
        plain,
        vec![
            ("x".into(), 20 * S, 1.0),
            ("y".into(), 20 * S, 5.0),
            ("x".into(), 25 * S, 2.0),
            ("y".into(), 25 * S, 6.0),
            ("x".into(), 30 * S, 3.0),
            ("x".into(), 400 * S, 4.0),
        ]
    );
    let stale: Vec<&(String, i64, f64)> = sent.iter().filter(|s| s.2.is_nan()).collect();
    assert_eq!(stale.len(), 1);
    assert_eq!((stale[0].0.as_str(), stale[0].1), ("y", 400 * S));
    assert_eq!(stale[0].2.to_bits(), STALE_NAN_BITS);
    g.record_emitted(false);
    ok(&mut g, "b", 405, &[("x", 5.0, 405)]);
    assert!(g.take_emitted().is_none());
}

#[test]
fn stale_markers_are_not_samples() {
    let mut g = group();
    ok(&mut g, "a", 1, &[("x", 1.0, 0)]);
    let stats = ok(&mut g, "a", 6, &[("x", f64::from_bits(STALE_NAN_BITS), 5)]);
    assert_eq!(stats.stale_markers, 1);
    assert_eq!(view(&mut g, 6)["x"], (0, 1.0));
}

#[test]
fn replica_removed_by_discovery_stops_counting() {
    let mut g = group();
    ok(&mut g, "a", 1, &[("x", 0.0, 0)]);
    ok(&mut g, "b", 3, &[("x", 2.0, 2)]);
    g.set_replicas(&[
        ReplicaSpec { name: "b".into(), role: Role::Secondary, address: "b:9090".into() },
        ReplicaSpec { name: "c".into(), role: Role::Primary, address: "c:9090".into() },
    ]);
    // a is gone; b is healthy and leads until the new primary c has scraped, from its sample
    // after a's last.
    ok(&mut g, "b", 8, &[("x", 7.0, 7)]);
    assert_eq!(ts_of(&mut g, 8, "x"), Some(2));
    assert_eq!(g.status().replicas.len(), 2);
    ok(&mut g, "a", 9, &[("x", 8.0, 8)]);
    assert_eq!(ts_of(&mut g, 9, "x"), Some(2), "outcomes of a removed replica are ignored");
    ok(&mut g, "b", 13, &[("x", 12.0, 12)]);
    assert_eq!(ts_of(&mut g, 13, "x"), Some(7));
}

// ---- properties -------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Step {
    /// Replica scrapes fine; `lose` drops series by index from its body.
    Good {
        replica: usize,
        lose: Vec<usize>,
    },
    Fail {
        replica: usize,
    },
    Pin {
        replica: usize,
    },
    Unpin,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..2usize, proptest::collection::vec(0..4usize, 0..2)).prop_map(|(replica, lose)| Step::Good { replica, lose }),
        2 => (0..2usize).prop_map(|replica| Step::Fail { replica }),
        1 => (0..2usize).prop_map(|replica| Step::Pin { replica }),
        1 => Just(Step::Unpin),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the sequence of scrapes, failures and pins: one copy per series, emitted
    /// timestamps strictly increase, counter values never drop unless a source reset, and the
    /// emitted sample always is one a replica really reported (plus offset for counters).
    #[test]
    fn merge_invariants(steps in proptest::collection::vec(step(), 1..120), skew in 0i64..5) {
        let names = ["c0_total", "c1_total", "g0", "g1"];
        let mut g = group();
        let mut last: HashMap<String, (i64, f64)> = HashMap::new();
        let mut now = 0i64;
        for st in steps {
            now += 2;
            match st {
                Step::Good { replica, lose } => {
                    let rname = ["a", "b"][replica];
                    // Both replicas see the same monotonic counter (value = 10*ts), at a phase.
                    let ts = now - 1 - if replica == 1 { skew.min(1) } else { 0 };
                    let samples: Vec<(&str, f64, i64)> = names.iter().enumerate()
                        .filter(|(i, _)| !lose.contains(i))
                        .map(|(_, n)| (*n, ts as f64 * 10.0, ts)).collect();
                    ok(&mut g, rname, now, &samples);
                }
                Step::Fail { replica } => { fail(&mut g, ["a", "b"][replica], now); }
                Step::Pin { replica } => { g.pin(["a", "b"][replica]).unwrap(); }
                Step::Unpin => g.unpin(),
            }
            let entries = g.snapshot_entries(now * S);
            prop_assert!(entries.windows(2).all(|w| crate::series::cmp_keys(&w[0].key, &w[1].key).is_lt()), "sorted");
            let mut keys: Vec<&str> = entries.iter().map(|e| &*e.key).collect();
            let n = keys.len();
            keys.dedup();
            prop_assert_eq!(keys.len(), n, "one copy per series, sorted");
            for e in &entries {
                if let Some(&(pts, pv)) = last.get(&*e.key) {
                    prop_assert!(e.ts >= pts, "time went back for {}", e.key);
                    if e.ts == pts {
                        prop_assert_eq!(e.value, pv, "same timestamp, different value");
                    }
                    if e.key.ends_with("_total") {
                        prop_assert!(e.value >= pv, "counter {} dropped {} -> {}", e.key, pv, e.value);
                    }
                }
                last.insert(e.key.to_string(), (e.ts, e.value));
            }
        }
    }
}

/// Series come and go (pods): the arena's garbage is compacted away, and every snapshot, taken
/// before or after a compaction, still shows the right keys.
#[test]
fn churning_series_compact_the_arena_and_snapshots_stay_right() {
    let mut g = Group::new(GroupSettings { lookback_ms: 10 * S, ..settings() });
    g.set_replicas(&[ReplicaSpec { name: "a".into(), role: Role::Primary, address: "a:9090".into() }]);
    let pod = |k: i64| format!("pod-{k}-with-a-long-enough-name-to-make-garbage");
    let id = identity();
    let mut kept = Vec::new();
    let mut removed_bytes = 0;
    for k in 0..400i64 {
        let mut b = BatchBuilder::new(&id, 0);
        for (name, value) in [("up", pod(k)), ("stable", "x".to_owned())] {
            let labels = [RawLabel { name: "pod", value: &value, escaped: false }];
            b.sample(name, &labels, k as f64, Some(k * S));
        }
        let outcome = Outcome { replica: "a".into(), started_ms: k * S, duration_secs: 0.0, result: Ok(b.finish()) };
        g.apply(outcome, k * S);
        let snap = g.snapshot(k * S);
        if k % 50 == 0 {
            kept.push((k, snap));
        }
        let keys: Vec<String> = g.snapshot_entries(k * S).into_iter().map(|e| e.key).collect();
        // 11 pods within the lookback, and the stable series.
        assert_eq!(keys.len(), 12.min(k as usize + 2), "{k}: {keys:?}");
        assert!(keys.contains(&format!("up{{pod=\"{}\"}}", pod(k))), "{k}: {keys:?}");
        assert!(keys.contains(&"stable{pod=\"x\"}".to_owned()));
        if k > 10 {
            removed_bytes += pod(k - 11).len() + 1;
        }
    }
    let (live, garbage) = g.arena.usage();
    assert!(
        garbage < removed_bytes as u64 / 2,
        "compacted: {live} live, {garbage} of {removed_bytes} removed bytes left"
    );
    for (k, snap) in kept {
        let keys: Vec<String> = snap.served().map(|e| e.key.to_string()).collect();
        assert!(keys.contains(&format!("up{{pod=\"{}\"}}", pod(k))), "{k}: {keys:?}");
    }
}

#[test]
fn slab_and_snapshot_entries_stay_small() {
    // 1M series fit in 250 MB with these sizes (docs/benchmarks.md, issues 2 and 7): the
    // values in the group's arena; per replica of a pair, the latest sample and the one before
    // it (the failover catch-up).
    assert_eq!(std::mem::size_of::<Series>(), 104);
    assert_eq!(std::mem::size_of::<SnapEntry>(), 32);
}
