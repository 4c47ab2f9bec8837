//! `promfed sidecar`: only the `probes:` section, on its own listener (`probes.listen_address`):
//! `GET /probe`, `GET /api/v1/probes`, `GET /metrics` (promfed's own metrics and the scheduled
//! probes), `GET /-/healthy`. One root token; SIGTERM/SIGINT drain the listener (10 s grace) as
//! `promfed serve` does.

use super::config::Probes;
use super::service::ProbeService;
use crate::serve::{ServeOptions, install_crypto_provider};
use crate::telemetry::Metrics;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A started sidecar.
pub struct RunningSidecar {
    pub address: SocketAddr,
    pub service: Arc<ProbeService>,
    token: CancellationToken,
    tasks: JoinSet<(&'static str, Result<(), String>)>,
}

#[derive(Clone)]
struct SidecarState {
    service: Arc<ProbeService>,
    metrics: Arc<Metrics>,
}

/// `/metrics` of promfed with the scheduled probes' series added before OpenMetrics' `# EOF`.
pub fn metrics_with_probes(metrics: &Metrics, service: Option<&ProbeService>) -> Response {
    let mut body = metrics.encode();
    if let Some(service) = service {
        let probes = service.render_scheduled();
        let at = body.rfind("# EOF").unwrap_or(body.len());
        body.insert_str(at, &probes);
    }
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

async fn sidecar_metrics(State(s): State<SidecarState>) -> Response {
    metrics_with_probes(&s.metrics, Some(&s.service))
}

/// Starts the sidecar; `listener` overrides `probes.listen_address` (tests bind port 0).
pub async fn start(probes: Probes, listener: Option<TcpListener>) -> std::io::Result<RunningSidecar> {
    install_crypto_provider();
    for u in &probes.unsupported {
        tracing::warn!(setting = %u, "blackbox.yml setting accepted but not supported by promfed: ignored");
    }
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(probes.listen).await?,
    };
    let address = listener.local_addr()?;
    let service = ProbeService::new(probes);
    let metrics = Arc::new(Metrics::new());
    let state = SidecarState { service: service.clone(), metrics };
    let app = axum::Router::new()
        .route("/metrics", get(sidecar_metrics))
        .route("/-/healthy", get(|| async { "promfed sidecar is Healthy.\n" }))
        .with_state(state)
        .merge(service.routes());
    let token = CancellationToken::new();
    let mut tasks = JoinSet::new();
    tasks.spawn({
        let (s, t) = (service.clone(), token.clone());
        async move {
            s.run_scheduled(t).await;
            ("scheduled probes", Ok(()))
        }
    });
    tasks.spawn({
        let t = token.clone();
        async move {
            let r = crate::serve::serve(listener, None, app, ServeOptions::default(), t).await;
            ("listener", r.map_err(|e| e.to_string()))
        }
    });
    tracing::info!(%address, "promfed sidecar serving /probe");
    Ok(RunningSidecar { address, service, token, tasks })
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
