//! Announcing an end's pending operations for the readiness bridge
//! (`shmpipe_engine::readiness`), for the async layer (`crate::tokio`).
//!
//! The announcements use the halves that never wait (the peek twin, the
//! quota twin), so announcing never queues behind a blocking operation of
//! another thread on the same handle.

use super::{lock, Conn, SetPolicy};
use shmpipe_engine::readiness::Tickets;
use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::{Mutex, MutexGuard, TryLockError};

impl Conn {
    /// Announces a pending read of this end (see
    /// `Receiver::announce_read`).
    pub(crate) fn announce_read(&self) -> io::Result<Tickets> {
        let (_, peek) = self.rx()?;
        // A SIGKILLed peer then signals at once (the watcher's hint
        // notifies the ring event announced here), not after the bridge's
        // fallback slice.
        self.end.watch_peer();
        let mut tickets = lock(peek).announce_read();
        // The peek twin is another handle of the end: the watch is this
        // one's.
        tickets.note_watch(&self.end);
        Ok(tickets)
    }

    /// Announces a pending write (or quota or flush wait) of this end (see
    /// `Sender::announce_write`).
    pub(crate) fn announce_write(&self) -> io::Result<Tickets> {
        self.end.watch_peer();
        let mut tickets = self.waiter()?.announce_write();
        tickets.note_watch(&self.end);
        Ok(tickets)
    }
}

impl Conn {
    /// The end's write quota (the async layer's `writable` test).
    pub(crate) fn quota(&self) -> u32 {
        self.quota
    }
}

impl Conn {
    /// [`Conn::locked`] for a nonblocking operation: `None` while another
    /// thread of this process holds the half (a blocking call on the same
    /// handle, parked in the engine). The caller reports `WouldBlock`
    /// rather than waiting behind it (a tokio worker must never wait).
    ///
    /// A future that got `WouldBlock` this way announces and arms as for
    /// any other: the ring's event (and the reader lock's, if the blocking
    /// call holds it when announcing) wakes it when the peer publishes or
    /// the lock is released. If the blocking call consumes what arrived
    /// and leaves part of it, and let go of the reader lock before the
    /// future announced, nothing notifies when it releases the half: the
    /// future then waits for the bridge's fallback slice (1 s with the
    /// peer watched, 50 ms otherwise) before it re-tries. That case needs
    /// one handle used for a blocking and an async read at once, which
    /// only the blocking end under `get_ref` allows.
    pub(super) fn try_locked<'a, H: SetPolicy>(
        &self,
        half: &'a Mutex<H>,
        which: usize,
    ) -> Option<MutexGuard<'a, H>> {
        let mut h = match half.try_lock() {
            Ok(h) => h,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let generation = self.policy_gen.load(Acquire);
        // Written only under `half`'s lock (as in `locked`).
        if self.applied[which].load(Relaxed) != generation {
            if let Some(p) = *lock(&self.policy) {
                h.set_policy(p);
            }
            self.applied[which].store(generation, Relaxed);
        }
        Some(h)
    }
}
