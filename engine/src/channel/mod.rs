//! Blocking one-way channels across processes: the engine's complete end
//! product, and what the pipe layer builds on.
//!
//! A channel is one ring in a [`Segment`], a [`Sender`] and a [`Receiver`].
//! Each end is a descriptor (an open file description of the memfd holding
//! its role's liveness lock, see [`liveness`](crate::liveness)) plus the
//! mapping. Ends can be cloned ([`Sender::try_clone`]), inherited by a child
//! or sent over a Unix socket ([`Sender::into_fd`] / [`Sender::from_fd`]);
//! an end stays open until every copy of its descriptor is closed.
//!
//! Any number of senders and receivers may use one channel at once: writes
//! are serialised by the writer lock and reads by the reader lock (see
//! [`lock`](crate::lock)), so every write is atomic and a partly read message
//! continues where the last reader stopped. For the single-producer
//! single-consumer fast path without locks, use
//! [`Producer`](crate::Producer) / [`Consumer`](crate::Consumer) directly.
//!
//! Blocking operations spin, park and check the peer as
//! [`WaitPolicy`](crate::WaitPolicy) says: a dead peer is reported as
//! [`Error::PeerClosed`](crate::Error::PeerClosed)
//! at once when it closed its last handle normally (a hang-up hint), and
//! when it was killed, as soon as the kernel releases its descriptors
//! (≈ 0.3 ms: a waiting end is watched, see
//! [`End::watch_peer`](crate::channel::End::watch_peer)); within one park
//! slice where that watch cannot be had. (If the process forks while the
//! last handle closes, the child holds a copy of the descriptor until it
//! execs, and the watch tells the peer when the exec closes it.)
//!
//! # Files
//!
//! * `end.rs`: [`End`], what the halves of one end share (the descriptor,
//!   the mapping, the hang-up hints it leaves when it closes), and the
//!   helpers both halves use: the hints themselves and the handle ids on
//!   the admission locks.
//! * `half.rs`: what a sender and a receiver keep besides their producer
//!   or consumer (ring, canceller, wait policy), borrowed apart from it.
//! * `sender.rs`: [`Sender`], writes under the writer lock.
//! * `receiver.rs`: [`Receiver`], reads under the reader lock.
//! * `readiness.rs`: the announcements an event loop's future makes before
//!   arming a [`Readiness`](crate::readiness::Readiness).
//!
//! # Cancelling
//!
//! Each half has a [`Canceller`](crate::wait::Canceller) (its own, or one
//! shared with [`Sender::set_canceller`] / [`Receiver::set_canceller`]);
//! its blocking operations wait cancellably, and a cancel wakes every futex
//! word of the half's ring (both events and both admission locks) through
//! the waker `cancel_waker` makes. Those words are shared with the peer:
//! its waiters wake spuriously, re-check and park again.

mod end;
mod half;
#[cfg(not(loom))]
mod readiness;
mod receiver;
mod sender;
#[cfg(test)]
mod tests;

pub use end::End;
pub use receiver::Receiver;
pub use sender::{SendError, Sender};

use crate::layout::{HANGUP_READER, HANGUP_WRITER};
use crate::liveness::EndLock;
#[cfg(loom)]
use crate::loom_model::Segment;
use crate::ring::RingStorage;
#[cfg(not(loom))]
use crate::segment::Segment;
use crate::wait::Waker;
use crate::Result;
use rustix::fd::AsFd;
use std::sync::Arc;

/// Liveness role of the reading end of a channel.
pub const ROLE_READER: u32 = 0;
/// Liveness role of the writing end of a channel.
pub const ROLE_WRITER: u32 = 1;

/// Creates a channel whose ring holds `capacity` bytes (a power of two from
/// 256 B to 1 GiB). Writes of any size are accepted; a write larger than the
/// free space is streamed as the reader makes room.
///
/// ```
/// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
/// tx.write(b"hello")?;
/// let mut buf = [0u8; 16];
/// assert_eq!(rx.read(&mut buf)?, 5);
/// assert_eq!(&buf[..5], b"hello");
/// # Ok::<(), shmpipe_engine::Error>(())
/// ```
pub fn channel(capacity: usize) -> Result<(Sender, Receiver)> {
    channel_with(capacity, 0, [0; 8])
}

/// [`channel`], with `user_flags` and `user` stored in the segment header for
/// the layer above (see [`SegmentHeader`](crate::layout::SegmentHeader)).
pub fn channel_with(
    capacity: usize,
    user_flags: u32,
    user: [u64; 8],
) -> Result<(Sender, Receiver)> {
    let (segment, fd) = Segment::create(&[capacity], user_flags, user)?;
    let reader = EndLock::acquire(fd.as_fd(), ROLE_READER)?;
    let writer = EndLock::acquire(fd.as_fd(), ROLE_WRITER)?;
    drop(fd);
    let writer = End::new(
        writer,
        Arc::clone(&segment),
        ROLE_WRITER,
        &[(0, HANGUP_WRITER)],
    )?;
    let reader = End::new(reader, segment, ROLE_READER, &[(0, HANGUP_READER)])?;
    Ok((
        Sender::new(writer, 0, ROLE_READER)?,
        Receiver::new(reader, 0, ROLE_WRITER)?,
    ))
}

/// The waker a half registers on its canceller: wakes every waiter of ring
/// `ring` of `segment` (both events, both admission locks), so that a
/// cancelled operation parked on any of them sees the cancel at once. Keyed
/// by the ring's control block, so halves sharing a canceller and a ring
/// register it once. Holds the segment weakly: a canceller outliving its
/// handles does not keep the mapping.
pub(super) fn cancel_waker(segment: &Arc<Segment>, ring: usize) -> (usize, Waker) {
    let key = segment
        .ring(ring)
        .map_or(0, |r| core::ptr::from_ref(r.control()) as usize);
    let segment = Arc::downgrade(segment);
    let waker: Waker = Arc::new(move || {
        let Some(segment) = segment.upgrade() else {
            return false;
        };
        if let Ok(r) = segment.ring(ring) {
            let ev = &r.control().events.0;
            ev.readable.notify();
            ev.writable.notify();
            let locks = &r.control().locks.0;
            locks.writer.wake_waiters();
            locks.reader.0.wake_waiters();
        }
        true
    });
    (key, waker)
}
