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
//!   `F_OFD_GETLK` (≈ 0.7 µs) whenever a wait has been idle for a park slice.
//!   This has Windows handle semantics, which a pid cannot give: a pid is
//!   reused, a zombie looks alive, and a handle can outlive its first process.
//!   (OFD locks, not classic `F_SETLK` ones: closing any descriptor of a file
//!   silently drops all of a process's classic locks on it.)
//! * **Is the process holding an admission lock still alive?** A lock is held
//!   by a process, not a handle, so its holder is named by a *process token*:
//!   pid and start time (field 22 of `/proc/PID/stat`). The pair names one
//!   process for the machine's uptime, so pid reuse cannot fool it, and a
//!   zombie counts as dead. Checked only after a waiter was stuck for a park
//!   slice. Processes that share one *admission lock* must share a pid
//!   namespace (they do for inheritance and for Unix-socket rendezvous on one
//!   host): a holder whose pid does not exist in ours counts as dead. Where
//!   `/proc/PID` is hidden (`hidepid`) the question falls back to whether the
//!   pid exists (`kill(pid, 0)`).

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

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

static TOKEN: AtomicU64 = AtomicU64::new(0);

/// This process's token: `pid << 32 | (start time & 0xffff_ffff)`. Never 0.
pub fn process_token() -> u64 {
    let t = TOKEN.load(Ordering::Relaxed);
    if t != 0 {
        return t;
    }
    static ATFORK: std::sync::Once = std::sync::Once::new();
    ATFORK.call_once(|| {
        extern "C" fn forget_token() {
            TOKEN.store(0, Ordering::Relaxed);
        }
        // SAFETY: registers a handler that only stores to an atomic, which is
        // async-signal-safe as a fork child handler must be.
        unsafe { libc::pthread_atfork(None, None, Some(forget_token)) };
    });
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    let start = read_stat(pid).map_or(0, |s| s.start) as u32;
    let t = (u64::from(pid) << 32) | u64::from(start);
    TOKEN.store(t, Ordering::Relaxed);
    t
}

struct Stat {
    state: u8,
    start: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` (field 2) may hold spaces and parentheses: fields resume after
    // the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    // `rest` starts at field 3 (state); start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start })
}

/// Whether the process named by `token` still runs: its pid exists, with the
/// same start time, and is not a zombie.
///
/// When `/proc/PID/stat` cannot be read (`/proc` mounted with `hidepid`, or
/// not mounted) the answer falls back to whether the pid exists at all
/// (`kill(pid, 0)`): a lock holder that might be alive is waited for rather
/// than overrun, since two writers at once would interleave their bytes.
pub fn token_alive(token: u64) -> bool {
    let pid = (token >> 32) as u32;
    match read_stat(pid) {
        None => pid_exists(pid),
        Some(s) => s.start as u32 == token as u32 && s.state != b'Z' && s.state != b'X',
    }
}

/// Whether a process with this pid exists (signal 0 checks without
/// sending; `EPERM` means it exists but belongs to someone else).
fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; `kill` only reads its arguments.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_token_is_alive_and_stable() {
        let t = process_token();
        assert_ne!(t, 0);
        assert_eq!(t, process_token());
        assert!(token_alive(t));
        // Same pid, different start time: a recycled pid is not us.
        assert!(!token_alive(t ^ 1));
    }

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

    #[test]
    fn dead_child_token_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Unreaped, the child stays visible (as a zombie once it exits).
        let start = read_stat(pid).expect("/proc/PID/stat of our child").start;
        let token = (u64::from(pid) << 32) | (start & 0xffff_ffff);
        let t0 = std::time::Instant::now();
        while read_stat(pid).is_some_and(|s| s.state != b'Z') {
            assert!(t0.elapsed() < std::time::Duration::from_secs(20));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!token_alive(token), "a zombie counts as dead");
        assert!(pid_exists(pid), "a zombie's pid still exists");
        child.wait().unwrap();
        assert!(!token_alive(token), "a reaped process is dead");
        assert!(!pid_exists(pid) || read_stat(pid).is_some_and(|s| s.start != start));
    }

    #[test]
    fn pid_exists_sees_other_users_processes() {
        assert!(pid_exists(std::process::id()));
        // pid 1 always exists; as non-root, kill(1, 0) is EPERM.
        assert!(pid_exists(1));
        assert!(!pid_exists(0));
        assert!(!pid_exists(u32::MAX));
    }
}
