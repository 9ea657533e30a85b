//! What a [`Sender`](super::Sender) and a [`Receiver`](super::Receiver)
//! keep besides their producer or consumer: the end, the ring (for the lock
//! word, the events and the counters), the handle's canceller and wait
//! policy. It is a struct of its own so that it can be borrowed while the
//! producer or consumer is lent to the holder of the ring's lock.

use super::cancel_waker;
use super::end::{handle_seq, ring_index_of, End};
// Under `--cfg loom` this runs on rings of loom memory: see `loom_model`.
#[cfg(loom)]
use crate::loom_model::SegmentRing;
#[cfg(not(loom))]
use crate::segment::SegmentRing;
use crate::wait::{Canceller, WaitPolicy};
use crate::Result;
use std::sync::Arc;

/// One handle's half of a ring, apart from its producer or consumer.
pub(super) struct Ctx {
    pub(super) end: Arc<End>,
    /// The ring the half uses (the same mapping as its producer or
    /// consumer).
    pub(super) ring: SegmentRing,
    pub(super) cancel: Canceller,
    /// The key of this handle's waker on `cancel` (see `cancel_waker`).
    cancel_key: usize,
    pub(super) policy: WaitPolicy,
    pub(super) peer_role: u32,
    pub(super) seq: u32,
}

impl Ctx {
    /// The half of `end` on ring `ring` whose peer is the end with role
    /// `peer_role`, with a canceller of its own that wakes this ring.
    pub(super) fn new(end: Arc<End>, ring: usize, peer_role: u32) -> Result<Ctx> {
        let cancel = Canceller::new();
        let (cancel_key, waker) = cancel_waker(end.segment(), ring);
        cancel.set_waker(cancel_key, waker);
        Ok(Ctx {
            ring: end.segment().ring(ring)?,
            end,
            cancel,
            cancel_key,
            policy: WaitPolicy::default(),
            peer_role,
            seq: handle_seq(),
        })
    }

    /// The index of this half's ring in its segment.
    pub(super) fn ring_index(&self) -> Result<usize> {
        ring_index_of(&self.end, &self.ring)
    }

    /// Makes `canceller` this half's canceller: it wakes this ring from now
    /// on, and the old one no longer does.
    pub(super) fn set_canceller(&mut self, canceller: Canceller) {
        if let Ok(ring) = self.ring_index() {
            let (key, waker) = cancel_waker(self.end.segment(), ring);
            canceller.set_waker(key, waker);
            self.cancel.remove_waker(self.cancel_key);
            self.cancel_key = key;
            self.cancel = canceller;
        }
    }

    /// Whether the peer end is still open in some process.
    pub(super) fn is_peer_alive(&self) -> Result<bool> {
        self.end.peer_alive(self.peer_role)
    }
}

impl Drop for Ctx {
    /// The handle no longer needs its canceller to wake its ring.
    fn drop(&mut self) {
        self.cancel.remove_waker(self.cancel_key);
    }
}
