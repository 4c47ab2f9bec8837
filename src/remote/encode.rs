//! Remote-Write 1.0 wire format, written by hand: `TimeSeries` messages appended straight into
//! a buffer, and a walker that finds them again in an encoded `WriteRequest`.
//!
//! Why by hand: a `WriteRequest` is `repeated TimeSeries timeseries = 1`, so concatenated
//! encoded `TimeSeries` fields *are* a valid request. The sender queues them on disk in that
//! form and its shards build requests by copying each series' bytes, never decoding a label.
//! prost would need an owned `String` per label per sample. The output is checked against
//! prost's decoder in the tests.

use crate::varint::{put_varint, varint_len};

/// Length of a `Label { name = 1, value = 2 }` message.
#[inline]
fn label_len(name: &str, value: &str) -> usize {
    1 + varint_len(name.len() as u64) + name.len() + 1 + varint_len(value.len() as u64) + value.len()
}

/// Length of a `Sample { value = 1 (double), timestamp = 2 (int64) }` message.
#[inline]
fn sample_len(ts: i64) -> usize {
    9 + 1 + varint_len(ts as u64)
}

/// Appends one `TimeSeries` as field 1 of a `WriteRequest`: `labels` (sorted by name,
/// `__name__` among them, as the spec requires) then `samples` (timestamp order).
pub fn put_series<'a>(
    out: &mut Vec<u8>,
    labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    samples: &[(i64, f64)],
) {
    let labels_len: usize = labels
        .clone()
        .map(|(n, v)| {
            let l = label_len(n, v);
            1 + varint_len(l as u64) + l
        })
        .sum();
    let samples_len: usize = samples
        .iter()
        .map(|&(ts, _)| {
            let l = sample_len(ts);
            1 + varint_len(l as u64) + l
        })
        .sum();
    out.push(0x0a);
    put_varint(out, (labels_len + samples_len) as u64);
    for (name, value) in labels {
        out.push(0x0a);
        put_varint(out, label_len(name, value) as u64);
        out.push(0x0a);
        put_varint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        out.push(0x12);
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value.as_bytes());
    }
    for &(ts, value) in samples {
        out.push(0x12);
        put_varint(out, sample_len(ts) as u64);
        out.push(0x09);
        out.extend_from_slice(&value.to_le_bytes());
        out.push(0x10);
        put_varint(out, ts as u64);
    }
}

/// One `TimeSeries` found by [`series`]: its whole field (tag and length included, ready to
/// copy into another request), the bytes of its labels (to hash), its sample count and its
/// newest timestamp.
#[derive(Clone, Copy, Debug)]
pub struct SeriesBytes<'a> {
    pub field: &'a [u8],
    pub labels: &'a [u8],
    pub samples: u32,
    pub max_ts: i64,
}

/// The encoded request is not what [`put_series`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed queued remote-write record at byte {0}")]
pub struct Malformed(pub usize);

#[inline]
fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, Malformed> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or(Malformed(*pos))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(Malformed(*pos))
}

/// The `TimeSeries` of an encoded `WriteRequest` written by [`put_series`] (labels first, then
/// samples), in order. The queue's records are checksummed, so a malformed one means a bug, but
/// it is an error, not a panic.
pub fn series(buf: &[u8]) -> impl Iterator<Item = Result<SeriesBytes<'_>, Malformed>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= buf.len() {
            return None;
        }
        let r = next_series(buf, &mut pos);
        if r.is_err() {
            pos = buf.len();
        }
        Some(r)
    })
}

fn next_series<'a>(buf: &'a [u8], pos: &mut usize) -> Result<SeriesBytes<'a>, Malformed> {
    let start = *pos;
    if buf[start] != 0x0a {
        return Err(Malformed(start));
    }
    *pos += 1;
    let len = get_varint(buf, pos)? as usize;
    let body_start = *pos;
    let end = body_start.checked_add(len).filter(|&e| e <= buf.len()).ok_or(Malformed(body_start))?;
    let mut p = body_start;
    let mut labels_end = body_start;
    let mut samples = 0u32;
    let mut max_ts = i64::MIN;
    while p < end {
        let tag = buf[p];
        p += 1;
        let l = get_varint(buf, &mut p)? as usize;
        let field_end = p.checked_add(l).filter(|&e| e <= end).ok_or(Malformed(p))?;
        match tag {
            0x0a if samples == 0 => labels_end = field_end,
            0x12 => {
                samples += 1;
                // Sample: 0x09 + 8 bytes value, 0x10 + varint timestamp.
                let mut q = p + 9;
                if buf.get(p) != Some(&0x09) || buf.get(q) != Some(&0x10) {
                    return Err(Malformed(p));
                }
                q += 1;
                max_ts = max_ts.max(get_varint(buf, &mut q)? as i64);
            }
            _ => return Err(Malformed(p)),
        }
        p = field_end;
    }
    *pos = end;
    Ok(SeriesBytes { field: &buf[start..end], labels: &buf[body_start..labels_end], samples, max_ts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::proto::WriteRequest;
    use prost::Message;

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Ok(v));
        }
    }

    #[test]
    fn prost_reads_what_we_write_and_the_walker_finds_it() {
        let mut buf = Vec::new();
        let a = [("__name__", "up"), ("job", "node"), ("ünï", "\"x\"\n")];
        put_series(&mut buf, a.iter().copied(), &[(1_700_000_000_000, 1.0), (1_700_000_015_000, f64::NAN)]);
        put_series(&mut buf, [("__name__", "x")].into_iter(), &[(-5, -0.5)]);
        put_series(&mut buf, [("__name__", "empty")].into_iter(), &[]);
        let req = WriteRequest::decode(&buf[..]).unwrap();
        assert_eq!(req.timeseries.len(), 3);
        let t = &req.timeseries[0];
        let labels: Vec<(&str, &str)> = t.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(labels, a);
        assert_eq!(t.samples.len(), 2);
        assert_eq!(t.samples[1].timestamp, 1_700_000_015_000);
        assert!(t.samples[1].value.is_nan());
        assert_eq!(req.timeseries[1].samples[0].timestamp, -5);

        let found: Vec<SeriesBytes<'_>> = series(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!([found[0].samples, found[1].samples, found[2].samples], [2, 1, 0]);
        assert_eq!(found[0].max_ts, 1_700_000_015_000);
        assert_eq!(found[1].max_ts, -5);
        // Re-assembling the fields gives the same request.
        let joined: Vec<u8> = found.iter().flat_map(|s| s.field.iter().copied()).collect();
        assert_eq!(joined, buf);
        // The labels part is the same bytes for the same labels whatever the samples.
        let mut other = Vec::new();
        put_series(&mut other, a.iter().copied(), &[(7, 7.0)]);
        let o = series(&other).next().unwrap().unwrap();
        assert_eq!(o.labels, found[0].labels);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        put_series(&mut buf, [("__name__", "up")].into_iter(), &[(1, 1.0)]);
        for cut in 0..buf.len() {
            let r: Result<Vec<_>, _> = series(&buf[..cut]).collect();
            assert!(cut == 0 || r.is_err(), "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[0] = 0x12;
        assert!(series(&bad).next().unwrap().is_err());
    }
}
