//! Prometheus' status endpoints, for the people and tools that reach for them:
//!
//! - `GET /api/v1/status/config`: the loaded config as YAML, secrets shown as `<secret>`;
//! - `GET /api/v1/status/flags`: the command line's flags, by Prometheus-style name;
//! - `GET /api/v1/targets?state=active|dropped|any&scrapePool=GROUP`: every replica as a target
//!   (`scrapePool` is the group), with health, last scrape, duration and error; discovered
//!   targets that could not become replicas as dropped targets, with the reason.
//!
//! The shapes are Prometheus 2.42's; fields beyond them (`leader`, `reason`) are promfed's.

use super::state::{ApiError, AppState, Envelope, success};
use crate::clock::rfc3339_ms;
use crate::config::units::PromDuration;
use crate::config::{Config, Group};
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

fn current(state: &AppState) -> Option<Arc<Config>> {
    state.reload.as_ref().map(|r| r.current())
}

pub async fn config(State(state): State<AppState>) -> Json<Envelope<Value>> {
    let yaml = current(&state).map(|c| crate::config::shown::redacted_yaml(&c.file)).unwrap_or_default();
    success(json!({ "yaml": yaml }))
}

pub async fn flags(State(state): State<AppState>) -> Json<Envelope<Value>> {
    let flags = current(&state).map(|c| c.flags.clone()).unwrap_or_default();
    success(json!(flags))
}

#[derive(Debug, Default, Deserialize)]
pub struct TargetsQuery {
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

pub async fn targets(
    State(state): State<AppState>,
    Query(q): Query<TargetsQuery>,
) -> Result<Json<Envelope<Value>>, ApiError> {
    let (active, dropped) = match q.state.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("any") => (true, true),
        Some("active") => (true, false),
        Some("dropped") => (false, true),
        Some(other) => {
            return Err(ApiError::Body(format!("state={other:?}: expected active, dropped or any")));
        }
    };
    let snapshot = state.store.fresh_snapshot().await.map_err(|_| ApiError::ShuttingDown)?;
    let config = current(&state);
    let mut active_targets = Vec::new();
    let mut dropped_targets = Vec::new();
    for g in &snapshot.groups {
        let s = &g.status;
        if q.scrape_pool.as_deref().is_some_and(|p| p != s.name) {
            continue;
        }
        let gc = config.as_ref().and_then(|c| c.groups.iter().find(|gc| gc.name == s.name));
        if active {
            for r in s.replicas.iter().filter(|r| r.active) {
                let role = r.role.to_string();
                let url = scrape_url(gc, &r.address);
                active_targets.push(json!({
                    "discoveredLabels": {
                        "__address__": r.address,
                        "__federation_role__": role,
                        "__federation_replica__": r.name,
                    },
                    "labels": {"instance": r.address, "job": s.name, "replica": r.name, "federation_role": role},
                    "scrapePool": s.name,
                    "scrapeUrl": url,
                    "globalUrl": url,
                    "lastError": r.last_error.clone().unwrap_or_default(),
                    "lastScrape": r.last_scrape_ms.map(rfc3339_ms).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                    "lastScrapeDuration": r.last_duration_seconds.unwrap_or(0.0),
                    "health": match r.healthy { Some(true) => "up", Some(false) => "down", None => "unknown" },
                    "scrapeInterval": gc.map(|g| PromDuration(g.scrape_interval).to_string()).unwrap_or_default(),
                    "scrapeTimeout": gc.map(|g| PromDuration(g.scrape_timeout).to_string()).unwrap_or_default(),
                    "leader": s.leader.as_deref() == Some(r.name.as_str()),
                }));
            }
        }
        if dropped {
            for rejected in &s.rejected_targets {
                let (address, reason) = rejected.split_once(": ").unwrap_or((rejected, ""));
                dropped_targets.push(json!({
                    "discoveredLabels": {"__address__": address, "job": s.name},
                    "scrapePool": s.name,
                    "reason": reason,
                }));
            }
        }
    }
    let mut data = serde_json::Map::new();
    if active {
        data.insert("activeTargets".into(), Value::Array(active_targets));
    }
    if dropped {
        data.insert("droppedTargets".into(), Value::Array(dropped_targets));
    }
    Ok(success(Value::Object(data)))
}

/// The URL a replica is scraped at, `match[]` selectors included.
fn scrape_url(group: Option<&Group>, address: &str) -> String {
    let Some(g) = group else { return format!("http://{address}/federate") };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(g.selectors.iter().map(|s| ("match[]", s.as_str())))
        .finish();
    format!("{}://{address}{}?{query}", g.scheme, g.path)
}
