//! The sidecar's continuous dashboard sync: the `dashboards:` section of the config file, and a
//! loop that runs `promfed dashboards apply` ([`crate::dashboards::sync`]) every `interval`
//! inside `promfed sidecar`, exported as `promfed_dashboards_sync_success` and
//! `promfed_dashboards_sync_last_success_timestamp_seconds`.
//!
//! Each run reads the directory and the token file again (a rotated token or a `git pull` is
//! picked up without a restart). A directory with an unusable file is not applied at all: with
//! `prune` the broken file's dashboard would look removed. A dashboard changed in Grafana since
//! it was read is reported and retried on the next run, never forced.

pub use crate::config::dashboards::DashboardsConfig;
use crate::dashboards::sync::{self, Options};
use crate::dashboards::{Grafana, Settings, tree};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use tokio_util::sync::CancellationToken;

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
