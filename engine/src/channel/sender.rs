//! The writing half of a channel: [`Sender`].
//!
//! Every write runs under the ring's writer lock (`with_lock`): admission
//! resyncs the producer from shared memory unless this very handle, in this
//! process, was the last holder and finished cleanly; a write a previous
//! holder left half published is ended with an abort marker first, so each
//! write is atomic and a reader sees a cut write as cut. Waiting for space
//! (and for a flush) is one wait step on the `writable` event at a time,
//! after which a reader gone for good is reported as
//! [`Error::PeerClosed`] (and left as a hint for the end's other senders).

use super::end::{check_connected, events, handle_id, take_hangup, End};
use super::half::Ctx;
use super::{ROLE_READER, ROLE_WRITER};
use crate::layout::{HANGUP_DISCONNECTED, HANGUP_READER, HANGUP_WRITER};
use crate::lock::LockWord;
use crate::ring::{Producer, RingStorage};
// Under `--cfg loom` (the loom models only) this very code runs on rings
// of loom memory and the loom platform instead: see `loom_model`.
#[cfg(loom)]
use crate::loom_model::{Loom as Native, SegmentRing};
#[cfg(not(loom))]
use crate::segment::SegmentRing;
#[cfg(not(loom))]
use crate::sync::Native;
#[cfg(loom)]
use crate::sync::{Atomic32, Atomic64};
use crate::wait::{Canceller, Step, WaitPolicy, Waiter};
use crate::{Error, Result};
use core::sync::atomic::Ordering::{Acquire, Relaxed};
use rustix::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

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
    // `cx` is `pub(super)` for the admission tests (`tests.rs`), which
    // plant this handle's id on the lock.
    pub(super) cx: Ctx,
    producer: Producer<SegmentRing>,
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
        let cx = Ctx::new(end, ring, peer_role)?;
        Ok(Sender {
            // Other senders may be publishing right now, so the shared state
            // can only be read consistently under the writer lock: every
            // operation resyncs there first.
            // SAFETY: every use of the producer's data area (reservations,
            // grants, copies: `write_locked`, `try_write`, the batches) happens
            // inside `locked`, under the ring's writer lock, which every
            // `Sender` of this ring takes; its other uses outside the lock
            // only load shared atomics.
            producer: unsafe { Producer::new_unsynced(cx.end.segment().ring(ring)?)? },
            cx,
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
        &self.cx.end
    }

    /// The ring this end writes (its segment, control block and user words).
    pub fn ring(&self) -> &SegmentRing {
        &self.cx.ring
    }

    /// The end's descriptor, to hand to another process. The end stays open
    /// while any copy of it is open.
    pub fn into_fd(self) -> OwnedFd {
        let end = Arc::clone(&self.cx.end);
        drop(self);
        End::into_fd(end).expect("duplicating a descriptor we own")
    }

    /// Borrows the end's descriptor (for example to let a child inherit it).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.cx.end.fd()
    }

    /// Another handle to the same end (the descriptor is duplicated, so it
    /// shares the end's liveness). It has a canceller of its own, like a
    /// duplicated Windows handle; [`Sender::set_canceller`] shares one.
    pub fn try_clone(&self) -> Result<Sender> {
        let ring = self.cx.ring_index()?;
        let mut s = Sender::new(self.cx.end.try_clone()?, ring, self.cx.peer_role)?;
        s.cx.policy = self.cx.policy;
        Ok(s)
    }

    /// Sets how blocking operations wait.
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.cx.policy = policy;
    }

    /// The canceller of this handle's blocking operations (writes waiting
    /// for space or for the writer lock, [`Sender::wait_consumed`],
    /// flushes): each pending one then fails with [`Error::Cancelled`].
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.write(&[0; 3000])?; // the ring is nearly full
    /// let canceller = tx.canceller();
    /// let writer = std::thread::spawn(move || tx.write(&[1; 3000]));
    /// while canceller.pending() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// canceller.cancel().unwrap();
    /// assert!(matches!(writer.join().unwrap(), Err(shmpipe_engine::Error::Cancelled)));
    /// # drop(rx);
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn canceller(&self) -> Canceller {
        self.cx.cancel.clone()
    }

    /// Makes `canceller` this handle's canceller (one canceller can serve
    /// several handles, for example the halves of one pipe end): its
    /// cancels end this handle's pending operations too.
    ///
    /// ```
    /// let (tx, _rx) = shmpipe_engine::channel(4096)?;
    /// let mut twin = tx.try_clone()?;
    /// twin.set_canceller(tx.canceller());
    /// assert!(twin.canceller().same_as(&tx.canceller()));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn set_canceller(&mut self, canceller: Canceller) {
        self.cx.set_canceller(canceller);
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.producer.capacity()
    }

    /// Whether the reading end is still open in some process.
    pub fn is_peer_alive(&self) -> Result<bool> {
        self.cx.is_peer_alive()
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
        self.with_lock(deadline, |cx, p, waiter| {
            write_locked(cx, p, data, waiter, &mut published)?;
            Ok(p.written())
        })
        .map_err(|error| SendError { published, error })
    }

    /// [`Sender::send`], calling `before` under the writer lock with the
    /// payload position where this write starts, before any byte of it is
    /// published; returns the end position and what `before` returned
    /// (dropped if the write fails). If `before` returns `None`, nothing is
    /// written and the result is `Ok(None)`: the lock is released and the
    /// caller may wait and try again. The pipe layer marks a write that may
    /// pend on its quota there, and declines while another write holds the
    /// mark, so that no byte of such a write is ever visible to the reader
    /// without its mark (spec 5.2, 7.4, SEM-117).
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.write(b"abc")?;
    /// let (end, start) = tx.send_marked(b"de", None, Some).unwrap().unwrap();
    /// assert_eq!((start, end), (3, 5));
    /// assert!(tx.send_marked(b"fg", None, |_| None::<()>).unwrap().is_none());
    /// assert_eq!(tx.written(), 5); // declined: nothing written
    /// # let _ = rx;
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn send_marked<M>(
        &mut self,
        data: &[u8],
        deadline: Option<Instant>,
        before: impl FnOnce(u64) -> Option<M>,
    ) -> Result<Option<(u64, M)>, SendError> {
        let mut published = 0;
        self.with_lock(deadline, |cx, p, waiter| {
            // An earlier holder's open write is ended first: the position
            // read next is where this write's bytes begin.
            end_open_write(cx, p, waiter)?;
            let Some(mark) = before(p.written()) else {
                return Ok(None);
            };
            write_locked(cx, p, data, waiter, &mut published)?;
            Ok(Some((p.written(), mark)))
        })
        .map_err(|error| SendError { published, error })
    }

    /// Waits until the reader has consumed the channel up to payload position
    /// `target` (see [`Sender::send`]).
    pub fn wait_consumed(&self, target: u64, deadline: Option<Instant>) -> Result<()> {
        let cx = &self.cx;
        let mut waiter = Waiter::new(cx.policy, deadline).cancellable(&cx.cancel);
        let consumed = || cx.ring.control().consumer.0.consumed.load(Acquire) >= target;
        while !consumed() {
            cx.wait_writable(&mut waiter, consumed)?;
        }
        Ok(())
    }

    /// Waits until `ready()` (it must only load memory) on the ring's
    /// `writable` event, which the reader notifies whenever it consumes:
    /// the general form of [`Sender::wait_consumed`] and
    /// [`Sender::flush_until`], for conditions of the layer above. Ends with
    /// the same errors (`PeerClosed` only if `ready()` is still false then,
    /// `Disconnected`, `TimedOut`, `Cancelled`).
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.write(b"abc")?;
    /// let t = std::thread::spawn(move || rx.read(&mut [0u8; 8]).map(|_| rx));
    /// let c = tx.ring();
    /// tx.wait_until(None, || shmpipe_engine::RingStorage::control(c).consumed() >= 3)?;
    /// # t.join().unwrap()?;
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn wait_until(&self, deadline: Option<Instant>, ready: impl Fn() -> bool) -> Result<()> {
        let cx = &self.cx;
        let mut waiter = Waiter::new(cx.policy, deadline).cancellable(&cx.cancel);
        while !ready() {
            cx.wait_writable(&mut waiter, &ready)?;
        }
        Ok(())
    }

    /// Writes `data` as one record if it fits now; `Ok(false)` otherwise
    /// (nothing written). Never waits: not for space, and not for the
    /// writer lock either. While another live handle holds the lock (a
    /// blocking write of another process waiting for space, a stopped
    /// process), that is `Ok(false)` too, "no progress now"; a dead
    /// holder's lock is taken over at once. A write a dead holder left half
    /// published is ended first if the abort marker fits, else `Ok(false)`.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// assert!(tx.try_write(&[1; 1500])? && tx.try_write(&[2; 1500])?);
    /// assert!(!tx.try_write(&[3; 1500])?); // no room now: nothing written
    /// assert_eq!(rx.try_read(&mut [0; 4096])?, Some(3000));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn try_write(&mut self, data: &[u8]) -> Result<bool> {
        let pushed = self.try_with_lock(|p| {
            if !p.try_abort_open_write()? {
                return Ok(false);
            }
            p.try_push(data, 0)
        })?;
        Ok(pushed.unwrap_or(false))
    }

    /// Runs `f` with exclusive use of the ring's producer: one lock round
    /// for many records (batches). `f` must finish every write it starts.
    /// Waits for the writer lock (and for room to end a write a dead holder
    /// left open) with no deadline, like [`Sender::write`]; a disconnect or
    /// the reading end closing ends the wait. [`Sender::try_batch`] never
    /// waits.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.batch(|p| p.try_push(b"a", 0).and_then(|_| p.try_push(b"b", 0)))??;
    /// assert_eq!(rx.try_read(&mut [0; 8])?, Some(2));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn batch<R>(&mut self, f: impl FnOnce(&mut Producer<SegmentRing>) -> R) -> Result<R> {
        self.with_lock(None, |cx, p, waiter| {
            end_open_write(cx, p, waiter)?;
            Ok(f(p))
        })
    }

    /// [`Sender::batch`] without waiting: `Ok(None)` (and `f` not run) while
    /// another live handle holds the writer lock, or while a write a dead
    /// holder left open cannot be ended for want of room.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// assert_eq!(tx.try_batch(|p| p.try_push(b"a", 0))?.transpose()?, Some(true));
    /// assert_eq!(rx.try_read(&mut [0; 8])?, Some(1));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn try_batch<R>(
        &mut self,
        f: impl FnOnce(&mut Producer<SegmentRing>) -> R,
    ) -> Result<Option<R>> {
        let done = self.try_with_lock(|p| {
            if !p.try_abort_open_write()? {
                return Ok(None);
            }
            Ok(Some(f(p)))
        })?;
        Ok(done.flatten())
    }

    /// Runs `f` under the writer lock, waiting for it as `deadline` says.
    fn with_lock<R>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(&Ctx, &mut Producer<SegmentRing>, &mut Waiter<'_>) -> Result<R>,
    ) -> Result<R> {
        // A waiting admission either admits or fails: never `None`.
        self.locked(deadline, true, f)?.ok_or(Error::TimedOut)
    }

    /// Runs `f` under the writer lock if it can be had without waiting
    /// (see [`LockWord::try_admit`]); `Ok(None)` if not.
    fn try_with_lock<R>(
        &mut self,
        f: impl FnOnce(&mut Producer<SegmentRing>) -> Result<R>,
    ) -> Result<Option<R>> {
        self.locked(None, false, |_, p, _| f(p))
    }

    /// Admission, then `f`: with `wait`, waits for the lock (cancellably,
    /// until `deadline`); without, gives up (`Ok(None)`) while a live handle
    /// holds it.
    fn locked<R>(
        &mut self,
        deadline: Option<Instant>,
        wait: bool,
        f: impl FnOnce(&Ctx, &mut Producer<SegmentRing>, &mut Waiter<'_>) -> Result<R>,
    ) -> Result<Option<R>> {
        // Disjoint borrows: the lock word and the canceller (in `cx`) stay
        // borrowed while `f` uses the producer.
        let Sender {
            cx,
            producer,
            synced_in,
        } = self;
        let mut waiter = Waiter::new(cx.policy, deadline).cancellable(&cx.cancel);
        let storage = &cx.ring;
        check_connected(storage)?;
        if take_hangup(storage, HANGUP_READER) && !cx.is_peer_alive()? {
            // Leave the hint for the other senders of this end.
            events(storage).hangup.fetch_or(HANGUP_READER, Relaxed);
            return Err(Error::PeerClosed);
        }
        let me = cx.end.holder_token()?;
        let lock: &LockWord<Native> = &storage.control().locks.0.writer;
        let synced = *synced_in == me;
        let (end, peer_role) = (&cx.end, cx.peer_role);
        let id = handle_id(me, cx.seq);
        // While the lock is held by someone else (stopped, perhaps), a cut
        // connection or a reader gone for good still ends the wait.
        let hangup = &events(storage).hangup;
        let alive = |t| end.holder_alive(me, t);
        let admitted = if !wait {
            let Some(admitted) = lock.try_admit(me, id, synced, alive) else {
                return Ok(None);
            };
            admitted
        } else {
            lock.admit_watching(
                me,
                id,
                synced,
                &mut waiter,
                alive,
                || {
                    end.watch_peer();
                    hangup.load(Relaxed) & (HANGUP_READER | HANGUP_DISCONNECTED) != 0
                },
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
            )?
        };
        // Unsynced until `f` returns: after a failed resync or a panic in
        // `f`, the next acquisition reloads the shared state.
        *synced_in = 0;
        if admitted.needs_resync() {
            producer.resync()?;
        }
        let result = f(cx, producer, &mut waiter);
        *synced_in = me;
        drop(admitted);
        result.map(Some)
    }

    /// Payload bytes written to the channel so far (by every sender).
    pub fn written(&self) -> u64 {
        self.cx.ring.control().producer.0.written.load(Acquire)
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
        let cx = &self.cx;
        let s = &cx.ring;
        let target = s.control().producer.0.tail.load(Acquire);
        let mut waiter = Waiter::new(cx.policy, deadline).cancellable(&cx.cancel);
        let done = || s.control().consumer.0.head.load(Acquire) >= target;
        while !done() {
            cx.wait_writable(&mut waiter, done)?;
        }
        Ok(())
    }
}

/// Ends a write a previous holder of the lock left half published.
fn end_open_write(cx: &Ctx, p: &mut Producer<SegmentRing>, waiter: &mut Waiter<'_>) -> Result<()> {
    while !p.try_abort_open_write()? {
        let need = p.space_needed(0, true);
        wait_space(cx, p, waiter, need)?;
    }
    Ok(())
}

fn write_locked(
    cx: &Ctx,
    p: &mut Producer<SegmentRing>,
    data: &[u8],
    waiter: &mut Waiter<'_>,
    published: &mut usize,
) -> Result<()> {
    end_open_write(cx, p, waiter)?;
    if data.len() <= p.max_record() {
        loop {
            if let Some(mut g) = p.try_reserve(data.len())? {
                g.fill(data);
                g.commit(0);
                *published = data.len();
                return Ok(());
            }
            let need = p.space_needed(data.len(), true);
            wait_space(cx, p, waiter, need)?;
        }
    }
    let mut rest = data;
    while !rest.is_empty() {
        match p.try_reserve_up_to(rest.len())? {
            Some(mut g) => {
                let n = g.len();
                g.fill(&rest[..n]);
                rest = &rest[n..];
                g.commit(rest.len() as u64);
                *published += n;
            }
            None => {
                let need = p.space_needed(rest.len(), false);
                wait_space(cx, p, waiter, need)?
            }
        }
    }
    Ok(())
}

fn wait_space(
    cx: &Ctx,
    p: &Producer<SegmentRing>,
    waiter: &mut Waiter<'_>,
    need: u64,
) -> Result<()> {
    cx.wait_writable(waiter, || p.free_hint() >= need)
}

impl Ctx {
    /// One wait step on the `writable` event until `ready`, a hang-up hint
    /// or a disconnect; then the liveness and connection checks.
    fn wait_writable(&self, waiter: &mut Waiter<'_>, ready: impl Fn() -> bool) -> Result<()> {
        self.end.watch_peer();
        let s = &self.ring;
        let ev = events(s);
        // The hint is part of the condition: a notify that comes before we
        // announce ourselves as a sleeper must not cost a whole park slice.
        let step = waiter.wait(&ev.writable, || {
            ready() || ev.hangup.load(Relaxed) & (HANGUP_READER | HANGUP_DISCONNECTED) != 0
        });
        if step == Step::Cancelled {
            return Err(Error::Cancelled);
        }
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
        check_connected(&self.ring)?;
        match step {
            Step::Retry => Ok(()),
            Step::CheckPeer => {
                if self.is_peer_alive()? {
                    Ok(())
                } else {
                    // Leave the hint, so every later write (of any sender
                    // of this end) fails at once too.
                    events(&self.ring).hangup.fetch_or(HANGUP_READER, Relaxed);
                    Err(Error::PeerClosed)
                }
            }
            Step::TimedOut => Err(Error::TimedOut),
            Step::Cancelled => Err(Error::Cancelled),
        }
    }
}
