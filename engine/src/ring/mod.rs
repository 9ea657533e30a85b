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
//! * The producer writes a record's payload and `remaining` with plain
//!   stores, zeroes the commit word of the slot after the record (where the
//!   consumer looks next), then publishes the record by storing its commit
//!   word (see [`record`](crate::record)) with `Release`; a `PAD` before it
//!   is committed after it. The consumer polls the commit word at its head
//!   with `Acquire`, so everything written before the commit is visible
//!   before it reads the record: the record arrives with the one cache line
//!   the consumer polls.
//! * After the commit words the producer stores `open`, `tail` (Release) and
//!   `written`: they lag the commit word, so a reader may have consumed a
//!   record before they count it (`head` ahead of `tail`, `consumed` ahead of
//!   `written`, by at most the record being published). They serve the
//!   quota, the wake-up conditions and a producer that takes the role over:
//!   a producer that died between its commit and its `tail` left a
//!   committed record past `tail`, which [`Producer::resync`] counts.
//! * The consumer reads a record, then frees it with `head.store(Release)`.
//!   The producer loads `head` with `Acquire` before it overwrites the freed
//!   bytes, so the consumer's reads happen before the producer's new writes.
//! * The producer caches the consumer's head and reloads it only when the
//!   cached value says "full": on the fast path each side touches only its
//!   own cache lines and the records', and there is no read-modify-write.
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
//! violation is [`Error::Corrupt`]. A commit word that does not name the
//! position it is read at is "nothing published yet"; one that does is
//! checked like any header: its length against the buffer end and against
//! the consumer's own head (a record never reaches past `head + capacity`,
//! where the producer could not have written). Indices are always masked and lengths
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

#[cfg(test)]
mod commit_tests;
mod consumer;
mod producer;
mod storage;
#[cfg(test)]
mod tests;

pub use consumer::{Consumer, MessageRead, ReadGrant};
pub use producer::{Grant, Producer};
pub use storage::{DirectStorage, RingStorage};

use crate::layout::{MAX_CAPACITY, MIN_CAPACITY};
use crate::record::{decode_commit, Header, ALIGN};
use crate::sync::Atomic64;
use crate::{Error, Result};
use core::sync::atomic::Ordering::{Acquire, Relaxed};

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

/// The same invariant when `head` may be ahead of the shared `tail`: a
/// reader consumes a record as soon as its commit word is there, which can be
/// before its producer stored `tail` (or never, if that producer died).
#[inline]
fn check_lagging_span(head: u64, tail: u64, cap: u64) -> Result<()> {
    if head > tail {
        check_span(tail, head, cap)
    } else {
        check_span(head, tail, cap)
    }
}

/// The index of the slot at position `pos`: masked and 64-aligned, so it is
/// a valid argument of [`RingStorage::commit_word`] whatever `pos` is.
#[inline]
fn slot(pos: u64, cap: u64) -> usize {
    (pos & (cap - 1) & !(ALIGN as u64 - 1)) as usize
}

/// The header of the record committed at position `pos`, `None` if nothing
/// is committed there yet. Checks the flags only; lengths are the caller's.
#[inline]
fn committed_header<S: RingStorage>(s: &S, cap: u64, pos: u64) -> Result<Option<Header>> {
    let idx = slot(pos, cap);
    // SAFETY: `slot` is a multiple of 64 below the capacity.
    let word = unsafe { s.commit_word(idx) }.load(Acquire);
    let Some((len, flags)) =
        decode_commit(word, pos).map_err(|_| Error::Corrupt("unknown record flags"))?
    else {
        return Ok(None);
    };
    let mut b = [0u8; 8];
    // SAFETY: `idx` is 64-aligned and capacity >= 256, so `idx + 16 <=
    // capacity`. The record is committed: its producer does not write it
    // again until the consumer frees it.
    unsafe { s.read(idx + 8, &mut b) };
    Ok(Some(Header {
        len,
        flags,
        remaining: u64::from_le_bytes(b),
    }))
}

/// Whether a record (of any kind, padding included) is committed at ring
/// position `pos` of the ring in `storage`: what a reader whose head is at
/// `pos` waits for. One atomic load of the slot's commit word, the line the
/// record itself lives in; a corrupt commit word counts as a record, so
/// that the reader goes on to read it and reports the corruption. Relaxed:
/// a readiness hint; whoever acts on it reads the record through the
/// consumer, whose own load of the word is `Acquire`.
///
/// ```
/// use shmpipe_engine::{ring::is_committed, HeapRing};
/// let (mut tx, rx) = HeapRing::new(4096)?.split();
/// assert!(!is_committed(rx.storage(), 0));
/// assert!(tx.try_push(b"hi", 0)?);
/// assert!(is_committed(rx.storage(), 0));
/// # Ok::<(), shmpipe_engine::Error>(())
/// ```
#[inline]
pub fn is_committed<S: RingStorage>(storage: &S, pos: u64) -> bool {
    let cap = storage.capacity() as u64;
    // SAFETY: `slot` is a multiple of 64 below the capacity.
    let word = unsafe { storage.commit_word(slot(pos, cap)) }.load(Relaxed);
    !matches!(decode_commit(word, pos), Ok(None))
}
