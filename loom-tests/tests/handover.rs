//! The writer role handed over on a full ring, under loom: writer 0 fills
//! the ring and releases the writer lock; writer 1 takes it, resyncs, and
//! writes into the slot the consumer freed meanwhile. The new writer's first
//! write into a freed slot is ordered after the consumer's reads of it only
//! through the `Acquire` load of the consumer's `head` in
//! `Producer::resync` (writer 0 never saw that head, so the lock hand-over
//! carries no order from the consumer): weakening that load makes the
//! consumer's read of the slot and writer 1's write a data race, which loom
//! reports. The other models miss it because there the new holder's first
//! write never lands in a slot freed after the previous holder's last look
//! at `head`.
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::wait::Waiter;
use shmpipe_engine::{Consumer, Producer, RingStorage};
use shmpipe_loom_tests::{model, park_only_policy, payload, LoomRing};
use std::sync::Arc;

const TOKENS: [u64; 2] = [11, 22];
/// A 64-byte payload makes a 128-byte record: two fill the 256-byte ring.
const LEN: usize = 64;
/// Records per writer: writer 0 fills the ring, writer 1 adds one.
const WRITES: [u8; 2] = [2, 1];

/// One writer, as `Sender` does it: admit (parking on the lock's event),
/// resync, push its records (polling for space), unlock.
fn spawn_writer(ring: Arc<LoomRing>, i: usize) -> thread::JoinHandle<()> {
    let mut p = Producer::new_unsynced(ring.clone()).unwrap();
    thread::spawn(move || {
        let lock = &ring.control().locks.0.writer;
        let mut waiter = Waiter::new(park_only_policy(), None);
        let admitted = lock
            .admit(TOKENS[i], TOKENS[i], false, &mut waiter, |_| true)
            .unwrap();
        assert!(admitted.needs_resync());
        p.resync().unwrap();
        for k in 0..WRITES[i] {
            let data = payload(10 * i as u8 + k, LEN);
            while !p.try_push(&data, 0).unwrap() {
                thread::yield_now();
            }
        }
        drop(admitted);
    })
}

#[test]
fn resynced_writer_reuses_a_slot_freed_after_the_handover() {
    model(
        "resynced_writer_reuses_a_slot_freed_after_the_handover",
        || {
            let ring = Arc::new(LoomRing::new(256));
            let writers = [spawn_writer(ring.clone(), 0), spawn_writer(ring.clone(), 1)];
            let mut c = Consumer::new(ring.clone()).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; LEN];
            while seen.len() < 3 {
                match c.read_message(&mut buf).unwrap() {
                    Some(m) => {
                        assert!(m.end && m.len == LEN);
                        let tag = [0, 1, 10]
                            .into_iter()
                            .find(|&t| buf[..] == payload(t, LEN)[..])
                            .expect("every record is one whole write");
                        seen.push(tag);
                    }
                    None => thread::yield_now(),
                }
            }
            for w in writers {
                w.join().unwrap();
            }
            // Writer 0's records in order, writer 1's before or after both.
            let zero: Vec<_> = seen.iter().copied().filter(|&t| t != 10).collect();
            assert_eq!(zero, [0, 1], "{seen:?}");
            assert!(seen[1] != 10, "writes interleaved: {seen:?}");
        },
    );
}
