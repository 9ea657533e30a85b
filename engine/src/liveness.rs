//! Peer liveness, tied to handles and processes by kernel objects.
//!
//! Two questions, two mechanisms:
//!
//! * **Is any handle of the peer end still open, in any process?** Each end
//!   of a segment is an *open file description* (OFD) of the segment's memfd,
//!   holding an OFD read lock on the byte that names its role ([`EndLock`]).
//!   Duplicating the handle (`dup`, inheritance across `fork`/`exec`,
//!   `SCM_RIGHTS`) shares the OFD and so the lock; the kernel drops the lock
//!   when the last descriptor of that OFD closes, including when the last
//!   holding process is SIGKILLed. The peer asks the kernel with
//!   `F_OFD_GETLK` (≈ 0.7 µs) whenever the kernel says a description of the
//!   segment was released (module [`watch`]: one inotify watcher per
//!   process, whose close events come ≈ 0.2 ms after a `kill`; a blocked
//!   end is registered when it starts to wait), and in any case whenever a
//!   wait has been idle for a park slice (the fallback where inotify cannot
//!   be had). This has Windows handle semantics, which a pid cannot give: a pid is
//!   reused, a zombie looks alive, and a handle can outlive its first process.
//!   (OFD locks, not classic `F_SETLK` ones: closing any descriptor of a file
//!   silently drops all of a process's classic locks on it.)
//! * **Is the process holding an admission lock still alive?** A lock is held
//!   by a process, not a handle, so its holder is named by a *process slot*
//!   ([`ProcessSlot`], module `slot`): an exclusive OFD lock on a byte of the
//!   segment's memfd, taken through an open file description private to the
//!   process, which the kernel drops when the process dies. The lock word
//!   holds the slot's token; a waiter stuck for a park slice asks the kernel
//!   whether that slot is still locked ([`slot_held`]). No pid is involved,
//!   so a holder in another pid namespace, a `/proc` mounted with `hidepid`,
//!   a recycled pid or a zombie cannot fool it; a forked child draws its own
//!   slot (its copy of the parent's description is closed at fork). The
//!   pipe layer's pending-write claims name their claimant by the same slot
//!   (a claim is withdrawn by its process when the write ends, so a claim
//!   whose slot is free belongs to a dead process): one mechanism for every
//!   "is this process alive" question.

mod slot;
#[cfg(not(loom))]
pub mod watch;

pub use slot::{slot_held, token_slot, ProcessSlot, SLOTS, SLOT_BASE};

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::io;

/// An OFD lock on one role byte of a segment: while any descriptor of this
/// OFD is open, [`peer_alive`] on that role reports `true` to the other side.
#[derive(Debug)]
pub struct EndLock {
    fd: OwnedFd,
}

/// Lock bytes live far beyond the end of any segment, so they never overlap
/// data (locks beyond end-of-file are allowed).
const LOCK_BASE: i64 = 1 << 40;

fn ofd_lock(
    fd: BorrowedFd<'_>,
    cmd: libc::c_int,
    ty: libc::c_short,
    role: u32,
) -> io::Result<libc::flock> {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { core::mem::zeroed() };
    fl.l_type = ty;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = LOCK_BASE + i64::from(role);
    fl.l_len = 1;
    // Must be 0 for OFD locks.
    fl.l_pid = 0;
    // SAFETY: `fd` is a descriptor the caller's `BorrowedFd` keeps open for
    // the duration of the call; `cmd` is an OFD lock command, which reads
    // and writes exactly one `flock`, and `fl` is a valid `flock` that we
    // borrow exclusively.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl)
}

/// Opens a new open file description of the same file as `fd` (a plain `dup`
/// would share the OFD, and with it the locks).
pub fn reopen(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    Ok(f.into())
}

impl EndLock {
    /// Makes a new OFD of the segment behind `segment_fd` and takes the role
    /// lock on it.
    pub fn acquire(segment_fd: BorrowedFd<'_>, role: u32) -> io::Result<EndLock> {
        let fd = reopen(segment_fd)?;
        ofd_lock(
            fd.as_fd(),
            libc::F_OFD_SETLK,
            libc::F_RDLCK as libc::c_short,
            role,
        )?;
        Ok(EndLock { fd })
    }

    /// Adopts a descriptor that already carries a role lock (one inherited
    /// from a parent or received over a socket: same OFD, same lock).
    pub fn from_fd(fd: OwnedFd) -> EndLock {
        EndLock { fd }
    }

    /// The descriptor (to map the segment, to pass the end on).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Gives up the wrapper, keeping the descriptor (and the lock).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Whether this end's own OFD holds the lock of `role`: tells which end a
    /// descriptor received from elsewhere really is. A process's own locks
    /// are invisible through its own OFD, so the question goes through a
    /// fresh OFD of the same file.
    pub fn holds_role(&self, role: u32) -> io::Result<bool> {
        if self.peer_alive(role)? {
            return Ok(false); // another OFD holds it
        }
        let probe = reopen(self.fd.as_fd())?;
        peer_alive(probe.as_fd(), role)
    }

    /// Whether some *other* OFD holds the lock of `role`: is the end with that
    /// role open anywhere? Asked through this end's own OFD, whose own locks
    /// are never reported.
    pub fn peer_alive(&self, role: u32) -> io::Result<bool> {
        let fl = ofd_lock(
            self.fd.as_fd(),
            libc::F_OFD_GETLK,
            libc::F_WRLCK as libc::c_short,
            role,
        )?;
        Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
    }
}

/// Whether `peer` (the role lock of the other end) is held: a convenience for
/// callers that hold only a descriptor.
pub fn peer_alive(fd: BorrowedFd<'_>, role: u32) -> io::Result<bool> {
    let fl = ofd_lock(fd, libc::F_OFD_GETLK, libc::F_WRLCK as libc::c_short, role)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_locks_identify_roles_and_follow_the_descriptor() {
        let (_seg, fd) = crate::Segment::create(&[4096], 0, [0; 8]).unwrap();
        let a = EndLock::acquire(fd.as_fd(), 0).unwrap();
        let b = EndLock::acquire(fd.as_fd(), 1).unwrap();
        assert!(a.holds_role(0).unwrap() && !a.holds_role(1).unwrap());
        assert!(b.holds_role(1).unwrap() && !b.holds_role(0).unwrap());
        assert!(a.peer_alive(1).unwrap() && b.peer_alive(0).unwrap());
        // A duplicate shares the OFD: closing the original keeps the role.
        let dup = EndLock::from_fd(rustix::io::dup(b.fd()).unwrap());
        drop(b);
        assert!(a.peer_alive(1).unwrap());
        drop(dup);
        assert!(!a.peer_alive(1).unwrap());
    }
}
