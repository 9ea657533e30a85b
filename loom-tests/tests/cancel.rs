//! `wait::Canceller` under loom, on the production channel ends: a cancel
//! from another thread wakes a receiver parked on `readable` (a lost wake-up
//! would be a loom deadlock: the model futex ignores timeouts), and a cancel
//! racing a write never loses the written bytes.
#![cfg(loom)]

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use shmpipe_engine::{channel, Error, Receiver, Sender};
use shmpipe_loom_tests::{model, park_only_policy};
use std::sync::atomic::Ordering::{Acquire, Release};

fn parking_channel(capacity: usize) -> (Sender, Receiver) {
    let (mut tx, mut rx) = channel(capacity).unwrap();
    tx.set_wait_policy(park_only_policy());
    rx.set_wait_policy(park_only_policy());
    (tx, rx)
}

/// The canceller publishes its generation and then notifies: the parked
/// read (its park condition includes "cancelled") always wakes and ends
/// with `Cancelled`.
#[test]
fn a_cancel_wakes_a_parked_read() {
    model("a_cancel_wakes_a_parked_read", || {
        let (_tx, mut rx) = parking_channel(256);
        let canceller = rx.canceller();
        let reader = thread::spawn(move || matches!(rx.read(&mut [0u8; 8]), Err(Error::Cancelled)));
        // Only a read that is pending can be cancelled: until it is,
        // `cancel` reports nothing pending.
        while canceller.cancel().is_err() {
            thread::yield_now();
        }
        assert!(reader.join().unwrap(), "the read was not cancelled");
    });
}

/// A write and a cancel race a pending read: the read either returns the
/// byte or is cancelled, and then the byte is still there (a cancelled
/// read consumes nothing).
#[test]
fn a_cancel_racing_a_write_loses_nothing() {
    model("a_cancel_racing_a_write_loses_nothing", || {
        let (mut tx, mut rx) = parking_channel(256);
        let canceller = rx.canceller();
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let reader = thread::spawn(move || {
            let r = rx.read(&mut [0u8; 8]);
            d.store(true, Release);
            (r.map_err(|e| matches!(e, Error::Cancelled)), rx)
        });
        let writer = thread::spawn(move || {
            tx.write(b"x").unwrap();
            tx
        });
        while canceller.pending() == 0 && !done.load(Acquire) {
            thread::yield_now();
        }
        let _ = canceller.cancel();
        let (r, mut rx) = reader.join().unwrap();
        let _tx = writer.join().unwrap();
        match r {
            Ok(n) => assert_eq!(n, 1),
            Err(cancelled) => {
                assert!(cancelled, "only a cancel may end the read");
                assert_eq!(rx.try_read(&mut [0u8; 8]).unwrap(), Some(1));
            }
        }
    });
}
