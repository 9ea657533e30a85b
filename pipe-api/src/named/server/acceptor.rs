//! The name's thread: it accepts connections on the name's socket (owner),
//! dispatches their requests (`OPEN`, `WAIT`, `STATE`, `CREATE`, `INFO`:
//! see the `wire` module), watches the links to other processes (both
//! roles), and notices when the last ServerGone client left.
//!
//! The thread never waits on a peer: a request not there yet is polled for
//! (a silent connection is dropped after [`REQUEST_TIMEOUT`], and silent
//! connections are bounded per uid and in all, see [`may_pend`]), replies
//! are a few small packets sent with a timeout, and the only slow work (a
//! client forwarded to a member) runs on a thread of its own. When the
//! process is out of descriptors, accepting pauses for [`ACCEPT_PAUSE`]
//! while the name lives on. When the name vanishes, whoever still waits
//! for an answer hears `FileNotFound`.

use super::claim::reply_open_error;
use super::instance::{Instance, Phase};
use super::link;
use super::registry::{NameEntry, Slot, REGISTRY};
use super::waiters::{self, Full, Waiter};
use super::{err, lock};
use crate::error::ErrorKind;
use crate::info::{ReadMode, WaitMode};
use crate::named::options::{Access, Direction};
use crate::named::status::{self, InstanceState, InstanceStatus, PipeStatus};
use crate::named::wire;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long a connection may take to send its request; also bounds every
/// send of a reply.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(200);
/// Most connections whose request has not arrived yet: in all, from one
/// peer uid, and when the process is close to its descriptor limit.
const MAX_PENDING: usize = 64;
pub(super) const MAX_PENDING_PER_UID: usize = 16;
pub(super) const MAX_PENDING_NEAR_LIMIT: usize = 4;

/// A connection whose request has not arrived yet: since when, and its
/// peer's uid (as the kernel reports it).
pub(super) type Pending = (OwnedFd, Instant, u32);

/// Whether `conn`, whose request is not there yet, may wait for it (its
/// peer's uid if so). Silent connections cost a descriptor each for up to
/// [`REQUEST_TIMEOUT`]: one uid's flood of them must leave room for other
/// users' clients, and none may take the descriptors the process needs
/// for its own pipes.
pub(super) fn may_pend(conn: &OwnedFd, pending: &[Pending]) -> Option<u32> {
    let cap = if waiters::near_limit(conn.as_fd()) {
        MAX_PENDING_NEAR_LIMIT
    } else {
        MAX_PENDING
    };
    if pending.len() >= cap {
        return None;
    }
    let uid = wire::peer_cred(conn).ok()?.uid;
    let mine = pending.iter().filter(|(.., u)| *u == uid).count();
    (mine < MAX_PENDING_PER_UID).then_some(uid)
}

impl NameEntry {
    /// The name's thread: accepts requests (owner), watches the links to
    /// other processes (both roles), and, while ServerGone connections
    /// exist, looks now and then whether their clients left (the name must
    /// vanish then, and pending waits learn it: spec 4.5, SEM-058).
    pub(super) fn run(self: Arc<Self>) {
        // Request connections accepted before their packet arrived.
        let mut pending: Vec<Pending> = Vec::new();
        // Whoever is still waiting for an answer when the thread ends hears
        // that the name is gone (as the accept that came too late does).
        let gone = |pending: Vec<Pending>| {
            for (c, ..) in pending {
                refuse_vanished(&c);
            }
            // Connections still in the backlog would be reset when the
            // socket closes: answer them too (no new ones can come once it
            // is shut down).
            if let Some(l) = self.listener.get() {
                while let Ok(c) = rustix::net::accept_with(l, rustix::net::SocketFlags::CLOEXEC) {
                    refuse_vanished(&c);
                }
            }
        };
        // Accepting stopped for a moment: the process ran out of
        // descriptors (or memory), and the backlog waits meanwhile.
        let mut paused_until: Option<Instant> = None;
        loop {
            let (watch, ticking) = {
                let mut inner = lock(&self.inner);
                if inner.vanished {
                    drop(inner);
                    return gone(pending);
                }
                (link::Watch::collect(&mut inner), !inner.zombies.is_empty())
            };
            let paused = paused_until.filter(|t| Instant::now() < *t);
            let listener = self.listener.get().filter(|_| paused.is_none());
            let mut fds = Vec::with_capacity(watch.len() + 2);
            fds.push(rustix::event::PollFd::new(
                &self.wake,
                rustix::event::PollFlags::IN,
            ));
            if let Some(l) = listener {
                fds.push(rustix::event::PollFd::new(l, rustix::event::PollFlags::IN));
            }
            let first_link = fds.len();
            for w in &watch {
                fds.push(rustix::event::PollFd::new(
                    w.fd(),
                    rustix::event::PollFlags::IN,
                ));
            }
            let first_pending = fds.len();
            for (c, ..) in &pending {
                fds.push(rustix::event::PollFd::new(c, rustix::event::PollFlags::IN));
            }
            let mut timeout = ticking.then_some(Duration::from_millis(20));
            if let Some(t) = paused {
                let left = t.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(left, |x| x.min(left)));
            }
            if let Some(oldest) = pending.iter().map(|(_, t, _)| *t).min() {
                let left = REQUEST_TIMEOUT.saturating_sub(oldest.elapsed());
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            let timeout = timeout.map(|t| rustix::time::Timespec {
                tv_sec: t.as_secs() as i64,
                tv_nsec: i64::from(t.subsec_nanos()),
            });
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    drop(fds);
                    return gone(pending);
                }
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            if ready[0] {
                let mut drain = [0u8; 8];
                let _ = rustix::io::read(&self.wake, &mut drain);
            }
            // Requests whose packet came meanwhile; silent ones expire.
            let mut waiting = Vec::with_capacity(pending.len());
            for ((c, since, uid), r) in pending.drain(..).zip(&ready[first_pending..]) {
                if *r {
                    self.serve_request(c);
                } else if since.elapsed() < REQUEST_TIMEOUT {
                    waiting.push((c, since, uid));
                }
            }
            pending = waiting;
            if let Some(l) = listener {
                if ready[1] {
                    match self.accept_all(l, &mut pending) {
                        Accepting::Done => paused_until = None,
                        Accepting::Starved => {
                            paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                        }
                        Accepting::Shut => return gone(pending),
                    }
                }
            }
            for (w, _) in watch
                .iter()
                .zip(&ready[first_link..first_pending])
                .filter(|(_, r)| **r)
            {
                self.on_link(w);
            }
            if ticking {
                let mut inner = lock(&self.inner);
                self.vanish_if_empty(&mut inner);
            }
        }
    }

    /// Accepts every pending connection and serves the requests already
    /// there; the others wait in `pending`.
    fn accept_all(self: &Arc<Self>, listener: &OwnedFd, pending: &mut Vec<Pending>) -> Accepting {
        use rustix::io::Errno;
        loop {
            let conn = match rustix::net::accept_with(listener, rustix::net::SocketFlags::CLOEXEC) {
                Ok(c) => c,
                Err(Errno::INTR | Errno::CONNABORTED) => continue,
                Err(Errno::AGAIN) => return Accepting::Done,
                // Passing: the name lives on, its clients wait a little.
                Err(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM) => {
                    return Accepting::Starved
                }
                Err(_) => return Accepting::Shut,
            };
            if lock(&self.inner).vanished {
                refuse_vanished(&conn);
                return Accepting::Shut;
            }
            // Requests are served on this thread, which never waits on a
            // peer: a request not there yet is polled for (a silent peer is
            // dropped after REQUEST_TIMEOUT), and replies are a few small
            // packets, with sends bounded by a timeout all the same.
            if wire::set_send_timeout(conn.as_fd(), Some(REQUEST_TIMEOUT)).is_err() {
                continue;
            }
            if let Some(conn) = self.serve_request(conn) {
                // Dropped if it may not wait (the client sees its
                // connection close, and tries again).
                if let Some(uid) = may_pend(&conn, pending) {
                    pending.push((conn, Instant::now(), uid));
                }
            }
        }
    }

    /// Serves the request on `conn` if its packet is there; gives `conn`
    /// back if not yet.
    fn serve_request(self: &Arc<Self>, conn: OwnedFd) -> Option<OwnedFd> {
        let mut buf = [0u8; wire::MAX_PACKET];
        match wire::recv_nowait(conn.as_fd(), &mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(conn),
            Ok(Some((n, None))) => {
                let _ = self.handle(conn, &buf[..n]);
                None
            }
            // Garbage, a descriptor we did not ask for, or EOF: drop it.
            _ => None,
        }
    }

    fn handle(self: &Arc<Self>, conn: OwnedFd, p: &[u8]) -> io::Result<()> {
        let reply_err = |kind| wire::send(conn.as_fd(), &wire::error_packet(kind), None);
        match p {
            [wire::REQ_OPEN, access, key @ ..] => {
                let Some(access) = Access::from_u8(*access) else {
                    return Err(wire::bad_packet());
                };
                if key != self.name.key().as_bytes() {
                    return reply_err(ErrorKind::FileNotFound);
                }
                self.open(conn, access, None);
                Ok(())
            }
            [wire::REQ_OPEN_REMOTE, access, rest @ ..] => {
                let (Some(access), Some((identity, key))) =
                    (Access::from_u8(*access), wire::RemoteIdentity::decode(rest))
                else {
                    return Err(wire::bad_packet());
                };
                if key != self.name.key().as_bytes() {
                    return reply_err(ErrorKind::FileNotFound);
                }
                self.open(conn, access, Some(identity));
                Ok(())
            }
            [wire::REQ_WAIT, key @ ..] => {
                if key != self.name.key().as_bytes() {
                    return reply_err(ErrorKind::FileNotFound);
                }
                self.wait_request(conn)
            }
            [wire::REQ_STATE, key @ ..] => {
                if key != self.name.key().as_bytes() {
                    return reply_err(ErrorKind::FileNotFound);
                }
                // The count is part of what `status` tells: the same rule.
                let cred = wire::peer_cred(&conn)?;
                let groups = wire::peer_groups(&conn)?;
                if !status::may_see(self.permissions(&cred, &groups)) {
                    return reply_err(ErrorKind::AccessDenied);
                }
                let count = lock(&self.inner).count();
                let mut reply = vec![wire::RESP_STATE];
                reply.extend_from_slice(&count.to_le_bytes());
                wire::send(conn.as_fd(), &reply, None)
            }
            [wire::REQ_CREATE, dir, _max, key @ ..] => {
                if key != self.name.key().as_bytes() {
                    return reply_err(ErrorKind::FileNotFound);
                }
                let cred = wire::peer_cred(&conn)?;
                let groups = wire::peer_groups(&conn)?;
                if !self.permissions(&cred, &groups).create_instance
                    || Direction::from_u8(*dir) != Some(self.attrs.direction)
                {
                    return reply_err(ErrorKind::AccessDenied);
                }
                self.register_remote(conn, cred.pid)
            }
            [wire::REQ_INFO, key @ ..] => {
                // An empty key: a listing, which knows only our socket.
                if !key.is_empty() && key != self.name.key().as_bytes() {
                    return reply_err(ErrorKind::FileNotFound);
                }
                let cred = wire::peer_cred(&conn)?;
                let groups = wire::peer_groups(&conn)?;
                if !status::may_see(self.permissions(&cred, &groups)) {
                    return reply_err(ErrorKind::AccessDenied);
                }
                match self.status() {
                    Some(s) => wire::send(conn.as_fd(), &status::encode(&s), None),
                    None => reply_err(ErrorKind::FileNotFound),
                }
            }
            _ => Err(wire::bad_packet()),
        }
    }

    /// The name as `INFO` describes it; `None` once it has vanished (or
    /// before its first instance exists).
    fn status(&self) -> Option<PipeStatus> {
        let (instances, remotes, server_gone) = {
            let mut inner = lock(&self.inner);
            if inner.vanished {
                return None;
            }
            inner.prune();
            let live: Vec<Arc<Instance>> =
                inner.instances.iter().filter_map(Weak::upgrade).collect();
            (live, inner.remotes.clone(), inner.zombies.len() as u32)
        };
        if instances.is_empty() && remotes.is_empty() && server_gone == 0 {
            return None;
        }
        let me = std::process::id();
        let mut s = PipeStatus {
            name: self.name.full(),
            pipe_type: self.attrs.pipe_type,
            direction: self.attrs.direction,
            max_instances: self.attrs.max_instances,
            default_timeout: self.attrs.default_timeout,
            server_pid: me,
            owner_uid: self.attrs.owner.0,
            listening: 0,
            connected: 0,
            client_gone: 0,
            disconnected: 0,
            server_gone,
            instances: Vec::with_capacity(instances.len() + remotes.len()),
        };
        // Each instance's lock alone (the name's lock is not held): a
        // snapshot per instance is all a description needs.
        for inst in &instances {
            let (phase, conn, pid) = {
                let st = lock(&inst.st);
                (st.phase, st.conn.clone(), st.client.as_ref().map(|c| c.pid))
            };
            let state = match (phase, &conn) {
                (Phase::Listening, _) => InstanceState::Listening,
                (Phase::Disconnected, _) => InstanceState::Disconnected,
                (Phase::Connected, Some(c)) if c.peer_alive() => InstanceState::Connected,
                (Phase::Connected, _) => InstanceState::ClientGone,
            };
            let (client_pid, queued_out, queued_in) = match (state, conn) {
                (InstanceState::Connected | InstanceState::ClientGone, c) => (
                    Some(pid.unwrap_or(0)),
                    c.as_ref().map_or(0, |c| c.unread_by_peer()),
                    c.as_ref().map_or(0, |c| c.available()),
                ),
                _ => (None, 0, 0),
            };
            s.push(InstanceStatus {
                state,
                read_mode: ReadMode::Byte,
                wait_mode: WaitMode::Blocking,
                client_pid,
                queued_out,
                queued_in,
                server_pid: me,
            })
            .set_modes(inst.modes.load(Relaxed));
        }
        for r in &remotes {
            if let Some(i) = r.status() {
                s.push(i);
            } else {
                s.server_gone += 1;
            }
        }
        Some(s)
    }
}

impl NameEntry {
    /// Answers `WAIT`: at once if an instance listens (or the name is
    /// gone), otherwise the client is parked until one does, within the
    /// bounds above (the excess hears
    /// `NoSystemResources`).
    pub(super) fn wait_request(&self, conn: OwnedFd) -> io::Result<()> {
        let uid = wire::peer_cred(&conn)?.uid;
        let ms = self
            .attrs
            .default_timeout
            .as_millis()
            .min(u128::from(u32::MAX)) as u32;
        let mut conn = conn;
        let mut pruned = false;
        loop {
            let mut inner = lock(&self.inner);
            if inner.vanished || inner.count() == 0 {
                drop(inner);
                return wire::send(
                    conn.as_fd(),
                    &wire::error_packet(ErrorKind::FileNotFound),
                    None,
                );
            }
            // A remote instance is queued only while it listens.
            let listening = inner.listening.iter().any(|s| match s {
                Slot::Local(i) => i.is_listening(),
                Slot::Remote(_) => true,
            });
            let mut reply = vec![wire::RESP_STATE];
            reply.extend_from_slice(&ms.to_le_bytes());
            if listening {
                reply[0] = wire::RESP_AVAILABLE;
                drop(inner);
                return wire::send(conn.as_fd(), &reply, None);
            }
            match Waiter::park(conn, uid) {
                Ok(waiter) => {
                    // Not yet: tell the client the default timeout, keep
                    // the connection until an instance listens or the name
                    // goes.
                    wire::send(waiter.as_fd(), &reply, None)?;
                    let _ = wire::set_recv_timeout(waiter.as_fd(), None);
                    inner.waiters.push(waiter);
                    return Ok(());
                }
                // Clients that gave up may hold the places: let them go
                // (every name's, without holding ours) and look again.
                Err((c, Full::Total | Full::Uid)) if !pruned => {
                    drop(inner);
                    prune_all();
                    pruned = true;
                    conn = c;
                }
                Err((c, _)) => {
                    drop(inner);
                    let e = wire::error_packet(ErrorKind::NoSystemResources);
                    return wire::send(c.as_fd(), &e, None);
                }
            }
        }
    }
}

/// Drops the parked waiters whose client left, on every name of the
/// process (each name's lock in turn, never two at once).
fn prune_all() {
    let names: Vec<Arc<NameEntry>> = lock(&REGISTRY).values().filter_map(Weak::upgrade).collect();
    for n in names {
        waiters::prune(&mut lock(&n.inner).waiters);
    }
}

/// What became of [`NameEntry::accept_all`].
enum Accepting {
    /// Nothing left to accept.
    Done,
    /// Out of descriptors or memory: try again after [`ACCEPT_PAUSE`].
    Starved,
    /// The socket is shut (the name vanished): the thread ends.
    Shut,
}

/// How long accepting pauses when the process is out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// Answers a request on a name that vanished. The request is read first: a
/// connection closed with unread data makes the peer's receive fail with
/// `ECONNRESET` instead of returning the answer.
fn refuse_vanished(conn: &OwnedFd) {
    let mut buf = [0u8; wire::MAX_PACKET];
    let _ = wire::recv_nowait(conn.as_fd(), &mut buf);
    reply_open_error(conn, &err(ErrorKind::FileNotFound));
}
