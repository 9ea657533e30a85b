//! `OPEN`: whether a client may open the name, which instance it gets, and
//! how it is attached to it, here or (forwarded over the instance's link)
//! in another process (spec 4.4).
//!
//! # The claim (SEM-043)
//!
//! Opens race for the name's listening queue, longest-listening instance
//! first. Taking an entry off the queue under the name's lock is the claim:
//! a racing open never sees it again, so one instance never goes to two
//! clients. A local instance is then attached on the name's thread
//! ([`Instance::attach`] never waits on a peer); a remote one is forwarded
//! on a thread of its own (at most [`MAX_HANDLERS`]), and offered on to
//! the next instance as long as members answer BUSY, each remote once per
//! client. An instance whose attach failed while it still listens goes back
//! to the head of the queue.

use super::instance::Instance;
use super::registry::{NameEntry, Slot};
use super::{err, lock, remote};
use crate::error::{Error, ErrorKind};
use crate::named::options::{Access, Credentials, Direction, Security, REMOTE_MARKER_GID};
use crate::named::wire;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Threads forwarding clients to other processes' instances, and their cap.
static HANDLERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const MAX_HANDLERS: usize = 64;

impl NameEntry {
    /// Whether the kernel-reported client may open the name with `access`
    /// (spec 4.4 steps 3 and 4) under `security` (the name's, or a member
    /// instance's own); its credentials if so.
    pub(super) fn check_open(
        &self,
        conn: &OwnedFd,
        access: Access,
        security: &Security,
        identity: Option<wire::RemoteIdentity>,
    ) -> io::Result<Credentials> {
        let cred = wire::peer_cred(conn)?;
        let mut groups = wire::peer_groups(conn)?;
        // Only root can connect with the marker (it is the kernel's account
        // of the connecting thread): a gateway's open for a remote client.
        let remote = groups.contains(&REMOTE_MARKER_GID);
        if remote {
            groups.retain(|&g| g != REMOTE_MARKER_GID);
            if self.attrs.reject_remote {
                return Err(err(ErrorKind::AccessDenied));
            }
        } else if identity.is_some() {
            // A certificate identity from a client the kernel does not show
            // as a gateway's: a local process passing for a remote one.
            return Err(err(ErrorKind::AccessDenied));
        }
        let identity = identity.unwrap_or_default();
        let (owner, owner_gid) = self.attrs.owner;
        let perms = security.permissions(owner, owner_gid, cred.uid, cred.gid, &groups);
        if (access.read_data && !perms.connect_read) || (access.write_data && !perms.connect_write)
        {
            return Err(err(ErrorKind::AccessDenied));
        }
        if !perms.connect_read && !perms.connect_write {
            return Err(err(ErrorKind::AccessDenied));
        }
        let incompatible = match self.attrs.direction {
            Direction::Inbound => access.read_data,
            Direction::Outbound => access.write_data,
            Direction::Duplex => false,
        };
        if incompatible {
            return Err(err(ErrorKind::AccessDenied));
        }
        Ok(Credentials {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
            groups,
            remote,
            remote_fingerprint: identity.fingerprint,
            remote_subject: identity.subject,
        })
    }

    /// Attaches the connecting client to the longest-listening instance,
    /// ours or (forwarded over its link) another process's. Runs on the
    /// name's thread: a local instance is attached here (nothing in it
    /// waits on a peer), a remote one on a thread of its own (the member
    /// may take seconds, and its verdict arrives on a link this thread
    /// polls). Errors are answered to the client.
    pub(super) fn open(
        self: &Arc<Self>,
        conn: OwnedFd,
        access: Access,
        identity: Option<wire::RemoteIdentity>,
    ) {
        let client = match self.check_open(&conn, access, &self.attrs.security, identity) {
            Ok(c) => c,
            Err(e) => return reply_open_error(&conn, &e),
        };
        match self.claim_next(&[]) {
            Err(e) => reply_open_error(&conn, &e),
            Ok(Slot::Local(inst)) => self.attach_local(inst, &conn, client),
            Ok(Slot::Remote(r)) => {
                // Overloaded (forwards to members that answer slowly hold
                // their threads): the instance goes back where it was, and
                // the client hears `PipeBusy` (or, if no thread could be
                // started, sees its connection close and tries again).
                let unclaim = |r: Arc<remote::Remote>| {
                    let mut inner = lock(&self.inner);
                    if r.unclaim() {
                        inner.listening.push_front(Slot::Remote(r));
                    }
                };
                if HANDLERS.fetch_add(1, Relaxed) >= MAX_HANDLERS {
                    HANDLERS.fetch_sub(1, Relaxed);
                    unclaim(r);
                    return reply_open_error(&conn, &err(ErrorKind::PipeBusy));
                }
                let me = Arc::clone(self);
                let r2 = Arc::clone(&r);
                let spawned = std::thread::Builder::new()
                    .name("shmpipe-forward".into())
                    .spawn(move || {
                        me.open_remote(conn, access, client, r2);
                        HANDLERS.fetch_sub(1, Relaxed);
                    });
                if spawned.is_err() {
                    HANDLERS.fetch_sub(1, Relaxed);
                    unclaim(r);
                }
            }
        }
    }

    /// Forwards the client on `conn` to the claimed remote instance `r`,
    /// and on to the next instance as long as members answer BUSY.
    fn open_remote(
        self: &Arc<Self>,
        conn: OwnedFd,
        access: Access,
        client: Credentials,
        mut r: Arc<remote::Remote>,
    ) {
        // Remote instances that answered BUSY to this client: each is
        // offered once, so a member that keeps refusing cannot loop us.
        let mut tried: Vec<Arc<remote::Remote>> = Vec::new();
        loop {
            if self.forward(&r, &conn, access, client.pid) {
                return;
            }
            tried.push(r);
            match self.claim_next(&tried) {
                Err(e) => return reply_open_error(&conn, &e),
                Ok(Slot::Local(inst)) => return self.attach_local(inst, &conn, client),
                Ok(Slot::Remote(next)) => r = next,
            }
        }
    }

    /// Takes the longest-listening instance off the queue (not one of
    /// `tried`): `FileNotFound` when the name has no instance left,
    /// `PipeBusy` when none listens.
    fn claim_next(&self, tried: &[Arc<remote::Remote>]) -> io::Result<Slot> {
        let mut inner = lock(&self.inner);
        if inner.count() == 0 {
            self.vanish_if_empty(&mut inner);
            return Err(err(ErrorKind::FileNotFound));
        }
        // Taking the slot off the queue under the name's lock is the
        // atomic claim (SEM-043): a racing open never sees it again.
        let mut skipped = Vec::new();
        let slot = loop {
            match inner.listening.pop_front() {
                None => break None,
                Some(Slot::Local(inst)) if inst.is_listening() => break Some(Slot::Local(inst)),
                Some(Slot::Remote(r)) if tried.iter().any(|t| Arc::ptr_eq(t, &r)) => {
                    skipped.push(Slot::Remote(r));
                }
                Some(Slot::Remote(r)) if r.claim() => break Some(Slot::Remote(r)),
                Some(_) => {}
            }
        };
        for s in skipped.into_iter().rev() {
            inner.listening.push_front(s);
        }
        slot.ok_or_else(|| err(ErrorKind::PipeBusy))
    }

    /// Attaches the client to our claimed instance `inst`.
    fn attach_local(&self, inst: Arc<Instance>, conn: &OwnedFd, client: Credentials) {
        if let Err(e) = inst.attach(conn, client, || {}) {
            // Could not hand out the connection. If the instance still
            // listens, it goes back to the head of the queue and waiters
            // hear of it; if the claim went through and only the reply
            // failed, it is Connected to a client that left (ClientGone
            // follows), and it must not be queued.
            if inst.is_listening() {
                let mut inner = lock(&self.inner);
                inner.listening.push_front(Slot::Local(inst));
                Self::wake_waiters(&mut inner);
            }
            reply_open_error(conn, &e);
        }
    }
}

/// Tells an opening client why it got no instance.
pub(super) fn reply_open_error(conn: &OwnedFd, e: &io::Error) {
    let kind = Error::kind_of(e).unwrap_or(ErrorKind::NoSystemResources);
    let _ = wire::send(conn.as_fd(), &wire::error_packet(kind), None);
}
