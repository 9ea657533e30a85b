//! Record framing inside a ring.
//!
//! A ring holds *records*. Each starts on a 64-byte boundary with a 16-byte
//! header:
//!
//! ```text
//! offset 0  u32 len        payload bytes in this record
//! offset 4  u32 flags      PAD | ABORT (unknown bits are corruption)
//! offset 8  u64 remaining  payload bytes of the same write still to come
//!                          in later records (0: this record ends the write)
//! ```
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
    /// Encodes the header into its 16 shared bytes.
    #[inline]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..16].copy_from_slice(&self.remaining.to_le_bytes());
        b
    }

    /// Decodes 16 bytes read from shared memory. Only the flags are checked
    /// here; the ring checks lengths against its own bounds.
    #[inline]
    pub fn decode(b: &[u8; HEADER_LEN]) -> Option<Header> {
        let h = Header {
            len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            flags: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            remaining: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        };
        (h.flags & !KNOWN_FLAGS == 0 && h.flags != KNOWN_FLAGS).then_some(h)
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
    fn header_round_trip_and_unknown_flags() {
        let h = Header {
            len: 7,
            flags: FLAG_ABORT,
            remaining: 1 << 40,
        };
        assert_eq!(Header::decode(&h.encode()), Some(h));
        let mut bad = h.encode();
        bad[4] = 0x80;
        assert_eq!(Header::decode(&bad), None);
        bad[4] = (FLAG_PAD | FLAG_ABORT) as u8;
        assert_eq!(Header::decode(&bad), None);
    }
}
