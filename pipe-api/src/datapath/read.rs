//! The read path of an end: byte-read and message-read mode reads (spec
//! 4.6), the pending-read advertisement a blocked read leaves for the
//! writer's quota (spec 5.3), the withdrawal of a dead writer's pending
//! write before each read (spec 7.5, see [`super::pending`]), and peek
//! (spec 4.8), which never waits and never consumes.

use super::{engine, lock, pending, would_block, Conn, MsgRead, SetPolicy, HALF_RX};
use crate::error::{Error, ErrorKind};
use crate::info::{PeekInfo, PipeType};
use shmpipe_engine::{MessageRead, Receiver, RingStorage};
use std::io;
use std::sync::atomic::Ordering::Relaxed;

impl Conn {
    /// See [`pending::withdrawal_limit`]; a cut is an error only for a
    /// message-read mode read of a message pipe. `reach`: the read's buffer
    /// length (it consumes no more).
    fn withdrawal_limit(
        &self,
        rx: &mut Receiver,
        message_read: bool,
        reach: usize,
    ) -> io::Result<Option<usize>> {
        let cut_is_error = message_read && self.pipe_type == PipeType::Message;
        pending::withdrawal_limit(rx, &self.end, cut_is_error, reach)
    }

    /// Byte-read mode read (spec 4.6): waits unless `nonblocking`; the end
    /// of the pipe is [`ErrorKind::BrokenPipe`].
    pub(crate) fn read_bytes(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
        let (rx, _) = self.rx()?;
        // Nonblocking: never wait behind a blocking read of this handle.
        let mut rx = if nonblocking {
            self.try_locked(rx, HALF_RX).ok_or_else(would_block)?
        } else {
            self.locked(rx, HALF_RX)?
        };
        let buf = match self.withdrawal_limit(&mut rx, false, buf.len())? {
            Some(limit) if limit < buf.len() => &mut buf[..limit],
            _ => buf,
        };
        if nonblocking {
            // `try_batch` gives `None` while another handle holds the
            // reader lock (stopped, perhaps): that is "nothing now", never
            // the end of the pipe, whatever the writer did.
            return match rx
                .try_batch(|c| c.read_stream(buf))
                .map_err(|e| engine(e, ErrorKind::BrokenPipe))?
            {
                None => Err(would_block()),
                Some(Some(n)) => Ok(n),
                Some(None) => {
                    self.empty_nonblocking(&mut rx, |rx| rx.try_batch(|c| c.read_stream(buf)))
                }
            };
        }
        self.advertise(&rx, buf.len());
        let r = rx.read(buf);
        self.advertise_done(&rx);
        r.map_err(|e| {
            self.note_gone(&e);
            engine(e, ErrorKind::BrokenPipe)
        })
    }

    /// Message-read mode read (spec 4.6): one message, or as much of it as
    /// fits (`complete == false`: MoreData).
    pub(crate) fn read_msg(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<MsgRead> {
        let (rx, _) = self.rx()?;
        let mut rx = if nonblocking {
            self.try_locked(rx, HALF_RX).ok_or_else(would_block)?
        } else {
            self.locked(rx, HALF_RX)?
        };
        let buf = match self.withdrawal_limit(&mut rx, true, buf.len())? {
            Some(limit) if limit < buf.len() => &mut buf[..limit],
            _ => buf,
        };
        let conv = |m: MessageRead| MsgRead {
            len: m.len,
            complete: m.end,
        };
        if nonblocking {
            // Never waits. A message whose rest is not published yet (still
            // being written, or never: its writer died) gives what is there
            // with `complete == false`, like a buffer too small (MoreData):
            // the consumed bytes are always returned, and the next read
            // continues the message, or reports its cut or the closed peer.
            // Never waits for the reader lock either (see `read`).
            let first = rx
                .try_batch(|c| c.read_message(buf))
                .map_err(|e| engine(e, ErrorKind::BrokenPipe))?;
            return match first {
                None => Err(would_block()),
                Some(Some(m)) => Ok(conv(m)),
                Some(None) => self
                    .empty_nonblocking(&mut rx, |rx| rx.try_batch(|c| c.read_message(buf)))
                    .map(conv),
            };
        }
        self.advertise(&rx, buf.len());
        let r = rx.read_message(buf);
        self.advertise_done(&rx);
        r.map(conv).map_err(|e| {
            self.note_gone(&e);
            engine(e, ErrorKind::BrokenPipe)
        })
    }

    /// A nonblocking read found nothing: `WouldBlock`, or the end of the
    /// pipe (after one last look: the peer may have written just before it
    /// closed).
    ///
    /// `again` is a second try through `try_batch`: its outer `None` (another
    /// handle holds the reader lock, so bytes may well be queued) is
    /// `WouldBlock`, never the end of the pipe.
    fn empty_nonblocking<T>(
        &self,
        rx: &mut Receiver,
        mut again: impl FnMut(&mut Receiver) -> shmpipe_engine::Result<Option<Option<T>>>,
    ) -> io::Result<T> {
        if rx
            .is_peer_alive()
            .map_err(|e| engine(e, ErrorKind::BrokenPipe))?
        {
            return Err(would_block());
        }
        match again(rx).map_err(|e| engine(e, ErrorKind::BrokenPipe))? {
            None => Err(would_block()),
            Some(Some(t)) => Ok(t),
            Some(None) => {
                self.gone.store(true, Relaxed);
                Err(Error::io(ErrorKind::BrokenPipe))
            }
        }
    }

    fn advertise(&self, rx: &Receiver, len: usize) {
        rx.ring().control().advertise_read(len as u64);
    }

    fn advertise_done(&self, rx: &Receiver) {
        rx.ring().control().withdraw_read();
    }

    /// Peek (spec 4.8): never waits, never consumes; on message pipes stops
    /// at the head message and reports what is left of it.
    pub(crate) fn peek(&self, buf: Option<&mut [u8]>) -> io::Result<PeekInfo> {
        let (_, rx) = self.rx()?;
        let mut rx = lock(rx);
        let mut empty = [0u8; 0];
        let buf = buf.unwrap_or(&mut empty);
        let message = self.pipe_type == PipeType::Message;
        let (copied, left) = rx
            .batch(|c| {
                if message {
                    c.peek_message(buf)
                } else {
                    c.peek_stream(buf).map(|n| (n, 0))
                }
            })
            .map_err(|e| engine(e, ErrorKind::BrokenPipe))?;
        let total = rx.available();
        if total == 0 && !rx.has_records_hint() && self.peer_gone() {
            return Err(Error::io(ErrorKind::BrokenPipe));
        }
        Ok(PeekInfo {
            copied,
            total_available: total,
            left_in_message: left,
        })
    }

    /// Whether anything (an empty message included) is queued for this side.
    pub(crate) fn has_unread(&self) -> io::Result<bool> {
        let (_, rx) = self.rx()?;
        Ok(lock(rx).has_records_hint())
    }
}

/// Extension used by [`Conn`]: does the ring hold any record (an empty
/// message counts)?
trait HasRecords {
    fn has_records_hint(&self) -> bool;
}

impl HasRecords for Receiver {
    fn has_records_hint(&self) -> bool {
        self.available() > 0 || {
            let c = self.ring().control();
            c.tail() != c.head()
        }
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
    fn try_locked<'a, H: SetPolicy>(
        &'a self,
        half: &'a std::sync::Mutex<H>,
        which: usize,
    ) -> Option<super::queue::Half<'a, H>> {
        use std::sync::TryLockError;
        let h = match half.try_lock() {
            Ok(h) => h,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let mut h = super::queue::Half::new(h, &self.queue);
        self.apply_policy(&mut *h, which);
        Some(h)
    }
}
