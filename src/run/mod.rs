//! Running promfed: wires the config into the store, the scrapers, discovery and the listener,
//! with one root cancellation token and one supervisor.
//!
//! Every long-lived task is spawned into one `JoinSet`. Cancelling the root token (SIGTERM,
//! SIGINT, or [`Running::shutdown`]) stops them all: the listener drains in-flight requests, the
//! scrape loops stop, the store stops last. A task that ends on its own before shutdown is a bug
//! or a fatal error: it is logged and shuts the process down rather than leaving it half alive.

pub mod sidecar;

use crate::config::{Config, Credentials};
use crate::discovery::{Discovery, TargetSet};
use crate::merge::{GroupSettings, Store, StoreHandle};
use crate::reload::{ReloadHandle, Reloader};
use crate::render::Prerender;
use crate::scrape::ScrapeManager;
use crate::serve::app::{AppState, router};
use crate::serve::{
    AuthSettings, ServeOptions, TlsReloader, TlsSettings, TlsVersion, install_crypto_provider, protect,
};
use crate::telemetry::Metrics;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// promfed could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server TLS: {0}")]
    Tls(#[from] crate::serve::TlsError),
    #[error("{0}")]
    Client(#[from] crate::scrape::ClientError),
    #[error("{0}")]
    RemoteWrite(#[from] crate::remote::send::SendError),
    #[error("leader pins: {0}")]
    Pins(crate::merge::pins::PinsError),
}

/// promfed stopped because something failed.
#[derive(Debug, thiserror::Error)]
#[error("task {task} stopped unexpectedly{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct RunError {
    pub task: &'static str,
    pub detail: Option<String>,
}

/// A started promfed.
pub struct Running {
    /// The address the listener is bound to.
    pub address: SocketAddr,
    /// Whether it serves HTTPS.
    pub tls: Option<Arc<TlsReloader>>,
    pub store: StoreHandle,
    pub metrics: Arc<Metrics>,
    /// Reloads the config file.
    pub reload: ReloadHandle,
    token: CancellationToken,
    tasks: JoinSet<(&'static str, Result<(), String>)>,
}

/// Starts promfed for `config`. `listener` overrides `server.listen_address` (tests bind
/// `127.0.0.1:0`; the demo binds its own). Without a file there is nothing to reload.
pub async fn start(config: Config, listener: Option<TcpListener>) -> Result<Running, StartError> {
    start_from_file(config, listener, None).await
}

/// [`start`], remembering the file `config` came from so that SIGHUP and `POST /-/reload` can
/// re-read it.
pub async fn start_from_file(
    config: Config,
    listener: Option<TcpListener>,
    config_path: Option<PathBuf>,
) -> Result<Running, StartError> {
    install_crypto_provider();
    for w in &config.warnings {
        tracing::warn!("config: {w}");
    }
    let token = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let tls = match &config.server.tls {
        Some(t) => Some(TlsReloader::load(TlsSettings {
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
            client_ca_file: t.client_ca_file.clone(),
            min_version: Some(if t.tls13_only { TlsVersion::Tls13 } else { TlsVersion::Tls12 }),
        })?),
        None => None,
    };
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(config.server.listen)
            .await
            .map_err(|source| StartError::Listen { address: config.server.listen, source })?,
    };
    let address =
        listener.local_addr().map_err(|source| StartError::Listen { address: config.server.listen, source })?;

    let (mut store, handle) = Store::new(GroupSettings::all(&config), metrics.clone());
    if config.groups.is_empty() {
        store.ready_when_empty();
    }
    // Leader pins survive restarts; a promfed without a file (the demo, tests) keeps none.
    if config_path.is_some() {
        let pins = crate::merge::pins::PinFile::open(&config.file.data_dir).map_err(StartError::Pins)?;
        store.keep_pins(pins);
    }
    let (senders, senders_handle) =
        crate::remote::senders::Senders::start(&config.remote_write, &mut store, handle.clone(), metrics.clone())?;
    let prerender = Arc::new(Prerender::default());
    store.on_publish({
        let prerender = prerender.clone();
        Box::new(move |snapshot| prerender.published(snapshot))
    });
    let manager = ScrapeManager::new(&config.groups, handle.clone(), metrics.clone(), token.clone())?;
    let (targets_tx, targets_rx) = mpsc::channel::<TargetSet>(16);
    let (reconfigure_tx, reconfigure_rx) = mpsc::channel(1);
    let discovery = Discovery::start(&config.groups, &metrics, &targets_tx, &token, &Default::default());
    let groups = config.groups.len();
    let (reloader, reload) = Reloader::new(
        config_path,
        config.clone(),
        handle.clone(),
        reconfigure_tx,
        senders_handle,
        discovery,
        targets_tx,
        metrics.clone(),
        token.clone(),
    );

    let probes = config.probes.clone().map(crate::sidecar::ProbeService::new);
    let auth = match &config.server.auth {
        Credentials::None => AuthSettings::None,
        Credentials::Basic { username, password } => {
            AuthSettings::Basic { username: username.clone(), password: password.clone() }
        }
        Credentials::Header { credentials, .. } => AuthSettings::Bearer { token: credentials.clone() },
    };
    let app = protect(
        router(AppState {
            store: handle.clone(),
            metrics: metrics.clone(),
            tls: tls.clone(),
            reload: Some(reload.clone()),
            prerender,
            receiver: config
                .receiver
                .clone()
                .map(|r| Arc::new(crate::remote::receive::Receiver::new(r, handle.clone(), metrics.clone()))),
            probes: probes.clone(),
            query: (!config.groups.is_empty() || config.receiver.is_some()).then(|| {
                let sources = crate::query::fetch::Sources::new(
                    manager.view(),
                    config.query.clone(),
                    handle.clone(),
                    metrics.clone(),
                );
                Arc::new(crate::query::api::QueryApi::new(sources, config.query.clone()))
            }),
        }),
        auth,
    );
    let options = ServeOptions {
        max_connections: config.server.max_connections,
        encoded_targets: metrics.encoded_targets(),
        ..ServeOptions::default()
    };

    let mut tasks = JoinSet::new();
    // The store stops only after the scrapers: it is given its own token, cancelled last.
    let store_token = CancellationToken::new();
    tasks.spawn({
        let t = store_token.clone();
        async move {
            store.run(t).await;
            ("store", Ok(()))
        }
    });
    // A destination stops after the store (when the store drops its sender), so it queues the
    // last merge's samples before leaving.
    tasks.spawn(async move { ("remote_write senders", senders.run().await) });
    tasks.spawn(async move {
        manager.run(targets_rx, reconfigure_rx).await;
        ("scrape manager", Ok(()))
    });
    if let Some(probes) = probes {
        tasks.spawn({
            let t = token.clone();
            async move {
                probes.run_scheduled(t).await;
                ("scheduled probes", Ok(()))
            }
        });
    }
    tasks.spawn(async move {
        reloader.run().await;
        ("reloader", Ok(()))
    });
    if let Some(tls) = &tls {
        tasks.spawn({
            let (tls, t) = (tls.clone(), token.clone());
            async move {
                tls.watch(Duration::from_secs(5), t).await;
                ("certificate watcher", Ok(()))
            }
        });
    }
    tasks.spawn({
        let (tls, t) = (tls.clone(), token.clone());
        async move {
            let r = crate::serve::serve(listener, tls, app, options, t).await;
            ("listener", r.map_err(|e| e.to_string()))
        }
    });
    tasks.spawn({
        let t = token.clone();
        async move {
            t.cancelled().await;
            store_token.cancel();
            ("shutdown", Ok(()))
        }
    });
    tracing::info!(%address, tls = tls.is_some(), groups, "promfed serving");
    Ok(Running { address, tls, store: handle, metrics, reload, token, tasks })
}

impl Running {
    /// Asks every task to stop.
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    /// A token cancelled when promfed shuts down.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Waits until every task has stopped. An unexpected early exit of any task cancels the
    /// rest and is returned as the error.
    pub async fn wait(mut self) -> Result<(), RunError> {
        let mut failure = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (task, result) = match joined {
                Ok(r) => r,
                Err(e) => ("task", Err(format!("panicked: {e}"))),
            };
            if !self.token.is_cancelled() || result.is_err() {
                let detail = result.err();
                tracing::error!(
                    task,
                    detail = detail.as_deref().unwrap_or(""),
                    "task stopped unexpectedly; shutting down"
                );
                self.token.cancel();
                failure.get_or_insert(RunError { task, detail });
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Runs until SIGTERM or SIGINT; SIGHUP reloads the server certificate and the config file.
pub async fn run_until_signalled(running: Running) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let token = running.token();
    let tls = running.tls.clone();
    let reload = running.reload.clone();
    let signals = tokio::spawn({
        let token = token.clone();
        async move {
            let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
                tracing::error!("cannot install signal handlers; only SIGINT stops promfed");
                tokio::select! { _ = token.cancelled() => {}, _ = tokio::signal::ctrl_c() => token.cancel() }
                return;
            };
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: shutting down"); token.cancel(); }
                    _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); token.cancel(); }
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reloading the server certificate and the configuration");
                        reload_tls(tls.as_deref());
                        // The reloader logs the outcome; a slow reload must not block signals.
                        let reload = reload.clone();
                        tokio::spawn(async move { let _ = reload.reload().await; });
                    }
                }
            }
        }
    });
    let result = running.wait().await;
    token.cancel();
    let _ = signals.await;
    result
}

/// Reloads the server certificate; errors are logged and the old one stays.
pub fn reload_tls(tls: Option<&TlsReloader>) {
    if let Some(tls) = tls {
        match tls.reload() {
            Ok(true) => tracing::info!("server certificate reloaded"),
            Ok(false) => tracing::info!("server certificate unchanged"),
            Err(e) => tracing::error!("server certificate reload failed, keeping the old one: {e}"),
        }
    }
}
