//! The loom platform and loom-checked ring storage, inside the engine so
//! that the production [`channel`](crate::channel) code itself runs under
//! loom. Compiled only with `--cfg loom` (the `shmpipe-loom-tests` models,
//! which re-export everything here; see that crate for how to run them).
//!
//! * [`Loom`] implements [`Platform`] with loom atomics, the production
//!   fence ([`crate::sync::fence_seq_cst`], loom's fence under `cfg(loom)`),
//!   and a futex model ([`futex`]).
//! * [`LoomRing`] implements [`RingStorage`] with the data area split into
//!   64-byte loom cells, so loom checks every byte the ring copies.
//! * [`Segment`] and [`SegmentRing`] stand in for the shared segment under
//!   `cfg(loom)`: the `channel` files import them (and [`Loom`] as their
//!   platform) instead of the memfd-backed ones, so [`crate::Sender`] and
//!   [`crate::Receiver`] run unchanged on a [`LoomRing`]. The ends'
//!   descriptors stay real (a memfd without a mapping carries the liveness
//!   locks), so liveness checks are real system calls, outside the model.

use crate::layout::{RingControl, SegmentHeader, MIN_CAPACITY};
use crate::ring::RingStorage;
use crate::sync::{Atomic32, Atomic64, Platform};
use crate::{Error, Result};
use core::ptr::NonNull;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU64};
use rustix::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A 32-bit loom atomic (futex words).
#[derive(Debug)]
pub struct LoomU32(pub AtomicU32);

/// A 64-bit loom atomic (positions, counters, lock words).
#[derive(Debug)]
pub struct LoomU64(pub AtomicU64);

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
    // (`crate::sync::fence_seq_cst`, loom's fence under
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
///
/// The commit word of each slot (its first 8 bytes) is a loom atomic beside
/// the cell: a copy that covers those bytes (a payload of another lap) also
/// stores them into the atomic, as it overwrites the word in real memory,
/// so a model sees the stale payload bytes a real consumer would.
pub struct LoomRing<P: Platform = Loom> {
    control: Box<RingControl<P>>,
    data: Vec<UnsafeCell<[u8; GRANULE]>>,
    words: Vec<P::U64>,
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
            words: (0..capacity / GRANULE).map(|_| P::U64::new(0)).collect(),
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
            });
            if off == 0 && n >= 8 {
                let word = u64::from_le_bytes(src[done..done + 8].try_into().expect("8 bytes"));
                self.words[(at + done) / GRANULE].store(word, Ordering::Relaxed);
            }
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

    unsafe fn commit_word(&self, at: usize) -> &P::U64 {
        assert_eq!(at % GRANULE, 0, "commit word off a slot boundary");
        &self.words[at / GRANULE]
    }

    fn data_ptr(&self) -> Option<NonNull<u8>> {
        None
    }
}

/// The stand-in for [`crate::segment::Segment`] under `cfg(loom)`: rings
/// on loom memory, and a memfd (never mapped) for the ends' liveness locks.
pub struct Segment {
    rings: Vec<Arc<LoomRing>>,
}

impl core::fmt::Debug for Segment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Segment")
            .field("rings", &self.rings.len())
            .finish()
    }
}

impl Segment {
    /// A segment with one [`LoomRing`] per entry of `capacities` (checked
    /// as the real segment checks them), and a memfd for the ends' locks.
    /// Call it inside a loom model.
    pub fn create(
        capacities: &[usize],
        _user_flags: u32,
        _user: [u64; 8],
    ) -> Result<(Arc<Segment>, OwnedFd)> {
        SegmentHeader::plan(capacities)?;
        let fd = rustix::fs::memfd_create("shmpipe-loom", rustix::fs::MemfdFlags::CLOEXEC)?;
        let rings = capacities
            .iter()
            .map(|&cap| Arc::new(LoomRing::new(cap)))
            .collect();
        Ok((Arc::new(Segment { rings }), fd))
    }

    /// Not available under loom: a model's ends come from
    /// [`crate::channel`] and `try_clone`.
    pub fn attach(_fd: BorrowedFd<'_>) -> Result<Arc<Segment>> {
        Err(Error::InvalidArgument(
            "segments cannot be attached under loom",
        ))
    }

    /// Number of rings.
    pub fn ring_count(&self) -> usize {
        self.rings.len()
    }

    /// The storage of ring `index`.
    pub fn ring(self: &Arc<Self>, index: usize) -> Result<SegmentRing> {
        let ring = self
            .rings
            .get(index)
            .ok_or(Error::InvalidArgument("no such ring in this segment"))?;
        Ok(SegmentRing {
            ring: Arc::clone(ring),
            segment: Arc::clone(self),
        })
    }
}

/// The stand-in for [`crate::segment::SegmentRing`] under `cfg(loom)`.
pub struct SegmentRing {
    ring: Arc<LoomRing>,
    segment: Arc<Segment>,
}

impl SegmentRing {
    /// The segment this ring belongs to.
    pub fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }
}

// SAFETY: forwards every method to the `LoomRing`, which upholds the
// contract.
unsafe impl RingStorage for SegmentRing {
    type P = Loom;

    fn control(&self) -> &RingControl<Loom> {
        self.ring.control()
    }

    fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    unsafe fn write(&self, at: usize, src: &[u8]) {
        // SAFETY: the caller upholds the contract of `write`.
        unsafe { self.ring.write(at, src) }
    }

    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        // SAFETY: the caller upholds the contract of `read`.
        unsafe { self.ring.read(at, dst) }
    }

    unsafe fn commit_word(&self, at: usize) -> &LoomU64 {
        // SAFETY: the caller upholds the contract of `commit_word`.
        unsafe { self.ring.commit_word(at) }
    }
}
