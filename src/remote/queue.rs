//! The durable on-disk queue of one Remote-Write destination: the sender appends encoded
//! batches (records), a reader takes them in order, and positions are committed once the
//! receiver has accepted them. A receiver outage or a restart (SIGKILL included) loses nothing
//! up to the size cap; past the cap the oldest segments are deleted and what the reader had not
//! read yet is reported as [`Dropped`].
//!
//! Delivery is at-least-once: after a restart everything after the last *persisted* commit is
//! read again, so a batch may be sent twice (receivers deduplicate identical samples).
//!
//! # Format
//! - Segment files `<dir>/<20-digit id>.seg`, ids increasing (also across restarts). A record is
//!   `u32 LE payload length`, `u32 LE CRC32C` (Castagnoli) over the 4 sample-count bytes followed
//!   by the payload, `u32 LE sample count`, the payload. A new segment is started when a record
//!   would take the current one past `segment_bytes`; a record larger than a segment gets one of
//!   its own. Records are at most 64 MiB and half the size cap.
//! - `<dir>/committed`: the committed position as text, `segment offset\n`, parsed strictly and
//!   replaced atomically (temp file, fsync, rename, fsync of the directory). Missing or
//!   unreadable, it means "start at the oldest segment".
//!
//! # Recovery
//! [`Queue::open`] checks every record of every segment. In the last segment, anything after the
//! last good record is a torn write (a crash mid-append) and is truncated. In an older segment a
//! bad record is corruption: the lengths after it cannot be trusted, so the rest of that segment
//! is skipped, and the reader goes on with the next segment. The reader does the same when it
//! meets corruption the scan did not see ([`Queue::skipped_corrupt`]).
//!
//! # Use
//! The API is synchronous `std::fs`: appends and reads are short writes and reads through the
//! page cache, cheap enough to call from the sender's async task. The blocking parts are the
//! fsyncs: [`Queue::sync`] when [`Queue::sync_due`] (or after every append with a zero
//! `sync_interval`), one per segment rotation, and [`Queue::persist`], which the caller runs
//! about every second and at shutdown. Not thread-safe by design: one task owns the queue.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Length, checksum and sample count.
const HEADER: u64 = 12;
/// Largest record (header included): bounds what a corrupt length can make us allocate.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;
const COMMITTED: &str = "committed";
const COMMITTED_TMP: &str = "committed.tmp";

/// Where and how big a queue is.
#[derive(Clone, Debug)]
pub struct QueueSettings {
    /// The queue's own directory, created if missing.
    pub dir: PathBuf,
    /// Size cap of all segments; at least `2 * segment_bytes`.
    pub max_bytes: u64,
    /// Size at which a new segment is started (also the granularity of deletion).
    pub segment_bytes: u64,
    /// How long appended data may stay in the page cache only; `ZERO` fsyncs after every append.
    pub sync_interval: Duration,
}

/// A place in the queue: a segment id and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// One record as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub payload: Vec<u8>,
    pub samples: u32,
    /// Position just after this record: commit it once sent.
    pub end: Position,
}

/// What [`Queue::open`] found.
#[derive(Debug, Default, Clone)]
pub struct Recovery {
    /// Records (and their samples) after the committed position: they will be read again.
    pub pending_records: u64,
    pub pending_samples: u64,
    /// Bytes truncated from the tail of the last segment (a torn write).
    pub torn_bytes: u64,
    /// Corrupt records found in older segments; the rest of each such segment is skipped. Not
    /// counted again by [`Queue::skipped_corrupt`].
    pub corrupt_records: u64,
    /// Segment files found.
    pub segments: usize,
}

/// Unread data deleted by the size cap.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub records: u64,
    pub samples: u64,
}

/// Gauges of a queue.
#[derive(Debug, Default, Clone)]
pub struct QueueStats {
    /// Bytes of all segments on disk.
    pub bytes: u64,
    pub segments: usize,
    /// Records and samples not read yet.
    pub unread_records: u64,
    pub unread_samples: u64,
    /// Samples read but not committed, plus the unread ones.
    pub uncommitted_samples: u64,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A file-system operation failed.
    #[error("queue: cannot {op} {path}")]
    Io {
        /// What was being done ("write", "sync", ...).
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record over the limit (64 MiB and half the size cap) was refused.
    #[error("queue {dir}: record of {size} bytes is over the limit of {limit} bytes")]
    RecordTooLarge { dir: PathBuf, size: u64, limit: u64 },
    /// The settings cannot work.
    #[error("queue {dir}: {reason}")]
    Settings { dir: PathBuf, reason: String },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> QueueError {
    let path = path.to_path_buf();
    move |source| QueueError::Io { op, path, source }
}

/// One segment file as the queue knows it.
#[derive(Debug)]
struct Segment {
    id: u64,
    /// Size on disk: what the cap counts.
    bytes: u64,
    /// End of the readable records: `bytes`, or where open found a corrupt record.
    end: u64,
    /// Records and samples before `end`.
    records: u64,
    samples: u64,
}

/// The read position, with what it has passed in its segment (for [`Dropped`] and stats).
#[derive(Debug, Default)]
struct Reader {
    pos: Position,
    records: u64,
    samples: u64,
    /// Open on `pos.segment`, positioned at `pos.offset`.
    file: Option<BufReader<File>>,
}

/// A durable FIFO of records in segment files. See the module doc.
#[derive(Debug)]
pub struct Queue {
    settings: QueueSettings,
    /// Oldest first; never empty: the last one is the writer's.
    segments: VecDeque<Segment>,
    total_bytes: u64,
    writer: File,
    write_buf: Vec<u8>,
    dirty: bool,
    last_sync: Instant,
    reader: Reader,
    /// Records read and not committed yet: (end, samples).
    in_flight: VecDeque<(Position, u32)>,
    in_flight_samples: u64,
    committed: Option<Position>,
    persisted: Option<Position>,
    skipped: u64,
}

impl Queue {
    /// Opens (or creates) the queue in `settings.dir` and recovers it: truncates a torn tail,
    /// and places the reader at the persisted committed position.
    pub fn open(settings: QueueSettings) -> Result<(Queue, Recovery), QueueError> {
        validate(&settings)?;
        let dir = settings.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let ids = list_segments(&dir)?;
        let committed = read_committed(&dir, !ids.is_empty());
        // Everything before the committed position was sent: the reader starts at the
        // committed segment, or the first one after it if the cap deleted it.
        let start = match committed {
            Some(c) => ids.iter().copied().find(|&id| id >= c.segment),
            None => ids.first().copied(),
        };
        let mut recovery = Recovery { segments: ids.len(), ..Recovery::default() };
        let mut segments = VecDeque::with_capacity(ids.len() + 1);
        let mut reader = Reader::default();
        for (i, &id) in ids.iter().enumerate() {
            let path = segment_path(&dir, id);
            let scan = scan_segment(&path)?;
            if let Some(bad) = scan.bad {
                if i + 1 == ids.len() {
                    let torn = scan.bytes - scan.end;
                    tracing::warn!(path = %path.display(), offset = scan.end, "queue: {bad}; truncating a torn tail of {torn} bytes");
                    truncate(&path, scan.end)?;
                    recovery.torn_bytes = torn;
                } else {
                    tracing::warn!(path = %path.display(), offset = scan.end, "queue: {bad}; skipping the rest of the segment");
                    recovery.corrupt_records += 1;
                }
            }
            if Some(id) == start {
                let offset = committed.filter(|c| c.segment == id).map_or(0, |c| c.offset);
                // The last record boundary at or before the committed offset: re-sending part of
                // a record is better than skipping one if the file and the position disagree.
                let passed = scan.ends.partition_point(|&(end, _)| end <= offset);
                let at = passed.checked_sub(1).map_or(0, |k| scan.ends[k].0);
                if at != offset {
                    tracing::warn!(path = %path.display(), "queue: committed offset {offset} is not a record boundary; reading from {at}");
                }
                let samples = scan.ends[..passed].iter().map(|&(_, s)| u64::from(s)).sum();
                reader =
                    Reader { pos: Position { segment: id, offset: at }, records: passed as u64, samples, file: None };
            }
            let bytes = if i + 1 == ids.len() { scan.end } else { scan.bytes };
            let samples = scan.ends.iter().map(|&(_, s)| u64::from(s)).sum();
            segments.push_back(Segment { id, bytes, end: scan.end, records: scan.ends.len() as u64, samples });
        }
        // A committed position past the end of the last segment means its tail was lost (sent,
        // then not synced before a power cut). Appending there would put new records before the
        // committed offset, where the next restart would skip them: start a new segment.
        let stale = committed.is_some_and(|c| segments.back().is_some_and(|l| l.id == c.segment && c.offset > l.end));
        // No segment at or after the committed position (an empty directory, or segments lost):
        // start a new one too, past the committed segment so that ids keep increasing.
        if start.is_none() || stale {
            let id = ids.last().map_or(0, |l| l + 1).max(committed.map_or(0, |c| c.segment + 1));
            create_segment(&dir, id)?;
            segments.push_back(Segment { id, bytes: 0, end: 0, records: 0, samples: 0 });
            if start.is_none() {
                reader = Reader { pos: Position { segment: id, offset: 0 }, ..Reader::default() };
            }
        }
        let last = segment_path(&dir, segments.back().map_or(0, |s| s.id));
        let writer = OpenOptions::new().append(true).open(&last).map_err(io_err("open", &last))?;
        let mut queue = Queue {
            total_bytes: segments.iter().map(|s| s.bytes).sum(),
            segments,
            settings,
            writer,
            write_buf: Vec::new(),
            dirty: false,
            last_sync: Instant::now(),
            reader,
            in_flight: VecDeque::new(),
            in_flight_samples: 0,
            committed,
            persisted: committed,
            skipped: 0,
        };
        (recovery.pending_records, recovery.pending_samples) = queue.unread();
        // Segments before the committed one are left over from a crash after persist.
        if let Some(c) = committed {
            queue.delete_before(c.segment)?;
        }
        Ok((queue, recovery))
    }

    /// Appends one record; returns the unread data the size cap deleted to make room. With a
    /// zero `sync_interval` the record is on disk when this returns.
    pub fn append(&mut self, payload: &[u8], samples: u32) -> Result<Dropped, QueueError> {
        let size = HEADER + payload.len() as u64;
        let limit = MAX_RECORD_BYTES.min(self.settings.max_bytes / 2);
        if size > limit {
            return Err(QueueError::RecordTooLarge { dir: self.settings.dir.clone(), size, limit });
        }
        let current = self.writer_segment().bytes;
        if current > 0 && current + size > self.settings.segment_bytes {
            self.rotate()?;
        }
        let dropped = self.make_room(size)?;
        let start = self.writer_segment().bytes;

        let sample_bytes = samples.to_le_bytes();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&sample_bytes), payload);
        self.write_buf.clear();
        self.write_buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.write_buf.extend_from_slice(&crc.to_le_bytes());
        self.write_buf.extend_from_slice(&sample_bytes);
        self.write_buf.extend_from_slice(payload);
        // One write per record: a crash leaves at most one torn record, at the tail.
        if let Err(e) = self.writer.write_all(&self.write_buf) {
            // Cut a partial record off (e.g. disk full) so that the next append is not written
            // after garbage; if even that fails, open will truncate it as a torn tail.
            let _ = self.writer.set_len(start);
            return Err(io_err("write", &self.writer_path())(e));
        }
        let segment = self.writer_segment();
        segment.bytes += size;
        segment.end = segment.bytes;
        segment.records += 1;
        segment.samples += u64::from(samples);
        self.total_bytes += size;
        self.dirty = true;
        if self.settings.sync_interval.is_zero() {
            self.sync()?;
        }
        Ok(dropped)
    }

    /// The next unread record, or `None` when the reader has caught up with the writer.
    /// Corrupt data is skipped (to the end of its segment) and counted, never returned.
    pub fn read_next(&mut self) -> Result<Option<Record>, QueueError> {
        loop {
            let Some(index) = self.segments.iter().position(|s| s.id == self.reader.pos.segment) else {
                // Not reachable: every deletion moves the reader to a segment that is kept.
                self.move_reader_to_front();
                continue;
            };
            let (id, end, is_writer) =
                (self.segments[index].id, self.segments[index].end, index + 1 == self.segments.len());
            if self.reader.pos.offset >= end {
                if is_writer {
                    return Ok(None);
                }
                self.reader =
                    Reader { pos: Position { segment: self.segments[index + 1].id, offset: 0 }, ..Reader::default() };
                continue;
            }
            let path = segment_path(&self.settings.dir, id);
            if self.reader.file.is_none() {
                match File::open(&path) {
                    Ok(mut file) => {
                        file.seek(SeekFrom::Start(self.reader.pos.offset)).map_err(io_err("seek", &path))?;
                        self.reader.file = Some(BufReader::new(file));
                    }
                    // Deleted behind our back: the same as a corrupt segment.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        self.skip_rest(index, "segment file missing", &path);
                        continue;
                    }
                    Err(e) => return Err(io_err("open", &path)(e)),
                }
            }
            let Some(file) = self.reader.file.as_mut() else { continue };
            let mut payload = Vec::new();
            match read_record(file, end - self.reader.pos.offset, &mut payload).map_err(io_err("read", &path))? {
                Ok(samples) => {
                    self.reader.pos.offset += HEADER + payload.len() as u64;
                    self.reader.records += 1;
                    self.reader.samples += u64::from(samples);
                    let end = self.reader.pos;
                    self.in_flight.push_back((end, samples));
                    self.in_flight_samples += u64::from(samples);
                    return Ok(Some(Record { payload, samples, end }));
                }
                Err(bad) => self.skip_rest(index, bad.as_str(), &path),
            }
        }
    }

    /// Everything before `upto` was sent: remember it, in memory. [`Queue::persist`] makes it
    /// durable and then deletes the segments wholly before it: deleting them first would break
    /// the promise that a crash re-reads everything after the persisted position (and make
    /// [`Recovery`] counts depend on what happened to be deleted). A position not after the
    /// current one is ignored. Commit a record's `end` only when it and every record before it
    /// were accepted: the position means "everything before here".
    pub fn commit(&mut self, upto: Position) -> Result<(), QueueError> {
        if self.committed.is_some_and(|c| upto <= c) {
            return Ok(());
        }
        self.committed = Some(upto);
        while let Some(&(end, samples)) = self.in_flight.front() {
            if end > upto {
                break;
            }
            self.in_flight.pop_front();
            self.in_flight_samples -= u64::from(samples);
        }
        Ok(())
    }

    /// Writes the committed position durably if it changed since the last call, then deletes
    /// the segments wholly before it.
    pub fn persist(&mut self) -> Result<(), QueueError> {
        let Some(c) = self.committed.filter(|&c| Some(c) != self.persisted) else {
            return Ok(());
        };
        let dir = &self.settings.dir;
        let tmp = dir.join(COMMITTED_TMP);
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(format!("{} {}\n", c.segment, c.offset).as_bytes()).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        let path = dir.join(COMMITTED);
        fs::rename(&tmp, &path).map_err(io_err("rename to", &path))?;
        sync_dir(dir)?;
        self.persisted = Some(c);
        self.delete_before(c.segment)
    }

    /// Fsyncs the writer's segment if anything was appended since the last sync.
    pub fn sync(&mut self) -> Result<(), QueueError> {
        if self.dirty {
            self.writer.sync_data().map_err(io_err("sync", &self.writer_path()))?;
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// True when data was appended and `sync_interval` has passed since the last sync.
    pub fn sync_due(&self) -> bool {
        self.dirty && self.last_sync.elapsed() >= self.settings.sync_interval
    }

    /// Gauges for the sender's metrics: size on disk, what is left to read, what is not committed.
    pub fn stats(&self) -> QueueStats {
        let (unread_records, unread_samples) = self.unread();
        QueueStats {
            bytes: self.total_bytes,
            segments: self.segments.len(),
            unread_records,
            unread_samples,
            uncommitted_samples: self.in_flight_samples + unread_samples,
        }
    }

    /// Corrupt records the reader skipped since the last call.
    pub fn skipped_corrupt(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// Calls `f` with the payload of the newest records on disk, committed or not, newest
    /// segments first, until about `budget` bytes were read (whole segments). What a restarted
    /// sender uses to remember the samples it queued last (so as not to queue them twice).
    /// Corrupt records end their segment's scan, as for the reader.
    pub fn scan_newest(&self, budget: u64, mut f: impl FnMut(&[u8])) -> Result<(), QueueError> {
        let mut read = 0;
        let mut payload = Vec::new();
        for seg in self.segments.iter().rev() {
            if read >= budget {
                break;
            }
            let path = segment_path(&self.settings.dir, seg.id);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("open", &path)(e)),
            };
            let mut reader = BufReader::with_capacity(1 << 16, file);
            let mut at = 0;
            while at < seg.end {
                match read_record(&mut reader, seg.end - at, &mut payload).map_err(io_err("read", &path))? {
                    Ok(_) => {
                        at += HEADER + payload.len() as u64;
                        f(&payload);
                    }
                    Err(_) => break,
                }
            }
            read += at;
        }
        Ok(())
    }

    fn writer_segment(&mut self) -> &mut Segment {
        self.segments.back_mut().expect("the writer's segment is always there")
    }

    fn writer_path(&self) -> PathBuf {
        segment_path(&self.settings.dir, self.segments.back().map_or(0, |s| s.id))
    }

    /// Records and samples after the reader.
    fn unread(&self) -> (u64, u64) {
        let r = &self.reader;
        self.segments.iter().filter(|s| s.id >= r.pos.segment).fold((0, 0), |(records, samples), s| {
            let (read_records, read_samples) = if s.id == r.pos.segment { (r.records, r.samples) } else { (0, 0) };
            (records + s.records.saturating_sub(read_records), samples + s.samples.saturating_sub(read_samples))
        })
    }

    /// Seals the writer's segment (fsynced, so that only the last segment can have a torn tail)
    /// and starts the next one.
    fn rotate(&mut self) -> Result<(), QueueError> {
        self.sync()?;
        let id = self.writer_segment().id + 1;
        self.writer = create_segment(&self.settings.dir, id)?;
        self.segments.push_back(Segment { id, bytes: 0, end: 0, records: 0, samples: 0 });
        Ok(())
    }

    /// Deletes the oldest segments until `size` more bytes fit under the cap. Records already
    /// read are in the caller's hands (they will be sent): only unread ones count as dropped.
    fn make_room(&mut self, size: u64) -> Result<Dropped, QueueError> {
        let mut dropped = Dropped::default();
        while self.total_bytes + size > self.settings.max_bytes && self.segments.len() > 1 {
            let oldest = &self.segments[0];
            if oldest.id >= self.reader.pos.segment {
                let (read_records, read_samples) = if oldest.id == self.reader.pos.segment {
                    (self.reader.records, self.reader.samples)
                } else {
                    (0, 0)
                };
                dropped.records += oldest.records.saturating_sub(read_records);
                dropped.samples += oldest.samples.saturating_sub(read_samples);
            }
            self.delete_oldest()?;
        }
        Ok(dropped)
    }

    /// Deletes the segments before `segment`, but never the reader's (a bogus commit must not
    /// lose unread data) and so never the writer's.
    fn delete_before(&mut self, segment: u64) -> Result<(), QueueError> {
        while self.segments.len() > 1 && self.segments[0].id < segment.min(self.reader.pos.segment) {
            self.delete_oldest()?;
        }
        Ok(())
    }

    fn delete_oldest(&mut self) -> Result<(), QueueError> {
        let id = self.segments[0].id;
        let path = segment_path(&self.settings.dir, id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err("delete", &path)(e)),
            _ => {}
        }
        if let Some(oldest) = self.segments.pop_front() {
            self.total_bytes -= oldest.bytes;
        }
        if id >= self.reader.pos.segment {
            self.move_reader_to_front();
        }
        Ok(())
    }

    fn move_reader_to_front(&mut self) {
        let segment = self.segments.front().map_or(0, |s| s.id);
        self.reader = Reader { pos: Position { segment, offset: 0 }, ..Reader::default() };
    }

    /// Corruption: nothing after it in this segment can be trusted; the reader goes to the end
    /// of the segment (the next one, or later appends to the writer's).
    fn skip_rest(&mut self, index: usize, what: &str, path: &Path) {
        let s = &self.segments[index];
        tracing::warn!(path = %path.display(), offset = self.reader.pos.offset, "queue: {what}; skipping the rest of the segment");
        self.skipped += 1;
        self.reader = Reader {
            pos: Position { segment: s.id, offset: s.end },
            records: s.records,
            samples: s.samples,
            file: None,
        };
    }
}

fn validate(settings: &QueueSettings) -> Result<(), QueueError> {
    let reason = if settings.segment_bytes == 0 {
        "segment_bytes must be positive".to_string()
    } else if settings.max_bytes / 2 < settings.segment_bytes {
        // The writer's segment is never deleted: the cap needs room for at least one more.
        format!("max_bytes {} must be at least twice segment_bytes {}", settings.max_bytes, settings.segment_bytes)
    } else {
        return Ok(());
    };
    Err(QueueError::Settings { dir: settings.dir.clone(), reason })
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// The ids of the segment files in `dir`, sorted; other files are ignored.
fn list_segments(dir: &Path) -> Result<Vec<u64>, QueueError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let entry = entry.map_err(io_err("list directory", dir))?;
        let name = entry.file_name();
        let id = name.to_str().and_then(|n| n.strip_suffix(".seg")).filter(|n| n.len() == 20).and_then(parse_digits);
        ids.extend(id);
    }
    ids.sort_unstable();
    Ok(ids)
}

/// A non-empty string of ASCII digits (`u64::from_str` would also take a `+`).
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Creates an empty segment and makes its directory entry durable.
fn create_segment(dir: &Path, id: u64) -> Result<File, QueueError> {
    let path = segment_path(dir, id);
    let file = OpenOptions::new().append(true).create_new(true).open(&path).map_err(io_err("create", &path))?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("sync directory", dir))
}

fn truncate(path: &Path, len: u64) -> Result<(), QueueError> {
    let file = OpenOptions::new().write(true).open(path).map_err(io_err("open", path))?;
    file.set_len(len).and_then(|()| file.sync_all()).map_err(io_err("truncate", path))
}

/// The persisted committed position; `None` (start at the oldest segment) when missing or bad.
fn read_committed(dir: &Path, has_segments: bool) -> Option<Position> {
    let path = dir.join(COMMITTED);
    match fs::read(&path) {
        Ok(bytes) => {
            let position = std::str::from_utf8(&bytes).ok().and_then(parse_committed);
            if position.is_none() {
                let start = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned();
                tracing::warn!(path = %path.display(), "queue: invalid committed position {start:?}; reading from the oldest segment");
            }
            position
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if has_segments {
                tracing::warn!(path = %path.display(), "queue: no committed position; reading from the oldest segment");
            }
            None
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), "queue: cannot read the committed position ({e}); reading from the oldest segment");
            None
        }
    }
}

/// `segment offset\n`, nothing else.
fn parse_committed(s: &str) -> Option<Position> {
    let (segment, offset) = s.strip_suffix('\n')?.split_once(' ')?;
    Some(Position { segment: parse_digits(segment)?, offset: parse_digits(offset)? })
}

/// What [`scan_segment`] found.
struct Scan {
    /// File size.
    bytes: u64,
    /// End of the last good record.
    end: u64,
    /// End offset and sample count of every good record.
    ends: Vec<(u64, u32)>,
    /// Why the scan stopped before `bytes`.
    bad: Option<Bad>,
}

fn scan_segment(path: &Path) -> Result<Scan, QueueError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let bytes = file.metadata().map_err(io_err("read", path))?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let (mut end, mut ends, mut payload) = (0, Vec::new(), Vec::new());
    let mut bad = None;
    while end < bytes {
        match read_record(&mut reader, bytes - end, &mut payload).map_err(io_err("read", path))? {
            Ok(samples) => {
                end += HEADER + payload.len() as u64;
                ends.push((end, samples));
            }
            Err(b) => {
                bad = Some(b);
                break;
            }
        }
    }
    Ok(Scan { bytes, end, ends, bad })
}

/// Why the bytes where a record should be are not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bad {
    Truncated,
    Length,
    Checksum,
}

impl Bad {
    fn as_str(self) -> &'static str {
        match self {
            Bad::Truncated => "truncated record",
            Bad::Length => "record length past the end of the segment or over the limit",
            Bad::Checksum => "record checksum mismatch",
        }
    }
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads one record of at most `avail` bytes into `payload` and returns its sample count. The
/// length is checked against `avail` before allocating, so a corrupt length cannot make us
/// allocate more than what is on disk (and never more than [`MAX_RECORD_BYTES`]).
fn read_record(r: &mut impl Read, avail: u64, payload: &mut Vec<u8>) -> io::Result<Result<u32, Bad>> {
    let eof_is_truncated =
        |e: io::Error| if e.kind() == io::ErrorKind::UnexpectedEof { Ok(Err(Bad::Truncated)) } else { Err(e) };
    let mut header = [0u8; HEADER as usize];
    if avail < HEADER {
        return Ok(Err(Bad::Truncated));
    }
    if let Err(e) = r.read_exact(&mut header) {
        return eof_is_truncated(e);
    }
    let word = |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (len, crc, samples) = (word(0), word(4), word(8));
    if HEADER + u64::from(len) > avail.min(MAX_RECORD_BYTES) {
        return Ok(Err(Bad::Length));
    }
    payload.clear();
    payload.resize(len as usize, 0);
    if let Err(e) = r.read_exact(payload) {
        return eof_is_truncated(e);
    }
    if crc32c::crc32c_append(crc32c::crc32c(&header[8..]), payload) != crc {
        return Ok(Err(Bad::Checksum));
    }
    Ok(Ok(samples))
}

#[cfg(test)]
mod tests;
