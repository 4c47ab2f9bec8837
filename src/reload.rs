//! Configuration reload (SIGHUP and `POST /-/reload`): re-read the file, and only if it is valid
//! apply it — scrape settings, groups, discovery — while the groups that stay keep their merge
//! state, so a reload makes no gap and no counter jump. An invalid file is rejected with every
//! problem and the old configuration keeps running.
//!
//! Server settings (listen address, TLS file paths, auth, connection limit) are read at start
//! only; a reload that changes them says so in the log. Certificate *contents* reload on their own.

use crate::config::{self, Config};
use crate::discovery::{Discovery, Handover, TargetSet};
use crate::merge::{Command, StoreHandle};
use crate::remote::senders::SendersHandle;
use crate::scrape::manager::Reconfigure;
use crate::telemetry::Metrics;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(
        "this promfed runs an embedded config (promfed demo), not a file: there is nothing to reload; \
         `promfed serve --config FILE` reloads FILE on SIGHUP or POST /-/reload"
    )]
    NoFile,
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Client(#[from] crate::scrape::ClientError),
    #[error("promfed is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    RemoteWrite(String),
}

type Reply = oneshot::Sender<Result<(), ReloadError>>;

/// Asks the reloader to reload; cheap to clone.
#[derive(Clone)]
pub struct ReloadHandle {
    tx: mpsc::Sender<Reply>,
    /// The config running now (replaced by each successful reload).
    current: Arc<arc_swap::ArcSwap<Config>>,
}

impl ReloadHandle {
    /// The config running now.
    pub fn current(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// Reloads and waits for the result.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(reply).await.map_err(|_| ReloadError::ShuttingDown)?;
        rx.await.map_err(|_| ReloadError::ShuttingDown)?
    }
}

/// Owns what a reload replaces.
pub struct Reloader {
    path: Option<PathBuf>,
    store: StoreHandle,
    manager: mpsc::Sender<Reconfigure>,
    senders: SendersHandle,
    discovery: Option<Discovery>,
    /// The epoch of the running discovery (see [`crate::discovery::TargetSet::epoch`]).
    epoch: u64,
    targets: mpsc::Sender<TargetSet>,
    metrics: Arc<Metrics>,
    token: CancellationToken,
    rx: mpsc::Receiver<Reply>,
    /// The config running now, shared with the handles (replaced by each successful reload).
    current: Arc<arc_swap::ArcSwap<Config>>,
}

impl Reloader {
    /// A reloader for the running `config` (read from `path`), with discovery already started
    /// (epoch 0).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        path: Option<PathBuf>,
        config: Config,
        store: StoreHandle,
        manager: mpsc::Sender<Reconfigure>,
        senders: SendersHandle,
        discovery: Discovery,
        targets: mpsc::Sender<TargetSet>,
        metrics: Arc<Metrics>,
        token: CancellationToken,
    ) -> (Reloader, ReloadHandle) {
        let (tx, rx) = mpsc::channel(4);
        // The load at start is the first successful one (as in Prometheus): a dashboard's "last
        // reload" is then never the epoch.
        metrics.config_last_reload_successful.set(1);
        metrics.config_last_reload_success_timestamp_seconds.set(crate::clock::now_secs());
        let current = Arc::new(arc_swap::ArcSwap::from_pointee(config));
        let r = Reloader {
            path,
            current: current.clone(),
            store,
            manager,
            senders,
            discovery: Some(discovery),
            epoch: 0,
            targets,
            metrics,
            token,
            rx,
        };
        (r, ReloadHandle { tx, current })
    }

    /// Serves reload requests until shutdown, then stops discovery.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                _ = self.token.cancelled() => break,
                Some(reply) = self.rx.recv() => {
                    let result = self.reload().await;
                    match &result {
                        Ok(()) => {
                            tracing::info!("configuration reloaded");
                            self.metrics.config_last_reload_successful.set(1);
                            let now = crate::clock::now_secs();
                            self.metrics.config_last_reload_success_timestamp_seconds.set(now);
                        }
                        // Nothing failed: there is no file (the demo); the running config stands.
                        Err(e @ ReloadError::NoFile) => tracing::info!("reload asked: {e}"),
                        Err(e) => {
                            tracing::error!("configuration reload failed, the old configuration keeps running: {e}");
                            self.metrics.config_last_reload_successful.set(0);
                        }
                    }
                    let _ = reply.send(result);
                }
            }
        }
        if let Some(d) = self.discovery.take() {
            d.stop().await;
        }
    }

    async fn reload(&mut self) -> Result<(), ReloadError> {
        let path = self.path.as_ref().ok_or(ReloadError::NoFile)?;
        let running = self.current.load_full();
        let mut new = config::load(path)?;
        new.flags = running.flags.clone();
        let (old, next) = (&running.server, &new.server);
        if old.listen != next.listen
            || old.tls != next.tls
            || old.auth != next.auth
            || old.max_connections != next.max_connections
        {
            tracing::warn!("config reload: server settings changed; they apply at the next restart");
        }
        // Compared through Debug: the checked configs hold compiled regexes, not comparable.
        if format!("{:?}", running.receiver) != format!("{:?}", new.receiver) {
            // As Prometheus' --web.enable-remote-write-receiver, a listener setting.
            tracing::warn!("config reload: remote_write_receiver settings changed; they apply at the next restart");
        }
        // Destinations first: a new one that cannot open its queue fails the reload before
        // anything else changed.
        self.senders.reconfigure(new.remote_write.clone()).await.map_err(ReloadError::RemoteWrite)?;
        for w in &new.warnings {
            tracing::warn!("config: {w}");
        }
        // Scrapers first (a bad TLS file stops the reload before anything changed; from then on
        // the manager ignores what the old discovery still sends), then the store, then a new
        // discovery, which re-announces every group's replicas and removes the groups found
        // before that their template no longer finds.
        let epoch = self.epoch + 1;
        let (reply, rx) = oneshot::channel();
        self.manager
            .send(Reconfigure { groups: new.groups.clone(), epoch, reply })
            .await
            .map_err(|_| ReloadError::ShuttingDown)?;
        let found = rx.await.map_err(|_| ReloadError::ShuttingDown)??;
        let discovered = found.values().flatten().cloned().collect();
        self.store
            .command(Command::Reconfigure { groups: crate::merge::GroupSettings::all(&new), discovered })
            .await
            .map_err(|_| ReloadError::ShuttingDown)?
            .map_err(|_| ReloadError::ShuttingDown)?;
        if let Some(d) = self.discovery.take() {
            d.stop().await;
        }
        let handover = Handover { epoch, found };
        self.discovery = Some(Discovery::start(&new.groups, &self.metrics, &self.targets, &self.token, &handover));
        self.epoch = epoch;
        self.current.store(Arc::new(new));
        Ok(())
    }
}
