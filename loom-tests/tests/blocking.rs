//! The production channel ends under loom: `Sender::write` and
//! `Receiver::read_message` from the `channel` module, run as they ship (under
//! `cfg(loom)` the channel sits on a ring of loom memory, see
//! `shmpipe_engine::loom_model`). The receiver parks on `readable` until
//! records arrive, the sender on `writable` until space frees, both through
//! their admission locks; a wake-up lost anywhere is a loom deadlock, a
//! read not ordered after its write a causality violation.
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::{channel, Receiver, Sender};
use shmpipe_loom_tests::{model, park_only_policy, payload};

/// A channel of `capacity` bytes whose ends park at once (a policy that
/// never reads the real clock for decisions, so executions replay).
fn parking_channel(capacity: usize) -> (Sender, Receiver) {
    let (mut tx, mut rx) = channel(capacity).unwrap();
    tx.set_wait_policy(park_only_policy());
    rx.set_wait_policy(park_only_policy());
    (tx, rx)
}

/// The receiver blocks on an empty ring while the sender writes.
#[test]
fn receiver_parks_until_a_write() {
    const LENS: [usize; 2] = [20, 60];
    model("receiver_parks_until_a_write", || {
        let (mut tx, mut rx) = parking_channel(256);
        let sender = thread::spawn(move || {
            for (tag, &len) in LENS.iter().enumerate() {
                tx.write(&payload(tag as u8, len)).unwrap();
            }
        });
        for (tag, &len) in LENS.iter().enumerate() {
            let mut buf = [0u8; 64];
            let m = rx.read_message(&mut buf).unwrap();
            assert!(m.end);
            assert_eq!(&buf[..m.len], &payload(tag as u8, len)[..]);
        }
        sender.join().unwrap();
    });
}

/// Both ends block: three 64-byte messages (128-byte records) through a
/// ring of two records, so the sender waits for space and the receiver
/// waits for records.
#[test]
fn both_ends_park_on_a_full_ring() {
    const N: u8 = 3;
    model("both_ends_park_on_a_full_ring", || {
        let (mut tx, mut rx) = parking_channel(256);
        let sender = thread::spawn(move || {
            for tag in 0..N {
                tx.write(&payload(tag, 64)).unwrap();
            }
        });
        for tag in 0..N {
            let mut buf = [0u8; 64];
            let m = rx.read_message(&mut buf).unwrap();
            assert!(m.end);
            assert_eq!(&buf[..m.len], &payload(tag, 64)[..]);
        }
        sender.join().unwrap();
    });
}
