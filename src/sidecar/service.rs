//! The probe service shared by `promfed serve` and `promfed sidecar`: `GET /probe` with
//! blackbox_exporter's semantics, the scheduled probes and their state, `GET /api/v1/probes`,
//! and the scheduled probes' series for `/metrics`.
//!
//! `/probe` (blackbox_exporter 0.23's `handler`): `module` defaults to `http_2xx`; an unknown
//! module is a 400 `Unknown module "x"`; an unparsable `X-Prometheus-Scrape-Timeout-Seconds`
//! a 500; no `target` a 400 `Target parameter is missing`. The timeout is the header's value
//! (120 s without one) minus `timeout_offset`, replaced by the module's timeout when that is set
//! and shorter (or when the difference is negative). A failed probe is a 200 with
//! `probe_success 0`; `debug=true` returns the probe's log, the metrics and the module instead.

use super::probe::{self, ProbeParams, ProbeResult};
use crate::config::probes::{Probes, Scheduled};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Probes at once over `/probe` (more wait): bounds sockets and memory under a scrape storm.
const MAX_CONCURRENT_PROBES: usize = 256;

/// The probe service.
pub struct ProbeService {
    probes: Probes,
    scheduled: Vec<ScheduledState>,
    permits: tokio::sync::Semaphore,
}

struct ScheduledState {
    spec: Scheduled,
    history: Mutex<VecDeque<ProbeResult>>,
}

/// One scheduled probe in `GET /api/v1/probes`.
#[derive(Serialize)]
pub struct ScheduledStatus {
    pub target: String,
    pub module: String,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    /// Newest first.
    pub history: Vec<HistoryEntry>,
}

/// One past result.
#[derive(Serialize)]
pub struct HistoryEntry {
    pub timestamp: f64,
    pub success: bool,
    pub duration_seconds: f64,
    pub failure: Option<probe::Failure>,
    pub status_code: Option<f64>,
    pub ssl_earliest_cert_expiry: Option<f64>,
}

impl ProbeService {
    pub fn new(probes: Probes) -> Arc<Self> {
        let scheduled = probes
            .scheduled
            .iter()
            .map(|s| ScheduledState { spec: s.clone(), history: Mutex::new(VecDeque::new()) })
            .collect();
        Arc::new(ProbeService { probes, scheduled, permits: tokio::sync::Semaphore::new(MAX_CONCURRENT_PROBES) })
    }

    /// The routes: `GET /probe`, `GET /api/v1/probes`.
    pub fn routes<S>(self: &Arc<Self>) -> Router<S> {
        Router::new()
            .route("/probe", get(probe_handler))
            .route("/api/v1/probes", get(status_handler))
            .with_state(self.clone())
    }

    /// Runs every scheduled probe until `token` is cancelled.
    pub async fn run_scheduled(self: Arc<Self>, token: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..self.scheduled.len() {
            let (me, token) = (self.clone(), token.clone());
            tasks.spawn(async move { me.run_one(i, token).await });
        }
        while tasks.join_next().await.is_some() {}
        // With no scheduled probe this task still lives until shutdown: the supervisor takes an
        // early end for a failure.
        token.cancelled().await;
    }

    async fn run_one(&self, i: usize, token: CancellationToken) {
        let state = &self.scheduled[i];
        let spec = &state.spec;
        let Some(module) = self.probes.modules.modules.get(&spec.module) else { return };
        // Spread the first runs over the first interval, so many probes do not start at once.
        let spread = Duration::from_millis(fastrand::u64(0..spec.interval.as_millis().max(1) as u64) / 4);
        let mut next = tokio::time::Instant::now() + spread;
        let params = ProbeParams::default();
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            next += spec.interval;
            let result = tokio::select! {
                _ = token.cancelled() => return,
                r = probe::run(&spec.target, &spec.module, module, spec.timeout, &params) => r,
            };
            if !result.success {
                tracing::debug!(target = %spec.target, module = %spec.module, failure = ?result.failure, "scheduled probe failed");
            }
            if let Ok(mut h) = state.history.lock() {
                h.push_front(result);
                h.truncate(self.probes.history);
            }
            // A probe slower than its interval runs again at once, never twice at a time.
            let now = tokio::time::Instant::now();
            if next < now {
                next = now;
            }
        }
    }

    /// The scheduled probes' latest results as text exposition lines, labels `module` and
    /// `target` first; families merged across probes.
    pub fn render_scheduled(&self) -> String {
        let mut samples: Vec<(probe::Sample, String, String)> = Vec::new();
        for s in &self.scheduled {
            let Ok(h) = s.history.lock() else { continue };
            if let Some(latest) = h.front() {
                for sample in &latest.samples {
                    samples.push((sample.clone(), s.spec.module.clone(), s.spec.target.clone()));
                }
            }
        }
        samples.sort_by(|a, b| a.0.name.cmp(b.0.name));
        let mut out = String::new();
        let mut last = "";
        for (sample, module, target) in &samples {
            let mut piece = String::new();
            probe::render(std::slice::from_ref(sample), &[("module", module), ("target", target)], &mut piece);
            if last == sample.name {
                // Keep only the sample line: HELP and TYPE were written for this family.
                piece = piece.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
            }
            last = sample.name;
            out.push_str(&piece);
        }
        out
    }

    /// `GET /api/v1/probes`'s data.
    pub fn status(&self) -> Vec<ScheduledStatus> {
        self.scheduled
            .iter()
            .map(|s| ScheduledStatus {
                target: s.spec.target.clone(),
                module: s.spec.module.clone(),
                interval_seconds: s.spec.interval.as_secs_f64(),
                timeout_seconds: s.spec.timeout.as_secs_f64(),
                history: s
                    .history
                    .lock()
                    .map(|h| {
                        h.iter()
                            .map(|r| HistoryEntry {
                                timestamp: r.timestamp,
                                success: r.success,
                                duration_seconds: r.duration_seconds,
                                failure: r.failure.clone(),
                                status_code: r.value("probe_http_status_code"),
                                ssl_earliest_cert_expiry: r.value("probe_ssl_earliest_cert_expiry"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The timeout of a `/probe` request (blackbox_exporter's `getTimeout`).
    pub fn timeout(&self, header: Option<&str>, module_timeout: Duration) -> Result<Duration, String> {
        let mut seconds = match header {
            Some(v) => v.trim().parse::<f64>().map_err(|e| format!("{e}"))?,
            None => 0.0,
        };
        if seconds == 0.0 {
            seconds = 120.0;
        }
        let max = seconds - self.probes.timeout_offset.as_secs_f64();
        let module = module_timeout.as_secs_f64();
        let chosen = if (module < max && module > 0.0) || max < 0.0 { module } else { max };
        Ok(Duration::from_secs_f64(chosen.max(0.0)))
    }
}

fn text(code: StatusCode, body: String) -> Response {
    let mut r = (code, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

async fn probe_handler(
    State(service): State<Arc<ProbeService>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let module_name = get("module").unwrap_or("http_2xx");
    let Some(module) = service.probes.modules.modules.get(module_name) else {
        return text(StatusCode::BAD_REQUEST, format!("Unknown module {module_name:?}\n"));
    };
    let header = headers.get("X-Prometheus-Scrape-Timeout-Seconds").and_then(|v| v.to_str().ok());
    let timeout = match service.timeout(header, module.timeout.0) {
        Ok(t) => t,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to parse timeout from Prometheus header: {e}\n"),
            );
        }
    };
    let Some(target) = get("target") else {
        return text(StatusCode::BAD_REQUEST, "Target parameter is missing\n".into());
    };
    let debug = get("debug") == Some("true");
    let probe_params = ProbeParams { hostname: get("hostname").map(str::to_owned) };
    let Ok(_permit) = service.permits.acquire().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    };
    let result = probe::run(target, module_name, module, timeout, &probe_params).await;
    let mut metrics = String::new();
    probe::render(&result.samples, &[], &mut metrics);
    if debug {
        let module_yaml = serde_saphyr::to_string(module).unwrap_or_else(|e| format!("(cannot print: {e})"));
        let body = format!(
            "Logs for the probe:\n{}\n\n\n\nMetrics that would have been returned:\n{metrics}\n\n\nModule configuration:\n{module_yaml}\n",
            result.log.join("\n")
        );
        return text(StatusCode::OK, body);
    }
    let mut r = metrics.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

#[derive(Serialize)]
struct Envelope<T> {
    status: &'static str,
    data: T,
}

async fn status_handler(State(service): State<Arc<ProbeService>>) -> Response {
    axum::Json(Envelope { status: "success", data: service.status() }).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(offset_ms: u64) -> Arc<ProbeService> {
        let c: crate::config::probes::ProbesConfig =
            serde_saphyr::from_str(&format!("{{modules: {{h: {{prober: http}}}}, timeout_offset: {offset_ms}ms}}"))
                .unwrap();
        ProbeService::new(c.check().unwrap())
    }

    #[test]
    fn timeout_is_blackbox_exporters() {
        let s = service(500);
        let secs = |h: Option<&str>, m: u64| s.timeout(h, Duration::from_secs(m)).unwrap().as_secs_f64();
        assert_eq!(secs(Some("10"), 0), 9.5);
        assert_eq!(secs(Some("10"), 5), 5.0);
        assert_eq!(secs(Some("10"), 30), 9.5);
        assert_eq!(secs(None, 0), 119.5);
        assert_eq!(secs(Some("0.2"), 3), 3.0);
        assert!(s.timeout(Some("x"), Duration::ZERO).is_err());
    }
}
