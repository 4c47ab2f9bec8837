//! promfed federates Prometheus HA pairs: it scrapes the `/federate` endpoint of every replica of
//! each group, merges and deduplicates their series, and serves one clean view over TLS.
//!
//! # Layout
//! - [`config`]: the YAML file, validated up front with every problem reported at once.
//! - [`parse`]: text and protobuf exposition decoders, pushing samples into a sink.
//! - [`series`]: series identity (canonical keys without replica labels) and scrape batches.
//! - [`merge`]: the HA merge per group and the store task publishing immutable snapshots.
//! - [`selector`]: `match[]` selectors.
//! - [`serve`]: the HTTP(S) listener — TLS with hot reload and mTLS, connection cap, graceful drain, auth.
//! - [`telemetry`]: promfed's own metrics and logging.
pub mod config;
pub mod merge;
pub mod parse;
pub mod selector;
pub mod series;
pub mod serve;
pub mod telemetry;
