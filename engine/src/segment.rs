//! Shared segments: a sealed, pre-allocated memfd mapped into every process
//! that holds an end.
//!
//! Creation: `memfd_create` → `ftruncate` → `fallocate` (tmpfs allocates
//! pages lazily: without reserving them up front, a full `/dev/shm` or memory
//! cgroup turns a later store into SIGBUS; with it, creation fails with
//! `ENOSPC` instead) → header written → seals `SHRINK | GROW | SEAL` (nobody,
//! not even a hostile peer, can then truncate the file under our mapping) →
//! `mmap(MAP_SHARED)` via `memmap2::MmapRaw` (raw pointers only: peers write
//! the memory concurrently, so no `&[u8]` to it is ever formed).
//!
//! Attach: refuse a descriptor that is not sealed against shrinking, map it
//! (through a fresh open file description that holds no lock: a reopen via
//! `/proc/self/fd`, or one its sender made for the purpose and sent along,
//! [`Segment::attach_mapping`]), copy the header into process memory,
//! validate it ([`SegmentHeader::validate`]) and never read the shared copy
//! again.
//!
//! The memfd has no name in any filesystem: it travels by descriptor
//! (inheritance, `SCM_RIGHTS`) and disappears with its last descriptor and
//! mapping. Nothing is ever left in `/dev/shm`.
//!
//! Its mode is 0600: a process of another uid that gets at it through
//! `/proc/PID/fd` (which already takes ptrace rights over a holder) still
//! cannot open it. Reopening the memfd through `/proc/self/fd` (a fresh
//! open file description, see `liveness`: [`Segment::attach`], a process
//! slot) checks that mode: a process of another uid that is given an end on
//! purpose needs [`Segment::share_with`] first.

use crate::layout::{RingControl, SegmentHeader, HEADER_SIZE, MAX_CAPACITY, MAX_RINGS};
use crate::ring::{DirectStorage, RingStorage};
use crate::sync::Native;
use crate::{Error, Result};
use core::ptr::NonNull;
use memmap2::{MmapOptions, MmapRaw};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};
use std::sync::Arc;

/// A mapped shared segment with a validated layout.
pub struct Segment {
    map: MmapRaw,
    header: SegmentHeader,
}

impl core::fmt::Debug for Segment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Segment")
            .field("len", &self.map.len())
            .field("rings", &self.header.ring_count)
            .finish()
    }
}

const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW);

impl Segment {
    /// Creates a segment with one ring per entry of `capacities` (one or two;
    /// each a power of two from 256 B to 1 GiB). `user_flags` and `user` are
    /// stored in the header for the layer above. Returns the segment and its
    /// memfd.
    ///
    /// ```
    /// use shmpipe_engine::Segment;
    /// let (seg, fd) = Segment::create(&[64 * 1024], 0, [0; 8])?;
    /// assert_eq!(seg.ring_count(), 1);
    /// let again = Segment::attach(std::os::fd::AsFd::as_fd(&fd))?;
    /// assert_eq!(again.ring_count(), 1);
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn create(
        capacities: &[usize],
        user_flags: u32,
        user: [u64; 8],
    ) -> Result<(Arc<Segment>, OwnedFd)> {
        let mut header = SegmentHeader::plan(capacities)?;
        header.user_flags = user_flags;
        header.user = user;
        let len = header.total_size;
        let fd = create_memfd()?;
        rustix::fs::ftruncate(&fd, len)?;
        rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, len)?;
        rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS | SealFlags::SEAL)?;
        let map = MmapOptions::new().len(len as usize).map_raw(&fd)?;
        // SAFETY: the mapping is at least HEADER_SIZE bytes (plan() puts the
        // header first) and page aligned; nobody else has the memfd yet.
        unsafe { core::ptr::write(map.as_mut_ptr().cast::<SegmentHeader>(), header) };
        Ok((Arc::new(Segment { map, header }), fd))
    }

    /// Maps the segment behind `fd` and validates it.
    pub fn attach(fd: BorrowedFd<'_>) -> Result<Arc<Segment>> {
        let (size, _) = checked_size(fd)?;
        // Map through a fresh open file description that holds no locks: a
        // mapping keeps its file description alive, and mapping through an
        // end's own descriptor would keep that end's liveness lock held after
        // the end closed, for as long as anything in this process still
        // mapped the segment.
        let map_fd = crate::liveness::reopen(fd)?;
        Self::map_checked(map_fd.as_fd(), size)
    }

    /// Maps the segment behind `end` through `map`, another open file
    /// description of the same memfd that its sender made to be mapped
    /// (one that holds no liveness lock: see [`Segment::attach`]), so that
    /// attaching costs no reopen through `/proc/self/fd`. Both came from
    /// another process and are hostile: `map` must be a memfd sealed as
    /// [`Segment::attach`] requires, of the same file as `end` (same device
    /// and inode), and the header is validated as there. Whether `map`
    /// holds a lock is the caller's to check (see
    /// [`End::attach_with_mapping`](crate::channel::End::attach_with_mapping)).
    ///
    /// ```
    /// use shmpipe_engine::Segment;
    /// use std::os::fd::AsFd;
    /// let (_seg, fd) = Segment::create(&[64 * 1024], 0, [0; 8])?;
    /// let map = shmpipe_engine::liveness::reopen(fd.as_fd())?;
    /// let again = Segment::attach_mapping(fd.as_fd(), map.as_fd())?;
    /// assert_eq!(again.ring_count(), 1);
    /// let (_other, other_fd) = Segment::create(&[64 * 1024], 0, [0; 8])?;
    /// assert!(Segment::attach_mapping(fd.as_fd(), other_fd.as_fd()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attach_mapping(end: BorrowedFd<'_>, map: BorrowedFd<'_>) -> Result<Arc<Segment>> {
        Ok(Self::attach_mapping_of(end, map)?.0)
    }

    /// [`Segment::attach_mapping`], also returning the file's device and
    /// inode (to check further descriptors against).
    pub(crate) fn attach_mapping_of(
        end: BorrowedFd<'_>,
        map: BorrowedFd<'_>,
    ) -> Result<(Arc<Segment>, (u64, u64))> {
        let (size, b) = checked_size(map)?;
        let a = rustix::fs::fstat(end)?;
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
            return Err(Error::Corrupt("mapping descriptor is of another file"));
        }
        Ok((Self::map_checked(map, size)?, (a.st_dev, a.st_ino)))
    }

    /// Maps `size` bytes (checked by [`checked_size`]) of `map_fd` and
    /// validates the header.
    fn map_checked(map_fd: BorrowedFd<'_>, size: i64) -> Result<Arc<Segment>> {
        let map = MmapOptions::new()
            .len(size as usize)
            .map_raw(std::os::fd::AsRawFd::as_raw_fd(&map_fd))?;
        // SAFETY: the mapping holds at least HEADER_SIZE bytes and is page
        // aligned. A volatile read takes one snapshot that is validated
        // before use; the header type is plain integers, so any bytes are a
        // valid value.
        let header = unsafe { core::ptr::read_volatile(map.as_ptr().cast::<SegmentHeader>()) };
        header.validate(map.len())?;
        Ok(Arc::new(Segment { map, header }))
    }

    /// Lets a process running as `uid` attach the segment behind `fd` (the
    /// caller is about to hand it an end): a segment made 0600 by another
    /// uid is opened to group and others (0666), since the receiver
    /// reopens it by path. Nothing changes for `uid` 0, for the memfd's
    /// owner, or when the mode already allows it. Only the memfd's owner
    /// (or root) can widen it: `Err` otherwise.
    ///
    /// ```
    /// use shmpipe_engine::Segment;
    /// use std::os::fd::AsFd;
    /// let (_seg, fd) = Segment::create(&[64 * 1024], 0, [0; 8])?;
    /// let mode = |fd| rustix::fs::fstat(fd).map(|s| s.st_mode & 0o777);
    /// assert_eq!(mode(fd.as_fd())?, 0o600);
    /// Segment::share_with(fd.as_fd(), rustix::process::geteuid().as_raw())?;
    /// assert_eq!(mode(fd.as_fd())?, 0o600); // its owner needs nothing
    /// Segment::share_with(fd.as_fd(), 65534)?;
    /// assert_eq!(mode(fd.as_fd())?, 0o666);
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn share_with(fd: BorrowedFd<'_>, uid: u32) -> Result<()> {
        let st = rustix::fs::fstat(fd)?;
        if uid == 0 || st.st_uid == uid {
            return Ok(());
        }
        Self::share_with_any(fd)
    }

    /// Lets a process of any uid attach the segment behind `fd` (mode
    /// 0666), for a receiver whose uid is not known yet: a child that a
    /// privileged parent starts under another uid. As [`share_with`], only
    /// the memfd's owner (or root) can do it.
    ///
    /// ```
    /// use shmpipe_engine::Segment;
    /// use std::os::fd::AsFd;
    /// let (_seg, fd) = Segment::create(&[64 * 1024], 0, [0; 8])?;
    /// Segment::share_with_any(fd.as_fd())?;
    /// assert_eq!(rustix::fs::fstat(fd.as_fd())?.st_mode & 0o777, 0o666);
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    ///
    /// [`share_with`]: Segment::share_with
    pub fn share_with_any(fd: BorrowedFd<'_>) -> Result<()> {
        let mode = rustix::fs::fstat(fd)?.st_mode & 0o777;
        if mode & 0o066 != 0o066 {
            rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(mode | 0o066))?;
        }
        Ok(())
    }

    /// The validated header (process-local copy).
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// Number of rings.
    pub fn ring_count(&self) -> usize {
        self.header.ring_count as usize
    }

    /// The storage of ring `index`, for a [`Producer`](crate::Producer) or a
    /// [`Consumer`](crate::Consumer).
    pub fn ring(self: &Arc<Self>, index: usize) -> Result<SegmentRing> {
        if index >= self.ring_count() {
            return Err(Error::InvalidArgument("no such ring in this segment"));
        }
        let d = self.header.rings[index];
        let base = self.map.as_mut_ptr();
        // SAFETY: `validate` checked that the control block and the data
        // area lie inside the mapping, so these offsets stay in bounds.
        let (control, data) = unsafe {
            (
                base.add(d.control_offset as usize),
                base.add(d.data_offset as usize),
            )
        };
        Ok(SegmentRing {
            control: NonNull::new(control.cast()).expect("mapping is non-null"),
            data: NonNull::new(data).expect("mapping is non-null"),
            cap: d.capacity as usize,
            _segment: Arc::clone(self),
        })
    }
}

/// The size of the segment behind `fd`, a descriptor from elsewhere: it
/// must be a memfd sealed against resizing (so nobody can truncate it under
/// a mapping) but not against writing, of a size a segment can have. With
/// its `fstat`.
fn checked_size(fd: BorrowedFd<'_>) -> Result<(i64, rustix::fs::Stat)> {
    let seals =
        rustix::fs::fcntl_get_seals(fd).map_err(|_| Error::Corrupt("not a sealed memfd"))?;
    if !seals.contains(REQUIRED_SEALS) {
        return Err(Error::Corrupt("segment is not sealed against resizing"));
    }
    // Both ends write the rings: a segment sealed against writing could
    // never be mapped writable (the mmap would fail with a bare EPERM).
    if seals.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE) {
        return Err(Error::Corrupt("segment is sealed against writing"));
    }
    let st = rustix::fs::fstat(fd)?;
    let size = st.st_size;
    let max = (HEADER_SIZE + MAX_RINGS * (2 * MAX_CAPACITY)) as i64;
    if size < HEADER_SIZE as i64 || size > max {
        return Err(Error::Corrupt("segment size out of range"));
    }
    Ok((size, st))
}

fn create_memfd() -> Result<OwnedFd> {
    let base = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // NOEXEC_SEAL (Linux 6.3) keeps kernels with vm.memfd_noexec=2 happy and
    // silences their warning; older kernels reject the flag with EINVAL.
    let fd = match rustix::fs::memfd_create("shmpipe", base | MemfdFlags::NOEXEC_SEAL) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create("shmpipe", base)?,
        Err(e) => return Err(e.into()),
    };
    // The kernel makes memfds 0666 (0777 before NOEXEC_SEAL): owner only,
    // before the descriptor goes anywhere.
    rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o600))?;
    Ok(fd)
}

/// One ring of a [`Segment`]: the [`RingStorage`] the ring algorithm runs on
/// in production. Keeps the segment mapped.
pub struct SegmentRing {
    control: NonNull<RingControl<Native>>,
    data: NonNull<u8>,
    cap: usize,
    _segment: Arc<Segment>,
}

impl SegmentRing {
    /// The segment this ring belongs to.
    pub fn segment(&self) -> &Arc<Segment> {
        &self._segment
    }
}

// SAFETY: the pointers target a shared mapping kept alive by `_segment`;
// all shared words are atomics and the data area is accessed only through
// the ring protocol.
unsafe impl Send for SegmentRing {}
// SAFETY: as above.
unsafe impl Sync for SegmentRing {}

// SAFETY: `cap` comes from a validated header (a power of two in range) and
// the data area `data..data + cap` lies inside the mapping, which lives as
// long as `self`.
unsafe impl RingStorage for SegmentRing {
    type P = Native;

    #[inline]
    fn control(&self) -> &RingControl<Native> {
        // SAFETY: the control block is inside the mapping, 128-byte aligned
        // (validated), and made only of atomics, for which every bit pattern
        // (whatever a peer wrote) is valid.
        unsafe { self.control.as_ref() }
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.cap
    }

    #[inline]
    unsafe fn write(&self, at: usize, src: &[u8]) {
        debug_assert!(at + src.len() <= self.cap);
        // SAFETY: in bounds by the caller's contract; `src` is process memory
        // and cannot overlap the mapping's ring area in a way that matters
        // (copy_nonoverlapping is only unsound for overlap of the same bytes,
        // which a caller's own buffer inside our ring never is).
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

    #[inline]
    fn data_ptr(&self) -> Option<NonNull<u8>> {
        Some(self.data)
    }
}

// SAFETY: `data_ptr` always returns `Some`.
unsafe impl DirectStorage for SegmentRing {}
