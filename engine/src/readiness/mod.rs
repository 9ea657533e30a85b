//! Readiness descriptors for event loops: an `eventfd` that becomes
//! readable when a channel end may make progress.
//!
//! A blocking operation parks on a futex word in shared memory
//! ([`crate::wait::Event`]); an event loop (tokio, mio, `polling`, plain
//! `epoll`) can only wait for descriptors. A [`Readiness`] bridges the two
//! without adding anything to the shared segment or to the descriptors an
//! end hands over: it owns a process-local `eventfd`, and when armed with
//! [`Tickets`] (the futex words a blocking wait of the operation would park
//! on, each announced with [`Event::announce`](crate::wait::Event::announce))
//! it is signalled by this process's *readiness bridge*, a thread that
//! waits on every armed word at once (see `bridge.rs`).
//!
//! # Protocol for a future (or any event-loop callback)
//!
//! 1. Try the operation without waiting ([`Receiver::try_read`],
//!    [`Sender::try_write`], ...). Done: done.
//! 2. Not now: announce ([`Receiver::announce_read`] /
//!    [`Sender::announce_write`]), which marks the ring's event and the
//!    admission lock's as having a sleeper, so the next notify will change
//!    their sequence words.
//! 3. Try again. Done: done (the announcement costs the peer at most one
//!    spurious futex wake).
//! 4. Still not now: [`Readiness::arm`] with the tickets, and wait for the
//!    `eventfd` to be readable (return `Pending`).
//! 5. When it is readable: [`Readiness::clear`], and start again at 1.
//!
//! Step 3 after step 2 is the "announce, re-check, sleep" order of the
//! event's no-lost-wake-up argument (module doc of [`crate::wait`]): a
//! state change published before the notify that follows it is either seen
//! by the re-check, or the notify changes a word the bridge waits on.
//!
//! The eventfd is also signalled when an entry stays armed for its
//! fallback slice without any word changing: the owner then re-checks the
//! peer's liveness. The slice is [`FALLBACK_SLICE`] if the end's peer is
//! not watched (a killed peer runs no code and leaves no hint: this is
//! when it is noticed), and [`WATCHED_SLICE`] if it is (the watcher's
//! hint changes an armed word at once; the slice only bounds what a peer
//! that skips its notify can cost). [`fallback_signals`] counts them.
//!
//! # Use with another event loop
//!
//! ```
//! use rustix::event::{poll, PollFd, PollFlags};
//! use shmpipe_engine::readiness::Readiness;
//! use std::os::fd::AsFd;
//!
//! let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
//! let ready = Readiness::new()?;
//! let mut buf = [0u8; 16];
//! let writer = std::thread::spawn(move || tx.write(b"hello"));
//! let n = loop {
//!     if let Some(n) = rx.try_read(&mut buf)? { break n; }       // 1
//!     let tickets = rx.announce_read();                          // 2
//!     if let Some(n) = rx.try_read(&mut buf)? { break n; }       // 3
//!     ready.arm(tickets)?;                                       // 4
//!     let mut fds = [PollFd::new(&ready, PollFlags::IN)];        // (epoll, mio: the same fd)
//!     poll(&mut fds, None).map_err(std::io::Error::from)?;
//!     ready.clear()?;                                            // 5
//! };
//! assert_eq!(&buf[..n], b"hello");
//! # writer.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Receiver::try_read`]: crate::Receiver::try_read
//! [`Sender::try_write`]: crate::Sender::try_write
//! [`Receiver::announce_read`]: crate::Receiver::announce_read
//! [`Sender::announce_write`]: crate::Sender::announce_write

mod bridge;
mod waitv;

use crate::lock::LockWord;
use crate::segment::Segment;
use crate::sync::Native;
use crate::wait::{Event, Ticket};
use rustix::event::{eventfd, EventfdFlags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::io;
use std::sync::{Arc, Mutex};

pub use bridge::{fallback_signals, toggle_backoffs, FALLBACK_SLICE, WATCHED_SLICE};

/// The most futex words one arming may name (a ring event and an admission
/// lock's event, for every operation the engine has; room for one more).
pub const MAX_WORDS: usize = 3;

/// Announced futex words of one operation, ready to arm a [`Readiness`]
/// with: each word's address and the value it had when announced. Holds
/// the segment, so the words stay mapped as long as the tickets (and an
/// armed bridge entry made from them) live.
///
/// ```
/// let (_tx, rx) = shmpipe_engine::channel(4096)?;
/// let tickets = rx.announce_read();
/// assert_eq!(tickets.len(), 1); // the readable event (the reader lock is free)
/// # Ok::<(), shmpipe_engine::Error>(())
/// ```
pub struct Tickets {
    /// Held, not read: keeps the words mapped.
    _mapping: Arc<Segment>,
    words: [(usize, u32); MAX_WORDS],
    len: usize,
    /// An admission lock that was free when announcing, so its event was
    /// not announced (see [`Tickets::announce_lock`]).
    unannounced_lock: Option<*const LockWord<Native>>,
    /// Whether the end's peer was watched when announcing (a killed peer
    /// then notifies these words): the bridge's fallback slice is longer.
    pub(crate) peer_watched: bool,
}

// SAFETY: the raw pointer names a lock word inside `_mapping`, shared
// memory read only with atomic loads; the `Arc<Segment>` keeps it mapped.
unsafe impl Send for Tickets {}
// SAFETY: as for `Send`: only atomic loads go through the pointer.
unsafe impl Sync for Tickets {}

impl core::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tickets")
            .field("words", &&self.words[..self.len])
            .finish()
    }
}

impl Tickets {
    /// No words yet, for events inside `segment`'s mapping.
    pub(crate) fn new(segment: Arc<Segment>) -> Tickets {
        Tickets {
            _mapping: segment,
            words: [(0, 0); MAX_WORDS],
            len: 0,
            unannounced_lock: None,
            peer_watched: false,
        }
    }

    /// Announces on `lock`'s event only if another handle holds the lock
    /// now. A free lock is not announced: the caller's own re-check takes
    /// and releases it, and the release would notify the announcement, a
    /// wake-up of its own making on every round (the future would never
    /// sleep). If the lock is taken after this, [`Tickets::changed`] says
    /// so, and arming signals at once so that the caller announces again.
    pub(crate) fn announce_lock(&mut self, lock: &LockWord<Native>) {
        if lock.owner() != 0 {
            self.announce(lock.event());
        } else {
            self.unannounced_lock = Some(lock);
        }
    }

    /// Announces on `event` and records its ticket. `event` must lie in
    /// this tickets' segment mapping (the caller got it from the segment).
    pub(crate) fn announce(&mut self, event: &Event<Native>) {
        assert!(self.len < MAX_WORDS, "too many readiness words");
        let ticket: Ticket = event.announce();
        let word: *const core::sync::atomic::AtomicU32 = event.seq_word();
        self.words[self.len] = (word as usize, ticket.value());
        self.len += 1;
    }

    /// Records whether `end`'s peer is watched ([`End::is_peer_watched`]),
    /// for tickets announced through another handle of the same end (a
    /// twin made by `try_clone` has a registration of its own): a watched
    /// peer gets the longer [`WATCHED_SLICE`].
    ///
    /// ```
    /// let (_tx, rx) = shmpipe_engine::channel(4096)?;
    /// rx.end().watch_peer();
    /// let mut tickets = rx.announce_read();
    /// tickets.note_watch(rx.end());
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    ///
    /// [`End::is_peer_watched`]: crate::channel::End::is_peer_watched
    pub fn note_watch(&mut self, end: &crate::channel::End) {
        self.peer_watched |= end.is_peer_watched();
    }

    /// How many words were announced.
    ///
    /// ```
    /// let (tx, _rx) = shmpipe_engine::channel(4096)?;
    /// assert!(!tx.announce_write().is_empty());
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no word was announced.
    ///
    /// ```
    /// let (tx, _rx) = shmpipe_engine::channel(4096)?;
    /// assert!(!tx.announce_write().is_empty());
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether some word already moved on from its ticket (a notify came
    /// after the announcement), or a lock left unannounced because it was
    /// free is held now: either way, waiting on these tickets could miss a
    /// wake-up, so the caller should re-try and announce again. Arming
    /// with such tickets signals at once.
    ///
    /// ```
    /// let (mut tx, mut rx) = shmpipe_engine::channel(4096)?;
    /// let tickets = rx.announce_read();
    /// assert_eq!(rx.try_read(&mut [0; 8])?, None); // the re-check...
    /// assert!(!tickets.changed()); // ...does not wake itself
    /// tx.write(b"x")?;
    /// assert!(tickets.changed());
    /// # Ok::<(), shmpipe_engine::Error>(())
    /// ```
    pub fn changed(&self) -> bool {
        let moved = self.words[..self.len].iter().any(|&(addr, value)| {
            // SAFETY: `addr` is the address of an `AtomicU32` (an event's
            // sequence word) inside `self._mapping`, which the `Arc` keeps
            // mapped as long as `self` lives.
            let word = unsafe { &*(addr as *const core::sync::atomic::AtomicU32) };
            word.load(core::sync::atomic::Ordering::Acquire) != value
        });
        // SAFETY: the lock word lies inside `self._mapping` (as above).
        moved
            || self
                .unannounced_lock
                .is_some_and(|l| unsafe { &*l }.owner() != 0)
    }
}

/// A process-local `eventfd` (nonblocking, close-on-exec) that this
/// process's readiness bridge makes readable when an armed operation may
/// make progress. See the module documentation for the protocol; the
/// descriptor ([`AsFd`]) is what an event loop polls for readability.
///
/// Dropping it disarms it.
///
/// ```
/// use shmpipe_engine::readiness::Readiness;
/// let (mut tx, rx) = shmpipe_engine::channel(4096)?;
/// let ready = Readiness::new()?;
/// ready.arm(rx.announce_read())?;
/// tx.write(b"x")?; // notifies the announced event: the bridge signals
/// while !ready.clear()? {
///     std::thread::yield_now(); // a real program polls the descriptor
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Readiness {
    fd: Arc<bridge::Target>,
    id: u64,
    /// The bridge shard this readiness is armed in, if any.
    armed: Mutex<Option<Arc<bridge::Shard>>>,
}

impl Readiness {
    /// A new, unarmed readiness descriptor.
    ///
    /// ```
    /// let ready = shmpipe_engine::readiness::Readiness::new()?;
    /// assert!(!ready.clear()?); // nothing signalled yet
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Readiness> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Readiness {
            fd: Arc::new(bridge::Target::new(fd)),
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            armed: Mutex::new(None),
        })
    }

    /// Arms the bridge: the descriptor becomes readable once some word of
    /// `tickets` differs from its ticket, or after the fallback slice
    /// ([`FALLBACK_SLICE`], or [`WATCHED_SLICE`] for a watched peer).
    /// Replaces an earlier arming of this readiness. If a word already
    /// moved on, signals at once.
    ///
    /// Fails with the system's error if the bridge cannot run
    /// (`futex_waitv` needs Linux 5.16; `ENOSYS` before).
    ///
    /// ```
    /// let (_tx, rx) = shmpipe_engine::channel(4096)?;
    /// let ready = shmpipe_engine::readiness::Readiness::new()?;
    /// ready.arm(rx.announce_read())?;
    /// ready.disarm();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn arm(&self, tickets: Tickets) -> io::Result<()> {
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        // Several futures may share one readiness (two pending reads of one
        // end): a signal owed to the arming this one replaces is delivered
        // now rather than lost.
        let owed = armed
            .take()
            .is_some_and(|shard| bridge::disarm(shard, self.id));
        if owed || tickets.changed() {
            self.signal();
            return Ok(());
        }
        *armed = Some(bridge::arm(self.id, Arc::clone(&self.fd), tickets)?);
        Ok(())
    }

    /// Withdraws an arming (nothing happens if none is in place).
    ///
    /// ```
    /// let ready = shmpipe_engine::readiness::Readiness::new()?;
    /// ready.disarm();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn disarm(&self) {
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shard) = armed.take() {
            bridge::disarm(shard, self.id);
        }
    }

    /// Consumes the signal: `Ok(true)` if the descriptor was readable. Call
    /// it before re-trying the operation, so that a signal that comes
    /// after the retry is not lost.
    ///
    /// ```
    /// let ready = shmpipe_engine::readiness::Readiness::new()?;
    /// ready.signal();
    /// assert!(ready.clear()?);
    /// assert!(!ready.clear()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear(&self) -> io::Result<bool> {
        let mut buf = [0u8; 8];
        match rustix::io::read(&self.fd.fd, &mut buf) {
            Ok(_) => Ok(true),
            Err(rustix::io::Errno::AGAIN) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the descriptor readable now (a wake-up from this process, for
    /// example for a state change that is not in shared memory).
    ///
    /// ```
    /// let ready = shmpipe_engine::readiness::Readiness::new()?;
    /// ready.signal();
    /// assert!(ready.clear()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn signal(&self) {
        bridge::signal(&self.fd.fd);
    }

    /// How many times the bridge signalled this readiness for its fallback
    /// slice (no armed word had changed), as [`fallback_signals`] counts
    /// for the whole process.
    ///
    /// ```
    /// let ready = shmpipe_engine::readiness::Readiness::new()?;
    /// assert_eq!(ready.fallback_signals(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fallback_signals(&self) -> u64 {
        self.fd.fallbacks.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl AsFd for Readiness {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.fd.as_fd()
    }
}

impl AsRawFd for Readiness {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.fd.as_raw_fd()
    }
}
