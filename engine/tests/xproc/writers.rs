//! Several writer processes on one channel: their writes never interleave,
//! the check of the merged stream catches what it must, and the end of the
//! stream comes only after every writer process exits.

use crate::common;

use super::records::*;
use common::*;
use shmpipe_engine::{channel, Error, Sender};
use std::os::fd::AsFd;

/// Child `child_multi_writer:seed:w:count`.
fn child_multi_writer() {
    multi_writer(role_arg(0), role_arg(1), role_arg(2));
}

fn multi_writer(seed: u64, w: u64, count: u64) {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut buf = vec![0u8; 4 * RING];
    for item in Plan::new(seed, w, count) {
        let len = item.map_or(0, |key| {
            let len = size_of(MULTI, seed, key);
            fill(key, 0, &mut buf[..len]);
            len
        });
        tx.write(&buf[..len]).unwrap();
    }
}

/// Reads one complete message into `check`.
fn read_merged(rx: &mut shmpipe_engine::Receiver, buf: &mut [u8], check: &mut Merged) {
    let m = rx.read_message(buf).unwrap();
    assert!(m.end, "incomplete message {m:?}");
    check
        .message(&buf[..m.len])
        .unwrap_or_else(|e| panic!("{e}"));
}

fn three_writer_processes_never_interleave() {
    let count = multi_records();
    let seed = seed("three_writer_processes_never_interleave");
    let (tx, mut rx) = channel(RING).unwrap();
    let children: Vec<_> = (0..3)
        .map(|w| {
            spawn_child(
                &format!("child_multi_writer:{seed}:{w}:{count}"),
                &[(tx.as_fd(), 3)],
            )
        })
        .collect();
    drop(tx);
    let dog = Watchdog::new("three_writer_processes_never_interleave", STALL);
    let start = std::time::Instant::now();
    let mut buf = vec![0u8; 4 * RING + 64];
    let mut check = Merged::new(MULTI, seed, 3, count);
    // Up to the end of the stream, not just 3 × count messages: a lost
    // message then fails with what is missing instead of hanging.
    loop {
        match rx.read_message(&mut buf) {
            Ok(m) => {
                assert!(m.end, "incomplete message {m:?}");
                check
                    .message(&buf[..m.len])
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            Err(Error::PeerClosed) => break,
            Err(e) => panic!("after {} messages: {e}", check.pos),
        }
        if check.pos % 256 == 0 {
            dog.beat();
        }
    }
    check.finish().unwrap_or_else(|e| panic!("{e}"));
    for c in children {
        reap_ok(c, "multi writer");
    }
    eprintln!(
        "three_writer_processes_never_interleave: {} empty messages, {} fragmented writes",
        check.empties, check.fragmented
    );
    report_rate(
        "three_writer_processes_never_interleave",
        check.pos,
        check.bytes,
        start,
    );
}

/// Sizes of the merged-stream check's own test: at least 8 bytes, so that
/// two records never look alike (as two 1-byte records of a writer do).
const TINY: Dist = &[(1, 8, 24)];

/// Feeds `msgs` (keyed records of [`TINY`] sizes, or empty) to a [`Merged`].
fn run_merged(seed: u64, writers: usize, count: u64, msgs: &[Option<u64>]) -> Result<(), String> {
    let mut check = Merged::new(TINY, seed, writers, count);
    for m in msgs {
        check.message(&m.map_or(Vec::new(), |key| content(key, size_of(TINY, seed, key))))?;
    }
    check.finish()
}

/// `writers` plans of `count` messages, merged in a random order.
fn random_merge(seed: u64, writers: u64, count: u64, rng: &mut Rng) -> Vec<Option<u64>> {
    let mut plans: Vec<_> = (0..writers)
        .map(|w| Plan::new(seed, w, count).peekable())
        .collect();
    let mut out = Vec::new();
    loop {
        let live: Vec<usize> = (0..plans.len())
            .filter(|&i| plans[i].peek().is_some())
            .collect();
        if live.is_empty() {
            return out;
        }
        let i = live[rng.range(0, live.len() as u64 - 1) as usize];
        // Sometimes a burst from one writer, as a lock holder gets.
        for _ in 0..rng.range(1, 4) {
            out.extend(plans[i].next());
        }
    }
}

/// The merged-stream check accepts every interleaving of whole writes and
/// rejects a lost, duplicated or misplaced empty message (or keyed record):
/// the three-writer test is only as good as this check.
fn merged_stream_check_catches_lost_duplicated_or_misplaced_messages() {
    let seed0 = seed("merged_stream_check_catches_lost_duplicated_or_misplaced_messages");
    for round in 0..10 {
        let seed = mix(seed0 ^ round);
        let mut rng = Rng::new(seed);
        let count = rng.range(1, 150);
        let msgs = random_merge(seed, 3, count, &mut rng);
        run_merged(seed, 3, count, &msgs).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let empties: Vec<usize> = (0..msgs.len()).filter(|&i| msgs[i].is_none()).collect();
        for &i in &empties {
            let mut lost = msgs.clone();
            lost.remove(i);
            assert!(
                run_merged(seed, 3, count, &lost).is_err(),
                "round {round}: lost {i}"
            );
            let mut dup = msgs.clone();
            dup.insert(i, None);
            assert!(
                run_merged(seed, 3, count, &dup).is_err(),
                "round {round}: dup {i}"
            );
        }
        // An empty message before any keyed record belongs to nobody.
        let mut early = msgs.clone();
        if let Some(&i) = empties.first() {
            early.remove(i);
            early.insert(0, None);
            assert!(run_merged(seed, 3, count, &early).is_err(), "round {round}");
        }
        // A keyed record lost, or two of one writer swapped.
        for i in (0..msgs.len()).filter(|&i| msgs[i].is_some()).take(20) {
            let mut lost = msgs.clone();
            lost.remove(i);
            assert!(
                run_merged(seed, 3, count, &lost).is_err(),
                "round {round}: lost {i}"
            );
            let w = msgs[i].unwrap() & 0xff;
            if let Some(j) = (i + 1..msgs.len()).find(|&j| msgs[j].is_some_and(|k| k & 0xff == w)) {
                let mut swapped = msgs.clone();
                swapped.swap(i, j);
                assert!(
                    run_merged(seed, 3, count, &swapped).is_err(),
                    "round {round}: swap {i} {j}"
                );
            }
        }
        // One writer alone: an empty message moved across a keyed record
        // changes the count of two windows.
        let count = rng.range(1, 40);
        let solo: Vec<_> = Plan::new(seed, 0, count).collect();
        run_merged(seed, 1, count, &solo).unwrap_or_else(|e| panic!("round {round}: {e}"));
        for i in (0..solo.len()).filter(|&i| solo[i].is_none()) {
            for j in 0..solo.len() {
                let mut moved = solo.clone();
                moved.remove(i);
                moved.insert(j, None);
                let crosses = solo[i.min(j)..=i.max(j)].iter().any(Option::is_some);
                assert_eq!(
                    run_merged(seed, 1, count, &moved).is_err(),
                    crosses,
                    "round {round}: empty {i} moved to {j}"
                );
            }
        }
    }
}

/// Sizes of the last writer's messages in the end-of-stream test (all fit
/// in the ring together, so they stay queued after it exits).
const LAST_WORDS: &[usize] = &[0, 1, 100, 3000, 0, 5000, 48, 49, 20_000];

/// Holds a duplicate of the write end, idle, until the parent signals; then
/// writes [`LAST_WORDS`] and exits.
fn child_eof_holder() {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut go = std::fs::File::from(take_fd(4));
    assert!(wait_signal(&mut go), "parent went away");
    for (seq, &len) in LAST_WORDS.iter().enumerate() {
        tx.write(&content(writer_key(2, seq as u64), len)).unwrap();
    }
}

fn end_of_stream_only_after_every_writer_process_exits() {
    let count = 100;
    let seed = seed("end_of_stream_only_after_every_writer_process_exits");
    let (tx, mut rx) = channel(RING).unwrap();
    let (go_r, mut go_w) = pipe();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            spawn_child(
                &format!("child_multi_writer:{seed}:{w}:{count}"),
                &[(tx.as_fd(), 3)],
            )
        })
        .collect();
    let holder = spawn_child("child_eof_holder", &[(tx.as_fd(), 3), (go_r.as_fd(), 4)]);
    drop((tx, go_r));
    let _dog = Watchdog::new("end_of_stream_only_after_every_writer_process_exits", STALL);

    // Two writers stream (larger than the ring: the reader must keep up),
    // then exit.
    let mut buf = vec![0u8; 4 * RING + 64];
    let mut check = Merged::new(MULTI, seed, 2, count);
    for _ in 0..2 * count {
        read_merged(&mut rx, &mut buf, &mut check);
    }
    check.finish().unwrap_or_else(|e| panic!("{e}"));
    for w in writers {
        reap_ok(w, "writer");
    }

    std::thread::scope(|s| {
        // Both writers are gone, but the holder's duplicate keeps the end
        // open: the reader must keep waiting.
        let (tid_tx, tid) = std::sync::mpsc::channel();
        let (rx, buf) = (&mut rx, &mut buf);
        let reader = s.spawn(move || {
            tid_tx.send(gettid()).unwrap();
            let m = rx.read_message(buf);
            (m, buf[..8].to_vec())
        });
        // Once the reader sleeps in its wait (after its spin), it has seen
        // an empty ring with a write end open.
        wait_until_blocked(tid.recv().unwrap());
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

common::tests! {
    tests: [
        three_writer_processes_never_interleave,
        merged_stream_check_catches_lost_duplicated_or_misplaced_messages,
        end_of_stream_only_after_every_writer_process_exits,
    ],
    children: [child_multi_writer, child_eof_holder],
}
