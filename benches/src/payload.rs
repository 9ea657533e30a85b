//! Message buffers and payload checks.
//!
//! Every message carries its sequence number at three places (start, middle,
//! end), so a lost, repeated, reordered or torn message is caught by every
//! receiver at the cost of three 8-byte stores and loads. The bytes in between
//! hold a size-dependent pattern that the receiver checks in full on the first
//! message of each run (checking 1 MiB per message would measure the checker,
//! not the transport).

/// Byte written to fresh buffers: non-zero, so allocation really touches (and
/// faults in) every page before a timed region starts.
const FILL: u8 = 0x5a;

/// A message buffer that starts `offset` bytes past a 64-byte boundary.
pub struct Buf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Buf {
    /// A buffer of `len` bytes starting `offset` bytes after a 64-byte
    /// boundary, every page already touched.
    pub fn new(len: usize, offset: usize) -> Buf {
        let storage = vec![FILL; len + offset + 64];
        let misalign = storage.as_ptr().addr() % 64;
        let start = (64 - misalign) % 64 + offset;
        Buf {
            storage,
            start,
            len,
        }
    }

    /// Length of the message.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` for an empty buffer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the first byte from the previous 64-byte boundary.
    pub fn misalignment(&self) -> usize {
        self.as_slice().as_ptr().addr() % 64
    }

    /// The message bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// The message bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Where the sequence number is stored in a message of `len >= 16` bytes.
fn stamp_positions(len: usize) -> [usize; 3] {
    [0, (len / 2) & !7, len - 8]
}

fn pattern_byte(len: usize, i: usize) -> u8 {
    (i.wrapping_mul(131) ^ len.wrapping_mul(7).rotate_left(3)) as u8 | 1
}

/// Fills `msg` with the pattern for its length.
pub fn fill_pattern(msg: &mut [u8]) {
    let len = msg.len();
    for (i, b) in msg.iter_mut().enumerate() {
        *b = pattern_byte(len, i);
    }
}

/// Writes `seq` at the stamp positions of `msg` (`msg.len() >= 16`).
#[inline]
pub fn stamp(msg: &mut [u8], seq: u64) {
    for p in stamp_positions(msg.len()) {
        msg[p..p + 8].copy_from_slice(&seq.to_le_bytes());
    }
}

/// The sequence number in the first word of `msg`.
#[inline]
pub fn first_word(msg: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&msg[..8]);
    u64::from_le_bytes(w)
}

/// Whether every stamp of `msg` holds `seq`.
#[inline]
pub fn stamps_ok(msg: &[u8], seq: u64) -> bool {
    stamp_positions(msg.len())
        .iter()
        .all(|&p| msg[p..p + 8] == seq.to_le_bytes())
}

/// Whether `msg` is exactly the pattern for its length stamped with `seq`.
pub fn full_ok(msg: &[u8], seq: u64) -> bool {
    let len = msg.len();
    let stamps = stamp_positions(len);
    stamps_ok(msg, seq)
        && msg.iter().enumerate().all(|(i, &b)| {
            stamps.iter().any(|&p| (p..p + 8).contains(&i)) || b == pattern_byte(len, i)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_have_the_requested_alignment() {
        for offset in [0, 16] {
            let b = Buf::new(4096, offset);
            assert_eq!(b.misalignment(), offset);
            assert_eq!(b.len(), 4096);
        }
    }

    #[test]
    fn checks_catch_wrong_sequence_and_torn_payload() {
        let mut m = vec![0u8; 64];
        fill_pattern(&mut m);
        stamp(&mut m, 42);
        assert!(stamps_ok(&m, 42) && full_ok(&m, 42));
        assert!(!stamps_ok(&m, 43));
        m[60] ^= 1; // inside the last stamp
        assert!(!stamps_ok(&m, 42));
        m[60] ^= 1;
        m[20] ^= 1; // pattern byte, not a stamp
        assert!(stamps_ok(&m, 42) && !full_ok(&m, 42));
    }
}
