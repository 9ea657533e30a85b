//! An admission lock in shared memory whose holder may die.
//!
//! Several writers of one end (the MPSC case) take the writer lock around
//! each write, so a write, even one streamed in fragments larger than the
//! ring, is never interleaved with another; several readers of one end take
//! the reader lock, so a partly read message continues where the last reader
//! stopped. The lock is not what makes the ring lock-free: a single producer
//! and a single consumer never touch it.
//!
//! # Why a lock, and why it cannot wedge
//!
//! A lock-free multi-producer reservation can only make writes atomic when
//! they fit in the ring; pipe writes may be larger than the ring and must stay
//! contiguous (spec 4.7), so writers need exclusivity for the duration of one
//! write. The danger of a lock across processes is a holder that dies. The
//! lock word therefore holds the holder's *process slot token* (see
//! `liveness`: a lock on a byte of the segment's memfd that the kernel drops
//! with the process, in whatever pid namespace it runs). A waiter parks with
//! a timeout and, after every park slice, asks whether the token's slot is
//! still held; if it is not (or the word names no slot at all: a peer
//! scribbled on it), the
//! waiter takes the lock over with a compare-exchange against that exact
//! token (so two rescuers cannot both win), and learns that it did
//! ([`Acquired::FromDead`]) so it can repair what the dead holder left
//! half done: nothing, for an unpublished reservation (it was never visible),
//! or an `ABORT` record ending a write whose first fragments were published.

use crate::sync::{Atomic64, Platform};
use crate::wait::{Event, Step, Waiter};
use crate::{Error, Result};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// The shared words of one lock.
#[repr(C)]
pub struct LockWord<P: Platform> {
    owner: P::U64,
    /// Id of the handle that held the lock last: a holder that finds its
    /// own id here knows nobody else published or consumed in between, and
    /// skips reloading the shared state (a likely cache miss).
    last: P::U64,
    event: Event<P>,
}

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// From a holder that released it.
    Clean,
    /// Taken over from a holder whose process died while holding it.
    FromDead,
}

impl<P: Platform> Default for LockWord<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> LockWord<P> {
    /// An unlocked lock.
    pub fn new() -> Self {
        LockWord {
            owner: P::U64::new(0),
            last: P::U64::new(0),
            event: Event::new(),
        }
    }

    /// The current holder's token (0: free).
    pub fn owner(&self) -> u64 {
        self.owner.load(Relaxed)
    }

    /// Takes the lock if it is free. `me` must not be 0.
    #[inline]
    pub fn try_lock(&self, me: u64) -> bool {
        debug_assert_ne!(me, 0);
        self.owner.compare_exchange(0, me, Acquire, Relaxed).is_ok()
    }

    /// Takes the lock, waiting as `waiter` says. `alive(token)` tells whether
    /// a holder's process still exists; it is asked only after a park slice
    /// passed without the lock coming free. A waiter made
    /// [`Waiter::cancellable`] ends the wait with [`Error::Cancelled`] when
    /// its canceller cancels (the canceller must wake this lock's waiters,
    /// [`LockWord::wake_waiters`]).
    pub fn lock(
        &self,
        me: u64,
        waiter: &mut Waiter,
        alive: impl Fn(u64) -> bool,
    ) -> Result<Acquired> {
        self.lock_watching(me, waiter, alive, || false, |_| Ok(()))
    }

    /// [`LockWord::lock`], watching something besides the lock: a wait for
    /// a lock whose holder is stopped (or slow) must still end when the
    /// connection is cut or the peer end closes. `interrupted` is part of
    /// the park condition (it must only load memory): when it turns true,
    /// or after every step of the wait, `check(step)` looks closer, and an
    /// `Err` from it ends the wait with that error. [`LockWord::wake_waiters`]
    /// wakes the waiters to look.
    ///
    /// ```
    /// use shmpipe_engine::lock::LockWord;
    /// use shmpipe_engine::sync::Native;
    /// use shmpipe_engine::wait::{WaitPolicy, Waiter};
    /// use shmpipe_engine::Error;
    /// use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    /// let lock = LockWord::<Native>::new();
    /// assert!(lock.try_lock(1));
    /// let cut = AtomicBool::new(false);
    /// std::thread::scope(|t| {
    ///     let waiter = t.spawn(|| {
    ///         let mut w = Waiter::new(WaitPolicy::park(), None);
    ///         lock.lock_watching(2, &mut w, |_| true, || cut.load(Relaxed), |_| {
    ///             if cut.load(Relaxed) { Err(Error::Disconnected) } else { Ok(()) }
    ///         })
    ///     });
    ///     cut.store(true, Relaxed);
    ///     lock.wake_waiters();
    ///     assert!(matches!(waiter.join().unwrap(), Err(Error::Disconnected)));
    /// });
    /// ```
    pub fn lock_watching(
        &self,
        me: u64,
        waiter: &mut Waiter,
        alive: impl Fn(u64) -> bool,
        interrupted: impl Fn() -> bool,
        mut check: impl FnMut(Step) -> Result<()>,
    ) -> Result<Acquired> {
        loop {
            if self.try_lock(me) {
                return Ok(Acquired::Clean);
            }
            let step = waiter.wait(&self.event, || {
                self.owner.load(Relaxed) == 0 || interrupted()
            });
            check(step)?;
            match step {
                Step::Retry => {}
                Step::CheckPeer => {
                    let holder = self.owner.load(Relaxed);
                    if holder != 0
                        && !alive(holder)
                        && self
                            .owner
                            .compare_exchange(holder, me, Acquire, Relaxed)
                            .is_ok()
                    {
                        return Ok(Acquired::FromDead);
                    }
                }
                Step::Cancelled => return Err(Error::Cancelled),
                Step::TimedOut => {
                    return if self.try_lock(me) {
                        Ok(Acquired::Clean)
                    } else {
                        Err(Error::TimedOut)
                    };
                }
            }
        }
    }

    /// The event waiters of the lock park on (announced on by the readiness
    /// bridge's users, see [`crate::readiness`]).
    #[cfg(not(loom))]
    pub(crate) fn event(&self) -> &Event<P> {
        &self.event
    }

    /// Wakes every handle waiting for the lock, so that it looks at what it
    /// watches ([`LockWord::lock_watching`]): a disconnect, a closed peer.
    pub fn wake_waiters(&self) {
        self.event.notify();
    }

    /// Records `id` as the last holder; returns whether it already was (only
    /// meaningful while holding the lock).
    #[inline]
    pub fn mark_holder(&self, id: u64) -> bool {
        if self.last.load(Relaxed) == id {
            return true;
        }
        self.last.store(id, Relaxed);
        false
    }

    /// Releases the lock and wakes waiters.
    #[inline]
    pub fn unlock(&self) {
        self.owner.store(0, Release);
        self.event.notify();
    }
}

/// A held admission lock, released when dropped (also while unwinding: a
/// lock left held by a live process would stop every other holder for
/// good). Made by [`LockWord::admit`].
#[must_use = "the lock is released when the guard is dropped"]
pub struct Admitted<'a, P: Platform> {
    lock: &'a LockWord<P>,
    resync: bool,
}

impl<P: Platform> Admitted<'_, P> {
    /// Whether the holder must reload the shared state before using it:
    /// someone else held the lock since this handle last did, the lock was
    /// taken over from a dead holder, or this handle never synced.
    pub fn needs_resync(&self) -> bool {
        self.resync
    }
}

impl<P: Platform> Drop for Admitted<'_, P> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl<P: Platform> LockWord<P> {
    /// The admission sequence of every sender and receiver: takes the lock
    /// (as [`LockWord::lock`] does) for the handle `id` of process `me`, and
    /// tells whether the handle must resync. `synced` says whether the
    /// handle has loaded the shared state before and finished the operation
    /// it loaded it for: until then, finding its own id as the last holder
    /// proves nothing (a process that drew a dead one's slot can draw a
    /// dead handle's id, and a panic may have cut the last operation short).
    pub fn admit(
        &self,
        me: u64,
        id: u64,
        synced: bool,
        waiter: &mut Waiter,
        alive: impl Fn(u64) -> bool,
    ) -> Result<Admitted<'_, P>> {
        self.admit_watching(me, id, synced, waiter, alive, || false, |_| Ok(()))
    }

    /// [`LockWord::admit`] without waiting, for the nonblocking operations:
    /// one attempt, and if the lock is held, one look at whether its holder
    /// is alive (a dead holder's lock is taken over, as a waiter would).
    /// `None` while another live handle holds it: a stopped or slow holder
    /// must not stall a call that promised not to wait, so the caller
    /// reports "no progress now" instead.
    ///
    /// ```
    /// use shmpipe_engine::lock::LockWord;
    /// use shmpipe_engine::sync::Native;
    /// let lock = LockWord::<Native>::new();
    /// let held = lock.try_admit(1, 10, false, |_| true).expect("free");
    /// assert!(lock.try_admit(2, 20, false, |_| true).is_none()); // 1 is alive
    /// core::mem::forget(held); // its holder "dies" holding it
    /// let taken = lock.try_admit(2, 20, false, |t| t != 1).expect("taken over");
    /// assert!(taken.needs_resync());
    /// ```
    pub fn try_admit(
        &self,
        me: u64,
        id: u64,
        synced: bool,
        alive: impl Fn(u64) -> bool,
    ) -> Option<Admitted<'_, P>> {
        let acquired = if self.try_lock(me) {
            Acquired::Clean
        } else {
            let holder = self.owner.load(Relaxed);
            if holder == 0 {
                // Released since the attempt: one more try, no waiting.
                self.try_lock(me).then_some(Acquired::Clean)?
            } else if !alive(holder)
                && self
                    .owner
                    .compare_exchange(holder, me, Acquire, Relaxed)
                    .is_ok()
            {
                Acquired::FromDead
            } else {
                return None;
            }
        };
        Some(self.admitted(id, synced, acquired))
    }

    fn admitted(&self, id: u64, synced: bool, acquired: Acquired) -> Admitted<'_, P> {
        let last_was_me = self.mark_holder(id);
        Admitted {
            lock: self,
            resync: !(last_was_me && acquired == Acquired::Clean && synced),
        }
    }

    /// [`LockWord::admit`], waiting as [`LockWord::lock_watching`] does.
    #[allow(clippy::too_many_arguments)] // admit's, plus the two watchers
    pub fn admit_watching(
        &self,
        me: u64,
        id: u64,
        synced: bool,
        waiter: &mut Waiter,
        alive: impl Fn(u64) -> bool,
        interrupted: impl Fn() -> bool,
        check: impl FnMut(Step) -> Result<()>,
    ) -> Result<Admitted<'_, P>> {
        let acquired = if self.try_lock(me) {
            Acquired::Clean
        } else {
            self.lock_watching(me, waiter, alive, interrupted, check)?
        };
        Ok(self.admitted(id, synced, acquired))
    }
}
