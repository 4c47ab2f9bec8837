//! Rendering served series as a `/federate` body: text format 0.0.4 or length-delimited
//! `MetricFamily` protobuf, optionally gzip-compressed.
//!
//! The text renderer writes each series' canonical key as it is stored (it already is the text
//! form of the series) followed by the value and the timestamp: rendering is a copy, a float
//! format and an integer format per series. Like Prometheus' own `/federate`, a `# TYPE` line
//! opens each metric family and carries `untyped` unless the upstream declared a counter or
//! gauge for exactly that name.

use crate::merge::SnapEntry;
use crate::parse::MetricType;
use crate::parse::proto;
use crate::series::{labels_of, name_of, unescape_label_value};
use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;
use std::io::Write;

/// Content type of text bodies.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of protobuf bodies.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Appends a float as Prometheus' text format writes it (`NaN`, `+Inf`, `-Inf`; integers
/// without a fraction).
pub fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v == v.trunc() && v.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    }
}

/// Renders entries (sorted by key) as text; returns the number of series written.
pub fn render_text<'a>(entries: impl Iterator<Item = &'a SnapEntry>, out: &mut Vec<u8>) -> u64 {
    let mut count = 0;
    let mut family: &str = "";
    let mut itoa_buf = itoa::Buffer::new();
    for e in entries {
        let name = name_of(&e.key);
        if name != family || count == 0 {
            out.extend_from_slice(b"# TYPE ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(e.render_type.as_str().as_bytes());
            out.push(b'\n');
            family = name;
        }
        out.extend_from_slice(e.key.as_bytes());
        out.push(b' ');
        write_value(out, e.value);
        out.push(b' ');
        out.extend_from_slice(itoa_buf.format(e.ts).as_bytes());
        out.push(b'\n');
        count += 1;
    }
    count
}

fn proto_type(t: MetricType) -> proto::MetricType {
    match t {
        MetricType::Counter => proto::MetricType::Counter,
        MetricType::Gauge => proto::MetricType::Gauge,
        _ => proto::MetricType::Untyped,
    }
}

/// Renders entries (sorted by key) as length-delimited `MetricFamily` messages; returns the
/// number of series written.
pub fn render_protobuf<'a>(entries: impl Iterator<Item = &'a SnapEntry>, out: &mut Vec<u8>) -> u64 {
    let mut count = 0;
    let mut current: Option<proto::MetricFamily> = None;
    let flush = |family: proto::MetricFamily, out: &mut Vec<u8>| {
        // Encoding into a Vec cannot fail.
        let _ = family.encode_length_delimited(out);
    };
    for e in entries {
        let name = name_of(&e.key);
        if current.as_ref().is_none_or(|f| f.name.as_deref() != Some(name)) {
            if let Some(f) = current.take() {
                flush(f, out);
            }
            current = Some(proto::MetricFamily {
                name: Some(name.to_owned()),
                r#type: Some(proto_type(e.render_type) as i32),
                ..Default::default()
            });
        }
        let label = labels_of(&e.key)
            .map(|(n, v)| proto::LabelPair {
                name: Some(n.to_owned()),
                value: Some(unescape_label_value(v).into_owned()),
            })
            .collect();
        let mut metric = proto::Metric { label, timestamp_ms: Some(e.ts), ..Default::default() };
        match e.render_type {
            MetricType::Counter => metric.counter = Some(proto::Counter { value: Some(e.value), ..Default::default() }),
            MetricType::Gauge => metric.gauge = Some(proto::Gauge { value: Some(e.value) }),
            _ => metric.untyped = Some(proto::Untyped { value: Some(e.value) }),
        }
        if let Some(f) = current.as_mut() {
            f.metric.push(metric);
        }
        count += 1;
    }
    if let Some(f) = current.take() {
        flush(f, out);
    }
    count
}

/// Gzip at the fastest level: bodies are compressed once per snapshot and size matters less
/// than time-to-first-byte on a loaded appliance.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 6), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{RawLabel, Sink, parse_protobuf_delimited, parse_text};
    use std::sync::Arc;

    fn entry(key: &str, value: f64, ts: i64, t: MetricType) -> SnapEntry {
        SnapEntry { key: Arc::from(key), ts, value, render_type: t }
    }

    type Sample = (String, Vec<(String, String)>, f64, Option<i64>);

    #[derive(Default)]
    struct Collect(Vec<Sample>, Vec<(String, MetricType)>);
    impl Sink for Collect {
        fn family(&mut self, family: &str, t: MetricType) {
            self.1.push((family.to_owned(), t));
        }
        fn sample(&mut self, name: &str, labels: &[RawLabel<'_>], value: f64, ts: Option<i64>) {
            let labels = labels
                .iter()
                .map(|l| {
                    let v = if l.escaped { unescape_label_value(l.value).into_owned() } else { l.value.to_owned() };
                    (l.name.to_owned(), v)
                })
                .collect();
            self.0.push((name.to_owned(), labels, value, ts));
        }
    }

    fn sample_entries() -> Vec<SnapEntry> {
        vec![
            entry(r#"a:b:rate5m{job="x"}"#, 0.5, 1000, MetricType::Untyped),
            entry(r#"http_requests_total{code="200",path="/a\"b\\c\nd"}"#, 1e20, 2000, MetricType::Counter),
            entry(r#"http_requests_total{code="500"}"#, 3.0, 2000, MetricType::Counter),
            entry("temp", f64::NAN, -5, MetricType::Gauge),
            entry(r#"z{le="+Inf"}"#, f64::NEG_INFINITY, 7, MetricType::Untyped),
        ]
    }

    #[test]
    fn text_output_is_exact() {
        let mut out = Vec::new();
        assert_eq!(render_text(sample_entries().iter(), &mut out), 5);
        let expected = "# TYPE a:b:rate5m untyped\n\
            a:b:rate5m{job=\"x\"} 0.5 1000\n\
            # TYPE http_requests_total counter\n\
            http_requests_total{code=\"200\",path=\"/a\\\"b\\\\c\\nd\"} 1e20 2000\n\
            http_requests_total{code=\"500\"} 3 2000\n\
            # TYPE temp gauge\n\
            temp NaN -5\n\
            # TYPE z untyped\n\
            z{le=\"+Inf\"} -Inf 7\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn text_and_protobuf_parse_back_to_the_same_samples() {
        let entries = sample_entries();
        let mut text = Vec::new();
        render_text(entries.iter(), &mut text);
        let mut pb = Vec::new();
        render_protobuf(entries.iter(), &mut pb);
        let mut a = Collect::default();
        parse_text(&text, &mut a).unwrap();
        let mut b = Collect::default();
        parse_protobuf_delimited(&pb, &mut b).unwrap();
        assert_eq!(a.0.len(), 5);
        assert_eq!(a.1, b.1, "same families and types");
        for (x, y) in a.0.iter().zip(&b.0) {
            assert_eq!((&x.0, &x.1, x.3), (&y.0, &y.1, y.3));
            assert!(x.2 == y.2 || (x.2.is_nan() && y.2.is_nan()));
        }
        assert_eq!(a.0[1].1[1].1, "/a\"b\\c\nd");
    }

    #[test]
    fn values_format_like_prometheus() {
        let f = |v: f64| {
            let mut o = Vec::new();
            write_value(&mut o, v);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(f(42.0), "42");
        assert_eq!(f(-3.0), "-3");
        assert_eq!(f(0.25), "0.25");
        assert_eq!(f(1.7686e-05).parse::<f64>().unwrap(), 1.7686e-05);
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(1e300), "1e300");
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let body = b"x 1 2\n".repeat(1000);
        let z = gzip(&body);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, body);
        assert!(z.len() < body.len() / 10);
    }
}
