//! Deadlines: a past or near deadline times out, after returning what is
//! queued; a timed-out write publishes nothing or ends as a truncated
//! message.

use crate::common;

use super::support::*;
use common::*;
use shmpipe_engine::Error;
use std::time::Instant;

fn a_past_deadline_times_out_at_once_on_an_empty_ring() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard("a_past_deadline_times_out_at_once_on_an_empty_ring", name);
        let (mut tx, mut rx) = channel_with_policy(4096, policy);
        let mut buf = [0u8; 64];
        let past = Instant::now();
        assert_timed_out(rx.read_until(&mut buf, Some(past)), past, name);
        // The timed-out read consumed nothing and broke nothing.
        tx.write(b"after").unwrap();
        assert_eq!(rx.read_until(&mut buf, Some(past)).unwrap(), 5, "{name}");
        assert_eq!(&buf[..5], b"after", "{name}");
        assert_timed_out(rx.read_until(&mut buf, Some(past)), past, name);
    }
}

fn a_past_deadline_still_returns_what_is_queued() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard("a_past_deadline_still_returns_what_is_queued", name);
        let (mut tx, mut rx) = channel_with_policy(4096, policy);
        tx.write(b"queued").unwrap();
        let mut buf = [0u8; 64];
        let got = rx.read_until(&mut buf, Some(Instant::now())).unwrap();
        assert_eq!(&buf[..got], b"queued", "{name}");
        // And a write that fits needs no waiting either.
        tx.write_until(b"fits", Some(Instant::now())).unwrap();
        let got = rx.read(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"fits", "{name}");
    }
}

fn a_near_deadline_times_out_when_the_writer_stays_idle() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard("a_near_deadline_times_out_when_the_writer_stays_idle", name);
        // The sender lives (and stays idle) throughout: a timeout, not a
        // closed peer.
        let (tx, mut rx) = channel_with_policy(4096, policy);
        let mut buf = [0u8; 64];
        let deadline = Instant::now() + NEAR;
        assert_timed_out(rx.read_until(&mut buf, Some(deadline)), deadline, name);
        assert!(rx.is_peer_alive().unwrap(), "{name}");
        drop(tx);
    }
}

fn write_deadlines_time_out_on_a_full_ring_without_publishing() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard(
            "write_deadlines_time_out_on_a_full_ring_without_publishing",
            name,
        );
        let (mut tx, mut rx) = channel_with_policy(4096, policy);
        let n = fill_ring(&mut tx);
        let past = Instant::now();
        assert_timed_out(tx.write_until(&[0xee; 100], Some(past)), past, name);
        let near = Instant::now() + NEAR;
        assert_timed_out(tx.write_until(&[0xee; 100], Some(near)), near, name);
        // The reader is alive and idle: nothing but the fillers is queued.
        assert!(tx.is_peer_alive().unwrap(), "{name}");
        drain_filled(&mut rx, n, name);
        let mut buf = [0u8; 200];
        assert_eq!(rx.try_read(&mut buf).unwrap(), None, "{name}");
        // Room again: the same write goes through.
        tx.write_until(&[0xee; 100], Some(Instant::now() + HANG))
            .unwrap();
        assert_eq!(rx.read(&mut buf).unwrap(), 100, "{name}");
    }
}

fn a_timed_out_large_write_ends_as_a_truncated_message() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard("a_timed_out_large_write_ends_as_a_truncated_message", name);
        let (mut tx, mut rx) = channel_with_policy(4096, policy);
        let big = content(1, 3 * 4096);
        let deadline = Instant::now() + NEAR;
        assert_timed_out(tx.write_until(&big, Some(deadline)), deadline, name);
        // Part of it was published. The next write ends it (an abort
        // record), waiting for the reader to make room.
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut buf = vec![0u8; 4 * 4096];
                let m = rx.read_message(&mut buf).unwrap();
                // Cut: never reported complete, and the next read says so.
                assert!(
                    !m.end && m.len > 0 && m.len < big.len(),
                    "{name}: timed-out write read as {m:?}"
                );
                verify(1, 0, &buf[..m.len]).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(
                    matches!(rx.read_message(&mut buf), Err(Error::MessageCut)),
                    "{name}: the cut is not reported"
                );
                let m = rx.read_message(&mut buf).unwrap();
                assert!(m.end, "{name}: {m:?}");
                assert_eq!(&buf[..m.len], b"next", "{name}");
            });
            tx.write(b"next").unwrap();
            reader.join().unwrap();
        });
    }
}

common::tests! {
    tests: [
        a_past_deadline_times_out_at_once_on_an_empty_ring,
        a_past_deadline_still_returns_what_is_queued,
        a_near_deadline_times_out_when_the_writer_stays_idle,
        write_deadlines_time_out_on_a_full_ring_without_publishing,
        a_timed_out_large_write_ends_as_a_truncated_message,
    ],
    children: [],
}
