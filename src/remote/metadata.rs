//! Metric metadata for a remote-write destination (Prometheus' `metadata_config`): the type of
//! every metric family the destination was sent, in requests of their own every
//! `send_interval`, as Prometheus sends the metadata of its targets.
//!
//! promfed knows a family's type from the `# TYPE` lines its replicas serve, not its help or
//! unit, which `/federate` does not carry: those are sent empty. Like Prometheus' own
//! federation, promfed keeps a type only for counters and gauges whose series bear the family's
//! name; untyped families are not sent (there is nothing to say about them). Prometheus 2.42's
//! `/federate` calls every family untyped, so behind such replicas there is usually nothing to
//! send: the types come from replicas that serve them. Families not seen for [`FORGET_AFTER`]
//! are no longer sent.

use super::proto::{MetadataType, MetricMetadata, WriteRequest};
use crate::merge::Emitted;
use crate::parse::MetricType;
use prost::Message as _;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A family not emitted for this long is dropped from the metadata sent.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What a destination keeps to send its metadata.
pub struct Families {
    interval: Duration,
    max_per_send: usize,
    /// Family name → its type and when a series of it was last emitted.
    known: HashMap<Box<str>, (MetricType, Instant)>,
    next: Instant,
    /// Per schema id, the batch in which it was seen last: a batch's families are read once per
    /// schema, not once per series.
    seen: Vec<u64>,
    batches: u64,
}

impl Families {
    /// Sends every `interval`, at most `max_per_send` entries a request; the first send is one
    /// interval after the start.
    pub fn new(interval: Duration, max_per_send: usize) -> Families {
        Families {
            interval,
            max_per_send: max_per_send.max(1),
            known: HashMap::new(),
            next: Instant::now() + interval,
            seen: Vec::new(),
            batches: 0,
        }
    }

    /// New settings (a reload); what is known stays.
    pub fn reconfigure(&mut self, interval: Duration, max_per_send: usize) {
        if interval != self.interval {
            self.next = Instant::now() + interval;
        }
        self.interval = interval;
        self.max_per_send = max_per_send.max(1);
    }

    /// Notes the families of the series in `batch`.
    pub fn observe(&mut self, batch: &Emitted) {
        self.batches += 1;
        let now = Instant::now();
        if self.seen.len() < batch.schemas.len() {
            self.seen.resize(batch.schemas.len(), 0);
        }
        for e in &batch.entries {
            let Some(seen) = self.seen.get_mut(e.schema as usize) else { continue };
            if *seen == self.batches {
                continue;
            }
            *seen = self.batches;
            if e.render_type == MetricType::Untyped {
                continue;
            }
            let family = family_name(batch.key(e).name(), e.render_type);
            match self.known.get_mut(family) {
                Some(entry) => *entry = (e.render_type, now),
                None => {
                    self.known.insert(family.into(), (e.render_type, now));
                }
            }
        }
    }

    /// When a send is due: the requests to send (uncompressed `WriteRequest`s holding only
    /// metadata, sorted by family), and the number of entries in them.
    pub fn due(&mut self, now: Instant) -> Option<(Vec<Vec<u8>>, usize)> {
        if now < self.next {
            return None;
        }
        self.next = now + self.interval;
        self.known.retain(|_, (_, at)| now.duration_since(*at) < FORGET_AFTER);
        if self.known.is_empty() {
            return None;
        }
        let mut all: Vec<(&str, MetricType)> = self.known.iter().map(|(k, (t, _))| (&**k, *t)).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let entries = all.len();
        let requests = all
            .chunks(self.max_per_send)
            .map(|chunk| {
                WriteRequest {
                    timeseries: Vec::new(),
                    metadata: chunk
                        .iter()
                        .map(|(name, t)| MetricMetadata {
                            r#type: metadata_type(*t) as i32,
                            metric_family_name: (*name).to_owned(),
                            help: String::new(),
                            unit: String::new(),
                        })
                        .collect(),
                }
                .encode_to_vec()
            })
            .collect();
        Some((requests, entries))
    }
}

/// The family a series belongs to: histogram and summary series carry a suffix their family
/// name does not (`_bucket`, `_sum`, `_count`; `_created` in OpenMetrics).
pub fn family_name(series: &str, t: MetricType) -> &str {
    let suffixes: &[&str] = match t {
        MetricType::Histogram | MetricType::GaugeHistogram => &["_bucket", "_sum", "_count", "_created"],
        MetricType::Summary => &["_sum", "_count", "_created"],
        _ => &[],
    };
    suffixes.iter().find_map(|s| series.strip_suffix(s).filter(|f| !f.is_empty())).unwrap_or(series)
}

fn metadata_type(t: MetricType) -> MetadataType {
    match t {
        MetricType::Counter => MetadataType::Counter,
        MetricType::Gauge => MetadataType::Gauge,
        MetricType::Histogram => MetadataType::Histogram,
        MetricType::GaugeHistogram => MetadataType::Gaugehistogram,
        MetricType::Summary => MetadataType::Summary,
        MetricType::Info => MetadataType::Info,
        MetricType::StateSet => MetadataType::Stateset,
        MetricType::Untyped => MetadataType::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_and_summary_series_belong_to_their_family() {
        assert_eq!(family_name("http_seconds_bucket", MetricType::Histogram), "http_seconds");
        assert_eq!(family_name("http_seconds_count", MetricType::Histogram), "http_seconds");
        assert_eq!(family_name("rpc_sum", MetricType::Summary), "rpc");
        assert_eq!(family_name("rpc", MetricType::Summary), "rpc");
        assert_eq!(family_name("jobs_count", MetricType::Gauge), "jobs_count");
        assert_eq!(family_name("_count", MetricType::Histogram), "_count");
    }

    #[test]
    fn requests_hold_at_most_max_per_send_entries_and_come_once_per_interval() {
        let mut f = Families::new(Duration::from_secs(60), 2);
        let now = Instant::now();
        for (name, t) in [("a_total", MetricType::Counter), ("b", MetricType::Gauge), ("c", MetricType::Untyped)] {
            f.known.insert(name.into(), (t, now));
        }
        assert!(f.due(now).is_none(), "not before the first interval");
        let (requests, entries) = f.due(now + Duration::from_secs(60)).unwrap();
        assert_eq!((requests.len(), entries), (2, 3));
        let first = WriteRequest::decode(&requests[0][..]).unwrap();
        assert!(first.timeseries.is_empty());
        let names: Vec<(&str, i32)> =
            first.metadata.iter().map(|m| (m.metric_family_name.as_str(), m.r#type)).collect();
        assert_eq!(names, [("a_total", MetadataType::Counter as i32), ("b", MetadataType::Gauge as i32)]);
        assert!(f.due(now + Duration::from_secs(61)).is_none(), "once per interval");
        // Families not emitted for FORGET_AFTER are no longer sent.
        assert!(f.due(now + FORGET_AFTER + Duration::from_secs(120)).is_none());
    }
}
