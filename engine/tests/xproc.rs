//! Cross-process streaming through a shared segment, between real processes:
//! every record arrives exactly once, in order, whole and uncorrupted; writes
//! of several writer processes never interleave; the reader sees the end of
//! the stream only when the last writer handle, in any process, is gone.
//!
//! Children are this test binary re-executed (see `common`). The number of
//! records of the streaming tests is `SHMPIPE_XPROC_RECORDS` (default: 10
//! million in release builds, fewer in debug builds, where the same run would
//! take many minutes); CI runs this file in release for the full count.

mod common;

use common::*;
use shmpipe_engine::{
    channel, Consumer, Error, Producer, RingStorage, Segment, SegmentRing, Sender,
};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering::Acquire;
use std::time::Duration;

/// Sizes of the streaming tests: mostly small, with every size class up to
/// 4× the ring present (fragmented writes, records of exactly the largest
/// single-record size and around it, empty records). Relative weights; the
/// mean is about 570 B, so 10 million records move about 5.7 GB.
const STREAM: Dist = &[
    (200, 0, 0),
    (4800, 1, 48),
    (4000, 49, 512),
    (800, 513, 4096),
    (40, 4097, 65536),
    (6, 32703, 32705),
    (4, 65537, 4 * RING),
    (1, 4 * RING, 4 * RING),
];

/// Sizes of the multi-writer test: at least 8 bytes (the key), and many
/// writes larger than the largest record (fragmented) or than the ring.
const MULTI: Dist = &[
    (60, 8, 64),
    (25, 65, 2048),
    (10, 2049, 32704),
    (4, 32705, 65536),
    (1, 65537, 4 * RING),
];

/// Keys of writer `w`'s records: the writer id in the top bits.
fn writer_key(w: u64, seq: u64) -> u64 {
    (w << 40) | seq
}

fn stream_records() -> u64 {
    let default = if cfg!(debug_assertions) {
        200_000
    } else {
        10_000_000
    };
    env_count("SHMPIPE_XPROC_RECORDS", default)
}

fn multi_records() -> u64 {
    let default = if cfg!(debug_assertions) {
        3_000
    } else {
        30_000
    };
    env_count("SHMPIPE_XPROC_MULTI_RECORDS", default)
}

/// Prints (does not assert) how long a streaming test took.
fn report_rate(test: &str, count: u64, bytes: usize, start: std::time::Instant) {
    let t = start.elapsed();
    eprintln!(
        "{test}: {count} records, {:.1} MB in {t:.2?} ({:.2} M records/s)",
        bytes as f64 / 1e6,
        count as f64 / t.as_secs_f64() / 1e6
    );
}

/// A hang is any 20 s without progress.
const STALL: Duration = Duration::from_secs(20);

#[test]
fn child_process() {
    child_main(|role, args| match role {
        "stream-writer" => stream_writer(arg(args, 0), arg(args, 1)),
        "raw-writer" => raw_writer(arg(args, 0), arg(args, 1)),
        "multi-writer" => multi_writer(arg(args, 0), arg(args, 1), arg(args, 2)),
        "eof-holder" => eof_holder(),
        other => panic!("unknown child role {other}"),
    });
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

#[test]
fn stream_random_sizes_between_processes() {
    let count = stream_records();
    let seed = seed("stream_random_sizes_between_processes");
    let (tx, mut rx) = channel(RING).unwrap();
    let child = spawn_child(&format!("stream-writer:{seed}:{count}"), &[(tx.as_fd(), 3)]);
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
    let mut p = Producer::new(seg.ring(0).unwrap()).unwrap();
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

#[test]
fn stream_raw_zero_copy_between_processes() {
    let count = stream_records();
    let seed = seed("stream_raw_zero_copy_between_processes");
    let (seg, fd) = Segment::create(&[RING], 0, [0; 8]).unwrap();
    let mut child = spawn_child(&format!("raw-writer:{seed}:{count}"), &[(fd.as_fd(), 3)]);
    drop(fd);
    let mut c = Consumer::new(seg.ring(0).unwrap()).unwrap();
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

fn multi_writer(seed: u64, w: u64, count: u64) {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut buf = vec![0u8; 4 * RING];
    for seq in 0..count {
        let key = writer_key(w, seq);
        let len = size_of(MULTI, seed, key);
        fill(key, 0, &mut buf[..len]);
        tx.write(&buf[..len]).unwrap();
    }
}

/// Reads one message of a writer-keyed stream and checks it: complete, the
/// next of its writer, of the right size and content. Returns the writer.
fn check_keyed(
    rx: &mut shmpipe_engine::Receiver,
    buf: &mut [u8],
    dist: Dist,
    seed: u64,
    next: &mut [u64],
) -> usize {
    let m = rx.read_message(buf).unwrap();
    assert!(m.end && m.len >= 8, "incomplete or keyless message {m:?}");
    let key = u64::from_le_bytes(buf[..8].try_into().unwrap());
    let (w, seq) = ((key >> 40) as usize, key & ((1 << 40) - 1));
    assert!(
        w < next.len(),
        "message from unknown writer {w} (key {key:#x})"
    );
    assert_eq!(seq, next[w], "writer {w}: out of order");
    let len = size_of(dist, seed, key);
    assert_eq!(m.len, len, "writer {w} record {seq}: wrong length");
    verify(key, 0, &buf[..len]).unwrap_or_else(|e| panic!("writer {w} record {seq}: {e}"));
    next[w] += 1;
    w
}

#[test]
fn three_writer_processes_never_interleave() {
    let count = multi_records();
    let seed = seed("three_writer_processes_never_interleave");
    let (tx, mut rx) = channel(RING).unwrap();
    let children: Vec<_> = (0..3)
        .map(|w| {
            spawn_child(
                &format!("multi-writer:{seed}:{w}:{count}"),
                &[(tx.as_fd(), 3)],
            )
        })
        .collect();
    drop(tx);
    let dog = Watchdog::new("three_writer_processes_never_interleave", STALL);
    let mut buf = vec![0u8; 4 * RING + 64];
    let mut next = [0u64; 3];
    for i in 0..3 * count {
        check_keyed(&mut rx, &mut buf, MULTI, seed, &mut next);
        if i % 256 == 0 {
            dog.beat();
        }
    }
    assert_eq!(next, [count; 3]);
    assert!(matches!(rx.read_message(&mut buf), Err(Error::PeerClosed)));
    for c in children {
        reap_ok(c, "multi writer");
    }
}

/// Sizes of the last writer's messages in the end-of-stream test (all fit
/// in the ring together, so they stay queued after it exits).
const LAST_WORDS: &[usize] = &[0, 1, 100, 3000, 0, 5000, 48, 49, 20_000];

/// Holds a duplicate of the write end, idle, until the parent signals; then
/// writes [`LAST_WORDS`] and exits.
fn eof_holder() {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut go = std::fs::File::from(take_fd(4));
    assert!(wait_signal(&mut go), "parent went away");
    for (seq, &len) in LAST_WORDS.iter().enumerate() {
        tx.write(&content(writer_key(2, seq as u64), len)).unwrap();
    }
}

#[test]
fn end_of_stream_only_after_every_writer_process_exits() {
    let count = 40;
    let seed = seed("end_of_stream_only_after_every_writer_process_exits");
    let (tx, mut rx) = channel(RING).unwrap();
    let (go_r, mut go_w) = pipe();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            spawn_child(
                &format!("multi-writer:{seed}:{w}:{count}"),
                &[(tx.as_fd(), 3)],
            )
        })
        .collect();
    let holder = spawn_child("eof-holder", &[(tx.as_fd(), 3), (go_r.as_fd(), 4)]);
    drop((tx, go_r));
    let _dog = Watchdog::new("end_of_stream_only_after_every_writer_process_exits", STALL);

    // Two writers stream (larger than the ring: the reader must keep up),
    // then exit.
    let mut buf = vec![0u8; 4 * RING + 64];
    let mut next = [0u64; 2];
    for _ in 0..2 * count {
        check_keyed(&mut rx, &mut buf, MULTI, seed, &mut next);
    }
    for w in writers {
        reap_ok(w, "writer");
    }

    std::thread::scope(|s| {
        // Both writers are gone, but the holder's duplicate keeps the end
        // open: the reader must keep waiting.
        let reader = s.spawn(|| {
            let m = rx.read_message(&mut buf);
            (m, buf[..8].to_vec())
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !reader.is_finished(),
            "the reader returned while a duplicate of the write end was open"
        );
        signal(&mut go_w);
        let (m, _) = reader.join().unwrap();
        let m = m.unwrap();
        assert!(m.end && m.len == LAST_WORDS[0]);
    });
    // The holder exits with the rest of its messages still queued: the
    // reader gets all of them, then the end of the stream.
    reap_ok(holder, "holder");
    for (seq, &len) in LAST_WORDS.iter().enumerate().skip(1) {
        let m = rx.read_message(&mut buf).unwrap();
        assert!(
            m.end && m.len == len,
            "last words {seq}: {m:?}, expected {len} bytes"
        );
        verify(writer_key(2, seq as u64), 0, &buf[..len]).unwrap();
    }
    assert!(matches!(rx.read_message(&mut buf), Err(Error::PeerClosed)));
    assert!(matches!(rx.read(&mut buf), Err(Error::PeerClosed)));
}
