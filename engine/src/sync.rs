//! The seam between the lock-free algorithms and the memory they run on.
//!
//! Every protocol in this crate (the ring, the wait/wake event, the shared
//! lock) is written once, generic over a [`Platform`]. Production uses
//! [`Native`]: `core` atomics placed in a shared mapping and the *shared*
//! (not private) futex, so wakes cross process boundaries. The
//! `shmpipe-loom-tests` crate supplies a loom platform, so the model checker
//! explores the very same code on heap memory (fence included: see
//! [`fence_seq_cst`]); miri runs the native platform on heap memory.
//!
//! The traits are deliberately tiny: only the operations the algorithms use.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// The 32-bit atomic operations the algorithms need (a futex word is 32 bits).
pub trait Atomic32: Send + Sync {
    /// Creates the atomic with an initial value.
    fn new(v: u32) -> Self;
    /// Atomic load.
    fn load(&self, order: Ordering) -> u32;
    /// Atomic store.
    fn store(&self, v: u32, order: Ordering);
    /// Atomic add, returning the previous value (wrapping).
    fn fetch_add(&self, v: u32, order: Ordering) -> u32;
    /// Atomic subtract, returning the previous value (wrapping).
    fn fetch_sub(&self, v: u32, order: Ordering) -> u32;
    /// Atomic bitwise and, returning the previous value.
    fn fetch_and(&self, v: u32, order: Ordering) -> u32;
    /// Atomic bitwise or, returning the previous value.
    fn fetch_or(&self, v: u32, order: Ordering) -> u32;
}

/// The 64-bit atomic operations the algorithms need (positions and counters).
pub trait Atomic64: Send + Sync {
    /// Creates the atomic with an initial value.
    fn new(v: u64) -> Self;
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, v: u64, order: Ordering);
    /// Strong compare-and-exchange.
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
}

/// What the algorithms need from the machine: atomics, fences, a spin hint and
/// a futex-like sleep on a 32-bit word.
pub trait Platform: Send + Sync + 'static {
    /// 32-bit atomic type (futex words).
    type U32: Atomic32;
    /// 64-bit atomic type (positions, counters, lock words).
    type U64: Atomic64;

    /// A sequentially consistent fence. Every platform but the deliberately
    /// broken test ones keeps this default, the production
    /// [`fence_seq_cst`], so the loom models check the very fence that
    /// ships.
    #[inline]
    fn fence_seq_cst() {
        fence_seq_cst();
    }

    /// Called once per iteration of a busy-wait loop.
    fn spin_hint();

    /// Sleeps while `*word == expected`, for at most `timeout` (`None`: no
    /// limit). May return early for any reason; callers re-check their
    /// condition. Must be atomic with respect to [`Platform::wake_all`]: a wake
    /// that follows a change of `*word` is never lost.
    ///
    /// Returns `true` when the wait ended because `timeout` ran out (nobody
    /// woke it), `false` otherwise (woken, the word had changed, a signal,
    /// or unknown).
    fn futex_wait(word: &Self::U32, expected: u32, timeout: Option<Duration>) -> bool;

    /// Wakes every thread (of every process) sleeping on `word`.
    fn wake_all(word: &Self::U32);
}

/// The sequentially consistent fence of the `Event` handshake
/// ([`crate::wait`]), the one fence the engine's protocols rely on: the
/// default of [`Platform::fence_seq_cst`], used by [`Native`] and by the loom
/// platform alike. Under `cfg(loom)` (the loom models only) it is loom's
/// fence, so that loom checks this function rather than a stand-in;
/// weakening it makes the models lose wake-ups.
///
/// ```
/// // Orders a store before a later load of another location, which
/// // Release/Acquire do not.
/// shmpipe_engine::sync::fence_seq_cst();
/// ```
#[inline]
pub fn fence_seq_cst() {
    #[cfg(not(loom))]
    core::sync::atomic::fence(Ordering::SeqCst);
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// The production platform: `core` atomics and the shared Linux futex.
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl Atomic32 for AtomicU32 {
    #[inline]
    fn new(v: u32) -> Self {
        AtomicU32::new(v)
    }
    #[inline]
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    #[inline]
    fn store(&self, v: u32, order: Ordering) {
        AtomicU32::store(self, v, order)
    }
    #[inline]
    fn fetch_add(&self, v: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, v, order)
    }
    #[inline]
    fn fetch_sub(&self, v: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_sub(self, v, order)
    }
    #[inline]
    fn fetch_and(&self, v: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_and(self, v, order)
    }
    #[inline]
    fn fetch_or(&self, v: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_or(self, v, order)
    }
}

impl Atomic64 for AtomicU64 {
    #[inline]
    fn new(v: u64) -> Self {
        AtomicU64::new(v)
    }
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline]
    fn store(&self, v: u64, order: Ordering) {
        AtomicU64::store(self, v, order)
    }
    #[inline]
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        AtomicU64::compare_exchange(self, current, new, success, failure)
    }
}

impl Platform for Native {
    type U32 = AtomicU32;
    type U64 = AtomicU64;

    #[inline]
    fn spin_hint() {
        core::hint::spin_loop();
    }

    fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        futex::wait(word, expected, timeout)
    }

    fn wake_all(word: &AtomicU32) {
        futex::wake_all(word)
    }
}

/// The shared futex. Never the private flag: the futex key of a shared
/// futex is (inode, page offset), so a waiter and a waker in different
/// processes that mapped the same memfd meet; with `FUTEX_PRIVATE_FLAG` the key
/// is (mm, address) and cross-process wakes are silently lost (see
/// docs/decisions.md).
pub(crate) mod futex {
    use core::sync::atomic::AtomicU32;
    #[cfg(not(miri))]
    use rustix::thread::futex::{self as sys, Flags};
    use std::time::Duration;

    #[cfg(not(miri))]
    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        // EAGAIN (value already changed), EINTR (signal), ETIMEDOUT and a
        // normal wake all mean the same to every caller: re-check the
        // condition. Only the wait statistics tell ETIMEDOUT apart.
        sys::wait(word, Flags::empty(), expected, ts.as_ref()) == Err(rustix::io::Errno::TIMEDOUT)
    }

    #[cfg(not(miri))]
    pub(crate) fn wake_all(word: &AtomicU32) {
        let _ = sys::wake(word, Flags::empty(), i32::MAX as u32);
    }

    // Miri cannot run the futex syscall with the shared flag; under miri the
    // heap rings are only used by threads of one process, so yielding is an
    // adequate (slow, but correct) stand-in for sleeping.
    #[cfg(miri)]
    pub(crate) fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) -> bool {
        if word.load(core::sync::atomic::Ordering::Acquire) == expected {
            std::thread::yield_now();
        }
        false
    }

    #[cfg(miri)]
    pub(crate) fn wake_all(_word: &AtomicU32) {}
}
