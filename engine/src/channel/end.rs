//! One end of a channel segment, and what its two kinds of halves share.
//!
//! An [`End`] is the descriptor holding the end's role lock (its liveness:
//! the end is open while any copy of the descriptor is) and the mapping.
//! Dropping the last handle closes the descriptor first and only then
//! leaves the end's hang-up hints, so that a peer the hint wakes finds the
//! end already closed.
//!
//! The reader and writer bits of the ring's `hangup` word are hints, set
//! by the side that leaves and consumed by the side that waits: they only
//! shorten a wait, and a peer is declared gone on the kernel's word (its
//! role lock), never on a bit alone. The disconnected bit is state: once
//! set, every operation on the segment fails with [`Error::Disconnected`].
//!
//! On an admission lock a process is its slot token (the lock's owner,
//! whose death [`End::holder_alive`] detects), and a handle is that token
//! with a per-process handle number (`handle_id`, marked as the last
//! holder), which tells a handle whether it was the last to hold the lock.

use crate::layout::{Events, RingControl, HANGUP_DISCONNECTED};
#[cfg(not(loom))]
use crate::layout::{HANGUP_READER, HANGUP_WRITER};
#[cfg(not(loom))]
use crate::liveness::watch::{self, Registration};
use crate::liveness::{slot_held, EndLock, ProcessSlot};
use crate::ring::RingStorage;
// Under `--cfg loom` (the loom models only) this very code runs on rings
// of loom memory and the loom platform instead: see `loom_model`.
#[cfg(loom)]
use crate::loom_model::{Loom as Native, Segment, SegmentRing};
#[cfg(not(loom))]
use crate::segment::{Segment, SegmentRing};
#[cfg(loom)]
use crate::sync::Atomic32;
#[cfg(not(loom))]
use crate::sync::Native;
use crate::{Error, Result};
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

pub(super) fn events(s: &SegmentRing) -> &Events<Native> {
    &s.control().events.0
}

/// Sets a hang-up hint and wakes everybody, waiters for data, space and
/// the admission locks alike, so they re-check now rather than after their
/// next park slice.
pub(super) fn hang_up(s: &SegmentRing, bit: u32) {
    let ev = events(s);
    ev.hangup.fetch_or(bit, Relaxed);
    ev.readable.notify();
    ev.writable.notify();
    let locks = &s.control().locks.0;
    locks.writer.wake_waiters();
    locks.reader.0.wake_waiters();
}

/// `Err(Disconnected)` once the segment's connection was cut.
#[inline]
pub(super) fn check_connected(s: &SegmentRing) -> Result<()> {
    if events(s).hangup.load(Acquire) & HANGUP_DISCONNECTED != 0 {
        Err(Error::Disconnected)
    } else {
        Ok(())
    }
}

/// Consumes the hang-up hint for `bit`: `true` if it was set.
pub(super) fn take_hangup(s: &SegmentRing, bit: u32) -> bool {
    let ev = events(s);
    // Cheap load first: the fast path must not write the shared line.
    ev.hangup.load(Relaxed) & bit != 0 && ev.hangup.fetch_and(!bit, AcqRel) & bit != 0
}

/// One end of a segment, shared by the halves
/// ([`Sender`](super::Sender), [`Receiver`](super::Receiver)) that use it:
/// the descriptor holding the end's role lock, and the hang-up hints to
/// leave when the end closes.
pub struct End {
    // `None` only inside `drop` and `into_fd`.
    lock: Option<EndLock>,
    segment: Arc<Segment>,
    role: u32,
    hangups: Vec<(usize, u32)>,
    /// This process's name on the segment's admission locks, shared by the
    /// end's clones (made on first use).
    slot: Arc<ProcessSlot>,
    /// This end's place in the process's watcher ([`End::watch_peer`]).
    #[cfg(not(loom))]
    watch: Registration,
}

impl core::fmt::Debug for End {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("End").field("role", &self.role).finish()
    }
}

impl End {
    /// An end of `segment` whose descriptor holds the lock of `role`
    /// (checked), which leaves hang-up hint `bit` on ring `ring` for each
    /// entry of `hangups` when it closes.
    pub fn new(
        lock: EndLock,
        segment: Arc<Segment>,
        role: u32,
        hangups: &[(usize, u32)],
    ) -> Result<Arc<End>> {
        if !lock.holds_role(role)? {
            return Err(Error::WrongEnd);
        }
        End::checked(lock, segment, role, hangups, ProcessSlot::new())
    }

    /// [`End::new`], asking whether `lock` holds `role` through `probe`
    /// (another open file description of the segment's memfd, one that
    /// holds no lock of `role`: its creation descriptor, say) instead of
    /// through a reopen of the memfd (≈ 8 µs).
    ///
    /// ```
    /// use shmpipe_engine::channel::{End, ROLE_READER, ROLE_WRITER};
    /// use shmpipe_engine::liveness::EndLock;
    /// use std::os::fd::AsFd;
    /// let (seg, fd) = shmpipe_engine::Segment::create(&[4096], 0, [0; 8])?;
    /// let lock = EndLock::acquire(fd.as_fd(), ROLE_READER)?;
    /// let wrong = EndLock::acquire(fd.as_fd(), ROLE_WRITER)?;
    /// assert!(End::new_probed(wrong, seg.clone(), ROLE_READER, &[], fd.as_fd()).is_err());
    /// let end = End::new_probed(lock, seg, ROLE_READER, &[], fd.as_fd())?;
    /// assert_eq!(end.role(), ROLE_READER);
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn new_probed(
        lock: EndLock,
        segment: Arc<Segment>,
        role: u32,
        hangups: &[(usize, u32)],
        probe: BorrowedFd<'_>,
    ) -> Result<Arc<End>> {
        End::probe(&lock, role, probe)?;
        End::checked(lock, segment, role, hangups, ProcessSlot::new())
    }

    /// `Ok` if `lock` holds `role`, asked through `probe` (see
    /// [`End::new_probed`]).
    fn probe(lock: &EndLock, role: u32, probe: BorrowedFd<'_>) -> Result<()> {
        // Not held through any other description (its own lock is invisible
        // through its own), but seen held through the probe: this one
        // holds it. A probe that is the end's own description sees nothing.
        if lock.peer_alive(role)? || !crate::liveness::peer_alive(probe, role)? {
            return Err(Error::WrongEnd);
        }
        Ok(())
    }

    fn checked(
        lock: EndLock,
        segment: Arc<Segment>,
        role: u32,
        hangups: &[(usize, u32)],
        slot: ProcessSlot,
    ) -> Result<Arc<End>> {
        for &(ring, _) in hangups {
            if ring >= segment.ring_count() {
                return Err(Error::InvalidArgument("no such ring in this segment"));
            }
        }
        Ok(Arc::new(End {
            lock: Some(lock),
            segment,
            role,
            hangups: hangups.to_vec(),
            slot: Arc::new(slot),
            #[cfg(not(loom))]
            watch: Registration::new(),
        }))
    }

    /// Attaches the segment behind `fd` (a descriptor of an end, received
    /// from another process) and makes it an [`End`] (see [`End::new`]).
    pub fn attach(fd: OwnedFd, role: u32, hangups: &[(usize, u32)]) -> Result<Arc<End>> {
        let segment = Segment::attach(fd.as_fd())?;
        End::new(EndLock::from_fd(fd), segment, role, hangups)
    }

    /// [`End::attach`] for an end received together with `map`, a second
    /// descriptor of the same segment that its sender made to be mapped
    /// (an open file description holding no lock), and optionally `slot`,
    /// a third made for this process's slot on the segment
    /// ([`ProcessSlot::token_with`]): nothing is reopened through
    /// `/proc/self/fd`, now or at the first read or write. All are hostile
    /// input: `map` must be a sealed memfd of the same file as `fd`
    /// ([`Segment::attach_mapping`]); `fd` must hold `role`'s lock, asked
    /// through `map` (so `map` cannot be the end's own description, whose
    /// mapping would keep the end open after it closed); `slot` must be of
    /// the same file, and the slot lock taken through it must be seen
    /// through both `fd` and `map` (so it is neither: a slot lock on the
    /// end's description would outlive this process in every holder of the
    /// end, one on the mapping's in a forked child's mapping).
    ///
    /// ```
    /// use shmpipe_engine::channel::{End, ROLE_READER};
    /// use shmpipe_engine::liveness::{reopen, EndLock};
    /// use std::os::fd::AsFd;
    /// let (_seg, fd) = shmpipe_engine::Segment::create(&[4096], 0, [0; 8])?;
    /// let lock = EndLock::acquire(fd.as_fd(), ROLE_READER)?;
    /// let (map, slot) = (reopen(fd.as_fd())?, reopen(fd.as_fd())?);
    /// let end = End::attach_with_mapping(lock.into_fd(), map, Some(slot), ROLE_READER, &[])?;
    /// assert_eq!(end.role(), ROLE_READER);
    /// end.holder_token()?; // made already
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(not(loom))]
    pub fn attach_with_mapping(
        fd: OwnedFd,
        map: OwnedFd,
        slot: Option<OwnedFd>,
        role: u32,
        hangups: &[(usize, u32)],
    ) -> Result<Arc<End>> {
        let (segment, file) = Segment::attach_mapping_of(fd.as_fd(), map.as_fd())?;
        let lock = EndLock::from_fd(fd);
        End::probe(&lock, role, map.as_fd())?;
        let process_slot = ProcessSlot::new();
        if let Some(slot) = slot {
            let st = rustix::fs::fstat(&slot)?;
            if (st.st_dev, st.st_ino) != file {
                return Err(Error::Corrupt("slot descriptor is of another file"));
            }
            let token = process_slot.token_with(slot)?;
            if !slot_held(lock.fd(), token) || !slot_held(map.as_fd(), token) {
                // Dropping `process_slot` closes it and frees the byte.
                return Err(Error::Corrupt(
                    "slot descriptor is the end's or the mapping's",
                ));
            }
        }
        End::checked(lock, segment, role, hangups, process_slot)
    }

    fn lock(&self) -> &EndLock {
        self.lock.as_ref().expect("end lock present until drop")
    }

    /// The end's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.lock().fd()
    }

    /// The segment.
    pub fn segment(&self) -> &Arc<Segment> {
        &self.segment
    }

    /// This end's role.
    pub fn role(&self) -> u32 {
        self.role
    }

    /// Whether the end with `role` is open in some process.
    pub fn peer_alive(&self, role: u32) -> Result<bool> {
        Ok(self.lock().peer_alive(role)?)
    }

    /// This process's token for the segment's admission locks (its
    /// [`ProcessSlot`], made on first use, shared with the end's clones).
    pub fn holder_token(&self) -> Result<u64> {
        Ok(self.slot.token(self.fd())?)
    }

    /// Whether the holder named by `token` (read from a lock word: hostile)
    /// still lives. `me` is this process's own token: a lock held by another
    /// handle of this process is never taken over.
    pub fn holder_alive(&self, me: u64, token: u64) -> bool {
        token == me || slot_held(self.fd(), token)
    }

    /// A new end sharing this one's descriptor state (a `dup`): the role
    /// lock is held until both are closed.
    pub fn try_clone(&self) -> Result<Arc<End>> {
        let fd = rustix::io::fcntl_dupfd_cloexec(self.fd(), 0)?;
        Ok(Arc::new(End {
            lock: Some(EndLock::from_fd(fd)),
            segment: Arc::clone(&self.segment),
            role: self.role,
            hangups: self.hangups.clone(),
            slot: Arc::clone(&self.slot),
            #[cfg(not(loom))]
            watch: Registration::new(),
        }))
    }

    /// Gives up the end without leaving hang-up hints (the descriptor lives
    /// on elsewhere). A shared end gives a duplicate.
    pub fn into_fd(this: Arc<End>) -> Result<OwnedFd> {
        match Arc::try_unwrap(this) {
            Ok(mut end) => Ok(end.lock.take().expect("end lock present").into_fd()),
            Err(shared) => Ok(rustix::io::fcntl_dupfd_cloexec(shared.fd(), 0)?),
        }
    }

    /// Cuts the connection for good (Windows' `DisconnectNamedPipe`): every
    /// operation on the segment, in every process, now fails with
    /// [`Error::Disconnected`], and blocked ones are woken to see it.
    pub fn disconnect(&self) {
        for i in 0..self.segment.ring_count() {
            if let Ok(r) = self.segment.ring(i) {
                hang_up(&r, HANGUP_DISCONNECTED);
            }
        }
    }

    /// Has the kernel tell this process at once when the peer end (the
    /// other role of the pair: reader and writer, server and client) closes
    /// in every process, SIGKILL included: its hang-up hints are raised and
    /// every waiter on the segment woken, which then confirms with the
    /// kernel as for any hint (see [`watch`](crate::liveness::watch)).
    /// Without it, a waiter learns of a killed peer at its next park slice.
    ///
    /// Idempotent: the first call registers (an `inotify_add_watch`, then
    /// one look at whether the peer is already gone); later calls cost two
    /// relaxed loads. Blocking operations call it when they start to wait,
    /// never on their fast path. If the kernel's notice cannot be had
    /// (inotify limits, no `/proc`), nothing changes: the park-slice checks
    /// remain. The registration ends when the end is dropped.
    ///
    /// ```
    /// let (tx, rx) = shmpipe_engine::channel(4096)?;
    /// rx.end().watch_peer();
    /// rx.end().watch_peer(); // already watching: two loads
    /// drop(tx);
    /// assert!(!rx.is_peer_alive()?);
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    #[inline]
    pub fn watch_peer(&self) {
        #[cfg(not(loom))]
        if !self.watch.settled() {
            self.watch_peer_slow();
        }
    }

    /// Whether [`End::watch_peer`] registered this end with the process's
    /// watcher (so a killed peer is noticed at once): false before the
    /// first call, and where watching failed.
    ///
    /// ```
    /// let (_tx, rx) = shmpipe_engine::channel(4096)?;
    /// assert!(!rx.end().is_peer_watched());
    /// rx.end().watch_peer();
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn is_peer_watched(&self) -> bool {
        #[cfg(not(loom))]
        return self.watch.watching();
        #[cfg(loom)]
        false
    }

    /// How many times the watcher ran its whole series of timed re-checks
    /// on this end's watch (see [`watch::rechecks`]): for tests of the
    /// watcher's schedule.
    ///
    /// ```
    /// let (_tx, rx) = shmpipe_engine::channel(4096)?;
    /// assert_eq!(rx.end().peer_rechecks(), 0); // not watched yet
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    #[cfg(not(loom))]
    pub fn peer_rechecks(&self) -> u64 {
        watch::rechecks(&self.watch)
    }

    #[cfg(not(loom))]
    #[cold]
    fn watch_peer_slow(&self) {
        // Ends come in pairs of roles 0 and 1; any other role has no peer
        // this can name.
        if self.role > 1 {
            self.watch.give_up();
            return;
        }
        // The peer leaves the other hint on each ring this end leaves one
        // on (a reader's writer, a server's client on both rings).
        let hints: Vec<(usize, u32)> = self
            .hangups
            .iter()
            .filter_map(|&(ring, bit)| match bit {
                HANGUP_READER => Some((ring, HANGUP_WRITER)),
                HANGUP_WRITER => Some((ring, HANGUP_READER)),
                _ => None,
            })
            .collect();
        let segment = Arc::clone(&self.segment);
        watch::register(&self.watch, self.fd(), self.role ^ 1, move || {
            Box::new(move || {
                for &(ring, bit) in &hints {
                    if let Ok(r) = segment.ring(ring) {
                        hang_up(&r, bit);
                    }
                }
            })
        });
    }

    /// Whether [`End::disconnect`] was called on this segment.
    pub fn is_disconnected(&self) -> bool {
        self.segment
            .ring(0)
            .is_ok_and(|r| check_connected(&r).is_err())
    }
}

impl Drop for End {
    fn drop(&mut self) {
        // Out of the watcher before the descriptor it names closes.
        #[cfg(not(loom))]
        watch::deregister(&self.watch);
        // Close the descriptor first: if it was the end's last one, the
        // kernel drops the role lock now, and the peer that the hint wakes
        // sees the end closed instead of going back to sleep.
        if let Some(lock) = self.lock.take() {
            drop(lock);
            for &(ring, bit) in &self.hangups {
                if let Ok(r) = self.segment.ring(ring) {
                    hang_up(&r, bit);
                }
            }
        }
    }
}

/// A process-unique number for a sender or receiver handle; with the
/// process's slot ([`End::holder_token`]) it makes the handle's id on the
/// lock word ([`handle_id`]).
pub(super) fn handle_seq() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// The id of handle `seq` of the process whose holder token is `me`: unique
/// among the live handles of the segment, in every pid namespace (two live
/// processes never share a slot), and different in a forked child (which
/// draws its own slot) from the parent's copy of the same handle.
pub(super) fn handle_id(me: u64, seq: u32) -> u64 {
    ((me & 0xffff_ffff) << 32) | u64::from(seq)
}

/// Which ring of `end`'s segment `ring` is.
pub(super) fn ring_index_of(end: &End, ring: &SegmentRing) -> Result<usize> {
    let target: *const RingControl<Native> = ring.control();
    (0..end.segment().ring_count())
        .find(|&i| {
            end.segment()
                .ring(i)
                .is_ok_and(|r| core::ptr::eq(r.control(), target))
        })
        .ok_or(Error::InvalidArgument("ring not in this end's segment"))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::channel::{ROLE_READER, ROLE_WRITER};
    use crate::liveness::reopen;

    /// A mapping descriptor comes from another process: one of another
    /// file, the end's own description (whose mapping would keep the end
    /// open), a memfd not sealed as a segment is, or an end of the other
    /// role, are all refused, with an error and nothing mapped.
    #[test]
    fn a_received_mapping_descriptor_is_checked() {
        let (_seg, fd) = Segment::create(&[4096], 0, [0; 8]).unwrap();
        let reader = || EndLock::acquire(fd.as_fd(), ROLE_READER).unwrap().into_fd();
        let hangups = [(0, HANGUP_READER)];
        let attach = |end, map| End::attach_with_mapping(end, map, None, ROLE_READER, &hangups);

        let (_other, other_fd) = Segment::create(&[4096], 0, [0; 8]).unwrap();
        let e = attach(reader(), other_fd).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "another file: {e:?}");

        let end = reader();
        let own = rustix::io::dup(&end).unwrap();
        let e = attach(end, own).unwrap_err();
        assert!(
            matches!(e, Error::WrongEnd),
            "the end's own description: {e:?}"
        );

        let unsealed = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&unsealed, 8192).unwrap();
        let e = attach(reader(), unsealed).unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "an unsealed memfd: {e:?}");

        let writer = EndLock::acquire(fd.as_fd(), ROLE_WRITER).unwrap().into_fd();
        let e = attach(writer, reopen(fd.as_fd()).unwrap()).unwrap_err();
        assert!(matches!(e, Error::WrongEnd), "the other role: {e:?}");

        let end = attach(reader(), reopen(fd.as_fd()).unwrap()).unwrap();
        assert_eq!(end.role(), ROLE_READER);
    }

    /// A slot descriptor comes from another process too: one of another
    /// file, the end's own description or the mapping's are refused (a
    /// slot lock there would outlive this process); a fresh description
    /// becomes the end's slot.
    #[test]
    fn a_received_slot_descriptor_is_checked() {
        let (_seg, fd) = Segment::create(&[4096], 0, [0; 8]).unwrap();
        let fresh = || reopen(fd.as_fd()).unwrap();
        let hangups = [(0, HANGUP_READER)];
        let attach = |slot: &dyn Fn(&OwnedFd, &OwnedFd) -> OwnedFd| {
            let end = EndLock::acquire(fd.as_fd(), ROLE_READER).unwrap().into_fd();
            let map = fresh();
            let slot = slot(&end, &map);
            End::attach_with_mapping(end, map, Some(slot), ROLE_READER, &hangups)
        };
        let (_other, other_fd) = Segment::create(&[4096], 0, [0; 8]).unwrap();
        for (what, r) in [
            (
                "another file",
                attach(&|_, _| rustix::io::dup(&other_fd).unwrap()),
            ),
            (
                "the end's description",
                attach(&|e, _| rustix::io::dup(e).unwrap()),
            ),
            ("the mapping's", attach(&|_, m| rustix::io::dup(m).unwrap())),
        ] {
            let e = r.unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)), "{what}: {e:?}");
        }
        let end = attach(&|_, _| fresh()).unwrap();
        let me = end.holder_token().unwrap();
        assert!(slot_held(fd.as_fd(), me));
        drop(end);
        assert!(!slot_held(fd.as_fd(), me), "the slot goes with the end");
    }
}
