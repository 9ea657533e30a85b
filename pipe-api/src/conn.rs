//! The data path of one end, shared by anonymous ends and by named pipes'
//! server and client ends: quota writes, byte and message reads, peek, flush
//! and transact over engine rings.
//!
//! # When a peer that was killed is noticed
//!
//! A peer that *closes* its end leaves a hang-up hint, which the next
//! operation sees at once. A peer that is *killed* runs no code: an operation
//! that has to wait notices within one park slice (4 ms), and so does
//! `flush_buffers`, which asks the kernel at its start. A write that need not
//! wait asks the kernel (≈ 0.7 µs a question: asking on every write would
//! cost more than the write) once one tick of the coarse monotonic clock
//! (1-4 ms, a few ns to read) has passed since it last asked, or after
//! [`LIVENESS_EVERY`] writes. So a write that comes a tick after the kill is
//! told `NoData`; writes in quick succession right after it can still land
//! in a buffer nobody will read (until the quota fills, and then the write
//! waits and notices). The count is only a backstop: asking every 64 writes,
//! as an earlier version did, put a system call in 1.5% of round trips and
//! doubled the pipes' p99 latency.

use crate::error::{Error, ErrorKind};
use crate::info::{PeekInfo, PipeType};
use crate::pending::{self, PendingMark};
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::{RingControl, UserWord};
use shmpipe_engine::sync::Native;
use shmpipe_engine::{MessageRead, Receiver, RingStorage, Sender, WaitPolicy};
use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex, MutexGuard};

/// A write that need not wait checks the peer's liveness at least once per
/// this many writes (see the module docs)...
pub(crate) const LIVENESS_EVERY: u32 = 4096;
/// ...and when this much time, by the coarse clock, passed since the last
/// check.
const LIVENESS_AGE_NS: u64 = 1_000_000;

/// The coarse monotonic clock (a vDSO read of the last tick's time), in ns.
fn coarse_now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// Ring carrying server→client data ("out", spec 1.1).
pub(crate) const RING_OUT: usize = 0;
/// Ring carrying client→server data ("in").
pub(crate) const RING_IN: usize = 1;
/// Liveness role of the server end.
pub(crate) const ROLE_SERVER: u32 = 0;
/// Liveness role of the client end.
pub(crate) const ROLE_CLIENT: u32 = 1;
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

pub(crate) fn engine(e: shmpipe_engine::Error, peer_closed: ErrorKind) -> io::Error {
    match e {
        shmpipe_engine::Error::Disconnected => Error::io(ErrorKind::PipeNotConnected),
        // The rest of the message being read was withdrawn: its writer's
        // operation was aborted by its death (spec 7.5).
        shmpipe_engine::Error::MessageCut => Error::io(ErrorKind::OperationAborted),
        e => crate::error::from_engine(e, peer_closed),
    }
}

fn would_block() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, Error::new(ErrorKind::NoData))
}

/// How many of `n` bytes a pending read of the peer, advertised in
/// `control`, takes at once (spec 5.3), if nothing unread is queued ahead of
/// them (hostile values are bounded by `n`).
fn advertised_share(control: &RingControl<Native>, n: u64) -> u64 {
    // A blocked reader advertises its buffer size plus one (spec 5.3/5.5:
    // bytes a pending read takes never count against the quota).
    let advert = control.user_word(UserWord::PendingRead).load(Acquire);
    advert.saturating_sub(1).min(n)
}

/// One end's halves.
pub(crate) struct Conn {
    end: Arc<End>,
    peer_role: u32,
    words: shmpipe_engine::SegmentRing,
    /// Writes and coarse time since the last liveness check; touched only
    /// under the `tx` mutex (atomics only to keep `Conn` `Sync`).
    writes_since_check: std::sync::atomic::AtomicU32,
    last_check_ns: std::sync::atomic::AtomicU64,
    /// A lower bound of the peer's `consumed` count (see `write`).
    consumed_hint: std::sync::atomic::AtomicU64,
    /// Set once the peer was found gone: it never comes back.
    gone: std::sync::atomic::AtomicBool,
    /// Writing half (locked only while a write publishes) and a twin for
    /// the waits that follow publication (quota, flush): a write pending on
    /// the quota never holds up the next write, a flush or a transact
    /// (spec 5.2: several writes can be pending at once). The twin is
    /// locked only to take a reference, so that a new wait policy can
    /// replace it while waits are in progress (they finish with the old).
    tx: Option<(Mutex<Sender>, Mutex<Arc<Sender>>)>,
    /// Reading half and a twin for peek (peek never waits).
    rx: Option<(Mutex<Receiver>, Mutex<Receiver>)>,
    /// The policy set after creation ([`Conn::set_wait_policy`]), bumped
    /// generation, and the generation each locked half last applied
    /// ([`HALF_TX`], [`HALF_RX`]).
    policy: Mutex<Option<WaitPolicy>>,
    policy_gen: std::sync::atomic::AtomicU32,
    applied: [std::sync::atomic::AtomicU32; 2],
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
    /// The halves of `end`: writing ring `write` and/or reading ring `read`,
    /// the peer being the end with `peer_role`; `quota` applies to writes.
    pub(crate) fn new(
        end: Arc<End>,
        write: Option<usize>,
        read: Option<usize>,
        peer_role: u32,
        pipe_type: PipeType,
        quota: u32,
        policy: Option<WaitPolicy>,
    ) -> io::Result<Conn> {
        let map = |e| engine(e, ErrorKind::BrokenPipe);
        let tx = match write {
            Some(ring) => {
                let mut a = Sender::new(Arc::clone(&end), ring, peer_role).map_err(map)?;
                let mut b = a.try_clone().map_err(map)?;
                if let Some(p) = policy {
                    a.set_wait_policy(p);
                    b.set_wait_policy(p);
                }
                Some((Mutex::new(a), Mutex::new(Arc::new(b))))
            }
            None => None,
        };
        let rx = match read {
            Some(ring) => {
                let mut a = Receiver::new(Arc::clone(&end), ring, peer_role).map_err(map)?;
                let mut b = a.try_clone().map_err(map)?;
                if let Some(p) = policy {
                    a.set_wait_policy(p);
                    b.set_wait_policy(p);
                }
                Some((Mutex::new(a), Mutex::new(b)))
            }
            None => None,
        };
        let words = end
            .segment()
            .ring(write.or(read).unwrap_or(0))
            .map_err(map)?;
        Ok(Conn {
            end,
            peer_role,
            words,
            writes_since_check: std::sync::atomic::AtomicU32::new(0),
            last_check_ns: std::sync::atomic::AtomicU64::new(coarse_now_ns()),
            consumed_hint: std::sync::atomic::AtomicU64::new(0),
            gone: std::sync::atomic::AtomicBool::new(false),
            tx,
            rx,
            policy: Mutex::new(None),
            policy_gen: std::sync::atomic::AtomicU32::new(0),
            applied: Default::default(),
            pipe_type,
            quota,
        })
    }

    /// Sets how blocking operations wait (every half), from the next
    /// operation on: one already waiting keeps the policy it started with.
    ///
    /// Never waits for an operation in progress (another thread may be
    /// blocked in a read for good): the halves behind the operation locks
    /// pick the policy up the next time they are locked.
    pub(crate) fn set_wait_policy(&self, policy: WaitPolicy) {
        *lock(&self.policy) = Some(policy);
        self.policy_gen.fetch_add(1, Release);
        if let Some((_, b)) = &self.tx {
            // Locked only to take a reference: never held across a wait.
            let mut twin = lock(b);
            match Arc::get_mut(&mut twin) {
                Some(t) => t.set_wait_policy(policy),
                // A wait holds the twin: later waits get a new one. (If no
                // descriptor is left for it, they keep the old policy.)
                None => {
                    if let Ok(mut t) = twin.try_clone() {
                        t.set_wait_policy(policy);
                        *twin = Arc::new(t);
                    }
                }
            }
        }
    }

    /// Locks an operation half, first giving it the latest wait policy
    /// (`which` tells the halves' generations apart).
    fn locked<'a, H: SetPolicy>(&self, half: &'a Mutex<H>, which: usize) -> MutexGuard<'a, H> {
        let mut h = lock(half);
        let generation = self.policy_gen.load(Acquire);
        // Written only under `half`'s lock.
        if self.applied[which].load(Relaxed) != generation {
            if let Some(p) = *lock(&self.policy) {
                h.set_policy(p);
            }
            self.applied[which].store(generation, Relaxed);
        }
        h
    }

    /// Unread bytes queued for this end.
    pub(crate) fn available(&self) -> u64 {
        self.rx
            .as_ref()
            .map_or(0, |(_, peek)| lock(peek).available())
    }

    /// Bytes this end wrote that the peer has not read yet (0 for an end
    /// that does not write).
    pub(crate) fn unread_by_peer(&self) -> u64 {
        if self.tx.is_none() {
            return 0;
        }
        // `words` is the ring this end writes.
        let c = self.words.control();
        let written = c.producer.0.written.load(Acquire);
        written.saturating_sub(c.consumer.0.consumed.load(Acquire))
    }

    /// The twin writing half, for a wait.
    fn waiter(&self) -> io::Result<Arc<Sender>> {
        let (_, twin) = self.tx()?;
        Ok(Arc::clone(&lock(twin)))
    }

    /// User word `w` of the ring this end writes (or else reads): where
    /// the pipe layer keeps per-end modes that duplicates must share.
    pub(crate) fn user_word(&self, w: UserWord) -> &std::sync::atomic::AtomicU64 {
        self.words.control().user_word(w)
    }

    /// Whether the peer is gone (asks the kernel, until it says yes).
    fn peer_gone(&self) -> bool {
        if self.gone.load(Relaxed) {
            return true;
        }
        let gone = !self.end.peer_alive(self.peer_role).unwrap_or(true);
        if gone {
            self.gone.store(true, Relaxed);
        }
        gone
    }

    pub(crate) fn end(&self) -> &Arc<End> {
        &self.end
    }

    /// Cuts the connection for both sides (server `disconnect`).
    pub(crate) fn disconnect(&self) {
        self.end.disconnect();
    }

    pub(crate) fn is_disconnected(&self) -> bool {
        // `End::disconnect` marks every ring: one plain load of the ring
        // already at hand (no `Arc` traffic, unlike `End::is_disconnected`).
        let bits = self.words.control().events.0.hangup.load(Acquire);
        bits & shmpipe_engine::layout::HANGUP_DISCONNECTED != 0
    }

    /// Whether the other side's end is open anywhere.
    pub(crate) fn peer_alive(&self) -> bool {
        self.end.peer_alive(self.peer_role).unwrap_or(false)
    }

    fn tx(&self) -> io::Result<&(Mutex<Sender>, Mutex<Arc<Sender>>)> {
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
        let mut tx = self.locked(tx, HALF_TX);
        let message = self.pipe_type == PipeType::Message;
        // A killed peer leaves no hang-up hint: ask now and then. Plain
        // loads and stores suffice: we hold the `tx` lock.
        let writes = self.writes_since_check.load(Relaxed) + 1;
        let now = coarse_now_ns();
        let due = self.gone.load(Relaxed)
            || writes >= LIVENESS_EVERY
            || now.wrapping_sub(self.last_check_ns.load(Relaxed)) >= LIVENESS_AGE_NS;
        if due {
            self.writes_since_check.store(0, Relaxed);
            self.last_check_ns.store(now, Relaxed);
            if self.peer_gone() {
                return Err(Error::io(ErrorKind::NoData));
            }
        } else {
            self.writes_since_check.store(writes, Relaxed);
        }
        if buf.is_empty() {
            // The state outcomes come first (spec 4.7): a cut instance or a
            // closed peer fails even a write of nothing. A write of nothing
            // never reaches the engine, which would see a closing peer's
            // hang-up hint, so look at the hint here (a kill is caught by
            // the periodic check above, as for other writes).
            if self.is_disconnected() {
                return Err(Error::io(ErrorKind::PipeNotConnected));
            }
            let hinted = self.words.control().events.0.hangup.load(Relaxed) != 0;
            if hinted && self.peer_gone() {
                return Err(Error::io(ErrorKind::NoData));
            }
            if !message {
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
        let n = buf.len() as u64;
        // `words` is the ring this end writes.
        let control = self.words.control();
        // A write that may pend on the quota is claimed (spec 5.2, 7.5)
        // under the writer lock *before* any of its bytes is published: a
        // kill after publication must find the claim in place, or the rest
        // of the write would stay readable. Whether it may pend is first
        // guessed from this handle's lower bound of `consumed` (too high a
        // guess only costs the token lookup) and then decided under the lock.
        // The claimant is named by this process's slot, the one the write's
        // admission lock names it by (one atomic load once made; if it
        // cannot be made, the write goes unmarked: the safe side).
        let queued_guess = tx
            .written()
            .saturating_sub(self.consumed_hint.load(Relaxed));
        let token = if queued_guess.saturating_add(n) > u64::from(self.quota) {
            self.end.holder_token().ok()
        } else {
            None
        };
        let quota = u64::from(self.quota);
        let claim = |start: u64| {
            let token = token?;
            let end = start.checked_add(n)?;
            let consumed = control.consumer.0.consumed.load(Acquire);
            // It cannot pend if it fits now: `consumed` only grows.
            if end.saturating_sub(consumed) <= quota {
                return None;
            }
            PendingMark::claim(control, token, start, end)
        };
        let (end, claim) = tx.send_marked(buf, None, claim).map_err(|e| {
            let kind = if e.published == 0 {
                ErrorKind::NoData
            } else {
                ErrorKind::BrokenPipe
            };
            self.note_gone(&e.error);
            engine(e.error, kind)
        })?;
        drop(tx);
        let target = end.saturating_sub(u64::from(self.quota));
        // `consumed` only grows, so any value once read is a lower bound:
        // while it already proves the quota met, the reader's cache line
        // (which it writes on every read) need not be pulled over.
        if self.consumed_hint.load(Relaxed) >= target {
            return Ok(buf.len());
        }
        let consumed = control.consumer.0.consumed.load(Acquire).min(end);
        self.consumed_hint.store(consumed, Relaxed);
        if consumed >= target {
            return Ok(buf.len());
        }
        // Bytes a pending read takes never count against the quota (spec
        // 5.2, 5.3): if nothing was unread ahead of this write, the read
        // advertised in the ring takes its share at once, and the write
        // completes when the rest fits. Asked only here, on the way to
        // waiting, so the fast path never touches the reader's words.
        // `end` comes from shared counters: nonsense skips the share.
        let start = end.checked_sub(buf.len() as u64);
        if let Some(start) = start.filter(|&start| consumed >= start) {
            let share = advertised_share(control, buf.len() as u64);
            // What the read already consumed of its share counts once.
            if consumed.max(start + share) >= target {
                return Ok(buf.len());
            }
        }
        let waiter = self.waiter()?;
        let r = waiter.wait_consumed(target, None);
        drop(claim);
        r.map_err(|e| {
            self.note_gone(&e);
            engine(e, ErrorKind::BrokenPipe)
        })?;
        Ok(buf.len())
    }

    fn write_nonblocking(&self, tx: &mut Sender, buf: &[u8], message: bool) -> io::Result<usize> {
        let n = buf.len() as u64;
        let queued = tx.written().saturating_sub(tx.consumed());
        let taken = if queued == 0 {
            advertised_share(tx.ring().control(), n)
        } else {
            0
        };
        let fits = queued.saturating_add(n - taken) <= u64::from(self.quota);
        let all = if fits { tx.try_write(buf) } else { Ok(false) };
        let written = match all {
            Ok(true) => return Ok(buf.len()),
            // Byte pipe: the pending read gets its share, nothing is queued.
            // Message pipe: nothing at all (spec 5.5).
            Ok(false) if !message && taken > 0 => match tx.try_write(&buf[..taken as usize]) {
                Ok(true) => return Ok(taken as usize),
                Ok(false) => 0,
                Err(e) => return Err(engine(e, ErrorKind::NoData)),
            },
            Ok(false) => 0,
            Err(e) => return Err(engine(e, ErrorKind::NoData)),
        };
        // "Nothing written" must not hide a peer that is gone (the write
        // path that found no room never asked the engine).
        if self.is_disconnected() {
            return Err(Error::io(ErrorKind::PipeNotConnected));
        }
        if self.peer_gone() {
            return Err(Error::io(ErrorKind::NoData));
        }
        Ok(written)
    }

    /// See [`pending::withdrawal_limit`]; a cut is an error only for a
    /// message-read mode read of a message pipe.
    fn withdrawal_limit(&self, rx: &mut Receiver, message_read: bool) -> io::Result<Option<usize>> {
        let cut_is_error = message_read && self.pipe_type == PipeType::Message;
        pending::withdrawal_limit(rx, &self.end, cut_is_error)
    }

    /// Byte-read mode read (spec 4.6): waits unless `nonblocking`; the end
    /// of the pipe is [`ErrorKind::BrokenPipe`].
    pub(crate) fn read_bytes(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
        let (rx, _) = self.rx()?;
        let mut rx = self.locked(rx, HALF_RX);
        let buf = match self.withdrawal_limit(&mut rx, false)? {
            Some(limit) if limit < buf.len() => &mut buf[..limit],
            _ => buf,
        };
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
        r.map_err(|e| {
            self.note_gone(&e);
            engine(e, ErrorKind::BrokenPipe)
        })
    }

    /// Message-read mode read (spec 4.6): one message, or as much of it as
    /// fits (`complete == false`: MoreData).
    pub(crate) fn read_msg(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<MsgRead> {
        let (rx, _) = self.rx()?;
        let mut rx = self.locked(rx, HALF_RX);
        let buf = match self.withdrawal_limit(&mut rx, true)? {
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
            let first = rx
                .batch(|c| c.read_message(buf))
                .map_err(|e| engine(e, ErrorKind::BrokenPipe))?;
            return match first {
                Some(m) => Ok(conv(m)),
                None => self
                    .empty_nonblocking(&mut rx, |rx| rx.batch(|c| c.read_message(buf)))
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
            None => {
                self.gone.store(true, Relaxed);
                Err(Error::io(ErrorKind::BrokenPipe))
            }
        }
    }

    fn advertise(&self, rx: &Receiver, len: usize) {
        rx.ring()
            .control()
            .user_word(UserWord::PendingRead)
            .store(len as u64 + 1, Relaxed);
    }

    fn advertise_done(&self, rx: &Receiver) {
        rx.ring()
            .control()
            .user_word(UserWord::PendingRead)
            .store(0, Relaxed);
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
            return if self.all_read(&tx) {
                Ok(())
            } else {
                Err(Error::io(ErrorKind::BrokenPipe))
            };
        }
        // The engine's flush succeeds once everything was read, also if the
        // reader left right after reading; it fails if the reader left
        // with anything unread.
        tx.flush().map_err(|e| {
            self.note_gone(&e);
            engine(e, ErrorKind::BrokenPipe)
        })
    }

    /// Whether the peer consumed every record this end's ring holds (ring
    /// positions, so that queued empty messages count).
    fn all_read(&self, tx: &Sender) -> bool {
        let c = tx.ring().control();
        let tail = c.producer.0.tail.load(Acquire);
        c.consumer.0.head.load(Acquire) >= tail
    }

    /// Remembers that the peer is gone when the engine said so, so that
    /// later writes fail at once (a killed peer leaves no hint).
    fn note_gone(&self, e: &shmpipe_engine::Error) {
        if matches!(e, shmpipe_engine::Error::PeerClosed) {
            self.gone.store(true, Relaxed);
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
            let mut tx = self.locked(tx, HALF_TX);
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

/// Index of the writing half's policy generation in `Conn::applied`.
const HALF_TX: usize = 0;
/// Index of the reading half's.
const HALF_RX: usize = 1;

/// The halves whose wait policy [`Conn::set_wait_policy`] changes.
trait SetPolicy {
    fn set_policy(&mut self, p: WaitPolicy);
}

impl SetPolicy for Sender {
    fn set_policy(&mut self, p: WaitPolicy) {
        self.set_wait_policy(p);
    }
}

impl SetPolicy for Receiver {
    fn set_policy(&mut self, p: WaitPolicy) {
        self.set_wait_policy(p);
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
