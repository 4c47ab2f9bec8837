//! What the parsers yield: labels as found in the body, the family type, and the sink that
//! receives them.

/// The type a `# TYPE` line (or a protobuf `MetricFamily`) declares for a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    GaugeHistogram,
    Info,
    StateSet,
    #[default]
    Untyped,
}

impl MetricType {
    /// The word used for this type in a text `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Untyped => "untyped",
        }
    }

    /// Parses the word of a `# TYPE` line; `None` for an unknown word.
    pub fn from_word(word: &str) -> Option<MetricType> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Untyped,
            _ => return None,
        })
    }
}

/// `bytes` as UTF-8, if they are.
///
/// Hand-written because it is on the hot path of parsing and of the remote-write receiver:
/// names and label values are short and nearly always ASCII, and `str::from_utf8` on each
/// took about 9 % of the receiver's CPU and 10 % of a scrape's (`perf`); the inlined ASCII
/// check takes a fraction of that.
#[inline]
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// One label of a sample as it was found in the body.
///
/// `escaped` is true when `value` is the raw text between the quotes of a text-format label,
/// which may still contain the escapes `\\`, `\"` and `\n`; false when `value` is the plain
/// string (protobuf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLabel<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub escaped: bool,
}

/// Receives what a parser decodes, in body order.
pub trait Sink {
    /// A `# TYPE` line or a protobuf family: the samples that follow whose name is `family` or
    /// `family` plus a histogram/summary suffix belong to it.
    fn family(&mut self, family: &str, metric_type: MetricType);

    /// One sample. `name` is the full sample name (`foo_bucket` for a histogram bucket),
    /// `labels` are in body order (not sorted, possibly repeating a name: the sink decides),
    /// `timestamp_ms` is absent when the body gave none.
    fn sample(&mut self, name: &str, labels: &[RawLabel<'_>], value: f64, timestamp_ms: Option<i64>);
}
