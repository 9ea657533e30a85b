//! Record framing inside a ring.
//!
//! A ring holds *records*. Each starts on a 64-byte boundary with a 16-byte
//! header:
//!
//! ```text
//! offset 0  u64 commit     bit 63: set; bits 34..63: the record's slot
//!                          (ring position / 64) modulo 2^29; bits 32..34:
//!                          flags PAD | ABORT (both at once is corruption);
//!                          bits 0..32: payload bytes in this record
//! offset 8  u64 remaining  payload bytes of the same write still to come
//!                          in later records (0: this record ends the write)
//! ```
//!
//! The commit word is what publishes a record: the producer stores it last,
//! with `Release`, and the consumer polls it (`Acquire`) at its head, so
//! a record reaches the reader in the cache line it lives in, without a
//! detour through the producer's `tail` line (which the producer still
//! updates, after the commit word, for quotas and wake-ups). The slot number
//! in it tells a record committed at this position from whatever the same
//! bytes held a lap earlier: the header of the record one lap back (slot
//! minus capacity / 64, never equal modulo 2^29 since capacities are at most
//! 2^30 bytes) or payload bytes of an earlier record. Payload bytes can hold
//! any value, so before committing a record the producer zeroes the commit
//! word of the slot right after it, where the consumer will look next (see
//! `ring::producer`); zero never marks a record committed (bit 63 is clear).
//!
//! A payload of at most [`INLINE_MAX`] bytes sits right after the header, so
//! a small message costs one cache line. A longer payload starts at offset 64,
//! on its own cache line: bulk copies then run on 64-byte-aligned memory on
//! both sides, which matters (unaligned copies are many times slower on
//! common CPUs). Record sizes are multiples of 64, so every record header is
//! 64-byte aligned too.
//!
//! One write of the pipe layer is one record, or, when it is larger than the
//! ring or than the free space, a run of *fragments* whose `remaining` counts
//! down to 0. A `PAD` record fills the unusable tail of the buffer before a
//! record that must start at index 0 (records never wrap, so a reservation is
//! one contiguous slice). An `ABORT` record (length 0) ends a write whose
//! writer died or withdrew it after some fragments were published.

/// Size of the record header.
pub const HEADER_LEN: usize = 16;
/// Records start on multiples of this.
pub const ALIGN: usize = 64;
/// Payloads up to this length share the header's cache line.
pub const INLINE_MAX: usize = ALIGN - HEADER_LEN;

/// The record is padding up to the end of the buffer.
pub const FLAG_PAD: u32 = 1;
/// The record ends, prematurely, a write whose earlier fragments carried
/// `remaining > 0`.
pub const FLAG_ABORT: u32 = 2;
const KNOWN_FLAGS: u32 = FLAG_PAD | FLAG_ABORT;

/// Where the payload of a record of `len` bytes starts, from the record start.
#[inline]
pub const fn payload_offset(len: usize) -> usize {
    if len <= INLINE_MAX {
        HEADER_LEN
    } else {
        ALIGN
    }
}

/// The space a record of `len` payload bytes occupies in the ring.
#[inline]
pub const fn record_size(len: usize) -> usize {
    let end = payload_offset(len) + len;
    (end + ALIGN - 1) & !(ALIGN - 1)
}

/// The largest payload that fits in `space` bytes (a multiple of [`ALIGN`]).
#[inline]
pub const fn max_payload_in(space: usize) -> usize {
    if space < ALIGN {
        0
    } else if space == ALIGN {
        INLINE_MAX
    } else {
        space - ALIGN
    }
}

/// Set in every commit word: zero (a fresh or cleared slot) is never a
/// committed record.
const COMMITTED: u64 = 1 << 63;
const FLAGS_SHIFT: u32 = 32;
const SLOT_SHIFT: u32 = 34;
/// Bits of the slot number kept in a commit word.
const SLOT_BITS: u32 = 29;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// The largest ring capacity whose laps a commit word tells apart: a
/// record one lap back sits `capacity / ALIGN` slots earlier, and that
/// distance must not vanish modulo 2^SLOT_BITS, or its header would pass
/// for ours. The layout's `MAX_CAPACITY` is checked against it there (the
/// format below the layout does not know the layout's limits).
///
/// ```
/// use shmpipe_engine::{layout::MAX_CAPACITY, record::MAX_RING_CAPACITY};
/// assert!(MAX_CAPACITY <= MAX_RING_CAPACITY);
/// ```
pub const MAX_RING_CAPACITY: usize = ALIGN << (SLOT_BITS - 1);

/// The commit word of a record of `len` payload bytes with `flags`,
/// starting at ring position `pos`.
///
/// ```
/// use shmpipe_engine::record::{commit_word, decode_commit, FLAG_PAD};
/// let w = commit_word(4096, 0, FLAG_PAD);
/// assert_eq!(decode_commit(w, 4096), Ok(Some((0, FLAG_PAD))));
/// // The same bytes one lap (of a 1 KiB ring) later are not a record.
/// assert_eq!(decode_commit(w, 4096 + 1024), Ok(None));
/// assert_eq!(decode_commit(0, 0), Ok(None));
/// ```
#[inline]
pub const fn commit_word(pos: u64, len: u32, flags: u32) -> u64 {
    COMMITTED
        | ((pos / ALIGN as u64) & SLOT_MASK) << SLOT_SHIFT
        | (flags as u64 & 3) << FLAGS_SHIFT
        | len as u64
}

/// Decodes a commit word read at ring position `pos`: `Ok(None)` when it
/// does not mark a record committed there (nothing published yet, or bytes
/// of an earlier lap), `Ok(Some((len, flags)))` for a committed record, and
/// `Err` for a commit word of this position with both flags set. Lengths are
/// the ring's to check against its bounds.
///
/// ```
/// use shmpipe_engine::record::{commit_word, decode_commit, FLAG_ABORT};
/// assert_eq!(decode_commit(commit_word(64, 7, 0), 64), Ok(Some((7, 0))));
/// assert_eq!(decode_commit(commit_word(64, 0, FLAG_ABORT), 128), Ok(None));
/// assert!(decode_commit(commit_word(64, 0, 3), 64).is_err());
/// ```
#[inline]
pub const fn decode_commit(word: u64, pos: u64) -> Result<Option<(u32, u32)>, CorruptHeader> {
    let tag = COMMITTED | ((pos / ALIGN as u64) & SLOT_MASK) << SLOT_SHIFT;
    let tag_bits = COMMITTED | SLOT_MASK << SLOT_SHIFT;
    if word & tag_bits != tag {
        return Ok(None);
    }
    let flags = ((word >> FLAGS_SHIFT) & 3) as u32;
    if flags == KNOWN_FLAGS {
        return Err(CorruptHeader);
    }
    Ok(Some((word as u32, flags)))
}

/// A commit word for the right position that no producer writes (both
/// flags set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptHeader;

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload bytes in this record.
    pub len: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Payload bytes of the same write in later records.
    pub remaining: u64,
}

impl Header {
    /// The 16 shared bytes of this header for a record at ring position
    /// `pos`, as committed (the producer stores the first 8, the commit
    /// word, atomically and last; see [`commit_word`]).
    ///
    /// ```
    /// use shmpipe_engine::record::{decode_commit, Header};
    /// let h = Header { len: 3, flags: 0, remaining: 9 };
    /// let b = h.encode(128);
    /// let word = u64::from_le_bytes(b[..8].try_into().unwrap());
    /// assert_eq!(decode_commit(word, 128), Ok(Some((3, 0))));
    /// ```
    #[inline]
    pub fn encode(&self, pos: u64) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&commit_word(pos, self.len, self.flags).to_le_bytes());
        b[8..16].copy_from_slice(&self.remaining.to_le_bytes());
        b
    }

    /// Padding or abort marker: carries no payload for the reader.
    #[inline]
    pub fn is_marker(&self) -> bool {
        self.flags != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_aligned_and_tight() {
        assert_eq!(record_size(0), 64);
        assert_eq!(record_size(48), 64);
        assert_eq!(record_size(49), 128);
        assert_eq!(record_size(64), 128);
        assert_eq!(record_size(65), 192);
        assert_eq!(payload_offset(48), 16);
        assert_eq!(payload_offset(49), 64);
        for space in (64..=4096).step_by(64) {
            let max = max_payload_in(space);
            assert!(record_size(max) <= space, "space {space}");
            assert!(record_size(max + 1) > space, "space {space}");
        }
        assert_eq!(max_payload_in(0), 0);
    }

    #[test]
    fn commit_words_name_their_position() {
        let h = Header {
            len: 7,
            flags: FLAG_ABORT,
            remaining: 1 << 40,
        };
        let word = |b: [u8; HEADER_LEN]| u64::from_le_bytes(b[..8].try_into().unwrap());
        let w = word(h.encode(1 << 20));
        assert_eq!(decode_commit(w, 1 << 20), Ok(Some((7, FLAG_ABORT))));
        // One lap back or ahead, for every capacity, is not this record.
        let mut cap = 4 * ALIGN as u64;
        while cap <= MAX_RING_CAPACITY as u64 {
            assert_eq!(decode_commit(w, (1 << 20) + cap), Ok(None));
            if cap <= 1 << 20 {
                assert_eq!(decode_commit(w, (1 << 20) - cap), Ok(None));
            }
            cap *= 2;
        }
        // Zero (a fresh or cleared slot) is nothing, at every position.
        for pos in [0, 64, 1 << 35, !63] {
            assert_eq!(decode_commit(0, pos), Ok(None));
        }
        // The largest length survives; both flags at once are corruption.
        assert_eq!(
            decode_commit(commit_word(0, u32::MAX, FLAG_PAD), 0),
            Ok(Some((u32::MAX, FLAG_PAD)))
        );
        assert_eq!(decode_commit(commit_word(0, 0, 3), 0), Err(CorruptHeader));
    }
}
