//! A loom platform and ring storage, so that loom model-checks the engine's
//! real lock-free code (the ring, `wait::Event`, `lock::LockWord`) rather
//! than copies of it. The models live in `tests/`.
//!
//! * [`Loom`] implements [`Platform`] with loom atomics, the engine's own
//!   fence (`sync::fence_seq_cst`, which is loom's fence under `cfg(loom)`),
//!   and models the futex with one loom `Mutex` + `Condvar` per execution:
//!   `futex_wait` checks the word and sleeps atomically with respect to
//!   `wake_all`, exactly the guarantee the kernel gives. Timeouts are
//!   ignored (a wait with a timeout sleeps until woken), so a lost wake-up
//!   is a loom *deadlock* instead of a park slice of latency, except a zero
//!   timeout, which returns at once as the real futex does (after a
//!   `yield_now`, so loom treats the caller's retry loop as a spin loop).
//! * [`LoomRing`] implements [`RingStorage`] with the data area split into
//!   64-byte `loom::cell::UnsafeCell` granules (one per record slot):
//!   every byte the engine copies goes through `with`/`with_mut` of the
//!   granules it spans, so a read that is not ordered after the write it
//!   reads (or two writers of one slot) is a loom causality violation.
//! * [`broken`] holds deliberately wrong platforms, used to show that the
//!   models catch the bugs they are meant to catch.
//!
//! Through its mutex the futex model also orders the waker's earlier writes
//! before the woken thread's later reads, as the kernel's futex bucket lock
//! does on real hardware. The engine does not lean on that: after every
//! wake-up it re-checks its condition with its own `Acquire` loads.
//!
//! # Running
//!
//! Everything is behind `cfg(loom)`; without it the test files compile to
//! nothing. Use a separate target directory: `--cfg loom` in `RUSTFLAGS`
//! rebuilds every dependency (about 1.5 min from scratch here).
//!
//! Bounded run (CI): every model with at most three preemptions per
//! execution (the two-round `Event` model needs three to find the lost
//! wake-up it is for). About 18 s of model checking on the 2-core
//! development VM (shared; the spread is load), 11 s of it the MPSC model;
//! a bound of 2 takes about 1.3 s but misses the two-round interleaving,
//! so that model asks for 3 itself ([`model_min_bound`]):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p shmpipe-loom-tests
//! ```
//!
//! Deeper runs raise the bound: `LOOM_MAX_PREEMPTIONS=4` took about 8 min
//! here before the hand-over model was added (6.5 min of it the MPSC
//! model, about a million executions). Leave `LOOM_MAX_BRANCHES` at its default
//! (1000 branches per execution, far above what these models use). Without
//! `LOOM_MAX_PREEMPTIONS` loom explores every interleaving: the small models
//! finish (the takeover model in about 2.5 min), the ring models do not in
//! useful time. A few tiny models ([`model_exhaustive`]) ignore the bound
//! and are always explored exhaustively, because their assertions are about
//! which executions exist (a sleep, a skipped wake, a deadlock).
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=4 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p shmpipe-loom-tests -- --nocapture
//! ```
//!
//! `--nocapture` shows, per model, how many executions loom explored and
//! how long they took.
//!
//! When a model fails, `LOOM_LOCATION=1` makes loom name the source lines
//! of the conflicting accesses, and `LOOM_LOG=trace` prints the
//! interleaving.

use core::ptr::NonNull;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU64};
use shmpipe_engine::layout::{RingControl, MIN_CAPACITY};
use shmpipe_engine::ring::RingStorage;
use shmpipe_engine::sync::{Atomic32, Atomic64, Platform};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A 32-bit loom atomic (futex words).
#[derive(Debug)]
pub struct LoomU32(AtomicU32);

/// A 64-bit loom atomic (positions, counters, lock words).
#[derive(Debug)]
pub struct LoomU64(AtomicU64);

impl Atomic32 for LoomU32 {
    #[track_caller]
    fn new(v: u32) -> Self {
        LoomU32(AtomicU32::new(v))
    }
    #[track_caller]
    fn load(&self, order: Ordering) -> u32 {
        self.0.load(order)
    }
    #[track_caller]
    fn store(&self, v: u32, order: Ordering) {
        self.0.store(v, order)
    }
    #[track_caller]
    fn fetch_add(&self, v: u32, order: Ordering) -> u32 {
        self.0.fetch_add(v, order)
    }
    #[track_caller]
    fn fetch_sub(&self, v: u32, order: Ordering) -> u32 {
        self.0.fetch_sub(v, order)
    }
    #[track_caller]
    fn fetch_and(&self, v: u32, order: Ordering) -> u32 {
        self.0.fetch_and(v, order)
    }
    #[track_caller]
    fn fetch_or(&self, v: u32, order: Ordering) -> u32 {
        self.0.fetch_or(v, order)
    }
}

impl Atomic64 for LoomU64 {
    #[track_caller]
    fn new(v: u64) -> Self {
        LoomU64(AtomicU64::new(v))
    }
    #[track_caller]
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    #[track_caller]
    fn store(&self, v: u64, order: Ordering) {
        self.0.store(v, order)
    }
    #[track_caller]
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        self.0.compare_exchange(current, new, success, failure)
    }
}

/// The loom platform: loom atomics, the production fence, and the futex model
/// described in the crate documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loom;

impl Platform for Loom {
    type U32 = LoomU32;
    type U64 = LoomU64;

    // `fence_seq_cst` stays the trait's default: the production fence
    // (`shmpipe_engine::sync::fence_seq_cst`, loom's fence under
    // `cfg(loom)`), so the models check the fence that ships.

    fn spin_hint() {
        loom::thread::yield_now();
    }

    fn futex_wait(word: &LoomU32, expected: u32, timeout: Option<Duration>) -> bool {
        futex::wait(&word.0, expected, timeout)
    }

    fn wake_all(word: &LoomU32) {
        futex::wake_all(&word.0);
    }
}

/// The futex model: one mutex and condition variable per loom execution,
/// shared by every futex word (a wake of another word is a spurious wake-up,
/// which `futex_wait` callers must tolerate anyway).
pub mod futex {
    use loom::sync::atomic::AtomicU32;
    use loom::sync::{Condvar, Mutex};
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    /// What the futex saw during the current execution.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Stats {
        /// `wake_all` calls (the engine's slow path of `Event::notify`).
        pub wakes: usize,
        /// `futex_wait` calls that found the expected value and slept.
        pub sleeps: usize,
    }

    struct Model {
        stats: Mutex<Stats>,
        woken: Condvar,
    }

    loom::lazy_static! {
        static ref MODEL: Model = Model {
            stats: Mutex::new(Stats::default()),
            woken: Condvar::new(),
        };
    }

    /// Sleeps while `*word == expected`. The check and the sleep happen under
    /// the model's mutex, which `wake_all` also takes: the futex's atomicity.
    /// Returns `true` (timed out) only for a zero timeout: other timeouts
    /// are ignored, the sleep ends only with a wake.
    pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
        if timeout == Some(Duration::ZERO) {
            loom::thread::yield_now();
            return true;
        }
        let mut stats = MODEL.stats.lock().expect("futex model poisoned");
        // Relaxed: the kernel's compare is a plain read of the word; any
        // ordering comes from the mutex, as it comes from the futex bucket
        // lock in the kernel.
        if word.load(Relaxed) == expected {
            stats.sleeps += 1;
            drop(MODEL.woken.wait(stats).expect("futex model poisoned"));
        }
        false
    }

    /// Wakes every sleeper.
    pub fn wake_all(_word: &AtomicU32) {
        let mut stats = MODEL.stats.lock().expect("futex model poisoned");
        stats.wakes += 1;
        MODEL.woken.notify_all();
    }

    /// The futex statistics of the current execution so far.
    pub fn stats() -> Stats {
        *MODEL.stats.lock().expect("futex model poisoned")
    }
}

/// Bytes per loom cell of the data area: one record slot.
pub const GRANULE: usize = 64;

/// A ring on loom memory: the control block on the heap, the data area as
/// loom cells, so loom checks every byte access the ring protocol makes.
pub struct LoomRing<P: Platform = Loom> {
    control: Box<RingControl<P>>,
    data: Vec<UnsafeCell<[u8; GRANULE]>>,
}

// SAFETY: the cells are only reached through `write`/`read`, whose callers
// (the ring protocol) promise exclusive/shared access, and loom checks that
// promise on every access instead of trusting it.
unsafe impl<P: Platform> Sync for LoomRing<P> {}
// SAFETY: as above; the cells own plain bytes.
unsafe impl<P: Platform> Send for LoomRing<P> {}

impl LoomRing {
    /// A ring of `capacity` bytes (a power of two, at least 256) on the
    /// [`Loom`] platform. Call it inside a loom model.
    pub fn new(capacity: usize) -> Self {
        Self::with_platform(capacity)
    }
}

impl<P: Platform> LoomRing<P> {
    /// A ring of `capacity` bytes on platform `P` (see [`broken`]).
    pub fn with_platform(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two() && capacity >= MIN_CAPACITY);
        LoomRing {
            control: Box::new(RingControl::new()),
            data: (0..capacity / GRANULE)
                .map(|_| UnsafeCell::new([0; GRANULE]))
                .collect(),
        }
    }

    /// Calls `f(granule, offset in granule, bytes, offset in the range)` for
    /// each granule that `at..at + len` spans.
    fn spans(
        &self,
        at: usize,
        len: usize,
        mut f: impl FnMut(&UnsafeCell<[u8; GRANULE]>, usize, usize, usize),
    ) {
        let mut done = 0;
        while done < len {
            let pos = at + done;
            let off = pos % GRANULE;
            let n = (GRANULE - off).min(len - done);
            // Indexing panics on an out-of-bounds access: a bug loom reports.
            f(&self.data[pos / GRANULE], off, n, done);
            done += n;
        }
    }
}

// SAFETY: `capacity` is the constant length of `data` in bytes, a checked
// power of two >= 256; `write`/`read` touch exactly `at..at + len` (and
// panic rather than leave the area); `data_ptr` is `None`.
unsafe impl<P: Platform> RingStorage for LoomRing<P> {
    type P = P;

    fn control(&self) -> &RingControl<P> {
        &self.control
    }

    fn capacity(&self) -> usize {
        self.data.len() * GRANULE
    }

    unsafe fn write(&self, at: usize, src: &[u8]) {
        self.spans(at, src.len(), |cell, off, n, done| {
            cell.with_mut(|g| {
                // SAFETY: loom hands out the pointer only after checking that
                // no other thread accesses the cell concurrently.
                let g = unsafe { &mut *g };
                g[off..off + n].copy_from_slice(&src[done..done + n]);
            })
        });
    }

    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        self.spans(at, dst.len(), |cell, off, n, done| {
            cell.with(|g| {
                // SAFETY: loom checks that no write to the cell is concurrent
                // with (not ordered before) this read.
                let g = unsafe { &*g };
                dst[done..done + n].copy_from_slice(&g[off..off + n]);
            })
        });
    }

    fn data_ptr(&self) -> Option<NonNull<u8>> {
        None
    }
}

/// Deliberately broken platforms: the models must fail on them.
pub mod broken {
    use super::{futex, LoomU32, LoomU64};
    use loom::sync::atomic::{AtomicU32, AtomicU64};
    use shmpipe_engine::sync::{Atomic32, Atomic64, Platform};
    use std::sync::atomic::Ordering::{self, Relaxed};
    use std::time::Duration;

    /// [`Loom`](super::Loom) with a `fence_seq_cst` that does nothing: the
    /// `Event` handshake loses wake-ups (store buffering).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct NoFence;

    impl Platform for NoFence {
        type U32 = LoomU32;
        type U64 = LoomU64;

        fn fence_seq_cst() {}

        fn spin_hint() {
            loom::thread::yield_now();
        }

        fn futex_wait(word: &LoomU32, expected: u32, timeout: Option<Duration>) -> bool {
            futex::wait(&word.0, expected, timeout)
        }

        fn wake_all(word: &LoomU32) {
            futex::wake_all(&word.0);
        }
    }

    /// A 32-bit atomic that performs every access `Relaxed`.
    #[derive(Debug)]
    pub struct RelaxedU32(AtomicU32);

    /// A 64-bit atomic that performs every access `Relaxed`.
    #[derive(Debug)]
    pub struct RelaxedU64(AtomicU64);

    impl Atomic32 for RelaxedU32 {
        fn new(v: u32) -> Self {
            RelaxedU32(AtomicU32::new(v))
        }
        fn load(&self, _: Ordering) -> u32 {
            self.0.load(Relaxed)
        }
        fn store(&self, v: u32, _: Ordering) {
            self.0.store(v, Relaxed)
        }
        fn fetch_add(&self, v: u32, _: Ordering) -> u32 {
            self.0.fetch_add(v, Relaxed)
        }
        fn fetch_sub(&self, v: u32, _: Ordering) -> u32 {
            self.0.fetch_sub(v, Relaxed)
        }
        fn fetch_and(&self, v: u32, _: Ordering) -> u32 {
            self.0.fetch_and(v, Relaxed)
        }
        fn fetch_or(&self, v: u32, _: Ordering) -> u32 {
            self.0.fetch_or(v, Relaxed)
        }
    }

    impl Atomic64 for RelaxedU64 {
        fn new(v: u64) -> Self {
            RelaxedU64(AtomicU64::new(v))
        }
        fn load(&self, _: Ordering) -> u64 {
            self.0.load(Relaxed)
        }
        fn store(&self, v: u64, _: Ordering) {
            self.0.store(v, Relaxed)
        }
        fn compare_exchange(
            &self,
            current: u64,
            new: u64,
            _: Ordering,
            _: Ordering,
        ) -> Result<u64, u64> {
            self.0.compare_exchange(current, new, Relaxed, Relaxed)
        }
    }

    /// [`Loom`](super::Loom) whose atomics ignore the orderings the engine
    /// asks for: ring publication no longer orders the payload.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct RelaxedAtomics;

    impl Platform for RelaxedAtomics {
        type U32 = RelaxedU32;
        type U64 = RelaxedU64;

        fn spin_hint() {
            loom::thread::yield_now();
        }

        fn futex_wait(word: &RelaxedU32, expected: u32, timeout: Option<Duration>) -> bool {
            futex::wait(&word.0, expected, timeout)
        }

        fn wake_all(word: &RelaxedU32) {
            futex::wake_all(&word.0);
        }
    }
}

/// Payload bytes of test record `tag`: distinct per record and per byte, so
/// a misplaced or torn copy changes the bytes.
pub fn payload(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_mul(61).wrapping_add(i as u8))
        .collect()
}

/// A wait policy for `LockWord::lock` under loom: park at once, and a park
/// slice so long that the `Waiter` never asks for a liveness check (its
/// decision depends on the real clock, which would make executions differ).
pub fn park_only_policy() -> shmpipe_engine::WaitPolicy {
    shmpipe_engine::WaitPolicy {
        spin: Some(Duration::ZERO),
        park_slice: Duration::from_secs(24 * 3600),
    }
}

/// A wait policy whose every park is a zero-length futex wait followed by a
/// liveness check: a `LockWord::lock` waiter then polls its holder's
/// liveness on every step, deterministically.
pub fn check_every_step_policy() -> shmpipe_engine::WaitPolicy {
    shmpipe_engine::WaitPolicy {
        spin: Some(Duration::ZERO),
        park_slice: Duration::ZERO,
    }
}

/// Runs `f` under loom with the environment's settings (above all
/// `LOOM_MAX_PREEMPTIONS`) and prints (to the test's captured output; see it
/// with `--nocapture`) how many executions loom explored and how long that
/// took, so a reviewer can see what a preemption bound buys.
pub fn model<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    run(name, loom::model::Builder::new(), f);
}

/// [`model`] with a preemption bound of at least `min`, whatever the
/// environment says (no bound stays no bound): for models whose bug needs
/// `min` preemptions to show, so that a run at a lower bound still checks
/// what the model is for.
pub fn model_min_bound<F>(name: &str, min: usize, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.map(|b| b.max(min));
    run(name, builder, f);
}

/// [`model`] without a preemption bound, whatever the environment says:
/// for models small enough to explore exhaustively in milliseconds, whose
/// assertions about *which* executions exist (a sleep, a skipped wake, a
/// deadlock) must not depend on the bound.
pub fn model_exhaustive<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = None;
    run(name, builder, f);
}

fn run<F>(name: &str, builder: loom::model::Builder, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    use std::sync::atomic::AtomicUsize;
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let start = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom model {name}: {} executions in {:.2?}",
        runs.load(Ordering::Relaxed),
        start.elapsed()
    );
}
