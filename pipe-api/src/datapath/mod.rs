//! The data path of one end, shared by anonymous ends and by named pipes'
//! server and client ends: quota writes, byte and message reads, peek, flush
//! and transact over engine rings. [`Conn`] is one handle's view of an end:
//! its writing half (one ring) and/or its reading half (the other, or the
//! same ring's other side), with the pipe's type and write quota.
//!
//! Files: this one holds [`Conn`], its opening, its wait policy and its
//! view of the peer's liveness; [`write`] the write path, [`read`] the read
//! path and peek, [`flush`] flush and transact, [`pending`] the
//! pending-write mark a dead writer's unfinished write is withdrawn by,
//! [`queue`] the cancellable wait of a call for a half another call holds,
//! [`zero_copy`] writes and reads through the ring's own memory.
//!
//! Invariants it keeps:
//! * One operation at a time per half: a half is used only under its
//!   mutex (a call that must wait for it is pending, and cancellable); a wait that follows publication (quota, flush) uses a twin
//!   half, so a write pending on the quota never holds up the next write.
//! * `Ok` from a write means published and within the quota (a pending
//!   read's share counted, spec 5.3); `Ok` from flush means read by the
//!   peer.
//! * Once the peer is found gone it stays gone (`gone` is only ever set).
//! * Everything read from the segment (counters, user words) is hostile:
//!   it is bounded before use and never trusted to stay put. Which user word
//!   holds what is the engine's table, `shmpipe_engine::layout::user_words`.
//!
//! # When a peer that was killed is noticed
//!
//! A peer that *closes* its end leaves a hang-up hint, which the next
//! operation sees at once. A peer that is *killed* runs no code, but the
//! kernel releases its descriptors: an operation that has to wait (a read,
//! a write on the quota or a full ring, `flush_buffers`, which also asks
//! the kernel at its start) registers its end with the engine's watcher
//! (`End::watch_peer`, the first wait of an end only), which is told of the
//! release by inotify and raises the hint for the waiters, ≈ 0.3 ms after
//! the kill (the kernel pipe takes ≈ 0.2 ms; the park slice, 4 ms, remains
//! the fallback where inotify cannot be had). From then on the hint also
//! makes the next write of that end fail at once. A write that need not
//! wait, on an end that never waited, asks the kernel (≈ 0.7 µs a question: asking on every write would
//! cost more than the write) once one tick of the coarse monotonic clock
//! (1-4 ms, a few ns to read) has passed since it last asked, or after
//! [`LIVENESS_EVERY`] writes. So a write that comes a tick after the kill is
//! told `NoData`; writes in quick succession right after it can still land
//! in a buffer nobody will read (until the quota fills, and then the write
//! waits and notices). The count is only a backstop: asking every 64 writes,
//! as an earlier version did, put a system call in 1.5% of round trips and
//! doubled the pipes' p99 latency.

mod flush;
mod pending;
mod queue;
mod read;
mod readiness;
mod write;
mod zero_copy;

use crate::error::{Error, ErrorKind};
use crate::info::PipeType;
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::UserWord;
use shmpipe_engine::wait::Canceller;
use shmpipe_engine::{Receiver, RingStorage, Sender, WaitPolicy};
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
    /// The ring the writing half writes (for a new twin).
    write_ring: usize,
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
    /// The handle's canceller, shared by every half (spec 7.4).
    cancel: Canceller,
    /// The calls waiting for a half another call holds.
    queue: Arc<queue::Queue>,
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
        let cancel = Canceller::new();
        let tx = match write {
            Some(ring) => {
                // Both halves share the end (one descriptor for the whole
                // end, not one per half: `try_clone` would `dup` it).
                let mut a = Sender::new(Arc::clone(&end), ring, peer_role).map_err(map)?;
                let mut b = Sender::new(Arc::clone(&end), ring, peer_role).map_err(map)?;
                a.set_canceller(cancel.clone());
                b.set_canceller(cancel.clone());
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
                let mut b = Receiver::new(Arc::clone(&end), ring, peer_role).map_err(map)?;
                a.set_canceller(cancel.clone());
                b.set_canceller(cancel.clone());
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
            write_ring: write.unwrap_or(0),
            rx,
            policy: Mutex::new(None),
            policy_gen: std::sync::atomic::AtomicU32::new(0),
            applied: Default::default(),
            pipe_type,
            quota,
            cancel,
            queue: Arc::default(),
        })
    }

    /// The canceller of this handle's blocking operations.
    pub(crate) fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    /// Makes `cancel` the canceller of every half (before the connection
    /// is shared: a server instance's canceller serves all its
    /// connections).
    pub(crate) fn set_canceller(&mut self, cancel: Canceller) {
        if let Some((a, b)) = &mut self.tx {
            lock(a).set_canceller(cancel.clone());
            let mut twin = lock(b);
            if let Some(t) = Arc::get_mut(&mut twin) {
                t.set_canceller(cancel.clone());
            }
        }
        if let Some((a, b)) = &mut self.rx {
            lock(a).set_canceller(cancel.clone());
            lock(b).set_canceller(cancel.clone());
        }
        self.cancel = cancel;
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
                // A wait holds the twin: later waits get a new one, on the
                // same end (no descriptor of its own).
                None => {
                    let twin_of =
                        Sender::new(Arc::clone(&self.end), self.write_ring, self.peer_role);
                    if let Ok(mut t) = twin_of {
                        t.set_canceller(self.cancel.clone());
                        t.set_wait_policy(policy);
                        *twin = Arc::new(t);
                    }
                }
            }
        }
    }

    /// Locks an operation half, first giving it the latest wait policy
    /// (`which` tells the halves' generations apart). A call that finds it
    /// held by another call of this handle waits as a pending operation:
    /// `OperationAborted` if cancelled meanwhile.
    fn locked<'a, H: SetPolicy>(
        &'a self,
        half: &'a Mutex<H>,
        which: usize,
    ) -> io::Result<queue::Half<'a, H>> {
        let mut h = queue::lock_half(half, &self.queue, &self.cancel)?;
        self.apply_policy(&mut *h, which);
        Ok(h)
    }

    /// Gives a locked half the latest wait policy.
    fn apply_policy<H: SetPolicy + ?Sized>(&self, h: &mut H, which: usize) {
        let generation = self.policy_gen.load(Acquire);
        // Written only under `half`'s lock.
        if self.applied[which].load(Relaxed) != generation {
            if let Some(p) = *lock(&self.policy) {
                h.set_policy(p);
            }
            self.applied[which].store(generation, Relaxed);
        }
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
        let written = c.written();
        written.saturating_sub(c.consumed())
    }

    /// Payload bytes of this end's writes the peer consumed so far (a
    /// remote end's flush waits until its bridge sent that many).
    #[cfg(feature = "remote")]
    pub(crate) fn consumed_by_peer(&self) -> u64 {
        self.words.control().consumed()
    }

    /// The twin writing half, for a wait.
    fn waiter(&self) -> io::Result<Arc<Sender>> {
        let (_, twin) = self.tx()?;
        Ok(Arc::clone(&lock(twin)))
    }

    /// The flags in mode word `w` of the ring this end writes (or else
    /// reads): where the pipe layer keeps per-end modes that duplicates
    /// must share (hostile input: only ever tested as flags).
    pub(crate) fn modes(&self, w: UserWord) -> u64 {
        self.words.control().modes(w)
    }

    /// Sets `bits` in mode word `w` (see [`Conn::modes`]); returns the
    /// previous flags.
    pub(crate) fn set_modes(&self, w: UserWord, bits: u64) -> u64 {
        self.words.control().set_modes(w, bits)
    }

    /// Clears `bits` in mode word `w` (see [`Conn::modes`]); returns the
    /// previous flags.
    pub(crate) fn clear_modes(&self, w: UserWord, bits: u64) -> u64 {
        self.words.control().clear_modes(w, bits)
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
        self.words.control().is_disconnected()
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

    /// Remembers that the peer is gone when the engine said so, so that
    /// later writes fail at once (a killed peer leaves no hint).
    fn note_gone(&self, e: &shmpipe_engine::Error) {
        if matches!(e, shmpipe_engine::Error::PeerClosed) {
            self.gone.store(true, Relaxed);
        }
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
