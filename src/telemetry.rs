//! promfed's own metrics (served on `/metrics`) and log set-up.
//!
//! Every metric is named `promfed_*` and registered here, in one place, so that dashboards and
//! alerts have one list to follow. Encoding is OpenMetrics text via `prometheus-client`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::AtomicU64;

/// Labels of per-group series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub group: String,
}

/// Labels of per-replica series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplicaLabels {
    pub group: String,
    pub replica: String,
}

/// Labels of a replica's failures: scrapes and remote reads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScrapeErrorLabels {
    pub group: String,
    pub replica: String,
    /// One of the short reasons of `scrape::ScrapeError::reason` (scrapes) or
    /// `query::remote_read::ReadError::reason` (remote reads).
    pub reason: String,
}

/// Labels of discovery series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MechanismLabels {
    /// `static`, `file` or `ec2`.
    pub mechanism: String,
}

/// Labels of served requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub handler: String,
    pub code: String,
}

/// Labels of request targets percent-encoded before hyper read them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    /// `http1` or `h2`.
    pub protocol: String,
}

/// Labels of served `/federate` bodies.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FormatLabels {
    /// `text` or `protobuf`.
    pub format: String,
    /// `gzip` or `identity`.
    pub encoding: String,
}

/// Labels of counts by a short reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Labels of the HA tracker's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster: String,
}

/// Labels of the HA tracker's elected replica.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ElectedLabels {
    pub cluster: String,
    pub replica: String,
}

/// Labels of a remote-write destination's series (Prometheus' names).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemoteLabels {
    pub remote_name: String,
    pub url: String,
}

/// Labels of a remote-write destination's counts by reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RemoteReasonLabels {
    pub remote_name: String,
    pub url: String,
    pub reason: String,
}

pub type FloatGauge = Gauge<f64, AtomicU64>;

/// The prefix of every metric name.
const PREFIX: &str = "promfed";

/// The remote-write sender's metrics: Prometheus' `prometheus_remote_storage_*` names with a
/// `promfed_` prefix, per destination.
pub struct RemoteStorageMetrics {
    pub samples_in: Family<RemoteLabels, Counter>,
    pub samples: Family<RemoteLabels, Counter>,
    pub samples_failed: Family<RemoteReasonLabels, Counter>,
    pub samples_retried: Family<RemoteLabels, Counter>,
    pub samples_dropped: Family<RemoteReasonLabels, Counter>,
    pub samples_pending: Family<RemoteLabels, Gauge>,
    pub highest_timestamp_in_seconds: Family<RemoteLabels, FloatGauge>,
    pub queue_highest_sent_timestamp_seconds: Family<RemoteLabels, FloatGauge>,
    pub shards: Family<RemoteLabels, Gauge>,
    pub shards_min: Family<RemoteLabels, Gauge>,
    pub shards_max: Family<RemoteLabels, Gauge>,
    pub shards_desired: Family<RemoteLabels, Gauge>,
    pub bytes: Family<RemoteLabels, Counter>,
    pub sent_batch_duration_seconds: Family<RemoteLabels, Histogram>,
    pub queue_bytes: Family<RemoteLabels, Gauge>,
    pub queue_max_bytes: Family<RemoteLabels, Gauge>,
    pub queue_corrupt_records: Family<RemoteLabels, Counter>,
    pub metadata: Family<RemoteLabels, Counter>,
    pub metadata_failed: Family<RemoteLabels, Counter>,
}

impl RemoteStorageMetrics {
    /// Removes a destination's series (it was removed, or its URL changed) but its counts by
    /// reason, whose reasons are not known here.
    pub fn forget(&self, l: &RemoteLabels) {
        self.samples_in.remove(l);
        self.samples.remove(l);
        self.samples_retried.remove(l);
        self.samples_pending.remove(l);
        self.highest_timestamp_in_seconds.remove(l);
        self.queue_highest_sent_timestamp_seconds.remove(l);
        self.shards.remove(l);
        self.shards_min.remove(l);
        self.shards_max.remove(l);
        self.shards_desired.remove(l);
        self.bytes.remove(l);
        self.sent_batch_duration_seconds.remove(l);
        self.queue_bytes.remove(l);
        self.queue_max_bytes.remove(l);
        self.queue_corrupt_records.remove(l);
        self.metadata.remove(l);
        self.metadata_failed.remove(l);
    }
}

/// All of promfed's metrics.
pub struct Metrics {
    registry: Registry,
    families: Vec<FamilyInfo>,
    pub replica_up: Family<ReplicaLabels, Gauge>,
    pub scrapes: Family<ReplicaLabels, Counter>,
    pub scrape_errors: Family<ScrapeErrorLabels, Counter>,
    pub remote_reads: Family<ReplicaLabels, Counter>,
    pub remote_read_errors: Family<ScrapeErrorLabels, Counter>,
    pub scrape_duration_seconds: Family<ReplicaLabels, FloatGauge>,
    pub scrape_samples: Family<ReplicaLabels, Gauge>,
    pub scrape_body_bytes: Family<ReplicaLabels, Counter>,
    pub scrape_rejected_samples: Family<ReplicaLabels, Counter>,
    pub group_leader: Family<ReplicaLabels, Gauge>,
    pub group_pinned: Family<ReplicaLabels, Gauge>,
    pub group_failover_active: Family<GroupLabels, Gauge>,
    pub replica_newest_sample_timestamp_seconds: Family<ReplicaLabels, FloatGauge>,
    pub group_up: Family<GroupLabels, Gauge>,
    pub group_failovers: Family<GroupLabels, Counter>,
    pub group_series: Family<GroupLabels, Gauge>,
    pub merge_filled_samples: Family<GroupLabels, Counter>,
    pub merge_emitted_samples: Family<GroupLabels, Counter>,
    pub merge_duplicate_samples: Family<GroupLabels, Counter>,
    pub merge_counter_offsets: Family<GroupLabels, Counter>,
    pub merge_expired_series: Family<GroupLabels, Counter>,
    pub merge_duration_seconds: Histogram,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_duration_seconds: Family<RequestLabels, Histogram>,
    pub federate_bytes: Family<FormatLabels, Counter>,
    pub federate_series: Counter,
    pub tls_reloads: Counter,
    pub tls_reload_failures: Counter,
    pub tls_handshake_failures: Counter,
    pub http_request_targets_encoded: Family<ProtocolLabels, Counter>,
    pub build_info: Family<BuildLabels, Gauge>,
    pub sd_refresh_failures: Family<MechanismLabels, Counter>,
    pub sd_last_success_timestamp_seconds: Family<MechanismLabels, FloatGauge>,
    pub sd_targets: Family<GroupLabels, Gauge>,
    pub sd_rejected_targets: Family<GroupLabels, Gauge>,
    pub config_last_reload_successful: Gauge,
    pub config_last_reload_success_timestamp_seconds: FloatGauge,
    pub remote_write_refused_requests: Family<ReasonLabels, Counter>,
    pub remote_write_samples_received: Counter,
    pub remote_write_samples_dropped: Family<ReasonLabels, Counter>,
    pub ha_elected_replica: Family<ElectedLabels, Gauge>,
    pub ha_failovers: Family<ClusterLabels, Counter>,
    pub remote_storage: RemoteStorageMetrics,
}

/// A registered metric family: its full name (with the `promfed_` prefix, without a counter's
/// `_total`) and type.
#[derive(Clone, Debug)]
pub struct FamilyInfo {
    pub name: String,
    pub metric_type: MetricType,
}

impl FamilyInfo {
    /// The sample names of this family in the text exposition (OpenMetrics suffixes).
    pub fn exposed_names(&self) -> Vec<String> {
        let n = &self.name;
        match self.metric_type {
            MetricType::Counter => vec![format!("{n}_total")],
            MetricType::Histogram => vec![format!("{n}_bucket"), format!("{n}_sum"), format!("{n}_count")],
            MetricType::Info => vec![format!("{n}_info")],
            MetricType::Gauge | MetricType::Unknown => vec![n.clone()],
        }
    }
}

/// Registers metrics and remembers each family's name and type (the registry does not list them).
struct Registrar<'a> {
    registry: &'a mut Registry,
    families: Vec<FamilyInfo>,
}

impl Registrar<'_> {
    fn register(&mut self, name: &str, help: &str, metric: impl Metric) {
        self.families.push(FamilyInfo { name: format!("{PREFIX}_{name}"), metric_type: metric.metric_type() });
        self.registry.register(name, help, metric);
    }
}

/// Labels of `promfed_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub rustversion: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Counters of rewritten request targets, by protocol (cheap clones of shared counters).
#[derive(Debug, Clone, Default)]
pub struct EncodedTargets {
    pub http1: Counter,
    pub h2: Counter,
}

impl Metrics {
    /// The counters the listener increments for each percent-encoded request target.
    pub fn encoded_targets(&self) -> EncodedTargets {
        let counter = |protocol: &str| {
            self.http_request_targets_encoded.get_or_create(&ProtocolLabels { protocol: protocol.to_owned() }).clone()
        };
        EncodedTargets { http1: counter("http1"), h2: counter("h2") }
    }

    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let m = Metrics {
            replica_up: Family::default(),
            scrapes: Family::default(),
            scrape_errors: Family::default(),
            remote_reads: Family::default(),
            remote_read_errors: Family::default(),
            scrape_duration_seconds: Family::default(),
            scrape_samples: Family::default(),
            scrape_body_bytes: Family::default(),
            scrape_rejected_samples: Family::default(),
            group_leader: Family::default(),
            group_pinned: Family::default(),
            group_failover_active: Family::default(),
            replica_newest_sample_timestamp_seconds: Family::default(),
            group_up: Family::default(),
            group_failovers: Family::default(),
            group_series: Family::default(),
            merge_filled_samples: Family::default(),
            merge_emitted_samples: Family::default(),
            merge_duplicate_samples: Family::default(),
            merge_counter_offsets: Family::default(),
            merge_expired_series: Family::default(),
            merge_duration_seconds: duration_histogram(),
            http_requests: Family::default(),
            http_request_duration_seconds: Family::new_with_constructor(duration_histogram),
            federate_bytes: Family::default(),
            federate_series: Counter::default(),
            tls_reloads: Counter::default(),
            tls_reload_failures: Counter::default(),
            tls_handshake_failures: Counter::default(),
            http_request_targets_encoded: Family::default(),
            build_info: Family::default(),
            sd_refresh_failures: Family::default(),
            sd_last_success_timestamp_seconds: Family::default(),
            sd_targets: Family::default(),
            sd_rejected_targets: Family::default(),
            config_last_reload_successful: Gauge::default(),
            config_last_reload_success_timestamp_seconds: FloatGauge::default(),
            remote_write_refused_requests: Family::default(),
            remote_write_samples_received: Counter::default(),
            remote_write_samples_dropped: Family::default(),
            ha_elected_replica: Family::default(),
            ha_failovers: Family::default(),
            remote_storage: RemoteStorageMetrics {
                samples_in: Family::default(),
                samples: Family::default(),
                samples_failed: Family::default(),
                samples_retried: Family::default(),
                samples_dropped: Family::default(),
                samples_pending: Family::default(),
                highest_timestamp_in_seconds: Family::default(),
                queue_highest_sent_timestamp_seconds: Family::default(),
                shards: Family::default(),
                shards_min: Family::default(),
                shards_max: Family::default(),
                shards_desired: Family::default(),
                bytes: Family::default(),
                sent_batch_duration_seconds: Family::new_with_constructor(duration_histogram),
                queue_bytes: Family::default(),
                queue_max_bytes: Family::default(),
                queue_corrupt_records: Family::default(),
                metadata: Family::default(),
                metadata_failed: Family::default(),
            },
            registry: Registry::default(),
            families: Vec::new(),
        };
        let mut registrar = Registrar { registry: &mut registry, families: Vec::new() };
        let r = &mut registrar;
        r.register("replica_up", "1 when the replica's last scrape succeeded", m.replica_up.clone());
        r.register("scrapes", "Scrapes of a replica's /federate", m.scrapes.clone());
        r.register("scrape_errors", "Failed scrapes of a replica, by reason", m.scrape_errors.clone());
        r.register("remote_reads", "Remote reads of a replica's history for the query API", m.remote_reads.clone());
        r.register(
            "remote_read_errors",
            "Failed remote reads of a replica for the query API, by reason (`no_answer`: not within the read timeout)",
            m.remote_read_errors.clone(),
        );
        r.register(
            "scrape_duration_seconds",
            "Duration of the replica's last scrape, fetch and parse",
            m.scrape_duration_seconds.clone(),
        );
        r.register("scrape_samples", "Samples in the replica's last good scrape", m.scrape_samples.clone());
        r.register(
            "scrape_body_bytes",
            "Bytes received from a replica (after decompression)",
            m.scrape_body_bytes.clone(),
        );
        r.register(
            "scrape_rejected_samples",
            "Samples dropped from a scrape because their label set was invalid (e.g. a repeated label)",
            m.scrape_rejected_samples.clone(),
        );
        r.register("group_leader", "1 for the replica currently leading its group", m.group_leader.clone());
        r.register("group_pinned", "1 for a replica pinned as leader by an operator", m.group_pinned.clone());
        r.register(
            "group_failover_active",
            "1 while the group's leader is not its preferred replica (the pinned one, else the primary): a failover has not been undone yet",
            m.group_failover_active.clone(),
        );
        r.register(
            "replica_newest_sample_timestamp_seconds",
            "Newest sample timestamp in the replica's last good scrape (how fresh its data is)",
            m.replica_newest_sample_timestamp_seconds.clone(),
        );
        r.register("group_up", "1 when at least one replica of the group is healthy", m.group_up.clone());
        r.register("group_failovers", "Leader changes caused by a failed leader scrape", m.group_failovers.clone());
        r.register("group_series", "Series held for the group", m.group_series.clone());
        r.register(
            "merge_filled_samples",
            "Samples taken from a follower while the leader was healthy (series missing or stale on the leader)",
            m.merge_filled_samples.clone(),
        );
        r.register("merge_emitted_samples", "New samples emitted by the merge", m.merge_emitted_samples.clone());
        r.register(
            "merge_duplicate_samples",
            "Samples repeated inside one replica's scrape once replica labels are removed",
            m.merge_duplicate_samples.clone(),
        );
        r.register(
            "merge_counter_offsets",
            "Counter source switches that needed an offset to avoid a false reset",
            m.merge_counter_offsets.clone(),
        );
        r.register("merge_expired_series", "Series dropped after the lookback", m.merge_expired_series.clone());
        r.register(
            "merge_duration_seconds",
            "Time to apply one scrape to the merged view",
            m.merge_duration_seconds.clone(),
        );
        r.register("http_requests", "HTTP requests served, by handler and status code", m.http_requests.clone());
        r.register(
            "http_request_duration_seconds",
            "Latency of HTTP requests served",
            m.http_request_duration_seconds.clone(),
        );
        r.register("federate_bytes", "Bytes of /federate bodies served", m.federate_bytes.clone());
        r.register("federate_series", "Series lines served on /federate", m.federate_series.clone());
        r.register("tls_reloads", "Successful reloads of the server certificate", m.tls_reloads.clone());
        r.register("tls_reload_failures", "Failed reloads of the server certificate", m.tls_reload_failures.clone());
        r.register(
            "tls_handshake_failures",
            "TLS handshakes with clients that failed (bad certificate, timeout, protocol)",
            m.tls_handshake_failures.clone(),
        );
        r.register(
            "http_request_targets_encoded",
            "Requests whose target was sent with bytes that must be percent-encoded (a \", <, >, space, #) and was encoded before routing",
            m.http_request_targets_encoded.clone(),
        );
        r.register(
            "build_info",
            "1, labelled with promfed's version, revision, branch and compiler (as prometheus_build_info)",
            m.build_info.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "1 when the last configuration reload succeeded",
            m.config_last_reload_successful.clone(),
        );
        r.register(
            "config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration reload",
            m.config_last_reload_success_timestamp_seconds.clone(),
        );
        r.register("sd_refresh_failures", "Failed discovery refreshes", m.sd_refresh_failures.clone());
        r.register(
            "sd_last_success_timestamp_seconds",
            "Time of the last successful discovery refresh",
            m.sd_last_success_timestamp_seconds.clone(),
        );
        r.register("sd_targets", "Replicas discovered for the group", m.sd_targets.clone());
        r.register(
            "sd_rejected_targets",
            "Discovered targets that could not become replicas (no valid role, duplicate name, no address)",
            m.sd_rejected_targets.clone(),
        );
        r.register(
            "remote_write_refused_requests",
            "Remote-write requests refused (400/413/415), by reason; nothing of them was stored",
            m.remote_write_refused_requests.clone(),
        );
        r.register(
            "remote_write_samples_received",
            "Samples in remote-write requests that were decoded and validated",
            m.remote_write_samples_received.clone(),
        );
        r.register(
            "remote_write_samples_dropped",
            "Received samples not taken, by reason (not_elected, too_old, stale_marker, native_histogram_series, exemplar, too_many_clusters)",
            m.remote_write_samples_dropped.clone(),
        );
        r.register(
            "ha_elected_replica",
            "1 for the replica the HA tracker takes a cluster's pushes from",
            m.ha_elected_replica.clone(),
        );
        r.register("ha_failovers", "Changes of a cluster's elected replica", m.ha_failovers.clone());
        let rs = &m.remote_storage;
        r.register(
            "remote_storage_samples_in",
            "Merged samples queued for the destination (after write_relabel_configs)",
            rs.samples_in.clone(),
        );
        r.register("remote_storage_samples", "Samples the destination accepted", rs.samples.clone());
        r.register(
            "remote_storage_samples_failed",
            "Samples the destination refused with a non-retryable status (e.g. 400), dropped, by reason",
            rs.samples_failed.clone(),
        );
        r.register(
            "remote_storage_samples_retried",
            "Samples sent again after a retryable failure (5xx, 429, connection)",
            rs.samples_retried.clone(),
        );
        r.register(
            "remote_storage_samples_dropped",
            "Samples dropped before being sent, by reason (relabel, queue_full, corrupt, too_old)",
            rs.samples_dropped.clone(),
        );
        r.register(
            "remote_storage_metadata",
            "Metric metadata entries (a family's type) the destination accepted (metadata_config)",
            rs.metadata.clone(),
        );
        r.register(
            "remote_storage_metadata_failed",
            "Metric metadata entries not delivered (refused, or still failing after 3 attempts)",
            rs.metadata_failed.clone(),
        );
        r.register(
            "remote_storage_samples_pending",
            "Samples queued (on disk or in memory) and not yet accepted by the destination",
            rs.samples_pending.clone(),
        );
        r.register(
            "remote_storage_highest_timestamp_in_seconds",
            "Newest sample timestamp queued for the destination",
            rs.highest_timestamp_in_seconds.clone(),
        );
        r.register(
            "remote_storage_queue_highest_sent_timestamp_seconds",
            "Newest sample timestamp the destination accepted",
            rs.queue_highest_sent_timestamp_seconds.clone(),
        );
        r.register("remote_storage_shards", "Shards sending in parallel", rs.shards.clone());
        r.register("remote_storage_shards_min", "queue_config.min_shards", rs.shards_min.clone());
        r.register("remote_storage_shards_max", "queue_config.max_shards", rs.shards_max.clone());
        r.register(
            "remote_storage_shards_desired",
            "Shards the sender computes it needs to keep up",
            rs.shards_desired.clone(),
        );
        r.register("remote_storage_bytes", "Request body bytes sent (compressed)", rs.bytes.clone());
        r.register(
            "remote_storage_sent_batch_duration_seconds",
            "Duration of one request to the destination",
            rs.sent_batch_duration_seconds.clone(),
        );
        r.register(
            "remote_storage_queue_bytes",
            "Disk used by the destination's durable queue",
            rs.queue_bytes.clone(),
        );
        r.register(
            "remote_storage_queue_max_bytes",
            "durable_queue.max_size: beyond it the oldest unsent samples are dropped",
            rs.queue_max_bytes.clone(),
        );
        r.register(
            "remote_storage_queue_corrupt_records",
            "Records of the durable queue that failed their checksum and were skipped (their samples are lost)",
            rs.queue_corrupt_records.clone(),
        );
        let families = registrar.families;
        let b = &crate::build::BUILD;
        let labels = BuildLabels {
            version: b.version.to_owned(),
            revision: b.revision.to_owned(),
            branch: b.branch.to_owned(),
            rustversion: b.rust_version.to_owned(),
        };
        m.build_info.get_or_create(&labels).set(1);
        Metrics { registry, families, ..m }
    }

    /// Every registered family, also those without a series yet (the text encoding leaves a
    /// family without children out, `# HELP` and `# TYPE` included): the list dashboards and
    /// alert rules are checked against.
    pub fn families(&self) -> &[FamilyInfo] {
        &self.families
    }

    /// The names of every series the registered families can expose, as they appear on the
    /// wire and in PromQL: a counter `x` as `x_total`, a histogram as `x_bucket`, `x_sum` and
    /// `x_count`.
    pub fn exposed_names(&self) -> Vec<String> {
        self.families.iter().flat_map(FamilyInfo::exposed_names).collect()
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts `n` received samples dropped for `reason`.
    pub fn drop_samples(&self, reason: &str, n: u64) {
        if n > 0 {
            self.remote_write_samples_dropped.get_or_create(&ReasonLabels { reason: reason.to_owned() }).inc_by(n);
        }
    }

    /// Removes the per-group series of a group that a reload (or its template) removed;
    /// per-replica counters stay, as they do for a replica that discovery no longer lists.
    pub fn forget_group(&self, group: &str) {
        let l = GroupLabels { group: group.to_owned() };
        self.group_up.remove(&l);
        self.group_failover_active.remove(&l);
        self.group_series.remove(&l);
        self.group_failovers.remove(&l);
        self.merge_filled_samples.remove(&l);
        self.merge_emitted_samples.remove(&l);
        self.merge_duplicate_samples.remove(&l);
        self.merge_counter_offsets.remove(&l);
        self.merge_expired_series.remove(&l);
        self.sd_targets.remove(&l);
        self.sd_rejected_targets.remove(&l);
    }

    /// Removes the per-replica series of a replica that discovery no longer lists.
    pub fn forget_replica(&self, group: &str, replica: &str) {
        let l = ReplicaLabels { group: group.to_owned(), replica: replica.to_owned() };
        self.replica_up.remove(&l);
        self.scrape_duration_seconds.remove(&l);
        self.scrape_samples.remove(&l);
        self.group_leader.remove(&l);
        self.group_pinned.remove(&l);
        self.replica_newest_sample_timestamp_seconds.remove(&l);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts the log subscriber on stderr: `filter` (RUST_LOG syntax; `RUST_LOG` itself wins when
/// set), in logfmt (Prometheus' default: `ts=… level=info message="…" group=eu`) or one JSON object
/// per line. Never coloured: a journal, a file or a pipe gets lines `grep 'group=eu'` finds.
pub fn init_logging(filter: &str, json: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_target(false)
                    .with_ansi(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_logfmt::builder().with_target(false).with_span_name(false).layer().with_writer(std::io::stderr),
            )
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list of families is what `/metrics` prints once every family has a series.
    #[test]
    fn families_match_the_encoded_types() {
        let m = Metrics::new();
        let names = m.exposed_names();
        for want in [
            "promfed_scrapes_total",
            "promfed_group_failover_active",
            "promfed_merge_duration_seconds_bucket",
            "promfed_http_request_duration_seconds_count",
            "promfed_remote_storage_queue_max_bytes",
            "promfed_config_last_reload_successful",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n == "promfed_scrapes"), "a counter is exposed with _total");
        // Families with a series print `# TYPE`: each is listed with that type.
        m.scrapes.get_or_create(&ReplicaLabels { group: "g".into(), replica: "a".into() }).inc();
        m.config_last_reload_successful.set(1);
        let text = m.encode();
        let typed: Vec<(&str, &str)> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' ')).collect();
        assert!(typed.len() >= 4, "{text}");
        for (name, kind) in typed {
            let f = m.families().iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} not listed"));
            assert_eq!(f.metric_type.as_str(), kind, "{name}");
        }
    }
}
