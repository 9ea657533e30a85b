//! The writer role handed over on a full ring, under loom, with the
//! production `Sender` and `Receiver`: sender 0 fills the ring and releases
//! the writer lock; sender 1 takes it, resyncs, and writes into the slot the
//! receiver freed meanwhile. Sender 1's first write into a freed slot is
//! ordered after the receiver's reads of it only through the `Acquire` load
//! of the consumer's `head` in `Producer::resync` (sender 0 never saw that
//! head, so the lock hand-over carries no order from the receiver):
//! weakening that load makes the receiver's read of the slot and sender 1's
//! write a data race, which loom reports. The other models miss it because
//! there the new holder's first write never lands in a slot freed after the
//! previous holder's last look at `head`. Ends stay open until the others
//! are done (see `mpsc.rs`).
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::{channel, Sender};
use shmpipe_loom_tests::{model_shallower, park_only_policy, payload};

/// A 64-byte payload makes a 128-byte record: two fill the 256-byte ring.
const LEN: usize = 64;
/// Messages per sender: sender 0 fills the ring, sender 1 adds one.
const WRITES: [u8; 2] = [2, 1];

fn spawn_writer(mut tx: Sender, i: usize) -> thread::JoinHandle<Sender> {
    tx.set_wait_policy(park_only_policy());
    thread::spawn(move || {
        for k in 0..WRITES[i] {
            tx.write(&payload(10 * i as u8 + k, LEN)).unwrap();
        }
        tx
    })
}

#[test]
fn resynced_writer_reuses_a_slot_freed_after_the_handover() {
    model_shallower(
        "resynced_writer_reuses_a_slot_freed_after_the_handover",
        || {
            let (tx, mut rx) = channel(256).unwrap();
            rx.set_wait_policy(park_only_policy());
            let writers = [
                spawn_writer(tx.try_clone().unwrap(), 0),
                spawn_writer(tx, 1),
            ];
            let mut seen = Vec::new();
            let mut buf = [0u8; LEN];
            while seen.len() < 3 {
                let m = rx.read_message(&mut buf).unwrap();
                assert!(m.end && m.len == LEN);
                let tag = [0, 1, 10]
                    .into_iter()
                    .find(|&t| buf[..] == payload(t, LEN)[..])
                    .expect("every record is one whole write");
                seen.push(tag);
            }
            let _senders = writers.map(|w| w.join().unwrap());
            // Sender 0's messages in order, sender 1's anywhere (each write
            // is its own lock round), none lost.
            let zero: Vec<_> = seen.iter().copied().filter(|&t| t != 10).collect();
            assert_eq!(zero, [0, 1], "{seen:?}");
        },
    );
}
