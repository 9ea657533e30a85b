//! The round trips of an end: flush (spec 4.11: `Ok` only once the peer
//! read everything this end wrote) and transact (spec 4.9: one request
//! message, then the reply).

use super::{engine, pending, Conn, MsgRead, HALF_TX};
use crate::error::{Error, ErrorKind};
use shmpipe_engine::{RingStorage, Sender};
use std::io;

impl Conn {
    /// Flush (spec 4.11): waits until the peer read everything this side
    /// wrote, and succeeds only then: `Ok` means "read by the peer". If the
    /// peer is gone (closed or killed) with bytes of ours unread, before or
    /// during the wait, that is `BrokenPipe` (a deliberate difference from
    /// Windows, whose flush after the peer closed succeeds: a caller must be
    /// able to trust `Ok`).
    pub(crate) fn flush(&self) -> io::Result<()> {
        let tx = self.waiter()?;
        if self.is_disconnected() {
            return Err(Error::io(ErrorKind::PipeNotConnected));
        }
        if self.peer_gone() {
            return if self.all_read(&tx)
                || pending::unread_all_withdrawn(tx.ring().control(), tx.written())
            {
                Ok(())
            } else {
                Err(Error::io(ErrorKind::BrokenPipe))
            };
        }
        // As the engine's flush: succeeds once everything was read, also if
        // the reader left right after reading; fails if the reader left
        // with anything unread. Bytes of a cancelled write that were
        // withdrawn count as read (spec 7.4, SEM-121).
        let c = tx.ring().control();
        let (target, written) = (c.tail(), c.written());
        let done = || c.head() >= target || pending::unread_all_withdrawn(c, written);
        tx.wait_until(None, done).map_err(|e| {
            self.note_gone(&e);
            engine(e, ErrorKind::BrokenPipe)
        })
    }

    /// Whether the peer consumed every record this end's ring holds (ring
    /// positions, so that queued empty messages count).
    fn all_read(&self, tx: &Sender) -> bool {
        let c = tx.ring().control();
        let tail = c.tail();
        c.head() >= tail
    }

    /// Transact (spec 4.9): the request as one message (the quota ignored),
    /// then the next message from the peer.
    pub(crate) fn transact(&self, request: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        self.tx()?;
        self.rx()?;
        if self.has_unread()? {
            return Err(Error::io(ErrorKind::PipeBusy));
        }
        {
            let (tx, _) = self.tx()?;
            let mut tx = self.locked(tx, HALF_TX)?;
            tx.send(request, None).map_err(|e| {
                let kind = if e.published == 0 {
                    ErrorKind::NoData
                } else {
                    ErrorKind::BrokenPipe
                };
                engine(e.error, kind)
            })?;
        }
        self.read_msg(reply, false)
    }
}
