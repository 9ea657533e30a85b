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
use shmpipe_engine::{Consumer, Producer};
use shmpipe_loom_tests::{model, payload, LoomRing};
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
