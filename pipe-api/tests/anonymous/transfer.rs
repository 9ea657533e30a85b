//! Spec 9.6 and 9.8: bytes in and out, zero-length calls, peek.

use crate::common;

use super::support::*;
use common::{within, Pending};
use shmpipe::ErrorKind;
use std::io::{Read, Write};

// ---------------------------------------------------------------- 9.6

#[test]
fn sem_060_blocking_read_returns_as_soon_as_some_bytes_arrive() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    let read = Pending::start("100-byte read", move || {
        let mut buf = [0u8; 100];
        r.read_pipe(&mut buf).map(|n| buf[..n].to_vec())
    });
    read.assert_pending("nothing written yet");
    w.write_all(&[7u8; 10]).unwrap();
    // The write end stays open: the read must not wait for more or for EOF.
    assert_eq!(read.finish().unwrap(), [7u8; 10]);
    drop(w);
}

#[test]
fn sem_061_two_writes_are_returned_by_one_read() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"eleven byte").unwrap();
    w.write_all(b"ten bytes!").unwrap();
    let mut buf = [0u8; 32];
    let n = r.read_pipe(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"eleven byteten bytes!");
}

#[test]
fn sem_062_partial_read_leaves_the_rest_queued() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(r.read_pipe(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"0123");
    assert_eq!(r.available(), 6);
    assert_eq!(r.peek(None).unwrap().total_available, 6);
    let mut rest = [0u8; 32];
    let n = r.read_pipe(&mut rest).unwrap();
    assert_eq!(&rest[..n], b"456789");
}

#[test]
fn sem_063_zero_length_write_queues_nothing_and_completes_no_read() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    let probe = r.try_clone().unwrap();
    let r = r;
    let read = Pending::start("pending read", move || {
        let mut buf = [0u8; 8];
        r.read_pipe(&mut buf).map(|n| buf[..n].to_vec())
    });
    assert_eq!(w.try_write(&[]).unwrap(), 0);
    assert_eq!(w.write(&[]).unwrap(), 0);
    assert_eq!(probe.available(), 0);
    read.assert_pending("a zero-length write must not complete a read");
    w.write_all(b"z").unwrap();
    assert_eq!(read.finish().unwrap(), b"z");
}

/// Tested through `read_pipe` (Windows' `ReadFile`). `Read::read` with an
/// empty buffer also returns `Ok(0)` at once, as std requires of every
/// reader, and is checked too.
#[test]
fn sem_064_zero_length_read_returns_0_and_consumes_nothing() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"hello").unwrap();
    let mut r = within("zero-length reads", move || {
        let mut r = r;
        assert_eq!(r.read_pipe(&mut []).unwrap(), 0);
        assert_eq!(r.read(&mut []).unwrap(), 0);
        r
    });
    assert_eq!(r.available(), 5);
    assert_eq!(take(&mut r, 5), b"hello");
}

/// Spec 4.6: a blocking zero-length `read_pipe` on an empty pipe waits for
/// data, then returns 0 and leaves the data queued (`ReadFile` semantics).
#[test]
fn zero_length_read_pipe_waits_for_data_and_consumes_nothing() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    let read = Pending::start("zero-length read_pipe", move || {
        let n = r.read_pipe(&mut []);
        (n.map_err(|e| e.to_string()), r)
    });
    read.assert_pending("no data arrived yet");
    w.write_all(b"q").unwrap();
    let (n, mut r) = read.finish();
    assert_eq!(n, Ok(0));
    assert_eq!(r.available(), 1);
    assert_eq!(take(&mut r, 1), b"q");
}

// ---------------------------------------------------------------- 9.8

#[test]
fn sem_082_peek_does_not_consume() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"look ").unwrap();
    w.write_all(b"twice").unwrap();
    let mut buf = [0u8; 32];
    let p = r.peek(Some(&mut buf)).unwrap();
    assert_eq!(p.copied, 10);
    assert_eq!(&buf[..10], b"look twice");
    let again = r.peek(Some(&mut buf)).unwrap();
    assert_eq!(again.copied, 10);
    let mut read = [0u8; 32];
    let n = r.read_pipe(&mut read).unwrap();
    assert_eq!(&read[..n], b"look twice");
}

#[test]
fn sem_085_peek_with_small_buffer_reports_left_in_message_0() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    let p = r.peek(Some(&mut buf)).unwrap();
    assert_eq!((p.copied, p.total_available, p.left_in_message), (4, 10, 0));
    assert_eq!(&buf, b"0123");
    assert_eq!(r.available(), 10);
}

#[test]
fn sem_086_peek_without_buffer_reports_total_available() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"eleven byte").unwrap();
    w.write_all(b"ten bytes!").unwrap();
    let p = r.peek(None).unwrap();
    assert_eq!((p.copied, p.total_available, p.left_in_message), (0, 21, 0));
    let p = r.peek(Some(&mut [])).unwrap();
    assert_eq!((p.copied, p.total_available, p.left_in_message), (0, 21, 0));
}

#[test]
fn sem_087_peek_on_empty_pipe_returns_at_once() {
    let (r, w) = shmpipe::pipe().unwrap();
    assert!(!r.state().unwrap().nonblocking);
    let (a, b) = within("peek on an empty pipe", move || {
        let r = r;
        let a = r.peek(None).unwrap();
        let b = r.peek(Some(&mut [0u8; 16])).unwrap();
        (a, b)
    });
    for p in [a, b] {
        assert_eq!((p.copied, p.total_available, p.left_in_message), (0, 0, 0));
    }
    drop(w);
}

#[test]
fn sem_089_peek_after_peer_closed_reports_data_then_broken_pipe() {
    let (mut r, mut w) = shmpipe::pipe().unwrap();
    w.write_all(b"twelve bytes").unwrap();
    drop(w);
    let mut buf = [0u8; 32];
    let p = r.peek(Some(&mut buf)).unwrap();
    assert_eq!((p.copied, p.total_available), (12, 12));
    assert_eq!(&buf[..12], b"twelve bytes");
    assert_eq!(take(&mut r, 5), b"twelv");
    assert_eq!(r.peek(None).unwrap().total_available, 7);
    assert_eq!(take(&mut r, 7), b"e bytes");
    let e = r.peek(None).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
}
