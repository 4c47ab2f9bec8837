//! promfed federates Prometheus HA pairs: it scrapes the `/federate` endpoint of every replica of
//! each group, merges and deduplicates their series, and serves one clean view over TLS.
//!
//! # Layout
//! From the top (wiring) to the bottom (config and the shared model): a module uses only modules
//! listed after it, and no two files depend on each other (`tests/layering.rs` checks both).
//! - [`cli`]: the command line (`serve`, `check-config`, `demo`; the on-call `status`, `leader`,
//!   `federate` against a running promfed; `probe`; `completions`) and exit codes.
//! - [`demo`]: `promfed demo`, two synthetic replicas federated over HTTPS, nothing installed.
//! - [`run`]: wiring it all together with one shutdown path; signals; `promfed sidecar`'s wiring.
//! - [`serve`]: the HTTP(S) listener and the endpoints — TLS with hot reload and mTLS, connection
//!   cap, graceful drain, auth; `/federate`, status, leader and Prometheus' status API.
//! - [`reload`]: SIGHUP / `POST /-/reload`: re-read the config, keep the state of surviving groups.
//! - [`sidecar`]: blackbox_exporter-compatible probes (`/probe`, scheduled probes) and the
//!   dashboard sync.
//! - [`dashboards`]: dashboards as code: lint, plan, apply, pull and provision Grafana dashboards.
//! - [`query`]: the query side: remote read of each replica's raw history, merged by the HA rules.
//! - [`remote`]: Remote-Write: the receiver of pushes, with HA election per cluster, and the
//!   sender of the merged stream through a durable queue per destination.
//! - [`scrape`]: one loop per replica, bounded and negotiated scrapes of `/federate`.
//! - [`discovery`]: where each group's replicas are (static lists, file SD, EC2).
//! - [`render`]: `/federate` bodies, text and protobuf, gzip.
//! - [`merge`]: the HA merge per group and the store task publishing immutable snapshots.
//! - [`telemetry`]: promfed's own metrics and logging.
//! - [`client`]: HTTP clients to upstreams: `tls_config`, `basic_auth`, `authorization`.
//! - [`config`]: every config type and the YAML files, validated up front with every problem
//!   reported at once; the config reference is generated from them.
//! - [`trust`]: server-certificate verification: webpki plus Go's "the leaf is a configured CA" rule.
//! - [`relabel`]: Prometheus relabeling of label sets (discovered targets, remote-write series).
//! - [`selector`]: `match[]` selectors.
//! - [`series`]: series identity (canonical keys without replica labels) and scrape batches.
//! - [`key`]: compact keys as the store holds them: interned schemas (name, label names) + values.
//! - [`canonical`]: reading canonical series keys (`name{a="1"}`): name, labels, order.
//! - [`parse`]: text and protobuf exposition decoders, pushing samples into a sink.
//! - [`dns`]: the DNS wire format (queries, answers, type and rcode names) of the DNS prober.
//! - [`build`]: what this binary is (version, revision, builder, compiler), as Prometheus says it.
//! - [`clock`]: wall-clock time in Prometheus' units.
//! - [`varint`]: protobuf varints for the hand-written encoders.
pub mod build;
pub mod canonical;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod dashboards;
pub mod demo;
pub mod discovery;
pub mod dns;
pub mod key;
pub mod merge;
pub mod parse;
pub mod query;
pub mod relabel;
pub mod reload;
pub mod remote;
pub mod render;
pub mod run;
pub mod scrape;
pub mod selector;
pub mod series;
pub mod serve;
pub mod sidecar;
pub mod telemetry;
pub mod trust;
pub mod varint;
