//! The label-value blobs of a group's series ([`crate::key`]), stored back to back in a few
//! large chunks instead of one allocation per series.
//!
//! Why not one `Arc` per series, as before: at a million series the per-allocation overhead
//! (malloc rounds a ~76-byte blob to a 96-byte chunk) was ~20 MB, and every published snapshot
//! touched every series' allocation twice (reference count up when built, down when dropped),
//! a cache miss per series per merge. A [`ValRef`] is two integers: snapshots copy it for free
//! and resolve it through the [`Chunks`] they hold (docs/benchmarks.md, memory and scrape cost).
//!
//! Chunks are immutable once sealed and shared by `Arc<[u8]>`; the group appends to one open
//! chunk and seals it (one copy of the bytes appended since the last seal) when it shares the
//! arena (a snapshot, an emitted batch), so in steady state (no new series) nothing is copied.
//! `Arc<[u8]>` rather than `Arc<Vec<u8>>`: one indirection less for every key a reader
//! resolves (`federate_body` with a selector over 100k series: −7 %). Blobs of removed series are garbage until the arena is
//! compacted: when garbage exceeds the live bytes, or too many small chunks piled up, the
//! group copies the live blobs into one new chunk; snapshots keep the old chunks alive.

use std::sync::Arc;

/// Where one blob is: a chunk and the offset of its length prefix in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValRef {
    chunk: u32,
    offset: u32,
}

impl ValRef {
    /// Refers to nothing (free slab slots); resolving it gives an empty blob.
    pub const NONE: ValRef = ValRef { chunk: u32::MAX, offset: 0 };
}

/// The sealed chunks of an arena at one moment: what snapshots and emitted batches resolve
/// their [`ValRef`]s with.
#[derive(Debug, Default)]
pub struct Chunks(Vec<Arc<[u8]>>);

impl Chunks {
    /// The blob `r` refers to (empty for [`ValRef::NONE`] or a reference from another arena).
    #[inline]
    pub fn get(&self, r: ValRef) -> &[u8] {
        self.0.get(r.chunk as usize).map_or(&[], |c| blob_at(c, r.offset))
    }
}

#[inline]
fn blob_at(chunk: &[u8], offset: u32) -> &[u8] {
    let at = chunk.get(offset as usize..).unwrap_or_default();
    let (len, n) = crate::varint::get_varint(at);
    at.get(n..n.saturating_add(usize::try_from(len).unwrap_or(usize::MAX))).unwrap_or_default()
}

/// A chunk never grows past this (offsets are `u32`); blobs larger than it get a chunk each.
const MAX_CHUNK: usize = 1 << 30;
/// Compact when this many chunks piled up (each publication that added series seals one).
const MAX_CHUNKS: usize = 256;
/// Garbage below this is never worth a compaction.
const MIN_GARBAGE: u64 = 1 << 20;

/// The blobs of one group.
#[derive(Debug, Default)]
pub struct ValueArena {
    sealed: Vec<Arc<[u8]>>,
    open: Vec<u8>,
    /// The sealed list as last shared, handed out again while nothing new was sealed.
    shared: Option<Arc<Chunks>>,
    live: u64,
    garbage: u64,
}

impl ValueArena {
    /// Stores `blob` and returns where it is.
    pub fn push(&mut self, blob: &[u8]) -> ValRef {
        let size = crate::varint::varint_len(blob.len() as u64) + blob.len();
        if self.open.len() + size > MAX_CHUNK && !self.open.is_empty() {
            self.seal();
        }
        let r = ValRef { chunk: self.sealed.len() as u32, offset: self.open.len() as u32 };
        crate::varint::put_varint(&mut self.open, blob.len() as u64);
        self.open.extend_from_slice(blob);
        self.live += size as u64;
        r
    }

    /// The blob `r` refers to.
    #[inline]
    pub fn get(&self, r: ValRef) -> &[u8] {
        let chunk = r.chunk as usize;
        if chunk == self.sealed.len() {
            blob_at(&self.open, r.offset)
        } else {
            self.sealed.get(chunk).map_or(&[], |c| blob_at(c, r.offset))
        }
    }

    /// Forgets the blob at `r` (its bytes are garbage until a compaction).
    pub fn remove(&mut self, r: ValRef) {
        if r == ValRef::NONE {
            return;
        }
        let len = self.get(r).len();
        let size = (crate::varint::varint_len(len as u64) + len) as u64;
        self.live = self.live.saturating_sub(size);
        self.garbage += size;
    }

    fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let chunk = std::mem::take(&mut self.open);
        self.sealed.push(Arc::from(chunk));
        self.shared = None;
    }

    /// Every blob stored so far, for a snapshot or an emitted batch: seals the open chunk.
    pub fn shared(&mut self) -> Arc<Chunks> {
        self.seal();
        self.shared.get_or_insert_with(|| Arc::new(Chunks(self.sealed.clone()))).clone()
    }

    /// True when a compaction is worth it: garbage beyond the live bytes, or too many chunks.
    pub fn wants_compaction(&self) -> bool {
        (self.garbage > self.live && self.garbage >= MIN_GARBAGE) || self.sealed.len() > MAX_CHUNKS
    }

    /// Copies the blobs of `refs` (every live one) into a fresh arena and points them there.
    /// References not in `refs` are invalid afterwards in this arena (chunks already shared
    /// keep resolving them).
    pub fn compact<'a>(&mut self, refs: impl Iterator<Item = &'a mut ValRef>) {
        let mut fresh = ValueArena { open: Vec::with_capacity(self.live as usize), ..ValueArena::default() };
        for r in refs {
            *r = fresh.push(self.get(*r));
        }
        *self = fresh;
    }

    /// Bytes of live blobs and of garbage (what the compaction tests check).
    pub fn usage(&self) -> (u64, u64) {
        (self.live, self.garbage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_resolve_before_and_after_sealing_and_in_shared_chunks() {
        let mut a = ValueArena::default();
        let r1 = a.push(b"first");
        let shared1 = a.shared();
        let r2 = a.push(b"");
        let big = vec![7u8; 300]; // a two-byte length prefix
        let r3 = a.push(&big);
        assert_eq!(a.get(r1), b"first");
        assert_eq!(a.get(r2), b"");
        assert_eq!(a.get(r3), &big[..]);
        let shared2 = a.shared();
        for (r, want) in [(r1, &b"first"[..]), (r2, b""), (r3, &big[..])] {
            assert_eq!(shared2.get(r), want);
            assert_eq!(a.get(r), want);
        }
        assert_eq!(shared1.get(r1), b"first");
        assert_eq!(shared1.get(r3), b"", "an older view does not know later chunks");
        assert!(Arc::ptr_eq(&shared2, &a.shared()), "nothing sealed since: the same view");
        assert_eq!(a.get(ValRef::NONE), b"");
    }

    #[test]
    fn compaction_keeps_live_blobs_and_old_views() {
        let mut a = ValueArena::default();
        let mut refs: Vec<ValRef> = (0..1000u32).map(|i| a.push(format!("value-{i}").as_bytes())).collect();
        let before = a.shared();
        let old = refs.clone();
        // Remove 900 of them: garbage beyond live, but below the 1 MB floor.
        for r in refs.drain(100..) {
            a.remove(r);
        }
        assert!(!a.wants_compaction());
        let (live, garbage) = a.usage();
        assert!(garbage > live);
        a.compact(refs.iter_mut());
        assert_eq!(a.usage(), (live, 0));
        for (i, r) in refs.iter().enumerate() {
            assert_eq!(a.get(*r), format!("value-{i}").as_bytes());
        }
        // The snapshot taken before still resolves everything it had, removed ones included.
        assert_eq!(before.get(old[999]), b"value-999");
    }

    #[test]
    fn garbage_beyond_live_and_the_floor_asks_for_compaction() {
        let mut a = ValueArena::default();
        let refs: Vec<ValRef> = (0..3000).map(|_| a.push(&[1u8; 1000])).collect();
        for r in &refs[..2000] {
            a.remove(*r);
        }
        assert!(a.wants_compaction());
        let mut many = ValueArena::default();
        for _ in 0..=MAX_CHUNKS {
            many.push(b"x");
            many.shared();
        }
        assert!(many.wants_compaction(), "too many small chunks");
    }
}
