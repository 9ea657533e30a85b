//! Cancelling blocked channel operations from another thread
//! (`wait::Canceller`, spec 7.4).
//!
//! Every wait here parks with a park slice of an hour: a cancel that did not
//! wake the futex it sleeps on would hang the test (caught by the hang
//! guard), not finish a slice later. Tests synchronise on the canceller's
//! pending count, never on sleeps.

use shmpipe_engine::lock::LockWord;
use shmpipe_engine::sync::Native;
use shmpipe_engine::wait::{Canceller, NotPending, WaitPolicy, Waiter};
use shmpipe_engine::{channel, Error, Receiver, Sender};
use std::sync::mpsc;
use std::time::Duration;

const HANG: Duration = Duration::from_secs(20);

/// Parks at once and wakes only when notified.
const PARK_UNTIL_NOTIFIED: WaitPolicy = WaitPolicy {
    spin: Some(Duration::ZERO),
    park_slice: Duration::from_secs(3600),
};

fn policies() -> [(&'static str, WaitPolicy); 3] {
    [
        ("park", PARK_UNTIL_NOTIFIED),
        ("spin", WaitPolicy::spin()),
        (
            "spin_then_park",
            WaitPolicy {
                spin: Some(Duration::from_micros(50)),
                park_slice: Duration::from_secs(3600),
            },
        ),
    ]
}

/// Runs `op` in a thread, waits until `canceller` counts it pending,
/// cancels, and returns what `op` returned (within the hang guard).
fn cancel_while_pending<T: Send + 'static>(
    canceller: &Canceller,
    op: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(op());
    });
    let start = std::time::Instant::now();
    while canceller.pending() == 0 {
        assert!(start.elapsed() < HANG, "the operation never became pending");
        std::thread::yield_now();
    }
    canceller.cancel().expect("an operation is pending");
    done_rx
        .recv_timeout(HANG)
        .expect("the cancelled operation did not return")
}

fn ends(policy: WaitPolicy) -> (Sender, Receiver) {
    let (mut tx, mut rx) = channel(4096).unwrap();
    tx.set_wait_policy(policy);
    rx.set_wait_policy(policy);
    (tx, rx)
}

#[test]
fn a_blocked_read_is_cancelled_and_consumes_nothing() {
    for (name, policy) in policies() {
        let (mut tx, mut rx) = ends(policy);
        let c = rx.canceller();
        let (r, mut rx) = cancel_while_pending(&c, move || {
            let r = rx.read(&mut [0u8; 16]);
            (r, rx)
        });
        assert!(matches!(r, Err(Error::Cancelled)), "{name}: {r:?}");
        // Nothing pending any more: a second cancel has nothing to do.
        assert_eq!(c.cancel(), Err(NotPending), "{name}");
        // The handle reads on, and gets what is written next.
        tx.write(b"after").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(rx.read(&mut buf).unwrap(), 5, "{name}");
        assert_eq!(&buf[..5], b"after");
    }
}

#[test]
fn a_blocked_message_read_is_cancelled() {
    let (_tx, mut rx) = ends(PARK_UNTIL_NOTIFIED);
    let c = rx.canceller();
    let r = cancel_while_pending(&c, move || rx.read_message(&mut [0u8; 16]).map(|m| m.len));
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
}

#[test]
fn a_write_waiting_for_space_is_cancelled_and_keeps_what_it_published() {
    for (name, policy) in policies() {
        let (mut tx, mut rx) = ends(policy);
        tx.write(&[1; 3000]).unwrap();
        let c = tx.canceller();
        // Larger than the ring: streamed, so part of it is published before
        // it waits.
        let r = cancel_while_pending(&c, move || tx.send(&[2; 9000], None).map(|_| ()));
        let e = r.unwrap_err();
        assert!(matches!(e.error, Error::Cancelled), "{name}: {e:?}");
        assert!(e.published < 9000, "{name}");
        let mut got = 0;
        let mut buf = [0u8; 4096];
        while let Some(n) = rx.try_read(&mut buf).unwrap() {
            if n == 0 {
                break;
            }
            got += n;
        }
        assert_eq!(got, 3000 + e.published, "{name}");
    }
}

#[test]
fn a_wait_for_the_reader_is_cancelled() {
    let (mut tx, _rx) = ends(PARK_UNTIL_NOTIFIED);
    let end = tx.send(b"unread", None).unwrap();
    let c = tx.canceller();
    let r = cancel_while_pending(&c, move || tx.wait_consumed(end, None));
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
}

#[test]
fn a_flush_is_cancelled() {
    let (mut tx, _rx) = ends(PARK_UNTIL_NOTIFIED);
    tx.write(b"unread").unwrap();
    let c = tx.canceller();
    let r = cancel_while_pending(&c, move || tx.flush());
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
}

/// A write waiting for the writer lock, which another handle of the end
/// holds (inside a batch that waits for the test), is cancelled; the
/// holder is unaffected.
#[test]
fn a_wait_for_the_writer_lock_is_cancelled() {
    let (mut tx, mut rx) = ends(PARK_UNTIL_NOTIFIED);
    let mut other = tx.try_clone().unwrap();
    other.set_wait_policy(PARK_UNTIL_NOTIFIED);
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        tx.batch(|p| {
            assert!(p.try_push(b"held", 0).unwrap());
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
        .unwrap();
        tx
    });
    held_rx.recv().unwrap();
    let c = other.canceller();
    let r = cancel_while_pending(&c, move || other.write(b"waits"));
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(rx.read(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"held");
}

/// A `LockWord` wait with a cancellable waiter ends with `Cancelled` once
/// the canceller's waker wakes the lock's waiters.
#[test]
fn a_lock_word_wait_is_cancelled() {
    let lock = std::sync::Arc::new(LockWord::<Native>::new());
    assert!(lock.try_lock(1));
    let c = Canceller::new();
    let l = lock.clone();
    c.set_waker(
        0,
        std::sync::Arc::new(move || {
            l.wake_waiters();
            true
        }),
    );
    let (l, c2) = (lock.clone(), c.clone());
    let r = cancel_while_pending(&c, move || {
        let mut w = Waiter::new(PARK_UNTIL_NOTIFIED, None).cancellable(&c2);
        l.lock(2, &mut w, |_| true).map(drop)
    });
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(lock.owner(), 1);
}

/// A cancel ends the operations pending at that moment, not later ones;
/// with nothing pending it is `NotPending` (spec SEM-144).
#[test]
fn only_operations_pending_at_the_cancel_are_cancelled() {
    let (mut tx, mut rx) = ends(PARK_UNTIL_NOTIFIED);
    let c = rx.canceller();
    assert_eq!(c.cancel(), Err(NotPending));
    let r = cancel_while_pending(&c, {
        let c = c.clone();
        move || {
            let first = rx.read(&mut [0u8; 8]);
            // Started after the cancel: not affected, gets the data.
            let (ready_tx, ready_rx) = mpsc::channel();
            let t = std::thread::spawn(move || {
                let _ = ready_rx.recv();
                tx.write(b"x").unwrap();
                tx
            });
            ready_tx.send(()).unwrap();
            let second = rx.read(&mut [0u8; 8]);
            drop(t.join().unwrap());
            (first, second, c.pending())
        }
    });
    assert!(matches!(r.0, Err(Error::Cancelled)), "{:?}", r.0);
    assert_eq!(r.1.unwrap(), 1);
    assert_eq!(r.2, 0);
    assert_eq!(c.cancel(), Err(NotPending));
}

/// A canceller shared by two handles (the halves of one pipe end) cancels
/// the pending operations of both.
#[test]
fn a_shared_canceller_cancels_both_halves() {
    let (mut tx, _rx) = ends(PARK_UNTIL_NOTIFIED);
    let (_tx2, mut rx) = ends(PARK_UNTIL_NOTIFIED);
    rx.set_canceller(tx.canceller());
    tx.write(&[0; 3000]).unwrap();
    let c = tx.canceller();
    let (done_tx, done_rx) = mpsc::channel();
    let d = done_tx.clone();
    std::thread::spawn(move || d.send(format!("{:?}", tx.write(&[0; 4000]))));
    std::thread::spawn(move || done_tx.send(format!("{:?}", rx.read(&mut [0; 8]))));
    let start = std::time::Instant::now();
    while c.pending() < 2 {
        assert!(start.elapsed() < HANG, "pending {}", c.pending());
        std::thread::yield_now();
    }
    c.cancel().unwrap();
    for _ in 0..2 {
        let r = done_rx.recv_timeout(HANG).unwrap();
        assert_eq!(r, "Err(Cancelled)");
    }
}
