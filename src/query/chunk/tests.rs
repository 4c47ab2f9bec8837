use super::*;
use proptest::prelude::*;

/// A bit writer and an XOR-chunk encoder following Prometheus' `xor.go` (the encoder side of
/// the format described in the module doc), to make chunks with known contents.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
    bits: usize,
}

impl Writer {
    fn bit(&mut self, b: bool) {
        if self.bits % 8 == 0 {
            self.bytes.push(0);
        }
        if b {
            *self.bytes.last_mut().unwrap() |= 1 << (7 - self.bits % 8);
        }
        self.bits += 1;
    }
    fn bits(&mut self, v: u64, n: u32) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }
    fn uvarint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.bits(u64::from(b), 8);
                return;
            }
            self.bits(u64::from(b | 0x80), 8);
        }
    }
}

pub(crate) fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut w = Writer::default();
    let (mut t_prev, mut delta_prev, mut v_prev) = (0i64, 0i64, 0u64);
    let (mut leading, mut trailing) = (0xffu32, 0u32);
    for (i, &(t, v)) in samples.iter().enumerate() {
        let vb = v.to_bits();
        match i {
            0 => {
                w.uvarint(((t << 1) ^ (t >> 63)) as u64);
                w.bits(vb, 64);
            }
            _ => {
                let delta = t - t_prev;
                if i == 1 {
                    w.uvarint(delta as u64);
                } else {
                    let dod = delta - delta_prev;
                    let fits = |n: u32| -((1i64 << (n - 1)) - 1) <= dod && dod <= 1 << (n - 1);
                    if dod == 0 {
                        w.bit(false);
                    } else if fits(14) {
                        w.bits(0b10, 2);
                        w.bits(dod as u64 & ((1 << 14) - 1), 14);
                    } else if fits(17) {
                        w.bits(0b110, 3);
                        w.bits(dod as u64 & ((1 << 17) - 1), 17);
                    } else if fits(20) {
                        w.bits(0b1110, 4);
                        w.bits(dod as u64 & ((1 << 20) - 1), 20);
                    } else {
                        w.bits(0b1111, 4);
                        w.bits(dod as u64, 64);
                    }
                }
                delta_prev = delta;
                let x = vb ^ v_prev;
                if x == 0 {
                    w.bit(false);
                } else {
                    w.bit(true);
                    let l = x.leading_zeros().min(31);
                    let tr = x.trailing_zeros();
                    if leading != 0xff && l >= leading && tr >= trailing {
                        w.bit(false);
                        w.bits(x >> trailing, 64 - leading - trailing);
                    } else {
                        leading = l;
                        trailing = tr;
                        w.bit(true);
                        w.bits(u64::from(l), 5);
                        let sig = 64 - l - tr;
                        w.bits(u64::from(sig % 64), 6);
                        w.bits(x >> tr, sig);
                    }
                }
            }
        }
        t_prev = t;
        v_prev = vb;
    }
    let mut out = (samples.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&w.bytes);
    out
}

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
