//! The memory a ring runs on: the [`RingStorage`] contract (a control block
//! and a power-of-two data area, accessed only at the indices the ring
//! protocol hands out) and [`DirectStorage`] for storage that allows
//! zero-copy slices. References and `Arc`s of a storage are storages too.
//!
//! Implementations: [`HeapRing`](crate::HeapRing) (process memory, tests and
//! threads), [`SegmentRing`](crate::SegmentRing) (a shared-memory segment),
//! and loom's model under `--cfg loom`.

use crate::layout::RingControl;
use crate::sync::Platform;
use core::ptr::NonNull;

/// The memory a ring runs on: its control block and its data area.
///
/// # Safety
///
/// Implementors guarantee that `capacity()` is a constant power of two in
/// `MIN_CAPACITY..=MAX_CAPACITY`, that `write` and `read` access exactly the
/// bytes `at..at + len` of a data area of `capacity()` bytes that stays valid
/// as long as `self`, that `commit_word(at)` is the atomic word at bytes
/// `at..at + 8` of that area (on storages that copy through a pointer: the
/// same bytes `write` and `read` reach), and that `data_ptr`, when it returns
/// `Some`, points to that data area.
pub unsafe trait RingStorage {
    /// The atomics and futex the ring uses.
    type P: Platform;

    /// The ring's control block.
    fn control(&self) -> &RingControl<Self::P>;

    /// Size of the data area.
    fn capacity(&self) -> usize;

    /// Copies `src` to `at..at + src.len()` of the data area.
    ///
    /// # Safety
    ///
    /// `at + src.len() <= capacity()`, and by the ring protocol no other
    /// thread of this process accesses those bytes meanwhile.
    unsafe fn write(&self, at: usize, src: &[u8]);

    /// Copies `at..at + dst.len()` of the data area into `dst`.
    ///
    /// # Safety
    ///
    /// `at + dst.len() <= capacity()`, and by the ring protocol no other
    /// thread of this process writes those bytes meanwhile.
    unsafe fn read(&self, at: usize, dst: &mut [u8]);

    /// The commit word of the record slot at `at` (the first 8 bytes of the
    /// record header, see [`record`](crate::record)), as an atomic: the
    /// producer publishes a record by storing it, the consumer polls it.
    ///
    /// # Safety
    ///
    /// `at` is a multiple of [`ALIGN`](crate::record::ALIGN) below
    /// `capacity()`.
    unsafe fn commit_word(&self, at: usize) -> &<Self::P as Platform>::U64;

    /// Direct access to the data area, for zero-copy reservations and reads.
    /// `None` where the storage tracks every access (loom).
    fn data_ptr(&self) -> Option<NonNull<u8>> {
        None
    }
}

/// A storage whose [`RingStorage::data_ptr`] always returns `Some`: zero-copy
/// access is available.
///
/// # Safety
///
/// `data_ptr()` must never return `None`.
pub unsafe trait DirectStorage: RingStorage {}

// SAFETY: forwards every method to `T`, which upholds the contract.
unsafe impl<T: RingStorage + ?Sized> RingStorage for &T {
    type P = T::P;
    fn control(&self) -> &RingControl<T::P> {
        (**self).control()
    }
    fn capacity(&self) -> usize {
        (**self).capacity()
    }
    unsafe fn write(&self, at: usize, src: &[u8]) {
        // SAFETY: the caller upholds `T::write`'s contract.
        unsafe { (**self).write(at, src) }
    }
    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        // SAFETY: the caller upholds `T::read`'s contract.
        unsafe { (**self).read(at, dst) }
    }
    unsafe fn commit_word(&self, at: usize) -> &<T::P as Platform>::U64 {
        // SAFETY: the caller upholds `T::commit_word`'s contract.
        unsafe { (**self).commit_word(at) }
    }
    fn data_ptr(&self) -> Option<NonNull<u8>> {
        (**self).data_ptr()
    }
}
// SAFETY: forwards to `T`.
unsafe impl<T: DirectStorage + ?Sized> DirectStorage for &T {}

// SAFETY: forwards every method to `T`, which upholds the contract.
unsafe impl<T: RingStorage + ?Sized> RingStorage for std::sync::Arc<T> {
    type P = T::P;
    fn control(&self) -> &RingControl<T::P> {
        (**self).control()
    }
    fn capacity(&self) -> usize {
        (**self).capacity()
    }
    unsafe fn write(&self, at: usize, src: &[u8]) {
        // SAFETY: the caller upholds `T::write`'s contract.
        unsafe { (**self).write(at, src) }
    }
    unsafe fn read(&self, at: usize, dst: &mut [u8]) {
        // SAFETY: the caller upholds `T::read`'s contract.
        unsafe { (**self).read(at, dst) }
    }
    unsafe fn commit_word(&self, at: usize) -> &<T::P as Platform>::U64 {
        // SAFETY: the caller upholds `T::commit_word`'s contract.
        unsafe { (**self).commit_word(at) }
    }
    fn data_ptr(&self) -> Option<NonNull<u8>> {
        (**self).data_ptr()
    }
}
// SAFETY: forwards to `T`.
unsafe impl<T: DirectStorage + ?Sized> DirectStorage for std::sync::Arc<T> {}
