//! The SPSC ring under loom: one producer, one consumer, records of every
//! shape (inline, empty, full-slot, padded at the buffer end, fragments of a
//! write larger than the ring). Both sides poll with `yield_now`, so these
//! models check the ring's publication and freeing orders alone; the
//! blocking variants are in `blocking.rs`.
#![cfg(loom)]

use loom::thread;
use shmpipe_engine::sync::Atomic64;
use shmpipe_engine::{Consumer, Producer, RingStorage};
use shmpipe_loom_tests::{model, payload, LoomRing};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// 4 slots of 64 bytes.
const CAP: usize = 256;

/// Payload lengths of the records: 10 B (one slot), empty (one slot), 48 B
/// (the largest inline payload, one slot, ends at index 192), 64 B (a
/// 128-byte record: it does not fit in the last slot, so it needs a `PAD`
/// there and goes to index 0 once the consumer freed the first two slots).
const LENS: [usize; 4] = [10, 0, 48, 64];

/// Ring position after all records: three slots, the pad slot, two slots.
const END: u64 = 384;

fn spawn_producer(ring: Arc<LoomRing>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut p = unsafe { Producer::new(ring) }.unwrap();
        for (tag, &len) in LENS.iter().enumerate() {
            let data = payload(tag as u8, len);
            while !p.try_push(&data, 0).unwrap() {
                thread::yield_now();
            }
        }
        assert_eq!(p.written(), LENS.iter().sum::<usize>() as u64);
    })
}

/// Checks that the ring ended where the records say, padding included, and
/// that both sides' shared counters agree.
fn check_drained(ring: &LoomRing, c: &mut Consumer<Arc<LoomRing>>) {
    let mut buf = [0u8; 8];
    assert_eq!(c.read_stream(&mut buf).unwrap(), None);
    let ctl = ring.control();
    assert_eq!(ctl.producer.0.tail.load(Relaxed), END);
    assert_eq!(ctl.consumer.0.head.load(Relaxed), END);
    let total = LENS.iter().sum::<usize>() as u64;
    assert_eq!(ctl.producer.0.written.load(Relaxed), total);
    assert_eq!(c.consumed(), total);
}

/// Byte-stream reads: the payloads arrive in order, and the empty record
/// is reported as its own 0-byte read exactly between the bytes of the
/// first and the third record.
#[test]
fn stream_reads_see_records_in_order() {
    model("stream_reads_see_records_in_order", || {
        let ring = Arc::new(LoomRing::new(CAP));
        let producer = spawn_producer(ring.clone());
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
        let expected: Vec<u8> = LENS
            .iter()
            .enumerate()
            .flat_map(|(tag, &len)| payload(tag as u8, len))
            .collect();
        let mut got = Vec::new();
        let mut empty_reads_at = Vec::new();
        while got.len() < expected.len() || empty_reads_at.is_empty() {
            let mut buf = [0u8; 100];
            match c.read_stream(&mut buf).unwrap() {
                None => thread::yield_now(),
                Some(0) => empty_reads_at.push(got.len()),
                Some(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, expected);
        assert_eq!(empty_reads_at, [LENS[0]]);
        producer.join().unwrap();
        check_drained(&ring, &mut c);
    });
}

/// Message reads: one complete message per record, the empty one included.
#[test]
fn message_reads_see_whole_records_in_order() {
    model("message_reads_see_whole_records_in_order", || {
        let ring = Arc::new(LoomRing::new(CAP));
        let producer = spawn_producer(ring.clone());
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
        for (tag, &len) in LENS.iter().enumerate() {
            let mut buf = [0u8; 64];
            let m = loop {
                match c.read_message(&mut buf).unwrap() {
                    Some(m) => break m,
                    None => thread::yield_now(),
                }
            };
            assert!(m.end, "record {tag} read whole");
            assert_eq!(&buf[..m.len], &payload(tag as u8, len)[..], "record {tag}");
        }
        producer.join().unwrap();
        check_drained(&ring, &mut c);
    });
}

/// A write larger than the whole ring, streamed in fragments with
/// `try_reserve_up_to`, then a small write: the consumer reassembles the
/// first message exactly and sees the second as a separate message.
#[test]
fn fragments_of_a_write_larger_than_the_ring() {
    const BIG: usize = 300;
    model("fragments_of_a_write_larger_than_the_ring", || {
        let ring = Arc::new(LoomRing::new(CAP));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                // SAFETY: LoomRing hands out no slices and loom tracks each access;
                // the model's halves of one role take turns (or there is one).
                let mut p = unsafe { Producer::new(ring) }.unwrap();
                let data = payload(1, BIG);
                let mut rest = &data[..];
                while !rest.is_empty() {
                    match p.try_reserve_up_to(rest.len()).unwrap() {
                        Some(mut g) => {
                            let n = g.len();
                            assert!(n > 0);
                            g.fill(&rest[..n]);
                            rest = &rest[n..];
                            g.commit(rest.len() as u64);
                        }
                        None => thread::yield_now(),
                    }
                }
                let tail = payload(2, 5);
                while !p.try_push(&tail, 0).unwrap() {
                    thread::yield_now();
                }
            })
        };
        // SAFETY: LoomRing hands out no slices and loom tracks each access;
        // the model's halves of one role take turns (or there is one).
        let mut c = unsafe { Consumer::new(ring.clone()) }.unwrap();
        let mut buf = vec![0u8; 512];
        let mut got = 0;
        loop {
            match c.read_message(&mut buf[got..]).unwrap() {
                None => thread::yield_now(),
                Some(m) => {
                    got += m.len;
                    if m.end {
                        break;
                    }
                }
            }
        }
        assert_eq!(&buf[..got], &payload(1, BIG)[..]);
        let m = loop {
            match c.read_message(&mut buf).unwrap() {
                Some(m) => break m,
                None => thread::yield_now(),
            }
        };
        assert!(m.end);
        assert_eq!(&buf[..m.len], &payload(2, 5)[..]);
        producer.join().unwrap();
        assert_eq!(c.read_message(&mut buf).unwrap(), None);
        assert_eq!(c.consumed(), BIG as u64 + 5);
    });
}
