//! The server side: the per-process name registry, the acceptor thread of
//! each name, instances and their states (spec 1.4, 4.2, 4.3, 4.12).
//!
//! # How a name is found and an instance claimed
//!
//! The first instance of a name binds an abstract `SOCK_SEQPACKET` socket
//! named after the name's case-folded key (see
//! [`PipeName`](crate::named::PipeName)). A bound
//! abstract name cannot be bound again, so two servers cannot both own a
//! name, and it disappears with the socket: nothing is ever left stale. An
//! acceptor thread per name answers clients:
//!
//! * `OPEN`: the kernel tells who is connecting (`SO_PEERCRED`,
//!   `SO_PEERGROUPS`); the pipe's [`Security`](crate::named::Security) and
//!   direction decide
//!   `AccessDenied`; then, under the name's lock, the instance that has been
//!   Listening longest is taken off the listening queue (so concurrent opens
//!   race for it atomically: one wins, the others get `PipeBusy`), and the
//!   client's end of a fresh duplex segment travels back with `SCM_RIGHTS`.
//!   The segment was made ahead, while the instance listened, by a
//!   low-priority thread (`prepare_in_background`), so the name's thread
//!   serves a local `OPEN` itself, without waiting on anyone; only one
//!   forwarded to another process's instance gets a thread of its own.
//! * `WAIT`: answered at once if an instance is Listening, otherwise parked
//!   until one is (creation, or `connect` after `disconnect`), or until the
//!   name vanishes (the socket closes: the client sees `FileNotFound`).
//!   Parked waiters are bounded per peer uid and in total, and none is
//!   parked near the descriptor limit; the excess hears
//!   `NoSystemResources` (see the `waiters` module).
//! * `STATE`: the instance count, for clients' `get_state`, told only to
//!   a peer the pipe grants something (as `INFO`; `AccessDenied`
//!   otherwise).
//! * `CREATE`: another process adds an instance. If the name's rules allow
//!   it, the connection stays open as that instance's link and the
//!   instance joins the same queue and count as ours; an `OPEN` that picks
//!   it is forwarded over the link. That process takes the name over if
//!   this one dies. See the `link` module.
//!
//! A fresh segment per connection means an orphaned client end (after
//! `disconnect`) can never touch the next client's data: its segment is cut
//! ([`End::disconnect`]) and nobody else uses it.
//!
//! # Liveness
//!
//! Each side of a connection holds its end's role lock (see the engine's
//! `liveness`): the server learns that the client left (ClientGone) and the
//! client that the server left (ServerGone) from the kernel, whatever the
//! way the other process ended.
//!
//! # Files
//!
//! Each file imports only from the ones above it (and this one):
//!
//! * `options`: the [`ServerOptions`] builder and the name's `Attrs`;
//! * `waiters`: the bound on parked `WAIT`s, and the parked waiters;
//! * `instance`: an instance's state machine and the segment made ahead
//!   for its next connection;
//! * `remote`: the owner's record of another process's instance, and
//!   joining a name another process owns (`CREATE`/`JOINED`);
//! * `registry`: the process's names, each with its instances, listening
//!   queue, waiters and ServerGone connections; [`ServerOptions::create`];
//! * `claim`: `OPEN`, from the permission check to the attached client;
//! * `link`: what runs over the links between an owner and its members;
//! * `acceptor`: the name's thread and its request dispatch;
//! * `data`: the handle's reads, writes, peek, flush and transact;
//! * this file: the [`NamedPipeServer`] handle.
//!
//! [`End::disconnect`]: shmpipe_engine::channel::End::disconnect

mod acceptor;
#[cfg(feature = "tokio")]
pub(crate) mod async_hooks;
mod claim;
mod data;
mod instance;
mod link;
mod options;
mod readiness;
mod registry;
mod remote;
mod waiters;

use instance::{prepare_in_background, Instance, Phase};
pub use options::{ServerOptions, UNLIMITED_INSTANCES};
use registry::{NameEntry, Slot, Zombie};

use super::options::{Access, Connected, Credentials, MODE_MESSAGE_READ, MODE_NONBLOCKING};
use super::wire;
use crate::datapath::Conn;
use crate::error::{Error, ErrorKind};
use crate::info::{EndKind, PipeInfo, PipeState, PipeType, ReadMode, WaitMode};
use shmpipe_engine::liveness::reopen;
use shmpipe_engine::WaitPolicy;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn err(kind: ErrorKind) -> io::Error {
    Error::io(kind)
}

/// A server end of a named pipe instance.
///
/// Reads and writes go through [`std::io::Read`] / [`std::io::Write`] (byte
/// semantics, `Ok(0)` at the end of the pipe) or the explicit message calls
/// ([`NamedPipeServer::recv_msg`], [`NamedPipeServer::send_msg`]).
pub struct NamedPipeServer {
    /// The name the instance belongs to.
    name: Arc<NameEntry>,
    inst: Arc<Instance>,
}

impl std::fmt::Debug for NamedPipeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedPipeServer")
            .field("name", &self.name.name.full())
            .finish_non_exhaustive()
    }
}

impl Drop for NamedPipeServer {
    fn drop(&mut self) {
        let probe = {
            let mut st = lock(&self.inst.st);
            let conn = st.conn.take();
            st.phase = Phase::Disconnected;
            conn.and_then(|c| {
                // ServerGone: the instance lives on while the client holds
                // its end (spec 1.5); remember how to ask about the client.
                c.peer_alive().then(|| reopen(c.end().fd()).ok()).flatten()
            })
        };
        self.inst.cv.notify_all();
        // A member's link closes with the instance, or lives on with its
        // zombie (the owner keeps counting it until the client leaves).
        let link = lock(&self.inst.link).take();
        let zombie = probe.map(|probe| Zombie {
            probe,
            link: link::zombie_link(link),
        });
        self.name.remove_instance(&self.inst, zombie);
    }
}

impl NamedPipeServer {
    fn access(&self) -> Access {
        self.name.attrs.direction.server_access()
    }

    fn modes(&self) -> u8 {
        self.inst.modes.load(Relaxed)
    }

    fn nonblocking(&self) -> bool {
        self.modes() & MODE_NONBLOCKING != 0
    }

    /// The pipe's full name.
    pub fn name(&self) -> String {
        self.name.name.full()
    }

    /// Waits for a client (spec 4.3). `Ok(Connected::Already)` when one had
    /// attached before the call (Windows' `ERROR_PIPE_CONNECTED`, a
    /// success). After `disconnect`, re-arms the instance (it joins the back
    /// of the listening queue). Errors: `NoData` if the client already left
    /// (disconnect first), `PipeListening` for a nonblocking end with no
    /// client, `PipeNotConnected` if the instance is disconnected meanwhile.
    ///
    /// A blocking `connect` is ended by [`NamedPipeServer::canceller`]
    /// with `OperationAborted`, leaving the instance Listening (spec 7.4),
    /// never by a signal.
    pub fn connect(&self) -> io::Result<Connected> {
        let inst = &self.inst;
        let mut st = lock(&inst.st);
        let epoch = st.epoch;
        let mut waited = false;
        // Pending (cancellable) from the first wait on.
        let mut pending = None;
        loop {
            match st.phase {
                Phase::Connected => {
                    let conn = st
                        .conn
                        .clone()
                        .expect("connected instance has a connection");
                    if conn.peer_alive() {
                        return Ok(if waited {
                            Connected::New
                        } else {
                            Connected::Already
                        });
                    }
                    return Err(err(ErrorKind::NoData));
                }
                Phase::Disconnected if waited || st.epoch != epoch => {
                    return Err(err(ErrorKind::PipeNotConnected));
                }
                Phase::Disconnected => {
                    // From here on a client may attach at any moment, even
                    // before this call looks again: it came after the call,
                    // so it is a new one, never `Already`.
                    waited = true;
                    st = self.listen_again(st);
                }
                Phase::Listening => {
                    if self.nonblocking() {
                        return Err(err(ErrorKind::PipeListening));
                    }
                    // Checked under `st`: the cancel's waker takes `st`
                    // before it notifies, so it cannot slip in between this
                    // check and the wait.
                    if pending
                        .get_or_insert_with(|| inst.cancel.begin())
                        .is_cancelled()
                    {
                        return Err(err(ErrorKind::OperationAborted));
                    }
                    waited = true;
                    st = inst.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }

    /// The canceller of this handle's blocking operations (Windows'
    /// `CancelIoEx`): a waiting [`NamedPipeServer::connect`], and reads,
    /// writes, flushes and transacts on its connections. See
    /// [`Canceller`](crate::Canceller) for what a cancelled operation
    /// leaves behind.
    ///
    /// ```
    /// use shmpipe::named::ServerOptions;
    /// use shmpipe::{Error, ErrorKind};
    /// let name = format!(r"\\.\pipe\doc-server-cancel-{}", std::process::id());
    /// let server = std::sync::Arc::new(ServerOptions::new().create(&name)?);
    /// let canceller = server.canceller();
    /// let s = server.clone();
    /// let t = std::thread::spawn(move || s.connect());
    /// while canceller.pending() == 0 {
    ///     std::thread::yield_now(); // until connect waits
    /// }
    /// canceller.cancel()?;
    /// let e = t.join().unwrap().unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::OperationAborted));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn canceller(&self) -> crate::Canceller {
        crate::Canceller(self.inst.cancel.clone())
    }

    /// Cuts the client off (spec 4.12): unread data both ways is discarded,
    /// pending operations on both ends fail with `PipeNotConnected`, the
    /// client's end is orphaned. `connect` makes the instance listen again.
    pub fn disconnect(&self) -> io::Result<()> {
        // The name's lock before the instance's, the order `open` and `WAIT`
        // take them in (the other order could deadlock with them).
        let mut inner = lock(&self.name.inner);
        let mut st = lock(&self.inst.st);
        match st.phase {
            Phase::Disconnected => return Err(err(ErrorKind::PipeNotConnected)),
            Phase::Listening => {
                inner.listening.retain(|s| !s.is(Arc::as_ptr(&self.inst)));
            }
            Phase::Connected => {
                if let Some(c) = st.conn.take() {
                    c.disconnect();
                }
            }
        }
        drop(inner);
        st.phase = Phase::Disconnected;
        st.client = None;
        st.epoch += 1;
        drop(st);
        self.inst.cv.notify_all();
        self.inst.report(wire::VERDICT_NONE);
        Ok(())
    }

    /// Runs a data operation on the current connection: `PipeListening`
    /// or `PipeNotConnected` without one.
    ///
    /// The operation runs on a clone of the connection's `Arc`, taken under
    /// the state lock: a blocked call may outlive a `disconnect` (which
    /// cuts the segment and wakes it), so the `Conn` must live until the
    /// last call on it returns. A read lock held for the whole operation
    /// would save two atomic operations, but then `disconnect`, and behind
    /// it the name's thread, would wait for every operation in progress,
    /// and a hostile client could keep one going (a client that clears the
    /// hang-up bits it shares with the server delays the wake-ups that
    /// would end it).
    fn with_conn<T>(&self, op: impl FnOnce(&Conn) -> io::Result<T>) -> io::Result<T> {
        let conn = {
            let st = lock(&self.inst.st);
            match st.phase {
                Phase::Listening => return Err(err(ErrorKind::PipeListening)),
                Phase::Disconnected => return Err(err(ErrorKind::PipeNotConnected)),
                Phase::Connected => st
                    .conn
                    .clone()
                    .expect("connected instance has a connection"),
            }
        };
        op(&conn)
    }

    fn need(&self, ok: bool) -> io::Result<()> {
        if ok {
            Ok(())
        } else {
            Err(err(ErrorKind::AccessDenied))
        }
    }

    /// `get_info` (spec 4.14).
    pub fn info(&self) -> io::Result<PipeInfo> {
        self.need(self.access().read_attributes)?;
        Ok(PipeInfo {
            end: EndKind::Server,
            pipe_type: self.name.attrs.pipe_type,
            out_size: self.inst.out_size,
            in_size: self.inst.in_size,
            max_instances: self.name.attrs.max_instances,
        })
    }

    /// `get_state` (spec 4.15).
    pub fn state(&self) -> io::Result<PipeState> {
        self.need(self.access().read_attributes)?;
        let m = self.modes();
        Ok(PipeState {
            nonblocking: m & MODE_NONBLOCKING != 0,
            message_read: m & MODE_MESSAGE_READ != 0,
            current_instances: self.current_instances(),
        })
    }

    /// `set_state` (spec 4.16): message read mode on a byte pipe is
    /// `InvalidParameter`.
    pub fn set_state(
        &self,
        read_mode: Option<ReadMode>,
        wait_mode: Option<WaitMode>,
    ) -> io::Result<()> {
        self.need(self.access().write_attributes)?;
        if read_mode == Some(ReadMode::Message) && self.name.attrs.pipe_type == PipeType::Byte {
            return Err(err(ErrorKind::InvalidParameter));
        }
        set_modes(&self.inst.modes, read_mode, wait_mode);
        self.inst.report(wire::VERDICT_NONE);
        Ok(())
    }

    /// The name's instance count: the owner keeps it; a member asks.
    fn current_instances(&self) -> u32 {
        let name = &self.name;
        if !name.is_owner() {
            if let Ok(n) = name.remote_count() {
                return n;
            }
        }
        lock(&name.inner).count()
    }

    /// Shorthand for `set_state(Some(mode), None)`.
    pub fn set_read_mode(&self, mode: ReadMode) -> io::Result<()> {
        self.set_state(Some(mode), None)
    }

    /// Sets how blocking operations on this server end wait (see
    /// [`ServerOptions::wait_policy`]): for the current connection and for
    /// every later one (after `disconnect` and `connect`).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::WaitPolicy;
    /// let name = format!(r"\\.\pipe\doc-server-set-policy-{}", std::process::id());
    /// let mut server = ServerOptions::new().create(&name)?;
    /// server.set_wait_policy(WaitPolicy::park());
    /// let client = ClientOptions::new().open(&name)?;
    /// let t = std::thread::spawn(move || client.send_msg(b"late").map(|_| client));
    /// assert_eq!(server.recv_msg(&mut [0u8; 4])?.len, 4); // parks until the data comes
    /// drop(t.join().unwrap()?);
    /// server.disconnect()?;
    /// server.set_nonblocking(true)?;
    /// assert!(server.connect().is_err()); // listening again (PipeListening)
    /// let client = ClientOptions::new().open(&name)?; // this connection parks too
    /// client.send_msg(b"again")?;
    /// assert_eq!(server.recv_msg(&mut [0u8; 8])?.len, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        let st = lock(&self.inst.st);
        *lock(&self.inst.policy) = Some(policy);
        if let Some(c) = &st.conn {
            c.set_wait_policy(policy);
        }
    }

    /// Shorthand for `set_state(None, Some(..))`.
    pub fn set_nonblocking(&self, yes: bool) -> io::Result<()> {
        self.set_state(None, Some(WaitMode::from_nonblocking(yes)))
    }

    /// The pid of the process that opened the client end (spec 4.17);
    /// `NotFound` when there is no client (Listening, Disconnected). The
    /// kernel's pid as seen from this process's pid namespace: 0 when the
    /// client lives in a namespace this one cannot see.
    pub fn client_process_id(&self) -> io::Result<u32> {
        let st = lock(&self.inst.st);
        st.client
            .as_ref()
            .map(|c| c.pid)
            .ok_or_else(|| err(ErrorKind::NotFound))
    }

    /// This process's pid (the creator of the instance).
    pub fn server_process_id(&self) -> io::Result<u32> {
        Ok(std::process::id())
    }

    /// The client's identity, captured by the kernel when it opened
    /// (spec 4.18); `CannotImpersonate` without a client.
    pub fn client_credentials(&self) -> io::Result<Credentials> {
        let st = lock(&self.inst.st);
        st.client
            .clone()
            .ok_or_else(|| err(ErrorKind::CannotImpersonate))
    }

    /// Whether the connected client came through a gateway from another
    /// machine (see [`Credentials::remote`]); `CannotImpersonate` without
    /// a client.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-is-remote-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let _client = ClientOptions::new().open(&name)?;
    /// assert!(!server.client_is_remote()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn client_is_remote(&self) -> io::Result<bool> {
        self.client_credentials().map(|c| c.remote)
    }
}

pub(crate) fn set_modes(
    modes: &AtomicU8,
    read_mode: Option<ReadMode>,
    wait_mode: Option<WaitMode>,
) {
    match read_mode {
        Some(ReadMode::Message) => {
            modes.fetch_or(MODE_MESSAGE_READ, Relaxed);
        }
        Some(ReadMode::Byte) => {
            modes.fetch_and(!MODE_MESSAGE_READ, Relaxed);
        }
        None => {}
    }
    match wait_mode {
        Some(WaitMode::Nonblocking) => {
            modes.fetch_or(MODE_NONBLOCKING, Relaxed);
        }
        Some(WaitMode::Blocking) => {
            modes.fetch_and(!MODE_NONBLOCKING, Relaxed);
        }
        None => {}
    }
}

byte_io!(NamedPipeServer);

impl NamedPipeServer {
    /// A disconnected instance listens again (`connect` after
    /// `disconnect`, blocking or async): it is listed for the name's next
    /// client, waiting openers are woken, its next segment is prepared.
    /// Takes and gives back the instance's state lock, which it must not
    /// hold while it takes the name's.
    fn listen_again<'a>(
        &'a self,
        mut st: MutexGuard<'a, instance::InstState>,
    ) -> MutexGuard<'a, instance::InstState> {
        let inst = &self.inst;
        st.phase = Phase::Listening;
        drop(st);
        {
            let mut inner = lock(&self.name.inner);
            inner.listening.push_back(Slot::Local(Arc::clone(inst)));
            NameEntry::wake_waiters(&mut inner);
        }
        prepare_in_background(inst);
        inst.report(wire::VERDICT_NONE);
        lock(&inst.st)
    }
}
