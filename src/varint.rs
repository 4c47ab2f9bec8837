//! Protobuf varints (LEB128), written by the hand-written encoders: Remote-Write requests
//! ([`crate::remote::encode`]), protobuf `/federate` bodies ([`crate::render`]) and the
//! length prefixes of a key's values ([`crate::key`]).

/// Appends `v` as a varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// How many bytes [`put_varint`] writes for `v`.
#[inline]
pub fn varint_len(v: u64) -> usize {
    // One byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads the varint at the start of `bytes`: its value and how many bytes it took. A varint cut
/// short reads as what it has (the blobs read with this were written by [`put_varint`]).
#[inline]
pub fn get_varint(bytes: &[u8]) -> (u64, usize) {
    match bytes.first() {
        Some(&b) if b < 0x80 => (u64::from(b), 1),
        _ => {
            let mut v = 0u64;
            for (i, &b) in bytes.iter().enumerate().take(10) {
                v |= u64::from(b & 0x7f) << (7 * i);
                if b < 0x80 {
                    return (v, i + 1);
                }
            }
            (v, bytes.len().min(10))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            out.push(0xff); // what follows is not read
            assert_eq!(get_varint(&out), (v, varint_len(v)));
        }
        assert_eq!(get_varint(&[]), (0, 0));
    }
}
