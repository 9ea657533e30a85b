//! What the async tests share: a runtime per test, one-shot polls, the
//! lock that runs them one at a time, and observing the readiness bridge.

use crate::common::HANG;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

/// A current-thread runtime with the I/O driver; every future is guarded
/// by `HANG` (a hang guard, not a timing assertion).
pub(crate) fn run<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::time::timeout(HANG, f).await.expect("hang") })
}

/// Polls `f` once (with the task's real waker).
pub(crate) async fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
}

/// The tests of this binary run one at a time: they share this process's
/// readiness bridge, and another test's arming kicks it into a rebuild
/// that would notice a word's change even if its wait missed it, or add
/// its own fallback signals to the count the kill tests check.
pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Spawns `f` as a task and returns once its first poll returned
/// `Pending` (fails if it completed at once): from then on only a wake-up
/// of its own polls it again, so what the caller does next (a kill) is
/// noticed through the readiness bridge, not by a poll the test makes.
pub(crate) async fn spawn_parked<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let mut f = std::pin::pin!(f);
        let mut tx = Some(tx);
        poll_fn(|cx| {
            let p = f.as_mut().poll(cx);
            if let Some(tx) = tx.take() {
                let _ = tx.send(p.is_pending());
            }
            p
        })
        .await
    });
    assert!(rx.await.unwrap(), "completed before it could wait");
    handle
}

/// Waits (at most `HANG`) until every readiness bridge thread of this
/// process sleeps in a futex wait: the last arming's kick woke it, so it
/// has rebuilt its wait list since, and a word's change reaches it only
/// through that list (its rebuild cannot pick the change up by chance).
pub(crate) fn bridge_asleep() {
    crate::common::wait_until_threads_asleep("shmpipe-readine", "futex");
}
