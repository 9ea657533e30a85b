//! The loom models of the engine, and what they share. Loom model-checks the
//! engine's real code (the ring, `wait::Event`, `lock::LockWord`, and the
//! channel ends `Sender`/`Receiver` of the `channel` module as they ship) rather
//! than copies of it. The models live in `tests/`.
//!
//! The platform and storage live in the engine (`shmpipe_engine::loom_model`,
//! compiled only under `cfg(loom)`), because the `channel` module itself runs on
//! them there, and are re-exported here:
//!
//! * `Loom` implements `Platform` with loom atomics, the engine's own
//!   fence (`sync::fence_seq_cst`, which is loom's fence under `cfg(loom)`),
//!   and models the futex with one loom `Mutex` + `Condvar` per execution:
//!   `futex_wait` checks the word and sleeps atomically with respect to
//!   `wake_all`, exactly the guarantee the kernel gives. Timeouts are
//!   ignored (a wait with a timeout sleeps until woken), so a lost wake-up
//!   is a loom *deadlock* instead of a park slice of latency, except a zero
//!   timeout, which returns at once as the real futex does (after a
//!   `yield_now`, so loom treats the caller's retry loop as a spin loop).
//! * `LoomRing` implements `RingStorage` with the data area split into
//!   64-byte `loom::cell::UnsafeCell` granules (one per record slot):
//!   every byte the engine copies goes through `with`/`with_mut` of the
//!   granules it spans, so a read that is not ordered after the write it
//!   reads (or two writers of one slot) is a loom causality violation. Each
//!   granule's commit word (the record header's first 8 bytes, which
//!   publish the record) is a loom atomic beside it, which a copy over
//!   those bytes also stores to, as real memory would.
//! * Under `cfg(loom)`, the `channel` module imports the loom `Segment` and
//!   `SegmentRing` (a `LoomRing` per ring, plus a memfd that is never
//!   mapped, for the ends' liveness locks) and the loom platform instead of
//!   the production ones; nothing else in it changes. Whether an end is
//!   open stays a real OFD lock, a system call outside the model, so the
//!   models keep every end open until the others are done: closes and
//!   hang-ups are not modelled. The zero-copy accessors
//!   (`Grant::as_mut_slice`, `ReadGrant::as_slice`) need a raw data
//!   pointer, which loom storage does not have; miri checks them instead
//!   (`engine/src/zero_copy_tests.rs`).
//! * `broken` holds deliberately wrong platforms, used to show that the
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
//! wake-up it is for), except the channel models with several senders,
//! which run one shallower (`model_shallower`). About 8 to 9 s of model
//! checking on the 2-core development VM (shared; the spread is load), the
//! largest the MPSC model (2.8 s), the ring fragments model (1.9 s) and
//! the full-ring blocking model (1.5 s). Models whose bug needs a deeper
//! bound ask for it themselves (`model_min_bound`):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p shmpipe-loom-tests
//! ```
//!
//! Deeper runs raise the bound: at `LOOM_MAX_PREEMPTIONS=4` the channel
//! models with several senders run at 3 (the MPSC model alone: 814 172
//! executions, 89 s; the hand-over model 287 260, 28 s); the whole suite
//! at 4 took about 8 min before the channel models replaced the hand-copied
//! ones (not measured since). Leave `LOOM_MAX_BRANCHES` at its default
//! (1000 branches per execution, far above what these models use). Without
//! `LOOM_MAX_PREEMPTIONS` loom explores every interleaving: the small models
//! finish (the takeover model in about 2.5 min), the ring models do not in
//! useful time. A few tiny models (`model_exhaustive`) ignore the bound
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

// The loom platform exists only under `--cfg loom` (in the engine), so the
// whole crate does too; without it, it compiles to nothing.
#![cfg(loom)]

pub use shmpipe_engine::loom_model::{futex, Loom, LoomRing, LoomU32, LoomU64, GRANULE};
use std::sync::atomic::Ordering;
use std::time::Duration;

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

/// [`model`] one preemption shallower than the environment asks (at least
/// 1; no bound stays no bound): for the models of the production channel
/// ends with several senders, whose executions grow about thirtyfold per
/// preemption (at 3 the MPSC model takes 814 172 executions, 89 s; at 2,
/// 32 046, 3 s). What they are for is found at 2 (the hand-over model's
/// weakened resync is caught at 2), and a deep run still deepens them.
pub fn model_shallower<F>(name: &str, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.map(|b| b.saturating_sub(1).max(1));
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
