//! Dashboards as code: the Grafana dashboards of a directory kept in sync with a Grafana, and
//! checked before they get there (`promfed dashboards lint|plan|apply|pull|provision`, and the
//! sidecar's continuous sync).
//!
//! - [`tree`]: the directory (`DIR/<folder>/<name>.json`), folders with stable uids;
//! - [`normalize`]: the canonical form (volatile fields and the managed tag dropped, keys
//!   sorted) that the repo keeps and that plans compare;
//! - [`variables`], [`expr`]: Grafana's variables replaced in PromQL, which is then parsed;
//! - [`lint`]: the dashboard rules; [`rules`]: Prometheus rule files; [`live`]: the metric names
//!   of a running Prometheus or promfed for `--live`;
//! - [`grafana`]: the client of Grafana's HTTP API;
//! - [`diff`]: the semantic difference and the plan; [`sync`]: plan and apply against Grafana;
//! - [`provision`]: Grafana file-provisioning YAML for the directory and a promfed datasource.

pub mod diff;
pub mod expr;
pub mod grafana;
pub mod lint;
pub mod live;
pub mod normalize;
pub mod provision;
pub mod report;
pub mod rules;
pub mod sync;
pub mod tree;
pub mod variables;

pub use grafana::{Grafana, GrafanaError, Settings};
pub use normalize::MANAGED_TAG;
