//! Announcing an end's pending operations for the readiness bridge
//! (`shmpipe_engine::readiness`), for the public `announce_*` methods
//! (`crate::readiness`) and the async layer (`crate::tokio`).
//!
//! The announcements use the halves that never wait (the peek twin, the
//! quota twin), so announcing never queues behind a blocking operation of
//! another thread on the same handle.

use super::{lock, Conn};
use shmpipe_engine::readiness::Tickets;
use std::io;

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

#[cfg(feature = "tokio")]
impl Conn {
    /// The end's write quota (the async layer's `writable` test).
    pub(crate) fn quota(&self) -> u32 {
        self.quota
    }
}
