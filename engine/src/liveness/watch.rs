//! The kernel's notice that an end may have closed: one inotify watcher per
//! process, so that a blocked end learns of a SIGKILLed peer at once rather
//! than at its next park slice.
//!
//! # Why inotify
//!
//! An end is open while an open file description (OFD) of the segment's
//! memfd holds the OFD lock of its role (see [`super`]). A killed process
//! runs no code, so nothing in shared memory tells its peer; but the kernel
//! releases the dead process's descriptions, and inotify's
//! `IN_CLOSE_WRITE | IN_CLOSE_NOWRITE` on the memfd's inode fires whenever
//! *any* description of that inode is released, in any process, SIGKILL
//! included (≈ 0.2 ms from `kill` to the event). The event says nothing
//! about which description went, so it is only the moment to ask the
//! kernel again ([`peer_alive`], `F_OFD_GETLK`, ≈ 0.7 µs) for each end
//! watching that inode.
//!
//! # Algorithm
//!
//! * One inotify instance per process, made on first use, close-on-exec and
//!   non-blocking, and one thread (`shmpipe-watch`) polling it: never one
//!   instance per end (`fs.inotify.max_user_instances` is 128 per user).
//! * [`register`] (from `End::watch_peer`, when an end first waits) adds a
//!   watch on the end's inode through `/proc/self/fd/N`; the same inode
//!   added twice gives the same watch descriptor (wd), so the registry maps
//!   a wd to every local end registered on it. Right after registering, it
//!   asks the kernel once: a peer that died before the watch existed left no
//!   event to wait for.
//! * On events for a wd the watcher asks, for each end registered there,
//!   whether its peer's role is still held; if not, it runs the end's
//!   `on_gone` (which raises the peer's hang-up hints and wakes every
//!   waiter: they confirm with the kernel themselves, as for any hint).
//!   `IN_Q_OVERFLOW` (events were lost) re-checks every end; `IN_IGNORED`
//!   (the watch is gone) re-checks that wd's ends and forgets them (they
//!   fall back to their park slices).
//! * The kernel posts the close event just before it releases the
//!   description's locks (`__fput`: `fsnotify_close`, then
//!   `locks_remove_file`), so a watcher quick enough can still see the dead
//!   peer's lock. Every wd that had events is therefore checked again
//!   ([`RECHECKS`]: 0.1 ms later, then 1, 10 and 100 ms after that), which
//!   costs a few `F_OFD_GETLK` per close event; a dying process held up
//!   longer than that inside `__fput` is left to the park slice.
//! * [`deregister`] (from `End`'s drop) removes the end; the last end of a
//!   wd removes the watch (`inotify_rm_watch`), which would otherwise pin
//!   the inode and with it the segment's memory.
//!
//! # Invariants
//!
//! * An entry holds its end's descriptor *number*, used only under the
//!   registry lock, and lives in the registry only while that descriptor is
//!   open: an end deregisters before it closes its descriptor.
//! * An event is only a reason to ask the kernel, never an answer: a
//!   process that opens and closes the memfd in a loop costs the watcher a
//!   look per end per wake-up (inotify merges repeated unread events), and
//!   cannot make an end look closed.
//! * Watching never fails an operation: if inotify cannot be had (limits,
//!   no `/proc`, seccomp), the end is left to its park-slice checks, and
//!   each end tries once per process generation.
//! * Fork: the child has no watcher thread and shares the parent's inotify
//!   instance, so a `pthread_atfork` child handler closes the child's copy
//!   and bumps the process generation; the registry and every end's
//!   registration are stale from then on, and the child starts afresh on
//!   its next wait. The registry lock is taken around `fork`, so the child
//!   never inherits it held.

use super::peer_alive;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::{AsRawFd, BorrowedFd, RawFd};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What the watcher does for an end whose peer it found gone (raise the
/// peer's hang-up hints and wake the waiters). Runs under the registry lock:
/// it must not call back into this module.
pub type OnGone = Box<dyn Fn() + Send>;

/// When, after a close event, its wd is checked again (see the module
/// documentation: the event can come before the lock is released).
pub const RECHECKS: [Duration; 4] = [
    Duration::from_micros(100),
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(100),
];

/// The process generation: bumped in a forked child, so that everything
/// registered before the fork is stale there.
static GENERATION: AtomicU32 = AtomicU32::new(1);

/// One end's registration: in which process generation it registered (or
/// tried to), and its entry's id (0: none).
///
/// ```
/// use shmpipe_engine::liveness::watch::Registration;
/// let r = Registration::new();
/// assert!(!r.settled()); // never registered: the first wait will
/// ```
#[derive(Debug, Default)]
pub struct Registration {
    generation: AtomicU32,
    id: AtomicU64,
}

impl Registration {
    /// Not registered.
    pub const fn new() -> Registration {
        Registration {
            generation: AtomicU32::new(0),
            id: AtomicU64::new(0),
        }
    }

    /// Whether this end registered, or tried to, in this process (two
    /// relaxed loads: the cost of a wait that calls it every time).
    #[inline]
    pub fn settled(&self) -> bool {
        self.generation.load(Relaxed) == GENERATION.load(Relaxed)
    }

    /// Marks the end as settled without watching (for an end whose peer
    /// cannot be told).
    pub fn give_up(&self) {
        self.generation.store(GENERATION.load(Relaxed), Relaxed);
    }

    /// Whether this end is registered with the watcher in this process (its
    /// peer's close is noticed at once), rather than never tried or tried
    /// and failed (no inotify instance, `max_user_watches` reached).
    ///
    /// ```
    /// use shmpipe_engine::liveness::watch::Registration;
    /// assert!(!Registration::new().watching());
    /// let (_tx, rx) = shmpipe_engine::channel(4096)?;
    /// rx.end().watch_peer();
    /// // Registered, unless this system has no inotify to give.
    /// let _ = rx.end().is_peer_watched();
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn watching(&self) -> bool {
        self.settled() && self.id.load(Relaxed) != 0
    }
}

/// One registered end.
struct Entry {
    id: u64,
    /// The end's descriptor: open while the entry exists (see the module
    /// documentation).
    fd: RawFd,
    peer_role: u32,
    on_gone: OnGone,
}

impl Entry {
    fn check(&self) {
        // SAFETY: an entry lives only while its end's descriptor is open
        // (the end deregisters, under the registry lock this runs under,
        // before closing it).
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        // If the kernel cannot answer, the park slice still will.
        if !peer_alive(fd, self.peer_role).unwrap_or(true) {
            (self.on_gone)();
        }
    }
}

struct Watch {
    wd: i32,
    entries: Vec<Entry>,
    /// Re-check series of this wd run to their end (see [`rechecks`]).
    rechecks: u64,
}

/// The process's watcher state, behind the registry lock.
struct State {
    /// The generation the fields below belong to.
    generation: u32,
    /// The inotify instance (-1: none yet).
    inotify: RawFd,
    /// inotify could not be had in this generation: do not try again.
    broken: bool,
    next_id: u64,
    watches: Vec<Watch>,
}

struct Registry {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    state: UnsafeCell<State>,
}

// SAFETY: `state` is only touched with `lock` held (or in the fork child
// handler, where the forking thread holds it and is the only thread).
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry {
    lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    state: UnsafeCell::new(State {
        generation: 0,
        inotify: -1,
        broken: false,
        next_id: 1,
        watches: Vec::new(),
    }),
};

struct Held;

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: a valid static mutex, locked by this thread in `with`.
        unsafe { libc::pthread_mutex_unlock(REGISTRY.lock.get()) };
    }
}

/// Runs `f` on the registry, lock held, first dropping what a fork left
/// stale.
fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    install();
    // SAFETY: a valid, initialised static mutex, never locked twice by one
    // thread (`f` and the `on_gone` callbacks never call back in here).
    unsafe { libc::pthread_mutex_lock(REGISTRY.lock.get()) };
    let _held = Held;
    // SAFETY: the lock is held, so no other thread touches `state`.
    let st = unsafe { &mut *REGISTRY.state.get() };
    let generation = GENERATION.load(Relaxed);
    if st.generation != generation {
        // A forked child: the parent's entries name ends this process
        // re-registers on its own, and its watcher thread does not exist
        // here (the child handler closed the inotify copy).
        st.watches.clear();
        st.inotify = -1;
        st.broken = false;
        st.generation = generation;
    }
    f(st)
}

fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: the handlers are `extern "C"` functions without arguments
        // that touch only the static registry.
        let r = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        assert_eq!(r, 0, "pthread_atfork failed");
    });
}

extern "C" fn prepare() {
    // SAFETY: as in `with`; released by `parent` or `child`.
    unsafe { libc::pthread_mutex_lock(REGISTRY.lock.get()) };
}

extern "C" fn parent() {
    // SAFETY: locked by `prepare` in this thread.
    unsafe { libc::pthread_mutex_unlock(REGISTRY.lock.get()) };
}

/// In the child, before anything else runs: close the copy of the parent's
/// inotify instance (removing a watch through it would remove the
/// parent's) and make everything registered so far stale. Only `close`,
/// atomics and a mutex reinitialisation: async-signal-safe, no allocation.
extern "C" fn child() {
    // SAFETY: the forking thread took the lock in `prepare` and is the
    // child's only thread, so nothing else touches `state`.
    let st = unsafe { &mut *REGISTRY.state.get() };
    if st.inotify >= 0 {
        // SAFETY: the child's copy of the instance this registry owns.
        unsafe { libc::close(st.inotify) };
        st.inotify = -1;
    }
    GENERATION.fetch_add(1, Relaxed);
    // SAFETY: the child's only thread; the mutex was locked in `prepare` by
    // the forking thread (now this one), so it is reset rather than
    // unlocked by a thread id that no longer exists.
    unsafe { REGISTRY.lock.get().write(libc::PTHREAD_MUTEX_INITIALIZER) };
}

impl State {
    /// The inotify instance, made (with its watcher thread) on first use.
    fn instance(&mut self) -> Option<RawFd> {
        if self.inotify >= 0 {
            return Some(self.inotify);
        }
        if self.broken {
            return None;
        }
        let made = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .ok()
            .and_then(|fd| {
                let raw = fd.as_raw_fd();
                let generation = self.generation;
                std::thread::Builder::new()
                    .name("shmpipe-watch".into())
                    .stack_size(128 << 10)
                    .spawn(move || watcher(raw, generation))
                    .ok()?;
                // Owned by the registry for the life of the process (the
                // thread polls it forever); closed only in a forked child.
                Some(rustix::fd::IntoRawFd::into_raw_fd(fd))
            });
        match made {
            Some(fd) => self.inotify = fd,
            None => self.broken = true,
        }
        made
    }

    fn check(&self, wd: i32) {
        if let Some(w) = self.watches.iter().find(|w| w.wd == wd) {
            w.entries.iter().for_each(Entry::check);
        }
    }

    fn check_all(&self) {
        for w in &self.watches {
            w.entries.iter().for_each(Entry::check);
        }
    }
}

/// Registers the end whose descriptor is `fd` and whose registration is
/// `reg`, watching whether the end with `peer_role` stays open; `on_gone`
/// makes what runs when it is found closed. Settles `reg` whatever happens:
/// one attempt per end and process generation. If the peer is already
/// closed, runs the callback before returning.
pub fn register(
    reg: &Registration,
    fd: BorrowedFd<'_>,
    peer_role: u32,
    on_gone: impl FnOnce() -> OnGone,
) {
    with(|st| {
        if reg.settled() {
            return;
        }
        reg.give_up();
        reg.id.store(0, Relaxed);
        let Some(ino) = st.instance() else {
            return;
        };
        // SAFETY: the registry owns the instance while its generation lasts.
        let ino = unsafe { BorrowedFd::borrow_raw(ino) };
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let Ok(wd) = inotify::add_watch(ino, path, WatchFlags::CLOSE) else {
            return;
        };
        let id = st.next_id;
        st.next_id += 1;
        let entry = Entry {
            id,
            fd: fd.as_raw_fd(),
            peer_role,
            on_gone: on_gone(),
        };
        // A peer that died before the watch existed sent no event we get.
        entry.check();
        match st.watches.iter_mut().find(|w| w.wd == wd) {
            Some(w) => w.entries.push(entry),
            None => st.watches.push(Watch {
                wd,
                entries: vec![entry],
                rechecks: 0,
            }),
        }
        reg.id.store(id, Relaxed);
    });
}

/// Removes the end registered as `reg` (a no-op if it is not, or was in the
/// parent of this forked process); the last end on an inode removes its
/// watch. Call it before closing the end's descriptor.
pub fn deregister(reg: &Registration) {
    if reg.id.load(Relaxed) == 0 || !reg.settled() {
        return;
    }
    with(|st| {
        let id = reg.id.swap(0, Relaxed);
        let Some(i) = st
            .watches
            .iter()
            .position(|w| w.entries.iter().any(|e| e.id == id))
        else {
            return; // its watch went away (IN_IGNORED)
        };
        let w = &mut st.watches[i];
        w.entries.retain(|e| e.id != id);
        if w.entries.is_empty() {
            let wd = w.wd;
            st.watches.swap_remove(i);
            if st.inotify >= 0 {
                // SAFETY: the registry owns the instance while its
                // generation lasts.
                let ino = unsafe { BorrowedFd::borrow_raw(st.inotify) };
                // Fails only if the watch is already gone.
                let _ = inotify::remove_watch(ino, wd);
            }
        }
    });
}

/// How many times the watcher ran the whole series of [`RECHECKS`] (up to
/// the last, 100 ms after the event) on the watch `reg`'s end is on (0 if
/// it is not registered). Each close event on the watch starts the series
/// again; another watch's events do not postpone it. For tests of the
/// watcher's scheduling.
///
/// ```
/// use shmpipe_engine::liveness::watch::{rechecks, Registration};
/// assert_eq!(rechecks(&Registration::new()), 0);
/// ```
pub fn rechecks(reg: &Registration) -> u64 {
    let id = reg.id.load(Relaxed);
    if id == 0 || !reg.settled() {
        return 0;
    }
    with(|st| {
        st.watches
            .iter()
            .find(|w| w.entries.iter().any(|e| e.id == id))
            .map_or(0, |w| w.rechecks)
    })
}

/// The process's inotify instance, if it has one (to count its watches in
/// `/proc/self/fdinfo`: a line `inotify wd:..` per watch).
///
/// ```
/// // Made on the first wait of an end; absent before, or where inotify
/// // cannot be had.
/// if let Some(fd) = shmpipe_engine::liveness::watch::watcher_fd() {
///     let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
///     let _watches = info.lines().filter(|l| l.starts_with("inotify wd:")).count();
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn watcher_fd() -> Option<RawFd> {
    with(|st| (st.inotify >= 0).then_some(st.inotify))
}

/// The watcher thread of generation `generation`: polls `ino`, and checks
/// the ends of every wd that had events, then again after each of
/// [`RECHECKS`]. Every wd keeps its own schedule: events on one wd restart
/// that wd's re-checks only, and whatever is due is re-checked in every
/// iteration, events or not (a wd with a steady stream of events cannot
/// postpone another's re-checks).
fn watcher(ino: RawFd, generation: u32) {
    // SAFETY: the registry never closes the instance in this process (only
    // a forked child closes its copy, and this thread does not exist there).
    let ino = unsafe { BorrowedFd::borrow_raw(ino) };
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    // Wds to check again: which recheck is next, and when it is due.
    let mut pending: Vec<(i32, usize, Instant)> = Vec::new();
    loop {
        let due = pending.iter().map(|&(_, _, d)| d).min();
        let timeout = due.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            }
        });
        let mut fds = [PollFd::from_borrowed_fd(ino, PollFlags::IN)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            // Out of memory, say: do not spin on it.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
        let (mut wds, mut overflow) = (Vec::new(), false);
        let mut reader = inotify::Reader::new(ino, &mut buf);
        loop {
            match reader.next() {
                Ok(ev) => {
                    let flags = ev.events();
                    if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                        overflow = true;
                    } else if !wds.contains(&(ev.wd(), flags.contains(ReadFlags::IGNORED))) {
                        wds.push((ev.wd(), flags.contains(ReadFlags::IGNORED)));
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                // WOULDBLOCK: drained.
                Err(_) => break,
            }
        }
        let now = Instant::now();
        let stale = with(|st| {
            if st.generation != generation {
                return true;
            }
            let restart = |wd: i32, pending: &mut Vec<(i32, usize, Instant)>| {
                let first = now + RECHECKS[0];
                match pending.iter_mut().find(|p| p.0 == wd) {
                    Some(p) => *p = (wd, 0, first),
                    None => pending.push((wd, 0, first)),
                }
            };
            if overflow {
                st.check_all();
                for w in &st.watches {
                    restart(w.wd, &mut pending);
                }
            }
            for &(wd, ignored) in &wds {
                st.check(wd);
                if ignored {
                    st.watches.retain(|w| w.wd != wd);
                } else {
                    restart(wd, &mut pending);
                }
            }
            // Removed watches need no more looks.
            pending.retain(|&(wd, _, _)| st.watches.iter().any(|w| w.wd == wd));
            pending.retain_mut(|(wd, step, due)| {
                if now < *due {
                    return true;
                }
                st.check(*wd);
                *step += 1;
                match RECHECKS.get(*step) {
                    Some(&d) => {
                        *due = now + d;
                        true
                    }
                    None => {
                        if let Some(w) = st.watches.iter_mut().find(|w| w.wd == *wd) {
                            w.rechecks += 1;
                        }
                        false
                    }
                }
            });
            false
        });
        if stale {
            return;
        }
    }
}
