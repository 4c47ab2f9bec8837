//! The endpoints promfed serves, as one axum `Router`:
//!
//! - `GET /federate?match[]=…`: the merged series (text 0.0.4 or protobuf by `Accept`, gzip by
//!   `Accept-Encoding`), rendered once per snapshot and selector set;
//! - `GET /metrics`: promfed's own metrics;
//! - `GET /-/healthy`, `GET /-/ready` (ready once every group has merged a first scrape);
//! - `GET /api/v1/status/groups`: groups, replicas, health, leader, pin, last scrape and error;
//! - `GET /api/v1/status/ha`: the Remote-Write HA tracker's clusters and elected replicas;
//! - `GET /api/v1/status/config`, `/api/v1/status/flags`, `/api/v1/targets`: Prometheus' status
//!   endpoints ([`super::status`]);
//! - `POST /api/v1/write`: Remote-Write pushes, when the receiver is configured;
//! - `GET /probe`, `GET /api/v1/probes`: blackbox_exporter-compatible probes, when configured;
//! - `POST /api/v1/leader/{group}` `{"replica": "b"}` pins a leader, `DELETE` unpins.
//!
//! Errors are mapped to status codes in one place, [`ApiError`]'s `IntoResponse`.

pub use super::state::{ApiError, AppState};
use super::state::{Envelope, success};
use crate::merge::{Command, CommandError, GroupStatus};
use crate::render::{PROTOBUF_CONTENT_TYPE, TEXT_CONTENT_TYPE, federate_body};
use crate::selector::SelectorSet;
use crate::telemetry::{FormatLabels, RequestLabels};
use axum::extract::{MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    if let Some(receiver) = &state.receiver {
        router = router.route(
            "/api/v1/write",
            post(remote_write).layer(axum::extract::DefaultBodyLimit::max(receiver.max_body_size())),
        );
    }
    if let Some(query) = &state.query {
        router = router.merge(crate::query::api::routes(query.clone()));
    }
    if let Some(probes) = &state.probes {
        router = router.merge(probes.routes());
    }
    router
        .route("/federate", get(federate))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "promfed is Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/api/v1/status/groups", get(status_groups))
        .route("/api/v1/status/ha", get(status_ha))
        .route("/api/v1/status/config", get(super::status::config))
        .route("/api/v1/status/flags", get(super::status::flags))
        .route("/api/v1/targets", get(super::status::targets))
        .route("/api/v1/leader/{group}", post(pin).delete(unpin))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts every request by route and status code, and times it.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let handler =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "other".into());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = RequestLabels { handler, code: response.status().as_u16().to_string() };
    state.metrics.http_requests.get_or_create(&labels).inc();
    state.metrics.http_request_duration_seconds.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    response
}

/// The `match[]` values of a query string, in order.
pub fn match_params(query: Option<&str>) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// False when one element of an `Accept` or `Accept-Encoding` list carries a zero quality value
/// (`q=0`, `q=0.000`: "not acceptable", RFC 9110 §12.4.2). Any other value, `q=0.5` included,
/// accepts; an unparsable one is ignored.
fn quality_is_positive(element: &str) -> bool {
    element.split(';').skip(1).all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("q") => {
            !matches!(value.trim().parse::<f32>(), Ok(q) if q <= 0.0)
        }
        _ => true,
    })
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|part| {
            let part = part.trim();
            part.starts_with("application/vnd.google.protobuf")
                && part.contains("proto=io.prometheus.client.MetricFamily")
                && part.contains("encoding=delimited")
                && quality_is_positive(part)
        })
    })
}

fn wants_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|p| {
            p.split(';').next().is_some_and(|c| c.trim().eq_ignore_ascii_case("gzip")) && quality_is_positive(p)
        })
    })
}

async fn federate(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let raw = match_params(query.as_deref());
    if raw.is_empty() {
        return Err(ApiError::NoSelector);
    }
    let selectors = SelectorSet::parse(raw.iter().map(String::as_str))?;
    let snapshot = state.store.fresh_snapshot().await.map_err(|_| ApiError::ShuttingDown)?;
    if !snapshot.ready {
        return Err(ApiError::NotReady);
    }
    let protobuf = wants_protobuf(&headers);
    let gzipped = wants_gzip(&headers);
    if selectors.matches_everything() {
        state.prerender.asked(protobuf, gzipped);
    }
    // Rendering a large snapshot takes milliseconds of CPU: not on the async workers.
    let body = tokio::task::spawn_blocking(move || federate_body(&snapshot, &selectors, &raw, protobuf, gzipped))
        .await
        .map_err(|_| ApiError::ShuttingDown)?;
    let labels = FormatLabels {
        format: if protobuf { "protobuf" } else { "text" }.into(),
        encoding: if gzipped { "gzip" } else { "identity" }.into(),
    };
    state.metrics.federate_bytes.get_or_create(&labels).inc_by(body.bytes.len() as u64);
    state.metrics.federate_series.inc_by(body.series);
    let mut response = body.bytes.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if protobuf { PROTOBUF_CONTENT_TYPE } else { TEXT_CONTENT_TYPE }),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

async fn remote_write(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match &state.receiver {
        Some(receiver) => receiver.write(&headers, body).await.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(tls) = &state.tls {
        let sync = |c: &prometheus_client::metrics::counter::Counter, total: u64| {
            let seen = c.get();
            if total > seen {
                c.inc_by(total - seen);
            }
        };
        sync(&state.metrics.tls_reloads, tls.reloads_total());
        sync(&state.metrics.tls_reload_failures, tls.reload_failures_total());
        sync(&state.metrics.tls_handshake_failures, tls.handshake_failures_total());
    }
    crate::sidecar::metrics::metrics_with_probes(&state.metrics, state.probes.as_deref())
}

async fn ready(State(state): State<AppState>) -> Response {
    let snapshot = state.store.snapshot();
    if snapshot.ready {
        (StatusCode::OK, "promfed is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "promfed is not ready: waiting for the first merge of every group.\n")
            .into_response()
    }
}

/// `POST /-/reload`: 200 when the new config runs; 500 with every problem otherwise (as
/// Prometheus answers), the old config still running.
async fn reload(State(state): State<AppState>) -> Response {
    let Some(reload) = &state.reload else {
        return (StatusCode::SERVICE_UNAVAILABLE, "reload is not available\n").into_response();
    };
    match reload.reload().await {
        Ok(()) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        // As Prometheus answers a reload it does not allow (403, "Lifecycle API is not
        // enabled"): not a failure of promfed, and the message says what to do.
        Err(e @ crate::reload::ReloadError::NoFile) => (StatusCode::FORBIDDEN, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response(),
    }
}

async fn status_groups(State(state): State<AppState>) -> Result<Json<Envelope<Vec<GroupStatus>>>, ApiError> {
    let snapshot = state.store.fresh_snapshot().await.map_err(|_| ApiError::ShuttingDown)?;
    Ok(success(snapshot.groups.iter().map(|g| g.status.clone()).collect()))
}

async fn status_ha(State(state): State<AppState>) -> Json<Envelope<Vec<crate::remote::ha::ClusterStatus>>> {
    success(state.receiver.as_ref().map(|r| r.clusters()).unwrap_or_default())
}

/// Body of `POST /api/v1/leader/{group}`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    pub replica: String,
}

async fn pin(State(state): State<AppState>, Path(group): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let req: PinRequest = serde_json::from_slice(&body).map_err(|e| ApiError::Body(e.to_string()))?;
    run(&state, Command::Pin { group: group.clone(), replica: req.replica }).await?;
    group_status(&state, &group)
}

async fn unpin(State(state): State<AppState>, Path(group): Path<String>) -> Result<Response, ApiError> {
    run(&state, Command::Unpin { group: group.clone() }).await?;
    group_status(&state, &group)
}

async fn run(state: &AppState, command: Command) -> Result<(), ApiError> {
    state.store.command(command).await.map_err(|_| ApiError::ShuttingDown)??;
    Ok(())
}

fn group_status(state: &AppState, group: &str) -> Result<Response, ApiError> {
    let snapshot = state.store.snapshot();
    let g = snapshot.group(group).ok_or_else(|| CommandError::NoSuchGroup(group.to_owned()))?;
    Ok(success(g.status.clone()).into_response())
}
