//! promfed federates Prometheus HA pairs: it scrapes the `/federate` endpoint of every replica of
//! each group, merges and deduplicates their series, and serves one clean view over TLS.
//!
//! # Layout
//! - [`parse`]: text and protobuf exposition decoders, pushing samples into a sink.
//! - [`series`]: series identity (canonical keys without replica labels) and scrape batches.
//! - [`merge`]: the HA merge per group and the store task publishing immutable snapshots.
//! - [`selector`]: `match[]` selectors.
//! - [`telemetry`]: promfed's own metrics and logging.
pub mod merge;
pub mod parse;
pub mod selector;
pub mod series;
pub mod telemetry;
