//! What `WAIT` requests may make this process hold.
//!
//! A client whose `WAIT` finds no Listening instance is parked: the name
//! keeps its connection (one descriptor) until an instance listens or the
//! name vanishes. Anyone who can name the socket can send `WAIT` (abstract
//! sockets have no permissions), so without a bound one local user could
//! park connections until the process runs out of descriptors and can
//! create no pipe at all (issue 9, item 3). Parked waiters are therefore
//! bounded for the whole process:
//!
//! * in total, by [`total_cap`]: a quarter of the descriptor limit (at
//!   least 16, at most 4096), so that parked waiters alone never take the
//!   descriptors the process needs for its own pipes;
//! * per peer uid (the kernel's `SO_PEERCRED` of each waiting connection,
//!   never anything the peer says), by [`uid_cap`]: an eighth of the total,
//!   so that a flood from one uid leaves room for everybody else's waits;
//! * not at all when the process is close to its descriptor limit
//!   ([`near_limit`]): the name's thread then holds no connection beyond the
//!   one it is answering.
//!
//! A refused `WAIT` is answered `NoSystemResources` (Windows'
//! `ERROR_NO_SYSTEM_RESOURCES`): the server is out of a resource, which a
//! retry loop on `PipeBusy` (the answer that means "wait for an instance")
//! must not mistake for a busy pipe. Waiters whose client went away are
//! dropped when an instance wakes them, when the name vanishes, and,
//! before any refusal, by [`prune`], so that clients that gave up never
//! count against anyone.
//!
//! This file holds the budget and the parked [`Waiter`]s; the answer to
//! `WAIT` that parks them is the name's thread's (`acceptor`).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

/// Parked waiters of the whole process, in total and per uid.
#[derive(Default)]
struct Budget {
    total: usize,
    per_uid: HashMap<u32, usize>,
}

static BUDGET: std::sync::LazyLock<Mutex<Budget>> =
    std::sync::LazyLock::new(|| Mutex::new(Budget::default()));

fn budget() -> MutexGuard<'static, Budget> {
    BUDGET.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process's soft descriptor limit.
fn nofile() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    soft.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Most waiters the process parks at once.
pub(super) fn total_cap() -> usize {
    (nofile() / 4).clamp(16, 4096)
}

/// Most waiters the process parks at once for one peer uid.
pub(super) fn uid_cap() -> usize {
    (total_cap() / 8).max(2)
}

/// Descriptors kept free for the process's own use: a rendezvous
/// connection whose number reaches into them is not held.
fn reserve(limit: usize) -> usize {
    (limit / 16).clamp(16, 1024)
}

/// Whether `conn`, a descriptor this process was just given, shows the
/// process close to its descriptor limit. The kernel hands out the lowest
/// free number, so every number below `conn`'s is in use: a high number
/// means few are left (holes below it are not seen; the caps above bound
/// what the rendezvous holds in any case).
pub(super) fn near_limit(conn: BorrowedFd<'_>) -> bool {
    let limit = nofile();
    let n = usize::try_from(conn.as_raw_fd()).unwrap_or(usize::MAX);
    n.saturating_add(reserve(limit)) >= limit
}

/// Why a waiter was not parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    /// The process parks as many waiters as it allows.
    Total,
    /// This uid has as many waiters parked as it may.
    Uid,
    /// The process is close to its descriptor limit.
    Descriptors,
}

/// A parked waiter: the client's connection, counted in the budget until
/// it is dropped (answered, or closed with the name).
pub(super) struct Waiter {
    conn: OwnedFd,
    uid: u32,
}

impl Waiter {
    /// Parks `conn` of a peer the kernel says runs as `uid`, if the budget
    /// allows; gives it back otherwise.
    pub(super) fn park(conn: OwnedFd, uid: u32) -> Result<Waiter, (OwnedFd, Full)> {
        if near_limit(conn.as_fd()) {
            return Err((conn, Full::Descriptors));
        }
        let (total_cap, uid_cap) = (total_cap(), uid_cap());
        let mut b = budget();
        if b.total >= total_cap {
            return Err((conn, Full::Total));
        }
        let mine = b.per_uid.entry(uid).or_insert(0);
        if *mine >= uid_cap {
            return Err((conn, Full::Uid));
        }
        *mine += 1;
        b.total += 1;
        Ok(Waiter { conn, uid })
    }
}

impl AsFd for Waiter {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut b = budget();
        b.total = b.total.saturating_sub(1);
        if let Some(n) = b.per_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                b.per_uid.remove(&self.uid);
            }
        }
    }
}

/// Drops the waiters whose client is gone. A waiter never sends anything
/// after its request, so a readable connection (end of stream, or bytes it
/// had no business sending) is one to let go.
pub(super) fn prune(waiters: &mut Vec<Waiter>) {
    if waiters.is_empty() {
        return;
    }
    use rustix::event::{PollFd, PollFlags};
    let mut fds: Vec<PollFd<'_>> = waiters
        .iter()
        .map(|w| PollFd::new(&w.conn, PollFlags::IN))
        .collect();
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if rustix::event::poll(&mut fds, Some(&zero)).is_err() {
        return;
    }
    let gone: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
    drop(fds);
    let mut gone = gone.into_iter();
    waiters.retain(|_| !gone.next().unwrap_or(false));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (OwnedFd, OwnedFd) {
        rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap()
    }

    #[test]
    fn caps_leave_room_for_other_uids_and_the_process() {
        assert!(uid_cap() * 4 <= total_cap());
        assert!(total_cap() <= nofile() / 4 || total_cap() == 16);
    }

    #[test]
    fn a_uid_is_refused_beyond_its_cap_and_others_are_not() {
        // A uid no other test parks waiters for.
        let uid = 0x5eed_0001;
        let mut parked = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..uid_cap() {
            let (a, b) = pair();
            parked.push(Waiter::park(a, uid).map_err(|(_, f)| f).unwrap());
            peers.push(b);
        }
        let (a, _b) = pair();
        assert_eq!(Waiter::park(a, uid).err().map(|(_, f)| f), Some(Full::Uid));
        let (a, _b2) = pair();
        let other = Waiter::park(a, uid + 1).map_err(|(_, f)| f).unwrap();
        drop(other);
        // A client that left frees its place.
        drop(peers.pop());
        prune(&mut parked);
        assert_eq!(parked.len(), uid_cap() - 1);
        let (a, _b3) = pair();
        parked.push(Waiter::park(a, uid).map_err(|(_, f)| f).unwrap());
    }

    #[test]
    fn silent_connections_of_one_uid_leave_room_for_others() {
        use super::super::acceptor::{
            may_pend, Pending, MAX_PENDING_NEAR_LIMIT, MAX_PENDING_PER_UID,
        };
        let me = rustix::process::geteuid().as_raw();
        let other = me.wrapping_add(1);
        let (conn, _peer) = pair();
        let held = |uid: u32, n: usize| -> (Vec<Pending>, Vec<OwnedFd>) {
            let mut pending = Vec::new();
            let mut peers = Vec::new();
            for _ in 0..n {
                let (a, b) = pair();
                pending.push((a, std::time::Instant::now(), uid));
                peers.push(b);
            }
            (pending, peers)
        };
        // Another uid holds its share: ours still may wait.
        let (pending, _p) = held(other, MAX_PENDING_PER_UID);
        assert_eq!(may_pend(&conn, &pending), Some(me));
        // We hold ours: no more for us.
        let (pending, _p) = held(me, MAX_PENDING_PER_UID);
        assert_eq!(may_pend(&conn, &pending), None);
        // Close to the descriptor limit, only a few wait at all.
        let limit = nofile();
        if limit < 1 << 20 {
            let high = rustix::io::fcntl_dupfd_cloexec(&conn, (limit - 2) as i32).unwrap();
            assert!(near_limit(high.as_fd()));
            let (pending, _p) = held(other, MAX_PENDING_NEAR_LIMIT);
            assert_eq!(may_pend(&high, &pending), None);
            assert_eq!(may_pend(&high, &pending[1..]), Some(me));
        }
    }
}
