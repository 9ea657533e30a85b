//! The data path of one connection, shared by server and client ends: quota
//! writes, byte and message reads, peek, flush and transact over the
//! engine's duplex segment (ring 0: server→client, ring 1: client→server).

use crate::error::{Error, ErrorKind};
use crate::info::{PeekInfo, PipeType};
use shmpipe_engine::channel::End;
use shmpipe_engine::{MessageRead, Receiver, RingStorage, Sender, WaitPolicy};
use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

/// Ring carrying server→client data ("out", spec 1.1).
pub(crate) const RING_OUT: usize = 0;
/// Ring carrying client→server data ("in").
pub(crate) const RING_IN: usize = 1;
/// Liveness role of the server end.
pub(crate) const ROLE_SERVER: u32 = 0;
/// Liveness role of the client end.
pub(crate) const ROLE_CLIENT: u32 = 1;
/// User word (per ring) where a blocked reader advertises its buffer size
/// plus one (spec 5.3/5.5: bytes a pending read takes never count against
/// the quota).
const W_PENDING_READ: usize = 2;

/// Result of a message read (spec 4.6): `complete` is `false` when the
/// buffer was too small (Windows' `ERROR_MORE_DATA`: the bytes were consumed
/// and the rest of the message waits at the head of the pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgRead {
    /// Bytes copied.
    pub len: usize,
    /// The message ended within the buffer.
    pub complete: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn engine(e: shmpipe_engine::Error, peer_closed: ErrorKind) -> io::Error {
    match e {
        shmpipe_engine::Error::Disconnected => Error::io(ErrorKind::PipeNotConnected),
        e => crate::error::from_engine(e, peer_closed),
    }
}

fn would_block() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, Error::new(ErrorKind::NoData))
}

/// One side of a connection.
pub(crate) struct Conn {
    end: Arc<End>,
    /// Writing half and a twin for flush (so a flush never waits behind a
    /// blocked write of another thread).
    tx: Option<(Mutex<Sender>, Mutex<Sender>)>,
    /// Reading half and a twin for peek (peek never waits).
    rx: Option<(Mutex<Receiver>, Mutex<Receiver>)>,
    pub(crate) pipe_type: PipeType,
    quota: u32,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// The halves of `end` for the side `server` (true) or client, with
    /// `quota` for the direction it writes.
    pub(crate) fn new(
        end: Arc<End>,
        server: bool,
        can_write: bool,
        can_read: bool,
        pipe_type: PipeType,
        quota: u32,
        policy: Option<WaitPolicy>,
    ) -> io::Result<Conn> {
        let (wring, rring, peer) = if server {
            (RING_OUT, RING_IN, ROLE_CLIENT)
        } else {
            (RING_IN, RING_OUT, ROLE_SERVER)
        };
        let map = |e| engine(e, ErrorKind::BrokenPipe);
        let tx = if can_write {
            let mut a = Sender::new(Arc::clone(&end), wring, peer).map_err(map)?;
            let mut b = a.try_clone().map_err(map)?;
            if let Some(p) = policy {
                a.set_wait_policy(p);
                b.set_wait_policy(p);
            }
            Some((Mutex::new(a), Mutex::new(b)))
        } else {
            None
        };
        let rx = if can_read {
            let mut a = Receiver::new(Arc::clone(&end), rring, peer).map_err(map)?;
            let mut b = a.try_clone().map_err(map)?;
            if let Some(p) = policy {
                a.set_wait_policy(p);
                b.set_wait_policy(p);
            }
            Some((Mutex::new(a), Mutex::new(b)))
        } else {
            None
        };
        Ok(Conn {
            end,
            tx,
            rx,
            pipe_type,
            quota,
        })
    }

    pub(crate) fn end(&self) -> &Arc<End> {
        &self.end
    }

    /// Cuts the connection for both sides (server `disconnect`).
    pub(crate) fn disconnect(&self) {
        self.end.disconnect();
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        self.end.is_disconnected()
    }

    /// Whether the other side's end is open anywhere.
    pub(crate) fn peer_alive(&self, peer_role: u32) -> bool {
        self.end.peer_alive(peer_role).unwrap_or(false)
    }

    fn tx(&self) -> io::Result<&(Mutex<Sender>, Mutex<Sender>)> {
        self.tx
            .as_ref()
            .ok_or_else(|| Error::io(ErrorKind::AccessDenied))
    }

    fn rx(&self) -> io::Result<&(Mutex<Receiver>, Mutex<Receiver>)> {
        self.rx
            .as_ref()
            .ok_or_else(|| Error::io(ErrorKind::AccessDenied))
    }

    /// Writes one write (spec 4.7, 5.2, 5.5). Returns the bytes written
    /// (all, or for a nonblocking end possibly fewer, even 0).
    pub(crate) fn write(&self, buf: &[u8], nonblocking: bool) -> io::Result<usize> {
        let (tx, _) = self.tx()?;
        let mut tx = lock(tx);
        let message = self.pipe_type == PipeType::Message;
        if buf.is_empty() {
            if !message {
                // Still report a closed or cut peer.
                if self.is_disconnected() {
                    return Err(Error::io(ErrorKind::PipeNotConnected));
                }
                return Ok(0);
            }
            // An empty message: queued, occupies no quota, never waits.
            return match tx.try_write(&[]) {
                Ok(true) => Ok(0),
                Ok(false) => tx
                    .write(&[])
                    .map(|()| 0)
                    .map_err(|e| engine(e, ErrorKind::NoData)),
                Err(e) => Err(engine(e, ErrorKind::NoData)),
            };
        }
        if nonblocking {
            return self.write_nonblocking(&mut tx, buf, message);
        }
        let end = tx.send(buf, None).map_err(|e| {
            let kind = if e.published == 0 {
                ErrorKind::NoData
            } else {
                ErrorKind::BrokenPipe
            };
            engine(e.error, kind)
        })?;
        let target = end.saturating_sub(u64::from(self.quota));
        tx.wait_consumed(target, None)
            .map_err(|e| engine(e, ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn write_nonblocking(&self, tx: &mut Sender, buf: &[u8], message: bool) -> io::Result<usize> {
        let n = buf.len() as u64;
        let queued = tx.written().saturating_sub(tx.consumed());
        let pending = if queued == 0 {
            tx.ring().control().user.0[W_PENDING_READ]
                .load(Acquire)
                .saturating_sub(1)
        } else {
            0
        };
        let taken = pending.min(n);
        let fits = queued + n - taken <= u64::from(self.quota);
        let all = if fits { tx.try_write(buf) } else { Ok(false) };
        match all {
            Ok(true) => Ok(buf.len()),
            // Byte pipe: the pending read gets its share, nothing is queued.
            // Message pipe: nothing at all (spec 5.5).
            Ok(false) if !message && taken > 0 => match tx.try_write(&buf[..taken as usize]) {
                Ok(true) => Ok(taken as usize),
                Ok(false) => Ok(0),
                Err(e) => Err(engine(e, ErrorKind::NoData)),
            },
            Ok(false) => Ok(0),
            Err(e) => Err(engine(e, ErrorKind::NoData)),
        }
    }

    /// Byte-read mode read (spec 4.6): waits unless `nonblocking`; the end
    /// of the pipe is [`ErrorKind::BrokenPipe`].
    pub(crate) fn read_bytes(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
        let (rx, _) = self.rx()?;
        let mut rx = lock(rx);
        if nonblocking {
            return match rx
                .try_read(buf)
                .map_err(|e| engine(e, ErrorKind::BrokenPipe))?
            {
                Some(n) => Ok(n),
                None => self.empty_nonblocking(&mut rx, |rx| rx.try_read(buf)),
            };
        }
        self.advertise(&rx, buf.len());
        let r = rx.read(buf);
        self.advertise_done(&rx);
        r.map_err(|e| engine(e, ErrorKind::BrokenPipe))
    }

    /// Message-read mode read (spec 4.6): one message, or as much of it as
    /// fits (`complete == false`: MoreData).
    pub(crate) fn read_msg(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<MsgRead> {
        let (rx, _) = self.rx()?;
        let mut rx = lock(rx);
        let conv = |m: MessageRead| MsgRead {
            len: m.len,
            complete: m.end,
        };
        if nonblocking {
            let first = rx
                .batch(|c| c.read_message(buf))
                .map_err(|e| engine(e, ErrorKind::BrokenPipe))?;
            return match first {
                // A message whose rest is still being written: wait for it
                // like a blocking read would (its first bytes are consumed).
                Some(m) if !m.end && m.len < buf.len() => {
                    let rest = rx
                        .read_message(&mut buf[m.len..])
                        .map_err(|e| engine(e, ErrorKind::BrokenPipe))?;
                    Ok(MsgRead {
                        len: m.len + rest.len,
                        complete: rest.end,
                    })
                }
                Some(m) => Ok(conv(m)),
                None => self
                    .empty_nonblocking(&mut rx, |rx| rx.batch(|c| c.read_message(buf)))
                    .map(conv),
            };
        }
        self.advertise(&rx, buf.len());
        let r = rx.read_message(buf);
        self.advertise_done(&rx);
        r.map(conv).map_err(|e| engine(e, ErrorKind::BrokenPipe))
    }

    /// A nonblocking read found nothing: `WouldBlock`, or the end of the
    /// pipe (after one last look: the peer may have written just before it
    /// closed).
    fn empty_nonblocking<T>(
        &self,
        rx: &mut Receiver,
        mut again: impl FnMut(&mut Receiver) -> shmpipe_engine::Result<Option<T>>,
    ) -> io::Result<T> {
        if rx
            .is_peer_alive()
            .map_err(|e| engine(e, ErrorKind::BrokenPipe))?
        {
            return Err(would_block());
        }
        match again(rx).map_err(|e| engine(e, ErrorKind::BrokenPipe))? {
            Some(t) => Ok(t),
            None => Err(Error::io(ErrorKind::BrokenPipe)),
        }
    }

    fn advertise(&self, rx: &Receiver, len: usize) {
        rx.ring().control().user.0[W_PENDING_READ].store(len as u64 + 1, Relaxed);
    }

    fn advertise_done(&self, rx: &Receiver) {
        rx.ring().control().user.0[W_PENDING_READ].store(0, Relaxed);
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
        if total == 0 && !rx.has_records_hint() && !rx.is_peer_alive().unwrap_or(false) {
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

    /// Flush (spec 4.11): waits until the peer read everything this side
    /// wrote; succeeds at once when the peer is gone.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let (_, tx) = self.tx()?;
        let mut tx = lock(tx);
        match tx.flush() {
            Ok(()) | Err(shmpipe_engine::Error::PeerClosed) => Ok(()),
            Err(e) => Err(engine(e, ErrorKind::BrokenPipe)),
        }
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
            let mut tx = lock(tx);
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

/// Extension used by [`Conn`]: does the ring hold any record (an empty
/// message counts)?
trait HasRecords {
    fn has_records_hint(&self) -> bool;
}

impl HasRecords for Receiver {
    fn has_records_hint(&self) -> bool {
        self.available() > 0 || {
            let c = self.ring().control();
            c.producer.0.tail.load(Acquire) != c.consumer.0.head.load(Acquire)
        }
    }
}
