//! The query side (issue 14): what Grafana and other Prometheus API clients read from promfed.
//!
//! Built in stages, one file each (see the README's "Query API" for what is done):
//! - [`proto`]: the remote-read messages (`prometheus.ReadRequest`, `ReadResponse`,
//!   `ChunkedReadResponse`);
//! - [`chunk`]: the XOR ("Gorilla") sample chunks of a streamed remote-read response;
//! - [`remote_read`]: the client that fetches each replica's raw history through
//!   `POST /api/v1/read`, streamed chunks preferred, samples as the fallback;
//! - [`history`]: the replicas' histories of one series merged into one by the HA rules;
//! - [`fetch`]: what a query reads — each selector's window, from every replica of every group
//!   that can match, merged, filtered;
//! - [`engine`]: PromQL evaluated on the merged series;
//! - [`api`]: the Prometheus HTTP query API;
//! - [`inflight`]: work shared by identical requests at the same time (whole queries, and the
//!   fetches of queries that read the same selectors over the same windows).

pub mod api;
pub mod chunk;
pub mod engine;
pub mod fetch;
pub mod history;
pub mod inflight;
pub mod proto;
pub mod remote_read;
