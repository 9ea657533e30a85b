//! Blocking channel operations under every [`WaitPolicy`]: deadlines, wake
//! ups by the peer's progress, and the peer check that ends a wait when the
//! other end closes (dropped in another thread, SIGKILLed in another process,
//! or its last `try_clone`d handle gone).
//!
//! Nothing here measures time. Sleeps only give a waiter the chance to be
//! blocked before its peer acts (the outcome must be the same if it is not);
//! a watchdog turns a lost wake-up into an abort instead of a hung job. The
//! only clock check is the deadline contract itself: `TimedOut` never comes
//! before the deadline.
//!
//! One policy has a park slice of a minute: a waiter under it sleeps until it
//! is notified, so a lost wake-up or a missed hang-up hint shows as a hang
//! rather than as a late success after the next slice.

mod common;

use common::*;
use shmpipe_engine::{channel, Error, Receiver, Sender, WaitPolicy};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The hang guard of every test.
const HANG: Duration = Duration::from_secs(10);

/// A deadline near enough for a test to wait it out.
const NEAR: Duration = Duration::from_millis(20);

/// Parks at once and only wakes when notified (or at a deadline).
const PARK_UNTIL_NOTIFIED: WaitPolicy = WaitPolicy {
    spin: Some(Duration::ZERO),
    park_slice: Duration::from_secs(60),
};

fn policies() -> Vec<(&'static str, WaitPolicy)> {
    vec![
        ("spin", WaitPolicy::spin()),
        ("park", WaitPolicy::park()),
        (
            "spin_then_park(50us)",
            WaitPolicy::spin_then_park(Duration::from_micros(50)),
        ),
        (
            "spin_then_park(5ms)",
            WaitPolicy::spin_then_park(Duration::from_millis(5)),
        ),
        ("default", WaitPolicy::default()),
        ("park, 60 s slice", PARK_UNTIL_NOTIFIED),
    ]
}

/// Policies whose waiters notice a dead peer by themselves (a peer check at
/// least every few milliseconds): the SIGKILL tests, where no hang-up hint
/// is left.
fn checking_policies() -> Vec<(&'static str, WaitPolicy)> {
    policies()
        .into_iter()
        .filter(|(_, p)| *p != PARK_UNTIL_NOTIFIED)
        .collect()
}

/// Waits until thread `tid`, which is starting a wait under `policy`, waits:
/// parked in its futex, or spinning under a policy that never parks. The
/// outcome of the tests that use this does not depend on it; it makes them
/// test a waiter that waits, rather than one that has not started yet.
fn settled(tid: i32, policy: WaitPolicy) {
    if policy.spin.is_none() {
        wait_until_spinning(tid);
    } else {
        wait_until_blocked(tid);
    }
}

/// The hang guard of one policy's run of a test.
fn guard(test: &str, policy: &str) -> Watchdog {
    Watchdog::new(&format!("{test} [{policy}]"), HANG)
}

/// Between `fork` and `exec`, a child holds a copy of every descriptor of
/// this process, the channel ends of concurrently running tests included
/// (close-on-exec closes them only at the `exec`). An end whose last handle
/// closes in that window stays open until the `exec`: its peer, woken by the
/// hang-up hint, finds it still open, and learns of the close only at its
/// next park slice, which under [`PARK_UNTIL_NOTIFIED`] is a minute away. So
/// the tests that spawn children run alone ([`forking`]) and the others
/// together ([`not_forking`]).
static FORKS: RwLock<()> = RwLock::new(());

fn not_forking() -> RwLockReadGuard<'static, ()> {
    FORKS.read().unwrap_or_else(|e| e.into_inner())
}

fn forking() -> RwLockWriteGuard<'static, ()> {
    FORKS.write().unwrap_or_else(|e| e.into_inner())
}

fn channel_with_policy(cap: usize, policy: WaitPolicy) -> (Sender, Receiver) {
    let (mut tx, mut rx) = channel(cap).expect("channel");
    tx.set_wait_policy(policy);
    rx.set_wait_policy(policy);
    (tx, rx)
}

/// Fills the ring with 100-byte records (keys `0..`); returns how many fit.
fn fill_ring(tx: &mut Sender) -> u64 {
    let mut n = 0;
    while tx.try_write(&content(n, 100)).unwrap() {
        n += 1;
    }
    assert!(n > 0, "not even one record fit in an empty ring");
    n
}

/// Reads and checks `n` 100-byte records with keys `0..n`.
fn drain_filled(rx: &mut Receiver, n: u64, what: &str) {
    let mut buf = [0u8; 200];
    for key in 0..n {
        let m = rx.read_message(&mut buf).unwrap();
        assert!(
            m.end && m.len == 100,
            "{what}: filler record {key}: {m:?}, expected 100 bytes"
        );
        verify(key, 0, &buf[..100]).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

/// `Err(TimedOut)`, returned no earlier than `deadline`.
#[track_caller]
fn assert_timed_out<T: std::fmt::Debug>(r: Result<T, Error>, deadline: Instant, what: &str) {
    let now = Instant::now();
    assert!(
        matches!(r, Err(Error::TimedOut)),
        "{what}: expected TimedOut, got {r:?}"
    );
    assert!(now >= deadline, "{what}: TimedOut before the deadline");
}

/// Child: an idle write end (see [`idle_end`]).
fn child_idle_writer() {
    idle_end(true);
}

/// Child: an idle read end (see [`idle_end`]).
fn child_idle_reader() {
    idle_end(false);
}

/// Adopts the end on descriptor 3 (a sender if `writer`), proves it works
/// (writes or reads one message), says so on descriptor 4, then holds the
/// end without using it until the parent closes descriptor 5 (or kills it).
fn idle_end(writer: bool) {
    let mut status = File::from(take_fd(4));
    let mut hold = File::from(take_fd(5));
    if writer {
        let mut tx = Sender::from_fd(take_fd(3)).unwrap();
        tx.write(b"alive").unwrap();
        signal(&mut status);
        wait_signal(&mut hold);
        drop(tx);
    } else {
        let mut rx = Receiver::from_fd(take_fd(3)).unwrap();
        let mut buf = [0u8; 16];
        let m = rx.read_message(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"alive");
        signal(&mut status);
        wait_signal(&mut hold);
        drop(rx);
    }
}

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

/// Spawns `role` holding `end` as descriptor 3; returns the child, once it
/// reported that it works, and the write end of its hold pipe.
fn spawn_idle(role: &str, end: std::os::fd::BorrowedFd<'_>) -> (std::process::Child, File) {
    let (mut status_r, status_w) = pipe();
    let (hold_r, hold_w) = pipe();
    let child = spawn_child(
        role,
        &[(end, 3), (status_w.as_fd(), 4), (hold_r.as_fd(), 5)],
    );
    drop((status_w, hold_r));
    assert!(
        wait_signal(&mut status_r),
        "{role} child failed before it was ready"
    );
    (child, hold_w)
}

/// Kills `child` from another thread once `wait` waits (under `policy`) in
/// this one; returns what `wait` returned, after reaping the child and
/// checking that our SIGKILL is what ended it.
fn kill_while<R>(
    mut child: std::process::Child,
    policy: WaitPolicy,
    wait: impl FnOnce() -> R,
) -> R {
    let waiter = gettid();
    let r = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            settled(waiter, policy);
            child.kill().expect("kill child");
        });
        let r = wait();
        killer.join().unwrap();
        r
    });
    let st = child.wait().expect("reap child");
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "child ended otherwise: {st}"
    );
    r
}

fn a_waiting_reader_sees_its_writer_process_sigkilled() {
    let _forks = forking();
    for (name, policy) in checking_policies() {
        let _dog = guard("a_waiting_reader_sees_its_writer_process_sigkilled", name);
        let (tx, mut rx) = channel_with_policy(4096, policy);
        let (child, hold) = spawn_idle("child_idle_writer", tx.as_fd());
        // The child's inherited descriptor is now the only sender.
        drop(tx);
        let mut buf = [0u8; 16];
        let m = rx.read_message(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"alive", "{name}");
        // Our drop left a hang-up hint; this read takes it, finds the
        // child's handle alive and times out, so that no hint is left for
        // the read below.
        let now = Instant::now();
        assert_timed_out(rx.read_until(&mut buf, Some(now)), now, name);
        assert!(rx.is_peer_alive().unwrap(), "{name}");
        // No hang-up hint is left by a SIGKILL: only the reader's own peer
        // checks (every few ms even while spinning) can end this read.
        let r = kill_while(child, policy, || rx.read(&mut buf));
        assert!(matches!(r, Err(Error::PeerClosed)), "{name}: {r:?}");
        assert!(!rx.is_peer_alive().unwrap(), "{name}");
        drop(hold);
    }
}

fn a_blocked_writer_sees_its_reader_process_sigkilled() {
    let _forks = forking();
    for (name, policy) in checking_policies() {
        let _dog = guard("a_blocked_writer_sees_its_reader_process_sigkilled", name);
        let (mut tx, rx) = channel_with_policy(4096, policy);
        tx.write(b"alive").unwrap();
        let (child, hold) = spawn_idle("child_idle_reader", rx.as_fd());
        drop(rx);
        // (The first write of the fill takes the hang-up hint our drop left,
        // and finds the child's handle alive.)
        fill_ring(&mut tx);
        let r = kill_while(child, policy, || tx.write(&[2; 100]));
        assert!(matches!(r, Err(Error::PeerClosed)), "{name}: {r:?}");
        assert!(!tx.is_peer_alive().unwrap(), "{name}");
        drop(hold);
    }
}

fn a_cloned_sender_keeps_the_writing_end_open() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard("a_cloned_sender_keeps_the_writing_end_open", name);
        let (tx, mut rx) = channel_with_policy(4096, policy);
        let mut clone = tx.try_clone().unwrap();
        let mut buf = [0u8; 64];
        // The original closes first: its hang-up hint makes the reader look,
        // and it must find the clone still open.
        drop(tx);
        assert!(rx.is_peer_alive().unwrap(), "{name}");
        let deadline = Instant::now() + NEAR;
        assert_timed_out(rx.read_until(&mut buf, Some(deadline)), deadline, name);
        // Same while the reader is blocked when the clone's sibling closes.
        let second = clone.try_clone().unwrap();
        let reader = gettid();
        std::thread::scope(|s| {
            s.spawn(|| {
                settled(reader, policy);
                drop(second);
                // The reader looks, finds the clone open, and waits again.
                settled(reader, policy);
                clone.write(b"from the clone").unwrap();
            });
            let m = rx.read_message(&mut buf).unwrap();
            assert_eq!(&buf[..m.len], b"from the clone", "{name}");
        });
        // The last handle closes while the reader waits: now it is over.
        std::thread::scope(|s| {
            s.spawn(move || {
                settled(reader, policy);
                drop(clone);
            });
            let r = rx.read(&mut buf);
            assert!(matches!(r, Err(Error::PeerClosed)), "{name}: {r:?}");
        });
        assert!(!rx.is_peer_alive().unwrap(), "{name}");
    }
}

fn a_cloned_receiver_keeps_the_reading_end_open() {
    let _forks = not_forking();
    for (name, policy) in policies() {
        let _dog = guard("a_cloned_receiver_keeps_the_reading_end_open", name);
        let (mut tx, rx) = channel_with_policy(4096, policy);
        let mut clone = rx.try_clone().unwrap();
        let n = fill_ring(&mut tx);
        drop(rx);
        assert!(tx.is_peer_alive().unwrap(), "{name}");
        let deadline = Instant::now() + NEAR;
        assert_timed_out(tx.write_until(&[3; 100], Some(deadline)), deadline, name);
        // The surviving clone makes room while the writer is blocked.
        let writer = gettid();
        std::thread::scope(|s| {
            s.spawn(|| {
                settled(writer, policy);
                drain_filled(&mut clone, n, name);
            });
            tx.write(&content(7, 100)).unwrap();
        });
        let mut buf = [0u8; 200];
        let m = clone.read_message(&mut buf).unwrap();
        assert!(m.end && m.len == 100, "{name}: {m:?}");
        verify(7, 0, &buf[..100]).unwrap();
        // The last reader goes while the writer is blocked on a full ring.
        fill_ring(&mut tx);
        std::thread::scope(|s| {
            s.spawn(move || {
                settled(writer, policy);
                drop(clone);
            });
            let r = tx.write(&[4; 100]);
            assert!(matches!(r, Err(Error::PeerClosed)), "{name}: {r:?}");
        });
    }
}

common::main! {
    tests: [
        a_past_deadline_times_out_at_once_on_an_empty_ring,
        a_past_deadline_still_returns_what_is_queued,
        a_near_deadline_times_out_when_the_writer_stays_idle,
        write_deadlines_time_out_on_a_full_ring_without_publishing,
        a_timed_out_large_write_ends_as_a_truncated_message,
        a_waiting_reader_gets_what_another_thread_writes,
        a_writer_blocked_on_a_full_ring_is_released_by_a_read,
        a_stream_of_hand_offs_arrives_intact_under_every_policy,
        a_waiting_reader_sees_the_sender_dropped_in_another_thread,
        a_blocked_writer_sees_the_receiver_dropped_in_another_thread,
        a_waiting_reader_sees_its_writer_process_sigkilled,
        a_blocked_writer_sees_its_reader_process_sigkilled,
        a_cloned_sender_keeps_the_writing_end_open,
        a_cloned_receiver_keeps_the_reading_end_open,
    ],
    children: [
        child_idle_writer,
        child_idle_reader,
    ],
}
