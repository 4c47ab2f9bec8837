//! promfed federates Prometheus HA pairs: it scrapes the `/federate` endpoint of every replica of
//! each group, merges and deduplicates their series, and serves one clean view over TLS.
//!
//! # Layout
//! - [`parse`]: text and protobuf exposition decoders, pushing samples into a sink.
pub mod parse;
