//! The ring with blocking ends under loom: the consumer parks on the
//! `readable` event until records arrive, the producer parks on `writable`
//! until space frees, with the readiness checks the channel layer uses
//! (`has_records`, `free_hint() >= space_needed(..)`). `Grant::commit` and
//! the consumer's reads notify; a wake-up lost anywhere on either path is a
//! loom deadlock.
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::{Consumer, MessageRead, Producer, RingStorage};
use shmpipe_loom_tests::{model, payload, LoomRing};
use std::sync::Arc;

/// Reads one message, parking on `readable` while the ring is empty.
fn read_blocking(c: &mut Consumer<Arc<LoomRing>>, buf: &mut [u8]) -> MessageRead {
    let ring = c.storage().clone();
    let readable = &ring.control().events.0.readable;
    loop {
        if let Some(m) = c.read_message(buf).unwrap() {
            return m;
        }
        readable.park(None, || c.has_records());
    }
}

/// Pushes one record, parking on `writable` while it does not fit.
fn push_blocking(p: &mut Producer<Arc<LoomRing>>, data: &[u8]) {
    let ring = p.storage().clone();
    let writable = &ring.control().events.0.writable;
    while !p.try_push(data, 0).unwrap() {
        let need = p.space_needed(data.len(), true);
        writable.park(None, || p.free_hint() >= need);
    }
}

/// The consumer blocks on an empty ring while the producer commits.
#[test]
fn consumer_parks_until_commit() {
    const LENS: [usize; 2] = [20, 60];
    model("consumer_parks_until_commit", || {
        let ring = Arc::new(LoomRing::new(256));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                // SAFETY: LoomRing hands out no slices and loom tracks each access;
                // the model's halves of one role take turns (or there is one).
                let mut p = unsafe { Producer::new(ring) }.unwrap();
                for (tag, &len) in LENS.iter().enumerate() {
                    assert!(p.try_push(&payload(tag as u8, len), 0).unwrap());
                }
            })
        };
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring) }.unwrap();
        for (tag, &len) in LENS.iter().enumerate() {
            let mut buf = [0u8; 64];
            let m = read_blocking(&mut c, &mut buf);
            assert!(m.end);
            assert_eq!(&buf[..m.len], &payload(tag as u8, len)[..]);
        }
        producer.join().unwrap();
    });
}

/// Both ends block: three 128-byte records through a ring of two, so the
/// producer waits for space and the consumer waits for records.
#[test]
fn both_ends_park_on_a_full_ring() {
    const N: u8 = 3;
    model("both_ends_park_on_a_full_ring", || {
        let ring = Arc::new(LoomRing::new(256));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                // SAFETY: LoomRing hands out no slices and loom tracks each access;
                // the model's halves of one role take turns (or there is one).
                let mut p = unsafe { Producer::new(ring) }.unwrap();
                for tag in 0..N {
                    push_blocking(&mut p, &payload(tag, 64));
                }
            })
        };
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring) }.unwrap();
        for tag in 0..N {
            let mut buf = [0u8; 64];
            let m = read_blocking(&mut c, &mut buf);
            assert!(m.end);
            assert_eq!(&buf[..m.len], &payload(tag, 64)[..]);
        }
        producer.join().unwrap();
    });
}
