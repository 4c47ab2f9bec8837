//! Decoding a Remote-Write 1.0 request body: a snappy block (not framed) holding one
//! `prometheus.WriteRequest` protobuf message.
//!
//! The protobuf is walked by hand, borrowing every label from the decompressed buffer, instead
//! of being materialised with prost (two `String`s per label, a `Vec` per series): this is the
//! receive hot path, and the limits of the issue (labels per series, name and value length) are
//! checked before anything is allocated for a series. `benches/remote_write.rs` measures it
//! against prost decoding of the same bodies; prost ([`super::proto`]) stays for encoding and as
//! the reference the tests compare with.
//!
//! Everything is validated before the caller stores a single sample: a request is either
//! accepted whole or refused whole (the spec's "400 and nothing stored").
//!
//! What is checked, after the spec and what Prometheus' receiver does:
//! - every series has a `__name__` label with a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`);
//! - label names are valid (`[a-zA-Z_][a-zA-Z0-9_]*`), non-empty, sorted and not repeated;
//! - a label with an empty value is the same as no label (Prometheus' data model) and is dropped;
//! - label values are UTF-8;
//! - a series' samples are in timestamp order (the spec requires it of senders);
//! - exemplars are skipped (counted); native histograms cannot be federated as text: their series
//!   are skipped and counted, not refused.

use crate::parse::{RawLabel, utf8};
use crate::series::{cmp_short, is_label_name, is_metric_name};
use std::ops::Range;

pub use crate::config::receiver::Limits;

/// Why a body was refused. [`DecodeError::too_large`] tells 413 from 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("decoded body of {size} bytes is over the limit of {limit} bytes")]
    DecodedTooLarge { size: usize, limit: usize },
    #[error("protobuf: {what} at byte {offset}")]
    Protobuf { what: &'static str, offset: usize },
    #[error("series {series}: {problem}")]
    Series { series: usize, problem: SeriesProblem },
}

impl DecodeError {
    /// True when the request was refused for its size (HTTP 413) rather than its content (400).
    pub fn too_large(&self) -> bool {
        matches!(
            self,
            DecodeError::DecodedTooLarge { .. }
                | DecodeError::Series {
                    problem: SeriesProblem::TooManyLabels { .. }
                        | SeriesProblem::NameTooLong { .. }
                        | SeriesProblem::ValueTooLong { .. },
                    ..
                }
        )
    }

    /// A short stable name for the `reason` label of the refused-requests metric.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Snappy(_) => "snappy",
            DecodeError::DecodedTooLarge { .. } => "decoded_too_large",
            DecodeError::Protobuf { .. } => "protobuf",
            DecodeError::Series { problem, .. } => problem.reason(),
        }
    }
}

/// What was wrong with one series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesProblem {
    #[error("no __name__ label")]
    NoName,
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    #[error("empty label name")]
    EmptyLabelName,
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    #[error("label {0:?} is not valid UTF-8")]
    NotUtf8(String),
    #[error("labels not sorted: {0:?} after {1:?}")]
    Unsorted(String, String),
    #[error("label {0:?} repeated")]
    Duplicate(String),
    #[error("{count} labels, over the limit of {limit}")]
    TooManyLabels { count: usize, limit: usize },
    #[error("label name of {len} bytes ({prefix:?}…), over the limit of {limit}")]
    NameTooLong { len: usize, limit: usize, prefix: String },
    #[error("value of label {name:?} is {len} bytes, over the limit of {limit}")]
    ValueTooLong { name: String, len: usize, limit: usize },
    #[error("samples out of timestamp order ({later} after {earlier})")]
    SamplesOutOfOrder { earlier: i64, later: i64 },
}

impl SeriesProblem {
    fn reason(&self) -> &'static str {
        match self {
            SeriesProblem::NoName => "no_name",
            SeriesProblem::InvalidMetricName(_) => "invalid_metric_name",
            SeriesProblem::EmptyLabelName => "empty_label_name",
            SeriesProblem::InvalidLabelName(_) => "invalid_label_name",
            SeriesProblem::NotUtf8(_) => "not_utf8",
            SeriesProblem::Unsorted(..) => "unsorted_labels",
            SeriesProblem::Duplicate(_) => "duplicate_label",
            SeriesProblem::TooManyLabels { .. } => "too_many_labels",
            SeriesProblem::NameTooLong { .. } => "label_name_too_long",
            SeriesProblem::ValueTooLong { .. } => "label_value_too_long",
            SeriesProblem::SamplesOutOfOrder { .. } => "samples_out_of_order",
        }
    }
}

/// One series of a decoded request: ranges into [`Decoded::labels`] and [`Decoded::samples`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesRef {
    pub labels: Range<usize>,
    pub samples: Range<usize>,
}

/// A validated request, borrowing its labels from the decompressed body.
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    /// Sorted by name within each series, `__name__` included; in the form the merge takes
    /// (values raw, not escaped), so that a series is handed over without a copy.
    pub labels: Vec<RawLabel<'a>>,
    /// `(timestamp_ms, value)` in timestamp order within each series.
    pub samples: Vec<(i64, f64)>,
    pub series: Vec<SeriesRef>,
    /// Exemplars skipped.
    pub exemplars: u64,
    /// Series skipped because they carry native histograms.
    pub histogram_series: u64,
}

impl<'a> Decoded<'a> {
    /// Labels of series `i`.
    pub fn labels_of(&self, s: &SeriesRef) -> &[RawLabel<'a>] {
        &self.labels[s.labels.clone()]
    }

    /// Samples of series `i`.
    pub fn samples_of(&self, s: &SeriesRef) -> &[(i64, f64)] {
        &self.samples[s.samples.clone()]
    }

    /// Number of samples in the request.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }
}

/// Decompresses a snappy block body, refusing it before allocating when its header announces
/// more than `limit` bytes.
pub fn decompress(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let size = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if size > limit {
        return Err(DecodeError::DecodedTooLarge { size, limit });
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(|e| DecodeError::Snappy(e.to_string()))
}

/// Decodes and validates a decompressed `WriteRequest`.
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Decoded<'a>, DecodeError> {
    // Sized for what Prometheus sends (about 25 bytes a label, 10 labels and one sample a
    // series): growing these by doubling cost 3 % of the receiver's CPU in reallocations.
    let mut out = Decoded {
        labels: Vec::with_capacity(buf.len() / 24),
        samples: Vec::with_capacity(buf.len() / 200),
        series: Vec::with_capacity(buf.len() / 200),
        ..Decoded::default()
    };
    let mut r = Reader { buf, pos: 0 };
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, WireType::Len) => {
                let start = r.pos;
                let msg = r.bytes()?;
                let index = out.series.len();
                decode_series(msg, start, index, limits, &mut out)?;
            }
            (1, _) => return Err(r.err("wrong wire type in WriteRequest")),
            _ => r.skip(wire)?,
        }
    }
    Ok(out)
}

fn decode_series<'a>(
    msg: &'a [u8],
    base: usize,
    index: usize,
    limits: &Limits,
    out: &mut Decoded<'a>,
) -> Result<(), DecodeError> {
    let labels_start = out.labels.len();
    let samples_start = out.samples.len();
    let fail = |problem| DecodeError::Series { series: index, problem };
    let mut r = Reader { buf: msg, pos: 0 };
    let mut has_histograms = false;
    let mut label_count = 0usize;
    let mut previous: Option<&'a [u8]> = None;
    let mut name_seen = false;
    while let Some((field, wire)) = r.key().map_err(|e| e.shift(base))? {
        match (field, wire) {
            (1, WireType::Len) => {
                let label = r.bytes().map_err(|e| e.shift(base))?;
                let (name, value) = decode_label(label).map_err(|e| e.shift(base))?;
                label_count += 1;
                if label_count > limits.max_labels_per_series {
                    return Err(fail(SeriesProblem::TooManyLabels {
                        count: count_labels(msg),
                        limit: limits.max_labels_per_series,
                    }));
                }
                if name.len() > limits.max_label_name_length {
                    let prefix = String::from_utf8_lossy(&name[..32.min(name.len())]).into_owned();
                    return Err(fail(SeriesProblem::NameTooLong {
                        len: name.len(),
                        limit: limits.max_label_name_length,
                        prefix,
                    }));
                }
                if name.is_empty() {
                    return Err(fail(SeriesProblem::EmptyLabelName));
                }
                let is_name_label = cmp_short(name, b"__name__").is_eq();
                if !is_name_label && !is_label_name(name) {
                    return Err(fail(SeriesProblem::InvalidLabelName(String::from_utf8_lossy(name).into_owned())));
                }
                // Valid label names are ASCII, so this is the same as comparing strings.
                if let Some(p) = previous {
                    match cmp_short(p, name) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => {
                            return Err(fail(SeriesProblem::Duplicate(String::from_utf8_lossy(name).into_owned())));
                        }
                        std::cmp::Ordering::Greater => {
                            return Err(fail(SeriesProblem::Unsorted(
                                String::from_utf8_lossy(name).into_owned(),
                                String::from_utf8_lossy(p).into_owned(),
                            )));
                        }
                    }
                }
                previous = Some(name);
                let name = utf8(name).expect("validated ASCII");
                if value.len() > limits.max_label_value_length {
                    return Err(fail(SeriesProblem::ValueTooLong {
                        name: name.to_owned(),
                        len: value.len(),
                        limit: limits.max_label_value_length,
                    }));
                }
                let value = utf8(value).ok_or_else(|| fail(SeriesProblem::NotUtf8(name.to_owned())))?;
                if is_name_label {
                    if !is_metric_name(value.as_bytes()) {
                        return Err(fail(SeriesProblem::InvalidMetricName(value.to_owned())));
                    }
                    name_seen = true;
                }
                if !value.is_empty() {
                    out.labels.push(RawLabel { name, value, escaped: false });
                }
            }
            (2, WireType::Len) => {
                let sample = r.bytes().map_err(|e| e.shift(base))?;
                let (ts, value) = decode_sample(sample).map_err(|e| e.shift(base))?;
                if let Some(&(earlier, _)) = out.samples[samples_start..].last()
                    && ts < earlier
                {
                    return Err(fail(SeriesProblem::SamplesOutOfOrder { earlier, later: ts }));
                }
                out.samples.push((ts, value));
            }
            (3, WireType::Len) => {
                // Rare; prost checks the exemplar is well-formed, as the sender's data must be.
                let at = r.pos;
                let exemplar = r.bytes().map_err(|e| e.shift(base))?;
                <super::proto::Exemplar as prost::Message>::decode(exemplar)
                    .map_err(|_| DecodeError::Protobuf { what: "malformed exemplar", offset: base + at })?;
                out.exemplars += 1;
            }
            (4, WireType::Len) => {
                r.bytes().map_err(|e| e.shift(base))?;
                has_histograms = true;
            }
            (1..=4, _) => return Err(DecodeError::Protobuf { what: "wrong wire type in TimeSeries", offset: base }),
            _ => r.skip(wire).map_err(|e| e.shift(base))?,
        }
    }
    if !name_seen {
        return Err(fail(SeriesProblem::NoName));
    }
    if has_histograms {
        // Not refused: the request's float series still count. Skipped whole, counted.
        out.labels.truncate(labels_start);
        out.samples.truncate(samples_start);
        out.histogram_series += 1;
        return Ok(());
    }
    out.series.push(SeriesRef { labels: labels_start..out.labels.len(), samples: samples_start..out.samples.len() });
    Ok(())
}

/// For the error message only: how many labels the series has in all.
fn count_labels(msg: &[u8]) -> usize {
    let mut r = Reader { buf: msg, pos: 0 };
    let mut n = 0;
    while let Ok(Some((field, wire))) = r.key() {
        if field == 1 {
            n += 1;
        }
        if r.skip(wire).is_err() {
            break;
        }
    }
    n
}

fn decode_label(msg: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    let mut r = Reader { buf: msg, pos: 0 };
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, WireType::Len) => name = r.bytes()?,
            (2, WireType::Len) => value = r.bytes()?,
            (1 | 2, _) => return Err(DecodeError::Protobuf { what: "wrong wire type in Label", offset: r.pos }),
            _ => r.skip(wire)?,
        }
    }
    Ok((name, value))
}

fn decode_sample(msg: &[u8]) -> Result<(i64, f64), DecodeError> {
    let (mut ts, mut value) = (0i64, 0f64);
    let mut r = Reader { buf: msg, pos: 0 };
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, WireType::Fixed64) => value = f64::from_bits(r.fixed64()?),
            (2, WireType::Varint) => ts = r.varint()? as i64,
            (1 | 2, _) => return Err(DecodeError::Protobuf { what: "wrong wire type in Sample", offset: r.pos }),
            _ => r.skip(wire)?,
        }
    }
    Ok((ts, value))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl DecodeError {
    fn shift(self, base: usize) -> Self {
        match self {
            DecodeError::Protobuf { what, offset } => DecodeError::Protobuf { what, offset: offset + base },
            other => other,
        }
    }
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError::Protobuf { what, offset: self.pos }
    }

    /// Field keys and lengths of labels are one byte nearly always: that case is inlined, the
    /// rest is [`Reader::varint_long`] (a profile of the receiver had this call at 10 %).
    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        if let Some(&byte) = self.buf.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        self.varint_long()
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(self.err("varint over 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err("varint over 10 bytes"))
    }

    /// The next field's number and wire type; `None` at the end of the message.
    fn key(&mut self) -> Result<Option<(u32, WireType)>, DecodeError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let Ok(key) = u32::try_from(key) else {
            return Err(self.err("field key over 32 bits"));
        };
        let field = key >> 3;
        if field == 0 {
            return Err(self.err("field number 0"));
        }
        let wire = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            _ => return Err(self.err("unsupported wire type (groups)")),
        };
        Ok(Some((field, wire)))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("length past the end of the message"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let b = self.buf.get(self.pos..self.pos + 8).ok_or_else(|| self.err("truncated fixed64"))?;
        self.pos += 8;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn skip(&mut self, wire: WireType) -> Result<(), DecodeError> {
        match wire {
            WireType::Varint => {
                self.varint()?;
            }
            WireType::Fixed64 => {
                self.fixed64()?;
            }
            WireType::Len => {
                self.bytes()?;
            }
            WireType::Fixed32 => {
                if self.pos + 4 > self.buf.len() {
                    return Err(self.err("truncated fixed32"));
                }
                self.pos += 4;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
