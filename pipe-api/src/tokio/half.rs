//! One direction of an async end: a [`Readiness`] registered with tokio's
//! reactor, and the loop every async operation runs (the protocol of
//! `shmpipe_engine::readiness`): try the nonblocking operation; on
//! `WouldBlock` announce, try again, arm the bridge, and wait for the
//! eventfd; when it is readable, try once more, and only if that still
//! says `WouldBlock` clear it and start over.
//!
//! Nothing is consumed or published except inside a successful try, so a
//! future dropped while it waits has done nothing (reads consume nothing;
//! writes published nothing, see the module doc of [`crate::tokio`]).

use shmpipe_engine::readiness::{Readiness, Tickets};
use std::io;
use std::task::{ready, Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A readiness eventfd in tokio's reactor.
#[derive(Debug)]
pub(crate) struct Half {
    fd: AsyncFd<Readiness>,
}

pub(crate) fn is_would_block(r: &io::Result<impl Sized>) -> bool {
    matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

impl Half {
    /// Must run inside a tokio runtime (the reactor registers the eventfd).
    pub(crate) fn new() -> io::Result<Half> {
        let readiness = Readiness::new()?;
        // SAFETY: a `Readiness` owns its eventfd (an `Arc<OwnedFd>` no one
        // else closes while it lives) and `as_raw_fd` always returns that
        // descriptor; the `AsyncFd` owns the `Readiness` until it drops.
        let fd = unsafe { AsyncFd::register_with_interest(readiness, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Half { fd })
    }

    /// Runs `op` until it does not return `WouldBlock`, waiting between
    /// attempts on what `announce` names. Registers `cx`'s waker on
    /// `Pending` (one waker per half, as `AsyncRead`/`AsyncWrite` need).
    pub(crate) fn poll_op<T>(
        &self,
        cx: &mut Context<'_>,
        announce: impl Fn() -> io::Result<Tickets>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            let r = op();
            if !is_would_block(&r) {
                return Poll::Ready(r);
            }
            let tickets = announce()?;
            let r = op();
            if !is_would_block(&r) {
                return Poll::Ready(r);
            }
            self.fd.get_ref().arm(tickets)?;
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            // Consume the signal before the next attempt, so that one
            // given after it is not lost (tokio's `clear_ready` keeps a
            // readiness event that arrives after the guard was made).
            self.fd.get_ref().clear()?;
            guard.clear_ready();
        }
    }

    /// [`Half::poll_op`] as a future that any number of tasks may await at
    /// once on one half (each gets its own waker, through tokio's
    /// `readable()`).
    pub(crate) async fn op<T>(
        &self,
        announce: impl Fn() -> io::Result<Tickets>,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            let r = op();
            if !is_would_block(&r) {
                return r;
            }
            let tickets = announce()?;
            let r = op();
            if !is_would_block(&r) {
                return r;
            }
            self.fd.get_ref().arm(tickets)?;
            let mut guard = self.fd.readable().await?;
            // Woken: try before consuming the signal, as `poll_op` does when
            // it is polled again (and as tokio's own types clear readiness
            // only after an attempt said `WouldBlock`). A signal left over
            // makes the next wait find the eventfd ready and try once more
            // right after arming, which is a few microseconds after its
            // first try: in a request/reply exchange the reply has usually
            // arrived by then, and the task does not sleep. Consuming the
            // signal first put every wait to sleep in `epoll_wait`, and a
            // message-mode round trip in `shmpipe bench --only async` took
            // 30-40 us instead of about 1 us (docs/performance.md). An idle
            // wait still sleeps after that one extra round.
            let r = op();
            if !is_would_block(&r) {
                return r;
            }
            self.fd.get_ref().clear()?;
            guard.clear_ready();
        }
    }
}

/// Polls two futures until one is ready (for `ready(Interest)` on a duplex
/// end): `Ok` with the first's output, `Err` with the second's.
pub(crate) async fn either<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> Result<A::Output, B::Output> {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Ok(x));
        }
        b.as_mut().poll(cx).map(Err)
    })
    .await
}
