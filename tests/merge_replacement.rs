//! Merge rule 7 (counters carry an offset across a change of source) when discovery replaces a
//! replica: the newcomer may take over the vanished replica's internal slot, and must still count
//! as a different source for the series that replica emitted last.

use promfed::merge::{Group, GroupSettings, Outcome, ReplicaSpec, Role};
use promfed::parse::parse_text;
use promfed::series::{BatchBuilder, Identity};

const S: i64 = 1000;

fn spec(name: &str, role: Role) -> ReplicaSpec {
    ReplicaSpec { name: name.into(), role, address: format!("{name}:9090") }
}

/// A successful scrape of `replica` at `now_s` with this text body.
fn scrape(g: &mut Group, replica: &str, now_s: i64, body: &str) {
    let identity = Identity::new(vec!["replica".into()], vec![], true);
    let mut builder = BatchBuilder::new(&identity, body.len());
    parse_text(body.as_bytes(), &mut builder).expect("body parses");
    let outcome =
        Outcome { replica: replica.into(), started_ms: now_s * S, duration_secs: 0.01, result: Ok(builder.finish()) };
    g.apply(outcome, now_s * S);
}

/// The emitted `(ts seconds, value)` of `jobs_total`.
fn jobs_total(g: &mut Group, now_s: i64) -> Option<(i64, f64)> {
    g.snapshot_entries(now_s * S).into_iter().find(|e| &*e.key == "jobs_total").map(|e| (e.ts / S, e.value))
}

/// a (primary) is the only replica with `jobs_total` (b has not evaluated the rule that records
/// it yet); a's instance is then replaced by c, whose value is lower. b leads, lacks the series,
/// and c's sample fills in: a change of source, so the emitted counter must not drop.
fn replaced_primary(replacement_in_same_refresh: bool) -> Option<(i64, f64)> {
    let settings = GroupSettings { name: "g".into(), hold_down: 2, lookback_ms: 300 * S, scrape_interval_ms: S };
    let mut g = Group::new(settings);
    g.set_replicas(&[spec("a", Role::Primary), spec("b", Role::Secondary)]);
    scrape(&mut g, "a", 10, "jobs_total{replica=\"a\"} 100 10000\nup{replica=\"a\"} 1 10000\n");
    scrape(&mut g, "b", 10, "up{replica=\"b\"} 1 10000\n");
    assert_eq!(jobs_total(&mut g, 10), Some((10, 100.0)));

    if replacement_in_same_refresh {
        // One discovery refresh: a is gone and c is there (c reuses a's slot).
        g.set_replicas(&[spec("b", Role::Secondary), spec("c", Role::Primary)]);
    } else {
        // c appears first, a disappears at the next refresh (c gets a slot of its own).
        g.set_replicas(&[spec("a", Role::Primary), spec("b", Role::Secondary), spec("c", Role::Primary)]);
        g.set_replicas(&[spec("b", Role::Secondary), spec("c", Role::Primary)]);
    }
    scrape(&mut g, "b", 11, "up{replica=\"b\"} 1 11000\n");
    scrape(&mut g, "c", 11, "jobs_total{replica=\"c\"} 40 11000\nup{replica=\"c\"} 1 11000\n");
    jobs_total(&mut g, 11)
}

#[test]
fn a_replacement_with_a_fresh_slot_is_a_change_of_source() {
    assert_eq!(replaced_primary(false), Some((11, 100.0)), "offset carried: 40 + 60");
}

#[test]
fn a_replacement_reusing_the_vanished_replicas_slot_is_a_change_of_source_too() {
    assert_eq!(replaced_primary(true), Some((11, 100.0)), "offset carried: 40 + 60, not a reset to 40");
}
