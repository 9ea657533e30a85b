//! Process slots: names for processes that the kernel withdraws when the
//! process dies, valid across pid namespaces.
//!
//! A process that needs a name on a segment (an admission lock holder, in the
//! engine; a pending-write claimant, in the pipe layer) takes an exclusive
//! OFD lock on one byte of the slot range of the segment's memfd, through an
//! open file description *private to the process* (a reopen of the memfd via
//! `/proc/self/fd`, or one the segment's creator made for it and sent,
//! [`ProcessSlot::token_with`]). Its name, the *token*, is `nonce << 32 | slot`. Anyone
//! holding any other descriptor of the memfd asks the kernel whether the slot
//! is still locked ([`slot_held`], `F_OFD_GETLK`). The kernel drops the lock
//! when the description's last reference goes, which for a private
//! description is when the process closes it or dies (SIGKILL included).
//!
//! Unlike a pid, this needs no `/proc/PID` of another process: it works when
//! the holder is in another pid namespace (where its pid names some other
//! process, or none), when `/proc` is mounted with `hidepid`, and it cannot be
//! fooled by a recycled pid or a zombie (a zombie's descriptors are already
//! closed).
//!
//! # Fork
//!
//! A child forked without exec inherits the private description, and with it
//! the lock: it would keep a dead parent looking alive, and, if it used the
//! parent's token, a dead child would look alive while the parent lives.
//! Every private description is therefore registered, and a `pthread_atfork`
//! child handler closes the child's copies and forgets their tokens before
//! the child runs any other code; the child draws its own slot on first use.
//! The registry lock is taken around `fork` (prepare handler), so a slot
//! being made while another thread forks is either registered before the
//! fork or not yet open. (A child made by a raw `clone` that bypasses libc's
//! `fork` keeps the copies until it execs or exits: the safe side, a holder
//! that looks alive longer.) Descriptions are close-on-exec.
//!
//! # Slots are unique
//!
//! The lock is exclusive (`F_WRLCK`): drawing a slot that another
//! description holds fails, and the process draws again, so two live
//! processes never share a slot. The nonce in the token's high half guards
//! against a dead holder's slot being drawn again by a new process between a
//! waiter's liveness check and its compare-exchange on the lock word.

use super::{ofd_lock, reopen};
use rustix::fd::{BorrowedFd, OwnedFd, RawFd};
use std::io;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

/// First lock byte (relative to the liveness lock base) of the process
/// slots. Below it: end roles (0, 1, ...). Admission-lock holders and the
/// pipe layer's pending-write claimants are both named by process slots.
pub const SLOT_BASE: u32 = 1 << 31;
/// Number of process slots.
pub const SLOTS: u32 = 1 << 30;

/// The slot a token names, if it names one at all. Tokens are read from
/// shared memory, which a peer can write anything into: anything else is
/// nobody's token.
pub fn token_slot(token: u64) -> Option<u32> {
    let slot = token as u32;
    (SLOT_BASE..SLOT_BASE + SLOTS)
        .contains(&slot)
        .then_some(slot)
}

/// Whether the process named by `token` still holds its slot on the segment
/// behind `file` (any descriptor of the segment's memfd; not the caller's own
/// slot description, whose own lock the kernel does not report). A token that
/// names no slot is nobody's: `false`. If the kernel cannot answer, `true`
/// (waiting on a live-looking holder is safe; overrunning a live one is not).
///
/// ```
/// use shmpipe_engine::liveness::{slot_held, ProcessSlot};
/// use std::os::fd::AsFd;
/// let (_seg, fd) = shmpipe_engine::Segment::create(&[4096], 0, [0; 8])?;
/// let slot = ProcessSlot::new();
/// let me = slot.token(fd.as_fd())?;
/// assert!(slot_held(fd.as_fd(), me));
/// drop(slot);
/// assert!(!slot_held(fd.as_fd(), me));
/// assert!(!slot_held(fd.as_fd(), 12345)); // not a token at all
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn slot_held(file: BorrowedFd<'_>, token: u64) -> bool {
    let Some(slot) = token_slot(token) else {
        return false;
    };
    match ofd_lock(
        file,
        libc::F_OFD_GETLK,
        libc::F_WRLCK as libc::c_short,
        slot,
    ) {
        Ok(fl) => fl.l_type != libc::F_UNLCK as libc::c_short,
        Err(_) => true,
    }
}

/// This process's slot on one segment, made on first use (see the module
/// documentation). Keep one per segment and share it; a channel
/// [`End`](crate::channel::End) and its clones share one.
///
/// ```
/// use shmpipe_engine::liveness::ProcessSlot;
/// use std::os::fd::AsFd;
/// let (_seg, fd) = shmpipe_engine::Segment::create(&[4096], 0, [0; 8])?;
/// let slot = ProcessSlot::new();
/// let me = slot.token(fd.as_fd())?;
/// assert_eq!(me, slot.token(fd.as_fd())?); // stable in this process
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ProcessSlot {
    cell: Arc<SlotCell>,
}

/// The part of a slot the fork handler reaches.
struct SlotCell {
    /// The token, 0 while the slot is not made (or was forgotten in a
    /// forked child).
    token: AtomicU64,
    /// The private description, -1 when none.
    fd: AtomicI32,
}

impl core::fmt::Debug for ProcessSlot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProcessSlot")
            .field("token", &self.cell.token.load(Ordering::Relaxed))
            .finish()
    }
}

impl Default for ProcessSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessSlot {
    /// A slot not made yet (no descriptor, no lock).
    pub fn new() -> ProcessSlot {
        ProcessSlot {
            cell: Arc::new(SlotCell {
                token: AtomicU64::new(0),
                fd: AtomicI32::new(-1),
            }),
        }
    }

    /// This process's token on the segment behind `file` (any descriptor of
    /// its memfd), making the slot if this process has none yet: a reopen
    /// of the memfd, an exclusive lock on a free slot byte. One atomic load
    /// once made.
    pub fn token(&self, file: BorrowedFd<'_>) -> io::Result<u64> {
        let t = self.cell.token.load(Ordering::Acquire);
        if t != 0 {
            return Ok(t);
        }
        self.make(|| reopen(file))
    }

    /// [`ProcessSlot::token`] with `private`, a fresh open file description
    /// of the segment's memfd made for this purpose by the process that
    /// sent it (and closed there), instead of a reopen through
    /// `/proc/self/fd`. Dropped if this process already has its slot.
    ///
    /// A fork between receiving `private` and this call leaves the child a
    /// copy of it, which keeps the slot looking held while that child lives
    /// without exec (the safe side, as for a child of a raw `clone`); a
    /// reopen happens under the fork handlers' lock instead.
    ///
    /// ```
    /// use shmpipe_engine::liveness::{reopen, slot_held, ProcessSlot};
    /// use std::os::fd::AsFd;
    /// let (_seg, fd) = shmpipe_engine::Segment::create(&[4096], 0, [0; 8])?;
    /// let slot = ProcessSlot::new();
    /// let me = slot.token_with(reopen(fd.as_fd())?)?;
    /// assert!(slot_held(fd.as_fd(), me));
    /// assert_eq!(slot.token(fd.as_fd())?, me); // made: no reopen
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn token_with(&self, private: OwnedFd) -> io::Result<u64> {
        let t = self.cell.token.load(Ordering::Acquire);
        if t != 0 {
            return Ok(t);
        }
        self.make(|| Ok(private))
    }

    #[cold]
    fn make(&self, open: impl FnOnce() -> io::Result<OwnedFd>) -> io::Result<u64> {
        // Under the registry lock: a fork cannot happen between the open
        // and the registration (the prepare handler takes the same lock).
        registry::with(|cells| {
            let t = self.cell.token.load(Ordering::Acquire);
            if t != 0 {
                return Ok(t);
            }
            let fd = open()?;
            let mut seed = random_u64();
            let mut slot = None;
            for _ in 0..64 {
                let s = SLOT_BASE + (seed as u32) % SLOTS;
                match ofd_lock(
                    rustix::fd::AsFd::as_fd(&fd),
                    libc::F_OFD_SETLK,
                    libc::F_WRLCK as libc::c_short,
                    s,
                ) {
                    Ok(_) => {
                        slot = Some(s);
                        break;
                    }
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {
                        seed = seed.rotate_left(29) ^ random_u64();
                    }
                    Err(e) => return Err(e),
                }
            }
            let slot = slot.ok_or_else(|| io::Error::other("no free process slot"))?;
            let nonce = (seed >> 32) as u32 | 1;
            let token = (u64::from(nonce) << 32) | u64::from(slot);
            if !cells.iter().any(|c| Arc::ptr_eq(c, &self.cell)) {
                cells.push(Arc::clone(&self.cell));
            }
            let raw: RawFd = rustix::fd::IntoRawFd::into_raw_fd(fd);
            let old = self.cell.fd.swap(raw, Ordering::Relaxed);
            debug_assert_eq!(old, -1, "a made slot has a token");
            self.cell.token.store(token, Ordering::Release);
            Ok(token)
        })
    }
}

impl Drop for ProcessSlot {
    fn drop(&mut self) {
        registry::with(|cells| {
            cells.retain(|c| !Arc::ptr_eq(c, &self.cell));
            self.cell.token.store(0, Ordering::Relaxed);
            let fd = self.cell.fd.swap(-1, Ordering::Relaxed);
            if fd >= 0 {
                // SAFETY: `fd` came from `into_raw_fd` in `make` and is owned
                // by this cell alone: the fork handler sets it to -1 when it
                // closes a child's copy, and the swap took it out.
                unsafe { libc::close(fd) };
            }
        });
    }
}

/// Random enough to spread slots; not a secret.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// The process's slot descriptions, for the fork handlers.
mod registry {
    use super::SlotCell;
    use core::cell::UnsafeCell;
    use std::sync::Arc;

    struct Registry {
        lock: UnsafeCell<libc::pthread_mutex_t>,
        cells: UnsafeCell<Vec<Arc<SlotCell>>>,
    }

    // SAFETY: `cells` is only touched with `lock` held (or in the fork child
    // handler, where the forking thread holds it and is the only thread).
    unsafe impl Sync for Registry {}

    static REGISTRY: Registry = Registry {
        lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
        cells: UnsafeCell::new(Vec::new()),
    };

    struct Held;

    impl Drop for Held {
        fn drop(&mut self) {
            // SAFETY: the mutex is a valid, initialised static, locked by
            // this thread in `with`.
            unsafe { libc::pthread_mutex_unlock(REGISTRY.lock.get()) };
        }
    }

    /// Runs `f` on the registry with its lock held.
    pub(super) fn with<R>(f: impl FnOnce(&mut Vec<Arc<SlotCell>>) -> R) -> R {
        install();
        // SAFETY: a valid, initialised static mutex; never locked twice by
        // one thread (`f` does not call back into the registry).
        unsafe { libc::pthread_mutex_lock(REGISTRY.lock.get()) };
        let _held = Held;
        // SAFETY: the lock is held, so no other thread touches `cells`.
        f(unsafe { &mut *REGISTRY.cells.get() })
    }

    fn install() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: the handlers are `extern "C"` functions without
            // arguments that touch only the static registry.
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

    /// In the child, before anything else runs: close the inherited private
    /// descriptions (the parent keeps its own) and forget their tokens.
    /// Only atomics, `close` and a mutex reinitialisation: async-signal-safe,
    /// no allocation.
    extern "C" fn child() {
        // SAFETY: the forking thread took the lock in `prepare` and is the
        // child's only thread, so nothing else touches `cells`.
        let cells = unsafe { &*REGISTRY.cells.get() };
        for c in cells {
            c.token.store(0, std::sync::atomic::Ordering::Relaxed);
            let fd = c.fd.swap(-1, std::sync::atomic::Ordering::Relaxed);
            if fd >= 0 {
                // SAFETY: the child's copy of a description this registry
                // owns; nothing else in the child owns that number.
                unsafe { libc::close(fd) };
            }
        }
        // SAFETY: the child's only thread; the mutex was locked by the
        // forking thread (now this one) in `prepare`, so it is reset rather
        // than unlocked by a thread id that no longer exists.
        unsafe { REGISTRY.lock.get().write(libc::PTHREAD_MUTEX_INITIALIZER) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;

    #[test]
    fn tokens_bound_check_the_slot() {
        assert_eq!(token_slot(0), None);
        assert_eq!(token_slot(u64::from(SLOT_BASE - 1)), None);
        assert_eq!(token_slot(u64::from(SLOT_BASE + SLOTS)), None);
        assert_eq!(token_slot(u64::MAX), None);
        assert_eq!(token_slot(7 << 32 | u64::from(SLOT_BASE)), Some(SLOT_BASE));
    }

    #[test]
    fn slots_are_exclusive_and_released_with_their_description() {
        let (_seg, fd) = crate::Segment::create(&[4096], 0, [0; 8]).unwrap();
        let (a, b) = (ProcessSlot::new(), ProcessSlot::new());
        let (ta, tb) = (a.token(fd.as_fd()).unwrap(), b.token(fd.as_fd()).unwrap());
        assert_ne!(token_slot(ta), token_slot(tb));
        assert!(slot_held(fd.as_fd(), ta) && slot_held(fd.as_fd(), tb));
        // A description cannot take a slot another one holds.
        let probe = reopen(fd.as_fd()).unwrap();
        let taken = ofd_lock(
            probe.as_fd(),
            libc::F_OFD_SETLK,
            libc::F_WRLCK as libc::c_short,
            token_slot(ta).unwrap(),
        );
        assert!(taken.is_err());
        drop(a);
        assert!(!slot_held(fd.as_fd(), ta));
        assert!(slot_held(fd.as_fd(), tb));
        // A hostile lock word naming a slot nobody holds is nobody's.
        assert!(!slot_held(fd.as_fd(), u64::from(SLOT_BASE + 12345)));
    }
}
