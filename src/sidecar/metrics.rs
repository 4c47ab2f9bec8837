//! promfed's `/metrics` with the sidecar's series added: the scheduled probes' and the dashboard
//! sync's, before OpenMetrics' `# EOF`.

use super::dashboards::DashboardSync;
use super::service::ProbeService;
use crate::telemetry::Metrics;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `/metrics` of promfed with the scheduled probes' series added before OpenMetrics' `# EOF`.
pub fn metrics_with_probes(metrics: &Metrics, service: Option<&ProbeService>) -> Response {
    metrics_with(metrics, service, None)
}

/// `/metrics` of promfed with the scheduled probes' and the dashboard sync's series.
pub fn metrics_with(metrics: &Metrics, service: Option<&ProbeService>, dashboards: Option<&DashboardSync>) -> Response {
    let mut body = metrics.encode();
    let mut extra = service.map(ProbeService::render_scheduled).unwrap_or_default();
    if let Some(d) = dashboards {
        extra.push_str(&d.render());
    }
    let at = body.rfind("# EOF").unwrap_or(body.len());
    body.insert_str(at, &extra);
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
