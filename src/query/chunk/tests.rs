use super::*;
use proptest::prelude::*;

use super::encode_xor as encode;

fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
}

#[test]
fn regular_scrapes_counters_gauges_and_special_values() {
    let mut samples: Vec<(i64, f64)> = (0..120).map(|i| (1_700_000_000_000 + i * 15_000, i as f64 * 3.5)).collect();
    samples[7].0 += 37; // scrape jitter
    samples[50].1 = f64::from_bits(0x7ff0_0000_0000_0002); // a staleness marker
    samples[51].1 = f64::INFINITY;
    samples[52].1 = -0.0;
    samples[60].0 += 9_000_000; // a long pause: a 64-bit delta of deltas
    for s in samples.iter_mut().skip(61) {
        s.0 += 9_000_000;
    }
    let data = encode(&samples);
    let mut out = Vec::new();
    decode_xor(&data, &mut out).expect("decodes");
    assert!(same(&out, &samples));
}

#[test]
fn malformed_chunks_are_errors() {
    let mut out = Vec::new();
    assert_eq!(decode_xor(&[], &mut out), Err(ChunkError::Header(0)));
    assert_eq!(decode_xor(&[0], &mut out), Err(ChunkError::Header(0)));
    assert_eq!(decode_xor(&[0, 0], &mut out), Ok(()));
    let data = encode(&[(1000, 1.0), (2000, 2.0), (3000, 3.0)]);
    for cut in 2..data.len() - 1 {
        assert!(matches!(decode_xor(&data[..cut], &mut Vec::new()), Err(ChunkError::Truncated { .. })), "cut at {cut}");
    }
    // A count larger than the stream holds.
    let mut more = data.clone();
    more[1] = 9;
    assert!(matches!(decode_xor(&more, &mut Vec::new()), Err(ChunkError::Truncated { count: 9, .. })));
}

proptest! {
    #[test]
    fn round_trips(start in -1_000_000_000_000i64..2_000_000_000_000, deltas in prop::collection::vec(0i64..5_000_000, 0..200), values in prop::collection::vec(any::<f64>(), 200)) {
        let mut t = start;
        let mut samples = vec![(t, values[0])];
        for (i, d) in deltas.iter().enumerate() {
            t += d;
            samples.push((t, values[(i + 1) % values.len()]));
        }
        let mut out = Vec::new();
        decode_xor(&encode(&samples), &mut out).expect("decodes");
        prop_assert!(same(&out, &samples));
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_xor(&data, &mut Vec::new());
    }
}
