//! Unit tests of the zero-copy operations, in one process (threads for the
//! waits; each wait is observed through the canceller's pending count,
//! never a sleep). Cross-process behaviour (kills, a hostile writer) is in
//! `tests/named_data/zero_copy.rs`.

use super::max_len;
use crate::named::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use crate::quota::ring_capacity;
use crate::{Error, ErrorKind, PipeBuilder, PipeType, ReadMode};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

/// Spins (yielding) until `cond`, with a generous guard against a hang.
fn until(what: &str, cond: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed().as_secs() < 20, "hang: {what}");
        std::thread::yield_now();
    }
}

fn message_pair(tag: &str) -> (NamedPipeServer, NamedPipeClient) {
    let name = format!(r"\\.\pipe\zc-unit-{tag}-{}", std::process::id());
    let server = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .create(&name)
        .unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    client.set_read_mode(ReadMode::Message).unwrap();
    (server, client)
}

#[test]
fn bytes_round_trip_in_place_and_partial_consumption() {
    let (mut r, mut w) = PipeBuilder::new().build().unwrap();
    assert_eq!(
        w.write_with(6, |b| b.copy_from_slice(b"abcdef")).unwrap(),
        ()
    );
    w.write_all(b"gh").unwrap();
    // The slice never spans two writes; a partial consume keeps the rest.
    assert_eq!(
        r.read_with(|s| if s == b"abcdef" { 4 } else { 0 }).unwrap(),
        4
    );
    // More than offered counts as all.
    assert_eq!(r.read_with(|s| if s == b"ef" { 99 } else { 0 }).unwrap(), 2);
    let mut rest = [0u8; 2];
    r.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"gh");
    // An empty write is a 0-byte write: nothing queued on a byte pipe.
    w.write_with(0, |b| assert!(b.is_empty())).unwrap();
    assert_eq!(r.available(), 0);
}

#[test]
fn messages_stay_whole_and_empty_messages_count() {
    let (s, c) = message_pair("framing");
    s.send_msg_with(3, |b| b.copy_from_slice(b"one")).unwrap();
    s.send_msg_with(0, |_| ()).unwrap();
    s.send_msg(b"three").unwrap();
    assert_eq!(c.recv_msg_with(|m| m.to_vec()).unwrap(), b"one");
    assert_eq!(c.recv_msg_with(|m| m.len()).unwrap(), 0);
    // The rest of a message a copying read left (MoreData) is one slice.
    let mut two = [0u8; 2];
    let part = c.recv_msg(&mut two).unwrap();
    assert_eq!((part.len, part.complete), (2, false));
    assert_eq!(c.recv_msg_with(|m| m.to_vec()).unwrap(), b"ree");
    // In byte-read mode a message's bytes are the slice, all consumed.
    c.set_read_mode(ReadMode::Byte).unwrap();
    s.send_msg(b"xy").unwrap();
    assert_eq!(c.recv_msg_with(|m| m.to_vec()).unwrap(), b"xy");
}

#[test]
fn a_write_larger_than_one_slice_is_refused_before_the_closure_runs() {
    let (r, w) = PipeBuilder::new().buffer_size(4096).build().unwrap();
    let max = max_len(ring_capacity(4096));
    // Up to the buffer size is always accepted.
    assert!(max >= 4096);
    let called = AtomicUsize::new(0);
    let e = w
        .write_with(max + 1, |_| called.fetch_add(1, SeqCst))
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidParameter));
    assert_eq!(called.load(SeqCst), 0);
    assert_eq!(r.available(), 0, "nothing was written");
}

#[test]
fn a_fragmented_message_is_refused_whole_and_left_for_a_copying_read() {
    let (s, c) = message_pair("fragmented");
    let max = max_len(ring_capacity(4096));
    let big: Vec<u8> = (0..max + 100).map(|i| i as u8).collect();
    let sender = {
        let big = big.clone();
        std::thread::spawn(move || s.send_msg(&big).map(|n| (n, s)))
    };
    until("the first fragment", || {
        c.peek(None).unwrap().total_available > 0
    });
    let e = c.recv_msg_with(|_| panic!("not one slice")).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidParameter));
    let mut buf = vec![0u8; big.len()];
    let m = c.recv_msg(&mut buf).unwrap();
    assert_eq!((m.len, m.complete), (big.len(), true));
    assert_eq!(buf, big);
    sender.join().unwrap().unwrap();
}

#[test]
fn a_blocking_write_completes_by_the_quota_like_a_copy() {
    let (r, w) = PipeBuilder::new().buffer_size(4096).build().unwrap();
    let w = Arc::new(w);
    let canceller = w.canceller();
    let t = {
        let w = Arc::clone(&w);
        std::thread::spawn(move || w.write_with(5000, |b| b.fill(7)))
    };
    // 5000 bytes queued, quota 4096: it pends once published.
    until("the write pends on the quota", || canceller.pending() > 0);
    assert_eq!(r.available(), 5000);
    assert_eq!(r.read_with(|s| s.len().min(903)).unwrap(), 903);
    assert!(
        !t.is_finished() || canceller.pending() > 0,
        "4097 still unread"
    );
    assert_eq!(r.read_with(|_| 1).unwrap(), 1);
    t.join().unwrap().unwrap();
    assert_eq!(
        r.read_with(|s| s.iter().filter(|&&b| b == 7).count())
            .unwrap(),
        4096
    );
}

#[test]
fn a_cancelled_write_pending_on_the_quota_is_withdrawn() {
    let (r, w) = PipeBuilder::new().buffer_size(4096).build().unwrap();
    let w = Arc::new(w);
    let canceller = w.canceller();
    let t = {
        let w = Arc::clone(&w);
        std::thread::spawn(move || w.write_with(6000, |b| b.fill(1)))
    };
    until("the write pends on the quota", || canceller.pending() > 0);
    canceller.cancel().unwrap();
    let e = t.join().unwrap().unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::OperationAborted));
    // On a thread: were the write not withdrawn, this one would pend on
    // the quota behind it, and the read below would get the old bytes.
    let after = std::thread::spawn(move || w.write_with(5, |b| b.copy_from_slice(b"after")));
    // The withdrawn write's unread bytes vanish: the next read is "after".
    assert_eq!(
        r.read_with(|s| if s == b"after" { 5 } else { 0 }).unwrap(),
        5
    );
    after.join().unwrap().unwrap();
}

#[test]
fn a_write_cancelled_while_waiting_for_room_writes_nothing_and_never_fills() {
    // Ring 64 KiB, quota 4096: two pending 30000-byte writes fill it.
    let (r, w) = PipeBuilder::new().buffer_size(4096).build().unwrap();
    let mut pending = Vec::new();
    for k in 0..2u8 {
        let w = w.try_clone().unwrap();
        let c = w.canceller();
        pending.push((
            std::thread::spawn(move || w.write_with(30000, |b| b.fill(k))),
            c,
        ));
        until("published and pending", || {
            pending.last().unwrap().1.pending() > 0
        });
    }
    let third = w.try_clone().unwrap();
    let c3 = third.canceller();
    let filled = Arc::new(AtomicUsize::new(0));
    let t3 = {
        let filled = Arc::clone(&filled);
        std::thread::spawn(move || third.write_with(30000, |_| filled.fetch_add(1, SeqCst)))
    };
    until("the third write waits for room", || c3.pending() > 0);
    assert_eq!(r.available(), 60000);
    c3.cancel().unwrap();
    let e = t3.join().unwrap().unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::OperationAborted));
    assert_eq!(filled.load(SeqCst), 0, "the closure never ran");
    for k in 0..2u8 {
        let got = r
            .read_with(|s| s.iter().filter(|&&b| b == k).count())
            .unwrap();
        assert_eq!(got, 30000);
    }
    for (t, _) in pending {
        t.join().unwrap().unwrap();
    }
    assert_eq!(r.available(), 0);
}

#[test]
fn a_cancelled_blocking_read_consumes_nothing() {
    let (r, mut w) = PipeBuilder::new().build().unwrap();
    let r = Arc::new(r);
    let canceller = r.canceller();
    let t = {
        let r = Arc::clone(&r);
        std::thread::spawn(move || r.read_with(|s| s.len()))
    };
    until("the read waits", || canceller.pending() > 0);
    canceller.cancel().unwrap();
    let e = t.join().unwrap().unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::OperationAborted));
    w.write_all(b"z").unwrap();
    assert_eq!(r.read_with(|s| s.len()).unwrap(), 1);
}

#[test]
fn a_panicking_closure_publishes_and_consumes_nothing() {
    let (r, w) = PipeBuilder::new().build().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = w.write_with(10, |_| panic!("writer closure"));
    }));
    assert!(caught.is_err());
    assert_eq!(r.available(), 0);
    w.write_with(2, |b| b.copy_from_slice(b"ok")).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = r.read_with(|_| panic!("reader closure"));
    }));
    assert!(caught.is_err());
    assert_eq!(r.available(), 2);
    assert_eq!(r.read_with(|s| if s == b"ok" { 2 } else { 0 }).unwrap(), 2);
}

#[test]
fn nonblocking_ends_would_block_without_running_the_closure() {
    let (r, w) = PipeBuilder::new().buffer_size(4096).build().unwrap();
    r.set_nonblocking(true).unwrap();
    w.set_nonblocking(true).unwrap();
    let e = r.read_with(|_| panic!("nothing queued")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    w.write_with(4096, |b| b.fill(3)).unwrap(); // exactly the quota
    let e = w.write_with(1, |_| panic!("over the quota")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(r.read_with(|s| s.len()).unwrap(), 4096);
    drop(w);
    let e = r.read_with(|_| 0).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
}

#[test]
fn closed_peers_are_reported_as_copies_report_them() {
    let (r, w) = PipeBuilder::new().build().unwrap();
    drop(r);
    let e = w.write_with(4, |_| panic!("no reader")).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::NoData));
    let (r, mut w) = PipeBuilder::new().build().unwrap();
    w.write_all(b"last").unwrap();
    drop(w);
    assert_eq!(r.read_with(|s| s.len()).unwrap(), 4);
    let e = r.read_with(|_| 0).unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe));
}

#[test]
fn a_message_read_waits_for_a_message_and_takes_an_empty_one_too() {
    let (s, c) = message_pair("wait");
    let c = Arc::new(c);
    let canceller = c.canceller();
    let t = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || c.recv_msg_with(|m| m.len()))
    };
    until("the read waits", || canceller.pending() > 0);
    s.send_msg(b"").unwrap();
    assert_eq!(t.join().unwrap().unwrap(), 0);
    let t = {
        let c = Arc::clone(&c);
        std::thread::spawn(move || c.recv_msg_with(|m| m.to_vec()))
    };
    until("the read waits again", || canceller.pending() > 0);
    s.send_msg_with(4, |b| b.copy_from_slice(b"late")).unwrap();
    assert_eq!(t.join().unwrap().unwrap(), b"late");
}
