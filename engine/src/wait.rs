//! Cross-process wait and wake.
//!
//! An [`Event`] is two 32-bit words in shared memory: a sequence number that
//! is the futex word, and a `sleepers` flag. The side that makes progress
//! (publishes a record, frees space, releases a lock) calls
//! [`Event::notify`]; a side that cannot progress calls [`Event::park`].
//!
//! # The no-lost-wake-up argument
//!
//! ```text
//! waiter (one park)                       notifier (one notify)
//! s = seq.load(Acquire)            (R)    <publish the state change>
//! sleepers.store(1)                (W)    fence(SeqCst)              (Y)
//! fence(SeqCst)                    (X)    if sleepers.load() != 0 {  (L)
//! if ready() { return }                       sleepers.store(0)      (C)
//! futex_wait(seq, s, slice)                   seq.fetch_add(1, Release) (I)
//!                                              futex_wake(seq) }
//! ```
//!
//! Claim: a park that begins before a notify that follows the publication
//! of what it waits for does not sleep through it, for any number of
//! rounds, waiters and notifiers on the event. Take the park's R, W, X and
//! that notify's Y, L. The SeqCst fences are totally ordered.
//!
//! 1. Y before X: the waiter's `ready()` (after X) sees the published state
//!    and does not sleep.
//! 2. X before Y: L (after Y) reads W or a store to `sleepers` that comes
//!    after W in its modification order.
//!    * L reads a 1: the notifier does C, I and the wake. R cannot read I or
//!      a later value (that would put Y before X), so `seq` differs from `s`
//!      from I on: the futex either finds the word changed and returns at
//!      once, or is asleep already and gets the wake that follows I.
//!    * L reads 0, from a clear C' of some notify (an earlier round's, or
//!      another notifier's) that comes after W in `sleepers`' modification
//!      order. C' is followed by its own increment I'. If R read a value
//!      from before I', then `seq` differs from `s` from I' on, and the
//!      futex returns or is woken as above. If R read I' or a later value,
//!      that value is in I''s release sequence (every write of `seq` is a
//!      read-modify-write), so R, an `Acquire` load, synchronises with I'
//!      (`Release`): C' happens before R, hence before W, and so comes
//!      before W in the modification order, a contradiction.
//!
//! The last case is where `seq`'s `Release`/`Acquire` matter: with one park
//! and one notify per event, L cannot read a clear from after W, and the
//! fences and `seq`'s coherence suffice. From the second round on, a waiter
//! that left the previous park without sleeping through the futex (its
//! condition was already true, or the futex found the word changed) is
//! ordered after that round's clear only through `seq`; with `Relaxed`
//! there, the stale clear can land after the new `sleepers = 1`, the next
//! notify reads 0 and skips the wake, and the waiter sleeps a whole slice.
//! The loom model `two_rounds_never_lose_a_wakeup` finds exactly that when
//! either ordering is weakened.
//!
//! # Announcing without parking
//!
//! [`Event::park`] is [`Event::announce`] (R, W, X: returns a [`Ticket`],
//! the value R read), then `ready()`, then [`Event::wait_changed`] (the
//! futex wait for `seq != s`). The argument above never uses *who* waits
//! for `seq != s`, nor when, only that the wait compares against the value
//! R read and that a notify which reads `sleepers == 1` changes `seq` and
//! then wakes the futex word. So the halves may be split: a future
//! announces, re-checks its condition, and hands its ticket to the
//! readiness bridge ([`crate::readiness`]), a thread that waits for
//! `seq != s` on many words at once (`futex_waitv`) and signals the
//! future's eventfd. By the same cases, a notify that follows the
//! publication the announcer waits for either is seen by its re-check
//! (case 1) or changes `seq` away from `s` before or while the bridge
//! waits (case 2), and the bridge's wait, like the futex's, returns at once
//! for a changed word and is woken for a change that comes later. Blocking
//! parkers and announcers may share one event in any number: `sleepers` is
//! one flag for both kinds, and every notify that reads it set wakes all.
//! The loom model `loom-tests/tests/announce.rs` checks the mixed case.
//!
//! The notifier's fast path, when nobody sleeps, is one fence and one load:
//! no syscall (a `FUTEX_WAKE` costs ≈ 0.45 µs even with nobody to wake).
//!
//! `sleepers` is a flag, not a count, so a waiter that dies never leaves a
//! permanent "someone sleeps" behind: the next notify clears it. The flag
//! lives in memory the peer can write; a lying peer can only cause spurious
//! wake-ups or a missed wake-up, and a missed one costs at most one park slice
//! because every park has a timeout (see [`WaitPolicy::park_slice`]).
//!
//! # Spinning, then parking
//!
//! A [`Waiter`] spins for the policy's budget, re-checking the condition, then
//! parks in slices. After every slice the caller is told to check whether the
//! peer is still alive ([`Step::CheckPeer`]), which bounds how long a dead peer
//! can go unnoticed. Deadlines are absolute ([`Instant`]s), so spurious
//! wake-ups and signals never stretch a timeout.
//!
//! # Cancellation
//!
//! A waiter made [`Waiter::cancellable`] by a handle's [`Canceller`]
//! registers as pending on its first step and ends with [`Step::Cancelled`]
//! once that canceller cancels: the check runs at every step, and is part
//! of the park condition, so a parked waiter is woken by the cancel's
//! notify (see [`cancel`](crate::cancel)). Signals never end a wait.

pub use crate::cancel::{Canceller, NotPending, Pending, Waker};
use crate::sync::{Atomic32, Platform};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

/// A futex-backed event in shared memory. See the module documentation.
#[repr(C)]
pub struct Event<P: Platform> {
    seq: P::U32,
    sleepers: P::U32,
}

impl<P: Platform> Default for Event<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> Event<P> {
    /// A new event with nobody sleeping.
    pub fn new() -> Self {
        Event {
            seq: P::U32::new(0),
            sleepers: P::U32::new(0),
        }
    }

    /// Wakes every sleeper, if any. Call it after publishing a state change.
    #[inline]
    pub fn notify(&self) {
        P::fence_seq_cst();
        if self.sleepers.load(Relaxed) != 0 {
            self.wake_slow();
        }
    }

    #[cold]
    fn wake_slow(&self) {
        self.sleepers.store(0, Relaxed);
        self.seq.fetch_add(1, Release);
        P::wake_all(&self.seq);
    }

    /// Sleeps until notified, `ready()` is already true, or `timeout` passes.
    /// May return early; callers re-check their condition. Returns `true`
    /// when it slept until `timeout` ran out without being woken (see
    /// [`full_slice_waits`]), `false` otherwise.
    pub fn park(&self, timeout: Option<Duration>, ready: impl FnOnce() -> bool) -> bool {
        let ticket = self.announce();
        if ready() {
            return false;
        }
        self.wait_changed(ticket, timeout)
    }

    /// The first half of [`Event::park`] (R, W, X of the module doc):
    /// announces a sleeper and returns the sequence value read before the
    /// announcement. The caller then re-checks its condition and, if it
    /// still does not hold, waits (itself or through someone else, such as
    /// the readiness bridge) until the sequence word differs from the
    /// ticket: see "Announcing without parking" in the module doc.
    ///
    /// ```
    /// use shmpipe_engine::sync::Native;
    /// use shmpipe_engine::wait::Event;
    /// let event = Event::<Native>::new();
    /// let ticket = event.announce();
    /// assert!(!event.changed_since(ticket));
    /// event.notify(); // sees the announcement: bumps the sequence, wakes
    /// assert!(event.changed_since(ticket));
    /// ```
    #[inline]
    pub fn announce(&self) -> Ticket {
        let s = self.seq.load(Acquire);
        self.sleepers.store(1, Relaxed);
        P::fence_seq_cst();
        Ticket(s)
    }

    /// Whether a notify that saw an announcement has happened since
    /// `ticket` was taken (the sequence word moved on).
    ///
    /// ```
    /// # use shmpipe_engine::{sync::Native, wait::Event};
    /// let event = Event::<Native>::new();
    /// let ticket = event.announce();
    /// assert!(!event.changed_since(ticket));
    /// ```
    #[inline]
    pub fn changed_since(&self, ticket: Ticket) -> bool {
        self.seq.load(Acquire) != ticket.0
    }

    /// Sleeps while the sequence word still holds `ticket`'s value, for at
    /// most `timeout` (the second half of [`Event::park`]). Returns `true`
    /// when the timeout ran out without a wake.
    ///
    /// ```
    /// # use shmpipe_engine::{sync::Native, wait::Event};
    /// # use std::time::Duration;
    /// let event = Event::<Native>::new();
    /// let ticket = event.announce();
    /// event.notify();
    /// // The word moved on: returns at once.
    /// assert!(!event.wait_changed(ticket, Some(Duration::from_secs(60))));
    /// ```
    pub fn wait_changed(&self, ticket: Ticket, timeout: Option<Duration>) -> bool {
        P::futex_wait(&self.seq, ticket.0, timeout)
    }

    /// The sequence (futex) word, for the readiness bridge, which waits on
    /// it with `futex_waitv`.
    #[cfg(not(loom))]
    pub(crate) fn seq_word(&self) -> &P::U32 {
        &self.seq
    }
}

/// What [`Event::announce`] returns: the event's sequence value before the
/// announcement. Whoever waits for it waits until the sequence word differs.
///
/// ```
/// # use shmpipe_engine::{sync::Native, wait::Event};
/// let event = Event::<Native>::new();
/// let ticket = event.announce();
/// assert_eq!(ticket.value(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u32);

impl Ticket {
    /// The sequence value the wait compares against.
    ///
    /// ```
    /// # use shmpipe_engine::{sync::Native, wait::Event};
    /// let event = Event::<Native>::new();
    /// let _ = event.announce();
    /// event.notify();
    /// assert_eq!(event.announce().value(), 1);
    /// ```
    pub fn value(self) -> u32 {
        self.0
    }
}

/// How a blocked operation waits: spin, park, or spin then park.
///
/// Spinning answers fastest (≈ the cost of a cache-line transfer) but burns a
/// CPU for as long as it spins; parking costs a futex wake (≈ 5–15 µs on a
/// VM) but no CPU. The default spins for 20 µs, then parks, except on a
/// single-CPU machine where spinning can only delay the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// How long to spin before parking. `None`: spin forever (never park).
    pub spin: Option<Duration>,
    /// How long one park lasts before the waiter wakes to check the peer's
    /// liveness and its deadline. Bounds dead-peer detection latency.
    pub park_slice: Duration,
}

impl WaitPolicy {
    /// The default park slice: how long one park lasts before the waiter
    /// checks its peer and deadline. A killed peer is normally noticed much
    /// sooner, from the kernel's notice (`liveness::watch`); the slice bounds
    /// it where that notice cannot be had (no inotify watch) or a peer lies.
    pub const DEFAULT_PARK_SLICE: Duration = Duration::from_millis(4);

    /// Spin and never park: the lowest latency, one busy CPU per waiter.
    pub const fn spin() -> Self {
        WaitPolicy {
            spin: None,
            park_slice: Self::DEFAULT_PARK_SLICE,
        }
    }

    /// Park at once: no CPU burnt, a futex wake per hand-off.
    pub const fn park() -> Self {
        WaitPolicy {
            spin: Some(Duration::ZERO),
            park_slice: Self::DEFAULT_PARK_SLICE,
        }
    }

    /// Spin for `spin`, then park.
    pub const fn spin_then_park(spin: Duration) -> Self {
        WaitPolicy {
            spin: Some(spin),
            park_slice: Self::DEFAULT_PARK_SLICE,
        }
    }
}

impl Default for WaitPolicy {
    fn default() -> Self {
        static MULTI_CPU: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        // CPUs online in the machine, not in this thread's affinity mask: a
        // process pinned to one CPU still has a peer spinning on another.
        let multi = *MULTI_CPU.get_or_init(|| {
            // SAFETY: sysconf only reads a system parameter.
            let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
            online > 1
        });
        if multi {
            Self::spin_then_park(Duration::from_micros(20))
        } else {
            Self::park()
        }
    }
}

/// Parks of this process that slept their whole slice although, when they
/// woke, what they waited for was there. Kept in a plain process-global
/// counter (not a loom object: it observes the protocol, it is not part of
/// it), touched only on the park path.
static FULL_SLICE_WAITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many hand-offs in this process waited a full park slice: a
/// [`Waiter`] parked, the futex wait ran until its timeout (the whole
/// slice, or up to the deadline) without being woken, and the awaited
/// condition was true on waking.
///
/// With a correct [`Event`] handshake a notify wakes a parked waiter at
/// once, so this stays 0 unless a wake-up was lost (a weakened fence, a peer
/// that skips its notify) or the peer stalled between publishing and
/// notifying until the slice ran out. A waiter that is woken but scheduled
/// late does not count (the futex says it was woken), nor does a peer that
/// is merely slow (the condition is still false when the slice ends). Each
/// count costs about [`WaitPolicy::park_slice`] of latency; tests and
/// benchmarks read it to tell lost wake-ups from slowness without timing
/// anything.
///
/// ```
/// let before = shmpipe_engine::wait::full_slice_waits();
/// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
/// rx.set_wait_policy(shmpipe_engine::WaitPolicy::park());
/// let t = std::thread::spawn(move || tx.write(b"ping"));
/// let mut buf = [0u8; 4];
/// assert_eq!(rx.read(&mut buf)?, 4);
/// t.join().unwrap()?;
/// // Unchanged, unless the writer stalled between publishing and notifying
/// // for a whole park slice.
/// assert!(shmpipe_engine::wait::full_slice_waits() >= before);
/// # Ok::<(), shmpipe_engine::Error>(())
/// ```
pub fn full_slice_waits() -> u64 {
    FULL_SLICE_WAITS.load(Relaxed)
}

/// What a blocked operation should do after one [`Waiter::wait`] step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Re-check the condition.
    Retry,
    /// Re-check the condition, and check that the peer is still alive.
    CheckPeer,
    /// The deadline has passed (re-check once more before giving up).
    TimedOut,
    /// The waiter's [`Canceller`] cancelled the operation: give up with
    /// [`Error::Cancelled`](crate::Error::Cancelled), having consumed and
    /// published nothing more.
    Cancelled,
}

/// The state of one blocking wait: where it is in the spin budget, its
/// deadline, and the canceller it answers to.
#[derive(Debug)]
pub struct Waiter<'c> {
    /// The canceller, and (from the first step on) the registration that
    /// makes the operation pending.
    cancel: Option<&'c Canceller>,
    pending: Option<Pending<'c>>,
    policy: WaitPolicy,
    deadline: Option<Instant>,
    start: Option<Instant>,
    spins: u32,
    /// Set on the first wait: creating a `Waiter` must not read the clock,
    /// since most operations never wait.
    last_peer_check: Option<Instant>,
}

/// While spinning forever, check the peer this often.
const SPIN_PEER_CHECK: Duration = Duration::from_millis(2);

impl Waiter<'static> {
    /// A waiter that gives up at `deadline` (`None`: never).
    pub fn new(policy: WaitPolicy, deadline: Option<Instant>) -> Self {
        Waiter {
            cancel: None,
            pending: None,
            policy,
            deadline,
            start: None,
            spins: 0,
            last_peer_check: None,
        }
    }
}

impl<'c> Waiter<'c> {
    /// This waiter, ended by `canceller` (see [`Step::Cancelled`]). Costs
    /// nothing until the first step: an operation that never waits is
    /// never pending.
    ///
    /// ```
    /// use shmpipe_engine::wait::{Canceller, Event, Step, WaitPolicy, Waiter};
    /// let canceller = Canceller::new();
    /// let event = Event::<shmpipe_engine::sync::Native>::new();
    /// let mut waiter = Waiter::new(WaitPolicy::park(), None).cancellable(&canceller);
    /// assert_eq!(waiter.wait(&event, || true), Step::Retry); // now pending
    /// canceller.cancel().unwrap();
    /// assert_eq!(waiter.wait(&event, || false), Step::Cancelled);
    /// ```
    pub fn cancellable<'d>(self, canceller: &'d Canceller) -> Waiter<'d>
    where
        'c: 'd,
    {
        Waiter {
            cancel: Some(canceller),
            pending: None,
            policy: self.policy,
            deadline: self.deadline,
            start: self.start,
            spins: self.spins,
            last_peer_check: self.last_peer_check,
        }
    }

    /// Whether this waiter's operation was cancelled (`false` before its
    /// first step, and for a waiter without a canceller).
    ///
    /// ```
    /// let w = shmpipe_engine::wait::Waiter::new(Default::default(), None);
    /// assert!(!w.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.pending.as_ref().is_some_and(Pending::is_cancelled)
    }

    /// Waits one step for `event`; `ready` re-checks the awaited condition
    /// (it must only read memory). Never blocks longer than one park slice.
    pub fn wait<P: Platform>(&mut self, event: &Event<P>, ready: impl Fn() -> bool) -> Step {
        if let Some(c) = self.cancel {
            // Registered once per operation, on its first step; looked at
            // on every step.
            if self.pending.get_or_insert_with(|| c.begin()).is_cancelled() {
                return Step::Cancelled;
            }
        }
        let pending = self.pending.as_ref();
        let cancelled = || pending.is_some_and(Pending::is_cancelled);
        // Spinning reads the clock only every 64 rounds: a vDSO clock read
        // costs about as much as a cache miss.
        self.spins = self.spins.wrapping_add(1);
        let spin_phase = match self.policy.spin {
            None => true,
            Some(budget) if budget.is_zero() => false,
            Some(budget) => {
                if self.spins % 64 != 1 {
                    true
                } else {
                    let now = Instant::now();
                    let start = *self.start.get_or_insert(now);
                    now.duration_since(start) < budget
                }
            }
        };
        if spin_phase {
            // The clock first, whatever `ready` says: a caller whose
            // condition holds but who cannot act on it (a lock others keep
            // taking first) must still time out and check its peer.
            if self.spins % 64 == 0 {
                let now = Instant::now();
                if self.deadline.is_some_and(|d| now >= d) {
                    return Step::TimedOut;
                }
                let last = *self.last_peer_check.get_or_insert(now);
                if now.duration_since(last) >= SPIN_PEER_CHECK {
                    self.last_peer_check = Some(now);
                    return Step::CheckPeer;
                }
            }
            for _ in 0..16 {
                if ready() {
                    return Step::Retry;
                }
                if cancelled() {
                    return Step::Cancelled;
                }
                P::spin_hint();
            }
            return Step::Retry;
        }

        let mut slice = self.policy.park_slice;
        self.last_peer_check.get_or_insert_with(Instant::now);
        if let Some(d) = self.deadline {
            let now = Instant::now();
            if now >= d {
                return Step::TimedOut;
            }
            slice = slice.min(d - now);
        }
        // "Cancelled" is part of the park condition: the canceller publishes
        // its generation and then notifies this event, so the wake-up cannot
        // be lost (the notifier side of the handshake above).
        if event.park(Some(slice), || ready() || cancelled()) && !slice.is_zero() && ready() {
            // Slept the whole slice, and what we waited for is there: most
            // likely a lost wake-up (see `full_slice_waits`).
            FULL_SLICE_WAITS.fetch_add(1, Relaxed);
        }
        if cancelled() {
            return Step::Cancelled;
        }
        // Look at the peer and the deadline at least once per slice, even if
        // something keeps waking us (a lying peer, another reader).
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            return Step::TimedOut;
        }
        let last = *self.last_peer_check.get_or_insert(now);
        if now.duration_since(last) + Duration::from_micros(50) >= self.policy.park_slice {
            self.last_peer_check = Some(now);
            Step::CheckPeer
        } else {
            Step::Retry
        }
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use crate::sync::Native;
    use core::cell::Cell;

    /// A condition that turns true while the waiter sleeps, with no notify
    /// (a lost wake-up by construction): the park runs its whole slice and
    /// is counted. Single-threaded, so deterministic; the counter is
    /// process-wide, hence "at least one more".
    #[test]
    fn a_skipped_notify_counts_a_full_slice_wait() {
        let event = Event::<Native>::new();
        let mut waiter = Waiter::new(
            WaitPolicy {
                spin: Some(Duration::ZERO),
                park_slice: Duration::from_millis(5),
            },
            None,
        );
        let checks = Cell::new(0);
        // False when `park` checks it before sleeping, true afterwards.
        let ready = || {
            checks.set(checks.get() + 1);
            checks.get() > 1
        };
        let before = full_slice_waits();
        waiter.wait(&event, ready);
        assert!(full_slice_waits() > before);
    }

    /// A spinning waiter times out at its deadline even when its condition
    /// keeps reading true (a lock that other handles keep taking first):
    /// before, every step returned `Retry` while `ready` held, so a
    /// contended `send` with a deadline spun forever.
    #[test]
    fn a_spinning_wait_times_out_while_its_condition_holds() {
        let event = Event::<Native>::new();
        let mut waiter = Waiter::new(WaitPolicy::spin(), Some(Instant::now()));
        let steps = (0..128)
            .map(|_| waiter.wait(&event, || true))
            .position(|s| matches!(s, Step::TimedOut));
        assert!(steps.is_some(), "no TimedOut in 128 steps");
    }

    /// A wait that ends because it was woken, or because the condition was
    /// already true, is not counted (by this waiter; the counter is
    /// process-wide, so only the waiter's own return path is checked: a
    /// park that returns without a timeout reports `false`).
    #[test]
    fn a_notified_park_is_not_a_timeout() {
        let event = std::sync::Arc::new(Event::<Native>::new());
        let flag = std::sync::Arc::new(core::sync::atomic::AtomicBool::new(false));
        assert!(!event.park(Some(Duration::from_secs(60)), || true));
        let notifier = {
            let (event, flag) = (event.clone(), flag.clone());
            std::thread::spawn(move || {
                flag.store(true, Release);
                event.notify();
            })
        };
        let mut timed_out = false;
        while !flag.load(Acquire) {
            timed_out |= event.park(Some(Duration::from_secs(60)), || flag.load(Acquire));
        }
        notifier.join().unwrap();
        assert!(!timed_out);
    }
}
