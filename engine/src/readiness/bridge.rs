//! The readiness bridge: per-process threads that wait on armed futex words
//! with `futex_waitv` and signal the owners' eventfds.
//!
//! # Algorithm
//!
//! A *shard* is one thread and up to [`WORDS_PER_SHARD`] armed futex words
//! (`futex_waitv` takes at most 128 words; one is the shard's own control
//! word). Arming takes the first shard with room (or starts a new one),
//! adds an entry (its words and tickets, the owner's eventfd, the segment
//! holding the words, the time it was armed), bumps the control word and
//! wakes it. The thread loops:
//!
//! 1. under the shard's lock: read the control word; signal and remove
//!    every entry one of whose words differs from its ticket, or whose
//!    fallback slice ran out; copy the remaining words and
//!    tickets, with the control word's value, into the wait list;
//! 2. outside the lock: `futex_waitv` on the list, until the earliest
//!    fallback deadline.
//!
//! # Invariants
//!
//! * No lost signal. A word that changes after step 1 read it differs from
//!   the ticket the wait compares with, so the kernel returns at once
//!   (`EAGAIN`) or wakes the thread (the notify's `FUTEX_WAKE` follows its
//!   change of the word, see [`crate::wait`]). An arming or disarming after
//!   step 1 bumps the control word first, so the wait returns the same way
//!   and step 1 sees the new entry set.
//! * Memory: an entry holds its `Arc<Segment>`, so the words it names stay
//!   mapped while the thread may read or wait on them; a disarmed entry is
//!   kept (`retired`) until the thread rebuilds its wait list, since it may
//!   be waiting on its words at that moment.
//! * Shared futexes (no `FUTEX_PRIVATE_FLAG`), 32-bit: the words are in
//!   `MAP_SHARED` memfd mappings and woken from other processes.
//! * Fork: a child does not inherit the threads. Every shard records the
//!   fork generation it was made in (bumped by a `pthread_atfork` child
//!   handler); a child never locks nor frees a shard of an older generation
//!   (another thread of the parent may have held its lock at the fork), it
//!   forgets it and arms in shards of its own.
//!
//! Shards are never retired: a process that once had N armed words keeps
//! about N/127 idle threads (each blocked in `futex_waitv` on its control
//! word alone, costing nothing but its stack) for its lifetime.
//!
//! # Fallback slices, and what idle futures cost
//!
//! Words change only if someone notifies. Two cases where nobody does:
//!
//! * The peer was killed and its end is not watched (the watcher could
//!   not register it: no inotify instance, `fs.inotify.max_user_watches`
//!   reached). Only the fallback notices it, so the slice is short:
//!   [`FALLBACK_SLICE`] (50 ms), like a few blocking park slices.
//! * The peer is watched (a kill changes an armed word through the
//!   watcher's hint at once), but a live peer skips its notify, or another
//!   handle of the same end is killed while it holds the admission lock
//!   (the watcher watches the peer, not this end's co-holders). A peer
//!   that skips its notify gains nothing it could not get by not writing
//!   (or not reading) at all; the slice only bounds how long data already
//!   there waits, and how long a killed co-holder's lock blocks this
//!   handle: [`WATCHED_SLICE`] (1 s) is an acceptable bound for both.
//!
//! Each idle armed entry costs one signal per slice: its owner wakes,
//! re-tries, announces and re-arms. Re-armings coalesce: a change to a
//! shard's entries kicks its thread (`FUTEX_WAKE`) only if no kick is
//! owed since the thread last read the control word, so a burst of
//! re-armings costs one wake-up and one rebuild of the wait list. Measured
//! (debug build, tokio current-thread runtime, reads pending on live,
//! silent peers, utime+stime from `/proc/self/stat` over 5 s): 64 idle
//! futures 0.2% of a CPU, 1000 idle futures 2.2% (with every entry on
//! the 50 ms slice and a kick per arming: 3.2% and 59%).

use super::waitv::{outcome, probe, FutexWaitv, Outcome, FUTEX2_SIZE_U32};
use super::Tickets;
use rustix::fd::{AsFd, OwnedFd};
use std::io;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an entry may stay armed without any of its words changing
/// before the bridge signals its owner anyway, who then re-checks the
/// peer's liveness (see the module documentation of `readiness`).
///
/// ```
/// assert!(shmpipe_engine::readiness::FALLBACK_SLICE.as_millis() <= 100);
/// ```
pub const FALLBACK_SLICE: Duration = Duration::from_millis(50);

/// The fallback slice of an entry whose end's peer is watched
/// ([`End::watch_peer`](crate::channel::End::watch_peer)): a killed peer then
/// changes an armed word itself, so the slice covers only a peer that
/// skips its notify (see the module documentation).
///
/// ```
/// use shmpipe_engine::readiness::{FALLBACK_SLICE, WATCHED_SLICE};
/// assert!(WATCHED_SLICE > FALLBACK_SLICE);
/// ```
pub const WATCHED_SLICE: Duration = Duration::from_secs(1);

/// How long a bridge thread that saw a word toggled (see
/// `Shard::back_off_if_toggled`) waits before listing the words again.
const TOGGLE_BACKOFF: Duration = Duration::from_millis(1);

/// Back-offs taken for toggled words in this process (see
/// [`toggle_backoffs`]).
static TOGGLES: AtomicU64 = AtomicU64::new(0);

/// How many times this process's bridge found an armed word changed and
/// changed back (the wait saw it differ, the next look found every word at
/// its ticket): a peer toggling a word to keep the bridge busy. Each time
/// the bridge pauses 1 ms before waiting on the words again, so a toggling
/// peer costs it at most about a thousand rounds a second.
///
/// ```
/// let before = shmpipe_engine::readiness::toggle_backoffs();
/// assert!(shmpipe_engine::readiness::toggle_backoffs() >= before);
/// ```
pub fn toggle_backoffs() -> u64 {
    TOGGLES.load(Relaxed)
}

/// Fallback signals of this process (entries signalled because their
/// slice ran out, not because a word changed).
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// How many times this process's bridge signalled an entry only once its
/// fallback slice had run out (whether or not a word had changed by then:
/// a change that the bridge's wait missed is noticed only at the deadline).
///
/// With every notify reaching the bridge's wait this moves only for an
/// entry that stays armed for a whole slice ([`FALLBACK_SLICE`], or
/// [`WATCHED_SLICE`] when the peer is watched): a killed peer that was not
/// watched, a peer that skipped its notify, or a word the bridge did not
/// wait on. Tests read it to tell the normal path from the backstop
/// without timing anything.
///
/// ```
/// let before = shmpipe_engine::readiness::fallback_signals();
/// assert!(shmpipe_engine::readiness::fallback_signals() >= before);
/// ```
pub fn fallback_signals() -> u64 {
    FALLBACKS.load(Relaxed)
}

/// Armed words per shard: `futex_waitv`'s limit (128) less the control word.
const WORDS_PER_SHARD: usize = 127;

/// What the bridge signals: a readiness's eventfd and its counters.
pub(super) struct Target {
    pub(super) fd: OwnedFd,
    /// Fallback signals of this target (see [`fallback_signals`]).
    pub(super) fallbacks: AtomicU64,
}

impl Target {
    pub(super) fn new(fd: OwnedFd) -> Target {
        Target {
            fd,
            fallbacks: AtomicU64::new(0),
        }
    }
}

impl core::fmt::Debug for Target {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Target").field("fd", &self.fd).finish()
    }
}

struct Entry {
    id: u64,
    target: Arc<Target>,
    tickets: Tickets,
    /// When the fallback signals it.
    due: Instant,
}

struct State {
    entries: Vec<Entry>,
    words: usize,
    /// Entries disarmed since the thread built its wait list: their
    /// segments stay mapped until it rebuilds it (it may be waiting on
    /// their words).
    retired: Vec<Entry>,
    /// A kick is owed or under way since the thread last read the control
    /// word: further changes need no kick of their own (a burst of armings
    /// costs one `FUTEX_WAKE` and one rebuild, not one each).
    kicked: bool,
    /// The thread gave up (see `Shard::fail`): no more entries.
    failed: bool,
}

impl State {
    /// Whether the caller, having changed the entries, must kick.
    fn must_kick(&mut self) -> bool {
        !core::mem::replace(&mut self.kicked, true)
    }
}

/// One bridge thread and its entries.
pub(crate) struct Shard {
    control: AtomicU32,
    generation: u64,
    state: Mutex<State>,
}

impl core::fmt::Debug for Shard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shard").finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes the eventfd (nonblocking: a full counter is already readable).
pub(super) fn signal(fd: &OwnedFd) {
    let _ = rustix::io::write(fd.as_fd(), &1u64.to_ne_bytes());
}

/// Fork generation: bumped in the child of every `fork`.
static GENERATION: AtomicU64 = AtomicU64::new(0);

fn generation() -> u64 {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        extern "C" fn child() {
            // Only an atomic add: async-signal-safe.
            GENERATION.fetch_add(1, Relaxed);
        }
        // SAFETY: `child` is an `extern "C"` function without arguments
        // that touches only a static atomic.
        let r = unsafe { libc::pthread_atfork(None, None, Some(child)) };
        assert_eq!(r, 0, "pthread_atfork failed");
    });
    GENERATION.load(Relaxed)
}

/// The shards of this process's current fork generation.
struct Registry {
    generation: u64,
    shards: Mutex<Vec<Arc<Shard>>>,
}

/// The current generation's registry (leaked, never freed).
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

/// Runs `f` on the registry of this fork generation. A registry's lock
/// could have been held by another thread of the parent at a fork, so a
/// child never locks its parent's: it installs a new one (the parent's
/// leaks), with a compare-exchange rather than a lock for the same reason.
fn with_registry<R>(f: impl FnOnce(u64, &mut Vec<Arc<Shard>>) -> R) -> R {
    let generation = generation();
    let registry = loop {
        let current = REGISTRY.load(Acquire);
        // SAFETY: a non-null pointer was leaked from a `Box` below and is
        // never freed; `generation` is never written after creation.
        if !current.is_null() && unsafe { (*current).generation } == generation {
            // SAFETY: as above.
            break unsafe { &*current };
        }
        let fresh = Box::into_raw(Box::new(Registry {
            generation,
            shards: Mutex::new(Vec::new()),
        }));
        if REGISTRY
            .compare_exchange(current, fresh, AcqRel, Acquire)
            .is_err()
        {
            // SAFETY: `fresh` was never published; we own it.
            drop(unsafe { Box::from_raw(fresh) });
        }
    };
    f(generation, &mut locked(&registry.shards))
}

/// Adds an entry for `id` to a shard with room; returns that shard.
pub(super) fn arm(id: u64, target: Arc<Target>, tickets: Tickets) -> io::Result<Arc<Shard>> {
    let need = tickets.len;
    if need > WORDS_PER_SHARD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many words",
        ));
    }
    with_registry(|generation, shards| {
        let slice = if tickets.peer_watched {
            WATCHED_SLICE
        } else {
            FALLBACK_SLICE
        };
        let entry = Entry {
            id,
            target,
            tickets,
            due: Instant::now() + slice,
        };
        for shard in shards.iter() {
            let mut st = locked(&shard.state);
            if !st.failed && st.words + need <= WORDS_PER_SHARD {
                st.words += need;
                st.entries.push(entry);
                if st.must_kick() {
                    drop(st);
                    shard.kick();
                }
                return Ok(Arc::clone(shard));
            }
        }
        probe()?;
        let shard = Arc::new(Shard {
            control: AtomicU32::new(0),
            generation,
            state: Mutex::new(State {
                entries: vec![entry],
                words: need,
                retired: Vec::new(),
                kicked: false,
                failed: false,
            }),
        });
        let runner = Arc::clone(&shard);
        std::thread::Builder::new()
            .name("shmpipe-readiness".into())
            .spawn(move || runner.run())?;
        shards.push(Arc::clone(&shard));
        Ok(shard)
    })
}

/// Removes `id`'s entry from `shard` (if the bridge did not already).
/// Returns whether one of its words had already moved on (a signal the
/// bridge had not delivered yet).
pub(super) fn disarm(shard: Arc<Shard>, id: u64) -> bool {
    if shard.generation != generation() {
        // A parent's shard, in a forked child: its lock may be held for
        // good. Never touch it.
        core::mem::forget(shard);
        return false;
    }
    let mut st = locked(&shard.state);
    let Some(i) = st.entries.iter().position(|e| e.id == id) else {
        return false;
    };
    let e = st.entries.swap_remove(i);
    st.words -= e.tickets.len;
    let changed = e.tickets.changed();
    st.retired.push(e);
    if st.must_kick() {
        drop(st);
        shard.kick();
    }
    changed
}

impl Shard {
    /// Makes the thread rebuild its wait list.
    fn kick(&self) {
        self.control.fetch_add(1, Release);
        crate::sync::futex::wake_all(&self.control);
    }

    fn run(self: Arc<Self>) {
        let mut list: Vec<FutexWaitv> = Vec::with_capacity(WORDS_PER_SHARD + 1);
        // The last wait returned EAGAIN, and the control word it listed.
        let mut mismatch: Option<u32> = None;
        loop {
            if let Some(listed) = mismatch.take() {
                self.back_off_if_toggled(listed);
            }
            let deadline = {
                let mut st = locked(&self.state);
                // The old wait list is no longer in use: unmap what was
                // kept for it.
                st.retired.clear();
                // Changes after this unlock kick again, and the control word
                // they bump differs from the value read here.
                st.kicked = false;
                let control = self.control.load(Acquire);
                let now = Instant::now();
                let mut freed = 0;
                st.entries.retain(|e| {
                    let late = now >= e.due;
                    let due = late || e.tickets.changed();
                    if due {
                        // Late counts even if a word changed: a change the
                        // wait missed shows up only here, at the deadline.
                        if late {
                            FALLBACKS.fetch_add(1, Relaxed);
                            e.target.fallbacks.fetch_add(1, Relaxed);
                        }
                        signal(&e.target.fd);
                        freed += e.tickets.len;
                    }
                    !due
                });
                st.words -= freed;
                list.clear();
                list.push(FutexWaitv {
                    val: u64::from(control),
                    uaddr: &self.control as *const AtomicU32 as u64,
                    flags: FUTEX2_SIZE_U32,
                    reserved: 0,
                });
                let mut deadline: Option<Instant> = None;
                for e in &st.entries {
                    for &(addr, value) in &e.tickets.words[..e.tickets.len] {
                        list.push(FutexWaitv {
                            val: u64::from(value),
                            uaddr: addr as u64,
                            flags: FUTEX2_SIZE_U32,
                            reserved: 0,
                        });
                    }
                    deadline = Some(deadline.map_or(e.due, |x| x.min(e.due)));
                }
                deadline
            };
            // Entries disarmed after the lock was released stay mapped in
            // `retired` until the next round; the control word they bumped
            // makes this wait return at once.
            let ts = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                let mut sec = now.tv_sec + left.as_secs() as i64;
                let mut nsec = now.tv_nsec + i64::from(left.subsec_nanos());
                if nsec >= 1_000_000_000 {
                    sec += 1;
                    nsec -= 1_000_000_000;
                }
                libc::timespec {
                    tv_sec: sec,
                    tv_nsec: nsec,
                }
            });
            let tsp = ts
                .as_ref()
                .map_or(core::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `list` holds `list.len()` (≤ 128) initialised
            // `futex_waitv` structs; `tsp` is null or points at a live
            // timespec. Every address is of an `AtomicU32` that stays mapped
            // until the next round (in `entries`, or in `retired`); the
            // kernel only reads them.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_futex_waitv,
                    list.as_ptr(),
                    list.len() as u32,
                    0u32,
                    tsp,
                    libc::CLOCK_MONOTONIC,
                )
            };
            let errno = io::Error::last_os_error().raw_os_error();
            if let Outcome::Fail(_) = outcome(r, errno) {
                self.fail();
                return;
            }
            if r < 0 && errno == Some(libc::EAGAIN) {
                mismatch = Some(list[0].val as u32);
            }
        }
    }

    /// After a wait that returned `EAGAIN` (some listed word differed from
    /// its value): if the control word did not move and no entry's word
    /// differs from its ticket any more, a word went away and back (a notify
    /// only ever moves a sequence word on; coming back takes 2^32 of
    /// them): a peer toggling a word to keep this thread busy. Wait on the
    /// control word alone for [`TOGGLE_BACKOFF`] before listing the words
    /// again, so such a peer costs the bridge at most one round per back-off
    /// instead of one per toggle. Entries whose words change meanwhile are
    /// signalled by the next round (they differ from their tickets then),
    /// so the back-off delays them by at most that long, and only during
    /// such an attack; armings and disarmings end it at once (they bump the
    /// control word).
    fn back_off_if_toggled(&self, listed: u32) {
        {
            let st = locked(&self.state);
            if self.control.load(Acquire) != listed
                || st.entries.iter().any(|e| e.tickets.changed())
            {
                return;
            }
        }
        TOGGLES.fetch_add(1, Relaxed);
        let wait = [FutexWaitv {
            val: u64::from(listed),
            uaddr: &self.control as *const AtomicU32 as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        }];
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let mut ts = libc::timespec {
            tv_sec: now.tv_sec,
            tv_nsec: now.tv_nsec + TOGGLE_BACKOFF.as_nanos() as i64,
        };
        if ts.tv_nsec >= 1_000_000_000 {
            ts.tv_sec += 1;
            ts.tv_nsec -= 1_000_000_000;
        }
        // SAFETY: one initialised `futex_waitv` naming this shard's own
        // control word (alive as long as `self`), and a live timespec.
        unsafe {
            libc::syscall(
                libc::SYS_futex_waitv,
                wait.as_ptr(),
                1u32,
                0u32,
                &ts as *const libc::timespec,
                libc::CLOCK_MONOTONIC,
            );
        }
    }

    /// Gives up after a wait that cannot work: refuses armings from now
    /// on, leaves the registry, and signals every entry, whose owner then
    /// arms again, in a new shard whose probe reports the error (or works,
    /// if the failure passed).
    fn fail(&self) {
        let mut st = locked(&self.state);
        st.failed = true;
        for e in st.entries.drain(..) {
            signal(&e.target.fd);
        }
        st.words = 0;
        st.retired.clear();
        drop(st);
        with_registry(|generation, shards| {
            if generation == self.generation {
                shards.retain(|s| !core::ptr::eq(&**s, self));
            }
        });
    }
}

#[cfg(test)]
mod tests;
