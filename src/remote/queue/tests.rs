use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

/// Records of 12 + 100 bytes: four per segment of 448 bytes.
const REC: u64 = HEADER + 100;
const SEG: u64 = 4 * REC;

fn settings(dir: &Path, segment_bytes: u64, max_bytes: u64) -> QueueSettings {
    QueueSettings { dir: dir.to_path_buf(), max_bytes, segment_bytes, sync_interval: Duration::from_secs(3600) }
}

fn open(s: &QueueSettings) -> (Queue, Recovery) {
    Queue::open(s.clone()).unwrap()
}

/// A payload of `len` (>= 8) bytes that names record `i`.
fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut p = i.to_le_bytes().to_vec();
    p.extend((0..len - 8).map(|k| (i as usize + k) as u8));
    p
}

/// Appends records `range` of 100 bytes with `i + 1` samples each.
fn append_range(q: &mut Queue, range: std::ops::Range<u64>) {
    for i in range {
        assert_eq!(q.append(&payload(i, 100), i as u32 + 1).unwrap(), Dropped::default());
    }
}

/// Reads until caught up; returns the record numbers, checking each payload and sample count.
fn read_ids(q: &mut Queue) -> Vec<u64> {
    let mut ids = Vec::new();
    while let Some(r) = q.read_next().unwrap() {
        let i = u64::from_le_bytes(r.payload[..8].try_into().unwrap());
        assert_eq!(r.payload, payload(i, r.payload.len()));
        assert_eq!(r.samples, i as u32 + 1);
        ids.push(i);
    }
    ids
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

fn last_segment(dir: &Path) -> PathBuf {
    dir.join(segment_files(dir).pop().unwrap())
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

#[test]
fn reads_back_in_order_then_none_until_more_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = open(&settings(dir.path(), 1 << 20, 1 << 30));
    for i in 0..10u64 {
        q.append(&payload(i, 8 + i as usize * 7), i as u32 + 1).unwrap();
    }
    assert_eq!(q.stats().unread_records, 10);
    assert_eq!(q.stats().unread_samples, 55);
    assert_eq!(read_ids(&mut q), (0..10).collect::<Vec<_>>());
    assert!(q.read_next().unwrap().is_none());
    append_range(&mut q, 10..12);
    assert_eq!(read_ids(&mut q), vec![10, 11]);
    let stats = q.stats();
    assert_eq!((stats.unread_records, stats.unread_samples, stats.uncommitted_samples), (0, 0, 55 + 11 + 12));
}

#[test]
fn reopen_without_persist_reads_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), SEG, 1 << 30);
    let (mut q, _) = open(&s);
    append_range(&mut q, 0..6);
    let records: Vec<Record> = std::iter::from_fn(|| q.read_next().unwrap()).collect();
    q.commit(records[5].end).unwrap();
    drop(q);

    let (mut q, recovery) = open(&s);
    assert_eq!((recovery.pending_records, recovery.pending_samples), (6, 21));
    assert_eq!(recovery.segments, 2);
    assert_eq!(read_ids(&mut q), (0..6).collect::<Vec<_>>());
}

#[test]
fn reopen_after_commit_and_persist_returns_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), SEG, 1 << 30);
    let (mut q, _) = open(&s);
    append_range(&mut q, 0..10);
    let records: Vec<Record> = std::iter::from_fn(|| q.read_next().unwrap()).take(6).collect();
    q.commit(records[5].end).unwrap();
    assert_eq!(q.stats().uncommitted_samples, 7 + 8 + 9 + 10);
    q.persist().unwrap();
    assert_eq!(fs::read_to_string(dir.path().join(COMMITTED)).unwrap(), format!("1 {}\n", 2 * REC));
    drop(q);

    let (mut q, recovery) = open(&s);
    assert_eq!((recovery.pending_records, recovery.pending_samples), (4, 7 + 8 + 9 + 10));
    assert_eq!((recovery.torn_bytes, recovery.corrupt_records), (0, 0));
    assert_eq!(read_ids(&mut q), vec![6, 7, 8, 9]);
    // Segment 0 was wholly before the commit: deleted by persist.
    assert_eq!(segment_files(dir.path()).len(), 2);
}

/// Three records in one segment, the file mangled by `mangle`, then reopened.
fn torn_tail_case(mangle: impl FnOnce(&mut Vec<u8>), torn: u64, kept: u64) {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 20, 1 << 30);
    let (mut q, _) = open(&s);
    append_range(&mut q, 0..3);
    drop(q);
    let path = last_segment(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    mangle(&mut bytes);
    fs::write(&path, bytes).unwrap();

    let (mut q, recovery) = open(&s);
    assert_eq!(recovery.torn_bytes, torn);
    assert_eq!(recovery.pending_records, kept);
    assert_eq!(fs::metadata(&path).unwrap().len(), kept * REC);
    assert_eq!(read_ids(&mut q), (0..kept).collect::<Vec<_>>());
    append_range(&mut q, 10..12);
    assert_eq!(read_ids(&mut q), vec![10, 11]);
    drop(q);
    let (mut q, _) = open(&s);
    let mut expected: Vec<u64> = (0..kept).collect();
    expected.extend([10, 11]);
    assert_eq!(read_ids(&mut q), expected);
}

#[test]
fn torn_tail_inside_a_header_is_truncated() {
    torn_tail_case(|b| b.truncate(2 * REC as usize + 5), 5, 2);
}

#[test]
fn torn_tail_after_a_header_only_is_truncated() {
    torn_tail_case(|b| b.truncate(2 * REC as usize + HEADER as usize), HEADER, 2);
}

#[test]
fn torn_tail_in_the_middle_of_a_payload_is_truncated() {
    torn_tail_case(|b| b.truncate(2 * REC as usize + 62), 62, 2);
}

#[test]
fn garbage_after_the_last_record_is_truncated() {
    torn_tail_case(|b| b.extend_from_slice(b"garbage!!"), 9, 3);
}

#[test]
fn zeros_after_the_last_record_are_truncated() {
    // What a file system can leave after a power cut: the size grew, the data did not land.
    torn_tail_case(|b| b.extend_from_slice(&[0; 4096]), 4096, 3);
}

#[test]
fn committed_position_past_a_lost_tail_does_not_hide_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 1 << 20, 1 << 30);
    let (mut q, _) = open(&s);
    append_range(&mut q, 0..4);
    let last = std::iter::from_fn(|| q.read_next().unwrap()).last().unwrap();
    q.commit(last.end).unwrap();
    q.persist().unwrap();
    drop(q);
    // The last two records were sent and committed, then lost (never synced).
    let path = last_segment(dir.path());
    OpenOptions::new().write(true).open(&path).unwrap().set_len(2 * REC).unwrap();

    let (mut q, recovery) = open(&s);
    assert_eq!(recovery.pending_records, 0);
    append_range(&mut q, 10..11);
    drop(q);
    // Crash before reading the new record: it must not sit behind the stale committed offset.
    let (mut q, recovery) = open(&s);
    assert_eq!(recovery.pending_records, 1);
    assert_eq!(read_ids(&mut q), vec![10]);
}

/// Twelve records in three segments of four.
fn three_segments(dir: &Path) -> (QueueSettings, Queue) {
    let s = settings(dir, SEG, 1 << 30);
    let (mut q, _) = open(&s);
    append_range(&mut q, 0..12);
    assert_eq!(segment_files(dir).len(), 3);
    (s, q)
}

#[test]
fn corrupt_payload_in_an_older_segment_is_skipped_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut q) = three_segments(dir.path());
    flip_byte(&dir.path().join(segment_files(dir.path())[0].clone()), (REC + HEADER + 10) as usize);
    let mut expected = vec![0];
    expected.extend(4..12);
    assert_eq!(read_ids(&mut q), expected);
    assert_eq!(q.skipped_corrupt(), 1);
    assert_eq!(q.skipped_corrupt(), 0);
    assert_eq!(q.stats().unread_records, 0);
}

#[test]
fn corrupt_payload_in_an_older_segment_is_found_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (s, q) = three_segments(dir.path());
    drop(q);
    flip_byte(&dir.path().join(segment_files(dir.path())[0].clone()), (REC + HEADER + 10) as usize);
    let (mut q, recovery) = open(&s);
    assert_eq!((recovery.corrupt_records, recovery.torn_bytes), (1, 0));
    assert_eq!(recovery.pending_records, 9);
    let mut expected = vec![0];
    expected.extend(4..12);
    assert_eq!(read_ids(&mut q), expected);
    // Counted once, by open.
    assert_eq!(q.skipped_corrupt(), 0);
    // The corrupt segment is not truncated: it is not the writer's.
    assert_eq!(fs::metadata(dir.path().join(segment_files(dir.path())[0].clone())).unwrap().len(), SEG);
}

#[test]
fn corrupt_length_skips_the_segment_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut q) = three_segments(dir.path());
    let path = dir.path().join(segment_files(dir.path())[0].clone());
    let mut bytes = fs::read(&path).unwrap();
    bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, bytes).unwrap();
    assert_eq!(read_ids(&mut q), (4..12).collect::<Vec<_>>());
    assert_eq!(q.skipped_corrupt(), 1);
}

#[test]
fn corruption_in_the_writers_segment_skips_to_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut q) = three_segments(dir.path());
    append_range(&mut q, 12..14);
    flip_byte(&last_segment(dir.path()), (HEADER + 3) as usize);
    assert_eq!(read_ids(&mut q), (0..12).collect::<Vec<_>>());
    assert_eq!(q.skipped_corrupt(), 1);
    append_range(&mut q, 14..16);
    assert_eq!(read_ids(&mut q), vec![14, 15]);
}

#[test]
fn size_cap_drops_the_oldest_segments_and_counts_only_unread_records() {
    let dir = tempfile::tempdir().unwrap();
    let max = 4 * SEG;
    let (mut q, _) = open(&settings(dir.path(), SEG, max));
    append_range(&mut q, 0..16);
    assert_eq!(q.stats().bytes, max);
    // Two of segment 0 read (not committed: they are still in the caller's hands).
    assert_eq!(q.read_next().unwrap().unwrap().samples, 1);
    assert_eq!(q.read_next().unwrap().unwrap().samples, 2);

    // Record 16 starts segment 4, which deletes segment 0: records 2 and 3 were not read.
    assert_eq!(q.append(&payload(16, 100), 17).unwrap(), Dropped { records: 2, samples: 3 + 4 });
    assert!(q.stats().bytes <= max);
    assert_eq!(segment_files(dir.path())[0], format!("{:020}.seg", 1));
    // The reader moved to the start of segment 1.
    assert_eq!(q.read_next().unwrap().unwrap().samples, 5);

    for i in 17..20 {
        assert_eq!(q.append(&payload(i, 100), i as u32 + 1).unwrap(), Dropped::default());
        assert!(q.stats().bytes <= max);
    }
    // Record 20 deletes segment 1, of which record 4 was read.
    assert_eq!(q.append(&payload(20, 100), 21).unwrap(), Dropped { records: 3, samples: 6 + 7 + 8 });
    assert_eq!(read_ids(&mut q), (8..21).collect::<Vec<_>>());
    let stats = q.stats();
    assert_eq!((stats.unread_records, stats.segments), (0, 4));
}

#[test]
fn size_cap_does_not_count_a_segment_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = open(&settings(dir.path(), SEG, 2 * SEG));
    append_range(&mut q, 0..8);
    assert_eq!(std::iter::from_fn(|| q.read_next().unwrap()).take(4).count(), 4);
    // The reader is at the end of segment 0, which the next segment deletes.
    assert_eq!(q.reader.pos, Position { segment: 0, offset: SEG });
    assert_eq!(q.append(&payload(8, 100), 9).unwrap(), Dropped::default());
    assert_eq!(read_ids(&mut q), (4..9).collect::<Vec<_>>());
}

#[test]
fn a_commit_inside_a_segment_dropped_by_the_cap_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), SEG, 2 * SEG);
    let (mut q, _) = open(&s);
    append_range(&mut q, 0..8);
    let first = q.read_next().unwrap().unwrap();
    // Segment 0 goes (3 unread records dropped) while record 0 is being sent.
    assert_eq!(q.append(&payload(8, 100), 9).unwrap(), Dropped { records: 3, samples: 2 + 3 + 4 });
    q.commit(first.end).unwrap();
    q.persist().unwrap();
    assert_eq!(q.stats().uncommitted_samples, (5..=9).sum::<u64>());
    drop(q);
    let (mut q, recovery) = open(&s);
    assert_eq!(recovery.pending_records, 5);
    assert_eq!(read_ids(&mut q), (4..9).collect::<Vec<_>>());
}

#[test]
fn open_refuses_a_cap_under_two_segments() {
    let dir = tempfile::tempdir().unwrap();
    let err = Queue::open(settings(dir.path(), 1000, 1999)).unwrap_err();
    assert!(matches!(err, QueueError::Settings { .. }), "{err}");
    assert!(err.to_string().contains("max_bytes 1999 must be at least twice segment_bytes 1000"), "{err}");
    assert!(Queue::open(settings(dir.path(), 0, 1000)).is_err());
}

#[test]
fn append_refuses_a_record_over_half_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = open(&settings(dir.path(), 100, 1000));
    let err = q.append(&[0; 489], 1).unwrap_err();
    assert!(matches!(err, QueueError::RecordTooLarge { size: 501, limit: 500, .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
    // Exactly half the cap is accepted, in a segment of its own.
    q.append(&[0; 488], 1).unwrap();
    assert_eq!(q.stats().bytes, 500);
}

#[test]
fn persisting_a_commit_deletes_the_segments_wholly_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut q) = three_segments(dir.path());
    let records: Vec<Record> = std::iter::from_fn(|| q.read_next().unwrap()).take(5).collect();
    q.commit(records[3].end).unwrap();
    q.persist().unwrap();
    // The end of segment 0 is not "wholly before" a position in segment 0.
    assert_eq!(segment_files(dir.path()).len(), 3);
    q.commit(records[4].end).unwrap();
    // Not before the position is durable: a crash now must re-read records 4 and on.
    assert_eq!(segment_files(dir.path()).len(), 3);
    q.persist().unwrap();
    assert_eq!(segment_files(dir.path()), vec![format!("{:020}.seg", 1), format!("{:020}.seg", 2)]);
    assert_eq!(q.stats().bytes, 2 * SEG);
    // An older position changes nothing.
    q.commit(records[0].end).unwrap();
    assert_eq!(q.committed, Some(records[4].end));
    // A position past the reader does not delete what it has not read.
    q.commit(Position { segment: 99, offset: 0 }).unwrap();
    q.persist().unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
}

#[test]
fn segments_rotate_and_ids_keep_increasing_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), SEG, 1 << 30);
    let (mut q, recovery) = open(&s);
    assert_eq!(recovery.segments, 0);
    assert_eq!(segment_files(dir.path()), vec![format!("{:020}.seg", 0)]);
    for i in 0..40 {
        q.append(&payload(i, 20), i as u32 + 1).unwrap();
    }
    // 32-byte records, 14 per 448-byte segment.
    assert_eq!(segment_files(dir.path()).len(), 3);
    let last = std::iter::from_fn(|| q.read_next().unwrap()).last().unwrap();
    q.commit(last.end).unwrap();
    q.persist().unwrap();
    drop(q);

    let (mut q, recovery) = open(&s);
    assert_eq!((recovery.segments, recovery.pending_records), (1, 0));
    // A record larger than a segment gets one of its own.
    q.append(&payload(40, 1000), 41).unwrap();
    q.append(&payload(41, 20), 42).unwrap();
    let names = segment_files(dir.path());
    assert_eq!(names, vec![format!("{:020}.seg", 2), format!("{:020}.seg", 3), format!("{:020}.seg", 4)]);
    assert_eq!(fs::metadata(dir.path().join(&names[1])).unwrap().len(), HEADER + 1000);
    assert_eq!(read_ids(&mut q), vec![40, 41]);
}

#[test]
fn a_bad_committed_file_means_reading_from_the_oldest_segment() {
    for content in ["12 abc\n", "1 2", "+1 2\n", "1  2\n", "1 2\n\n", ""] {
        let dir = tempfile::tempdir().unwrap();
        let (s, mut q) = three_segments(dir.path());
        read_ids(&mut q);
        drop(q);
        fs::write(dir.path().join(COMMITTED), content).unwrap();
        let (mut q, recovery) = open(&s);
        assert_eq!(recovery.pending_records, 12, "{content:?}");
        assert_eq!(read_ids(&mut q), (0..12).collect::<Vec<_>>());
    }
    assert_eq!(parse_committed("7 448\n"), Some(Position { segment: 7, offset: 448 }));
}

#[test]
fn a_zero_sync_interval_syncs_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), SEG, 1 << 30);
    s.sync_interval = Duration::ZERO;
    let (mut q, _) = open(&s);
    q.append(b"x", 1).unwrap();
    assert!(!q.dirty);
    assert!(!q.sync_due());

    let dir = tempfile::tempdir().unwrap();
    let (mut q, _) = open(&settings(dir.path(), SEG, 1 << 30));
    assert!(!q.sync_due());
    q.append(b"x", 1).unwrap();
    assert!(q.dirty);
    assert!(!q.sync_due(), "an hour has not passed");
    // As if the interval had passed, without waiting for it.
    q.settings.sync_interval = Duration::ZERO;
    assert!(q.sync_due());
    q.sync().unwrap();
    assert!(!q.dirty && !q.sync_due());
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        len: usize,
        samples: u32,
    },
    Read,
    /// Commits the end of one of the records read and not committed yet.
    Commit(prop::sample::Index),
    Persist,
    /// Drop without persisting, then reopen: a SIGKILL.
    Crash,
    /// A crash that also loses up to this many bytes of the last segment.
    CrashLosingTail(u64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (8usize..120, 0u32..1000).prop_map(|(len, samples)| Op::Append { len, samples }),
        4 => Just(Op::Read),
        2 => any::<prop::sample::Index>().prop_map(Op::Commit),
        1 => Just(Op::Persist),
        1 => Just(Op::Crash),
        1 => (1u64..300).prop_map(Op::CrashLosingTail),
    ];
    prop::collection::vec(op, 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Against a model: after a crash everything not committed-and-persisted is read again, in
    /// order; within one lifetime no record is returned twice; nothing is returned that was not
    /// appended. A lost tail loses only the newest records.
    #[test]
    fn behaves_like_a_fifo_with_at_least_once_restarts(ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), 256, 1 << 30);
        let (mut q, _) = open(&s);
        // Every record that may still be read: (payload, samples); those before `persisted`
        // are committed and persisted.
        let mut all: Vec<(Vec<u8>, u32)> = Vec::new();
        let (mut persisted, mut committed, mut read) = (0usize, 0usize, 0usize);
        let mut ends: Vec<Position> = Vec::new();
        let mut next_id = 0u64;
        for op in ops {
            match op {
                Op::Append { len, samples } => {
                    let p = payload(next_id, len);
                    next_id += 1;
                    prop_assert_eq!(q.append(&p, samples).unwrap(), Dropped::default());
                    all.push((p, samples));
                }
                Op::Read => {
                    let got = q.read_next().unwrap();
                    if read < all.len() {
                        let r = got.expect("a record is unread");
                        prop_assert_eq!((&r.payload, r.samples), (&all[read].0, all[read].1));
                        ends.truncate(read);
                        ends.push(r.end);
                        read += 1;
                    } else {
                        prop_assert!(got.is_none());
                    }
                }
                Op::Commit(index) => {
                    if read > committed {
                        let k = committed + 1 + index.index(read - committed);
                        q.commit(ends[k - 1]).unwrap();
                        committed = k;
                    }
                }
                Op::Persist => {
                    q.persist().unwrap();
                    persisted = committed;
                }
                Op::Crash | Op::CrashLosingTail(_) => {
                    drop(q);
                    if let Op::CrashLosingTail(lose) = op {
                        let path = last_segment(dir.path());
                        let len = fs::metadata(&path).unwrap().len();
                        OpenOptions::new().write(true).open(&path).unwrap().set_len(len.saturating_sub(lose)).unwrap();
                    }
                    let recovery;
                    (q, recovery) = open(&s);
                    let expected = (all.len() - persisted) as u64;
                    if matches!(op, Op::Crash) {
                        prop_assert_eq!(recovery.pending_records, expected);
                        let samples: u64 = all[persisted..].iter().map(|&(_, s)| u64::from(s)).sum();
                        prop_assert_eq!(recovery.pending_samples, samples);
                    } else {
                        // The newest records are gone; the reads that follow check the rest.
                        prop_assert!(recovery.pending_records <= expected);
                        all.truncate(all.len() - (expected - recovery.pending_records) as usize);
                    }
                    prop_assert_eq!(recovery.corrupt_records, 0);
                    committed = persisted;
                    read = persisted;
                }
            }
            prop_assert_eq!(q.stats().unread_records, (all.len() - read) as u64);
        }
    }

    /// With a small cap: `Dropped` names exactly the oldest unread records, the reader goes on
    /// with the next one, and the segments never take more than the cap.
    #[test]
    fn the_cap_drops_exactly_the_oldest_unread_records(ops in ops()) {
        let dir = tempfile::tempdir().unwrap();
        let max = 1000;
        let (mut q, _) = open(&settings(dir.path(), 250, max));
        let mut unread: VecDeque<(Vec<u8>, u32)> = VecDeque::new();
        let mut in_flight: VecDeque<(Position, u32)> = VecDeque::new();
        let mut next_id = 0u64;
        for op in ops {
            match op {
                Op::Append { len, samples } => {
                    let p = payload(next_id, len);
                    next_id += 1;
                    let dropped = q.append(&p, samples).unwrap();
                    prop_assert!(dropped.records as usize <= unread.len());
                    let gone: Vec<_> = unread.drain(..dropped.records as usize).collect();
                    prop_assert_eq!(gone.len() as u64, dropped.records);
                    prop_assert_eq!(gone.iter().map(|&(_, s)| u64::from(s)).sum::<u64>(), dropped.samples);
                    unread.push_back((p, samples));
                    prop_assert!(q.stats().bytes <= max);
                }
                Op::Read => match (q.read_next().unwrap(), unread.pop_front()) {
                    (Some(r), Some((p, samples))) => {
                        prop_assert_eq!((&r.payload, r.samples), (&p, samples));
                        in_flight.push_back((r.end, samples));
                    }
                    (got, want) => prop_assert!(got.is_none() && want.is_none()),
                },
                Op::Commit(index) => {
                    if !in_flight.is_empty() {
                        let k = index.index(in_flight.len());
                        q.commit(in_flight[k].0).unwrap();
                        in_flight.drain(..=k);
                    }
                }
                Op::Persist | Op::Crash | Op::CrashLosingTail(_) => q.persist().unwrap(),
            }
            let stats = q.stats();
            let unread_samples: u64 = unread.iter().map(|&(_, s)| u64::from(s)).sum();
            prop_assert_eq!((stats.unread_records, stats.unread_samples), (unread.len() as u64, unread_samples));
            let in_flight_samples: u64 = in_flight.iter().map(|&(_, s)| u64::from(s)).sum();
            prop_assert_eq!(stats.uncommitted_samples, unread_samples + in_flight_samples);
        }
    }
}
