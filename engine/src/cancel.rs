//! Cancelling blocked operations from another thread (Windows' `CancelIoEx`,
//! spec 7.4): a [`Canceller`] per handle.
//!
//! # The cancellation word
//!
//! One process-local 64-bit word per handle: the high half is a generation,
//! the low half counts the operations of the handle that are waiting now
//! (*pending*). An operation that is about to wait registers
//! ([`Canceller::begin`]: one `fetch_add`, which also reads the generation
//! it waits under); it is cancelled once the generation differs from the one
//! it registered with. [`Canceller::cancel`] bumps the generation and resets
//! the count to 0 in one compare-exchange, and fails with [`NotPending`] if
//! the count was 0. Because registering and cancelling are read-modify-writes
//! of the same word, "pending at the moment of the cancel" is exact: an
//! operation counted by the cancel sees the new generation, and one that
//! registers after it is neither counted nor cancelled. An operation that
//! ends by itself takes itself out of the count only if the generation is
//! still its own (a cancel already took it out).
//!
//! Nothing here is touched on the fast path: an operation that never waits
//! never registers.
//!
//! # Waking the cancelled
//!
//! A cancelled operation may be parked on a futex word in shared memory (a
//! ring's `readable`/`writable` event, an admission lock's event) or on
//! something process-local (the pipe layer's `connect` waits on a
//! `Condvar`). The handle's owners register *wakers* ([`Canceller::set_waker`])
//! and the cancel runs them after publishing the new generation. For the
//! futex words this is the notifier side of the [`Event`](crate::wait::Event)
//! handshake: the generation is the published state change, and a parked
//! waiter includes "cancelled" in its park condition, so the wake cannot be
//! lost (the loom model `loom-tests/tests/cancel.rs` checks it). A cancel
//! wakes every waiter of those words, also other handles' and other
//! processes': they find nothing changed for them and park again (a
//! spurious wake, which the protocol already allows).
//!
//! Signals never end a wait: a futex wait interrupted by a signal is a
//! re-check like any wake (`sync.rs`).

#[cfg(loom)]
use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, SeqCst};
use std::sync::{Arc, Mutex};

/// The low half of the word: how many operations are pending.
const PENDING: u64 = 0xffff_ffff;
/// One generation step (the high half).
const GENERATION: u64 = 1 << 32;

/// A waker run by [`Canceller::cancel`]. It returns whether its target
/// still exists: one that returns `false` is forgotten. (Owners that come
/// and go under one canceller, such as the connections of a pipe server,
/// also remove theirs with [`Canceller::remove_waker`].)
pub type Waker = Arc<dyn Fn() -> bool + Send + Sync>;

struct Inner {
    word: AtomicU64,
    /// Keyed, so that registering the same target again only counts one
    /// more user of it: (key, users, waker).
    wakers: Mutex<Vec<(usize, usize, Waker)>>,
}

/// Cancels the blocked operations of one handle, from any thread (Windows'
/// `CancelIoEx` with no `OVERLAPPED`: every pending request of the handle).
///
/// Cloning gives another canceller of the same handle. A blocked operation
/// of the handle that is cancelled returns
/// [`Error::Cancelled`](crate::Error::Cancelled) within a futex wake; an
/// operation that starts waiting after the cancel is not affected.
///
/// ```
/// let (_tx, mut rx) = shmpipe_engine::channel(4096)?;
/// let canceller = rx.canceller();
/// assert!(canceller.cancel().is_err()); // nothing pending: NotPending
/// let reader = std::thread::spawn(move || rx.read(&mut [0u8; 8]));
/// while canceller.pending() == 0 {
///     std::thread::yield_now(); // until the read waits
/// }
/// canceller.cancel().unwrap();
/// assert!(matches!(reader.join().unwrap(), Err(shmpipe_engine::Error::Cancelled)));
/// # Ok::<(), shmpipe_engine::Error>(())
/// ```
#[derive(Clone)]
pub struct Canceller {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Canceller")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl Default for Canceller {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Canceller::cancel`] found no pending operation (Windows'
/// `ERROR_NOT_FOUND`, spec SEM-144).
///
/// ```
/// let c = shmpipe_engine::wait::Canceller::new();
/// assert_eq!(c.cancel(), Err(shmpipe_engine::wait::NotPending));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no operation is pending")]
pub struct NotPending;

impl Canceller {
    /// A canceller with nothing pending and no wakers.
    ///
    /// ```
    /// let c = shmpipe_engine::wait::Canceller::new();
    /// assert_eq!(c.pending(), 0);
    /// ```
    pub fn new() -> Self {
        Canceller {
            inner: Arc::new(Inner {
                word: AtomicU64::new(0),
                wakers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Cancels every operation pending now, and wakes them (see the
    /// [module docs](self)). `Err(NotPending)` if none was.
    ///
    /// ```
    /// let c = shmpipe_engine::wait::Canceller::new();
    /// let op = c.begin();
    /// c.cancel().unwrap();
    /// assert!(op.is_cancelled());
    /// assert!(c.cancel().is_err()); // already cancelled: nothing pending
    /// ```
    pub fn cancel(&self) -> Result<(), NotPending> {
        let word = &self.inner.word;
        let mut w = word.load(SeqCst);
        loop {
            if w & PENDING == 0 {
                return Err(NotPending);
            }
            let next = (w & !PENDING).wrapping_add(GENERATION);
            match word.compare_exchange(w, next, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        self.wake();
        Ok(())
    }

    /// How many operations of the handle are pending (waiting) now. A test
    /// synchronises on it: an operation counted here is cancelled by the
    /// next [`Canceller::cancel`].
    ///
    /// ```
    /// let c = shmpipe_engine::wait::Canceller::new();
    /// let op = c.begin();
    /// assert_eq!(c.pending(), 1);
    /// drop(op);
    /// assert_eq!(c.pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        (self.inner.word.load(Acquire) & PENDING) as usize
    }

    /// Registers an operation that is about to wait; it is pending until
    /// the returned guard is dropped. Check
    /// [`Pending::is_cancelled`] after every wake-up.
    ///
    /// ```
    /// let c = shmpipe_engine::wait::Canceller::new();
    /// let before = c.begin();
    /// c.cancel().unwrap();
    /// let after = c.begin(); // started after the cancel: unaffected
    /// assert!(before.is_cancelled() && !after.is_cancelled());
    /// ```
    pub fn begin(&self) -> Pending<'_> {
        // The count cannot reach the generation bits: it would take 2^32
        // operations waiting at once.
        let w = self.inner.word.fetch_add(1, SeqCst);
        Pending {
            canceller: self,
            generation: w & !PENDING,
        }
    }

    /// Runs `wake` on every cancel. `key` is an address identifying what it
    /// wakes: registering a key again counts one more user of the waker
    /// already there (handles sharing a canceller and a ring), and
    /// [`Canceller::remove_waker`] drops it with its last user.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    /// use std::sync::Arc;
    /// let c = shmpipe_engine::wait::Canceller::new();
    /// let woken = Arc::new(AtomicBool::new(false));
    /// let w = woken.clone();
    /// c.set_waker(1, Arc::new(move || {
    ///     w.store(true, Relaxed);
    ///     true // the target lives on
    /// }));
    /// let _op = c.begin();
    /// c.cancel().unwrap();
    /// assert!(woken.load(Relaxed));
    /// ```
    pub fn set_waker(&self, key: usize, wake: Waker) {
        let mut wakers = self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner());
        match wakers.iter_mut().find(|(k, _, _)| *k == key) {
            Some(slot) => slot.1 += 1,
            None => wakers.push((key, 1, wake)),
        }
    }

    /// One user of the waker under `key` is gone; the waker goes with its
    /// last user.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    /// let c = shmpipe_engine::wait::Canceller::new();
    /// let woken = std::sync::Arc::new(AtomicBool::new(false));
    /// let w = woken.clone();
    /// c.set_waker(7, std::sync::Arc::new(move || {
    ///     w.store(true, Relaxed);
    ///     true
    /// }));
    /// c.remove_waker(7);
    /// let _op = c.begin();
    /// c.cancel().unwrap();
    /// assert!(!woken.load(Relaxed));
    /// ```
    pub fn remove_waker(&self, key: usize) {
        let mut wakers = self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = wakers.iter().position(|(k, _, _)| *k == key) {
            wakers[i].1 -= 1;
            if wakers[i].1 == 0 {
                wakers.swap_remove(i);
            }
        }
    }

    /// Whether `self` and `other` cancel the same operations.
    ///
    /// ```
    /// let c = shmpipe_engine::wait::Canceller::new();
    /// assert!(c.same_as(&c.clone()) && !c.same_as(&Default::default()));
    /// ```
    pub fn same_as(&self, other: &Canceller) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Runs every waker, and forgets those whose target is gone.
    fn wake(&self) {
        // Outside the lock: a waker may take other locks (a `Condvar`'s).
        let wakers: Vec<(usize, Waker)> = {
            let wakers = self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner());
            wakers.iter().map(|(k, _, w)| (*k, Arc::clone(w))).collect()
        };
        let gone: Vec<usize> = wakers
            .into_iter()
            .filter(|(_, wake)| !wake())
            .map(|(key, _)| key)
            .collect();
        if !gone.is_empty() {
            let mut wakers = self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner());
            wakers.retain(|(k, _, _)| !gone.contains(k));
        }
    }
}

/// An operation of a [`Canceller`]'s handle that is waiting; made by
/// [`Canceller::begin`], no longer pending once dropped.
///
/// ```
/// let c = shmpipe_engine::wait::Canceller::new();
/// let op = c.begin();
/// assert!(!op.is_cancelled());
/// ```
#[must_use = "the operation is pending only while the guard lives"]
pub struct Pending<'a> {
    canceller: &'a Canceller,
    generation: u64,
}

impl core::fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pending")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Pending<'_> {
    /// Whether the operation was cancelled (one process-local load).
    ///
    /// ```
    /// let c = shmpipe_engine::wait::Canceller::new();
    /// let op = c.begin();
    /// c.cancel().unwrap();
    /// assert!(op.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.canceller.inner.word.load(Acquire) & !PENDING != self.generation
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let word = &self.canceller.inner.word;
        let mut w = word.load(SeqCst);
        // Still counted only while the generation is ours: a cancel resets
        // the count of the generation it ends.
        while w & !PENDING == self.generation && w & PENDING != 0 {
            match word.compare_exchange(w, w - 1, SeqCst, SeqCst) {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }
}
