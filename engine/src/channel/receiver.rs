//! The reading half of a channel: [`Receiver`].
//!
//! Every read runs under the ring's reader lock (`with_lock`), so a partly
//! read message continues where the last reader stopped: admission resyncs
//! the consumer from shared memory unless this very handle, in this
//! process, was the last holder and finished cleanly. A blocking read waits
//! on the `readable` event between attempts; once every writer is gone it
//! drains what they published before reporting [`Error::PeerClosed`], and
//! a message whose writer died part-way comes back unfinished, the cut
//! reported by the next read.

use super::end::{check_connected, events, handle_id, take_hangup, End};
use super::half::Ctx;
use super::{ROLE_READER, ROLE_WRITER};
use crate::layout::{HANGUP_DISCONNECTED, HANGUP_READER, HANGUP_WRITER};
use crate::lock::LockWord;
use crate::ring::{Consumer, MessageRead, RingStorage};
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

/// The reading end of a channel.
pub struct Receiver {
    cx: Ctx,
    consumer: Consumer<SegmentRing>,
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
        let cx = Ctx::new(end, ring, peer_role)?;
        Ok(Receiver {
            // As for `Sender::new`: resynced under the reader lock.
            // SAFETY: as for `Sender::new`: the consumer reads and frees
            // records only inside `locked`, under the ring's reader lock,
            // which every `Receiver` of this ring takes.
            consumer: unsafe { Consumer::new_unsynced(cx.end.segment().ring(ring)?)? },
            cx,
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
        &self.cx.end
    }

    /// The ring this end reads (its segment, control block and user words).
    pub fn ring(&self) -> &SegmentRing {
        &self.cx.ring
    }

    /// The end's descriptor, to hand to another process.
    pub fn into_fd(self) -> OwnedFd {
        let end = Arc::clone(&self.cx.end);
        drop(self);
        End::into_fd(end).expect("duplicating a descriptor we own")
    }

    /// Borrows the end's descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.cx.end.fd()
    }

    /// Another handle to the same end, with a canceller of its own (see
    /// [`Receiver::set_canceller`]).
    pub fn try_clone(&self) -> Result<Receiver> {
        let ring = self.cx.ring_index()?;
        let mut r = Receiver::new(self.cx.end.try_clone()?, ring, self.cx.peer_role)?;
        r.cx.policy = self.cx.policy;
        Ok(r)
    }

    /// Sets how blocking operations wait.
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.cx.policy = policy;
    }

    /// The canceller of this handle's blocking operations (reads waiting
    /// for data, and waits for the reader lock): each pending one then
    /// fails with [`Error::Cancelled`], having consumed nothing.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// let canceller = rx.canceller();
    /// let reader = std::thread::spawn(move || {
    ///     let r = rx.read(&mut [0u8; 8]);
    ///     (r, rx)
    /// });
    /// while canceller.pending() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// canceller.cancel().unwrap();
    /// let (r, mut rx) = reader.join().unwrap();
    /// assert!(matches!(r, Err(shmpipe_engine::Error::Cancelled)));
    /// tx.write(b"next")?; // the handle reads on
    /// assert_eq!(rx.read(&mut [0u8; 8])?, 4);
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn canceller(&self) -> Canceller {
        self.cx.cancel.clone()
    }

    /// Makes `canceller` this handle's canceller (see
    /// [`Sender::set_canceller`](super::Sender::set_canceller)).
    ///
    /// ```
    /// let (tx, rx) = shmpipe_engine::channel(4096)?;
    /// let mut rx = rx;
    /// rx.set_canceller(tx.canceller());
    /// assert!(rx.canceller().same_as(&tx.canceller()));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn set_canceller(&mut self, canceller: Canceller) {
        self.cx.set_canceller(canceller);
    }

    /// Whether the writing end is still open in some process.
    pub fn is_peer_alive(&self) -> Result<bool> {
        self.cx.is_peer_alive()
    }

    /// Unread payload bytes in the channel (every reader's progress
    /// counts, so it is read from shared memory).
    pub fn available(&self) -> u64 {
        let c = self.cx.ring.control();
        let written = c.producer.0.written.load(Acquire);
        written.saturating_sub(c.consumer.0.consumed.load(Acquire))
    }

    /// Runs `f` under the reader lock, waiting for it (cancellably).
    fn with_lock<R>(
        &mut self,
        f: impl FnOnce(&mut Consumer<SegmentRing>) -> Result<R>,
    ) -> Result<R> {
        let Receiver {
            cx,
            consumer,
            synced_in,
        } = self;
        let mut waiter = Waiter::new(cx.policy, None).cancellable(&cx.cancel);
        // A waiting admission either admits or fails: never `None`.
        locked(cx, consumer, synced_in, Some(&mut waiter), f)?.ok_or(Error::TimedOut)
    }

    /// Runs `f` under the reader lock if it can be had without waiting
    /// (see [`LockWord::try_admit`]); `Ok(None)` if not.
    fn try_with_lock<R>(
        &mut self,
        f: impl FnOnce(&mut Consumer<SegmentRing>) -> Result<R>,
    ) -> Result<Option<R>> {
        locked(&self.cx, &mut self.consumer, &mut self.synced_in, None, f)
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

    /// Reads without waiting: `Ok(None)` when nothing is queued. Never
    /// waits for the reader lock either: while another live handle holds it
    /// (a blocking read of another process, a stopped process), that is
    /// `Ok(None)` too, "nothing available now", even if bytes are queued; a
    /// dead holder's lock is taken over at once.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(rx.try_read(&mut buf)?, None);
    /// tx.write(b"abc")?;
    /// assert_eq!(rx.try_read(&mut buf)?, Some(3));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        Ok(self.try_with_lock(|c| c.read_stream(buf))?.flatten())
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
                // Cancelled while waiting for the rest of a message whose
                // start it consumed: that part is delivered unfinished (like
                // a buffer too small), and the next read continues the
                // message. A cancelled read never loses consumed bytes.
                Err(Error::Cancelled) if got > 0 => {
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

    /// Copies queued bytes without consuming them. Never waits for data,
    /// but waits for the reader lock (with no deadline) while another
    /// handle holds it; a disconnect, or the writing end closing with
    /// nothing left to read, ends that wait with the error.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.write(b"abc")?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(rx.peek(&mut buf)?, 3);
    /// assert_eq!(rx.try_read(&mut buf)?, Some(3)); // still there
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn peek(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.with_lock(|c| c.peek_stream(buf))
    }

    /// Runs `f` with exclusive use of the consumer (zero-copy reads,
    /// batches). Never waits for data, but waits for the reader lock as
    /// [`Receiver::peek`] does; [`Receiver::try_batch`] never waits.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.write(b"abc")?;
    /// assert_eq!(rx.batch(|c| c.read_stream(&mut [0; 8]))?, Some(3));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn batch<R>(
        &mut self,
        f: impl FnOnce(&mut Consumer<SegmentRing>) -> Result<R>,
    ) -> Result<R> {
        self.with_lock(f)
    }

    /// [`Receiver::batch`] without waiting for the lock: `Ok(None)` (and `f`
    /// not run) while another live handle holds it; a dead holder's lock is
    /// taken over at once.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// tx.write(b"abc")?;
    /// assert_eq!(rx.try_batch(|c| c.read_stream(&mut [0; 8]))?, Some(Some(3)));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn try_batch<R>(
        &mut self,
        f: impl FnOnce(&mut Consumer<SegmentRing>) -> Result<R>,
    ) -> Result<Option<R>> {
        self.try_with_lock(f)
    }

    /// Runs `op` until it returns `Some`, waiting for records in between.
    fn blocking<R>(
        &mut self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&mut Consumer<SegmentRing>) -> Result<Option<R>>,
    ) -> Result<R> {
        let Receiver {
            cx,
            consumer,
            synced_in,
        } = self;
        let mut waiter = Waiter::new(cx.policy, deadline).cancellable(&cx.cancel);
        let mut with_lock = |waiter: &mut Waiter<'_>| {
            // A waiting admission either admits or fails: never `None`.
            locked(cx, consumer, synced_in, Some(waiter), &mut op)?.ok_or(Error::TimedOut)
        };
        let s = &cx.ring;
        loop {
            if let Some(r) = with_lock(&mut waiter)? {
                return Ok(r);
            }
            let mut check = take_hangup(s, HANGUP_WRITER);
            if !check {
                cx.end.watch_peer();
                let head = s.control().consumer.0.head.load(Acquire);
                let ev = events(s);
                let step = waiter.wait(&ev.readable, || {
                    crate::ring::is_committed(s, head)
                        || ev.hangup.load(Relaxed) & (HANGUP_WRITER | HANGUP_DISCONNECTED) != 0
                });
                match step {
                    Step::Retry => {}
                    Step::CheckPeer => check = true,
                    // Nothing was consumed: the records stay for the next
                    // read.
                    Step::Cancelled => return Err(Error::Cancelled),
                    Step::TimedOut => {
                        return match with_lock(&mut waiter)? {
                            Some(r) => Ok(r),
                            None => Err(Error::TimedOut),
                        }
                    }
                }
            }
            if check && !cx.end.peer_alive(cx.peer_role)? {
                // Everything published before the last sender closed is
                // visible now (its records were published before its
                // descriptor closed): drain, then report the end.
                events(s).hangup.fetch_or(HANGUP_WRITER, Relaxed);
                return match with_lock(&mut waiter)? {
                    Some(r) => Ok(r),
                    None => Err(Error::PeerClosed),
                };
            }
        }
    }
}

/// Admission, then `f`: with a waiter, waits for the lock as it says;
/// without, gives up (`Ok(None)`) while a live handle holds it. A function
/// of the receiver's parts, so that the waiter can borrow the canceller in
/// `cx` while `f` uses the consumer.
fn locked<R>(
    cx: &Ctx,
    consumer: &mut Consumer<SegmentRing>,
    synced_in: &mut u64,
    waiter: Option<&mut Waiter<'_>>,
    f: impl FnOnce(&mut Consumer<SegmentRing>) -> Result<R>,
) -> Result<Option<R>> {
    let storage = &cx.ring;
    check_connected(storage)?;
    let me = cx.end.holder_token()?;
    let lock: &LockWord<Native> = &storage.control().locks.0.reader.0;
    let synced = *synced_in == me;
    let (end, peer_role) = (&cx.end, cx.peer_role);
    let id = handle_id(me, cx.seq);
    // While another reader holds the lock (stopped, perhaps), a cut
    // connection ends the wait, and so does a writer gone for good once
    // nothing is left to read. Once the writer is known gone its hint
    // stays up for the data waits, and is no longer part of the park
    // condition (it would make the lock wait spin).
    let hangup = &events(storage).hangup;
    let writer_gone = core::cell::Cell::new(false);
    let alive = |t| end.holder_alive(me, t);
    let admitted = match waiter {
        None => {
            let Some(admitted) = lock.try_admit(me, id, synced, alive) else {
                return Ok(None);
            };
            admitted
        }
        Some(waiter) => lock.admit_watching(
            me,
            id,
            synced,
            waiter,
            alive,
            || {
                end.watch_peer();
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
                    if !crate::ring::is_committed(storage, c.consumer.0.head.load(Acquire)) {
                        return Err(Error::PeerClosed);
                    }
                }
                Ok(())
            },
        )?,
    };
    // Unsynced until `f` returns (see `Sender`).
    *synced_in = 0;
    if admitted.needs_resync() {
        consumer.resync()?;
    }
    let result = f(consumer);
    *synced_in = me;
    drop(admitted);
    result.map(Some)
}
