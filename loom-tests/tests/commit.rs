//! The commit-word protocol under loom: a record is published by the
//! commit word in its own header, and the reader polls that word, not the
//! producer's `tail`. The model makes the ring's slots hold payload bytes of
//! an earlier lap that forge a commit word for a later position (the
//! `LoomRing` copies a payload's first bytes of each slot into the slot's
//! atomic commit word, as real memory does), so it checks both orders the
//! protocol rests on: the payload before its commit word (`Release` /
//! `Acquire`), and the zeroing of the next slot before the commit that
//! leads the reader there.
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::record::Header;
use shmpipe_engine::sync::Atomic64;
use shmpipe_engine::RingStorage;
use shmpipe_engine::{Consumer, Producer};
use shmpipe_loom_tests::{model, payload, LoomRing};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// 4 slots of 64 bytes.
const CAP: usize = 256;

/// The messages: R1 (0..128, payload in slot 1, whose first bytes forge a
/// 5-byte record at position 320, one lap later), R2 (128..256), R3
/// (256..320, lap 2: it ends on the forged slot), R4 (320..384).
fn messages() -> Vec<Vec<u8>> {
    let mut r1 = payload(1, 64);
    let forged = Header {
        len: 5,
        flags: 0,
        remaining: 0,
    }
    .encode(CAP as u64 + 64);
    r1[..16].copy_from_slice(&forged);
    vec![r1, payload(2, 64), payload(3, 10), payload(4, 3)]
}

/// The reader sees exactly the four messages, in order, never the record
/// the stale payload forges, and never a payload before its commit.
#[test]
fn stale_payload_is_never_read_as_a_record() {
    model("stale_payload_is_never_read_as_a_record", || {
        let ring = Arc::new(LoomRing::new(CAP));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                // SAFETY: LoomRing hands out no slices and loom tracks each
                // access; this is the ring's only producer.
                let mut p = unsafe { Producer::new(ring) }.unwrap();
                for m in messages() {
                    while !p.try_push(&m, 0).unwrap() {
                        thread::yield_now();
                    }
                }
            })
        };
        // SAFETY: as above; the ring's only consumer.
        let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
        for (i, want) in messages().iter().enumerate() {
            let mut buf = [0u8; 64];
            let m = loop {
                match c.read_message(&mut buf).unwrap() {
                    Some(m) => break m,
                    None => thread::yield_now(),
                }
            };
            assert!(m.end, "message {i} whole");
            assert_eq!(&buf[..m.len], &want[..], "message {i}");
        }
        producer.join().unwrap();
        assert_eq!(c.read_message(&mut [0u8; 64]).unwrap(), None);
    });
}

/// A producer died after committing a record behind padding but before
/// committing the padding (its `tail` still before the padding); the
/// producer that takes over puts a different record at the same place.
/// The reader must get the new record, never the dead producer's, whose
/// commit word names the same position. (The padding's commit is `Release`
/// so that a reader acquiring it cannot read the older commit word; loom
/// explores only 6 executions here and does not hand the reader that older
/// value, so weakening it to `Relaxed` is not caught by this model: the
/// argument for it is in `Grant::publish`.)
#[test]
fn padding_leads_to_the_record_of_the_producer_that_took_over() {
    model(
        "padding_leads_to_the_record_of_the_producer_that_took_over",
        || {
            let ring = Arc::new(LoomRing::new(CAP));
            // SAFETY: as above; each producer is dropped before the next is
            // made, and the consumer is the only one.
            let mut dead = unsafe { Producer::new(ring.clone()) }.unwrap();
            // SAFETY: the ring's only consumer.
            let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
            assert!(dead.try_push(&payload(1, 64), 0).unwrap()); // 0..128
            assert!(dead.try_push(&payload(2, 48), 0).unwrap()); // 128..192
            let mut buf = [0u8; 64];
            assert_eq!(c.read_message(&mut buf).unwrap().unwrap().len, 64);
            assert_eq!(c.read_message(&mut buf).unwrap().unwrap().len, 48);
            // Padding at 192, the record at 256 (index 0); then the producer
            // "dies" between the two commits: the padding's word is not there
            // and its shared words are as before the push.
            let st = &ring.control().producer.0;
            let before = (st.tail.load(Relaxed), st.written.load(Relaxed));
            assert!(dead.try_push(&payload(3, 64), 0).unwrap());
            drop(dead);
            // SAFETY: slot 192 of the 256-byte ring; no other thread yet.
            unsafe { ring.commit_word(192) }.store(0, Relaxed);
            st.tail.store(before.0, Relaxed);
            st.written.store(before.1, Relaxed);
            let producer = {
                let ring = ring.clone();
                thread::spawn(move || {
                    // SAFETY: the only producer now.
                    let mut p = unsafe { Producer::new(ring) }.unwrap();
                    // 60 bytes: padding at 192 again, a different record at 256.
                    while !p.try_push(&payload(4, 60), 0).unwrap() {
                        thread::yield_now();
                    }
                })
            };
            let m = loop {
                match c.read_message(&mut buf).unwrap() {
                    Some(m) => break m,
                    None => thread::yield_now(),
                }
            };
            assert!(m.end);
            assert_eq!(&buf[..m.len], &payload(4, 60)[..]);
            producer.join().unwrap();
        },
    );
}
