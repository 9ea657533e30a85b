//! Wake-ups by the peer's progress (a write, a read, a stream of hand-offs)
//! and by the peer dropped in another thread.

use crate::common;

use super::support::*;
use common::*;
use shmpipe_engine::{Error, Receiver, Sender, WaitPolicy};
use std::time::Instant;

fn a_waiting_reader_gets_what_another_thread_writes() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard("a_waiting_reader_gets_what_another_thread_writes", name);
        let (mut tx, mut rx) = channel_with_policy(4096, policy);
        let reader = gettid();
        std::thread::scope(|s| {
            s.spawn(|| {
                for key in 0..3u64 {
                    settled(reader, policy);
                    tx.write(&content(key, 64)).unwrap();
                }
            });
            let mut buf = [0u8; 64];
            // Without a deadline, with a far one, and as a whole message.
            assert_eq!(rx.read(&mut buf).unwrap(), 64, "{name}");
            verify(0, 0, &buf).unwrap();
            let far = Some(Instant::now() + HANG);
            assert_eq!(rx.read_until(&mut buf, far).unwrap(), 64, "{name}");
            verify(1, 0, &buf).unwrap();
            let m = rx.read_message(&mut buf).unwrap();
            assert!(m.end && m.len == 64, "{name}: {m:?}");
            verify(2, 0, &buf).unwrap();
        });
    }
}

/// Fills the ring, then runs `write` (which must block for room) while
/// another thread drains the fillers once `write` waits (under `policy`);
/// then reads and checks the record `write` wrote (100 bytes with `key`).
fn blocked_write_released(
    tx: &mut Sender,
    rx: &mut Receiver,
    (name, policy): (&str, WaitPolicy),
    key: u64,
    write: impl FnOnce(&mut Sender, &[u8]) -> Result<(), Error>,
) {
    let n = fill_ring(tx);
    let writer = gettid();
    std::thread::scope(|s| {
        s.spawn(|| {
            settled(writer, policy);
            drain_filled(rx, n, name);
        });
        write(tx, &content(key, 100)).unwrap_or_else(|e| panic!("{name}: {e}"));
    });
    let mut buf = [0u8; 200];
    let m = rx.read_message(&mut buf).unwrap();
    assert!(m.end && m.len == 100, "{name}: {m:?}");
    verify(key, 0, &buf[..100]).unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn a_writer_blocked_on_a_full_ring_is_released_by_a_read() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard(
            "a_writer_blocked_on_a_full_ring_is_released_by_a_read",
            name,
        );
        let (mut tx, mut rx) = channel_with_policy(4096, policy);
        blocked_write_released(&mut tx, &mut rx, (name, policy), 1000, |tx, d| tx.write(d));
        blocked_write_released(&mut tx, &mut rx, (name, policy), 1001, |tx, d| {
            tx.write_until(d, Some(Instant::now() + HANG))
        });
    }
}

fn a_stream_of_hand_offs_arrives_intact_under_every_policy() {
    let _forks = not_forking();
    let seed = seed("a_stream_of_hand_offs_arrives_intact_under_every_policy");
    // Up to three rings' worth: most writes wait for the reader, some for
    // several rounds of it.
    const SIZES: Dist = &[(50, 0, 64), (30, 65, 1984), (20, 1985, 3 * 4096)];
    const RECORDS: u64 = 300;
    for (name, policy) in policies() {
        let dog = guard(
            "a_stream_of_hand_offs_arrives_intact_under_every_policy",
            name,
        );
        let (mut tx, mut rx) = channel_with_policy(4096, policy);
        std::thread::scope(|s| {
            // The sender moves into the thread: its end closes with it.
            s.spawn(move || {
                for key in 0..RECORDS {
                    tx.write(&content(key, size_of(SIZES, seed, key))).unwrap();
                }
            });
            let mut buf = vec![0u8; 3 * 4096];
            for key in 0..RECORDS {
                let m = rx.read_message(&mut buf).unwrap();
                let len = size_of(SIZES, seed, key);
                assert!(
                    m.end && m.len == len,
                    "{name}: record {key}: {m:?}, {len} B"
                );
                verify(key, 0, &buf[..len]).unwrap_or_else(|e| panic!("{name}: {e}"));
                dog.beat();
            }
        });
        let mut buf = [0u8; 8];
        assert!(
            matches!(rx.read(&mut buf), Err(Error::PeerClosed)),
            "{name}: the writer thread ended, its sender with it"
        );
    }
}

fn a_waiting_reader_sees_the_sender_dropped_in_another_thread() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard(
            "a_waiting_reader_sees_the_sender_dropped_in_another_thread",
            name,
        );
        let (mut tx, mut rx) = channel_with_policy(4096, policy);
        let reader = gettid();
        std::thread::scope(|s| {
            s.spawn(move || {
                settled(reader, policy);
                tx.write(b"last words").unwrap();
                // The reader takes the words and waits on the empty ring.
                settled(reader, policy);
                drop(tx);
            });
            let mut buf = [0u8; 64];
            // What was written before the close is delivered first.
            let m = rx.read_message(&mut buf).unwrap();
            assert_eq!(&buf[..m.len], b"last words", "{name}");
            let r = rx.read(&mut buf);
            assert!(matches!(r, Err(Error::PeerClosed)), "{name}: {r:?}");
            // Closed stays closed, with or without a deadline.
            let r = rx.read_until(&mut buf, Some(Instant::now() + HANG));
            assert!(matches!(r, Err(Error::PeerClosed)), "{name}: {r:?}");
        });
        assert!(!rx.is_peer_alive().unwrap(), "{name}");
    }
}

fn a_blocked_writer_sees_the_receiver_dropped_in_another_thread() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard(
            "a_blocked_writer_sees_the_receiver_dropped_in_another_thread",
            name,
        );
        let (mut tx, rx) = channel_with_policy(4096, policy);
        fill_ring(&mut tx);
        let writer = gettid();
        std::thread::scope(|s| {
            s.spawn(move || {
                settled(writer, policy);
                drop(rx);
            });
            let r = tx.write(&[1; 100]);
            assert!(matches!(r, Err(Error::PeerClosed)), "{name}: {r:?}");
            let r = tx.write(b"x");
            assert!(matches!(r, Err(Error::PeerClosed)), "{name}: {r:?}");
        });
    }
}

common::tests! {
    tests: [
        a_waiting_reader_gets_what_another_thread_writes,
        a_writer_blocked_on_a_full_ring_is_released_by_a_read,
        a_stream_of_hand_offs_arrives_intact_under_every_policy,
        a_waiting_reader_sees_the_sender_dropped_in_another_thread,
        a_blocked_writer_sees_the_receiver_dropped_in_another_thread,
    ],
    children: [],
}
