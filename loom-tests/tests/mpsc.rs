//! Several producers serialised by the writer `LockWord` (the MPSC ring)
//! under loom: each write, two fragments long, reaches the consumer whole
//! and never interleaved with the other, and the producers hand the shared
//! producer state over correctly through `resync`. The consumer polls with
//! `yield_now` (parking on `readable` is modelled in `blocking.rs`; here it
//! would multiply the executions by six for nothing new).
#![cfg(loom)]

use loom::thread;
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

/// One writer: takes the lock through `LockWord::admit` (parking on the
/// lock's event when it is held), resyncs, writes, unlocks, as `Sender`
/// does.
///
/// The producer is created before the threads start: `Producer::new`
/// checks the shared positions without the lock, and that check fails
/// spuriously while another writer and the reader move them (a known engine
/// issue), so a writer joining mid-traffic is not part of this model.
fn spawn_writer(ring: Arc<LoomRing>, i: usize) -> thread::JoinHandle<()> {
    // SAFETY: LoomRing hands out no slices and loom tracks each access;
    // the model's halves of one role take turns (or there is one).
    let mut p = unsafe { Producer::new(ring.clone()) }.unwrap();
    thread::spawn(move || {
        let lock = &ring.control().locks.0.writer;
        let mut waiter = Waiter::new(park_only_policy(), None);
        let admitted = lock
            .admit(TOKENS[i], TOKENS[i], false, &mut waiter, |_| true)
            .unwrap();
        assert!(admitted.needs_resync(), "a handle that never synced");
        assert_eq!(lock.owner(), TOKENS[i]);
        p.resync().unwrap();
        assert_eq!(p.open_write(), 0, "the previous write was left open");
        let data = payload(i as u8, 2 * HALF);
        assert!(p.try_push(&data[..HALF], HALF as u64).unwrap());
        assert!(p.try_push(&data[HALF..], 0).unwrap());
        drop(admitted);
    })
}

#[test]
fn locked_writers_never_interleave() {
    model("locked_writers_never_interleave", || {
        let ring = Arc::new(LoomRing::new(256));
        let writers = [spawn_writer(ring.clone(), 0), spawn_writer(ring.clone(), 1)];
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
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

/// The admission sequence's shortcut (`LockWord::admit`): a handle that
/// finds its own id as the last holder skips reloading the shared state.
/// Writer 0 writes twice, writer 1 once, in any interleaving; writer 0's
/// second write must resync exactly when writer 1 wrote in between, or it
/// would write over writer 1's record from its stale tail.
#[test]
fn last_holder_skips_resync_only_when_nobody_came_between() {
    model(
        "last_holder_skips_resync_only_when_nobody_came_between",
        || {
            let ring = Arc::new(LoomRing::new(256));
            let one_write = |p: &mut Producer<Arc<LoomRing>>, i: usize, synced: bool, seq: u8| {
                let ring = p.storage().clone();
                let lock = &ring.control().locks.0.writer;
                let mut waiter = Waiter::new(park_only_policy(), None);
                let admitted = lock
                    .admit(TOKENS[i], TOKENS[i], synced, &mut waiter, |_| true)
                    .unwrap();
                if admitted.needs_resync() {
                    p.resync().unwrap();
                }
                assert!(p.try_push(&payload(seq, HALF), 0).unwrap());
            };
            // SAFETY: LoomRing hands out no slices and loom tracks each access;
            // the model's halves of one role take turns (or there is one).
            let mut p0 = unsafe { Producer::new(ring.clone()) }.unwrap();
            // SAFETY: LoomRing hands out no slices and loom tracks each access;
            // the model's halves of one role take turns (or there is one).
            let mut p1 = unsafe { Producer::new(ring.clone()) }.unwrap();
            let w0 = thread::spawn(move || {
                one_write(&mut p0, 0, false, 0);
                one_write(&mut p0, 0, true, 1);
            });
            let w1 = thread::spawn(move || one_write(&mut p1, 1, false, 2));
            w0.join().unwrap();
            w1.join().unwrap();
            // SAFETY: LoomRing hands out no slices and loom tracks each access;
            // the model's halves of one role take turns (or there is one).
            let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; HALF];
            while let Some(m) = c.read_message(&mut buf).unwrap() {
                assert!(m.end && m.len == HALF);
                let seq = (0..3)
                    .find(|&s| buf[..] == payload(s, HALF)[..])
                    .expect("every record is one whole write");
                seen.push(seq);
            }
            // Writer 0's two writes in order, writer 1's anywhere, none lost.
            assert_eq!(seen.len(), 3, "{seen:?}");
            seen.retain(|&s| s != 2);
            assert_eq!(seen, [0, 1]);
        },
    );
}
