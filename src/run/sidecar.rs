//! `promfed sidecar`: only the `probes:` and `dashboards:` sections, on its own listener
//! (`probes.listen_address`, else `dashboards.listen_address`): `GET /probe`,
//! `GET /api/v1/probes`, `GET /metrics` (promfed's own metrics, the scheduled probes and the
//! dashboard sync), `GET /-/healthy`; the dashboard sync loop. One root token; SIGTERM/SIGINT
//! drain the listener (10 s grace) as `promfed serve` does.

use crate::config::{Sections, probes::Probes};
use crate::serve::ServeOptions;
use crate::sidecar::dashboards::DashboardSync;
use crate::sidecar::service::ProbeService;
use crate::telemetry::Metrics;
use crate::trust::install_crypto_provider;
use axum::extract::State;

use axum::response::Response;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A started sidecar.
pub struct RunningSidecar {
    pub address: SocketAddr,
    pub service: Option<Arc<ProbeService>>,
    pub dashboards: Option<Arc<DashboardSync>>,
    token: CancellationToken,
    tasks: JoinSet<(&'static str, Result<(), String>)>,
}

#[derive(Clone)]
struct SidecarState {
    service: Option<Arc<ProbeService>>,
    dashboards: Option<Arc<DashboardSync>>,
    metrics: Arc<Metrics>,
}

async fn sidecar_metrics(State(s): State<SidecarState>) -> Response {
    crate::sidecar::metrics::metrics_with(&s.metrics, s.service.as_deref(), s.dashboards.as_deref())
}

/// Starts the sidecar with probes only; `listener` overrides `probes.listen_address` (tests
/// bind port 0).
pub async fn start(probes: Probes, listener: Option<TcpListener>) -> std::io::Result<RunningSidecar> {
    start_sections(Sections { probes: Some(probes), dashboards: None }, listener).await
}

/// Starts the sidecar with what `sections` has; `listener` overrides the configured address.
pub async fn start_sections(sections: Sections, listener: Option<TcpListener>) -> std::io::Result<RunningSidecar> {
    install_crypto_provider();
    if let Some(probes) = &sections.probes {
        for u in &probes.unsupported {
            tracing::warn!(setting = %u, "blackbox.yml setting accepted but not supported by promfed: ignored");
        }
    }
    let listener = match listener {
        Some(l) => l,
        None => {
            let configured = match (&sections.probes, &sections.dashboards) {
                (Some(p), _) => p.listen,
                (None, Some(d)) => crate::config::listen::parse(&d.listen_address).map_err(std::io::Error::other)?,
                (None, None) => SocketAddr::from(([0, 0, 0, 0], 9115)),
            };
            TcpListener::bind(configured).await?
        }
    };
    let address = listener.local_addr()?;
    let service = sections.probes.map(ProbeService::new);
    let dashboards = sections.dashboards.map(|d| Arc::new(DashboardSync::new(d)));
    let metrics = Arc::new(Metrics::new());
    let state = SidecarState { service: service.clone(), dashboards: dashboards.clone(), metrics };
    let mut app = axum::Router::new()
        .route("/metrics", get(sidecar_metrics))
        .route("/-/healthy", get(|| async { "promfed sidecar is Healthy.\n" }))
        .with_state(state);
    if let Some(service) = &service {
        app = app.merge(service.routes());
    }
    let token = CancellationToken::new();
    let mut tasks = JoinSet::new();
    if let Some(service) = &service {
        let (s, t) = (service.clone(), token.clone());
        tasks.spawn(async move {
            s.run_scheduled(t).await;
            ("scheduled probes", Ok(()))
        });
    }
    if let Some(sync) = &dashboards {
        let (s, t) = (sync.clone(), token.clone());
        tasks.spawn(async move {
            s.run(t).await;
            ("dashboards sync", Ok(()))
        });
    }
    tasks.spawn({
        let t = token.clone();
        async move {
            let r = crate::serve::serve(listener, None, app, ServeOptions::default(), t).await;
            ("listener", r.map_err(|e| e.to_string()))
        }
    });
    tracing::info!(%address, probes = service.is_some(), dashboards = dashboards.is_some(), "promfed sidecar serving");
    Ok(RunningSidecar { address, service, dashboards, token, tasks })
}

impl RunningSidecar {
    /// Asks every task to stop.
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    /// Waits for every task; an early exit of one stops the rest and is the error.
    pub async fn wait(mut self) -> Result<(), crate::run::RunError> {
        let mut failure = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (task, result) = joined.unwrap_or_else(|e| ("task", Err(format!("panicked: {e}"))));
            if !self.token.is_cancelled() || result.is_err() {
                tracing::error!(task, "task stopped unexpectedly; shutting down");
                self.token.cancel();
                failure.get_or_insert(crate::run::RunError { task, detail: result.err() });
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Runs until SIGTERM or SIGINT.
    pub async fn run_until_signalled(self) -> Result<(), crate::run::RunError> {
        use tokio::signal::unix::{SignalKind, signal};
        let token = self.token.clone();
        let signals = tokio::spawn({
            let token = token.clone();
            async move {
                let mut term = signal(SignalKind::terminate()).ok();
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: shutting down"); token.cancel(); }
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {
                        tracing::info!("SIGTERM: shutting down");
                        token.cancel();
                    }
                }
            }
        });
        let result = self.wait().await;
        token.cancel();
        let _ = signals.await;
        result
    }
}
