//! Several readers of one end serialised by the reader `LockWord`, under
//! loom: a message read in pieces by different readers continues exactly
//! where the previous reader stopped (the shared `head_offset` handed over
//! through `Consumer::resync`), while the producer is still publishing.
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::sync::Atomic64;
use shmpipe_engine::wait::Waiter;
use shmpipe_engine::{Consumer, MessageRead, Producer, RingStorage};
use shmpipe_loom_tests::{model, park_only_policy, payload, LoomRing};
use std::sync::atomic::Ordering::Acquire;
use std::sync::Arc;

const TOKENS: [u64; 2] = [11, 22];
const LEN: usize = 40;
const PIECE: usize = 16;

/// One reader: under the reader lock, reads up to `PIECE` bytes of the head
/// message; parks on `readable` until the message is published.
fn spawn_reader(ring: Arc<LoomRing>, i: usize) -> thread::JoinHandle<Vec<u8>> {
    // SAFETY: LoomRing hands out no slices and loom tracks each access;
    // the model's halves of one role take turns (or there is one).
    let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
    let mut synced = false;
    thread::spawn(move || loop {
        // The admission sequence of `Receiver`: a reader that held the lock
        // last skips the resync.
        let lock = &ring.control().locks.0.reader.0;
        let mut waiter = Waiter::new(park_only_policy(), None);
        let admitted = lock
            .admit(TOKENS[i], TOKENS[i], synced, &mut waiter, |_| true)
            .unwrap();
        if admitted.needs_resync() {
            c.resync().unwrap();
        }
        let mut buf = [0u8; PIECE];
        let got = c.read_message(&mut buf).unwrap();
        synced = true;
        drop(admitted);
        match got {
            Some(m) => {
                assert_eq!(
                    m,
                    MessageRead {
                        len: PIECE,
                        end: false
                    }
                );
                return buf.to_vec();
            }
            // Parks outside the lock, as `Receiver` does: until the tail
            // moves past the shared head seen now.
            None => {
                let ctl = ring.control();
                let head = ctl.consumer.0.head.load(Acquire);
                ctl.events
                    .0
                    .readable
                    .park(None, || ctl.producer.0.tail.load(Acquire) != head);
            }
        }
    })
}

#[test]
fn readers_continue_a_message_in_order() {
    model("readers_continue_a_message_in_order", || {
        let ring = Arc::new(LoomRing::new(256));
        let readers = [spawn_reader(ring.clone(), 0), spawn_reader(ring.clone(), 1)];
        let message = payload(5, LEN);
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut p = unsafe { Producer::new(ring.clone()) }.unwrap();
        assert!(p.try_push(&message, 0).unwrap());
        let mut pieces: Vec<Vec<u8>> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        pieces.sort_unstable_by_key(|piece| message.windows(PIECE).position(|w| w == &piece[..]));
        assert_eq!(pieces[0], message[..PIECE]);
        assert_eq!(pieces[1], message[PIECE..2 * PIECE]);
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
        let mut buf = [0u8; LEN];
        let m = c.read_message(&mut buf).unwrap().unwrap();
        assert!(m.end);
        assert_eq!(&buf[..m.len], &message[2 * PIECE..]);
    });
}
