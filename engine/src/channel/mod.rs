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
//! single-consumer fast path without locks, use [`Producer`] / [`Consumer`]
//! directly.
//!
//! Blocking operations spin, park and check the peer as
//! [`WaitPolicy`] says: a dead peer is reported as [`Error::PeerClosed`]
//! within one park slice of its death (a few milliseconds), or at once when
//! it closed its last handle normally. (One exception to "at once": if the
//! process forks while the last handle closes, the child holds a copy of the
//! descriptor until it execs, the woken peer finds the end still open, and
//! it learns of the close at its next park slice.)

use crate::layout::{Events, RingControl, HANGUP_DISCONNECTED, HANGUP_READER, HANGUP_WRITER};
use crate::liveness::{slot_held, EndLock, ProcessSlot};
use crate::lock::LockWord;
use crate::ring::{Consumer, MessageRead, Producer, RingStorage};
// Under `--cfg loom` (the loom models only) this very code runs on rings
// of loom memory and the loom platform instead: see `loom_model`.
#[cfg(loom)]
use crate::loom_model::{Loom as Native, Segment, SegmentRing};
#[cfg(not(loom))]
use crate::segment::{Segment, SegmentRing};
#[cfg(not(loom))]
use crate::sync::Native;
#[cfg(loom)]
use crate::sync::{Atomic32, Atomic64};
use crate::wait::{Step, WaitPolicy, Waiter};
use crate::{Error, Result};
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

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

fn events(s: &SegmentRing) -> &Events<Native> {
    &s.control().events.0
}

/// Sets a hang-up hint and wakes everybody, waiters for data, space and
/// the admission locks alike, so they re-check now rather than after their
/// next park slice.
fn hang_up(s: &SegmentRing, bit: u32) {
    let ev = events(s);
    ev.hangup.fetch_or(bit, Relaxed);
    ev.readable.notify();
    ev.writable.notify();
    let locks = &s.control().locks.0;
    locks.writer.wake_waiters();
    locks.reader.0.wake_waiters();
}

/// `Err(Disconnected)` once the segment's connection was cut.
#[inline]
fn check_connected(s: &SegmentRing) -> Result<()> {
    if events(s).hangup.load(Acquire) & HANGUP_DISCONNECTED != 0 {
        Err(Error::Disconnected)
    } else {
        Ok(())
    }
}

/// Consumes the hang-up hint for `bit`: `true` if it was set.
fn take_hangup(s: &SegmentRing, bit: u32) -> bool {
    let ev = events(s);
    // Cheap load first: the fast path must not write the shared line.
    ev.hangup.load(Relaxed) & bit != 0 && ev.hangup.fetch_and(!bit, AcqRel) & bit != 0
}

/// One end of a segment, shared by the halves ([`Sender`], [`Receiver`])
/// that use it: the descriptor holding the end's role lock, and the hang-up
/// hints to leave when the end closes.
pub struct End {
    // `None` only inside `drop` and `into_fd`.
    lock: Option<EndLock>,
    segment: Arc<Segment>,
    role: u32,
    hangups: Vec<(usize, u32)>,
    /// This process's name on the segment's admission locks, shared by the
    /// end's clones (made on first use).
    slot: Arc<ProcessSlot>,
}

impl core::fmt::Debug for End {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("End").field("role", &self.role).finish()
    }
}

impl End {
    /// An end of `segment` whose descriptor holds the lock of `role`
    /// (checked), which leaves hang-up hint `bit` on ring `ring` for each
    /// entry of `hangups` when it closes.
    pub fn new(
        lock: EndLock,
        segment: Arc<Segment>,
        role: u32,
        hangups: &[(usize, u32)],
    ) -> Result<Arc<End>> {
        if !lock.holds_role(role)? {
            return Err(Error::WrongEnd);
        }
        for &(ring, _) in hangups {
            if ring >= segment.ring_count() {
                return Err(Error::InvalidArgument("no such ring in this segment"));
            }
        }
        Ok(Arc::new(End {
            lock: Some(lock),
            segment,
            role,
            hangups: hangups.to_vec(),
            slot: Arc::new(ProcessSlot::new()),
        }))
    }

    /// Attaches the segment behind `fd` (a descriptor of an end, received
    /// from another process) and makes it an [`End`] (see [`End::new`]).
    pub fn attach(fd: OwnedFd, role: u32, hangups: &[(usize, u32)]) -> Result<Arc<End>> {
        let segment = Segment::attach(fd.as_fd())?;
        End::new(EndLock::from_fd(fd), segment, role, hangups)
    }

    fn lock(&self) -> &EndLock {
        self.lock.as_ref().expect("end lock present until drop")
    }

    /// The end's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.lock().fd()
    }

    /// The segment.
    pub fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }

    /// This end's role.
    pub fn role(&self) -> u32 {
        self.role
    }

    /// Whether the end with `role` is open in some process.
    pub fn peer_alive(&self, role: u32) -> Result<bool> {
        Ok(self.lock().peer_alive(role)?)
    }

    /// This process's token for the segment's admission locks (its
    /// [`ProcessSlot`], made on first use, shared with the end's clones).
    pub fn holder_token(&self) -> Result<u64> {
        Ok(self.slot.token(self.fd())?)
    }

    /// Whether the holder named by `token` (read from a lock word: hostile)
    /// still lives. `me` is this process's own token: a lock held by another
    /// handle of this process is never taken over.
    pub fn holder_alive(&self, me: u64, token: u64) -> bool {
        token == me || slot_held(self.fd(), token)
    }

    /// A new end sharing this one's descriptor state (a `dup`): the role
    /// lock is held until both are closed.
    pub fn try_clone(&self) -> Result<Arc<End>> {
        let fd = rustix::io::fcntl_dupfd_cloexec(self.fd(), 0)?;
        Ok(Arc::new(End {
            lock: Some(EndLock::from_fd(fd)),
            segment: Arc::clone(&self.segment),
            role: self.role,
            hangups: self.hangups.clone(),
            slot: Arc::clone(&self.slot),
        }))
    }

    /// Gives up the end without leaving hang-up hints (the descriptor lives
    /// on elsewhere). A shared end gives a duplicate.
    pub fn into_fd(this: Arc<End>) -> Result<OwnedFd> {
        match Arc::try_unwrap(this) {
            Ok(mut end) => Ok(end.lock.take().expect("end lock present").into_fd()),
            Err(shared) => Ok(rustix::io::fcntl_dupfd_cloexec(shared.fd(), 0)?),
        }
    }

    /// Cuts the connection for good (Windows' `DisconnectNamedPipe`): every
    /// operation on the segment, in every process, now fails with
    /// [`Error::Disconnected`], and blocked ones are woken to see it.
    pub fn disconnect(&self) {
        for i in 0..self.segment.ring_count() {
            if let Ok(r) = self.segment.ring(i) {
                hang_up(&r, HANGUP_DISCONNECTED);
            }
        }
    }

    /// Whether [`End::disconnect`] was called on this segment.
    pub fn is_disconnected(&self) -> bool {
        self.segment
            .ring(0)
            .is_ok_and(|r| check_connected(&r).is_err())
    }
}

impl Drop for End {
    fn drop(&mut self) {
        // Close the descriptor first: if it was the end's last one, the
        // kernel drops the role lock now, and the peer that the hint wakes
        // sees the end closed instead of going back to sleep.
        if let Some(lock) = self.lock.take() {
            drop(lock);
            for &(ring, bit) in &self.hangups {
                if let Ok(r) = self.segment.ring(ring) {
                    hang_up(&r, bit);
                }
            }
        }
    }
}

/// A process-unique number for a sender or receiver handle; with the
/// process's slot ([`End::holder_token`]) it makes the handle's id on the
/// lock word ([`handle_id`]).
fn handle_seq() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// The id of handle `seq` of the process whose holder token is `me`: unique
/// among the live handles of the segment, in every pid namespace (two live
/// processes never share a slot), and different in a forked child (which
/// draws its own slot) from the parent's copy of the same handle.
fn handle_id(me: u64, seq: u32) -> u64 {
    ((me & 0xffff_ffff) << 32) | u64::from(seq)
}

/// A failed [`Sender::send`].
#[derive(Debug)]
pub struct SendError {
    /// Bytes of the write that were published (readable) before the failure.
    pub published: usize,
    /// Why it failed.
    pub error: Error,
}

/// The writing end of a channel.
pub struct Sender {
    end: Arc<End>,
    producer: Producer<SegmentRing>,
    policy: WaitPolicy,
    peer_role: u32,
    seq: u32,
    /// The holder token of the process in which this handle last synced
    /// with the shared state and finished its operation (0: never). Until
    /// then, finding its own id as the last holder proves nothing: a new
    /// process can draw a dead one's slot, and with it the ids of its
    /// handles; a child forked without exec holds a copy of the handle (its
    /// token differs, see [`handle_id`]); and a panic may have cut the last
    /// operation short.
    synced_in: u64,
}

impl core::fmt::Debug for Sender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sender")
            .field("producer", &self.producer)
            .finish()
    }
}

impl Sender {
    /// The writing half of `end` on ring `ring`, whose reader is the end
    /// with role `peer_role`.
    pub fn new(end: Arc<End>, ring: usize, peer_role: u32) -> Result<Sender> {
        Ok(Sender {
            // Other senders may be publishing right now, so the shared state
            // can only be read consistently under the writer lock: every
            // operation resyncs there first.
            // SAFETY: every use of the producer's data area (reservations,
            // grants, copies: `write_locked`, `try_write`, `batch`) happens
            // inside `with_lock`, under the ring's writer lock, which every
            // `Sender` of this ring takes; its other uses outside the lock
            // only load shared atomics.
            producer: unsafe { Producer::new_unsynced(end.segment().ring(ring)?)? },
            end,
            policy: WaitPolicy::default(),
            peer_role,
            seq: handle_seq(),
            synced_in: 0,
        })
    }

    /// Adopts a descriptor made by [`Sender::into_fd`] (inherited, or
    /// received over a Unix socket). The segment is validated; a descriptor
    /// of anything else, or of the read end, is refused.
    pub fn from_fd(fd: OwnedFd) -> Result<Sender> {
        Sender::new(
            End::attach(fd, ROLE_WRITER, &[(0, HANGUP_WRITER)])?,
            0,
            ROLE_READER,
        )
    }

    /// The end this half belongs to.
    pub fn end(&self) -> &Arc<End> {
        &self.end
    }

    /// The ring this end writes (its segment, control block and user words).
    pub fn ring(&self) -> &SegmentRing {
        self.producer.storage()
    }

    /// The end's descriptor, to hand to another process. The end stays open
    /// while any copy of it is open.
    pub fn into_fd(self) -> OwnedFd {
        End::into_fd(self.end).expect("duplicating a descriptor we own")
    }

    /// Borrows the end's descriptor (for example to let a child inherit it).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.end.fd()
    }

    /// Another handle to the same end (the descriptor is duplicated, so it
    /// shares the end's liveness).
    pub fn try_clone(&self) -> Result<Sender> {
        let ring = self.ring_index()?;
        let mut s = Sender::new(self.end.try_clone()?, ring, self.peer_role)?;
        s.policy = self.policy;
        Ok(s)
    }

    fn ring_index(&self) -> Result<usize> {
        ring_index_of(&self.end, self.producer.storage())
    }

    /// Sets how blocking operations wait.
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.policy = policy;
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.producer.capacity()
    }

    /// Whether the reading end is still open in some process.
    pub fn is_peer_alive(&self) -> Result<bool> {
        self.end.peer_alive(self.peer_role)
    }

    fn lock(&self) -> *const LockWord<Native> {
        &self.producer.storage().control().locks.0.writer
    }

    /// Writes `data` as one record (or a run of fragments), waiting for space
    /// as long as it takes. Atomic with respect to other senders.
    /// `Err(PeerClosed)` once the reading end is closed everywhere.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.write_until(data, None)
    }

    /// [`Sender::write`] with a deadline. On `Err(TimedOut)` a prefix of a
    /// write larger than the free space may have been published; the next
    /// write first ends it with an abort marker, which a message reader sees
    /// as a cut: the part with `end == false`, then [`Error::MessageCut`].
    pub fn write_until(&mut self, data: &[u8], deadline: Option<Instant>) -> Result<()> {
        self.send(data, deadline).map(drop).map_err(|e| e.error)
    }

    /// Writes `data` like [`Sender::write_until`] and returns the channel's
    /// payload position just past this write (compare with
    /// [`Sender::consumed`] to know how much of it, and of what came before,
    /// is still unread). On failure, tells how many bytes of `data` had been
    /// published (the pipe layer reports "peer gone before the write" and
    /// "peer gone during the write" differently).
    pub fn send(&mut self, data: &[u8], deadline: Option<Instant>) -> Result<u64, SendError> {
        let mut published = 0;
        self.with_lock(deadline, |me, waiter| {
            me.write_locked(data, waiter, &mut published)?;
            Ok(me.producer.written())
        })
        .map_err(|error| SendError { published, error })
    }

    /// [`Sender::send`], calling `before` under the writer lock with the
    /// payload position where this write starts, before any byte of it is
    /// published; returns the end position and what `before` returned
    /// (dropped if the write fails). The pipe layer marks a write that may
    /// pend on its quota there, so that no byte of such a write is ever
    /// visible to the reader without its mark (spec 5.2, SEM-117).
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.write(b"abc")?;
    /// let (end, start) = tx.send_marked(b"de", None, |start| start).unwrap();
    /// assert_eq!((start, end), (3, 5));
    /// # let _ = rx;
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn send_marked<M>(
        &mut self,
        data: &[u8],
        deadline: Option<Instant>,
        before: impl FnOnce(u64) -> M,
    ) -> Result<(u64, M), SendError> {
        let mut published = 0;
        self.with_lock(deadline, |me, waiter| {
            // An earlier holder's open write is ended first: the position
            // read next is where this write's bytes begin.
            me.end_open_write(waiter)?;
            let mark = before(me.producer.written());
            me.write_locked(data, waiter, &mut published)?;
            Ok((me.producer.written(), mark))
        })
        .map_err(|error| SendError { published, error })
    }

    /// Waits until the reader has consumed the channel up to payload position
    /// `target` (see [`Sender::send`]).
    pub fn wait_consumed(&self, target: u64, deadline: Option<Instant>) -> Result<()> {
        let mut waiter = Waiter::new(self.policy, deadline);
        let s = self.producer.storage();
        let consumed = || s.control().consumer.0.consumed.load(Acquire) >= target;
        while !consumed() {
            self.wait_writable(&mut waiter, consumed)?;
        }
        Ok(())
    }

    /// Writes `data` as one record if it fits now; `Ok(false)` otherwise
    /// (nothing written). Never waits for space, only (briefly) for the lock.
    pub fn try_write(&mut self, data: &[u8]) -> Result<bool> {
        self.with_lock(None, |me, waiter| {
            me.end_open_write(waiter)?;
            me.producer.try_push(data, 0)
        })
    }

    /// Runs `f` with exclusive use of the ring's producer: one lock round
    /// for many records (batches). `f` must finish every write it starts.
    pub fn batch<R>(&mut self, f: impl FnOnce(&mut Producer<SegmentRing>) -> R) -> Result<R> {
        self.with_lock(None, |me, waiter| {
            me.end_open_write(waiter)?;
            Ok(f(&mut me.producer))
        })
    }

    fn with_lock<R>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(&mut Self, &mut Waiter) -> Result<R>,
    ) -> Result<R> {
        let storage = self.producer.storage();
        check_connected(storage)?;
        if take_hangup(storage, HANGUP_READER) && !self.is_peer_alive()? {
            // Leave the hint for the other senders of this end.
            events(self.producer.storage())
                .hangup
                .fetch_or(HANGUP_READER, Relaxed);
            return Err(Error::PeerClosed);
        }
        let mut waiter = Waiter::new(self.policy, deadline);
        let me = self.end.holder_token()?;
        // SAFETY: the lock word lives in the segment's mapping, which is
        // owned by the `Arc<Segment>` that `self.producer`'s ring holds
        // (and `self.end` another), not by the producer itself; the raw
        // pointer only avoids borrowing `self` across `f(self, ..)`. `f`
        // cannot unmap it: no code here replaces `self.producer`, and user
        // code in `batch` can at most swap it with another live producer
        // (no `Producer<SegmentRing>` can be had by value in safe code), so
        // that ring, and its mapping, still lives after `f`.
        let lock = unsafe { &*self.lock() };
        let synced = self.synced_in == me;
        let (end, peer_role) = (&self.end, self.peer_role);
        let id = handle_id(me, self.seq);
        // While the lock is held by someone else (stopped, perhaps), a cut
        // connection or a reader gone for good still ends the wait.
        let hangup = &events(storage).hangup;
        let admitted = lock.admit_watching(
            me,
            id,
            synced,
            &mut waiter,
            |t| end.holder_alive(me, t),
            || hangup.load(Relaxed) & (HANGUP_READER | HANGUP_DISCONNECTED) != 0,
            |step| {
                check_connected(storage)?;
                if (take_hangup(storage, HANGUP_READER) || step == Step::CheckPeer)
                    && !end.peer_alive(peer_role)?
                {
                    hangup.fetch_or(HANGUP_READER, Relaxed);
                    return Err(Error::PeerClosed);
                }
                Ok(())
            },
        )?;
        // Unsynced until `f` returns: after a failed resync or a panic in
        // `f`, the next acquisition reloads the shared state.
        self.synced_in = 0;
        if admitted.needs_resync() {
            self.producer.resync()?;
        }
        let result = f(self, &mut waiter);
        self.synced_in = me;
        result
    }

    /// Ends a write a previous holder of the lock left half published.
    fn end_open_write(&mut self, waiter: &mut Waiter) -> Result<()> {
        while !self.producer.try_abort_open_write()? {
            let need = self.producer.space_needed(0, true);
            self.wait_space(waiter, need)?;
        }
        Ok(())
    }

    fn write_locked(
        &mut self,
        data: &[u8],
        waiter: &mut Waiter,
        published: &mut usize,
    ) -> Result<()> {
        self.end_open_write(waiter)?;
        if data.len() <= self.producer.max_record() {
            loop {
                if let Some(mut g) = self.producer.try_reserve(data.len())? {
                    g.fill(data);
                    g.commit(0);
                    *published = data.len();
                    return Ok(());
                }
                let need = self.producer.space_needed(data.len(), true);
                self.wait_space(waiter, need)?;
            }
        }
        let mut rest = data;
        while !rest.is_empty() {
            match self.producer.try_reserve_up_to(rest.len())? {
                Some(mut g) => {
                    let n = g.len();
                    g.fill(&rest[..n]);
                    rest = &rest[n..];
                    g.commit(rest.len() as u64);
                    *published += n;
                }
                None => {
                    let need = self.producer.space_needed(rest.len(), false);
                    self.wait_space(waiter, need)?
                }
            }
        }
        Ok(())
    }

    fn wait_space(&self, waiter: &mut Waiter, need: u64) -> Result<()> {
        let p = &self.producer;
        self.wait_writable(waiter, || p.free_hint() >= need)
    }

    /// One wait step on the `writable` event until `ready`, a hang-up hint
    /// or a disconnect; then the liveness and connection checks.
    fn wait_writable(&self, waiter: &mut Waiter, ready: impl Fn() -> bool) -> Result<()> {
        let s = self.producer.storage();
        let ev = events(s);
        // The hint is part of the condition: a notify that comes before we
        // announce ourselves as a sleeper must not cost a whole park slice.
        let step = waiter.wait(&ev.writable, || {
            ready() || ev.hangup.load(Relaxed) & (HANGUP_READER | HANGUP_DISCONNECTED) != 0
        });
        if take_hangup(s, HANGUP_READER) {
            let r = self.after_step(Step::CheckPeer);
            // What we waited for may have happened before the peer left (a
            // flush whose bytes were all read): that is success.
            return if r.is_err() && ready() { Ok(()) } else { r };
        }
        match self.after_step(step) {
            Err(Error::PeerClosed) if ready() => Ok(()),
            r => r,
        }
    }

    fn after_step(&self, step: Step) -> Result<()> {
        check_connected(self.producer.storage())?;
        match step {
            Step::Retry => Ok(()),
            Step::CheckPeer => {
                if self.is_peer_alive()? {
                    Ok(())
                } else {
                    // Leave the hint, so every later write (of any sender
                    // of this end) fails at once too.
                    events(self.producer.storage())
                        .hangup
                        .fetch_or(HANGUP_READER, Relaxed);
                    Err(Error::PeerClosed)
                }
            }
            Step::TimedOut => Err(Error::TimedOut),
        }
    }

    /// Payload bytes written to the channel so far (by every sender).
    pub fn written(&self) -> u64 {
        self.producer
            .storage()
            .control()
            .producer
            .0
            .written
            .load(Acquire)
    }

    /// Payload bytes the reader has consumed so far.
    pub fn consumed(&self) -> u64 {
        self.producer.consumed()
    }

    /// Waits until the reader has consumed every byte written so far
    /// (Windows' `FlushFileBuffers`). Succeeds only if everything was read,
    /// also when the reader left just after reading it; `PeerClosed` if the
    /// reader is gone with anything unread.
    pub fn flush(&self) -> Result<()> {
        self.flush_until(None)
    }

    /// [`Sender::flush`] with a deadline. Waits on ring positions, not byte
    /// counts, so queued empty messages must be read too.
    pub fn flush_until(&self, deadline: Option<Instant>) -> Result<()> {
        let s = self.producer.storage();
        let target = s.control().producer.0.tail.load(Acquire);
        let mut waiter = Waiter::new(self.policy, deadline);
        let done = || s.control().consumer.0.head.load(Acquire) >= target;
        while !done() {
            self.wait_writable(&mut waiter, done)?;
        }
        Ok(())
    }
}

/// The reading end of a channel.
pub struct Receiver {
    end: Arc<End>,
    consumer: Consumer<SegmentRing>,
    policy: WaitPolicy,
    peer_role: u32,
    seq: u32,
    /// As `Sender::synced_in`.
    synced_in: u64,
}

impl core::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Receiver")
            .field("consumer", &self.consumer)
            .finish()
    }
}

impl Receiver {
    /// The reading half of `end` on ring `ring`, whose writer is the end
    /// with role `peer_role`.
    pub fn new(end: Arc<End>, ring: usize, peer_role: u32) -> Result<Receiver> {
        Ok(Receiver {
            // As for `Sender::new`: resynced under the reader lock.
            // SAFETY: as for `Sender::new`: the consumer reads and frees
            // records only inside `with_lock`, under the ring's reader lock,
            // which every `Receiver` of this ring takes.
            consumer: unsafe { Consumer::new_unsynced(end.segment().ring(ring)?)? },
            end,
            policy: WaitPolicy::default(),
            peer_role,
            seq: handle_seq(),
            synced_in: 0,
        })
    }

    /// Adopts a descriptor made by [`Receiver::into_fd`].
    pub fn from_fd(fd: OwnedFd) -> Result<Receiver> {
        Receiver::new(
            End::attach(fd, ROLE_READER, &[(0, HANGUP_READER)])?,
            0,
            ROLE_WRITER,
        )
    }

    /// The end this half belongs to.
    pub fn end(&self) -> &Arc<End> {
        &self.end
    }

    /// The ring this end reads (its segment, control block and user words).
    pub fn ring(&self) -> &SegmentRing {
        self.consumer.storage()
    }

    /// The end's descriptor, to hand to another process.
    pub fn into_fd(self) -> OwnedFd {
        End::into_fd(self.end).expect("duplicating a descriptor we own")
    }

    /// Borrows the end's descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.end.fd()
    }

    /// Another handle to the same end.
    pub fn try_clone(&self) -> Result<Receiver> {
        let ring = ring_index_of(&self.end, self.consumer.storage())?;
        let mut r = Receiver::new(self.end.try_clone()?, ring, self.peer_role)?;
        r.policy = self.policy;
        Ok(r)
    }

    /// Sets how blocking operations wait.
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.policy = policy;
    }

    /// Whether the writing end is still open in some process.
    pub fn is_peer_alive(&self) -> Result<bool> {
        self.end.peer_alive(self.peer_role)
    }

    /// Unread payload bytes in the channel (every reader's progress
    /// counts, so it is read from shared memory).
    pub fn available(&self) -> u64 {
        let c = self.consumer.storage().control();
        let written = c.producer.0.written.load(Acquire);
        written.saturating_sub(c.consumer.0.consumed.load(Acquire))
    }

    fn lock(&self) -> *const LockWord<Native> {
        &self.consumer.storage().control().locks.0.reader.0
    }

    fn with_lock<R>(
        &mut self,
        waiter: &mut Waiter,
        f: impl FnOnce(&mut Consumer<SegmentRing>) -> Result<R>,
    ) -> Result<R> {
        let storage = self.consumer.storage();
        check_connected(storage)?;
        let me = self.end.holder_token()?;
        // SAFETY: the lock word lives in the segment's mapping, owned by
        // the `Arc<Segment>` that `self.consumer`'s ring holds; `f` gets
        // `&mut Consumer` and can at most swap it with another live one (no
        // `Consumer<SegmentRing>` can be had by value in safe code), so the
        // ring and its mapping outlive the call.
        let lock = unsafe { &*self.lock() };
        let synced = self.synced_in == me;
        let (end, peer_role) = (&self.end, self.peer_role);
        let id = handle_id(me, self.seq);
        // While another reader holds the lock (stopped, perhaps), a cut
        // connection ends the wait, and so does a writer gone for good once
        // nothing is left to read. Once the writer is known gone its hint
        // stays up for the data waits, and is no longer part of the park
        // condition (it would make the lock wait spin).
        let hangup = &events(storage).hangup;
        let writer_gone = core::cell::Cell::new(false);
        let admitted = lock.admit_watching(
            me,
            id,
            synced,
            waiter,
            |t| end.holder_alive(me, t),
            || {
                let h = hangup.load(Relaxed);
                h & HANGUP_DISCONNECTED != 0 || (!writer_gone.get() && h & HANGUP_WRITER != 0)
            },
            |step| {
                check_connected(storage)?;
                let hinted = !writer_gone.get() && take_hangup(storage, HANGUP_WRITER);
                if (hinted || step == Step::CheckPeer) && !end.peer_alive(peer_role)? {
                    writer_gone.set(true);
                    hangup.fetch_or(HANGUP_WRITER, Relaxed);
                    let c = storage.control();
                    // Everything the writers published is visible (their
                    // records came before their descriptors closed).
                    if c.producer.0.tail.load(Acquire) == c.consumer.0.head.load(Acquire) {
                        return Err(Error::PeerClosed);
                    }
                }
                Ok(())
            },
        )?;
        self.synced_in = 0;
        if admitted.needs_resync() {
            self.consumer.resync()?;
        }
        let result = f(&mut self.consumer);
        self.synced_in = me;
        result
    }

    /// Reads in byte-stream mode (see [`Consumer::read_stream`]), waiting
    /// for data. `Err(PeerClosed)` once every sender is closed and
    /// everything was read.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.read_until(buf, None)
    }

    /// [`Receiver::read`] with a deadline.
    pub fn read_until(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize> {
        self.blocking(deadline, |c| c.read_stream(buf))
    }

    /// Reads without waiting: `Ok(None)` when nothing is queued.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        let mut waiter = Waiter::new(self.policy, None);
        self.with_lock(&mut waiter, |c| c.read_stream(buf))
    }

    /// Reads one message (see [`MessageRead`]), waiting until it is complete
    /// or fills `buf`.
    ///
    /// A message cut short (its writer died part-way, or gave up after a
    /// timeout) is never reported complete: the bytes that did arrive come
    /// with `end == false` and `len < buf.len()`, and the next read fails,
    /// with [`Error::MessageCut`] if other writers are left (they go on
    /// with the next message) or [`Error::PeerClosed`] if none is.
    pub fn read_message(&mut self, buf: &mut [u8]) -> Result<MessageRead> {
        let mut got = 0;
        loop {
            let r = match self.blocking(None, |c| {
                if got == 0 {
                    c.read_message(buf)
                } else {
                    c.read_message_continued(&mut buf[got..])
                }
            }) {
                Ok(r) => r,
                // The writer died in the middle of the message (with no
                // other writer left: `PeerClosed`, or with one that ended
                // the dead write: `MessageCut`, its marker left in place).
                // What was already consumed must reach the caller (it
                // cannot be read again), marked unfinished; the next read
                // reports the cut or the closed peer.
                Err(Error::PeerClosed | Error::MessageCut) if got > 0 => {
                    return Ok(MessageRead {
                        len: got,
                        end: false,
                    });
                }
                Err(e) => return Err(e),
            };
            got += r.len;
            if r.end || got == buf.len() {
                return Ok(MessageRead {
                    len: got,
                    end: r.end,
                });
            }
        }
    }

    /// Copies queued bytes without consuming them; never waits.
    pub fn peek(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut waiter = Waiter::new(self.policy, None);
        self.with_lock(&mut waiter, |c| c.peek_stream(buf))
    }

    /// Runs `f` with exclusive use of the consumer (zero-copy reads,
    /// batches); never waits for data.
    pub fn batch<R>(
        &mut self,
        f: impl FnOnce(&mut Consumer<SegmentRing>) -> Result<R>,
    ) -> Result<R> {
        let mut waiter = Waiter::new(self.policy, None);
        self.with_lock(&mut waiter, f)
    }

    /// Runs `op` until it returns `Some`, waiting for records in between.
    fn blocking<R>(
        &mut self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&mut Consumer<SegmentRing>) -> Result<Option<R>>,
    ) -> Result<R> {
        let mut waiter = Waiter::new(self.policy, deadline);
        loop {
            if let Some(r) = self.with_lock(&mut waiter, &mut op)? {
                return Ok(r);
            }
            let s = self.consumer.storage();
            let mut check = take_hangup(s, HANGUP_WRITER);
            if !check {
                let head = self
                    .consumer
                    .storage()
                    .control()
                    .consumer
                    .0
                    .head
                    .load(Acquire);
                let ev = events(s);
                let step = waiter.wait(&ev.readable, || {
                    s.control().producer.0.tail.load(Acquire) != head
                        || ev.hangup.load(Relaxed) & (HANGUP_WRITER | HANGUP_DISCONNECTED) != 0
                });
                match step {
                    Step::Retry => {}
                    Step::CheckPeer => check = true,
                    Step::TimedOut => {
                        return match self.with_lock(&mut waiter, &mut op)? {
                            Some(r) => Ok(r),
                            None => Err(Error::TimedOut),
                        }
                    }
                }
            }
            if check && !self.is_peer_alive()? {
                // Everything published before the last sender closed is
                // visible now (its records were published before its
                // descriptor closed): drain, then report the end.
                events(s).hangup.fetch_or(HANGUP_WRITER, Relaxed);
                return match self.with_lock(&mut waiter, &mut op)? {
                    Some(r) => Ok(r),
                    None => Err(Error::PeerClosed),
                };
            }
        }
    }
}

/// Which ring of `end`'s segment `ring` is.
fn ring_index_of(end: &End, ring: &SegmentRing) -> Result<usize> {
    let target: *const RingControl<Native> = ring.control();
    (0..end.segment().ring_count())
        .find(|&i| {
            end.segment()
                .ring(i)
                .is_ok_and(|r| core::ptr::eq(r.control(), target))
        })
        .ok_or(Error::InvalidArgument("ring not in this end's segment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A regression fails within seconds instead of hanging the suite.
    fn soon() -> Option<Instant> {
        Some(Instant::now() + std::time::Duration::from_secs(5))
    }

    fn read_all(rx: &mut Receiver, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        let mut got = 0;
        while got < n {
            got += rx.read_until(&mut v[got..], soon()).unwrap();
        }
        v
    }

    /// A handle that finds its own id as the lock's last holder before it
    /// ever synced (a new process drew a dead one's slot, and with it its
    /// handle ids) must still reload the shared state, or it writes at its
    /// stale tail over data the reader has not read.
    #[test]
    fn first_acquisition_resyncs_even_when_the_id_matches() {
        let (mut tx, mut rx) = channel(4096).unwrap();
        let mut tx2 = tx.try_clone().unwrap();
        tx.write(b"first").unwrap();
        // SAFETY: the lock word lives in tx2's mapping, alive here.
        let lock = unsafe { &*tx2.lock() };
        lock.mark_holder(handle_id(tx2.end.holder_token().unwrap(), tx2.seq));
        tx2.write_until(b"second", soon()).unwrap();
        assert_eq!(read_all(&mut rx, 11), b"firstsecond");
    }

    /// A panic inside a batch releases the writer lock (another handle of
    /// the end can write at once) and leaves the ring consistent.
    #[test]
    fn panic_in_a_batch_releases_the_lock() {
        let (mut tx, mut rx) = channel(4096).unwrap();
        let mut tx2 = tx.try_clone().unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tx.batch(|p| {
                assert!(p.try_push(b"kept", 0).unwrap());
                panic!("a user closure panics while holding the lock");
            })
        }));
        assert!(r.is_err());
        tx2.write_until(b"-after", soon()).unwrap();
        tx.write(b"-again").unwrap();
        assert_eq!(read_all(&mut rx, 16), b"kept-after-again");
        // Same for the reader lock.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rx.batch(|_| -> Result<()> { panic!("a reader's closure panics") })
        }));
        assert!(r.is_err());
        let mut rx2 = rx.try_clone().unwrap();
        tx.write(b"x").unwrap();
        assert_eq!(rx2.try_read(&mut [0u8; 4]).unwrap(), Some(1));
    }
}
