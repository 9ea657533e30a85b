//! A ring on ordinary heap memory, for tests, miri and single-process use.
//! Runs exactly the production algorithm (`Native` atomics); only the memory
//! differs from a shared segment.

use crate::layout::{RingControl, MAX_CAPACITY, MIN_CAPACITY};
use crate::ring::{Consumer, DirectStorage, Producer, RingStorage};
use crate::sync::Native;
use crate::{Error, Result};
use core::ptr::NonNull;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::Arc;

/// A ring's control block and data area on the heap.
pub struct HeapRing {
    control: Box<RingControl<Native>>,
    data: NonNull<u8>,
    cap: usize,
}

// SAFETY: the data area is only accessed through the ring protocol, which
// synchronises producer and consumer with atomics; the pointer is owned.
unsafe impl Send for HeapRing {}
// SAFETY: as above.
unsafe impl Sync for HeapRing {}

impl HeapRing {
    /// A ring with a data area of `capacity` bytes (a power of two, 256 B to
    /// 1 GiB).
    ///
    /// ```
    /// use shmpipe_engine::HeapRing;
    /// let (mut tx, mut rx) = HeapRing::new(4096)?.split();
    /// assert!(tx.try_push(b"hi", 0)?);
    /// let mut buf = [0u8; 8];
    /// assert_eq!(rx.read_stream(&mut buf)?, Some(2));
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn new(capacity: usize) -> Result<Self> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(Error::InvalidArgument(
                "ring capacity must be a power of two between 256 B and 1 GiB",
            ));
        }
        let layout = Layout::from_size_align(capacity, 64).expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let data = NonNull::new(ptr).ok_or(Error::Io(std::io::ErrorKind::OutOfMemory.into()))?;
        Ok(HeapRing {
            control: Box::new(RingControl::new()),
            data,
            cap: capacity,
        })
    }
}

impl HeapRing {
    /// Hands out the ring's producer and consumer: the only ones safe code
    /// can have, since the ring is consumed and both halves share it through
    /// an [`Arc`] (rtrb-style). The halves may move to different threads.
    ///
    /// ```
    /// use shmpipe_engine::HeapRing;
    /// let (mut tx, mut rx) = HeapRing::new(4096)?.split();
    /// let writer = std::thread::spawn(move || {
    ///     while !tx.try_push(b"ping", 0).unwrap() {}
    /// });
    /// let mut buf = [0u8; 8];
    /// let n = loop {
    ///     if let Some(n) = rx.read_stream(&mut buf)? {
    ///         break n;
    ///     }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(&buf[..n], b"ping");
    /// writer.join().unwrap();
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn split(self) -> (Producer<Arc<HeapRing>>, Consumer<Arc<HeapRing>>) {
        let ring = Arc::new(self);
        // SAFETY: the ring was owned by value and is now shared only by
        // these two halves: no other producer or consumer of it exists, and
        // making one from the `Arc` a half exposes takes `unsafe` again.
        // `new_unsynced` fails only on a bad capacity, which `new` refused;
        // a fresh ring's shared state is all zero, which is what an
        // unsynced half starts from.
        unsafe {
            (
                Producer::new_unsynced(Arc::clone(&ring)).expect("checked capacity"),
                Consumer::new_unsynced(ring).expect("checked capacity"),
            )
        }
    }
}

impl Drop for HeapRing {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.cap, 64).expect("valid layout");
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.data.as_ptr(), layout) };
    }
}

// SAFETY: the data area has exactly `cap` bytes (a checked power of two) and
// lives as long as `self`; `write`/`read` stay inside it by their contract.
unsafe impl RingStorage for HeapRing {
    type P = Native;

    fn control(&self) -> &RingControl<Native> {
        &self.control
    }

    fn capacity(&self) -> usize {
        self.cap
    }

    #[inline]
    unsafe fn write(&self, at: usize, src: &[u8]) {
        debug_assert!(at + src.len() <= self.cap);
        // SAFETY: in bounds by the caller's contract; `src` cannot overlap
        // the ring's private allocation.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), self.data.as_ptr().add(at), src.len())
        };
    }

    #[inline]
    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        debug_assert!(at + dst.len() <= self.cap);
        // SAFETY: in bounds by the caller's contract.
        unsafe {
            core::ptr::copy_nonoverlapping(self.data.as_ptr().add(at), dst.as_mut_ptr(), dst.len())
        };
    }

    #[inline]
    unsafe fn commit_word(&self, at: usize) -> &core::sync::atomic::AtomicU64 {
        debug_assert!(at % crate::record::ALIGN == 0 && at < self.cap);
        // SAFETY: `at < cap` and a multiple of 64 by the caller's contract,
        // and the data area is 64-byte aligned, so the 8 bytes are in bounds
        // and aligned for an `AtomicU64`, for which any bit pattern is valid.
        // Plain copies reach these bytes only when the ring protocol orders
        // them with every atomic access (a payload of another lap).
        unsafe {
            &*self
                .data
                .as_ptr()
                .add(at)
                .cast::<core::sync::atomic::AtomicU64>()
        }
    }

    fn data_ptr(&self) -> Option<NonNull<u8>> {
        Some(self.data)
    }
}

// SAFETY: `data_ptr` always returns `Some`.
unsafe impl DirectStorage for HeapRing {}
