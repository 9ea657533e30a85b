//! One instance of a name: its state machine and the segment of its next
//! connection.
//!
//! # States (spec 4.2, 4.3, 4.12)
//!
//! ```text
//!            create                attach (an OPEN picked it)
//!   ───────────────▶ Listening ──────────────────────────▶ Connected
//!                       ▲                                      │
//!                       │ connect                   disconnect │
//!                       └─────────── Disconnected ◀────────────┘
//! ```
//!
//! `disconnect` from Listening also leads to Disconnected; each
//! `disconnect` bumps the instance's epoch, so a `connect` waiting from an
//! earlier epoch fails. Connected with its client gone is ClientGone
//! (observed through the client's role lock, not a state of its own).
//! Every change happens under the instance's lock (`st`); `cv` wakes
//! `connect`. Taking an instance off the name's listening queue is the
//! claim (see `claim`); `attach` then finds it still Listening (or gives
//! `PipeBusy`) and makes it Connected before the client hears anything.
//!
//! # Segments made ahead
//!
//! Each connection gets a fresh duplex segment (ring 0 server→client, ring
//! 1 client→server, sized by [`ring_capacity`] from the quotas), so an
//! orphaned client end can never touch the next client's data. Making one
//! costs tens of µs, so a low-priority thread makes it while the instance
//! listens ([`prepare_in_background`]), at most [`MAX_PREPARED`] at a time
//! in the process; `attach` makes its own when none is ready, and a
//! segment finished too late for its instance serves the next one queued.

use super::options::{Attrs, ServerOptions};
use super::{err, lock};
use crate::datapath::{Conn, RING_IN, RING_OUT, ROLE_CLIENT, ROLE_SERVER};
use crate::error::ErrorKind;
use crate::info::{PipeType, ReadMode, WaitMode};
use crate::named::options::{
    Credentials, Direction, Security, MODE_MESSAGE_READ, MODE_NONBLOCKING,
};
use crate::named::trust::{self, TrustRule};
use crate::named::wire;
use crate::quota::ring_capacity;
use shmpipe_engine::channel::End;
use shmpipe_engine::layout::{HANGUP_READER, HANGUP_WRITER};
use shmpipe_engine::liveness::EndLock;
use shmpipe_engine::wait::Canceller;
use shmpipe_engine::{Segment, WaitPolicy};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Listening,
    Connected,
    Disconnected,
}

pub(super) struct InstState {
    pub(super) phase: Phase,
    pub(super) conn: Option<Arc<Conn>>,
    pub(super) client: Option<Credentials>,
    /// Bumped by `disconnect`: pending connects of an earlier epoch fail.
    pub(super) epoch: u64,
}

/// One instance: the server end and its current connection.
pub(super) struct Instance {
    /// The name's attributes (a copy: an instance needs nothing else of
    /// its name).
    pub(super) attrs: Attrs,
    pub(super) out_size: u32,
    pub(super) in_size: u32,
    /// The handle's wait policy: for every later connection too.
    pub(super) policy: Mutex<Option<WaitPolicy>>,
    pub(super) modes: AtomicU8,
    pub(super) st: Mutex<InstState>,
    pub(super) cv: Condvar,
    /// Wakers of pending async `connect`s, woken wherever `cv` is notified
    /// for a state change they wait for (a client attached).
    #[cfg(feature = "tokio")]
    async_waiters: Mutex<Vec<(u64, std::task::Waker)>>,
    /// The next connection's segment, made while the instance listens.
    prepared: Mutex<Option<Prepared>>,
    /// Member: the link to the name's owner (`None` in the owner, and for
    /// an instance no owner would take back after a takeover).
    pub(super) link: Mutex<Option<wire::Link>>,
    /// Member: who may be attached to this instance (its creator's
    /// security, the creator as owner), whatever the name's owner says.
    pub(super) security: Security,
    /// Member: which processes may own the name this instance joins.
    pub(super) owner_trust: TrustRule,
    /// The server handle's canceller (spec 7.4): its `connect` waits and
    /// the operations on each of its connections.
    pub(super) cancel: Canceller,
}

impl Instance {
    /// A fresh instance of `name`, Listening, with the quotas, modes and
    /// security of `o` (message read mode only on a message pipe).
    pub(super) fn new(attrs: Attrs, o: &ServerOptions, link: Option<wire::Link>) -> Arc<Instance> {
        let read_mode = if attrs.pipe_type == PipeType::Byte {
            ReadMode::Byte
        } else {
            o.read_mode
        };
        let inst = Arc::new(Instance {
            attrs,
            out_size: o.out_size,
            in_size: o.in_size,
            policy: Mutex::new(o.policy),
            modes: AtomicU8::new(
                (u8::from(o.wait_mode == WaitMode::Nonblocking) * MODE_NONBLOCKING)
                    | (u8::from(read_mode == ReadMode::Message) * MODE_MESSAGE_READ),
            ),
            st: Mutex::new(InstState {
                phase: Phase::Listening,
                conn: None,
                client: None,
                epoch: 0,
            }),
            cv: Condvar::new(),
            #[cfg(feature = "tokio")]
            async_waiters: Mutex::new(Vec::new()),
            prepared: Mutex::new(None),
            link: Mutex::new(link),
            security: o.security,
            owner_trust: o.owner_trust.clone(),
            cancel: Canceller::new(),
        });
        // A cancel wakes `connect` (its waits on `cv`). Under `st`, so that
        // a `connect` that found the operation not cancelled yet is already
        // waiting when the notify comes. Weak: the canceller lives in the
        // instance.
        let weak = Arc::downgrade(&inst);
        inst.cancel.set_waker(
            Arc::as_ptr(&inst) as usize,
            Arc::new(move || {
                let Some(inst) = weak.upgrade() else {
                    return false;
                };
                drop(lock(&inst.st));
                inst.cv.notify_all();
                true
            }),
        );
        inst
    }

    /// Registers an async `connect`'s waker (called under `st`'s lock, as
    /// a `Condvar` wait is, so no state change in between is missed).
    #[cfg(feature = "tokio")]
    /// `key` names the future: a later poll replaces its waker, and
    /// [`Instance::deregister_async`] (its drop) removes it.
    #[cfg(feature = "tokio")]
    pub(super) fn register_async(&self, key: u64, waker: &std::task::Waker) {
        let mut w = lock(&self.async_waiters);
        match w.iter_mut().find(|(k, _)| *k == key) {
            Some((_, x)) => x.clone_from(waker),
            None => w.push((key, waker.clone())),
        }
    }

    /// Forgets the waker of the async `connect` named `key` (dropped).
    #[cfg(feature = "tokio")]
    pub(super) fn deregister_async(&self, key: u64) {
        lock(&self.async_waiters).retain(|(k, _)| *k != key);
    }

    /// Wakes every pending async `connect` (they re-check the state).
    #[cfg(feature = "tokio")]
    pub(super) fn wake_async(&self) {
        for (_, w) in core::mem::take(&mut *lock(&self.async_waiters)) {
            w.wake();
        }
    }

    pub(super) fn is_listening(&self) -> bool {
        lock(&self.st).phase == Phase::Listening
    }

    /// Builds the next connection's duplex segment (ring 0 server→client,
    /// ring 1 client→server, sized from the quotas) with both ends: the
    /// server end as a ready [`Conn`], the client end's descriptor (and
    /// lock) to be sent. Nobody else can see it: every descriptor is
    /// close-on-exec and stays in this process until a client is admitted.
    fn prepare(&self) -> io::Result<Prepared> {
        let e = |e| crate::named::conn_engine_error(e);
        let shape = self.shape();
        let dir = self.attrs.direction;
        let out_cap = if dir == Direction::Inbound {
            4096
        } else {
            ring_capacity(self.out_size)
        };
        let in_cap = if dir == Direction::Outbound {
            4096
        } else {
            ring_capacity(self.in_size)
        };
        let (segment, fd) = Segment::create(&[out_cap, in_cap], 0, [0; 8]).map_err(e)?;
        let server_lock = EndLock::acquire(fd.as_fd(), ROLE_SERVER)?;
        let client_lock = EndLock::acquire(fd.as_fd(), ROLE_CLIENT)?;
        // The description the client maps the segment through (one that
        // holds no lock, and is not the one our own mapping holds, which a
        // client could otherwise lock through): sent with its end, so that
        // the client reopens nothing.
        let client_map = shmpipe_engine::liveness::reopen(fd.as_fd())?;
        // And the one its process slot locks through: the client's first
        // read or write reopens nothing either.
        let client_slot = shmpipe_engine::liveness::reopen(fd.as_fd())?;
        // The creation descriptor holds no lock: it serves as the probe
        // (no reopen for the role check).
        let server_end = End::new_probed(
            server_lock,
            segment,
            ROLE_SERVER,
            &[(RING_OUT, HANGUP_WRITER), (RING_IN, HANGUP_READER)],
            fd.as_fd(),
        )
        .map_err(e)?;
        // Who owns the memfd (whether a client must be let in, `attach`).
        let owner = rustix::fs::fstat(&fd)?.st_uid;
        drop(fd);
        // This process's slot on the segment (a reopen), made now rather
        // than by the connection's first read or write.
        server_end.holder_token().map_err(e)?;
        let access = dir.server_access();
        let mut conn = Conn::new(
            server_end,
            access.write_data.then_some(RING_OUT),
            access.read_data.then_some(RING_IN),
            ROLE_CLIENT,
            self.attrs.pipe_type,
            self.out_size,
            shape.policy,
        )?;
        conn.set_canceller(self.cancel.clone());
        Ok(Prepared {
            conn,
            client_lock,
            client_map,
            client_slot,
            owner,
            shape,
            _counted: PreparedCount::new(),
        })
    }

    /// What a segment prepared for this instance is made from (see
    /// [`Shape`]).
    fn shape(&self) -> Shape {
        Shape {
            direction: self.attrs.direction,
            pipe_type: self.attrs.pipe_type,
            out_size: self.out_size,
            in_size: self.in_size,
            policy: *lock(&self.policy),
        }
    }

    /// Takes `p`, a segment prepared for another instance that was claimed
    /// before it was ready, if this one is still listening, has none, and
    /// would have made the same (`p` is given back otherwise). Nothing of
    /// `p` ever left the process, so it is as fresh as one made for us.
    fn adopt_prepared(&self, mut p: Prepared) -> Option<Prepared> {
        if p.shape != self.shape() {
            return Some(p);
        }
        let mut slot = lock(&self.prepared);
        if slot.is_some() || !self.is_listening() {
            return Some(p);
        }
        p.conn.set_canceller(self.cancel.clone());
        *slot = Some(p);
        None
    }

    /// Prepares the next connection's segment ahead of the client, so that
    /// `OPEN` only has to send a descriptor. A failure is left for `attach`
    /// to meet (and report to the client).
    /// Returns the segment if it came too late for this instance (claimed
    /// meanwhile), for another to take (see [`Instance::adopt_prepared`]).
    fn prepare_ahead(&self) -> Option<Prepared> {
        if lock(&self.prepared).is_some() || PREPARED.load(Relaxed) >= MAX_PREPARED {
            return None;
        }
        let p = self.prepare().ok()?;
        let mut slot = lock(&self.prepared);
        // Kept only for an instance still listening: `attach` empties the
        // slot after the instance stops listening, so a segment finished
        // after that would otherwise hold its memory and descriptors for
        // the whole connection.
        if slot.is_none() && self.is_listening() {
            *slot = Some(p);
            None
        } else {
            Some(p)
        }
    }

    /// Sends the client end of the prepared segment (or of one made now)
    /// over `sock` and keeps the server end.
    /// `claimed` runs once the instance is Connected, before the client
    /// hears anything (a member tells the owner there, so that its report
    /// precedes whatever the client's actions lead to).
    pub(super) fn attach(
        &self,
        sock: &OwnedFd,
        client: Credentials,
        claimed: impl FnOnce(),
    ) -> io::Result<()> {
        let client_uid = client.uid;
        let ready = lock(&self.prepared).take();
        let Prepared {
            conn,
            client_lock,
            client_map,
            client_slot,
            owner,
            shape,
            _counted,
        } = match ready {
            Some(p) => p,
            None => self.prepare()?,
        };
        let timeout = self
            .attrs
            .default_timeout
            .as_millis()
            .min(u128::from(u32::MAX)) as u32;
        // Our pid and effective ids, asked once for OPENED and DONE.
        let me = trust::self_credentials();
        // The client learns the server's pid from its socket's peer, unless
        // the connection was forwarded to us by the name's owner.
        let reply = wire::Opened {
            pipe_type: self.attrs.pipe_type,
            direction: self.attrs.direction,
            max_instances: self.attrs.max_instances,
            forwarded: lock(&self.link).is_some(),
            out_size: self.out_size,
            in_size: self.in_size,
            default_timeout_ms: timeout,
            server_pid: me.pid.as_raw_nonzero().get() as u32,
            server_sid: wire::session_id(),
        }
        .encode();
        {
            let mut st = lock(&self.st);
            if st.phase != Phase::Listening {
                drop(st);
                // Untouched: it serves the next connection.
                let mut slot = lock(&self.prepared);
                if slot.is_none() {
                    *slot = Some(Prepared {
                        conn,
                        client_lock,
                        client_map,
                        client_slot,
                        owner,
                        shape,
                        _counted,
                    });
                }
                return Err(err(ErrorKind::PipeBusy));
            }
            // Under the instance's lock, as `set_wait_policy` sets it: the
            // handle's policy as it is now, whenever the segment was made.
            if let Some(p) = *lock(&self.policy) {
                conn.set_wait_policy(p);
            }
            st.phase = Phase::Connected;
            st.conn = Some(Arc::new(conn));
            st.client = Some(client);
        }
        claimed();
        // A segment the preparer finished meanwhile serves nobody now
        // (dropped once the client has its answer).
        let stale = lock(&self.prepared).take();
        // A client of another uid reopens the segment by path for the
        // process slot of a child it forks, or of a process it passes its
        // end to: it must be allowed to (the memfd is owner-only until
        // then).
        if client_uid != 0 && client_uid != owner {
            let _ = Segment::share_with(client_lock.fd(), client_uid);
        }
        // After the state change: once the client has its end it may act at
        // once, and it must find the instance Connected. If the send fails,
        // the client end's descriptor closes with `client_lock`, and the
        // instance simply looks like a client that came and went. `DONE`
        // tells the client that our copy of its descriptor is closed (its
        // end closes when it closes it).
        // With our credentials: the client judges who serves it by them.
        let sent = trust::send_as(
            sock.as_fd(),
            &reply,
            &[client_lock.fd(), client_map.as_fd(), client_slot.as_fd()],
            me,
        );
        drop((client_lock, client_map, client_slot));
        let done = sent.and_then(|()| trust::send_as(sock.as_fd(), &[wire::RESP_DONE], &[], me));
        // Woken last: a `connect` waiting on this thread's CPU must not
        // delay the client's answer.
        self.cv.notify_all();
        #[cfg(feature = "tokio")]
        self.wake_async();
        drop(stale);
        done
    }
}

/// Has the instance's next segment made by the process's preparer thread.
///
/// Why a thread, and a low-priority one: making a segment costs tens of µs
/// (`Segment::create` allocates the rings; five reopens: two role locks,
/// the client's mapping and slot descriptors, this process's slot), too
/// much for `create` or `connect`, which `PipeListener::accept` calls between a
/// client's arrival and its first request. At nice 19 the preparer takes
/// idle CPU only: whoever the work would delay preempts it. If a client
/// comes before the segment is ready, `attach` makes one itself, and the
/// late one goes to the next queued instance that would have made the same
/// (see `Jobs::hand_over`), or is dropped if there is none.
pub(super) fn prepare_in_background(inst: &Arc<Instance>) {
    static JOBS: OnceLock<Option<Arc<Jobs>>> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let jobs = Arc::new(Jobs {
            queue: Mutex::new(VecDeque::new()),
            cv: Condvar::new(),
        });
        let mine = Arc::clone(&jobs);
        std::thread::Builder::new()
            .name("shmpipe-prepare".into())
            .spawn(move || {
                // SAFETY: setpriority only changes this thread's nice value
                // (PRIO_PROCESS with a thread id means that thread); raising
                // it needs no privilege. Failing leaves the default.
                unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
                }
                mine.run();
            })
            .ok()?;
        Some(jobs)
    });
    // No preparer: every attach makes its own segment.
    if let Some(jobs) = jobs {
        lock(&jobs.queue).push_back(Arc::downgrade(inst));
        jobs.cv.notify_one();
    }
}

/// The preparer's queue: instances that started listening, in order.
struct Jobs {
    queue: Mutex<VecDeque<Weak<Instance>>>,
    cv: Condvar,
}

impl Jobs {
    fn run(&self) {
        loop {
            let job = {
                let mut q = lock(&self.queue);
                loop {
                    if let Some(job) = q.pop_front() {
                        break job;
                    }
                    q = self.cv.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(inst) = job.upgrade() else { continue };
            if !inst.is_listening() {
                continue;
            }
            if let Some(late) = inst.prepare_ahead() {
                self.hand_over(late);
            }
        }
    }

    /// A segment finished after its instance was claimed (its client got
    /// one made on the spot) goes to the next instance waiting in the
    /// queue that would have made the same, rather than being dropped:
    /// when clients come faster than the preparer's idle CPU allows, it
    /// then falls one segment behind instead of further and further
    /// (every late segment was a whole preparation thrown away). Dropped
    /// if none can take it: nothing is kept beyond one per listening
    /// instance.
    fn hand_over(&self, late: Prepared) {
        // Not under the queue's lock: `adopt_prepared` takes instance locks.
        let waiting: Vec<Arc<Instance>> =
            lock(&self.queue).iter().filter_map(Weak::upgrade).collect();
        let mut late = Some(late);
        for inst in waiting {
            match late.take() {
                Some(p) => late = inst.adopt_prepared(p),
                None => break,
            }
        }
    }
}

/// A connection's segment made ahead of its client.
struct Prepared {
    conn: Conn,
    client_lock: EndLock,
    /// The client's mapping and slot descriptors (see `prepare`).
    client_map: OwnedFd,
    client_slot: OwnedFd,
    /// The memfd's owner uid.
    owner: u32,
    /// What it was made from: which instances it can serve.
    shape: Shape,
    _counted: PreparedCount,
}

/// What [`Instance::prepare`] makes a segment and its server end from: two
/// instances of the same shape would make interchangeable segments (the
/// canceller, the other per-instance part, is set by the instance that
/// takes it).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shape {
    direction: Direction,
    pipe_type: PipeType,
    out_size: u32,
    in_size: u32,
    policy: Option<WaitPolicy>,
}

/// Segments prepared ahead hold their rings' memory (`fallocate`d) while
/// their instance merely listens: at most [`MAX_PREPARED`] exist in a
/// process at a time, so a server with hundreds of listening instances of
/// large quotas commits memory only for the connections it has. Beyond the
/// cap, `attach` makes the segment when the client comes, as it always can.
const MAX_PREPARED: usize = 16;

/// Number of [`Prepared`] segments alive in this process.
static PREPARED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One unit of [`PREPARED`], given back on drop.
struct PreparedCount;

impl PreparedCount {
    fn new() -> PreparedCount {
        PREPARED.fetch_add(1, Relaxed);
        PreparedCount
    }
}

impl Drop for PreparedCount {
    fn drop(&mut self) {
        PREPARED.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
#[path = "instance_tests.rs"]
mod tests;
