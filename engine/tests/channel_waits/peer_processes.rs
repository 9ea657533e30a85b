//! Peers in other processes: an idle end whose process is SIGKILLed, and
//! ends kept open by `try_clone`d handles.

use crate::common;

use super::support::*;
use common::*;
use shmpipe_engine::{Error, Receiver, Sender, WaitPolicy};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::time::Instant;

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

common::tests! {
    tests: [
        a_waiting_reader_sees_its_writer_process_sigkilled,
        a_blocked_writer_sees_its_reader_process_sigkilled,
        a_cloned_sender_keeps_the_writing_end_open,
        a_cloned_receiver_keeps_the_reading_end_open,
    ],
    children: [child_idle_writer, child_idle_reader],
}
