//! Announcing a pending operation of a [`Sender`] or [`Receiver`] for the
//! readiness bridge (see [`crate::readiness`] for the protocol).
//!
//! An operation that cannot progress would park on two events: the ring's
//! (`readable` for a read, `writable` for a write: records published,
//! space freed, a hang-up) and, when another handle holds the admission
//! lock, the lock's (released, a hang-up: `hang_up` wakes both). A future
//! announces on the ring's event always, and on the lock's while another
//! handle holds the lock (see `Tickets::announce_lock` for why not
//! otherwise); a notify on any announced word signals it.

use super::end::events;
use super::{Receiver, Sender};
use crate::readiness::Tickets;
use crate::ring::RingStorage;
use std::sync::Arc;

impl Receiver {
    /// Announces a pending read: every futex word a blocking read would
    /// park on is marked as having a sleeper, and its ticket returned, for
    /// [`Readiness::arm`](crate::readiness::Readiness::arm). Re-try the
    /// read after this and before arming.
    ///
    /// ```
    /// use shmpipe_engine::readiness::Readiness;
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// let ready = Readiness::new()?;
    /// let tickets = rx.announce_read();
    /// assert_eq!(rx.try_read(&mut [0; 8])?, None); // the re-check
    /// ready.arm(tickets)?;
    /// tx.write(b"x")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn announce_read(&self) -> Tickets {
        let ring = self.ring();
        let mut t = Tickets::new(Arc::clone(self.end().segment()));
        t.peer_watched = self.end().is_peer_watched();
        t.announce(&events(ring).readable);
        t.announce_lock(&ring.control().locks.0.reader.0);
        t
    }
}

impl Sender {
    /// Announces a pending write (or a wait for the reader to consume, as
    /// a quota wait or a flush does): the ring's `writable` event and the
    /// writer lock's, as [`Receiver::announce_read`] does for reads.
    ///
    /// ```
    /// use shmpipe_engine::readiness::Readiness;
    /// let (mut tx, mut rx) = shmpipe_engine::channel(256)?;
    /// while tx.try_write(&[0; 64])? {}
    /// let ready = Readiness::new()?;
    /// let tickets = tx.announce_write();
    /// assert!(!tx.try_write(&[0; 64])?); // the re-check
    /// ready.arm(tickets)?;
    /// rx.read(&mut [0; 64])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn announce_write(&self) -> Tickets {
        let ring = self.ring();
        let mut t = Tickets::new(Arc::clone(self.end().segment()));
        t.peer_watched = self.end().is_peer_watched();
        t.announce(&events(ring).writable);
        t.announce_lock(&ring.control().locks.0.writer);
        t
    }
}
