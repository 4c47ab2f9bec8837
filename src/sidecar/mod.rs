//! The sidecar: blackbox_exporter-compatible probing and the continuous dashboard sync.
//!
//! - [`modules`]: blackbox_exporter's `blackbox.yml`, read unchanged;
//! - [`config`]: promfed's `probes:` section (modules file or inline modules, scheduled probes);
//! - [`probe`]: the probers (`http`, `tcp`, `dns`, `icmp`) and their metrics;
//! - [`service`]: `GET /probe`, scheduled probes, `GET /api/v1/probes`, their `/metrics` series;
//! - [`dashboards`]: the `dashboards:` section, applied to Grafana every interval;
//! - [`metrics`]: `/metrics` with the scheduled probes' and the dashboard sync's series;

pub mod dashboards;
pub mod metrics;
pub mod probe;
pub mod service;

pub use crate::config::blackbox::{Module, Modules, ModulesError};
pub use crate::config::probes::{Probes, ProbesConfig};
pub use service::ProbeService;
