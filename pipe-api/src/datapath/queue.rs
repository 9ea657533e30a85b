//! Waiting for a half that another call of the same handle holds (a second
//! blocking read behind a read parked in the engine, a transact behind a
//! write waiting for room), cancellably (spec 7.4: `CancelIoEx` ends every
//! pending request of the handle, the queued ones included).
//!
//! The uncontended path is one `try_lock`; only a call that finds the half
//! taken registers as pending on the handle's canceller and waits on a
//! process-local `Condvar`, which is notified when a half is released
//! (while anyone is queued) and by a waker the canceller runs.
//!
//! A release reads the queued count with a plain load after unlocking, not
//! behind a fence (that would cost every uncontended operation one), so on
//! a weakly ordered machine it may miss a waiter that queued at that very
//! moment: the waiter re-tries after [`SLICE`] at the latest. A cancel is
//! never missed: its waker takes the queue's mutex, which the waiter holds
//! from its last look at the generation until it sleeps.

use super::lock;
use crate::error::{Error, ErrorKind};
use shmpipe_engine::wait::Canceller;
use std::io;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

/// The longest a queued call sleeps before it looks at the half again (the
/// backstop of a release that missed it, see the module docs).
const SLICE: Duration = Duration::from_millis(4);

/// The calls of one handle queued for one of its halves.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// How many calls wait (changed under `m`, read without it on release).
    queued: AtomicUsize,
    m: Mutex<()>,
    cv: Condvar,
}

impl Queue {
    /// Wakes every queued call (to re-try the half or see a cancel).
    fn notify(&self) {
        drop(lock(&self.m));
        self.cv.notify_all();
    }
}

/// A locked half: the queued calls are told when it is released.
pub(crate) struct Half<'a, H> {
    guard: ManuallyDrop<MutexGuard<'a, H>>,
    queue: &'a Queue,
}

impl<'a, H> Half<'a, H> {
    pub(super) fn new(guard: MutexGuard<'a, H>, queue: &'a Queue) -> Self {
        Half {
            guard: ManuallyDrop::new(guard),
            queue,
        }
    }
}

impl<H> Deref for Half<'_, H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.guard
    }
}

impl<H> DerefMut for Half<'_, H> {
    fn deref_mut(&mut self) -> &mut H {
        &mut self.guard
    }
}

impl<H> Drop for Half<'_, H> {
    fn drop(&mut self) {
        // SAFETY: `guard` is dropped only here, once, and never used after.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if self.queue.queued.load(Relaxed) != 0 {
            self.queue.notify();
        }
    }
}

/// Locks `half` (poisoning ignored, as `lock` does), waiting as a pending
/// operation of `cancel` if another call holds it: `OperationAborted` if
/// cancelled meanwhile, the half then left untouched.
pub(crate) fn lock_half<'a, H>(
    half: &'a Mutex<H>,
    queue: &'a Arc<Queue>,
    cancel: &Canceller,
) -> io::Result<Half<'a, H>> {
    match half.try_lock() {
        Ok(h) => Ok(Half::new(h, queue)),
        Err(TryLockError::Poisoned(e)) => Ok(Half::new(e.into_inner(), queue)),
        Err(TryLockError::WouldBlock) => queued(half, queue, cancel),
    }
}

#[cold]
fn queued<'a, H>(
    half: &'a Mutex<H>,
    queue: &'a Arc<Queue>,
    cancel: &Canceller,
) -> io::Result<Half<'a, H>> {
    let op = cancel.begin();
    // Keyed by the queue: calls queued at once share one waker, which goes
    // with the last of them.
    let key = Arc::as_ptr(queue) as usize;
    let weak = Arc::downgrade(queue);
    cancel.set_waker(
        key,
        Arc::new(move || match weak.upgrade() {
            Some(q) => {
                q.notify();
                true
            }
            None => false,
        }),
    );
    let mut m = lock(&queue.m);
    queue.queued.fetch_add(1, SeqCst);
    let got = loop {
        match half.try_lock() {
            Ok(h) => break Some(h),
            Err(TryLockError::Poisoned(e)) => break Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
        if op.is_cancelled() {
            break None;
        }
        m = queue
            .cv
            .wait_timeout(m, SLICE)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    };
    queue.queued.fetch_sub(1, SeqCst);
    drop(m);
    cancel.remove_waker(key);
    let half = got.map(|h| Half::new(h, queue));
    // Counted by a cancel that came as the half was handed over: cancelled
    // all the same (the release of `half` tells the other queued calls).
    if op.is_cancelled() {
        drop(half);
        return Err(Error::io(ErrorKind::OperationAborted));
    }
    half.ok_or_else(|| Error::io(ErrorKind::OperationAborted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A call queued behind a holder that is not itself pending (no public
    /// call holds a half without waiting in the engine, so this is the
    /// only way to have the queued call pending alone): the cancel counts
    /// it (no `NotPending`) and ends it; the half was never taken.
    #[test]
    fn a_cancel_with_only_the_queued_call_pending_ends_it() {
        let half = Arc::new(Mutex::new(0u32));
        let queue = Arc::new(Queue::default());
        let cancel = Canceller::new();
        let held = lock(&half);
        let t = {
            let (half, queue, cancel) = (Arc::clone(&half), Arc::clone(&queue), cancel.clone());
            std::thread::spawn(move || {
                lock_half(&half, &queue, &cancel).map(|mut h| {
                    *h += 1;
                })
            })
        };
        let start = Instant::now();
        while cancel.pending() == 0 {
            assert!(start.elapsed() < Duration::from_secs(20), "never queued");
            std::thread::yield_now();
        }
        assert_eq!(cancel.cancel(), Ok(()));
        let e = t.join().unwrap().unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::OperationAborted));
        assert_eq!(*held, 0, "a cancelled call touches nothing");
        drop(held);
        // The next call takes the half at once.
        *lock_half(&half, &queue, &cancel).unwrap() += 1;
        assert_eq!(*lock(&half), 1);
        assert_eq!(cancel.pending(), 0);
    }
}
