//! Dashboards as code: the Grafana dashboards of a directory kept in sync with a Grafana, and
//! checked before they get there (`promfed dashboards lint`).
//!
//! - [`tree`]: the directory (`DIR/<folder>/<name>.json`), folders with stable uids;
//! - [`normalize`]: the canonical form (volatile fields and the managed tag dropped, keys
//!   sorted) that the repo keeps and that plans compare;
//! - [`variables`], [`expr`]: Grafana's variables replaced in PromQL, which is then parsed;
//! - [`lint`]: the dashboard rules; [`rules`]: Prometheus rule files; [`live`]: the metric names
//!   of a running Prometheus or promfed for `--live`;

pub mod expr;
pub mod lint;
pub mod live;
pub mod normalize;
pub mod rules;
pub mod tree;
pub mod variables;

pub use normalize::MANAGED_TAG;
