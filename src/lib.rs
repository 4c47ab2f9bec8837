//! promfed federates Prometheus HA pairs: it scrapes the `/federate` endpoint of every replica of
//! each group, merges and deduplicates their series, and serves one clean view over TLS.
//!
//! # Layout
//! - [`parse`]: text and protobuf exposition decoders, pushing samples into a sink.
//! - [`serve`]: the HTTP(S) listener — TLS with hot reload and mTLS, connection cap, graceful drain, auth.
pub mod parse;
pub mod serve;
