//! Rendering served series as a `/federate` body: text format 0.0.4 or length-delimited
//! `MetricFamily` protobuf, optionally gzip-compressed.
//!
//! The text renderer writes each series' canonical key from its compact form (the schema's
//! fixed pieces and the escaped values in turn, see [`crate::key`]) followed by the value and the
//! timestamp: rendering is a few copies, a float format and an integer format per series. Like Prometheus' own `/federate`, a `# TYPE` line
//! opens each metric family and carries `untyped` unless the upstream declared a counter or
//! gauge for exactly that name.

use crate::merge::snapshot::{Body, BodyKey, Served, Snapshot};
use crate::parse::MetricType;
use crate::parse::proto;
use crate::selector::SelectorSet;
use crate::series::unescape_label_value;
use crate::varint::{put_varint, varint_len};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where rendered bytes go: a plain body, or a gzip stream fed in chunks so that a gzip body
/// never needs the whole uncompressed body in memory (161 MB for 1M series).
enum Out {
    Plain(Vec<u8>),
    Gzip { buf: Vec<u8>, enc: GzEncoder<Vec<u8>> },
}

/// How much uncompressed output is buffered before it is fed to the compressor.
const GZIP_CHUNK: usize = 256 * 1024;

impl Out {
    /// Output of about `capacity` bytes (compressed, when gzipped).
    fn new(gzipped: bool, capacity: usize) -> Out {
        if gzipped {
            Out::Gzip {
                buf: Vec::with_capacity(GZIP_CHUNK + 64 * 1024),
                enc: GzEncoder::new(Vec::with_capacity(capacity), Compression::fast()),
            }
        } else {
            Out::Plain(Vec::with_capacity(capacity))
        }
    }

    /// The buffer to append to.
    fn buf(&mut self) -> &mut Vec<u8> {
        match self {
            Out::Plain(v) => v,
            Out::Gzip { buf, .. } => buf,
        }
    }

    /// Hands a full chunk to the compressor.
    fn maybe_flush(&mut self) {
        if let Out::Gzip { buf, enc } = self
            && buf.len() >= GZIP_CHUNK
        {
            // Writing into a Vec-backed encoder cannot fail.
            let _ = enc.write_all(buf);
            buf.clear();
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Out::Plain(v) => v,
            Out::Gzip { buf, mut enc } => {
                let _ = enc.write_all(&buf);
                enc.finish().unwrap_or_default()
            }
        }
    }
}

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
pub fn render_text<'a>(entries: impl Iterator<Item = Served<'a>>, out: &mut Vec<u8>) -> u64 {
    let mut o = Out::Plain(std::mem::take(out));
    let n = text_into(entries, &mut o);
    *out = o.finish();
    n
}

fn text_into<'a>(entries: impl Iterator<Item = Served<'a>>, o: &mut Out) -> u64 {
    let mut count = 0;
    let mut family: &str = "";
    let mut itoa_buf = itoa::Buffer::new();
    for e in entries {
        o.maybe_flush();
        let out = o.buf();
        let name = e.key.name();
        if name != family || count == 0 {
            out.extend_from_slice(b"# TYPE ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(e.render_type.as_str().as_bytes());
            out.push(b'\n');
            family = name;
        }
        e.key.write_to(out);
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
pub fn render_protobuf<'a>(entries: impl Iterator<Item = Served<'a>>, out: &mut Vec<u8>) -> u64 {
    let mut o = Out::Plain(std::mem::take(out));
    let n = protobuf_into(entries, &mut o);
    *out = o.finish();
    n
}

/// Writes the length-delimited `MetricFamily` messages straight from the compact keys.
///
/// Hand-written for the hot path: building prost structs (a `Metric`, and two `String`s for
/// each label) took 5 s for the first protobuf body of a million series, 50 times the text
/// renderer. The bytes are what prost writes for the same messages (fields in tag order,
/// optional fields present), which a test checks against prost.
fn protobuf_into<'a>(entries: impl Iterator<Item = Served<'a>>, o: &mut Out) -> u64 {
    let mut count = 0;
    // The open family: its name, type and encoded `metric` fields so far.
    let mut family: Option<(&str, MetricType)> = None;
    let mut metrics: Vec<u8> = Vec::new();
    let mut metric: Vec<u8> = Vec::with_capacity(256);
    let mut label: Vec<u8> = Vec::with_capacity(128);
    for e in entries {
        let name = e.key.name();
        if family.is_none_or(|(f, _)| f != name) {
            if let Some((f, t)) = family.take() {
                write_family(o, f, t, &metrics);
                metrics.clear();
            }
            family = Some((name, e.render_type));
        }
        metric.clear();
        for (n, v) in e.key.labels() {
            let v = unescape_label_value(v);
            label.clear();
            put_bytes(&mut label, 1, n.as_bytes());
            put_bytes(&mut label, 2, v.as_bytes());
            put_bytes(&mut metric, 1, &label);
        }
        // gauge = 2, counter = 3, untyped = 5; each a message holding `double value = 1`.
        let field = match e.render_type {
            MetricType::Counter => 3,
            MetricType::Gauge => 2,
            _ => 5,
        };
        put_key(&mut metric, field, 2);
        metric.push(9);
        metric.push(0x09);
        metric.extend_from_slice(&e.value.to_le_bytes());
        put_key(&mut metric, 6, 0);
        put_varint(&mut metric, e.ts as u64);
        put_bytes(&mut metrics, 4, &metric);
        count += 1;
    }
    if let Some((f, t)) = family {
        write_family(o, f, t, &metrics);
    }
    count
}

/// One length-delimited `MetricFamily`: `name = 1`, `type = 3`, then the `metric = 4` fields.
fn write_family(o: &mut Out, name: &str, t: MetricType, metrics: &[u8]) {
    let t = proto_type(t) as u64;
    let len = 1 + varint_len(name.len() as u64) + name.len() + 1 + varint_len(t) + metrics.len();
    let out = o.buf();
    put_varint(out, len as u64);
    put_bytes(out, 1, name.as_bytes());
    put_key(out, 3, 0);
    put_varint(out, t);
    out.extend_from_slice(metrics);
    o.maybe_flush();
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(out, u64::from(field << 3 | wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The canonical `match[]` list of a body cache key: a selector set that matches everything is
/// one key whatever its spelling (`{__name__=~".+"}`, `{__name__=~".*",job=~".*"}`…), so the
/// prerendered body serves every such scraper.
const EVERYTHING: &str = "{__name__=~\".+\"}";

/// The body for these selectors and format, from the snapshot's cache or rendered (once, even
/// when many requests ask at the same moment). `raw` are the `match[]` values as given.
pub fn federate_body(
    snapshot: &Snapshot,
    selectors: &SelectorSet,
    raw: &[String],
    protobuf: bool,
    gzipped: bool,
) -> Body {
    let all = selectors.matches_everything();
    let mut key_selectors = if all { vec![EVERYTHING.to_owned()] } else { raw.to_vec() };
    key_selectors.sort();
    key_selectors.dedup();
    let key = BodyKey { selectors: key_selectors, protobuf, gzip: gzipped };
    let variant = usize::from(2 * u8::from(protobuf) + u8::from(gzipped));
    snapshot.body(key, |snap| {
        let entries = snap.entries().filter(|e| all || selectors.matches_key(&e.key));
        let capacity = match LAST_FULL_BODY[variant].load(Ordering::Relaxed) {
            _ if !all => 4096,
            0 => snap.len() * 112 / if gzipped { 8 } else { 1 },
            last => last + last / 16,
        };
        let mut out = Out::new(gzipped, capacity);
        let series = if protobuf { protobuf_into(entries, &mut out) } else { text_into(entries, &mut out) };
        let mut bytes = out.finish();
        bytes.shrink_to_fit();
        if all {
            LAST_FULL_BODY[variant].store(bytes.len(), Ordering::Relaxed);
        }
        Body { bytes: Bytes::from(bytes), series }
    })
}

/// The size of the last full body (every series) of each variant (`2 * protobuf + gzip`). The
/// next one is about as big, so its buffer is allocated once at that size (+1/16) instead of
/// growing by doubling and being copied when shrunk: at 1M series a 160 MB text body grew into a
/// 224 MB buffer, and each 15 MB gzip body left some 20 MB of freed buffers resident in
/// malloc's arenas (docs/benchmarks.md, memory).
static LAST_FULL_BODY: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

/// Renders the full body of each new snapshot ahead of the scrapes that will ask for it, in the
/// formats scrapers asked for recently, so that no scrape waits for a render (a global
/// Prometheus scrapes promfed a few times between two merges at most: without this nearly every
/// scrape would be the first of its snapshot).
///
/// Each format (text or protobuf, plain or gzip) is followed on its own: the one asked most
/// recently is rendered first (a scrape of the new snapshot waits for at most its own render),
/// and one nobody asked for within [`PRERENDER_FOR_SECS`] is no longer rendered nor held (at 1M
/// series a plain text body is ~160 MB).
#[derive(Debug, Default)]
pub struct Prerender {
    /// Per variant (index `2 * protobuf + gzip`), when it was last asked for, in seconds since
    /// the epoch; 0: never.
    last_asked: [AtomicI64; 4],
}

/// Variants not asked for within this long stop being prerendered.
const PRERENDER_FOR_SECS: i64 = 600;

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The variants to render ahead at `now` (index `2 * protobuf + gzip`), most recently asked
/// first: those asked within [`PRERENDER_FOR_SECS`]. Ties (asked in the same second) go to
/// text+gzip first, what a global Prometheus 2.42 asks for (protobuf only with native
/// histograms on).
fn prerender_order(last_asked: [i64; 4], now: i64) -> Vec<u8> {
    let mut order: Vec<u8> = (0..4u8)
        .filter(|&v| last_asked[usize::from(v)] > 0 && now - last_asked[usize::from(v)] <= PRERENDER_FOR_SECS)
        .collect();
    let tie = |v: u8| [2u8, 0, 3, 1][usize::from(v)];
    order.sort_by_key(|&v| (std::cmp::Reverse(last_asked[usize::from(v)]), tie(v)));
    order
}

impl Prerender {
    /// Notes that a scraper asked for the full body in this format.
    pub fn asked(&self, protobuf: bool, gzipped: bool) {
        self.last_asked[usize::from(2 * u8::from(protobuf) + u8::from(gzipped))].store(now_secs(), Ordering::Relaxed);
    }

    /// Renders the wanted variants of `snapshot` on the blocking pool (call from the runtime).
    pub fn published(self: &Arc<Self>, snapshot: Arc<Snapshot>) {
        let order = prerender_order(self.last_asked.each_ref().map(|a| a.load(Ordering::Relaxed)), now_secs());
        if order.is_empty() || !snapshot.ready {
            return;
        }
        tokio::task::spawn_blocking(move || {
            let raw = vec![EVERYTHING.to_owned()];
            let all = SelectorSet::parse([EVERYTHING]).unwrap_or_default();
            for v in order {
                federate_body(&snapshot, &all, &raw, v & 2 != 0, v & 1 != 0);
            }
        });
    }
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
    use crate::merge::{GroupSnapshot, GroupStatus, TextEntry};
    use crate::parse::{RawLabel, Sink, parse_protobuf_delimited, parse_text};
    use std::sync::Arc;

    fn entry(key: &str, value: f64, ts: i64, t: MetricType) -> TextEntry {
        TextEntry { key: key.into(), ts, value, render_type: t }
    }

    fn group(entries: &[TextEntry]) -> GroupSnapshot {
        GroupSnapshot::from_text(GroupStatus { name: "g".into(), series: entries.len(), ..Default::default() }, entries)
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

    fn sample_entries() -> GroupSnapshot {
        group(&sample_text_entries())
    }

    fn sample_text_entries() -> Vec<TextEntry> {
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
        assert_eq!(render_text(sample_entries().served(), &mut out), 5);
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
        render_text(entries.served(), &mut text);
        let mut pb = Vec::new();
        render_protobuf(entries.served(), &mut pb);
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

    /// The prost rendering the hand-written one replaced: the oracle of its bytes.
    fn prost_protobuf<'a>(entries: impl Iterator<Item = Served<'a>>) -> Vec<u8> {
        use prost::Message;
        let mut out = Vec::new();
        let mut current: Option<proto::MetricFamily> = None;
        for e in entries {
            let name = e.key.name();
            if current.as_ref().is_none_or(|f| f.name.as_deref() != Some(name)) {
                if let Some(f) = current.take() {
                    f.encode_length_delimited(&mut out).unwrap();
                }
                current = Some(proto::MetricFamily {
                    name: Some(name.to_owned()),
                    r#type: Some(proto_type(e.render_type) as i32),
                    ..Default::default()
                });
            }
            let label = e
                .key
                .labels()
                .map(|(n, v)| proto::LabelPair {
                    name: Some(n.to_owned()),
                    value: Some(unescape_label_value(v).into_owned()),
                })
                .collect();
            let mut metric = proto::Metric { label, timestamp_ms: Some(e.ts), ..Default::default() };
            match e.render_type {
                MetricType::Counter => {
                    metric.counter = Some(proto::Counter { value: Some(e.value), ..Default::default() })
                }
                MetricType::Gauge => metric.gauge = Some(proto::Gauge { value: Some(e.value) }),
                _ => metric.untyped = Some(proto::Untyped { value: Some(e.value) }),
            }
            current.as_mut().unwrap().metric.push(metric);
        }
        if let Some(f) = current {
            f.encode_length_delimited(&mut out).unwrap();
        }
        out
    }

    /// Same bytes as prost for the same messages: escapes, empty values, negative and huge
    /// timestamps, NaN and infinities, long labels (two-byte lengths), all three types.
    #[test]
    fn protobuf_bytes_are_prosts() {
        let long = "v".repeat(300);
        let entries = vec![
            entry(&format!("a_total{{k=\"{long}\"}}"), 1.5, -5, MetricType::Counter),
            entry("a_total{k=\"x\\\"y\\nz\"}", f64::NAN, i64::MIN, MetricType::Counter),
            entry("b{e=\"\"}", f64::INFINITY, 0, MetricType::Gauge),
            entry("b{e=\"1\"}", -0.0, i64::MAX, MetricType::Gauge),
            entry("c", 7.0, 1_700_000_000_000, MetricType::Untyped),
        ];
        let snap = group(&entries);
        let mut pb = Vec::new();
        render_protobuf(snap.served(), &mut pb);
        assert_eq!(pb, prost_protobuf(snap.served()));
        let sample = sample_entries();
        let mut pb = Vec::new();
        render_protobuf(sample.served(), &mut pb);
        assert_eq!(pb, prost_protobuf(sample.served()));
        let big = big_snapshot(5000);
        let g = &big.groups[0];
        let mut pb = Vec::new();
        render_protobuf(g.served(), &mut pb);
        assert_eq!(pb, prost_protobuf(g.served()));
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

    fn big_snapshot(n: usize) -> Arc<Snapshot> {
        let entries: Vec<TextEntry> = (0..n)
            .map(|i| entry(&format!("m_{}{{i=\"{i:06}\"}}", i / 1000), i as f64, i as i64, MetricType::Untyped))
            .collect();
        Arc::new(Snapshot::new(vec![Arc::new(group(&entries))], true, 1))
    }

    #[test]
    fn streamed_gzip_body_is_the_text_body() {
        use std::io::Read;
        // Several compressor chunks' worth of output.
        let snap = big_snapshot(30_000);
        let all = SelectorSet::parse([EVERYTHING]).unwrap();
        let raw = vec![r#"{__name__=~".*"}"#.to_owned()];
        let plain = federate_body(&snap, &all, &raw, false, false);
        assert!(plain.bytes.len() > 3 * GZIP_CHUNK);
        let z = federate_body(&snap, &all, &raw, false, true);
        assert_eq!((plain.series, z.series), (30_000, 30_000));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&z.bytes[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, plain.bytes);
        let pz = federate_body(&snap, &all, &raw, true, true);
        let pp = federate_body(&snap, &all, &raw, true, false);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&pz.bytes[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, pp.bytes);
    }

    #[tokio::test]
    async fn prerender_renders_the_asked_formats_ahead() {
        let p = Arc::new(Prerender::default());
        let key = |protobuf, gzip| BodyKey { selectors: vec![EVERYTHING.to_owned()], protobuf, gzip };
        let snap = big_snapshot(1000);
        p.published(snap.clone());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(snap.cached(&key(false, true)).is_none(), "nothing prerendered before anyone asked");

        p.asked(false, true);
        let snap = big_snapshot(1000);
        p.published(snap.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while snap.cached(&key(false, true)).is_none() {
            assert!(std::time::Instant::now() < deadline, "gzip text body was not prerendered");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(snap.cached(&key(false, true)).unwrap().series, 1000);
        assert!(snap.cached(&key(true, true)).is_none(), "only the asked variant");
    }

    #[test]
    fn prerender_goes_by_recency_and_forgets_old_asks() {
        let now = 1_000_000;
        assert!(prerender_order([0; 4], now).is_empty(), "nothing asked, nothing rendered");
        // protobuf+gzip (3) asked last, then text (0); text+gzip (1) asked 11 minutes ago.
        assert_eq!(prerender_order([now - 5, now - 660, 0, now], now), vec![3, 0]);
        // Asked in the same second: text+gzip first, then protobuf+gzip, text, protobuf.
        assert_eq!(prerender_order([now; 4], now), vec![1, 3, 0, 2]);
        assert_eq!(prerender_order([0, now - PRERENDER_FOR_SECS, 0, 0], now), vec![1], "the limit itself still counts");
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
