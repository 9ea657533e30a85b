//! Cancelling a blocking call that waits for its handle's half because
//! another call of the same handle holds it (spec 7.4: `CancelIoEx` ends
//! every pending request of the handle, the ones queued behind another
//! included).
//!
//! Each test starts a call that waits in the engine, then a second call on
//! the same handle, and acts once the canceller counts both (the queued
//! call is pending too); a call a cancel did not end hangs, which the hang
//! guards turn into a failure.

use crate::common;

use common::named::{assert_kind, default_opts, unique_name};
use common::{pattern, within, Pending, HANG};
use shmpipe::named::{ClientOptions, Connected, NamedPipeClient, NamedPipeServer};
use shmpipe::{Canceller, ErrorKind, PipeBuilder, PipeType, ReadMode};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

/// More than any ring holds: a write of it waits for room while it still
/// holds its handle's writing half.
const HUGE: usize = 4 << 20;

/// Waits until `c` counts `n` pending operations.
#[track_caller]
fn wait_pending(c: &Canceller, n: usize) {
    let start = Instant::now();
    while c.pending() < n {
        assert!(start.elapsed() < HANG, "never {n} pending operations");
        std::thread::yield_now();
    }
}

/// A connected pipe with the spec's default quotas: a byte pipe, or a
/// message pipe read in message mode (which `transact` needs).
fn connected(tag: &str, message: bool) -> (Arc<NamedPipeServer>, NamedPipeClient) {
    let name = unique_name(tag);
    let mut o = default_opts();
    if message {
        o.pipe_type(PipeType::Message).read_mode(ReadMode::Message);
    }
    let server = o.create(&name).unwrap();
    let client = ClientOptions::new().open(&name).unwrap();
    assert_eq!(server.connect().unwrap(), Connected::Already);
    (Arc::new(server), client)
}

/// Two threads read one anonymous read end, the second queued behind the
/// first: one cancel ends both, which consumed nothing, and a later read
/// gets what is written next.
fn two_reads_of_one_read_end_are_both_cancelled() {
    let (r, mut w) = shmpipe::pipe().unwrap();
    let r = Arc::new(r);
    let c = r.canceller();
    let r1 = Arc::clone(&r);
    let first = Pending::start("first read", move || (&*r1).read(&mut [0u8; 8]));
    wait_pending(&c, 1);
    let r2 = Arc::clone(&r);
    let second = Pending::start("queued read", move || (&*r2).read(&mut [0u8; 8]));
    wait_pending(&c, 2);
    second.assert_pending("the first read holds the half");
    c.cancel().unwrap();
    assert_kind(first.finish(), ErrorKind::OperationAborted, "first read");
    assert_kind(second.finish(), ErrorKind::OperationAborted, "queued read");
    assert_eq!(c.pending(), 0);
    assert_kind(c.cancel(), ErrorKind::NotFound, "nothing pending after");
    w.write_all(b"after").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        within("later read", move || (&*r).read(&mut buf).map(|n| (n, buf))).unwrap(),
        (5, *b"after\0\0\0")
    );
}

/// Two writes on the write end of a full pipe, the second queued behind
/// the first (which waits for room holding the writing half): one cancel
/// ends both.
fn two_writes_on_a_full_pipe_are_both_cancelled() {
    let (_r, w) = PipeBuilder::new().buffer_size(4096).build().unwrap();
    let w = Arc::new(w);
    let c = w.canceller();
    let w1 = Arc::clone(&w);
    let first = Pending::start("first write", move || (&*w1).write(&pattern(HUGE, 1)));
    wait_pending(&c, 1);
    let w2 = Arc::clone(&w);
    let second = Pending::start("queued write", move || (&*w2).write(b"queued"));
    wait_pending(&c, 2);
    second.assert_pending("the first write holds the half");
    c.cancel().unwrap();
    assert_kind(first.finish(), ErrorKind::OperationAborted, "first write");
    assert_kind(second.finish(), ErrorKind::OperationAborted, "queued write");
    assert_eq!(c.pending(), 0);
}

/// A named server's second `read`, queued behind its first: one cancel
/// ends both, and the server then reads what the client writes.
fn named_server_queued_read_is_cancelled() {
    let (server, mut client) = connected("cancel-queued-read", false);
    let c = server.canceller();
    let s1 = Arc::clone(&server);
    let first = Pending::start("first read", move || (&*s1).read(&mut [0u8; 8]));
    wait_pending(&c, 1);
    let s2 = Arc::clone(&server);
    let second = Pending::start("queued read", move || (&*s2).read(&mut [0u8; 8]));
    wait_pending(&c, 2);
    second.assert_pending("the first read holds the half");
    c.cancel().unwrap();
    assert_kind(first.finish(), ErrorKind::OperationAborted, "first read");
    assert_kind(second.finish(), ErrorKind::OperationAborted, "queued read");
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 8];
    let got = within("later read", move || {
        (&*server).read(&mut buf).map(|n| buf[..n].to_vec())
    });
    assert_eq!(got.unwrap(), b"hello");
}

/// A named server's `flush_buffers` behind its write that waits for room:
/// one cancel ends both.
fn named_server_flush_behind_a_blocked_write_is_cancelled() {
    let (server, _client) = connected("cancel-queued-flush", false);
    let c = server.canceller();
    let s1 = Arc::clone(&server);
    let write = Pending::start("write", move || (&*s1).write(&pattern(HUGE, 2)));
    wait_pending(&c, 1);
    let s2 = Arc::clone(&server);
    let flush = Pending::start("flush", move || s2.flush_buffers());
    wait_pending(&c, 2);
    flush.assert_pending("nothing was read");
    c.cancel().unwrap();
    assert_kind(write.finish(), ErrorKind::OperationAborted, "write");
    assert_kind(flush.finish(), ErrorKind::OperationAborted, "flush");
    assert_eq!(c.pending(), 0);
}

/// A named server's `transact`, queued for the writing half behind its
/// write of a message that waits for room: one cancel ends both.
fn named_server_transact_behind_a_blocked_write_is_cancelled() {
    let (server, _client) = connected("cancel-queued-transact", true);
    let c = server.canceller();
    let s1 = Arc::clone(&server);
    let write = Pending::start("write", move || (&*s1).write(&pattern(HUGE, 3)));
    wait_pending(&c, 1);
    let s2 = Arc::clone(&server);
    let transact = Pending::start("transact", move || s2.transact(b"req", &mut [0u8; 8]));
    wait_pending(&c, 2);
    transact.assert_pending("the write holds the writing half");
    c.cancel().unwrap();
    assert_kind(write.finish(), ErrorKind::OperationAborted, "write");
    assert_kind(transact.finish(), ErrorKind::OperationAborted, "transact");
    assert_eq!(c.pending(), 0);
}

common::tests! {
    tests: [
        two_reads_of_one_read_end_are_both_cancelled,
        two_writes_on_a_full_pipe_are_both_cancelled,
        named_server_queued_read_is_cancelled,
        named_server_flush_behind_a_blocked_write_is_cancelled,
        named_server_transact_behind_a_blocked_write_is_cancelled,
    ],
    children: [],
}
