//! The per-process name registry: which names this process has instances
//! of, and for each its instances, its listening queue, its waiters and its
//! ServerGone connections; [`ServerOptions::create`], which finds or makes
//! the name and adds an instance to it (spec 1.4, 2.6, 4.2).
//!
//! # Invariants
//!
//! * [`REGISTRY`] maps a name's key to its [`NameEntry`] while any
//!   instance of it lives here (weakly: the entries' owners are the
//!   instances and the name's thread).
//! * A name's lock ([`NameEntry::inner`]) is taken before an instance's
//!   (`Instance::st`), never the other way round.
//! * `listening` holds each Listening instance once, longest-listening
//!   first; whoever takes an entry off it under the name's lock has
//!   claimed that instance (see `claim`).
//! * A name *vanishes* (its entry leaves the registry, its socket is shut,
//!   its waiters hear `FileNotFound`) once it has had an instance and has
//!   none left: no server end, no ServerGone connection, no member's
//!   instance. It never comes back; a later `create` makes a new entry.

use super::instance::{prepare_in_background, Instance};
use super::options::{Attrs, ServerOptions, UNLIMITED_INSTANCES};
use super::remote;
use super::waiters;
use super::{err, lock, NamedPipeServer};
use crate::datapath::ROLE_CLIENT;
use crate::error::ErrorKind;
use crate::info::{PipeType, ReadMode};
use crate::named::name::PipeName;
use crate::named::options::Permissions;
use crate::named::wire;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

impl ServerOptions {
    /// Creates an instance of `name` (`\\.\pipe\<name>`), Listening at once
    /// (spec 4.2). Errors in check order: `InvalidName`,
    /// `InvalidParameter`, then, if the name exists: `AccessDenied`
    /// (first-instance-only; the name's owner runs as a uid this process
    /// does not trust, see [`ServerOptions::trust_owner_uid`]; no
    /// create-instance right; other direction) or `PipeBusy` (max instances
    /// reached).
    pub fn create(&self, name: &str) -> io::Result<NamedPipeServer> {
        // Out of descriptors, memory or threads anywhere on the way:
        // `NoSystemResources`, never a bare OS error.
        let server = self.create_instance(name).map_err(crate::error::from_os)?;
        prepare_in_background(&server.inst);
        Ok(server)
    }

    fn create_instance(&self, name: &str) -> io::Result<NamedPipeServer> {
        let name = PipeName::for_server(name)?;
        if self.max_instances == 0 || self.max_instances > UNLIMITED_INSTANCES {
            return Err(err(ErrorKind::InvalidParameter));
        }
        if self.pipe_type == PipeType::Byte && self.read_mode == ReadMode::Message {
            return Err(err(ErrorKind::InvalidParameter));
        }
        // A name's state can change under us (it vanishes, another process
        // takes it over): each round looks again, a bounded number of times.
        for _ in 0..CREATE_ROUNDS {
            let mut registry = lock(&REGISTRY);
            if let Some(entry) = registry.get(name.key()).and_then(Weak::upgrade) {
                drop(registry);
                match entry.add_instance(self)? {
                    Some(server) => return Ok(server),
                    // The name vanished under us: start afresh, without
                    // keeping the old entry (and its socket) alive.
                    None => {
                        drop(entry);
                        continue;
                    }
                }
            }
            // Not ours: maybe another process owns it.
            if let Some(listener) = wire::listen(&name.socket_name())? {
                let attrs = Attrs {
                    direction: self.direction,
                    pipe_type: self.pipe_type,
                    max_instances: self.max_instances,
                    default_timeout: self.default_timeout,
                    security: self.security,
                    reject_remote: self.reject_remote,
                    owner: (
                        rustix::process::geteuid().as_raw(),
                        rustix::process::getegid().as_raw(),
                    ),
                };
                let entry = NameEntry::start(&name, attrs, Some(listener))?;
                registry.insert(name.key().to_owned(), Arc::downgrade(&entry));
                drop(registry);
                return Ok(entry
                    .add_instance(self)?
                    .expect("a fresh name cannot have vanished"));
            }
            drop(registry);
            // Another process owns the name: ask it whether we may add an
            // instance (its checks give the spec's errors).
            if self.first_instance {
                return Err(err(ErrorKind::AccessDenied));
            }
            let Some((link, mut attrs)) =
                remote::request_create(&name, self.direction, &self.owner_trust)?
            else {
                // Nobody answered: the owner is vanishing or being replaced.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            let mut registry = lock(&REGISTRY);
            let entry = match registry.get(name.key()).and_then(Weak::upgrade) {
                // Another thread of ours joined meanwhile.
                Some(entry) => entry,
                None => {
                    // The owner's word on who owns the name and who may use
                    // it is not the kernel's: this process judges the
                    // clients sent to it, and the name should it take it
                    // over, by its own security, as their owner.
                    attrs.security = self.security;
                    // Likewise its own refusal of remote clients, for the
                    // clients forwarded to it and after a takeover (the
                    // owner does not send its own in JOINED).
                    attrs.reject_remote = self.reject_remote;
                    attrs.owner = (
                        rustix::process::geteuid().as_raw(),
                        rustix::process::getegid().as_raw(),
                    );
                    let entry = NameEntry::start(&name, attrs, None)?;
                    registry.insert(name.key().to_owned(), Arc::downgrade(&entry));
                    entry
                }
            };
            drop(registry);
            if let Some(server) = entry.adopt(self, link) {
                return Ok(server);
            }
        }
        Err(err(ErrorKind::PipeBusy))
    }
}

/// How many times `create` looks again at a name that changes under it.
pub(super) const CREATE_ROUNDS: usize = 2000;

/// Process-wide map from name key to the name's state.
pub(super) static REGISTRY: std::sync::LazyLock<Mutex<HashMap<String, Weak<NameEntry>>>> =
    std::sync::LazyLock::new(|| Mutex::new(HashMap::new()));

/// A name this process has instances of: as its *owner* (it bound the
/// socket and keeps the registry of every instance, its own and other
/// processes') or as a *member* (its instances are linked to the owner).
pub(super) struct NameEntry {
    pub(super) name: PipeName,
    pub(super) attrs: Attrs,
    /// The listening socket: set from the start by the owner, at takeover
    /// by a member. Set means "we are the owner".
    pub(super) listener: OnceLock<OwnedFd>,
    /// Wakes the name's thread (an eventfd) when what it watches changed.
    pub(super) wake: OwnedFd,
    pub(super) inner: Mutex<NameInner>,
}

/// An entry of the listening queue: an instance of this process, or
/// (owner only) one of another process.
#[derive(Clone)]
pub(super) enum Slot {
    Local(Arc<Instance>),
    Remote(Arc<remote::Remote>),
}

impl Slot {
    pub(super) fn is(&self, inst: *const Instance) -> bool {
        matches!(self, Slot::Local(i) if core::ptr::eq(Arc::as_ptr(i), inst))
    }
}

/// A connection whose server end closed while its client holds its end
/// (ServerGone): it counts as an instance until the client closes.
pub(super) struct Zombie {
    /// A lock-free OFD of the segment, to ask about the client.
    pub(super) probe: OwnedFd,
    /// Member: the instance's link, kept open so the owner keeps counting
    /// it; closed (and the owner told) with the zombie.
    pub(super) link: Option<wire::Link>,
}

#[derive(Default)]
pub(super) struct NameInner {
    /// Every live server end of the name in this process.
    pub(super) instances: Vec<Weak<Instance>>,
    /// Listening instances, longest-listening first (spec 4.4 step 6).
    /// The owner's queue holds other processes' instances too; a member's
    /// only orders its own, for a takeover.
    pub(super) listening: VecDeque<Slot>,
    /// ServerGone connections of this process.
    pub(super) zombies: Vec<Zombie>,
    /// Owner: instances of other processes, one link each.
    pub(super) remotes: Vec<Arc<remote::Remote>>,
    /// Clients waiting for an instance to become Listening (bounded: see
    /// the `waiters` module).
    pub(super) waiters: Vec<waiters::Waiter>,
    /// The name is gone: no instance left.
    pub(super) vanished: bool,
    /// The first instance was added (before that, no instances is normal).
    pub(super) started: bool,
}

impl NameInner {
    pub(super) fn prune(&mut self) {
        self.instances.retain(|w| w.strong_count() > 0);
        self.zombies.retain(|z| {
            shmpipe_engine::liveness::peer_alive(z.probe.as_fd(), ROLE_CLIENT).unwrap_or(false)
        });
    }

    /// Instances of the name, as far as this process knows them: an
    /// owner's count is the name's, a member's only its own.
    pub(super) fn count(&mut self) -> u32 {
        self.prune();
        (self.instances.len() + self.zombies.len() + self.remotes.len()) as u32
    }
}

/// The bookkeeping the `link` module does, and all of it: the owner counts,
/// queues and forgets other processes' instances ([`remote::Remote`]), a
/// member claims its own instances for forwarded clients, and the name's
/// thread finds the links it watches. `link` touches no field of
/// [`NameInner`]; every rule about the queue (one entry per Listening
/// instance, longest-listening first) stays in this file.
impl NameInner {
    /// Whether the name still takes instances: its first one was added and
    /// it has not vanished.
    pub(super) fn is_open(&self) -> bool {
        self.started && !self.vanished
    }

    /// Whether the name has vanished (see the module's invariants).
    pub(super) fn is_vanished(&self) -> bool {
        self.vanished
    }

    /// Whether `max` instances (a name's max instances) are all there.
    pub(super) fn is_full(&mut self, max: u32) -> bool {
        max != UNLIMITED_INSTANCES && self.count() >= max
    }

    /// Owner: counts the instance of another process behind `r` and queues
    /// it, Listening, behind every other; tells the waiters.
    pub(super) fn add_remote(&mut self, r: Arc<remote::Remote>) {
        self.remotes.push(Arc::clone(&r));
        self.listening.push_back(Slot::Remote(r));
        NameEntry::wake_waiters(self);
    }

    /// Owner: forgets `r`'s instance (no longer counted nor queued).
    pub(super) fn remove_remote(&mut self, r: &Arc<remote::Remote>) {
        self.remotes.retain(|x| !Arc::ptr_eq(x, r));
        self.unqueue_remote(r);
    }

    /// Owner: `r`'s instance is Listening again: at the back of the queue
    /// (spec 4.3); tells the waiters.
    pub(super) fn queue_remote(&mut self, r: &Arc<remote::Remote>) {
        self.listening.push_back(Slot::Remote(Arc::clone(r)));
        NameEntry::wake_waiters(self);
    }

    /// Owner: `r`'s instance is no longer Listening.
    pub(super) fn unqueue_remote(&mut self, r: &Arc<remote::Remote>) {
        self.listening
            .retain(|s| !matches!(s, Slot::Remote(x) if Arc::ptr_eq(x, r)));
    }

    /// Member: takes `inst` off the queue for a forwarded client; `true`
    /// if it was there, which makes the caller its claimant.
    pub(super) fn claim_local(&mut self, inst: &Arc<Instance>) -> bool {
        let before = self.listening.len();
        self.listening.retain(|s| !s.is(Arc::as_ptr(inst)));
        before != self.listening.len()
    }

    /// Member: gives back a claim of `inst` that came to nothing while it
    /// stayed Listening: first in the queue again, where it was.
    pub(super) fn unclaim_local(&mut self, inst: &Arc<Instance>) {
        self.listening.push_front(Slot::Local(Arc::clone(inst)));
    }

    /// Owner: the instances of other processes, one link each.
    pub(super) fn remotes(&self) -> &[Arc<remote::Remote>] {
        &self.remotes
    }

    /// This process's live server ends of the name.
    pub(super) fn live_instances(&self) -> impl Iterator<Item = Arc<Instance>> + '_ {
        self.instances.iter().filter_map(Weak::upgrade)
    }

    /// Member: the links our ServerGone connections keep open.
    pub(super) fn zombie_links(&self) -> impl Iterator<Item = &wire::Link> + '_ {
        self.zombies.iter().filter_map(|z| z.link.as_ref())
    }

    /// Member becoming the owner: the links of our ServerGone connections,
    /// taken out (the caller closes them once the name is its own).
    pub(super) fn take_zombie_links(&mut self) -> Vec<wire::Link> {
        self.zombies
            .iter_mut()
            .filter_map(|z| z.link.take())
            .collect()
    }

    /// Member: the owner behind the link `fd` of a ServerGone connection is
    /// gone; the connection no longer reports to anyone.
    pub(super) fn forget_zombie_link(&mut self, fd: &Arc<OwnedFd>) {
        for z in &mut self.zombies {
            if z.link.as_ref().is_some_and(|l| Arc::ptr_eq(&l.fd, fd)) {
                z.link = None;
            }
        }
    }
}

impl NameEntry {
    /// Makes the entry and starts its thread.
    fn start(name: &PipeName, a: Attrs, listener: Option<OwnedFd>) -> io::Result<Arc<NameEntry>> {
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        let entry = Arc::new(NameEntry {
            name: name.clone(),
            attrs: a,
            listener: OnceLock::new(),
            wake,
            inner: Mutex::new(NameInner::default()),
        });
        if let Some(l) = listener {
            entry.own(l)?;
        }
        let me = Arc::clone(&entry);
        std::thread::Builder::new()
            .name("shmpipe-name".into())
            .spawn(move || me.run())?;
        Ok(entry)
    }

    /// Makes `listener` (bound to our name) the name's socket: from now on
    /// this process is the owner.
    pub(super) fn own(&self, listener: OwnedFd) -> io::Result<()> {
        // The name's thread polls it and accepts until nothing is left.
        rustix::io::ioctl_fionbio(&listener, true)?;
        let _ = self.listener.set(listener);
        self.wake();
        Ok(())
    }

    pub(super) fn is_owner(&self) -> bool {
        self.listener.get().is_some()
    }

    pub(super) fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    /// What a process with these credentials may do with the name.
    pub(super) fn permissions(&self, cred: &wire::PeerCred, groups: &[u32]) -> Permissions {
        self.attrs.security.permissions(
            self.attrs.owner.0,
            self.attrs.owner.1,
            cred.uid,
            cred.gid,
            groups,
        )
    }

    /// Adds an instance; `Ok(None)` if the name turned out to have vanished
    /// (the caller starts afresh).
    fn add_instance(self: &Arc<Self>, o: &ServerOptions) -> io::Result<Option<NamedPipeServer>> {
        for _ in 0..CREATE_ROUNDS {
            {
                let mut inner = lock(&self.inner);
                if inner.started && !inner.vanished && inner.count() == 0 {
                    // Every instance is gone (the last ServerGone client
                    // closed just now): the name vanishes, and may come back
                    // with new attributes.
                    self.vanish_if_empty(&mut inner);
                }
                if inner.vanished {
                    return Ok(None);
                }
                if self.is_owner() {
                    return self.add_local(o, &mut inner).map(Some);
                }
            }
            // A member: the owner decides, and links the new instance.
            if o.first_instance {
                return Err(err(ErrorKind::AccessDenied));
            }
            match remote::request_create(&self.name, o.direction, &o.owner_trust)? {
                Some((link, _)) => {
                    if let Some(server) = self.adopt(o, link) {
                        return Ok(Some(server));
                    }
                }
                // The owner is going: we, or another member, take over.
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        Err(err(ErrorKind::PipeBusy))
    }

    /// The owner adds an instance of its own (spec 4.2 step 3).
    fn add_local(
        self: &Arc<Self>,
        o: &ServerOptions,
        inner: &mut NameInner,
    ) -> io::Result<NamedPipeServer> {
        // The creator of a fresh name set its attributes; first-instance
        // and direction rules apply to later instances only.
        if inner.started && (o.first_instance || o.direction != self.attrs.direction) {
            return Err(err(ErrorKind::AccessDenied));
        }
        if self.attrs.max_instances != UNLIMITED_INSTANCES
            && inner.count() >= self.attrs.max_instances
        {
            return Err(err(ErrorKind::PipeBusy));
        }
        let inst = Instance::new(self.attrs, o, None);
        inner.started = true;
        inner.instances.push(Arc::downgrade(&inst));
        inner.listening.push_back(Slot::Local(Arc::clone(&inst)));
        Self::wake_waiters(inner);
        Ok(NamedPipeServer {
            name: Arc::clone(self),
            inst,
        })
    }

    /// A member adds the instance the owner just registered behind `link`;
    /// `None` (the link closed: the owner forgets it) if this entry is no
    /// longer a member.
    fn adopt(self: &Arc<Self>, o: &ServerOptions, link: wire::Link) -> Option<NamedPipeServer> {
        let mut inner = lock(&self.inner);
        if inner.vanished || self.is_owner() {
            return None;
        }
        let inst = Instance::new(self.attrs, o, Some(link));
        inner.started = true;
        inner.instances.push(Arc::downgrade(&inst));
        inner.listening.push_back(Slot::Local(Arc::clone(&inst)));
        drop(inner);
        // Modes other than the defaults: the owner's view (INFO) follows.
        inst.report(wire::VERDICT_NONE);
        self.wake();
        Some(NamedPipeServer {
            name: Arc::clone(self),
            inst,
        })
    }

    pub(super) fn wake_waiters(inner: &mut NameInner) {
        for w in inner.waiters.drain(..) {
            let _ = wire::send(w.as_fd(), &[wire::RESP_AVAILABLE], None);
        }
    }

    /// Called when an instance's last handle closed.
    pub(super) fn remove_instance(self: &Arc<Self>, inst: &Instance, zombie: Option<Zombie>) {
        let mut inner = lock(&self.inner);
        // The dying instance's Arc is still alive here: forget it explicitly.
        inner.instances.retain(|w| !core::ptr::eq(w.as_ptr(), inst));
        inner.listening.retain(|s| !s.is(inst));
        if let Some(z) = zombie {
            inner.zombies.push(z);
            // The name's thread must switch to watching the zombie.
            self.wake();
        }
        self.vanish_if_empty(&mut inner);
    }

    pub(super) fn vanish_if_empty(&self, inner: &mut NameInner) {
        if inner.vanished || !inner.started || inner.count() > 0 {
            return;
        }
        inner.vanished = true;
        inner.waiters.clear(); // closing them tells waiting clients: FileNotFound
        let mut registry = lock(&REGISTRY);
        if registry
            .get(self.name.key())
            .is_some_and(|w| w.strong_count() == 0 || core::ptr::eq(w.as_ptr(), self))
        {
            registry.remove(self.name.key());
        }
        drop(registry);
        // Frees the name at once; the thread sees `vanished` and ends.
        if let Some(l) = self.listener.get() {
            let _ = rustix::net::shutdown(l, rustix::net::Shutdown::Both);
        }
        self.wake();
    }
}
