//! `POST /api/v1/write`: Prometheus Remote-Write 1.0 pushes into the merged store.
//!
//! A request is checked whole before anything is stored: headers, body size (413, enforced by
//! the router's body limit), snappy (400; 413 when its header announces more than
//! `max_decoded_size`), protobuf and the spec's label rules (400; 413 for the size limits). Then,
//! per (cluster, replica) in the request, the HA tracker decides: series of a non-elected replica
//! are dropped and counted (answered 202 when nothing of the request was taken, as Mimir does),
//! the rest enter the store as pushes of group `push/<cluster>` (`push` without a cluster label)
//! with the replica label removed. The answer (204) is sent once the store has applied them, so a
//! 2xx means the samples are in the merged view. Only a store that is shutting down gives 5xx
//! (503: retry).
//!
//! Remote-Write 2.0 (`io.prometheus.write.v2.Request`) is not implemented: such requests get
//! 415, which tells a 2.0 sender to fall back to 1.0.

use super::decode::{self, DecodeError};
use super::ha::{Decision, HaTracker};
use crate::clock::now_ms;
use crate::config::Receiver as Settings;
use crate::merge::group::push::NO_REPLICA;
use crate::merge::{Push, StoreHandle};
use crate::parse::{MetricType, Sink};
use crate::series::{BatchBuilder, Identity};
use crate::telemetry::{ClusterLabels, ElectedLabels, Metrics, ReasonLabels};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;

/// Group name of pushes without a cluster label, and the prefix of the others.
pub const PUSH_GROUP: &str = "push";

/// The receiver: settings, the HA tracker and where samples go.
pub struct Receiver {
    settings: Settings,
    tracker: Option<HaTracker>,
    identity: Identity,
    store: StoreHandle,
    metrics: Arc<Metrics>,
}

/// What a request got: status and message.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        if self.message.is_empty() {
            return self.status.into_response();
        }
        (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.message + "\n").into_response()
    }
}

/// One (cluster, replica) of a request and the indices of its series.
struct Origin<'a> {
    cluster: Option<&'a str>,
    replica: Option<&'a str>,
    series: Vec<usize>,
}

impl Receiver {
    pub fn new(settings: Settings, store: StoreHandle, metrics: Arc<Metrics>) -> Self {
        let tracker = settings.ha.as_ref().map(|h| HaTracker::new(h.settings.clone()));
        let drop = settings.ha.as_ref().map(|h| vec![h.replica_label.clone()]).unwrap_or_default();
        Receiver { identity: Identity::new(drop, Vec::new(), true), settings, tracker, store, metrics }
    }

    /// The largest body the router lets through.
    pub fn max_body_size(&self) -> usize {
        self.settings.max_body_size
    }

    /// The HA tracker's clusters, for the status API.
    pub fn clusters(&self) -> Vec<super::ha::ClusterStatus> {
        self.tracker.as_ref().map(HaTracker::status).unwrap_or_default()
    }

    fn refuse(&self, status: StatusCode, reason: &str, message: String) -> Answer {
        self.metrics.remote_write_refused_requests.get_or_create(&ReasonLabels { reason: reason.to_owned() }).inc();
        tracing::debug!(%status, reason, %message, "remote-write request refused");
        Answer { status, message }
    }

    /// Handles one request.
    pub async fn write(&self, headers: &HeaderMap, body: Bytes) -> Answer {
        if let Some(refusal) = self.check_headers(headers) {
            return refusal;
        }
        let raw = match decode::decompress(&body, self.settings.limits.max_decoded_bytes) {
            Ok(raw) => raw,
            Err(e) => return self.refused_body(&e),
        };
        drop(body);
        let decoded = match decode::decode(&raw, &self.settings.limits) {
            Ok(d) => d,
            Err(e) => return self.refused_body(&e),
        };
        let m = &self.metrics;
        m.remote_write_samples_received.inc_by(decoded.sample_count() as u64);
        m.drop_samples("exemplar", decoded.exemplars);
        m.drop_samples("native_histogram_series", decoded.histogram_series);

        // Who sent what: usually one (cluster, replica) per request (they are external labels).
        let mut origins: Vec<Origin<'_>> = Vec::new();
        for (i, s) in decoded.series.iter().enumerate() {
            let labels = decoded.labels_of(s);
            let find = |name: &str| labels.iter().find(|l| l.name == name).map(|l| l.value);
            let (cluster, replica) = match &self.settings.ha {
                Some(h) => (find(&h.cluster_label), find(&h.replica_label)),
                None => (None, None),
            };
            match origins.iter_mut().find(|o| o.cluster == cluster && o.replica == replica) {
                Some(o) => o.series.push(i),
                None => origins.push(Origin { cluster, replica, series: vec![i] }),
            }
        }

        // Decide every origin before storing anything: a refusal refuses the whole request.
        let now = now_ms();
        let mut pushes = Vec::with_capacity(origins.len());
        let mut dropped_not_elected = 0u64;
        for o in &origins {
            let samples: u64 = o.series.iter().map(|&i| decoded.series[i].samples.len() as u64).sum();
            let (elected, fill_after_ms) = match (&self.tracker, o.cluster, o.replica) {
                (Some(tracker), Some(cluster), Some(replica)) => {
                    let decision = tracker.check(cluster, replica, now);
                    self.record(cluster, replica, &decision);
                    match decision {
                        Decision::TooManyClusters { limit } => {
                            m.drop_samples("too_many_clusters", samples);
                            return self.refuse(
                                StatusCode::BAD_REQUEST,
                                "too_many_clusters",
                                format!("cluster {cluster:?} is over the limit of {limit} HA clusters tracked"),
                            );
                        }
                        d if d.accepted() => (true, None),
                        _ => {
                            let fill = self.settings.ha.as_ref().and_then(|h| h.fill_after);
                            if fill.is_none() {
                                dropped_not_elected += samples;
                                continue;
                            }
                            (false, fill.map(|f| f.as_millis() as i64))
                        }
                    }
                }
                // Without both labels there is nothing to elect between: taken as is (Mimir).
                _ => (true, None),
            };
            let group = match o.cluster {
                Some(c) => format!("{PUSH_GROUP}/{c}"),
                None => PUSH_GROUP.to_owned(),
            };
            let mut builder = BatchBuilder::new(&self.identity, 64 * samples as usize);
            for &i in &o.series {
                let s = &decoded.series[i];
                let labels = decoded.labels_of(s);
                // The builder leaves `__name__` out of the key itself.
                let name = labels.iter().find(|l| l.name == "__name__").map_or("", |l| l.value);
                // Remote-Write 1.0 carries no types: kinds come from the name (`_total`…).
                builder.family(name, MetricType::Untyped);
                for &(ts, value) in decoded.samples_of(s) {
                    builder.sample(name, labels, value, Some(ts));
                }
            }
            let replica = o.replica.unwrap_or(NO_REPLICA).to_owned();
            pushes.push((group, Push { replica, elected, fill_after_ms, batch: builder.finish() }));
        }
        m.drop_samples("not_elected", dropped_not_elected);

        let taken = !pushes.is_empty();
        let lookback_ms = self.settings.lookback.as_millis() as i64;
        for (group, push) in pushes {
            match self.store.push(group, lookback_ms, push).await {
                Ok(stats) => {
                    m.drop_samples("too_old", stats.too_old);
                    m.drop_samples("stale_marker", stats.stale_markers);
                }
                Err(_) => {
                    return Answer {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        message: "promfed is shutting down; retry".into(),
                    };
                }
            }
        }
        if taken {
            Answer { status: StatusCode::NO_CONTENT, message: String::new() }
        } else {
            Answer {
                status: StatusCode::ACCEPTED,
                message: "samples from a replica that is not the elected one of its cluster: dropped".into(),
            }
        }
    }

    fn record(&self, cluster: &str, replica: &str, decision: &Decision) {
        let m = &self.metrics;
        match decision {
            Decision::Accept { elected_now: true } => {
                m.ha_elected_replica
                    .get_or_create(&ElectedLabels { cluster: cluster.to_owned(), replica: replica.to_owned() })
                    .set(1);
            }
            Decision::Failover { from } => {
                m.ha_elected_replica.remove(&ElectedLabels { cluster: cluster.to_owned(), replica: from.clone() });
                m.ha_elected_replica
                    .get_or_create(&ElectedLabels { cluster: cluster.to_owned(), replica: replica.to_owned() })
                    .set(1);
                m.ha_failovers.get_or_create(&ClusterLabels { cluster: cluster.to_owned() }).inc();
            }
            _ => {}
        }
    }

    fn refused_body(&self, e: &DecodeError) -> Answer {
        let status = if e.too_large() { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
        self.refuse(status, e.reason(), e.to_string())
    }

    /// `Content-Encoding: snappy` and `Content-Type: application/x-protobuf` (1.0) when given.
    fn check_headers(&self, headers: &HeaderMap) -> Option<Answer> {
        let get = |h: header::HeaderName| headers.get(h).map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase());
        if let Some(encoding) = get(header::CONTENT_ENCODING)
            && encoding.trim() != "snappy"
        {
            return Some(self.refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_encoding",
                format!("Content-Encoding {encoding:?}: only snappy is accepted"),
            ));
        }
        if let Some(content_type) = get(header::CONTENT_TYPE) {
            let mut parts = content_type.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            if media != "application/x-protobuf" {
                return Some(self.refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content_type",
                    format!("Content-Type {content_type:?}: expected application/x-protobuf"),
                ));
            }
            if let Some(proto) = parts.find_map(|p| p.strip_prefix("proto="))
                && proto != "prometheus.writerequest"
            {
                return Some(self.refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content_type",
                    format!("proto {proto:?} is not supported: send Remote-Write 1.0 (prometheus.WriteRequest)"),
                ));
            }
        }
        None
    }
}
