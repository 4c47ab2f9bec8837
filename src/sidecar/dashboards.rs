//! The sidecar's continuous dashboard sync: the `dashboards:` section of the config file, and a
//! loop that runs `promfed dashboards apply` ([`crate::dashboards::sync`]) every `interval`
//! inside `promfed sidecar`, exported as `promfed_dashboards_sync_success` and
//! `promfed_dashboards_sync_last_success_timestamp_seconds`.
//!
//! Each run reads the directory and the token file again (a rotated token or a `git pull` is
//! picked up without a restart). A directory with an unusable file is not applied at all: with
//! `prune` the broken file's dashboard would look removed. A dashboard changed in Grafana since
//! it was read is reported and retried on the next run, never forced.

use crate::config::file::TlsConfig;
use crate::config::units::PromDuration;
use crate::dashboards::sync::{self, Options};
use crate::dashboards::{Grafana, Settings, tree};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
        if let Err(e) = crate::config::listen::parse(&self.listen_address) {
            out.push(("dashboards.listen_address".into(), e));
        }
        out
    }
}

/// The sync loop and its metrics.
pub struct DashboardSync {
    config: DashboardsConfig,
    registry: Registry,
    success: Gauge,
    last_success: Gauge<f64, AtomicU64>,
}

impl DashboardSync {
    /// A sync of a checked section.
    pub fn new(config: DashboardsConfig) -> DashboardSync {
        let mut registry = Registry::with_prefix("promfed");
        let success = Gauge::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "dashboards_sync_success",
            "1 when the last sync of the dashboards directory to Grafana applied everything",
            success.clone(),
        );
        registry.register(
            "dashboards_sync_last_success_timestamp_seconds",
            "When a sync of the dashboards directory to Grafana last applied everything",
            last_success.clone(),
        );
        DashboardSync { config, registry, success, last_success }
    }

    /// The section.
    pub fn config(&self) -> &DashboardsConfig {
        &self.config
    }

    /// The metrics in OpenMetrics text, without the final `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        if let Some(at) = out.rfind("# EOF") {
            out.truncate(at);
        }
        out
    }

    /// Syncs now and then every `interval` until `token` is cancelled.
    pub async fn run(&self, token: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.interval.0);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            let result = tokio::select! {
                _ = token.cancelled() => return,
                r = self.sync_once() => r,
            };
            match result {
                Ok(changes) => {
                    self.success.set(1);
                    self.last_success.set(crate::clock::now_ms() as f64 / 1000.0);
                    tracing::info!(changes, dir = %self.config.dir.display(), "dashboards synced to Grafana");
                }
                Err(failures) => {
                    self.success.set(0);
                    for f in failures {
                        tracing::warn!(failure = %f, "dashboards sync to Grafana");
                    }
                }
            }
        }
    }

    /// One apply; the number of changes made, or every failure.
    pub async fn sync_once(&self) -> Result<usize, Vec<String>> {
        let c = &self.config;
        let tree = tree::load(&c.dir).map_err(|e| vec![e.to_string()])?;
        if !tree.problems.is_empty() {
            let mut out = tree.problems.clone();
            out.push(format!("{}: not applied: a file is not a usable dashboard", c.dir.display()));
            return Err(out);
        }
        let token = match &c.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map(|t| t.trim().to_owned())
                    .map_err(|e| vec![format!("dashboards.token_file {}: {e}", path.display())])?,
            ),
            None => None,
        };
        let settings = Settings {
            url: c.grafana_url.clone(),
            token,
            tls: c.tls_config.clone().unwrap_or_default(),
            timeout: c.timeout.0,
        };
        let grafana = Grafana::new(&settings).map_err(|e| vec![e.to_string()])?;
        let planned = sync::plan(&grafana, &tree, c.prune).await.map_err(|e| vec![e.to_string()])?;
        let options = Options { prune: c.prune, force: false, message: c.message.clone() };
        let outcome = sync::apply(&grafana, planned, &options).await;
        for line in &outcome.done {
            tracing::info!(change = %line, "dashboards sync");
        }
        if outcome.failed.is_empty() { Ok(outcome.done.len()) } else { Err(outcome.failed) }
    }
}
