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
