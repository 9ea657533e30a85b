//! Several producers serialised by the writer `LockWord` (the MPSC ring)
//! under loom: each write, two fragments long, reaches the consumer whole
//! and never interleaved with the other, and the producers hand the shared
//! producer state over correctly through `resync`. The consumer polls with
//! `yield_now` (parking on `readable` is modelled in `blocking.rs`; here it
//! would multiply the executions by six for nothing new).
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::lock::Acquired;
use shmpipe_engine::sync::Atomic64;
use shmpipe_engine::wait::Waiter;
use shmpipe_engine::{Consumer, Producer, RingStorage};
use shmpipe_loom_tests::{model, park_only_policy, payload, LoomRing};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Process tokens of the two writers.
const TOKENS: [u64; 2] = [11, 22];
/// Each write: two 48-byte fragments, one slot each, so both writes fill the
/// 4-slot ring exactly and no writer ever waits for space.
const HALF: usize = 48;

/// One writer: takes the lock (parking on the lock's event when it is
/// held, as `Sender` does), resyncs, writes, unlocks.
///
/// The producer is created before the threads start: `Producer::new`
/// checks the shared positions without the lock, and that check fails
/// spuriously while another writer and the reader move them (a known engine
/// issue), so a writer joining mid-traffic is not part of this model.
fn spawn_writer(ring: Arc<LoomRing>, i: usize) -> thread::JoinHandle<()> {
    let mut p = Producer::new(ring.clone()).unwrap();
    thread::spawn(move || {
        let lock = &ring.control().locks.0.writer;
        if !lock.try_lock(TOKENS[i]) {
            let mut waiter = Waiter::new(park_only_policy(), None);
            let how = lock.lock(TOKENS[i], &mut waiter, |_| true).unwrap();
            assert_eq!(how, Acquired::Clean);
        }
        assert_eq!(lock.owner(), TOKENS[i]);
        p.resync().unwrap();
        assert_eq!(p.open_write(), 0, "the previous write was left open");
        let data = payload(i as u8, 2 * HALF);
        assert!(p.try_push(&data[..HALF], HALF as u64).unwrap());
        assert!(p.try_push(&data[HALF..], 0).unwrap());
        lock.unlock();
    })
}

#[test]
fn locked_writers_never_interleave() {
    model("locked_writers_never_interleave", || {
        let ring = Arc::new(LoomRing::new(256));
        let writers = [spawn_writer(ring.clone(), 0), spawn_writer(ring.clone(), 1)];
        let mut c = Consumer::new(ring.clone()).unwrap();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let mut buf = [0u8; 2 * HALF];
            let mut got = 0;
            loop {
                match c.read_message(&mut buf[got..]).unwrap() {
                    Some(m) => {
                        got += m.len;
                        if m.end {
                            break;
                        }
                    }
                    None => thread::yield_now(),
                }
            }
            assert_eq!(got, 2 * HALF);
            let writer = (0..2)
                .find(|&i| buf[..] == payload(i as u8, 2 * HALF)[..])
                .expect("a message is exactly one writer's write");
            seen.push(writer);
        }
        seen.sort_unstable();
        assert_eq!(seen, [0, 1]);
        for w in writers {
            w.join().unwrap();
        }
        let ctl = ring.control();
        assert_eq!(ctl.locks.0.writer.owner(), 0);
        // Each writer continued from the other's shared counters.
        assert_eq!(ctl.producer.0.tail.load(Relaxed), 256);
        assert_eq!(ctl.producer.0.written.load(Relaxed), 4 * HALF as u64);
    });
}
