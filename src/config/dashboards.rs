//! The `dashboards:` section: Grafana's dashboards kept in sync with a directory by `promfed
//! sidecar` ([`crate::sidecar::dashboards`] runs it).

use super::http::TlsConfig;
use super::units::PromDuration;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `dashboards:` as written.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardsConfig {
    /// The dashboards directory (one subdirectory per Grafana folder), as `promfed dashboards
    /// apply DIR` takes it. Relative to the working directory.
    pub dir: PathBuf,
    /// Grafana's base URL, e.g. `https://grafana:3000`.
    pub grafana_url: String,
    /// File holding a Grafana service-account token (Editor role), read before every run.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// How often to apply.
    #[serde(default = "default_interval")]
    pub interval: PromDuration,
    /// Delete dashboards promfed created that the directory no longer has.
    #[serde(default)]
    pub prune: bool,
    /// The message Grafana records in each changed dashboard's version history.
    #[serde(default = "default_message")]
    pub message: String,
    /// TLS towards Grafana (`ca_file`, `insecure_skip_verify`, …).
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
    /// Timeout of one request to Grafana.
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// Where `promfed sidecar` serves `/metrics` when there is no `probes:` section (with one,
    /// `probes.listen_address`).
    #[serde(default = "default_listen")]
    pub listen_address: String,
}

fn default_interval() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}

fn default_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}

fn default_message() -> String {
    "promfed sidecar: dashboards sync".to_owned()
}

fn default_listen() -> String {
    "0.0.0.0:9115".to_owned()
}

impl DashboardsConfig {
    /// Every problem as `(path, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.dir.as_os_str().is_empty() {
            out.push(("dashboards.dir".into(), "must not be empty".into()));
        }
        if !(self.grafana_url.starts_with("http://") || self.grafana_url.starts_with("https://"))
            || reqwest::Url::parse(&self.grafana_url).is_err()
        {
            out.push((
                "dashboards.grafana_url".into(),
                format!("{:?} is not an http:// or https:// URL", self.grafana_url),
            ));
        }
        if self.interval.0 < Duration::from_secs(10) {
            out.push(("dashboards.interval".into(), "must be at least 10s".into()));
        }
        if self.timeout.0.is_zero() {
            out.push(("dashboards.timeout".into(), "must be more than 0s".into()));
        }
        if let Err(e) = super::listen::parse(&self.listen_address) {
            out.push(("dashboards.listen_address".into(), e));
        }
        out
    }
}
