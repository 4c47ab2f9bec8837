//! The configuration file as written: serde structs, every field documented, unknown keys
//! rejected. Defaults live in functions here; [`super::validate`] turns this into the checked
//! [`super::Config`].
//!
//! Shapes and names follow Prometheus where Prometheus has them (`scrape_interval`,
//! `tls_config`, `basic_auth`, `authorization`, `honor_labels`, `body_size_limit`, the web
//! config's `tls_server_config`), so that a Prometheus operator reads this file without a guide.

use super::discovery::{Ec2SdConfig, FileSdConfig};
pub use super::http::{Authorization, BasicAuth, TlsConfig};
use super::target::Role;
use super::units::{ByteSize, PromDuration};
use crate::relabel::RelabelConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The whole file.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Defaults for every group.
    #[serde(default)]
    pub global: GlobalConfig,
    /// Where and how promfed serves the merged view.
    #[serde(default)]
    pub server: ServerConfig,
    /// The HA groups to federate.
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// Accept Prometheus Remote-Write pushes on `POST /api/v1/write` (absent: not served).
    #[serde(default)]
    pub remote_write_receiver: Option<ReceiverConfig>,
    /// Send every new merged sample to remote storage (Prometheus' `remote_write`), each
    /// destination through its own durable queue under `data_dir`.
    #[serde(default)]
    pub remote_write: Vec<RemoteWriteConfig>,
    /// Where promfed keeps state that must survive a restart: the remote-write queues
    /// (`remote_write/<name>/`) and the leader pins (`pins.json`).
    /// Relative paths are relative to the working directory, as Prometheus' `--storage.tsdb.path`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// blackbox_exporter-compatible probes: `GET /probe` and scheduled probes (absent: not served).
    #[serde(default)]
    pub probes: Option<super::probes::ProbesConfig>,
    /// Keep Grafana's dashboards in sync with a directory, every `interval`, inside `promfed
    /// sidecar` (absent: no sync). `promfed serve` checks this section but does not run it.
    #[serde(default)]
    pub dashboards: Option<super::dashboards::DashboardsConfig>,
    /// The Prometheus query API (`/api/v1/query`, `query_range`, `series`, `labels`, …) over
    /// the groups' merged history: Grafana's datasource.
    #[serde(default)]
    pub query: QueryConfig,
}

/// Limits of the query API, with Prometheus' defaults.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Longest a query may run, fetches included (Prometheus' `--query.timeout`); a request's
    /// `timeout` parameter may only shorten it.
    #[serde(default = "default_query_timeout")]
    pub timeout: PromDuration,
    /// Most samples a query may hold at once (Prometheus' `--query.max-samples`).
    #[serde(default = "default_query_max_samples")]
    pub max_samples: u64,
    /// Queries evaluated at once; more wait for a slot (Prometheus' `--query.max-concurrency`).
    #[serde(default = "default_query_concurrency")]
    pub max_concurrency: usize,
    /// Remote reads in flight to one replica (Prometheus serves 10 at once by default:
    /// `--storage.remote.read-concurrent-limit`).
    #[serde(default = "default_remote_read_concurrency")]
    pub remote_read_concurrency: usize,
    /// Bytes of remote-read answers one query may hold.
    #[serde(default = "default_query_bytes")]
    pub max_bytes_per_query: ByteSize,
    /// How far back a selector looks for a sample (default: `global.lookback_delta`).
    #[serde(default)]
    pub lookback_delta: Option<PromDuration>,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: default_query_timeout(),
            max_samples: default_query_max_samples(),
            max_concurrency: default_query_concurrency(),
            remote_read_concurrency: default_remote_read_concurrency(),
            max_bytes_per_query: default_query_bytes(),
            lookback_delta: None,
        }
    }
}

fn default_query_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(120))
}
fn default_query_max_samples() -> u64 {
    50_000_000
}
fn default_query_concurrency() -> usize {
    20
}
fn default_remote_read_concurrency() -> usize {
    10
}
fn default_query_bytes() -> ByteSize {
    ByteSize(1 << 30)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

/// One remote-write destination (Prometheus' `remote_write` entry).
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver's endpoint, e.g. `https://mimir:9009/api/v1/push`.
    pub url: String,
    /// Names the destination in metrics and its queue directory (`<data_dir>/remote_write/<name>`);
    /// default: a hash of `url`, as Prometheus does.
    #[serde(default)]
    pub name: Option<String>,
    /// Timeout of one request.
    #[serde(default = "default_remote_timeout")]
    pub remote_timeout: PromDuration,
    /// Extra HTTP headers sent with every request (not the ones the protocol sets).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Relabeling of every series before it is queued; `drop` / `keep` filter what is sent.
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// TLS to the receiver.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// Basic auth to the receiver.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Authorization header to the receiver.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// Batching, parallelism and retries (Prometheus' names and defaults).
    #[serde(default)]
    pub queue_config: QueueConfig,
    /// The on-disk queue that keeps unsent samples across outages and restarts (promfed's).
    #[serde(default)]
    pub durable_queue: DurableQueueConfig,
    /// Each metric family's type, sent in requests of their own (Prometheus' names and
    /// defaults).
    #[serde(default)]
    pub metadata_config: MetadataConfig,
    /// HTTP/2 when the receiver offers it (ALPN); false: HTTP/1.1 only.
    #[serde(default = "default_true")]
    pub enable_http2: bool,
    /// Follow HTTP redirects (at most 10).
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    // Prometheus `remote_write` settings accepted so that a block copied from a Prometheus
    // config loads, but not acted on: each one set is named in a warning at load
    // ([`RemoteWriteConfig::not_supported`]).
    /// AWS Signature V4 signing: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<serde_json::Value>,
    /// OAuth 2.0 client credentials: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<serde_json::Value>,
    /// Azure AD authentication: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azuread: Option<serde_json::Value>,
    /// Google Cloud IAM authentication: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_iam: Option<serde_json::Value>,
    /// An HTTP proxy: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<serde_json::Value>,
    /// Hosts not proxied: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<serde_json::Value>,
    /// The proxy of `HTTP_PROXY`/`HTTPS_PROXY`: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Option<serde_json::Value>,
    /// Headers of the proxy's CONNECT: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_connect_header: Option<serde_json::Value>,
    /// Prometheus 3's headers with secrets and files (use `headers`): not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_headers: Option<serde_json::Value>,
    /// Spreading requests over the addresses a name resolves to: not supported, warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_robin_dns: Option<serde_json::Value>,
    /// Remote-Write 2.0 (`io.prometheus.write.v2.Request`) is not sent yet (1.0 is): warned about
    /// and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protobuf_message: Option<serde_json::Value>,
    /// promfed has no exemplars to send: `true` is warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_exemplars: Option<serde_json::Value>,
    /// promfed federates float samples only: `true` is warned about and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_native_histograms: Option<serde_json::Value>,
}

impl RemoteWriteConfig {
    /// The Prometheus settings set here that promfed does not implement, by name; `false` for
    /// the two `send_*` switches is what promfed does anyway and is not listed.
    pub fn not_supported(&self) -> Vec<&'static str> {
        let is_false = |v: &Option<serde_json::Value>| matches!(v, Some(serde_json::Value::Bool(false)));
        [
            ("sigv4", self.sigv4.is_some()),
            ("oauth2", self.oauth2.is_some()),
            ("azuread", self.azuread.is_some()),
            ("google_iam", self.google_iam.is_some()),
            ("proxy_url", self.proxy_url.is_some()),
            ("no_proxy", self.no_proxy.is_some()),
            ("proxy_from_environment", self.proxy_from_environment.is_some()),
            ("proxy_connect_header", self.proxy_connect_header.is_some()),
            ("http_headers", self.http_headers.is_some()),
            ("round_robin_dns", self.round_robin_dns.is_some()),
            ("protobuf_message", self.protobuf_message.is_some()),
            ("send_exemplars", self.send_exemplars.is_some() && !is_false(&self.send_exemplars)),
            (
                "send_native_histograms",
                self.send_native_histograms.is_some() && !is_false(&self.send_native_histograms),
            ),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// Prometheus' `metadata_config`, with its defaults.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    /// Send metric metadata at all.
    #[serde(default = "default_true")]
    pub send: bool,
    /// How often every known family's metadata is sent.
    #[serde(default = "default_metadata_interval")]
    pub send_interval: PromDuration,
    /// Most metadata entries in one request.
    #[serde(default = "default_metadata_per_send")]
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: default_metadata_interval(),
            max_samples_per_send: default_metadata_per_send(),
        }
    }
}

fn default_metadata_interval() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}
fn default_metadata_per_send() -> usize {
    2000
}

/// Prometheus' `queue_config`, with Prometheus 2.42's defaults.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Samples buffered in memory per shard, read ahead from the durable queue.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Most concurrent requests (series are spread over shards by hash: per series, order is kept).
    #[serde(default = "default_max_shards")]
    pub max_shards: usize,
    #[serde(default = "default_min_shards")]
    pub min_shards: usize,
    /// Most samples in one request.
    #[serde(default = "default_max_samples_per_send")]
    pub max_samples_per_send: usize,
    /// Longest a sample waits in a shard before a partial request is sent.
    #[serde(default = "default_batch_send_deadline")]
    pub batch_send_deadline: PromDuration,
    /// First retry delay; doubled per retry up to `max_backoff`, with jitter.
    #[serde(default = "default_min_backoff")]
    pub min_backoff: PromDuration,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: PromDuration,
    /// Retry on 429 Too Many Requests (honouring `Retry-After`). Default true, unlike Prometheus
    /// 2.42 (false): dropping samples because the receiver asked to slow down loses data.
    #[serde(default = "default_true")]
    pub retry_on_http_429: bool,
    /// Samples older than this when they would be sent (read from the queue, or retried) are
    /// dropped and counted (`reason="too_old"`), as Prometheus 2.50 does; `0s` (default): none.
    /// Per series: a series' samples of one record go together, dropped when the newest is too
    /// old.
    #[serde(default)]
    pub sample_age_limit: PromDuration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: default_capacity(),
            max_shards: default_max_shards(),
            min_shards: default_min_shards(),
            max_samples_per_send: default_max_samples_per_send(),
            batch_send_deadline: default_batch_send_deadline(),
            min_backoff: default_min_backoff(),
            max_backoff: default_max_backoff(),
            retry_on_http_429: true,
            sample_age_limit: PromDuration(Duration::ZERO),
        }
    }
}

fn default_remote_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}
fn default_capacity() -> usize {
    2500
}
fn default_max_shards() -> usize {
    200
}
fn default_min_shards() -> usize {
    1
}
fn default_max_samples_per_send() -> usize {
    500
}
fn default_batch_send_deadline() -> PromDuration {
    PromDuration(Duration::from_secs(5))
}
fn default_min_backoff() -> PromDuration {
    PromDuration(Duration::from_millis(30))
}
fn default_max_backoff() -> PromDuration {
    PromDuration(Duration::from_secs(5))
}

/// The on-disk queue of one destination.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DurableQueueConfig {
    /// Most disk used; beyond it the oldest unsent samples are dropped (counted in
    /// `promfed_remote_storage_samples_dropped_total{reason="queue_full"}`).
    #[serde(default = "default_queue_max_size")]
    pub max_size: ByteSize,
    /// Size of one segment file; the cap drops whole segments.
    #[serde(default = "default_queue_segment_size")]
    pub segment_size: ByteSize,
    /// How often appended data is fsynced. A crash of promfed loses nothing (the data is in the
    /// kernel's page cache); a crash of the machine loses at most this much. `0s`: fsync after
    /// every append.
    #[serde(default = "default_queue_sync_interval")]
    pub sync_interval: PromDuration,
}

impl Default for DurableQueueConfig {
    fn default() -> Self {
        DurableQueueConfig {
            max_size: default_queue_max_size(),
            segment_size: default_queue_segment_size(),
            sync_interval: default_queue_sync_interval(),
        }
    }
}

fn default_queue_max_size() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_queue_segment_size() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_queue_sync_interval() -> PromDuration {
    PromDuration(Duration::from_secs(1))
}

/// The Remote-Write receiver.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Largest request body accepted as received (snappy-compressed); larger gets 413.
    #[serde(default = "default_receiver_body")]
    pub max_body_size: ByteSize,
    /// Largest body after snappy decompression, checked from the snappy header before
    /// decompressing; larger gets 413.
    #[serde(default = "default_receiver_decoded")]
    pub max_decoded_size: ByteSize,
    /// Most labels in one series (`__name__` included); more gets 413.
    #[serde(default = "default_max_labels")]
    pub max_labels_per_series: usize,
    /// Longest label name; longer gets 413.
    #[serde(default = "default_max_label_name")]
    pub max_label_name_length: usize,
    /// Longest label value; longer gets 413.
    #[serde(default = "default_max_label_value")]
    pub max_label_value_length: usize,
    /// Pushed series not pushed again for this long disappear (default: global lookback_delta).
    #[serde(default)]
    pub lookback_delta: Option<PromDuration>,
    /// Elect one replica per cluster (Mimir's HA tracker). Absent: every push is taken.
    #[serde(default)]
    pub ha_tracker: Option<HaTrackerConfig>,
}

/// Election of one pushing replica per cluster.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HaTrackerConfig {
    /// The label naming the cluster (the HA pair); kept on the series.
    #[serde(default = "default_cluster_label")]
    pub cluster_label: String,
    /// The label naming the replica; removed from the series.
    #[serde(default = "default_replica_label")]
    pub replica_label: String,
    /// How often the elected replica's "last received" time is refreshed.
    #[serde(default = "default_update_timeout")]
    pub update_timeout: PromDuration,
    /// Silence of the elected replica after which another pushing replica is elected.
    #[serde(default = "default_failover_timeout")]
    pub failover_timeout: PromDuration,
    /// Most clusters tracked; pushes for more are refused (400).
    #[serde(default = "default_max_clusters")]
    pub max_clusters: usize,
    /// Take a series from a non-elected replica when the elected one has not sent it for
    /// `fill_after` (or never). Off by default: Mimir never does this.
    #[serde(default)]
    pub fill_from_non_elected: bool,
    #[serde(default = "default_fill_after")]
    pub fill_after: PromDuration,
}

fn default_receiver_body() -> ByteSize {
    ByteSize(10 << 20)
}
fn default_receiver_decoded() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_max_labels() -> usize {
    30
}
fn default_max_label_name() -> usize {
    1024
}
fn default_max_label_value() -> usize {
    2048
}
fn default_cluster_label() -> String {
    "cluster".into()
}
fn default_replica_label() -> String {
    "__replica__".into()
}
fn default_update_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(15))
}
fn default_failover_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}
fn default_max_clusters() -> usize {
    1000
}
fn default_fill_after() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}

/// Defaults for every group; a group may override each.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// How often each replica's `/federate` is scraped.
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval: PromDuration,
    /// How long one scrape may take; at most `scrape_interval`. Default, as in Prometheus: 10s,
    /// or `scrape_interval` when that is shorter (a group's default: this, capped at the group's
    /// `scrape_interval`).
    #[serde(default)]
    pub scrape_timeout: Option<PromDuration>,
    /// A series no replica reported for this long disappears (Prometheus' lookback delta).
    #[serde(default = "default_lookback")]
    pub lookback_delta: PromDuration,
    /// Consecutive good scrapes of the preferred replica before it leads again after a failover.
    #[serde(default = "default_hold_down")]
    pub hold_down: u32,
    /// Labels that tell replicas apart; removed from every series.
    #[serde(default = "default_replica_labels")]
    pub replica_labels: Vec<String>,
    /// Largest scrape body accepted, as received (compressed).
    #[serde(default = "default_body_size_limit")]
    pub body_size_limit: ByteSize,
    /// Largest scrape body accepted after gzip decompression (protects against gzip bombs).
    #[serde(default = "default_decompressed_size_limit")]
    pub decompressed_size_limit: ByteSize,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: default_scrape_interval(),
            scrape_timeout: None,
            lookback_delta: default_lookback(),
            hold_down: default_hold_down(),
            replica_labels: default_replica_labels(),
            body_size_limit: default_body_size_limit(),
            decompressed_size_limit: default_decompressed_size_limit(),
        }
    }
}

fn default_scrape_interval() -> PromDuration {
    PromDuration(Duration::from_secs(15))
}
/// The default of `global.scrape_timeout` when `scrape_interval` is not shorter.
pub(crate) fn default_scrape_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(10))
}
fn default_lookback() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}
fn default_hold_down() -> u32 {
    2
}
fn default_replica_labels() -> Vec<String> {
    vec!["replica".into(), "prometheus_replica".into(), "__replica__".into()]
}
fn default_body_size_limit() -> ByteSize {
    ByteSize(256 << 20)
}
fn default_decompressed_size_limit() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_listen() -> String {
    "0.0.0.0:9443".into()
}
fn default_max_connections() -> usize {
    1024
}
fn default_scheme() -> String {
    "http".into()
}
fn default_path() -> String {
    "/federate".into()
}
fn default_true() -> bool {
    true
}

/// The server side.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, as Prometheus takes it: `ip:port`, `[v6]:port`, `host:port`
    /// (`localhost:9443`), `:port` (every IPv4 interface). `serve --web.listen-address`
    /// overrides it. Without `tls_server_config` this is plain HTTP (a TLS handshake is refused
    /// at once with an alert): the CLI, whose default URL is `https://127.0.0.1:9443`, then says
    /// to use `--url http://…`.
    #[serde(default = "default_listen")]
    pub listen_address: String,
    /// TLS for the listener (Prometheus web config shape). Without it promfed serves plain
    /// HTTP and says so in its log.
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    /// Require HTTP basic auth on every endpoint but the health checks.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Require a bearer token on every endpoint but the health checks.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// Connections served at once; more wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen_address: default_listen(),
            tls_server_config: None,
            basic_auth: None,
            authorization: None,
            max_connections: default_max_connections(),
        }
    }
}

/// Certificate and key of the listener; reloaded when the files change or on SIGHUP.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mTLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// `TLS12` (default) or `TLS13`.
    #[serde(default)]
    pub min_version: Option<String>,
}

/// One HA group.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Unique name, used in metrics, status and the leader API.
    pub name: String,
    /// `http` or `https` for the replicas.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Path of the replicas' federation endpoint.
    #[serde(default = "default_path")]
    pub path: String,
    /// The `match[]` selectors sent to every replica.
    #[serde(default, rename = "match", alias = "match[]")]
    pub selectors: Option<Vec<String>>,
    /// Overrides `global.scrape_interval`.
    #[serde(default)]
    pub scrape_interval: Option<PromDuration>,
    /// Overrides `global.scrape_timeout`.
    #[serde(default)]
    pub scrape_timeout: Option<PromDuration>,
    /// Overrides `global.lookback_delta`.
    #[serde(default)]
    pub lookback_delta: Option<PromDuration>,
    /// Overrides `global.hold_down`.
    #[serde(default)]
    pub hold_down: Option<u32>,
    /// Overrides `global.replica_labels`.
    #[serde(default)]
    pub replica_labels: Option<Vec<String>>,
    /// Labels added to every series of the group, e.g. `federation_group: eu-west-1`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// As in Prometheus: true keeps a series' own label when it clashes with an added one;
    /// false lets the added one win and keeps the series' as `exported_<name>`.
    #[serde(default = "default_true")]
    pub honor_labels: bool,
    /// TLS to the replicas.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// Basic auth to the replicas.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Authorization header to the replicas.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// Overrides `global.body_size_limit`.
    #[serde(default)]
    pub body_size_limit: Option<ByteSize>,
    /// Formats asked for, most preferred first (Prometheus 2.49's `scrape_protocols` names):
    /// `PrometheusProto` (delimited protobuf) and `PrometheusText0.0.4`. Default: both, protobuf
    /// first.
    #[serde(default)]
    pub scrape_protocols: Option<Vec<String>>,
    /// The replicas, listed statically.
    #[serde(default)]
    pub replicas: Vec<ReplicaConfig>,
    /// The replicas in Prometheus' `static_configs` shape, read by the rules of discovered
    /// targets after `relabel_configs`: the role from the label `federation_role` (or
    /// `__federation_role__`), the name from `__federation_replica__`, else the address. Added to
    /// `replicas`.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// When true this entry is a template: its discovery yields one group per value of the group
    /// label (`__federation_group__`, else the EC2 tag `federation-group`, else the label
    /// `federation_group`), each named by that value and run with every other setting here.
    #[serde(default)]
    pub discover_groups: bool,
    /// Replicas found through EC2 `DescribeInstances` (Prometheus' `ec2_sd_configs`), added to
    /// `replicas`.
    #[serde(default)]
    pub ec2_sd_configs: Vec<Ec2SdConfig>,
    /// Replicas found in target files (Prometheus' `file_sd_configs`), added to `replicas`.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Prometheus relabeling of discovered targets before they become replicas (rewrite
    /// `__address__`, drop targets, set `__federation_role__`, …).
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
}

/// Prometheus' `static_configs` entry: targets and the labels they share.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each replica's Prometheus.
    pub targets: Vec<String>,
    /// Labels of every target here, e.g. `federation_role: primary`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One statically listed replica.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// Unique within the group (e.g. the replica label's value).
    pub name: String,
    /// `primary` or `secondary`; the primary leads while healthy.
    #[serde(default)]
    pub role: Role,
    /// `host:port` of the replica's Prometheus.
    pub address: String,
}
