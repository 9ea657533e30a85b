//! Nonblocking operations and the admission locks: a handle whose end's
//! lock is held by another live process (here: one stopped with SIGSTOP
//! while holding it) gets "no progress now" from `try_write`, `try_read`
//! and the `try_batch` calls at once, instead of waiting for the holder
//! (before: they waited for the lock with no deadline, so one stopped or
//! slow process stalled every nonblocking call on the end). A dead holder's
//! lock is still taken over by a single try.
//!
//! `peek`, which waits for the lock, is still woken by a disconnect.

use crate::common;

use common::*;
use shmpipe_engine::{channel, Error, Receiver, Sender};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc;
use std::time::Duration;

/// Hang guard: a nonblocking call that waits for the stopped holder never
/// returns, and the watchdog turns that into a failure.
const HANG: Duration = Duration::from_secs(20);
/// A first fragment the writer-lock holder publishes before it stops.
const FIRST: &[u8] = b"first fragment of the holder's write;";

/// Reports this process's pid on the status pipe (descriptor 4).
fn report_pid(status: &mut File) {
    status
        .write_all(&std::process::id().to_le_bytes())
        .expect("status pipe");
}

/// Takes the writer lock of the write end on descriptor 3, publishes
/// [`FIRST`] as the first fragment of a longer write, reports its pid and
/// stops itself holding the lock.
fn child_stop_holding_writer_lock() {
    let mut tx = Sender::from_fd(take_fd(3)).unwrap();
    let mut status = File::from(take_fd(4));
    tx.batch(|p| {
        assert!(p.try_push(FIRST, 1).unwrap());
        report_pid(&mut status);
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGSTOP) };
    })
    .unwrap();
}

/// Takes the reader lock of the read end on descriptor 3, reports its pid
/// and stops itself holding the lock.
fn child_stop_holding_reader_lock() {
    let mut rx = Receiver::from_fd(take_fd(3)).unwrap();
    let mut status = File::from(take_fd(4));
    rx.batch(|_| {
        report_pid(&mut status);
        // SAFETY: raise only sends a signal to this process.
        unsafe { libc::raise(libc::SIGSTOP) };
        Ok(())
    })
    .unwrap();
}

/// Starts `role` on `end` (descriptor 3) and returns once it holds its lock
/// and is stopped (as `/proc/PID/stat` shows).
fn stopped_holder(role: &str, end: BorrowedFd<'_>) -> std::process::Child {
    let (mut status, status_w) = pipe();
    let child = spawn_child(role, &[(end, 3), (status_w.as_fd(), 4)]);
    drop(status_w);
    let mut pid = [0u8; 4];
    status
        .read_exact(&mut pid)
        .expect("the holder went away before taking its lock");
    let pid = u32::from_le_bytes(pid);
    assert_eq!(pid, child.id());
    while process_state(pid) != Some('T') {
        std::thread::yield_now();
    }
    child
}

/// `try_write` (and `Sender::try_batch`) on a handle whose end's writer lock
/// a stopped process holds: nothing written, at once; once the holder is
/// dead, the next try takes its lock over and ends its cut write.
fn try_write_does_not_wait_for_a_stopped_writer() {
    let _dog = Watchdog::new("try_write_does_not_wait_for_a_stopped_writer", HANG);
    let (tx, mut rx) = channel(4096).unwrap();
    let mut writer = tx.try_clone().unwrap();
    let holder = stopped_holder("child_stop_holding_writer_lock", tx.as_fd());
    assert!(matches!(writer.try_write(b"mine"), Ok(false)));
    assert!(matches!(writer.try_batch(|_| ()), Ok(None)));
    // Nothing of this handle's reached the ring.
    assert_eq!(rx.available(), FIRST.len() as u64);

    kill_and_reap(holder);
    assert!(matches!(writer.try_write(b"mine"), Ok(true)));
    let mut buf = [0u8; 256];
    let part = rx.read_message(&mut buf).unwrap();
    assert_eq!((part.len, part.end), (FIRST.len(), false));
    assert!(matches!(rx.read_message(&mut buf), Err(Error::MessageCut)));
    let m = rx.read_message(&mut buf).unwrap();
    assert_eq!((&buf[..m.len], m.end), (&b"mine"[..], true));
}

/// `try_read` (and `Receiver::try_batch`) on a handle whose end's reader
/// lock a stopped process holds: nothing read, at once, although bytes are
/// queued; once the holder is dead, the next try takes its lock over.
fn try_read_does_not_wait_for_a_stopped_reader() {
    let _dog = Watchdog::new("try_read_does_not_wait_for_a_stopped_reader", HANG);
    let (mut tx, rx) = channel(4096).unwrap();
    tx.write(b"queued").unwrap();
    let mut reader = rx.try_clone().unwrap();
    let holder = stopped_holder("child_stop_holding_reader_lock", rx.as_fd());
    let mut buf = [0u8; 16];
    assert!(matches!(reader.try_read(&mut buf), Ok(None)));
    assert!(matches!(reader.try_batch(|_| Ok(())), Ok(None)));
    assert_eq!(reader.available(), 6);

    kill_and_reap(holder);
    assert_eq!(reader.try_read(&mut buf).unwrap(), Some(6));
    assert_eq!(&buf[..6], b"queued");
}

/// `peek` waits for a reader lock that a stopped process holds, and a
/// disconnect wakes it with `Disconnected`.
fn disconnect_wakes_a_peek_waiting_for_the_lock() {
    let _dog = Watchdog::new("disconnect_wakes_a_peek_waiting_for_the_lock", HANG);
    let (mut tx, rx) = channel(4096).unwrap();
    tx.write(b"queued").unwrap();
    let mut reader = rx.try_clone().unwrap();
    let holder = stopped_holder("child_stop_holding_reader_lock", rx.as_fd());
    let (tid_tx, tid_rx) = mpsc::channel();
    let peek = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        reader.peek(&mut [0u8; 16])
    });
    wait_until_blocked(tid_rx.recv().unwrap());
    tx.end().disconnect();
    let r = peek.join().unwrap();
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    kill_and_reap(holder);
}

common::tests! {
    tests: [
        try_write_does_not_wait_for_a_stopped_writer,
        try_read_does_not_wait_for_a_stopped_reader,
        disconnect_wakes_a_peek_waiting_for_the_lock,
    ],
    children: [child_stop_holding_writer_lock, child_stop_holding_reader_lock],
}
