use super::*;

const S: i64 = 1000;

fn every(from: i64, to: i64, step: i64, value: impl Fn(i64) -> f64) -> Vec<(i64, f64)> {
    (0..).map(|i| from + i * step).take_while(|&t| t <= to).map(|t| (t * S, value(t))).collect()
}

fn times(s: &[(i64, f64)]) -> Vec<i64> {
    s.iter().map(|x| x.0 / S).collect()
}

#[test]
fn shared_timestamps_give_exactly_the_union() {
    // A misses 20..=40 (down), B misses 60..=70 (lost the target); same scrape times.
    let a: Vec<_> = every(0, 100, 5, |t| t as f64).into_iter().filter(|s| !(20 * S..=40 * S).contains(&s.0)).collect();
    let b: Vec<_> = every(0, 100, 5, |t| t as f64).into_iter().filter(|s| !(60 * S..=70 * S).contains(&s.0)).collect();
    let merged = merge_series(&[a, b], false);
    assert_eq!(merged, every(0, 100, 5, |t| t as f64));
}

#[test]
fn phase_shifted_replicas_never_double_the_rate() {
    // A at 0,5,10,…; B at 2,7,12,…: both healthy → only A.
    let a = every(0, 100, 5, |_| 1.0);
    let b = every(2, 102, 5, |_| 2.0);
    let merged = merge_series(&[a.clone(), b.clone()], false);
    assert_eq!(merged, a);
    // A down 15..=30: B fills where it keeps 0.9 interval from A's samples on both sides.
    let a_gap: Vec<_> = a.iter().copied().filter(|s| !(15 * S..=30 * S).contains(&s.0)).collect();
    let merged = merge_series(&[a_gap, b], false);
    assert_eq!(times(&merged)[..8], [0, 5, 10, 17, 22, 27, 35, 40]);
    let spacing: Vec<i64> = merged.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(spacing.iter().all(|&d| d >= 4500), "{spacing:?}");
    assert!(spacing.iter().all(|&d| d <= 2 * 5 * S), "no gap over two intervals: {spacing:?}");
}

#[test]
fn a_series_only_the_secondary_has_is_taken_whole() {
    let b = every(3, 60, 5, |t| t as f64);
    assert_eq!(merge_series(&[vec![], b.clone()], false), b);
}

#[test]
fn counters_do_not_reset_at_a_change_of_replica() {
    // A counts 100 + t; B's copy is 10 behind (it missed increments before a restart); A down 20..=30.
    let a: Vec<_> =
        every(0, 50, 5, |t| 100.0 + t as f64).into_iter().filter(|s| !(20 * S..=30 * S).contains(&s.0)).collect();
    let b = every(0, 50, 5, |t| 90.0 + t as f64);
    let merged = merge_series(&[a, b], true);
    let values: Vec<f64> = merged.iter().map(|s| s.1).collect();
    assert!(values.windows(2).all(|w| w[1] >= w[0]), "never decreasing: {values:?}");
    assert_eq!(values[4], 115.0, "at the switch to B (110 raw at 20) the offset keeps it at 115: {values:?}");
    assert_eq!(values[6], 125.0, "B's 120 at 30 plus the offset");
    assert_eq!(values[7], 135.0, "back to A, ahead again: no offset");
    // A real reset inside one source passes through.
    let a = vec![(0, 10.0), (5 * S, 20.0), (10 * S, 1.0), (15 * S, 2.0)];
    assert_eq!(merge_series(&[a.clone(), vec![]], true), a);
    // Not a counter: no offset.
    let a = vec![(0, 10.0), (5 * S, 10.0)];
    let b = vec![(10 * S, 5.0)];
    assert_eq!(merge_series(&[a, b], false)[2], (10 * S, 5.0));
}

#[test]
fn staleness_markers_end_the_history_only_when_no_replica_goes_on() {
    let stale = f64::from_bits(crate::merge::STALE_NAN_BITS);
    // A lost the target at 20 (marker), B still has it: no marker, B fills.
    let mut a = every(0, 15, 5, |_| 1.0);
    a.push((20 * S, stale));
    let b = every(0, 50, 5, |_| 1.0);
    let merged = merge_series(&[a.clone(), b], false);
    assert!(merged.iter().all(|s| !is_stale_marker(s.1)), "{merged:?}");
    assert_eq!(times(&merged), (0..=50).step_by(5).collect::<Vec<_>>());
    // Both lost it: A's marker ends it.
    let mut b = every(0, 15, 5, |_| 1.0);
    b.push((20 * S, stale));
    let merged = merge_series(&[a, b], false);
    assert_eq!(times(&merged), [0, 5, 10, 15, 20]);
    assert!(is_stale_marker(merged[4].1));
}

#[test]
fn replicas_are_merged_by_identity() {
    let identity = Identity::new(vec!["replica".into()], vec![("federation_group".into(), "eu".into())], true);
    let labels = |replica: &str, instance: &str| {
        vec![
            ("__name__".to_owned(), "up".to_owned()),
            ("instance".to_owned(), instance.to_owned()),
            ("replica".to_owned(), replica.to_owned()),
        ]
    };
    let series = vec![
        ReplicaSeries { rank: 1, labels: labels("b", "x:1"), samples: every(0, 20, 5, |_| 2.0) },
        ReplicaSeries { rank: 0, labels: labels("a", "x:1"), samples: every(0, 10, 5, |_| 1.0) },
        ReplicaSeries { rank: 1, labels: labels("b", "y:1"), samples: every(0, 5, 5, |_| 3.0) },
    ];
    let merged = merge_group(&identity, series);
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[0].key, r#"up{federation_group="eu",instance="x:1"}"#);
    assert_eq!(merged[0].samples.iter().map(|s| s.1).collect::<Vec<_>>(), [1.0, 1.0, 1.0, 2.0, 2.0]);
    assert_eq!(merged[1].key, r#"up{federation_group="eu",instance="y:1"}"#);
}

#[test]
fn the_preferred_replica_alone_is_taken_only_where_the_full_merge_gives_it() {
    let stale = f64::from_bits(crate::merge::STALE_NAN_BITS);
    let a = every(0, 100, 5, |t| t as f64);
    let without = |s: &[(i64, f64)], from: i64, to: i64| -> Vec<(i64, f64)> {
        s.iter().copied().filter(|x| !(from * S..=to * S).contains(&x.0)).collect()
    };
    let mut a_marker = every(0, 50, 5, |t| t as f64);
    a_marker.push((55 * S, stale));
    let mut b_marker = every(0, 100, 5, |t| t as f64);
    b_marker[10].1 = stale;
    // (case, primary, secondary, whether the primary alone is the merge)
    let cases: Vec<(&str, Samples, Samples, bool)> = vec![
        ("same grid, both whole", a.clone(), a.clone(), true),
        ("phase-shifted, both whole", a.clone(), every(2, 102, 5, |t| t as f64), true),
        ("secondary misses a window", a.clone(), without(&a, 20, 40), true),
        ("secondary has a marker", a.clone(), b_marker, true),
        ("primary misses one scrape", without(&a, 45, 45), a.clone(), false),
        ("primary down, phase-shifted secondary", without(&a, 20, 40), every(2, 102, 5, |t| t as f64), false),
        ("secondary starts earlier", every(30, 100, 5, |t| t as f64), a.clone(), false),
        ("secondary goes on later", every(0, 60, 5, |t| t as f64), a.clone(), false),
        ("primary has a marker", a_marker, a.clone(), false),
        ("primary out of order", vec![(0, 1.0), (10 * S, 2.0), (5 * S, 3.0)], vec![], false),
    ];
    for (case, primary, secondary, alone) in cases {
        let replicas = [primary, secondary];
        let interval = typical_interval(&replicas);
        assert_eq!(preferred_alone(&replicas, interval - interval / 10), alone, "{case}");
        for counter in [false, true] {
            assert_eq!(merge_series(&replicas, counter), merge_full(&replicas, counter, interval), "{case}");
        }
    }
}
