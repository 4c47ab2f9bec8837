//! Decoder for length-delimited `io.prometheus.client.MetricFamily` bodies.
//!
//! This is what Prometheus' `/federate` (and client libraries) send for
//! `Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`:
//! a sequence of messages, each prefixed by its length as a varint. Messages are decoded with the
//! prost structs of [`super::proto`] (one `MetricFamily` reused for the whole body) and flattened
//! into samples the way the text format writes them:
//! - counter, gauge, untyped: one sample named as the family, the value taken from the field the
//!   declared type names (0 if absent, as Go's getters and Prometheus do);
//! - summary: `name{quantile="q"}` per quantile, then `name_sum`, `name_count`;
//! - histogram and gauge histogram: `name_bucket{le="ub"}` per bucket, plus `le="+Inf"` with the
//!   sample count when the last bucket is not `+Inf`, then `name_sum`, `name_count` (Prometheus'
//!   protobuf parser also uses `_sum`/`_count` for gauge histograms). `*_float` counts override
//!   the integer ones when > 0. Native-histogram fields are ignored.
//!
//! `le` and `quantile` values are written like Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which is
//! what client_golang's text encoder (and so Prometheus' text `/federate`) writes: `1`, `0.25`,
//! `1e+06`, `+Inf`. Prometheus' own protobuf parser instead appends `.0` to integral values
//! (`formatOpenMetricsFloat`); we keep the text spelling so that the same target yields the same
//! series over either format. Labels are passed with `escaped: false`. A sample's timestamp is
//! `None` only when `timestamp_ms` is absent; an explicit 0 stays `Some(0)`.
//!
//! A family without a name and a type number outside the enum are errors, as is any truncation:
//! a body cut short must fail the scrape, not lose families.
//!
//! Fast path: counter, gauge and untyped families — everything Prometheus' `/federate` sends —
//! are read straight from the wire with borrowed `&str` labels ([`fast_family`]) instead of being
//! materialised as prost structs with two `String`s per label. On the 100k-series federate bench
//! prost decoding took 2.2–2.7× the time of our text parser and left hundreds of MB of freed small
//! allocations resident in glibc (540 MB RSS for 301 MB live at 1M series, docs/benchmarks.md).
//! Anything unusual (summaries, histograms, unknown wire types, malformed bytes) falls back to
//! prost for that family, which also produces the error, so both paths accept and reject exactly
//! the same bodies; a test checks they yield the same samples.

use std::fmt::Write as _;

use prost::Message as _;

use super::proto::{self, MetricFamily};
use super::sample::{MetricType, RawLabel, Sink, utf8};

/// A protobuf body that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protobuf message {index} at byte {offset}: {kind}")]
pub struct ProtobufError {
    /// 0-based index of the MetricFamily message that failed.
    pub index: usize,
    /// Byte offset in the body where that message starts.
    pub offset: usize,
    pub kind: ProtobufErrorKind,
}

/// What was wrong with the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufErrorKind {
    /// The body ends inside a length prefix.
    #[error("truncated length prefix")]
    TruncatedLength,
    /// The length prefix is not a valid 64-bit varint.
    #[error("invalid length prefix")]
    InvalidLength,
    /// The length prefix announces more bytes than the body has left.
    #[error("truncated message: length prefix says {declared} bytes, {available} left")]
    TruncatedMessage { declared: u64, available: usize },
    /// The message bytes are not a valid `MetricFamily`.
    #[error("invalid MetricFamily: {0}")]
    Decode(prost::DecodeError),
    #[error("metric family without a name")]
    MissingName,
    #[error("unknown metric type {0}")]
    UnknownType(i32),
}

/// Decodes a whole length-delimited protobuf body into `sink`.
///
/// Families reach the sink as they are decoded; on error the caller should discard what it got.
pub fn parse_protobuf_delimited(body: &[u8], sink: &mut impl Sink) -> Result<(), ProtobufError> {
    decode(body, sink, true)
}

fn decode(body: &[u8], sink: &mut impl Sink, fast: bool) -> Result<(), ProtobufError> {
    let mut family = MetricFamily::default();
    let mut scratch = FastScratch::default();
    let mut offset = 0;
    let mut index = 0;
    while let Some(rest) = body.get(offset..).filter(|rest| !rest.is_empty()) {
        let fail = move |kind| ProtobufError { index, offset, kind };
        let (declared, prefix) = read_varint(rest).map_err(fail)?;
        let after_prefix = rest.get(prefix..).unwrap_or_default();
        let message = usize::try_from(declared)
            .ok()
            .and_then(|len| after_prefix.get(..len))
            .ok_or_else(|| fail(ProtobufErrorKind::TruncatedMessage { declared, available: after_prefix.len() }))?;
        if fast && let Some((name, metric_type)) = fast_family(message, &mut scratch) {
            sink.family(name, metric_type);
            for &(start, end, value, ts) in &scratch.samples {
                sink.sample(name, &scratch.labels[start..end], value, ts);
            }
        } else {
            family.clear();
            family.merge(message).map_err(|e| fail(ProtobufErrorKind::Decode(e)))?;
            emit_family(&family, sink).map_err(fail)?;
        }
        offset += prefix + message.len();
        index += 1;
    }
    Ok(())
}

/// What [`fast_family`] collects for one family before handing it to the sink: all labels flat,
/// and per sample its label range, value and timestamp. Reused across families.
#[derive(Default)]
struct FastScratch<'a> {
    labels: Vec<RawLabel<'a>>,
    samples: Vec<(usize, usize, f64, Option<i64>)>,
}

/// One protobuf field: its number and its payload.
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

/// Iterates the fields of one message; `None` (stop) on anything malformed or unusual, which
/// makes the caller fall back to prost.
fn next_field<'a>(msg: &mut &'a [u8]) -> Option<Option<(u64, Field<'a>)>> {
    if msg.is_empty() {
        return Some(None);
    }
    let (key, n) = read_varint(msg).ok()?;
    *msg = &msg[n..];
    // prost refuses keys wider than 32 bits (field number 0 too); so does the fast path, by
    // handing the body to prost for the error.
    if key > u64::from(u32::MAX) {
        return None;
    }
    let number = key >> 3;
    if number == 0 {
        return None;
    }
    let field = match key & 7 {
        0 => {
            let (v, n) = read_varint(msg).ok()?;
            *msg = &msg[n..];
            Field::Varint(v)
        }
        1 => {
            let (b, rest) = msg.split_first_chunk::<8>()?;
            *msg = rest;
            Field::Fixed64(u64::from_le_bytes(*b))
        }
        2 => {
            let (len, n) = read_varint(msg).ok()?;
            let bytes = msg.get(n..)?.get(..usize::try_from(len).ok()?)?;
            *msg = &msg[n + bytes.len()..];
            Field::Bytes(bytes)
        }
        5 => {
            *msg = msg.get(4..)?;
            Field::Fixed32
        }
        _ => return None,
    };
    Some(Some((number, field)))
}

/// The `value` (field 1, a double) of a `Gauge`/`Counter`/`Untyped` message; `Some(None)` when
/// absent. Any other known field (a counter's exemplar or created timestamp) is a nested message
/// prost would decode and validate, so it sends the family to prost (`None`).
fn simple_value(mut msg: &[u8]) -> Option<Option<f64>> {
    let mut value = None;
    while let Some((number, field)) = next_field(&mut msg)? {
        match (number, field) {
            (1, Field::Fixed64(bits)) => value = Some(f64::from_bits(bits)),
            (1..=3, _) => return None,
            _ => {}
        }
    }
    Some(value)
}

/// Reads a counter, gauge or untyped family without allocating; `None` leaves the family to
/// prost (other types, or anything it would have to judge).
fn fast_family<'a>(mut msg: &'a [u8], out: &mut FastScratch<'a>) -> Option<(&'a str, MetricType)> {
    out.labels.clear();
    out.samples.clear();
    let (mut name, mut number) = (None, proto::MetricType::Counter as i32);
    let mut metrics: Vec<&'a [u8]> = Vec::new();
    while let Some((field, value)) = next_field(&mut msg)? {
        match (field, value) {
            (1, Field::Bytes(b)) => name = Some(utf8(b)?),
            (2 | 5, Field::Bytes(b)) => {
                utf8(b)?;
            }
            (3, Field::Varint(v)) => number = i32::try_from(v as i64).ok()?,
            (4, Field::Bytes(b)) => metrics.push(b),
            (1..=5, _) => return None,
            _ => {}
        }
    }
    let name = name.filter(|n| !n.is_empty())?;
    let wire_type = proto::MetricType::try_from(number).ok()?;
    let (metric_type, value_field) = match wire_type {
        proto::MetricType::Counter => (MetricType::Counter, 3),
        proto::MetricType::Gauge => (MetricType::Gauge, 2),
        proto::MetricType::Untyped => (MetricType::Untyped, 5),
        _ => return None,
    };
    for mut m in metrics {
        let start = out.labels.len();
        let (mut value, mut ts) = (None, None);
        while let Some((field, f)) = next_field(&mut m)? {
            match (field, f) {
                (1, Field::Bytes(mut pair)) => {
                    let (mut n, mut v) = ("", "");
                    while let Some((pf, pv)) = next_field(&mut pair)? {
                        match (pf, pv) {
                            (1, Field::Bytes(b)) => n = utf8(b)?,
                            (2, Field::Bytes(b)) => v = utf8(b)?,
                            (1 | 2, _) => return None,
                            _ => {}
                        }
                    }
                    out.labels.push(RawLabel { name: n, value: v, escaped: false });
                }
                (f @ (2 | 3 | 5), Field::Bytes(b)) => {
                    let v = simple_value(b)?;
                    if f == value_field && v.is_some() {
                        value = v;
                    }
                }
                (6, Field::Varint(v)) => ts = Some(v as i64),
                // Summaries, histograms or wrong wire types: prost decides.
                (1..=7, _) => return None,
                _ => {}
            }
        }
        out.samples.push((start, out.labels.len(), value.unwrap_or(0.0), ts));
    }
    Some((name, metric_type))
}

/// A base-128 varint of at most 10 bytes: the value and the number of bytes it took.
fn read_varint(bytes: &[u8]) -> Result<(u64, usize), ProtobufErrorKind> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // The 10th byte may only carry the 64th bit.
            if i == 9 && byte > 1 {
                return Err(ProtobufErrorKind::InvalidLength);
            }
            return Ok((value, i + 1));
        }
    }
    if bytes.len() >= 10 { Err(ProtobufErrorKind::InvalidLength) } else { Err(ProtobufErrorKind::TruncatedLength) }
}

fn emit_family(family: &MetricFamily, sink: &mut impl Sink) -> Result<(), ProtobufErrorKind> {
    let name = match family.name.as_deref() {
        Some(name) if !name.is_empty() => name,
        _ => return Err(ProtobufErrorKind::MissingName),
    };
    // proto2: an absent enum field reads as its first value, COUNTER.
    let number = family.r#type.unwrap_or(proto::MetricType::Counter as i32);
    let wire_type = proto::MetricType::try_from(number).map_err(|_| ProtobufErrorKind::UnknownType(number))?;
    let metric_type = match wire_type {
        proto::MetricType::Counter => MetricType::Counter,
        proto::MetricType::Gauge => MetricType::Gauge,
        proto::MetricType::Summary => MetricType::Summary,
        proto::MetricType::Untyped => MetricType::Untyped,
        proto::MetricType::Histogram => MetricType::Histogram,
        proto::MetricType::GaugeHistogram => MetricType::GaugeHistogram,
    };
    sink.family(name, metric_type);
    match wire_type {
        proto::MetricType::Counter | proto::MetricType::Gauge | proto::MetricType::Untyped => {
            emit_simple(family, name, wire_type, sink);
        }
        proto::MetricType::Summary => emit_summaries(family, name, sink),
        proto::MetricType::Histogram | proto::MetricType::GaugeHistogram => {
            emit_histograms(family, name, sink);
        }
    }
    Ok(())
}

/// Pushes the labels of `metric` into a cleared `labels`.
fn base_labels<'a>(labels: &mut Vec<RawLabel<'a>>, metric: &'a proto::Metric) {
    labels.clear();
    labels.extend(metric.label.iter().map(|pair| RawLabel {
        name: pair.name.as_deref().unwrap_or_default(),
        value: pair.value.as_deref().unwrap_or_default(),
        escaped: false,
    }));
}

fn emit_simple(family: &MetricFamily, name: &str, wire_type: proto::MetricType, sink: &mut impl Sink) {
    let mut labels = Vec::new();
    for metric in &family.metric {
        base_labels(&mut labels, metric);
        let value = match wire_type {
            proto::MetricType::Counter => metric.counter.as_ref().and_then(|c| c.value),
            proto::MetricType::Gauge => metric.gauge.as_ref().and_then(|g| g.value),
            _ => metric.untyped.as_ref().and_then(|u| u.value),
        };
        sink.sample(name, &labels, value.unwrap_or(0.0), metric.timestamp_ms);
    }
}

fn emit_summaries(family: &MetricFamily, name: &str, sink: &mut impl Sink) {
    // Format every quantile of the family first, so that the labels can borrow the text.
    let mut text = String::new();
    for summary in family.metric.iter().filter_map(|m| m.summary.as_ref()) {
        for quantile in &summary.quantile {
            push_go_float(&mut text, quantile.quantile.unwrap_or(0.0));
        }
    }
    let mut formatted = text.split_terminator(' ');
    let sum_name = format!("{name}_sum");
    let count_name = format!("{name}_count");
    let mut labels = Vec::new();
    for metric in &family.metric {
        base_labels(&mut labels, metric);
        let ts = metric.timestamp_ms;
        let summary = metric.summary.as_ref();
        for quantile in summary.map(|s| s.quantile.as_slice()).unwrap_or_default() {
            let q = formatted.next().unwrap_or_default();
            labels.push(RawLabel { name: "quantile", value: q, escaped: false });
            sink.sample(name, &labels, quantile.value.unwrap_or(0.0), ts);
            labels.pop();
        }
        let sum = summary.and_then(|s| s.sample_sum).unwrap_or(0.0);
        let count = summary.and_then(|s| s.sample_count).unwrap_or(0);
        sink.sample(&sum_name, &labels, sum, ts);
        sink.sample(&count_name, &labels, count as f64, ts);
    }
}

fn emit_histograms(family: &MetricFamily, name: &str, sink: &mut impl Sink) {
    let mut text = String::new();
    for histogram in family.metric.iter().filter_map(|m| m.histogram.as_ref()) {
        for bucket in &histogram.bucket {
            push_go_float(&mut text, bucket.upper_bound.unwrap_or(0.0));
        }
    }
    let mut formatted = text.split_terminator(' ');
    let bucket_name = format!("{name}_bucket");
    let sum_name = format!("{name}_sum");
    let count_name = format!("{name}_count");
    let mut labels = Vec::new();
    for metric in &family.metric {
        base_labels(&mut labels, metric);
        let ts = metric.timestamp_ms;
        let histogram = metric.histogram.as_ref();
        let buckets = histogram.map(|h| h.bucket.as_slice()).unwrap_or_default();
        for bucket in buckets {
            let le = formatted.next().unwrap_or_default();
            let count = float_or_int(bucket.cumulative_count_float, bucket.cumulative_count);
            labels.push(RawLabel { name: "le", value: le, escaped: false });
            sink.sample(&bucket_name, &labels, count, ts);
            labels.pop();
        }
        let count = histogram.map_or(0.0, |h| float_or_int(h.sample_count_float, h.sample_count));
        if buckets.last().is_none_or(|b| b.upper_bound != Some(f64::INFINITY)) {
            labels.push(RawLabel { name: "le", value: "+Inf", escaped: false });
            sink.sample(&bucket_name, &labels, count, ts);
            labels.pop();
        }
        let sum = histogram.and_then(|h| h.sample_sum).unwrap_or(0.0);
        sink.sample(&sum_name, &labels, sum, ts);
        sink.sample(&count_name, &labels, count, ts);
    }
}

/// A `*_float` count overrides the integer one when it is > 0 (client_model's rule).
fn float_or_int(float: Option<f64>, int: Option<u64>) -> f64 {
    float.filter(|f| *f > 0.0).unwrap_or_else(|| int.unwrap_or(0) as f64)
}

/// Appends `f` as Go's `strconv.FormatFloat(f, 'g', -1, 64)` (but `+Inf` for infinity, as
/// Prometheus writes it), followed by a space as separator.
pub(crate) fn push_go_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN ");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf " } else { "-Inf " });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Go's precision -1: `d[.ddd]e[-]x`.
    let start = out.len();
    let _ = write!(out, "{f:e}");
    let sci = out.split_off(start);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    // Go: %e when the exponent is < -4 or >= the precision, which is 6 for the shortest form.
    if !(-4..6).contains(&exp) {
        let (first, more) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !more.is_empty() {
            out.push('.');
            out.push_str(more);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            let (int, frac) = digits.split_at(int_len);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    }
    out.push(' ');
}

#[cfg(test)]
mod tests;
