//! The remote-write sender: every sample the merge emits goes, once, to each `remote_write`
//! destination, through that destination's durable queue.
//!
//! Data path of one destination (one task, [`Destination::run`], plus its shards):
//! 1. the store hands over each merge's emitted samples ([`Emitted`]);
//! 2. they are relabeled (`write_relabel_configs`), encoded as Remote-Write `TimeSeries`
//!    ([`super::encode`]), snappy-compressed in records of about [`RECORD_BYTES`], and appended
//!    to the on-disk [`Queue`] — from here a crash or an outage loses nothing;
//! 3. records are read back in order, as far ahead as `capacity` samples per shard allow, and
//!    their series spread over the shards by a hash of their labels, so a series always goes
//!    through the same shard and its samples arrive in timestamp order;
//! 4. a shard sends up to `max_samples_per_send` samples per request (or what it has after
//!    `batch_send_deadline`), one request at a time, and retries 5xx, 429 and connection
//!    errors with exponential backoff and jitter, honouring `Retry-After`; other statuses drop
//!    the request's samples, counted by status;
//! 5. a record is committed in the queue once every part of it is acked, in order; the
//!    committed position is persisted every second and at shutdown (which also deletes the
//!    segments wholly sent).
//!
//! Delivery is at least once: after a crash the records sent but not yet committed (at most
//! about a second's worth) are sent again. Receivers take an identical sample twice without
//! complaint (Prometheus and Mimir ignore it; VictoriaMetrics keeps both unless deduplication is
//! on). The number of shards follows the load between `min_shards` and `max_shards`, as
//! Prometheus computes it: the time one sample takes to send times the samples to send.

use super::encode::{self, put_series};
use super::metadata::Families;
use super::queue::{Dropped, Position, Queue, QueueError, QueueSettings};
use crate::client::{ClientError, auth_header, client_tls};
use crate::config::RemoteWrite;
use crate::key::KeyRef;
use crate::merge::Emitted;
use crate::relabel::{Labels, relabel};
use crate::telemetry::{FloatGauge, Metrics, RemoteLabels, RemoteReasonLabels};
use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Uncompressed size at which a record is closed and appended to the queue.
pub const RECORD_BYTES: usize = 1 << 20;

/// Emitted batches waiting for the destination task; the store waits when it is full.
const INPUT_BATCHES: usize = 64;

/// How long a stopping destination goes on sending what is queued; the rest is sent at the
/// next start.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How often the shard count is reconsidered (Prometheus' `shardUpdateDuration`).
const RESHARD_EVERY: Duration = Duration::from_secs(10);

/// At start, the newest this many bytes of the queue are read to remember each series' last
/// queued timestamp: the first merge after a restart re-emits every series' latest sample, which
/// the previous run queued already.
const WATERMARK_SCAN_BYTES: u64 = 64 << 20;

/// How long that memory is kept (the first merges of every group after the start).
const WATERMARK_TTL: Duration = Duration::from_secs(600);

/// Longest `Retry-After` honoured; beyond it the backoff applies.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// A destination could not start.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("remote_write {name}: {source}")]
    Queue {
        name: String,
        #[source]
        source: QueueError,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("remote_write {name}: invalid header {header}")]
    Header { name: String, header: String },
}

/// A destination's metric handles (the families' children, cloned once).
#[derive(Clone)]
pub(crate) struct DestMetrics {
    samples_in: Counter,
    samples: Counter,
    samples_retried: Counter,
    samples_pending: Gauge,
    highest_in: FloatGauge,
    highest_sent: FloatGauge,
    shards: Gauge,
    shards_desired: Gauge,
    bytes: Counter,
    duration: Histogram,
    queue_bytes: Gauge,
    corrupt_records: Counter,
    metrics: Arc<Metrics>,
    labels: RemoteLabels,
}

impl DestMetrics {
    fn new(metrics: Arc<Metrics>, name: &str, url: &str, rw: &RemoteWrite) -> Self {
        let labels = RemoteLabels { remote_name: name.to_owned(), url: url.to_owned() };
        let shared = metrics.clone();
        let r = &shared.remote_storage;
        r.shards_min.get_or_create(&labels).set(rw.min_shards as i64);
        r.shards_max.get_or_create(&labels).set(rw.max_shards as i64);
        r.queue_max_bytes.get_or_create(&labels).set(i64::try_from(rw.queue_max_bytes).unwrap_or(i64::MAX));
        DestMetrics {
            samples_in: r.samples_in.get_or_create(&labels).clone(),
            samples: r.samples.get_or_create(&labels).clone(),
            samples_retried: r.samples_retried.get_or_create(&labels).clone(),
            samples_pending: r.samples_pending.get_or_create(&labels).clone(),
            highest_in: r.highest_timestamp_in_seconds.get_or_create(&labels).clone(),
            highest_sent: r.queue_highest_sent_timestamp_seconds.get_or_create(&labels).clone(),
            shards: r.shards.get_or_create(&labels).clone(),
            shards_desired: r.shards_desired.get_or_create(&labels).clone(),
            bytes: r.bytes.get_or_create(&labels).clone(),
            duration: r.sent_batch_duration_seconds.get_or_create(&labels).clone(),
            queue_bytes: r.queue_bytes.get_or_create(&labels).clone(),
            corrupt_records: r.queue_corrupt_records.get_or_create(&labels).clone(),
            labels,
            metrics,
        }
    }

    fn failed(&self, reason: &str, n: u64) {
        let l = self.reason(reason);
        self.metrics.remote_storage.samples_failed.get_or_create(&l).inc_by(n);
    }

    fn dropped(&self, reason: &str, n: u64) {
        if n > 0 {
            let l = self.reason(reason);
            self.metrics.remote_storage.samples_dropped.get_or_create(&l).inc_by(n);
        }
    }

    fn reason(&self, reason: &str) -> RemoteReasonLabels {
        RemoteReasonLabels {
            remote_name: self.labels.remote_name.clone(),
            url: self.labels.url.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// What a shard sends and how (shared by every shard of a destination).
struct Link {
    name: String,
    url: String,
    client: reqwest::Client,
    headers: HeaderMap,
    max_samples_per_send: usize,
    batch_send_deadline: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    retry_on_http_429: bool,
    /// `queue_config.sample_age_limit`: samples older are not sent.
    sample_age_limit: Option<Duration>,
    metrics: DestMetrics,
    /// Nanoseconds spent in successful requests, and their samples: the cost of one sample.
    send_nanos: AtomicU64,
    sent_samples: AtomicU64,
    /// Set while requests are failing: no resharding then (more shards would not help).
    failing: AtomicBool,
}

/// Part of one record for one shard: whole encoded `TimeSeries` fields.
struct Part {
    record: u64,
    bytes: Vec<u8>,
    samples: u32,
    max_ts: i64,
}

/// A shard is done with a part: sent (accepted or refused for good).
struct Ack {
    record: u64,
    samples: u32,
    accepted: bool,
    max_ts: i64,
}

/// A record read from the queue and not yet fully acked.
struct Outstanding {
    id: u64,
    parts_left: u32,
    end: Position,
}

/// One destination: its queue, its shards and the accounting between them.
pub struct Destination {
    link: Arc<Link>,
    relabel: Vec<crate::relabel::Rule>,
    queue: Queue,
    input: mpsc::Receiver<Arc<Emitted>>,
    control: mpsc::Receiver<RemoteWrite>,
    /// Acks of records before this one come from shards stopped by a reconfiguration: their
    /// records are read again, so they only count as sent.
    first_live_record: u64,
    acks_tx: mpsc::UnboundedSender<Ack>,
    acks: mpsc::UnboundedReceiver<Ack>,
    shards: Vec<mpsc::UnboundedSender<Part>>,
    shard_tasks: JoinSet<()>,
    shard_stop: CancellationToken,
    capacity: usize,
    min_shards: usize,
    max_shards: usize,
    /// Shards to run once the current ones are drained (resharding).
    reshard_to: Option<usize>,
    outstanding: VecDeque<Outstanding>,
    next_record: u64,
    /// Samples read from the queue and not yet acked.
    in_flight: u64,
    /// Record being built.
    record: Vec<u8>,
    record_samples: u32,
    /// Samples appended since the last reshard decision.
    samples_in_window: u64,
    sent_window: (u64, u64),
    last_reshard: Instant,
    /// Hash of a series' encoded labels → newest timestamp the previous run queued for it;
    /// emptied as series come back, dropped after [`WATERMARK_TTL`].
    watermark: HashMap<u64, i64>,
    started: Instant,
    /// The families sent as metadata (`metadata_config`), and the send under way.
    metadata: Option<Families>,
    metadata_task: Option<tokio::task::JoinHandle<()>>,
}

impl Destination {
    /// Opens the queue of `rw` (recovering what a previous run left) and builds its client.
    /// Returns the destination and the channels to it: emitted samples (from the store) and new
    /// settings (a reload).
    pub fn open(rw: &RemoteWrite, metrics: Arc<Metrics>) -> Result<(Destination, Channels), SendError> {
        let link = Arc::new(build_link(rw, metrics)?);
        let queue = open_queue(rw, &link.metrics)?;
        let watermark = watermark(&queue).map_err(|source| SendError::Queue { name: rw.name.clone(), source })?;
        let (tx, input) = mpsc::channel(INPUT_BATCHES);
        let (control_tx, control) = mpsc::channel(1);
        let (acks_tx, acks) = mpsc::unbounded_channel();
        let mut d = Destination {
            link,
            relabel: rw.relabel.clone(),
            queue,
            input,
            control,
            first_live_record: 0,
            acks_tx,
            acks,
            shards: Vec::new(),
            shard_tasks: JoinSet::new(),
            shard_stop: CancellationToken::new(),
            capacity: rw.capacity,
            min_shards: rw.min_shards,
            max_shards: rw.max_shards,
            reshard_to: None,
            outstanding: VecDeque::new(),
            next_record: 0,
            in_flight: 0,
            record: Vec::with_capacity(RECORD_BYTES + (64 << 10)),
            record_samples: 0,
            samples_in_window: 0,
            sent_window: (0, 0),
            last_reshard: Instant::now(),
            watermark,
            started: Instant::now(),
            metadata: rw.metadata_interval.map(|i| Families::new(i, rw.metadata_max_per_send)),
            metadata_task: None,
        };
        d.start_shards(rw.min_shards);
        d.update_gauges();
        Ok((d, Channels { input: tx, control: control_tx }))
    }

    /// Applies new settings of the same destination (a reload) without losing anything: the
    /// shards stop at once (requests in flight are abandoned: a receiver that is down must not
    /// delay a fix of its URL), the queue is persisted and reopened with the new settings, and
    /// reading resumes from the last accepted position (so the abandoned requests are sent
    /// again).
    fn reconfigure(&mut self, rw: &RemoteWrite) -> Result<(), String> {
        let link = build_link(rw, self.link.metrics.metrics.clone()).map_err(|e| e.to_string())?;
        self.shard_stop.cancel();
        self.shards.clear();
        self.shard_stop = CancellationToken::new();
        self.flush_record().map_err(|e| e.to_string())?;
        self.queue.sync().and_then(|()| self.queue.persist()).map_err(|e| e.to_string())?;
        if link.metrics.labels != self.link.metrics.labels {
            self.link.metrics.metrics.remote_storage.forget(&self.link.metrics.labels);
        }
        self.queue = open_queue(rw, &link.metrics).map_err(|e| e.to_string())?;
        self.outstanding.clear();
        self.in_flight = 0;
        self.first_live_record = self.next_record;
        self.reshard_to = None;
        self.link = Arc::new(link);
        self.relabel = rw.relabel.clone();
        self.capacity = rw.capacity;
        self.min_shards = rw.min_shards;
        self.max_shards = rw.max_shards;
        self.metadata = match (self.metadata.take(), rw.metadata_interval) {
            (Some(mut f), Some(i)) => {
                f.reconfigure(i, rw.metadata_max_per_send);
                Some(f)
            }
            (None, Some(i)) => Some(Families::new(i, rw.metadata_max_per_send)),
            (_, None) => None,
        };
        self.start_shards(rw.min_shards);
        self.update_gauges();
        tracing::info!(remote_name = %rw.name, url = %rw.url, "remote_write destination reconfigured");
        Ok(())
    }

    /// Runs until the store stops (it drops its sender at shutdown, after its last merge), then
    /// sends what is queued for up to [`DRAIN_GRACE`] and persists the queue position.
    pub async fn run(mut self) -> Result<(), String> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let name = self.link.name.clone();
        let result = async {
            loop {
                self.dispatch()?;
                tokio::select! {
                    biased;
                    ack = self.acks.recv() => {
                        if let Some(ack) = ack { self.ack(ack)?; }
                    }
                    batch = self.input.recv() => match batch {
                        Some(batch) => self.enqueue(&batch)?,
                        // The store stopped: promfed is shutting down.
                        None => break,
                    },
                    Some(rw) = self.control.recv() => self.reconfigure(&rw)?,
                    _ = tick.tick() => self.housekeeping()?,
                }
            }
            self.flush_record().map_err(|e| e.to_string())?;
            self.drain().await
        }
        .await;
        // Whatever happened, keep what was acked.
        let persisted = self.queue.sync().and_then(|()| self.queue.persist());
        self.update_gauges();
        self.shard_stop.cancel();
        while self.shard_tasks.join_next().await.is_some() {}
        match result.and(persisted.map_err(|e| e.to_string())) {
            Ok(()) => {
                tracing::debug!(remote_name = %name, "remote_write destination stopped");
                Ok(())
            }
            Err(e) => Err(format!("remote_write {name}: {e}")),
        }
    }

    /// Sends what is queued until the grace period ends; the rest stays queued.
    async fn drain(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + DRAIN_GRACE;
        loop {
            // What is still queued goes out too, as long as the grace period lasts.
            self.dispatch()?;
            if self.in_flight == 0 {
                break;
            }
            tokio::select! {
                ack = self.acks.recv() => match ack {
                    Some(ack) => self.ack(ack).map_err(|e| e.to_string())?,
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::info!(remote_name = %self.link.name, samples = self.in_flight,
                        "remote_write: stopping with samples in flight; they are sent at the next start");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Encodes `batch` into records and appends the full ones to the queue.
    fn enqueue(&mut self, batch: &Emitted) -> Result<(), String> {
        if let Some(f) = &mut self.metadata {
            f.observe(batch);
        }
        let mut labels: Vec<(&str, Cow<'_, str>)> = Vec::new();
        let mut appended = 0u64;
        let mut dropped = 0u64;
        let mut repeated = 0u64;
        let mut highest = i64::MIN;
        if !self.watermark.is_empty() && self.started.elapsed() > WATERMARK_TTL {
            self.watermark = HashMap::new();
        }
        for e in &batch.entries {
            let start = self.record.len();
            wire_labels(batch.key(e), &mut labels);
            let sample = [(e.ts, e.value)];
            if self.relabel.is_empty() {
                put_series(&mut self.record, labels.iter().map(|(n, v)| (*n, v.as_ref())), &sample);
            } else {
                let set: Labels = labels.iter().map(|(n, v)| ((*n).to_owned(), v.to_string())).collect();
                match relabel(&set, &self.relabel) {
                    // BTreeMap iterates sorted by name, as the spec wants.
                    Some(set) if !set.is_empty() => {
                        put_series(&mut self.record, set.iter().map(|(n, v)| (n.as_str(), v.as_str())), &sample);
                    }
                    _ => {
                        dropped += 1;
                        continue;
                    }
                }
            }
            let hash = if self.watermark.is_empty() {
                None
            } else {
                encode::series(&self.record[start..])
                    .next()
                    .and_then(Result::ok)
                    .map(|w| xxhash_rust::xxh3::xxh3_64(w.labels))
            };
            if let Some(hash) = hash
                && let Some(last) = self.watermark.remove(&hash)
                && e.ts <= last
            {
                // Queued by the previous run already.
                self.record.truncate(start);
                repeated += 1;
                continue;
            }
            self.record_samples += 1;
            appended += 1;
            highest = highest.max(e.ts);
            if self.record.len() >= RECORD_BYTES {
                self.flush_record().map_err(|e| e.to_string())?;
            }
        }
        // A batch is one merge: close the record so its samples are sent without waiting for
        // the next merge.
        self.flush_record().map_err(|e| e.to_string())?;
        let m = &self.link.metrics;
        m.samples_in.inc_by(appended);
        m.dropped("relabel", dropped);
        m.dropped("queued_before_restart", repeated);
        if appended > 0 && highest as f64 / 1000.0 > m.highest_in.get() {
            m.highest_in.set(highest as f64 / 1000.0);
        }
        self.samples_in_window += appended;
        Ok(())
    }

    fn flush_record(&mut self) -> Result<(), QueueError> {
        if self.record_samples == 0 {
            return Ok(());
        }
        let compressed = snap::raw::Encoder::new()
            .compress_vec(&self.record)
            .expect("snappy compresses any input below 4 GiB; records are 1 MiB");
        let dropped = self.queue.append(&compressed, self.record_samples)?;
        self.record.clear();
        self.record_samples = 0;
        self.count_dropped(dropped);
        if self.queue.sync_due() {
            self.queue.sync()?;
        }
        Ok(())
    }

    fn count_dropped(&self, dropped: Dropped) {
        if dropped.samples > 0 {
            tracing::warn!(remote_name = %self.link.name, samples = dropped.samples, records = dropped.records,
                "remote_write queue full: oldest unsent samples dropped");
            self.link.metrics.dropped("queue_full", dropped.samples);
        }
    }

    /// Reads records and hands their series to the shards while the read-ahead budget allows.
    fn dispatch(&mut self) -> Result<(), String> {
        if self.reshard_to.is_some() {
            return Ok(());
        }
        let budget = (self.capacity * self.shards.len()) as u64;
        while self.in_flight < budget {
            let Some(rec) = self.queue.read_next().map_err(|e| e.to_string())? else {
                break;
            };
            let skipped = self.queue.skipped_corrupt();
            if skipped > 0 {
                tracing::error!(remote_name = %self.link.name, records = skipped,
                    "remote_write queue: corrupt records skipped (failed checksum)");
                self.link.metrics.corrupt_records.inc_by(skipped);
            }
            let id = self.next_record;
            self.next_record += 1;
            let parts = match snap::raw::Decoder::new().decompress_vec(&rec.payload) {
                Ok(raw) => self.split(id, &raw),
                Err(e) => Err(e.to_string()),
            };
            let parts = parts.unwrap_or_else(|e| {
                // Checksummed on disk, so this is a bug: drop the record rather than stall.
                tracing::error!(remote_name = %self.link.name, error = %e, "remote_write queue: unreadable record dropped");
                self.link.metrics.dropped("corrupt", u64::from(rec.samples));
                Vec::new()
            });
            self.outstanding.push_back(Outstanding { id, parts_left: parts.len() as u32, end: rec.end });
            for (shard, part) in parts {
                self.in_flight += u64::from(part.samples);
                // A shard only stops with the destination.
                let _ = self.shards[shard].send(part);
            }
            self.commit_acked().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The record's series, spread over the shards by label hash, cut at `max_samples_per_send`.
    fn split(&self, id: u64, raw: &[u8]) -> Result<Vec<(usize, Part)>, String> {
        let oldest = oldest_to_send(self.link.sample_age_limit);
        let (parts, too_old) = split_record(raw, self.shards.len(), self.link.max_samples_per_send as u32, oldest)
            .map_err(|e| e.to_string())?;
        self.link.metrics.dropped("too_old", too_old);
        Ok(parts
            .into_iter()
            .map(|p| (p.shard, Part { record: id, bytes: p.bytes, samples: p.samples, max_ts: p.max_ts }))
            .collect())
    }

    fn ack(&mut self, ack: Ack) -> Result<(), String> {
        let live = ack.record >= self.first_live_record;
        if live {
            self.in_flight -= u64::from(ack.samples);
        }
        if ack.accepted {
            let m = &self.link.metrics;
            m.samples.inc_by(u64::from(ack.samples));
            if ack.max_ts as f64 / 1000.0 > m.highest_sent.get() {
                m.highest_sent.set(ack.max_ts as f64 / 1000.0);
            }
        }
        if !live {
            return Ok(());
        }
        if let Some(front) = self.outstanding.front() {
            let i = (ack.record - front.id) as usize;
            if let Some(o) = self.outstanding.get_mut(i) {
                o.parts_left -= 1;
            }
        }
        self.commit_acked().map_err(|e| e.to_string())?;
        if self.in_flight == 0 && self.reshard_to.is_some() {
            self.finish_reshard();
        }
        Ok(())
    }

    /// Commits the records at the head whose parts are all acked.
    fn commit_acked(&mut self) -> Result<(), QueueError> {
        let mut upto = None;
        while self.outstanding.front().is_some_and(|o| o.parts_left == 0) {
            upto = self.outstanding.pop_front().map(|o| o.end);
        }
        match upto {
            Some(p) => self.queue.commit(p),
            None => Ok(()),
        }
    }

    fn housekeeping(&mut self) -> Result<(), String> {
        if self.queue.sync_due() {
            self.queue.sync().map_err(|e| e.to_string())?;
        }
        self.queue.persist().map_err(|e| e.to_string())?;
        if self.last_reshard.elapsed() >= RESHARD_EVERY {
            self.consider_resharding();
        }
        // One metadata send at a time; a slow one delays the next, never the samples.
        if self.metadata_task.as_ref().is_none_or(|t| t.is_finished())
            && let Some((requests, entries)) = self.metadata.as_mut().and_then(|f| f.due(Instant::now()))
        {
            let link = self.link.clone();
            let stop = self.shard_stop.clone();
            self.metadata_task = Some(tokio::spawn(async move {
                tokio::select! {
                    () = send_metadata(&link, requests, entries) => {}
                    () = stop.cancelled() => {}
                }
            }));
        }
        self.update_gauges();
        Ok(())
    }

    fn update_gauges(&self) {
        let stats = self.queue.stats();
        let m = &self.link.metrics;
        m.samples_pending.set((stats.unread_samples + self.in_flight) as i64);
        m.queue_bytes.set(stats.bytes as i64);
        m.shards.set(self.shards.len() as i64);
    }

    /// Prometheus' rule: shards = time per sample × (incoming rate + backlog to catch up),
    /// clamped to [min_shards, max_shards]; changed only beyond a 30 % difference, and not
    /// while requests fail.
    fn consider_resharding(&mut self) {
        let window = self.last_reshard.elapsed().as_secs_f64();
        self.last_reshard = Instant::now();
        let nanos = self.link.send_nanos.load(Ordering::Relaxed);
        let sent = self.link.sent_samples.load(Ordering::Relaxed);
        let (d_nanos, d_sent) = (nanos - self.sent_window.0, sent - self.sent_window.1);
        self.sent_window = (nanos, sent);
        let samples_in = std::mem::take(&mut self.samples_in_window);
        if d_sent == 0 || self.link.failing.load(Ordering::Relaxed) {
            return;
        }
        let per_sample = d_nanos as f64 / 1e9 / d_sent as f64;
        let backlog = (self.queue.stats().unread_samples + self.in_flight) as f64;
        // Catch up on the backlog within a minute.
        let wanted = per_sample * (samples_in as f64 / window + backlog / 60.0);
        let desired = (wanted.ceil() as usize).clamp(self.min_shards, self.max_shards);
        self.link.metrics.shards_desired.set(desired as i64);
        let current = self.shards.len();
        let ratio = desired as f64 / current as f64;
        if desired != current && !(0.7..=1.3).contains(&ratio) {
            tracing::info!(remote_name = %self.link.name, from = current, to = desired, "remote_write resharding");
            self.reshard_to = Some(desired);
            if self.in_flight == 0 {
                self.finish_reshard();
            }
        }
    }

    /// Replaces the shards once none has anything in flight (so per-series order holds).
    fn finish_reshard(&mut self) {
        if let Some(n) = self.reshard_to.take() {
            self.shards.clear();
            self.start_shards(n);
        }
    }

    fn start_shards(&mut self, n: usize) {
        for _ in 0..n {
            let (tx, rx) = mpsc::unbounded_channel();
            self.shards.push(tx);
            self.shard_tasks.spawn(shard(rx, self.link.clone(), self.acks_tx.clone(), self.shard_stop.clone()));
        }
        self.link.metrics.shards.set(n as i64);
    }
}

/// The channels to a running destination.
pub struct Channels {
    /// Emitted samples, from the store.
    pub input: mpsc::Sender<Arc<Emitted>>,
    /// New settings for the same destination (a reload).
    pub control: mpsc::Sender<RemoteWrite>,
}

/// The client, headers and settings the shards of `rw` use.
fn build_link(rw: &RemoteWrite, metrics: Arc<Metrics>) -> Result<Link, SendError> {
    let owner = format!("remote_write {}", rw.name);
    let tls = client_tls(&owner, &rw.tls)?;
    let mut builder = reqwest::Client::builder();
    if !rw.enable_http2 {
        builder = builder.http1_only();
    }
    let redirects =
        if rw.follow_redirects { reqwest::redirect::Policy::limited(10) } else { reqwest::redirect::Policy::none() };
    let client = builder
        .redirect(redirects)
        .use_preconfigured_tls(tls)
        .timeout(rw.timeout)
        .connect_timeout(rw.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(rw.max_shards.min(64))
        .user_agent(concat!("promfed/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| ClientError::Build { owner: owner.clone(), source })?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    headers.insert("x-prometheus-remote-write-version", HeaderValue::from_static("0.1.0"));
    if let Some(a) = auth_header(&owner, &rw.auth)? {
        headers.insert(reqwest::header::AUTHORIZATION, a);
    }
    for (k, v) in &rw.headers {
        let bad = || SendError::Header { name: rw.name.clone(), header: k.clone() };
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad())?;
        headers.insert(name, HeaderValue::from_str(v).map_err(|_| bad())?);
    }
    Ok(Link {
        name: rw.name.clone(),
        url: rw.url.clone(),
        client,
        headers,
        max_samples_per_send: rw.max_samples_per_send,
        batch_send_deadline: rw.batch_send_deadline,
        min_backoff: rw.min_backoff,
        max_backoff: rw.max_backoff,
        retry_on_http_429: rw.retry_on_http_429,
        sample_age_limit: rw.sample_age_limit,
        metrics: DestMetrics::new(metrics, &rw.name, &rw.url, rw),
        send_nanos: AtomicU64::new(0),
        sent_samples: AtomicU64::new(0),
        failing: AtomicBool::new(false),
    })
}

/// Opens (and recovers) the queue of `rw`.
fn open_queue(rw: &RemoteWrite, m: &DestMetrics) -> Result<Queue, SendError> {
    let (queue, recovery) = Queue::open(QueueSettings {
        dir: rw.queue_dir.clone(),
        max_bytes: rw.queue_max_bytes,
        segment_bytes: rw.queue_segment_bytes,
        sync_interval: rw.queue_sync_interval,
    })
    .map_err(|source| SendError::Queue { name: rw.name.clone(), source })?;
    m.corrupt_records.inc_by(recovery.corrupt_records);
    if recovery.pending_samples > 0 || recovery.torn_bytes > 0 || recovery.corrupt_records > 0 {
        tracing::info!(remote_name = %rw.name, pending_samples = recovery.pending_samples,
            pending_records = recovery.pending_records, torn_bytes = recovery.torn_bytes,
            corrupt_records = recovery.corrupt_records, "remote_write queue recovered");
    }
    Ok(queue)
}

/// Each series' newest timestamp in the newest records of `queue` (see [`WATERMARK_SCAN_BYTES`]).
fn watermark(queue: &Queue) -> Result<HashMap<u64, i64>, QueueError> {
    let mut marks: HashMap<u64, i64> = HashMap::new();
    let mut raw = Vec::new();
    queue.scan_newest(WATERMARK_SCAN_BYTES, |payload| {
        raw.clear();
        let Ok(n) = snap::raw::decompress_len(payload) else { return };
        raw.resize(n, 0);
        if snap::raw::Decoder::new().decompress(payload, &mut raw).is_err() {
            return;
        }
        for s in encode::series(&raw).map_while(Result::ok) {
            let mark = marks.entry(xxhash_rust::xxh3::xxh3_64(s.labels)).or_insert(i64::MIN);
            *mark = (*mark).max(s.max_ts);
        }
    })?;
    Ok(marks)
}

/// The labels of `key` as Remote-Write sends them, into `out`: values unescaped, `__name__`
/// among them, sorted by name (the key's labels already are).
pub fn wire_labels<'a>(key: KeyRef<'a>, out: &mut Vec<(&'a str, Cow<'a, str>)>) {
    out.clear();
    out.extend(key.labels().map(|(n, v)| (n, unescape(v))));
    let at = out.partition_point(|(n, _)| *n < "__name__");
    out.insert(at, ("__name__", Cow::Borrowed(key.name())));
}

/// One shard's part of a record: whole encoded `TimeSeries` fields.
#[derive(Debug)]
pub struct ShardPart {
    pub shard: usize,
    pub bytes: Vec<u8>,
    pub samples: u32,
    pub max_ts: i64,
}

/// The oldest timestamp (ms) that may still be sent under `sample_age_limit`.
fn oldest_to_send(limit: Option<Duration>) -> i64 {
    match limit {
        Some(limit) => crate::clock::now_ms().saturating_sub(limit.as_millis() as i64),
        None => i64::MIN,
    }
}

/// The series of an uncompressed record spread over `shards` shards by a hash of their
/// labels (a series always lands on the same shard), each shard's part cut at `max` samples, in
/// record order per shard. A series whose newest sample is older than `oldest` (ms) is left out;
/// the samples left out are returned beside the parts.
pub fn split_record(
    raw: &[u8],
    shards: usize,
    max: u32,
    oldest: i64,
) -> Result<(Vec<ShardPart>, u64), encode::Malformed> {
    let mut open: Vec<Option<ShardPart>> = (0..shards).map(|_| None).collect();
    let mut parts = Vec::new();
    let mut too_old = 0u64;
    for s in encode::series(raw) {
        let s = s?;
        if s.max_ts < oldest {
            too_old += u64::from(s.samples);
            continue;
        }
        let shard = (xxhash_rust::xxh3::xxh3_64(s.labels) % shards as u64) as usize;
        let part =
            open[shard].get_or_insert_with(|| ShardPart { shard, bytes: Vec::new(), samples: 0, max_ts: i64::MIN });
        part.bytes.extend_from_slice(s.field);
        part.samples += s.samples;
        part.max_ts = part.max_ts.max(s.max_ts);
        if part.samples >= max {
            parts.extend(open[shard].take());
        }
    }
    parts.extend(open.into_iter().flatten());
    Ok((parts, too_old))
}

/// Undoes the text-format escaping of a key's label value (`\\`, `\"`, `\n`).
fn unescape(v: &str) -> Cow<'_, str> {
    if !v.contains('\\') {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// A shard: batches parts up to `max_samples_per_send` or `batch_send_deadline`, sends one
/// request at a time, acks every part of it.
async fn shard(
    mut rx: mpsc::UnboundedReceiver<Part>,
    link: Arc<Link>,
    acks: mpsc::UnboundedSender<Ack>,
    stop: CancellationToken,
) {
    let mut body = Vec::new();
    let mut parts: Vec<(u64, u32, i64)> = Vec::new();
    let mut samples = 0usize;
    let mut deadline = None;
    loop {
        let full = samples >= link.max_samples_per_send;
        let due = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        if !body.is_empty() && (full || due) {
            let newest = parts.iter().map(|p| p.2).max().unwrap_or(i64::MIN);
            let accepted = tokio::select! {
                r = send(&link, std::mem::take(&mut body), samples, newest) => r,
                _ = stop.cancelled() => return,
            };
            for (record, n, max_ts) in parts.drain(..) {
                let _ = acks.send(Ack { record, samples: n, accepted, max_ts });
            }
            samples = 0;
            deadline = None;
            continue;
        }
        let part = tokio::select! {
            part = rx.recv() => part,
            _ = async { tokio::time::sleep_until(deadline.expect("set")).await }, if deadline.is_some() => continue,
            _ = stop.cancelled() => return,
        };
        let Some(part) = part else {
            // Resharding closed the channel; nothing is in flight then (body is empty).
            return;
        };
        if body.is_empty() {
            deadline = Some(tokio::time::Instant::now() + link.batch_send_deadline);
        }
        body.extend_from_slice(&part.bytes);
        samples += part.samples as usize;
        parts.push((part.record, part.samples, part.max_ts));
    }
}

/// Sends one request until it is accepted (true) or refused for good (false); retries
/// retryable failures forever (the durable queue holds the rest meanwhile), or, under
/// `sample_age_limit`, until its newest sample (`newest`, ms) is too old to send.
async fn send(link: &Link, raw: Vec<u8>, samples: usize, newest: i64) -> bool {
    let body =
        Bytes::from(snap::raw::Encoder::new().compress_vec(&raw).expect("snappy compresses any input below 4 GiB"));
    let m = &link.metrics;
    let mut backoff = link.min_backoff;
    let mut attempts = 0u32;
    loop {
        let started = Instant::now();
        let result = link.client.post(&link.url).headers(link.headers.clone()).body(body.clone()).send().await;
        let elapsed = started.elapsed();
        m.duration.observe(elapsed.as_secs_f64());
        let (error, retry_after) = match result {
            Ok(resp) if resp.status().is_success() => {
                m.bytes.inc_by(body.len() as u64);
                link.send_nanos.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
                link.sent_samples.fetch_add(samples as u64, Ordering::Relaxed);
                if attempts > 0 {
                    tracing::info!(remote_name = %link.name, attempts, "remote_write: sending again");
                }
                link.failing.store(false, Ordering::Relaxed);
                return true;
            }
            Ok(resp) => {
                let status = resp.status();
                let retry_after = retry_after(resp.headers());
                let retryable = status.is_server_error() || (status.as_u16() == 429 && link.retry_on_http_429);
                let message = body_text(resp).await;
                if !retryable {
                    tracing::error!(remote_name = %link.name, status = status.as_u16(), %message, samples,
                        "remote_write: request refused, its samples are dropped");
                    m.failed(&format!("http_{}", status.as_u16()), samples as u64);
                    return false;
                }
                (format!("HTTP {}: {message}", status.as_u16()), retry_after)
            }
            Err(e) => (error_chain(&e), None),
        };
        link.failing.store(true, Ordering::Relaxed);
        m.samples_retried.inc_by(samples as u64);
        if attempts == 0 {
            tracing::warn!(remote_name = %link.name, url = %link.url, %error, samples, "remote_write: request failed, retrying");
        } else {
            tracing::debug!(remote_name = %link.name, %error, attempts, "remote_write: retry failed");
        }
        attempts += 1;
        let delay = match retry_after {
            Some(d) => d,
            // Full jitter over the upper half: retries of many shards spread out.
            None => backoff / 2 + backoff.mul_f64(fastrand::f64() / 2.0),
        };
        tokio::time::sleep(delay).await;
        backoff = (backoff * 2).min(link.max_backoff);
        if newest < oldest_to_send(link.sample_age_limit) {
            tracing::warn!(remote_name = %link.name, samples, "remote_write: samples older than sample_age_limit, dropped");
            m.dropped("too_old", samples as u64);
            return false;
        }
    }
}

/// Sends metadata requests (uncompressed `WriteRequest`s), each tried up to 3 times with the
/// destination's backoff: metadata is sent again every interval, so it is not queued.
async fn send_metadata(link: &Link, requests: Vec<Vec<u8>>, entries: usize) {
    let r = &link.metrics.metrics.remote_storage;
    let sent = r.metadata.get_or_create(&link.metrics.labels).clone();
    let failed = r.metadata_failed.get_or_create(&link.metrics.labels).clone();
    let per_request = entries.div_ceil(requests.len().max(1)) as u64;
    for raw in requests {
        let body =
            Bytes::from(snap::raw::Encoder::new().compress_vec(&raw).expect("snappy compresses any input below 4 GiB"));
        let mut backoff = link.min_backoff;
        let mut delivered = false;
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(link.max_backoff);
            }
            match link.client.post(&link.url).headers(link.headers.clone()).body(body.clone()).send().await {
                Ok(resp) if resp.status().is_success() => {
                    delivered = true;
                    break;
                }
                Ok(resp) if resp.status().is_client_error() && resp.status().as_u16() != 429 => {
                    tracing::warn!(remote_name = %link.name, status = resp.status().as_u16(), "remote_write: metadata refused");
                    break;
                }
                Ok(resp) => {
                    tracing::debug!(remote_name = %link.name, status = resp.status().as_u16(), "remote_write: metadata send failed")
                }
                Err(e) => {
                    tracing::debug!(remote_name = %link.name, error = %error_chain(&e), "remote_write: metadata send failed")
                }
            }
        }
        if delivered {
            sent.inc_by(per_request)
        } else {
            failed.inc_by(per_request)
        };
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v).ok()?.duration_since(std::time::SystemTime::now()).unwrap_or_default(),
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// The start of an error response's body, for the log.
async fn body_text(resp: reqwest::Response) -> String {
    let bytes = resp.bytes().await.unwrap_or_default();
    let end = bytes.len().min(512);
    String::from_utf8_lossy(&bytes[..end]).trim().to_owned()
}

/// An error and its causes, innermost last ("connection refused" is in there).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_key_values() {
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape(r#"a\"b\\c\nd"#), "a\"b\\c\nd");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("100000"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
