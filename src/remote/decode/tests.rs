use proptest::prelude::*;
use prost::Message as _;

use super::{DecodeError, Limits, SeriesProblem, decode, decompress};
use crate::parse::RawLabel;
use crate::remote::proto::{Exemplar, Label, Sample, TimeSeries, WriteRequest};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect(),
        samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
        exemplars: vec![],
    }
}

fn encode(ts: Vec<TimeSeries>) -> Vec<u8> {
    WriteRequest { timeseries: ts, metadata: vec![] }.encode_to_vec()
}

/// What prost reads, in the decoder's shape: per series its non-empty labels and samples.
/// Per series: its labels and its samples as `(timestamp, value bits)`.
type Flat = Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>;

/// The reference's view of a request: `WriteRequest` with the native-histogram field kept as
/// opaque bytes, so that the series the decoder skips for carrying histograms can be skipped here
/// too (prost would drop the unknown field and keep the series).
#[derive(Clone, PartialEq, prost::Message)]
struct ReferenceRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<ReferenceSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ReferenceSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    exemplars: Vec<Exemplar>,
    #[prost(bytes = "vec", repeated, tag = "4")]
    histograms: Vec<Vec<u8>>,
}

fn with_prost(buf: &[u8]) -> Flat {
    ReferenceRequest::decode(buf)
        .unwrap()
        .timeseries
        .into_iter()
        .filter(|s| s.histograms.is_empty())
        .map(|s| {
            (
                s.labels.into_iter().filter(|l| !l.value.is_empty()).map(|l| (l.name, l.value)).collect(),
                s.samples.into_iter().map(|x| (x.timestamp, x.value.to_bits())).collect(),
            )
        })
        .collect()
}

fn with_ours(buf: &[u8]) -> Result<Flat, DecodeError> {
    let d = decode(buf, &Limits::default())?;
    Ok(d.series
        .iter()
        .map(|s| {
            (
                d.labels_of(s).iter().map(|l| (l.name.to_owned(), l.value.to_owned())).collect(),
                d.samples_of(s).iter().map(|&(t, v)| (t, v.to_bits())).collect(),
            )
        })
        .collect())
}

#[track_caller]
fn refused(ts: Vec<TimeSeries>) -> DecodeError {
    decode(&encode(ts), &Limits::default()).expect_err("refused")
}

#[test]
fn real_prometheus_bodies_decode_like_prost() {
    for i in 0..3 {
        let body = fixture(&format!("remote_write_{i}.snappy.pb"));
        let raw = decompress(&body, 1 << 20).unwrap();
        let ours = with_ours(&raw).unwrap();
        assert_eq!(ours, with_prost(&raw), "fixture {i}");
        assert!(ours.len() > 100, "fixture {i} has {} series", ours.len());
        assert!(ours.iter().all(|(l, s)| l[0].0 == "__name__" && !s.is_empty()));
    }
}

#[test]
fn snappy_errors_and_limits() {
    let body = fixture("remote_write_0.snappy.pb");
    let size = snap::raw::decompress_len(&body).unwrap();
    assert_eq!(decompress(&body, size - 1), Err(DecodeError::DecodedTooLarge { size, limit: size - 1 }));
    assert!(decompress(&body, size - 1).unwrap_err().too_large());
    // Not snappy at all, and a body cut short.
    assert!(matches!(decompress(b"\xff\xff\xff\xff\xff\xff", 1 << 20), Err(DecodeError::Snappy(_))));
    assert!(matches!(decompress(&body[..body.len() / 2], 1 << 20), Err(DecodeError::Snappy(_))));
    // A "bomb": a tiny header announcing 4 GiB is refused before anything is allocated.
    let mut bomb = Vec::new();
    prost::encoding::encode_varint(u64::from(u32::MAX), &mut bomb);
    bomb.extend_from_slice(&[0; 16]);
    let e = decompress(&bomb, 64 << 20).unwrap_err();
    assert!(e.too_large() || matches!(e, DecodeError::Snappy(_)), "{e}");
}

#[test]
fn truncated_protobuf_is_refused() {
    let raw = decompress(&fixture("remote_write_1.snappy.pb"), 1 << 20).unwrap();
    for cut in [1, raw.len() / 3, raw.len() - 1] {
        let e = decode(&raw[..cut], &Limits::default()).unwrap_err();
        assert!(matches!(e, DecodeError::Protobuf { .. } | DecodeError::Series { .. }), "cut {cut}: {e}");
        assert!(!e.too_large());
    }
}

#[test]
fn label_rules_of_the_spec() {
    let name = |v| ("__name__", v);
    assert_eq!(
        refused(vec![series(&[name("up"), ("job", "a"), ("instance", "x")], &[(1, 1.0)])]),
        DecodeError::Series { series: 0, problem: SeriesProblem::Unsorted("instance".into(), "job".into()) }
    );
    assert_eq!(
        refused(vec![series(&[name("up")], &[(1, 1.0)]), series(&[name("up"), ("a", "1"), ("a", "2")], &[(1, 1.0)])]),
        DecodeError::Series { series: 1, problem: SeriesProblem::Duplicate("a".into()) }
    );
    assert_eq!(
        refused(vec![series(&[("", "x"), name("up")], &[(1, 1.0)])]),
        DecodeError::Series { series: 0, problem: SeriesProblem::EmptyLabelName }
    );
    assert_eq!(
        refused(vec![series(&[("job", "a")], &[(1, 1.0)])]),
        DecodeError::Series { series: 0, problem: SeriesProblem::NoName }
    );
    assert_eq!(
        refused(vec![series(&[name("")], &[(1, 1.0)])]),
        DecodeError::Series { series: 0, problem: SeriesProblem::InvalidMetricName(String::new()) }
    );
    assert_eq!(
        refused(vec![series(&[name("1up")], &[(1, 1.0)])]),
        DecodeError::Series { series: 0, problem: SeriesProblem::InvalidMetricName("1up".into()) }
    );
    assert_eq!(
        refused(vec![series(&[name("up"), ("a-b", "1")], &[(1, 1.0)])]),
        DecodeError::Series { series: 0, problem: SeriesProblem::InvalidLabelName("a-b".into()) }
    );
    assert_eq!(
        refused(vec![series(&[name("up")], &[(5, 1.0), (4, 1.0)])]),
        DecodeError::Series { series: 0, problem: SeriesProblem::SamplesOutOfOrder { earlier: 5, later: 4 } }
    );
    // Uppercase sorts before `__name__` (byte order), and recording-rule names have colons.
    let ok = encode(vec![series(&[("Zone", "z"), name("job:up:sum"), ("a", "")], &[(1, 1.0), (1, 2.0)])]);
    let d = decode(&ok, &Limits::default()).unwrap();
    // The empty-valued label is the same as no label.
    assert_eq!(pairs(&d.labels), [("Zone", "z"), ("__name__", "job:up:sum")]);
    assert_eq!(d.samples, [(1, 1.0), (1, 2.0)]);
}

#[test]
fn size_limits_give_413() {
    let limits =
        Limits { max_labels_per_series: 3, max_label_name_length: 8, max_label_value_length: 4, ..Limits::default() };
    let check = |ts: TimeSeries, want: SeriesProblem| {
        let e = decode(&encode(vec![ts]), &limits).unwrap_err();
        assert_eq!(e, DecodeError::Series { series: 0, problem: want });
        assert!(e.too_large());
    };
    check(
        series(&[("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")], &[(1, 1.0)]),
        SeriesProblem::TooManyLabels { count: 5, limit: 3 },
    );
    check(
        series(&[("__name__", "up"), ("abcdefghij", "1")], &[(1, 1.0)]),
        SeriesProblem::NameTooLong { len: 10, limit: 8, prefix: "abcdefghij".into() },
    );
    check(
        series(&[("__name__", "up"), ("a", "12345")], &[(1, 1.0)]),
        SeriesProblem::ValueTooLong { name: "a".into(), len: 5, limit: 4 },
    );
}

#[test]
fn exemplars_and_native_histograms_are_skipped_and_counted() {
    let mut with_exemplar = series(&[("__name__", "a_total")], &[(1, 1.0)]);
    with_exemplar.exemplars.push(Exemplar { labels: vec![], value: 1.0, timestamp: 1 });
    let mut buf = encode(vec![with_exemplar, series(&[("__name__", "b")], &[(2, 2.0)])]);
    // A series with a (native) histogram: field 4 of TimeSeries, contents not read.
    let mut hist = series(&[("__name__", "h")], &[]).encode_to_vec();
    hist.extend_from_slice(&[0x22, 0x02, 0x08, 0x01]);
    buf.push(0x0a);
    prost::encoding::encode_varint(hist.len() as u64, &mut buf);
    buf.extend_from_slice(&hist);
    let d = decode(&buf, &Limits::default()).unwrap();
    assert_eq!(d.series.len(), 2);
    assert_eq!((d.exemplars, d.histogram_series), (1, 1));
    assert_eq!(pairs(&d.labels), [("__name__", "a_total"), ("__name__", "b")]);
}

#[test]
fn stale_markers_and_special_values_pass_through() {
    let stale = f64::from_bits(crate::merge::group::STALE_NAN_BITS);
    let buf = encode(vec![series(&[("__name__", "x")], &[(1, stale), (2, f64::INFINITY), (3, f64::NAN)])]);
    let d = decode(&buf, &Limits::default()).unwrap();
    let bits: Vec<u64> = d.samples.iter().map(|s| s.1.to_bits()).collect();
    assert_eq!(bits, [stale.to_bits(), f64::INFINITY.to_bits(), f64::NAN.to_bits()]);
}

proptest! {
    /// Corrupted requests never panic; whatever is accepted is exactly what prost reads.
    #[test]
    fn corrupted_requests(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut buf = encode(vec![
            series(&[("__name__", "up"), ("instance", "a:1"), ("job", "node")], &[(1_700_000_000_000, 1.0)]),
            series(&[("__name__", "x_total"), ("k", "v")], &[(1, 4.0), (2, 5.0)]),
        ]);
        for (index, byte) in flips {
            let i = index.index(buf.len());
            buf[i] = byte;
        }
        if let Ok(ours) = with_ours(&buf) {
            // Our extra rules may refuse what prost takes, never the reverse.
            let theirs = ReferenceRequest::decode(buf.as_slice());
            prop_assert!(theirs.is_ok(), "we accepted what prost refuses: {:?}", theirs);
            prop_assert_eq!(ours, with_prost(&buf));
        }
    }
}

/// Found by `corrupted_requests`: a flipped byte that turns a sample's key into field 4 (native
/// histograms) makes the series one the decoder skips; the reference once kept it.
#[test]
fn a_byte_turned_into_a_histogram_field_skips_the_series_in_both() {
    let mut buf = encode(vec![
        series(&[("__name__", "up"), ("instance", "a:1"), ("job", "node")], &[(1_700_000_000_000, 1.0)]),
        series(&[("__name__", "x_total"), ("k", "v")], &[(1, 4.0), (2, 5.0)]),
    ]);
    // The key of the second series' first sample (field 2, 11 bytes: value then timestamp 1)
    // becomes field 4.
    let key = find(&buf, &[0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0x10, 0x40]);
    buf[key] = 0x22;
    assert_eq!(with_ours(&buf).unwrap(), with_prost(&buf));
    assert_eq!(decode(&buf, &Limits::default()).unwrap().histogram_series, 1);
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).unwrap()
}

fn pairs<'a>(labels: &[RawLabel<'a>]) -> Vec<(&'a str, &'a str)> {
    labels.iter().map(|l| (l.name, l.value)).collect()
}
