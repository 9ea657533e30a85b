//! One writer process streaming to this one: random record sizes through
//! the channel, and zero-copy slices through a raw ring.

use crate::common;

use super::records::*;
use common::*;
use shmpipe_engine::{
    channel, Consumer, Error, Producer, RingStorage, Segment, SegmentRing, Sender,
};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering::Acquire;
use std::time::Duration;

/// Child `child_stream_writer:seed:count`.
fn child_stream_writer() {
    stream_writer(role_arg(0), role_arg(1));
}

/// Child `child_raw_writer:seed:count`.
fn child_raw_writer() {
    raw_writer(role_arg(0), role_arg(1));
}

fn stream_writer(seed: u64, count: u64) {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut buf = vec![0u8; 4 * RING];
    for seq in 0..count {
        let len = size_of(STREAM, seed, seq);
        fill(seq, 0, &mut buf[..len]);
        tx.write(&buf[..len]).unwrap();
    }
}

fn stream_random_sizes_between_processes() {
    let count = stream_records();
    let seed = seed("stream_random_sizes_between_processes");
    let (tx, mut rx) = channel(RING).unwrap();
    let child = spawn_child(
        &format!("child_stream_writer:{seed}:{count}"),
        &[(tx.as_fd(), 3)],
    );
    // The child's copy is the only writer: its exit must end the stream.
    drop(tx);
    let dog = Watchdog::new("stream_random_sizes_between_processes", STALL);
    let start = std::time::Instant::now();
    let mut bytes = 0;
    let mut buf = vec![0u8; 4 * RING + 64];
    for seq in 0..count {
        let len = size_of(STREAM, seed, seq);
        bytes += len;
        let m = rx
            .read_message(&mut buf)
            .unwrap_or_else(|e| panic!("record {seq} of {count}: {e}"));
        assert!(
            m.end && m.len == len,
            "record {seq}: got {m:?}, expected a complete message of {len} bytes"
        );
        verify(seq, 0, &buf[..len]).unwrap_or_else(|e| panic!("record {seq}: {e}"));
        if seq % 4096 == 0 {
            dog.beat();
        }
    }
    assert!(matches!(rx.read_message(&mut buf), Err(Error::PeerClosed)));
    reap_ok(child, "stream writer");
    report_rate("stream_random_sizes_between_processes", count, bytes, start);
}

fn consumer_head(p: &Producer<SegmentRing>) -> u64 {
    p.storage().control().consumer.0.head.load(Acquire)
}

/// Parks until the consumer's head moves from `head0` (or 2 ms pass).
fn wait_space(p: &Producer<SegmentRing>, head0: u64) {
    let c = p.storage().control();
    let moved = || c.consumer.0.head.load(Acquire) != head0;
    c.events
        .0
        .writable
        .park(Some(Duration::from_millis(2)), moved);
}

/// Single-producer writer on the raw ring: zero-copy reservations filled in
/// place, fragments for writes above the largest record.
fn raw_writer(seed: u64, count: u64) {
    let fd = take_fd(3);
    let seg = Segment::attach(fd.as_fd()).unwrap();
    // SAFETY: this child process's only producer of the ring.
    let mut p = unsafe { Producer::new(seg.ring(0).unwrap()) }.unwrap();
    let max = p.max_record();
    for seq in 0..count {
        let len = size_of(STREAM, seed, seq);
        if len <= max {
            loop {
                let h0 = consumer_head(&p);
                if let Some(mut g) = p.try_reserve(len).unwrap() {
                    assert_eq!(g.len(), len);
                    fill(seq, 0, g.as_mut_slice());
                    g.commit(0);
                    break;
                }
                wait_space(&p, h0);
            }
        } else {
            let mut off = 0;
            while off < len {
                let h0 = consumer_head(&p);
                match p.try_reserve_up_to(len - off).unwrap() {
                    Some(mut g) => {
                        let n = g.len();
                        assert!(n > 0 && n <= len - off);
                        fill(seq, off, g.as_mut_slice());
                        off += n;
                        g.commit((len - off) as u64);
                    }
                    None => wait_space(&p, h0),
                }
            }
        }
    }
}

fn stream_raw_zero_copy_between_processes() {
    let count = stream_records();
    let seed = seed("stream_raw_zero_copy_between_processes");
    let (seg, fd) = Segment::create(&[RING], 0, [0; 8]).unwrap();
    let mut child = spawn_child(
        &format!("child_raw_writer:{seed}:{count}"),
        &[(fd.as_fd(), 3)],
    );
    drop(fd);
    // SAFETY: this process's only consumer of the ring (the producer is the
    // child).
    let mut c = unsafe { Consumer::new(seg.ring(0).unwrap()) }.unwrap();
    let dog = Watchdog::new("stream_raw_zero_copy_between_processes", STALL);
    let start = std::time::Instant::now();
    let mut bytes = 0;
    let mut rng = Rng::new(seed);
    for seq in 0..count {
        let len = size_of(STREAM, seed, seq);
        bytes += len;
        let mut got = 0usize;
        loop {
            match c.read_record().unwrap() {
                Some(g) => {
                    let s = g.as_slice();
                    let rest = g.remaining_in_write();
                    assert_eq!(
                        (got + s.len()) as u64 + rest,
                        len as u64,
                        "record {seq}: {got} bytes read, {} here, {rest} to come; expected {len}",
                        s.len()
                    );
                    verify(seq, got, s).unwrap_or_else(|e| panic!("record {seq}: {e}"));
                    // Sometimes consume only part of the record: the rest
                    // must come back at the right offset.
                    let n = if s.len() > 1 && rng.next_u64() % 8 == 0 {
                        rng.range(0, s.len() as u64 - 1) as usize
                    } else {
                        s.len()
                    };
                    let done = n == s.len() && rest == 0;
                    got += n;
                    g.release(n);
                    if done {
                        break;
                    }
                }
                None => {
                    let ev = &c.storage().control().events.0.readable;
                    ev.park(Some(Duration::from_millis(2)), || c.has_records());
                    if !c.has_records() {
                        if let Some(st) = child.try_wait().unwrap() {
                            assert!(
                                c.has_records(),
                                "writer exited ({st}) before record {seq} of {count}"
                            );
                        }
                    }
                }
            }
        }
        if seq % 4096 == 0 {
            dog.beat();
        }
    }
    reap_ok(child, "raw writer");
    assert!(!c.has_records(), "records beyond the last one");
    report_rate(
        "stream_raw_zero_copy_between_processes",
        count,
        bytes,
        start,
    );
}

common::tests! {
    tests: [stream_random_sizes_between_processes, stream_raw_zero_copy_between_processes],
    children: [child_stream_writer, child_raw_writer],
}
