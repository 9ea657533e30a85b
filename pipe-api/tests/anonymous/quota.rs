//! Spec 9.9 and 9.10: the quota, writes that pend on it, and nonblocking
//! calls.

use crate::common;

use super::support::*;
use common::{pattern, within, Pending};
use shmpipe::{ErrorKind, WaitMode};
use std::io::{self, Read, Write};

// ---------------------------------------------------------------- 9.9

#[test]
fn sem_092_write_completes_when_queue_ahead_fits_the_quota() {
    let (mut r, mut w) = pipe_with(5000);
    let a = pattern(3000, 1);
    let b = pattern(5000, 2);
    let a2 = a.clone();
    let w = within("3000-byte write", move || {
        w.write_all(&a2).unwrap();
        w
    });
    let write = start_write(w, b.clone());
    wait_until("the write is queued", || r.available() == 8000);
    write.assert_pending("8000 bytes unread, quota 5000");
    assert!(take(&mut r, 2999) == a[..2999]);
    write.assert_pending("5001 bytes unread, quota 5000");
    assert_eq!(take(&mut r, 1), a[2999..]);
    assert_eq!(write.finish().0.unwrap(), 5000);
    assert!(take(&mut r, 5000) == b);
}

#[test]
fn sem_093_write_over_quota_completes_when_reader_consumed_the_excess() {
    let (mut r, w) = pipe_with(5000);
    let data = pattern(7000, 3);
    let write = start_write(w, data.clone());
    wait_until("the write is queued", || r.available() == 7000);
    write.assert_pending("7000 bytes unread, quota 5000");
    assert!(take(&mut r, 1999) == data[..1999]);
    write.assert_pending("5001 bytes unread");
    assert_eq!(take(&mut r, 1), data[1999..2000]);
    assert_eq!(write.finish().0.unwrap(), 7000);
    assert!(take(&mut r, 5000) == data[2000..]);
}

#[test]
fn sem_094_bytes_of_a_pending_write_are_peekable_and_readable() {
    let (mut r, w) = pipe_with(1000);
    let data = pattern(3000, 4);
    let write = start_write(w, data.clone());
    wait_until("the write is published", || r.available() == 3000);
    let mut buf = vec![0u8; 4000];
    let p = r.peek(Some(&mut buf)).unwrap();
    assert_eq!((p.copied, p.total_available), (3000, 3000));
    assert!(buf[..3000] == data[..]);
    write.assert_pending("3000 bytes unread, quota 1000");
    let mut part = vec![0u8; 1500];
    let n = r.read_pipe(&mut part).unwrap();
    assert_eq!(n, 1500, "all 3000 bytes are readable already");
    assert!(part == data[..1500]);
    write.assert_pending_now("1500 bytes unread, quota 1000");
    assert!(take(&mut r, 500) == data[1500..2000]);
    assert_eq!(write.finish().0.unwrap(), 3000);
    assert!(take(&mut r, 1000) == data[2000..]);
}

/// The worked example of spec 5.2 (quota 5000), with SEM-097's zero-length
/// write in the middle.
#[test]
fn sem_095_pending_writes_complete_in_issue_order() {
    let (mut r, mut w) = pipe_with(5000);
    let a = pattern(3000, 5);
    let b = pattern(5000, 6);
    let c = vec![0xC5u8];
    let a2 = a.clone();
    let w = within("write A", move || {
        w.write_all(&a2).unwrap();
        w
    });
    let write_b = start_write(w.try_clone().unwrap(), b.clone());
    wait_until("B queued", || r.available() == 8000);
    let write_c = start_write(w.try_clone().unwrap(), c.clone());
    wait_until("C queued", || r.available() == 8001);
    write_b.assert_pending("B: 8000 ahead");
    write_c.assert_pending_now("C: 8001 ahead");

    // SEM-097: D, zero bytes, completes at once and changes nothing.
    let (d, w) = within("write D (0 bytes)", move || {
        let w = w;
        (w.try_write(&[]).unwrap(), w)
    });
    assert_eq!(d, 0);
    assert_eq!(r.peek(None).unwrap().total_available, 8001);

    assert!(take(&mut r, 3000) == a);
    assert_eq!(write_b.finish().0.unwrap(), 5000, "B: 5000 ahead");
    write_c.assert_pending("C: 5001 ahead");
    assert_eq!(take(&mut r, 1), b[..1]);
    assert_eq!(write_c.finish().0.unwrap(), 1, "C: 5000 ahead");
    let rest = take(&mut r, 5000);
    assert!(rest[..4999] == b[1..]);
    assert_eq!(rest[4999..], c[..]);
    drop(w);
}

#[test]
fn sem_097_zero_length_write_completes_while_another_is_pending() {
    let (mut r, w) = pipe_with(1000);
    let w2 = w.try_clone().unwrap();
    let data = pattern(3000, 8);
    let write = start_write(w, data.clone());
    wait_until("the write is queued", || r.available() == 3000);
    let w2 = within("zero-length writes", move || {
        let mut w2 = w2;
        assert_eq!(w2.try_write(&[]).unwrap(), 0);
        assert_eq!(w2.write(&[]).unwrap(), 0);
        w2
    });
    let p = r.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (3000, 0));
    write.assert_pending_now("3000 bytes unread, quota 1000");
    assert!(take(&mut r, 3000) == data);
    assert_eq!(write.finish().0.unwrap(), 3000);
    drop(w2);
}

/// Spec 5.2/5.3: a read pending when a write arrives takes its share
/// first, and only the rest counts against the quota. The read is checked
/// to be pending before the write starts, and nothing else reads until the
/// write returned; the contrast half shows the same write on the same pipe
/// waits when no read is pending. The reading thread runs as soon as data
/// arrives, so this does not check that the write completes while the
/// reader cannot run (a stopped process).
#[test]
fn sem_098_write_of_quota_plus_one_completes_with_a_1_byte_read_pending() {
    let (mut r, w) = pipe_with(512);
    let r2 = r.try_clone().unwrap();
    let data = pattern(513, 9);
    let read = Pending::start("1-byte read", move || {
        let mut b = [0u8; 1];
        r2.read_pipe(&mut b).map(|n| (n, b[0]))
    });
    read.assert_pending("nothing written yet");
    let write = start_write(w, data.clone());
    let (res, w) = write.finish();
    assert_eq!(
        res.unwrap(),
        513,
        "1 byte to the pending read, 512 queued: within the quota"
    );
    assert_eq!(read.finish().unwrap(), (1, data[0]));
    assert_eq!(r.available(), 512);
    assert!(take(&mut r, 512) == data[1..]);

    // No read pending: 513 bytes are over the quota until one is read.
    let data = pattern(513, 13);
    let write = start_write(w, data.clone());
    wait_until("the write is queued", || r.available() == 513);
    write.assert_pending("513 unread, quota 512, no read pending");
    assert_eq!(take(&mut r, 1), data[..1]);
    assert_eq!(write.finish().0.unwrap(), 513);
    assert!(take(&mut r, 512) == data[1..]);
}

#[test]
fn sem_099_pending_read_takes_its_share_of_a_write() {
    let (mut r, mut w) = pipe_with(5000);
    let r2 = r.try_clone().unwrap();
    let data = pattern(4000, 10);
    let read = Pending::start("1000-byte read", move || {
        let mut b = vec![0u8; 1000];
        r2.read_pipe(&mut b).map(|n| b[..n].to_vec())
    });
    read.assert_pending("nothing written yet");
    let d2 = data.clone();
    within("4000-byte write", move || w.write_all(&d2).map(|()| w)).unwrap();
    assert!(read.finish().unwrap() == data[..1000]);
    assert_eq!(r.available(), 3000);
    assert!(take(&mut r, 3000) == data[1000..]);
}

// ---------------------------------------------------------------- 9.10

#[test]
fn sem_100_nonblocking_read_on_empty_pipe_is_no_data() {
    let (r, _w) = shmpipe::pipe().unwrap();
    r.set_nonblocking(true).unwrap();
    let (e1, e2) = within("nonblocking reads", move || {
        let mut r = r;
        let e1 = r.read_pipe(&mut [0u8; 8]).unwrap_err();
        let e2 = r.read(&mut [0u8; 8]).unwrap_err();
        (e1, e2)
    });
    for e in [e1, e2] {
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(kind(&e), Some(ErrorKind::NoData));
    }
}

#[test]
fn sem_101_nonblocking_write_of_exactly_the_quota_is_written() {
    let (mut r, mut w) = pipe_with(512);
    w.set_nonblocking(true).unwrap();
    let data = pattern(512, 11);
    assert_eq!(w.try_write(&data).unwrap(), 512);
    assert!(take(&mut r, 512) == data);
    assert_eq!(w.write(&data).unwrap(), 512, "through io::Write as well");
    assert_eq!(r.available(), 512);
}

#[test]
fn sem_102_nonblocking_write_over_the_quota_writes_nothing() {
    let (r, mut w) = pipe_with(512);
    w.set_nonblocking(true).unwrap();
    assert_eq!(w.try_write(&[1u8; 513]).unwrap(), 0);
    assert_eq!(r.available(), 0);
    let e = w.write(&[1u8; 513]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    assert_eq!(r.available(), 0);
    // The boundary with data already queued: 100 + 412 fits, 1 more does not.
    assert_eq!(w.try_write(&[2u8; 100]).unwrap(), 100);
    assert_eq!(w.try_write(&[3u8; 413]).unwrap(), 0);
    assert_eq!(w.try_write(&[3u8; 412]).unwrap(), 412);
    assert_eq!(w.try_write(&[4u8; 1]).unwrap(), 0);
    assert_eq!(r.available(), 512);
}

/// Runs a nonblocking write of `len` bytes (quota 512) while another thread
/// has a 1-byte blocking read pending, and returns (bytes written, the byte
/// the read got, bytes left queued).
///
/// The writer learns of the pending read from a word the reader sets just
/// before it waits, so the write comes once the reader sleeps in its wait.
fn nonblocking_write_with_1_byte_read_pending(len: usize) -> (usize, u8, u64, Vec<u8>) {
    let (r, w) = pipe_with(512);
    w.set_nonblocking(true).unwrap();
    let r2 = r.try_clone().unwrap();
    let read = Pending::start("1-byte read", move || {
        let mut b = [0u8; 1];
        r2.read_pipe(&mut b).map(|n| (n, b[0]))
    });
    read.assert_pending("nothing written yet");
    let data = pattern(len, 12);
    let written = w.try_write(&data).unwrap();
    assert_ne!(written, 0, "the pending read was not taken into account");
    let (n, byte) = read.finish().unwrap();
    assert_eq!(n, 1);
    (written, byte, r.available(), data)
}

#[test]
fn sem_103_nonblocking_write_hands_the_pending_read_its_byte_only() {
    let (written, byte, left, data) = nonblocking_write_with_1_byte_read_pending(514);
    assert_eq!(written, 1);
    assert_eq!(byte, data[0]);
    assert_eq!(left, 0, "nothing but the read's byte may be written");
}

/// Spec 5.5's other data point: with the read's byte taken, 512 bytes fit.
#[test]
fn nonblocking_513_bytes_with_a_1_byte_read_pending_are_all_written() {
    let (written, byte, left, data) = nonblocking_write_with_1_byte_read_pending(513);
    assert_eq!(written, 513);
    assert_eq!(byte, data[0]);
    assert_eq!(left, 512);
}

#[test]
fn sem_105_set_state_switches_wait_mode_and_state_reports_it() {
    let (r, w) = pipe_with(16);
    for s in [r.state().unwrap(), w.state().unwrap()] {
        assert!(!s.nonblocking && !s.message_read);
        assert_eq!(s.current_instances, 1);
    }
    r.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    w.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    for s in [r.state().unwrap(), w.state().unwrap()] {
        assert!(s.nonblocking && !s.message_read);
    }
    let (r, w) = within("nonblocking operations", move || {
        let (r, w) = (r, w);
        let e = r.read_pipe(&mut [0u8; 4]).unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::NoData));
        assert_eq!(w.try_write(&[0u8; 17]).unwrap(), 0);
        (r, w)
    });

    r.set_state(None, Some(WaitMode::Blocking)).unwrap();
    w.set_nonblocking(false).unwrap();
    for s in [r.state().unwrap(), w.state().unwrap()] {
        assert!(!s.nonblocking && !s.message_read);
    }
    let mut probe = r.try_clone().unwrap();
    let r = r;
    let mut w = w;
    let read = Pending::start("blocking read", move || r.read_pipe(&mut [0u8; 4]));
    read.assert_pending("the read end is blocking again");
    w.write_all(b"x").unwrap();
    assert_eq!(read.finish().unwrap(), 1);
    let write = start_write(w, vec![5u8; 17]);
    write.assert_pending("the write end is blocking again: 17 unread, quota 16");
    assert_eq!(take(&mut probe, 1), [5]);
    assert_eq!(write.finish().0.unwrap(), 17);
}

// spec 4.16: a wait-mode change applies to operations started afterwards;
// operations already pending keep the mode they started in.
#[test]
fn pending_read_and_write_keep_the_wait_mode_they_started_in() {
    let (r, w) = pipe_with(16);
    let mut r2 = r.try_clone().unwrap();
    let w2 = w.try_clone().unwrap();

    let read = Pending::start("blocking read", move || {
        let mut buf = [0u8; 8];
        r.read_pipe(&mut buf).map(|n| buf[..n].to_vec())
    });
    read.assert_pending("empty pipe, blocking end");
    r2.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    // A read started now is nonblocking...
    let (e, r2_back) = within("nonblocking read beside the pending one", move || {
        let r2 = r2;
        (r2.read_pipe(&mut [0u8; 8]).unwrap_err(), r2)
    });
    r2 = r2_back;
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    // ...the one already waiting neither fails nor returns: it still blocks.
    read.assert_pending("started blocking: keeps waiting for data");
    let mut w = w;
    w.write_all(b"data").unwrap();
    assert_eq!(read.finish().unwrap(), b"data");

    // The same for a write waiting on the quota.
    r2.set_nonblocking(false).unwrap();
    let data = pattern(17, 14);
    let write = start_write(w, data.clone());
    wait_until("the write is queued", || r2.available() == 17);
    write.assert_pending("17 unread, quota 16");
    w2.set_state(None, Some(WaitMode::Nonblocking)).unwrap();
    let (n, w2) = within("nonblocking write beside the pending one", move || {
        let w2 = w2;
        (w2.try_write(&[1u8; 1]).unwrap(), w2)
    });
    assert_eq!(n, 0, "a write started now is nonblocking: over the quota");
    write.assert_pending("started blocking: keeps waiting for the quota");
    assert_eq!(r2.available(), 17, "nothing withdrawn, nothing added");
    assert_eq!(take(&mut r2, 1), data[..1]);
    assert_eq!(write.finish().0.unwrap(), 17);
    assert!(take(&mut r2, 16) == data[1..]);
    drop(w2);
}
