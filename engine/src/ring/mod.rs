//! The ring: a single-producer single-consumer queue of variable-length
//! records in a power-of-two byte buffer.
//!
//! # Positions
//!
//! `tail` (producer) and `head` (consumer) are byte positions that only grow;
//! the index of a position is `pos & (capacity - 1)`. The ring is empty when
//! `head == tail` and holds `tail - head <= capacity` bytes of records. Every
//! record starts on a 64-byte boundary and never wraps (a `PAD` record fills
//! the end of the buffer instead), so a reservation is one contiguous slice.
//!
//! # Memory ordering
//!
//! * The producer writes a record's payload and header with plain stores, then
//!   publishes it with `tail.store(Release)`. The consumer loads `tail` with
//!   `Acquire`, so everything written before the publication is visible
//!   before it reads the record.
//! * The consumer reads a record, then frees it with `head.store(Release)`.
//!   The producer loads `head` with `Acquire` before it overwrites the freed
//!   bytes, so the consumer's reads happen before the producer's new writes.
//! * Each side caches the other's index and reloads it only when the cached
//!   value says "full" or "empty": on the fast path a side touches only its
//!   own cache line, and there is no read-modify-write at all.
//! * Wake-ups go through [`Event`](crate::wait::Event)s after publication.
//!
//! # Hostile memory
//!
//! The peer can write anything anywhere in the segment. Each side therefore
//! keeps its own position in process memory and treats the shared copy as an
//! output (except when it deliberately takes over the shared state, in
//! [`Producer::resync`] / [`Consumer::resync`], which validate it). Every value
//! read from the other side (`head`, `tail`, a record header) is checked
//! against the invariants above before it is used to compute an index; a
//! violation is [`Error::Corrupt`]. Indices are always masked and lengths
//! checked against the buffer end, so no access can leave the data area. The
//! payload bytes themselves are opaque: garbage in, garbage out.
//!
//! # Files
//!
//! * `storage.rs`: [`RingStorage`] and [`DirectStorage`], the memory a ring
//!   runs on, and their forwarding impls for references and `Arc`s.
//! * `producer.rs`: [`Producer`] and its reservation, [`Grant`].
//! * `consumer.rs`: [`Consumer`], its zero-copy [`ReadGrant`] and the
//!   [`MessageRead`] result.
//!
//! This file holds the checks of what the other side wrote: the capacity
//! and the span between the two positions (both sides), and the decoding of
//! a record header (the consumer).

mod consumer;
mod producer;
mod storage;
#[cfg(test)]
mod tests;

pub use consumer::{Consumer, MessageRead, ReadGrant};
pub use producer::{Grant, Producer};
pub use storage::{DirectStorage, RingStorage};

use crate::layout::{MAX_CAPACITY, MIN_CAPACITY};
use crate::record::{Header, ALIGN, HEADER_LEN};
use crate::{Error, Result};

fn checked_capacity<S: RingStorage>(s: &S) -> Result<u64> {
    let cap = s.capacity();
    if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
        return Err(Error::InvalidArgument("ring capacity out of range"));
    }
    Ok(cap as u64)
}

/// The ring invariant between a consumer position and a producer position.
#[inline]
fn check_span(head: u64, tail: u64, cap: u64) -> Result<()> {
    if head % ALIGN as u64 != 0 || tail % ALIGN as u64 != 0 {
        return Err(Error::Corrupt("ring position not 64-byte aligned"));
    }
    // Positions must also leave room to grow by a whole ring: a peer that
    // plants a position near u64::MAX must not make our additions overflow.
    match (tail.checked_sub(head), tail.checked_add(2 * cap)) {
        (Some(used), Some(_)) if used <= cap => Ok(()),
        _ => Err(Error::Corrupt("ring positions out of range")),
    }
}

fn read_header<S: RingStorage>(s: &S, at: usize) -> Result<Header> {
    let mut b = [0u8; HEADER_LEN];
    // SAFETY: `at` is a masked, 64-aligned index and capacity >= 256, so
    // `at + 16 <= capacity`. The header belongs to a published record, which
    // the producer does not write again until the consumer frees it.
    unsafe { s.read(at, &mut b) };
    Header::decode(&b).ok_or(Error::Corrupt("unknown record flags"))
}
