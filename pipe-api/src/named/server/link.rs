//! Instances of one name created by several processes.
//!
//! The process that bound the name's socket is its *owner*: it keeps the
//! one registry of the name (the FIFO of Listening instances, the count for
//! max instances, the waiters). Another process that creates an instance
//! (a *member*) sends `CREATE`; if the owner's checks pass, the connection
//! stays open as that instance's **link** (one link per instance), and the
//! owner queues a [`Remote`] in the same FIFO as its own instances.
//!
//! * When an `OPEN` picks a remote instance, the owner sends the client's
//!   connection over the link (`FWD`, `SCM_RIGHTS`). The member checks the
//!   client again (its `SO_PEERCRED`), attaches it exactly as a local
//!   instance would (fresh segment, OPENED, DONE on the client's own
//!   connection) and answers `STATE` with verdict TAKEN, or BUSY when its
//!   instance stopped listening meanwhile; then the owner offers the client
//!   the next instance. The owner took the remote off its queue under the
//!   name's lock before forwarding, so two racing clients never get one
//!   instance (SEM-043).
//! * The member reports every change of its instance (`STATE`): Listening
//!   again after `connect`, Disconnected, Connected, ServerGone.
//! * A link that hangs up (the member closed the instance, exited or was
//!   killed) or says anything malformed drops that instance from the
//!   registry at once.
//! * When the owner dies, every member sees its links hang up and tries to
//!   bind the name: one wins (the kernel allows one bind) and becomes the
//!   owner, its instances turning into local ones in their local order; the
//!   others find the socket taken and re-register their instances with the
//!   new owner (a fresh `CREATE` per instance).
//!
//! This file is what runs over links, on both sides: the owner registers,
//! forwards to and drops [`Remote`]s (defined, with `CREATE`/`JOINED`, in
//! the `remote` module); the member serves forwards, reports its
//! instances' states and takes over or rejoins when the owner is lost. The
//! name's thread polls the links ([`Watch`]) and calls [`NameEntry::on_link`].

use super::instance::{Instance, Phase};
use super::lock;
use super::registry::{NameEntry, NameInner};
use super::remote::{joined_packet, request_create, Remote, LINK_SEND_TIMEOUT};
use crate::error::ErrorKind;
use crate::info::PipeType;
use crate::named::options::{Access, MODE_MESSAGE_READ};
use crate::named::trust::{self};
use crate::named::wire;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the owner waits for a member's verdict on a forwarded client
/// before it stops offering that instance (it keeps counting it: see
/// [`RemoteSt::late`]).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(1);

/// A descriptor the name's thread watches, and what it belongs to.
pub(super) enum Watch {
    /// Owner: a member's link.
    Remote(Arc<Remote>),
    /// Member: our instance's link to the owner.
    Member(Arc<Instance>, Arc<OwnedFd>),
    /// Member: the link of a ServerGone connection of ours.
    Zombie(Arc<OwnedFd>),
}

impl Watch {
    pub(super) fn collect(inner: &mut NameInner) -> Vec<Watch> {
        let mut v: Vec<Watch> = inner.remotes().iter().cloned().map(Watch::Remote).collect();
        for inst in inner.live_instances() {
            let fd = lock(&inst.link).as_ref().map(|l| Arc::clone(&l.fd));
            if let Some(fd) = fd {
                v.push(Watch::Member(inst, fd));
            }
        }
        for l in inner.zombie_links() {
            v.push(Watch::Zombie(Arc::clone(&l.fd)));
        }
        v
    }

    pub(super) fn fd(&self) -> &OwnedFd {
        match self {
            Watch::Remote(r) => &r.link.fd,
            Watch::Member(_, fd) | Watch::Zombie(fd) => fd,
        }
    }
}

impl NameEntry {
    /// Owner, on CREATE from a process allowed to create instances: counts
    /// and queues its instance, and keeps the connection as its link.
    pub(super) fn register_remote(self: &Arc<Self>, conn: OwnedFd, pid: u32) -> io::Result<()> {
        let mut inner = lock(&self.inner);
        if !inner.is_open() {
            drop(inner);
            let p = wire::error_packet(ErrorKind::FileNotFound);
            return wire::send(conn.as_fd(), &p, None);
        }
        if inner.is_full(self.attrs.max_instances) {
            drop(inner);
            return wire::send(conn.as_fd(), &wire::error_packet(ErrorKind::PipeBusy), None);
        }
        wire::set_recv_timeout(conn.as_fd(), None)?;
        wire::set_send_timeout(conn.as_fd(), Some(LINK_SEND_TIMEOUT))?;
        // Under the name's lock: JOINED is on the link before any FWD.
        wire::send(conn.as_fd(), &joined_packet(&self.attrs), None)?;
        inner.add_remote(Arc::new(Remote::new(wire::Link::new(conn), pid)));
        drop(inner);
        self.wake();
        Ok(())
    }

    /// Owner: hands the client on `conn` to a claimed remote instance.
    /// `true` when the owner must leave the client alone (the member took
    /// it, or went away while it may have been answering it: the client's
    /// open then starts again); `false` to offer it the next instance.
    pub(super) fn forward(
        self: &Arc<Self>,
        r: &Arc<Remote>,
        conn: &OwnedFd,
        access: Access,
        client_pid: u32,
    ) -> bool {
        lock(&r.st).pending_pid = client_pid;
        let fwd = [wire::LINK_FWD, access.to_u8()];
        if wire::send(r.link.fd(), &fwd, Some(conn.as_fd())).is_err() {
            self.drop_remote(r);
            return false;
        }
        let deadline = Instant::now() + FORWARD_TIMEOUT;
        let mut st = lock(&r.st);
        while st.pending {
            let now = Instant::now();
            if now >= deadline {
                st.pending = false;
                st.late = true;
                return true;
            }
            st =
                r.cv.wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
        }
        st.dead || st.verdict == wire::VERDICT_TAKEN
    }

    /// Owner: forgets a remote instance (its link hung up or misbehaved).
    fn drop_remote(&self, r: &Arc<Remote>) {
        let mut inner = lock(&self.inner);
        inner.remove_remote(r);
        {
            let mut st = lock(&r.st);
            st.dead = true;
            st.pending = false;
            st.queued = false;
        }
        r.cv.notify_all();
        r.link.shutdown();
        self.vanish_if_empty(&mut inner);
    }

    /// A watched link is readable (or hung up).
    pub(super) fn on_link(self: &Arc<Self>, w: &Watch) {
        let mut buf = [0u8; 16];
        match w {
            Watch::Remote(r) => match wire::recv(r.link.fd(), &mut buf) {
                Ok(Some((n, None))) if self.remote_state(r, &buf[..n]).is_ok() => {}
                _ => self.drop_remote(r),
            },
            Watch::Member(inst, fd) => match wire::recv(fd.as_fd(), &mut buf) {
                Ok(Some((2, Some(client)))) if buf[0] == wire::LINK_FWD => {
                    self.serve_forward(inst, &client, buf[1]);
                }
                _ => self.owner_lost(Some(inst), fd),
            },
            Watch::Zombie(fd) => match wire::recv(fd.as_fd(), &mut buf) {
                // Forwarded before the owner learnt the server end closed.
                Ok(Some((2, Some(_)))) if buf[0] == wire::LINK_FWD => {
                    let busy = wire::LinkState {
                        verdict: wire::VERDICT_BUSY,
                        state: wire::LINK_SERVER_GONE,
                        modes: 0,
                        client_pid: 0,
                    }
                    .encode();
                    let _ = wire::send(fd.as_fd(), &busy, None);
                }
                _ => self.owner_lost(None, fd),
            },
        }
    }

    /// Owner: a member's STATE packet, checked field by field.
    fn remote_state(&self, r: &Arc<Remote>, p: &[u8]) -> io::Result<()> {
        let wire::LinkState {
            verdict,
            state,
            modes,
            client_pid,
        } = wire::LinkState::decode(p)?;
        if modes & MODE_MESSAGE_READ != 0 && self.attrs.pipe_type == PipeType::Byte {
            return Err(wire::bad_packet());
        }
        let mut inner = lock(&self.inner);
        let mut st = lock(&r.st);
        if st.dead {
            return Ok(());
        }
        if verdict != wire::VERDICT_NONE {
            if st.pending {
                st.pending = false;
                st.verdict = verdict;
                r.cv.notify_all();
            } else if st.late {
                // The answer to a forward we stopped waiting for.
                st.late = false;
            } else {
                // A verdict nobody asked for.
                return Err(wire::bad_packet());
            }
        } else if st.late && state == wire::LINK_LISTENING {
            // Listening again without answering: its client's open times
            // out on the client's side; the instance is offered again.
            st.late = false;
        }
        st.state = state;
        st.modes = modes;
        st.client_pid = client_pid;
        let queue = state == wire::LINK_LISTENING && !st.pending && !st.late;
        if queue && !st.queued {
            // Listening again: at the back of the queue (spec 4.3).
            st.queued = true;
            inner.queue_remote(r);
        } else if !queue && st.queued {
            st.queued = false;
            inner.unqueue_remote(r);
        }
        Ok(())
    }

    /// Member: the owner forwarded a client to `inst`. Nothing the owner
    /// says about it is believed: the descriptor must be a client's
    /// connection, and the kernel's credentials of its peer (the process
    /// that will read the reply and the segment) must pass the instance's
    /// own security.
    fn serve_forward(self: &Arc<Self>, inst: &Arc<Instance>, client: &OwnedFd, access: u8) {
        let checked = Access::from_u8(access)
            .filter(|_| trust::is_client_connection(client))
            .ok_or_else(wire::bad_packet)
            .and_then(|a| self.check_open(client, a, &inst.security, None));
        // Set once the verdict went out with the claim.
        let mut told = false;
        let verdict = match checked {
            Err(e) => {
                let kind = crate::Error::kind_of(&e).unwrap_or(ErrorKind::AccessDenied);
                let _ = wire::send(client.as_fd(), &wire::error_packet(kind), None);
                wire::VERDICT_TAKEN
            }
            Ok(creds) => {
                let claimed = lock(&self.inner).claim_local(inst);
                if !claimed || !inst.is_listening() {
                    wire::VERDICT_BUSY
                } else {
                    let claimed = || {
                        inst.report(wire::VERDICT_TAKEN);
                        told = true;
                    };
                    match inst.attach(client, creds, claimed) {
                        Ok(()) => wire::VERDICT_TAKEN,
                        Err(_) if inst.is_listening() => {
                            lock(&self.inner).unclaim_local(inst);
                            wire::VERDICT_BUSY
                        }
                        Err(_) => wire::VERDICT_TAKEN,
                    }
                }
            }
        };
        if !told {
            inst.report(verdict);
        }
    }

    /// Member: a link to the owner hung up (or the owner sent nonsense).
    /// Take the name over, or register the instance with whoever did.
    fn owner_lost(self: &Arc<Self>, inst: Option<&Arc<Instance>>, fd: &Arc<OwnedFd>) {
        if let Some(inst) = inst {
            let current = lock(&inst.link)
                .as_ref()
                .is_some_and(|l| Arc::ptr_eq(&l.fd, fd));
            if !current {
                return; // closed by us, or replaced already
            }
        }
        if self.is_owner() || lock(&self.inner).is_vanished() {
            return;
        }
        if let Ok(Some(listener)) = wire::listen(&self.name.socket_name()) {
            self.take_over(listener);
            return;
        }
        match inst {
            Some(inst) => self.rejoin(inst),
            None => {
                // A ServerGone connection: the new owner need not know it.
                lock(&self.inner).forget_zombie_link(fd);
            }
        }
    }

    /// Member → owner: we bound the name; our instances become local ones.
    fn take_over(&self, listener: OwnedFd) {
        let mut inner = lock(&self.inner);
        if inner.is_vanished() {
            return;
        }
        let mut links = Vec::new();
        for inst in inner.live_instances() {
            links.extend(lock(&inst.link).take());
        }
        links.extend(inner.take_zombie_links());
        if self.own(listener).is_err() {
            // Cannot poll it: leave the name to another survivor.
            return;
        }
        Self::wake_waiters(&mut inner);
        drop(inner);
        drop(links);
    }

    /// Member: registers `inst` with the name's new owner.
    fn rejoin(self: &Arc<Self>, inst: &Arc<Instance>) {
        for _ in 0..200 {
            // The new owner's credentials pass the instance's trust rule in
            // `request_create` (an untrusted one is an error: we stop).
            match request_create(&self.name, self.attrs.direction, &inst.owner_trust) {
                Ok(Some((link, attrs))) => {
                    if !self.attrs.same_pipe(&attrs) {
                        // Whoever bound the name first after the owner
                        // died describes another pipe: not the name's
                        // successor, and our clients' data must not go
                        // there.
                        break;
                    }
                    let inner = lock(&self.inner);
                    if self.is_owner() {
                        return;
                    }
                    *lock(&inst.link) = Some(link);
                    drop(inner);
                    inst.report(wire::VERDICT_NONE);
                    self.wake();
                    return;
                }
                Ok(None) => {
                    if let Ok(Some(listener)) = wire::listen(&self.name.socket_name()) {
                        self.take_over(listener);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => break,
            }
        }
        // Refused by the new owner, or none came: the instance can no
        // longer be reached by name (see the design document's limits).
        *lock(&inst.link) = None;
    }

    /// Member: the name's instance count, from the owner.
    pub(super) fn remote_count(&self) -> io::Result<u32> {
        wire::ask_instance_count(&self.name)
    }
}

impl Instance {
    /// Member: tells the owner this instance's state (with a verdict on a
    /// forwarded client, or `VERDICT_NONE`). The link's lock is held from
    /// the snapshot to the send, so reports reach the owner in the order
    /// of the states they describe.
    pub(super) fn report(&self, verdict: u8) {
        let link = lock(&self.link);
        let Some(l) = link.as_ref() else {
            return;
        };
        let (state, pid) = {
            let st = lock(&self.st);
            match st.phase {
                Phase::Listening => (wire::LINK_LISTENING, 0),
                Phase::Disconnected => (wire::LINK_DISCONNECTED, 0),
                Phase::Connected => {
                    let alive = st.conn.as_ref().is_some_and(|c| c.peer_alive());
                    let pid = st.client.as_ref().map_or(0, |c| c.pid);
                    if alive {
                        (wire::LINK_CONNECTED, pid)
                    } else {
                        (wire::LINK_CLIENT_GONE, pid)
                    }
                }
            }
        };
        let p = wire::LinkState {
            verdict,
            state,
            modes: self.modes.load(Relaxed),
            client_pid: pid,
        }
        .encode();
        let _ = wire::send(l.fd(), &p, None);
    }
}

/// Member: a ServerGone zombie keeps the instance's link (the owner keeps
/// counting it) after saying so.
pub(super) fn zombie_link(link: Option<wire::Link>) -> Option<wire::Link> {
    if let Some(l) = &link {
        let p = wire::LinkState {
            verdict: wire::VERDICT_NONE,
            state: wire::LINK_SERVER_GONE,
            modes: 0,
            client_pid: 0,
        }
        .encode();
        let _ = wire::send(l.fd(), &p, None);
    }
    link
}
