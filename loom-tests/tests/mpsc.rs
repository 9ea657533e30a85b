//! Several senders of one end (the MPSC ring) under loom, running the
//! production `Sender` (its admission through `LockWord::admit`, the resync
//! it decides on, its fragmenting write loop): each write, larger than the
//! largest record and so streamed in two fragments, reaches the receiver
//! whole and never interleaved with the other, and the senders hand the
//! shared producer state over correctly. The receiver is the production
//! `Receiver` too (parking on `readable`).
//!
//! Senders are kept open until the receiver is done: whether an end is open
//! is a real OFD lock, a system call outside the model, so a close would
//! not order the closer's writes before the receiver's check in loom's eyes
//! (the kernel orders them in reality). The hang-up path is not modelled.
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::sync::Atomic64;
use shmpipe_engine::{channel, Receiver, RingStorage, Sender};
use shmpipe_loom_tests::{model, model_shallower, park_only_policy, payload};
use std::sync::atomic::Ordering::Relaxed;

/// Each write: 96 bytes, more than a 256-byte ring's largest record (64
/// bytes), so `Sender::write` streams it as two fragments; both writes
/// together fill the four slots exactly.
const LEN: usize = 96;

fn parking(mut tx: Sender) -> Sender {
    tx.set_wait_policy(park_only_policy());
    tx
}

/// Reads one whole message of up to `LEN` bytes.
fn read_whole(rx: &mut Receiver) -> Vec<u8> {
    let mut buf = [0u8; LEN];
    let m = rx.read_message(&mut buf).unwrap();
    assert!(m.end, "a whole message fits the buffer");
    buf[..m.len].to_vec()
}

#[test]
fn locked_writers_never_interleave() {
    model_shallower("locked_writers_never_interleave", || {
        let (tx, mut rx) = channel(256).unwrap();
        rx.set_wait_policy(park_only_policy());
        let ring = tx.ring().segment().ring(0).unwrap();
        let senders = [tx.try_clone().unwrap(), tx].map(parking);
        let writers: Vec<_> = senders
            .into_iter()
            .enumerate()
            .map(|(i, mut tx)| {
                thread::spawn(move || {
                    tx.write(&payload(i as u8, LEN)).unwrap();
                    // Kept open until the receiver is done (module docs).
                    tx
                })
            })
            .collect();
        let mut seen: Vec<_> = (0..2)
            .map(|_| {
                let got = read_whole(&mut rx);
                (0..2)
                    .find(|&i| got == payload(i as u8, LEN))
                    .expect("a message is exactly one writer's write")
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1]);
        let _senders: Vec<Sender> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let ctl = ring.control();
        assert_eq!(ctl.locks.0.writer.owner(), 0);
        // Each writer continued from the other's shared counters.
        assert_eq!(ctl.producer.0.written.load(Relaxed), 2 * LEN as u64);
    });
}

/// The admission shortcut inside `Sender` (`LockWord::admit` with the
/// handle's `synced` state): a sender that finds its own id as the last
/// holder skips reloading the shared state. Sender 0 writes twice, sender 1
/// once, in any interleaving; sender 0's second write must resync exactly
/// when sender 1 wrote in between, or it would write over sender 1's
/// record from its stale tail.
#[test]
fn last_holder_skips_resync_only_when_nobody_came_between() {
    const HALF: usize = 48;
    model(
        "last_holder_skips_resync_only_when_nobody_came_between",
        || {
            let (tx, mut rx) = channel(256).unwrap();
            let mut tx1 = parking(tx.try_clone().unwrap());
            let mut tx0 = parking(tx);
            let w0 = thread::spawn(move || {
                tx0.write(&payload(0, HALF)).unwrap();
                tx0.write(&payload(1, HALF)).unwrap();
                tx0
            });
            let w1 = thread::spawn(move || {
                tx1.write(&payload(2, HALF)).unwrap();
                tx1
            });
            let _senders = [w0.join().unwrap(), w1.join().unwrap()];
            let mut seen = Vec::new();
            let mut buf = [0u8; HALF];
            while let Some(n) = rx.try_read(&mut buf).unwrap() {
                assert_eq!(n, HALF);
                let seq = (0..3)
                    .find(|&s| buf[..] == payload(s, HALF)[..])
                    .expect("every record is one whole write");
                seen.push(seq);
            }
            // Sender 0's two writes in order, sender 1's anywhere, none lost.
            assert_eq!(seen.len(), 3, "{seen:?}");
            seen.retain(|&s| s != 2);
            assert_eq!(seen, [0, 1]);
        },
    );
}
