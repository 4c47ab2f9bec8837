//! Decoding Prometheus' XOR chunks, the sample encoding of its TSDB and of streamed remote read.
//!
//! Layout (Prometheus `tsdb/chunkenc/xor.go`, after Facebook's Gorilla paper, §4.1): a 2-byte
//! big-endian sample count, then a bit stream: the first timestamp as a signed varint and its
//! value as 64 raw bits; the second timestamp as an unsigned varint delta; every later
//! timestamp as a delta of deltas in a prefix code (`0`; `10` + 14 bits; `110` + 17; `1110` +
//! 20; `1111` + 64), and every value after the first as the XOR with the previous one (`0`: the
//! same; `10`: the meaningful bits within the previous leading/trailing zero window; `11` + 5
//! bits of leading zeros + 6 bits of length (0 meaning 64) + the bits).
//!
//! Hand-written: no maintained crate decodes Prometheus' chunk format, and this is the hot loop
//! of every query (`benches/query.rs` measures it). Malformed input is an error, never a panic.

/// Why a chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("XOR chunk too short for its {0}-sample header")]
    Header(usize),
    #[error("XOR chunk ends inside sample {index} of {count}")]
    Truncated { index: usize, count: usize },
    #[error("XOR chunk has an invalid value window at sample {0}")]
    Window(usize),
    #[error("XOR chunk timestamps go backwards at sample {0}")]
    Backwards(usize),
}

/// A reader of bits, most significant first.
struct Bits<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> Bits<'a> {
    #[inline]
    fn bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos >> 3)?;
        let bit = (byte >> (7 - (self.pos & 7))) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// `n` (≤ 64) bits as an unsigned number.
    #[inline]
    fn bits(&mut self, mut n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if self.pos + n as usize > self.data.len() * 8 {
            return None;
        }
        let mut out = 0u64;
        while n > 0 {
            let byte = u64::from(self.data[self.pos >> 3]);
            let offset = (self.pos & 7) as u32;
            let available = 8 - offset;
            let take = available.min(n);
            let chunk = (byte >> (available - take)) & ((1u64 << take) - 1);
            out = (out << take) | chunk;
            n -= take;
            self.pos += take as usize;
        }
        Some(out)
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.bits(8)?;
            if shift == 63 && b > 1 {
                return None; // overflows 64 bits
            }
            out |= (b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}

/// Appends the samples of XOR chunk `data` to `out` as (milliseconds, value).
pub fn decode_xor(data: &[u8], out: &mut Vec<(i64, f64)>) -> Result<(), ChunkError> {
    let Some(&[hi, lo]) = data.get(..2).map(|h| <&[u8; 2]>::try_from(h).expect("two bytes")) else {
        return Err(ChunkError::Header(0));
    };
    let count = usize::from(u16::from_be_bytes([hi, lo]));
    if count == 0 {
        return Ok(());
    }
    let mut r = Bits { data: &data[2..], pos: 0 };
    let truncated = |index| ChunkError::Truncated { index, count };
    out.reserve(count);
    let mut t = r.varint().ok_or(truncated(0))?;
    let mut v = r.bits(64).ok_or(truncated(0))?;
    out.push((t, f64::from_bits(v)));
    let (mut leading, mut trailing) = (0u32, 0u32);
    let mut delta: i64 = 0;
    for index in 1..count {
        if index == 1 {
            let d = r.uvarint().ok_or(truncated(index))?;
            delta = i64::try_from(d).map_err(|_| ChunkError::Backwards(index))?;
        } else {
            let mut prefix = 0u8;
            for _ in 0..4 {
                prefix <<= 1;
                if !r.bit().ok_or(truncated(index))? {
                    break;
                }
                prefix |= 1;
            }
            let dod = match prefix {
                0b0 => 0,
                0b10 => signed(r.bits(14).ok_or(truncated(index))?, 14),
                0b110 => signed(r.bits(17).ok_or(truncated(index))?, 17),
                0b1110 => signed(r.bits(20).ok_or(truncated(index))?, 20),
                _ => r.bits(64).ok_or(truncated(index))? as i64,
            };
            delta = delta.wrapping_add(dod);
        }
        if delta < 0 {
            return Err(ChunkError::Backwards(index));
        }
        t = t.wrapping_add(delta);
        // The value: unchanged, XOR within the previous window, or XOR with a new window.
        if r.bit().ok_or(truncated(index))? {
            if r.bit().ok_or(truncated(index))? {
                leading = r.bits(5).ok_or(truncated(index))? as u32;
                let mut significant = r.bits(6).ok_or(truncated(index))? as u32;
                if significant == 0 {
                    significant = 64;
                }
                trailing = 64u32.checked_sub(leading + significant).ok_or(ChunkError::Window(index))?;
            }
            let significant = 64 - leading - trailing;
            if significant == 0 {
                return Err(ChunkError::Window(index));
            }
            let bits = r.bits(significant).ok_or(truncated(index))?;
            v ^= bits << trailing;
        }
        out.push((t, f64::from_bits(v)));
    }
    Ok(())
}

/// The `n`-bit two's-complement-like field of a delta of deltas: values above 2^(n-1) are
/// negative (Prometheus' `docs/bstream.md`).
#[inline]
fn signed(bits: u64, n: u32) -> i64 {
    if bits > 1 << (n - 1) { bits as i64 - (1i64 << n) } else { bits as i64 }
}

/// A bit writer for [`encode_xor`].
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
        if b && let Some(last) = self.bytes.last_mut() {
            *last |= 1 << (7 - self.bits % 8);
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

/// An XOR chunk of `samples` (at most 65 535), following Prometheus' `xor.go` — the encoder
/// side of the format above. promfed never writes chunks: this makes chunks with known
/// contents for tests and benchmarks.
pub fn encode_xor(samples: &[(i64, f64)]) -> Vec<u8> {
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

#[cfg(test)]
mod tests;
