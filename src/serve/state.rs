//! What the endpoints share: their state ([`AppState`]), their errors ([`ApiError`], mapped to
//! status codes in one place) and Prometheus' JSON envelope.

use super::tls::TlsReloader;
use crate::merge::{CommandError, StoreHandle};
use crate::reload::ReloadHandle;
use crate::remote::receive::Receiver;
use crate::render::Prerender;
use crate::selector::SelectorError;
use crate::telemetry::Metrics;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: StoreHandle,
    pub metrics: Arc<Metrics>,
    /// The server certificate, for the reload counters on `/metrics`.
    pub tls: Option<Arc<TlsReloader>>,
    /// Config reload (`POST /-/reload`); `None` in tests that need none.
    pub reload: Option<ReloadHandle>,
    /// Told which full-body formats scrapers ask for, to render them ahead.
    pub prerender: Arc<Prerender>,
    /// The Remote-Write receiver, when configured.
    pub receiver: Option<Arc<Receiver>>,
    /// The probes (`GET /probe`, scheduled probes), when a `probes:` section is configured.
    pub probes: Option<Arc<crate::sidecar::ProbeService>>,
    /// The Prometheus query API over the groups' merged history, when groups or a Remote-Write
    /// receiver are configured.
    pub query: Option<Arc<crate::query::api::QueryApi>>,
}

/// Errors of the handlers, each with its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Selector(#[from] SelectorError),
    #[error("no match[] parameter given: /federate needs at least one selector, e.g. match[]={{__name__=~\".+\"}}")]
    NoSelector,
    #[error("not ready: no group has merged its first scrape yet")]
    NotReady,
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("invalid request body: {0}")]
    Body(String),
    #[error("promfed is shutting down")]
    ShuttingDown,
}

#[derive(Serialize)]
pub struct Envelope<T: Serialize> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "errorType")]
    error_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn success<T: Serialize>(data: T) -> Json<Envelope<T>> {
    Json(Envelope { status: "success", data: Some(data), error_type: None, error: None })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, kind) = match &self {
            ApiError::Selector(_) | ApiError::NoSelector | ApiError::Body(_) => (StatusCode::BAD_REQUEST, "bad_data"),
            ApiError::Command(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::NotReady | ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let body: Envelope<()> =
            Envelope { status: "error", data: None, error_type: Some(kind), error: Some(self.to_string()) };
        (code, Json(body)).into_response()
    }
}
