//! Spec 9.13 and 9.14: transact and call (SEM-124..135), and operations
//! pending at once on one end (SEM-142, SEM-146).

use crate::common;

use super::support::*;
use common::{pattern, Pending, HANG};
use shmpipe::named::{call, ClientOptions, MsgRead, NamedPipeServer, WaitTimeout};
use shmpipe::{ErrorKind, PipeType};
use std::io::{self};
use std::sync::Arc;
use std::time::Duration;

// ------------------------------------------------ 9.13 transact and call

fn sem_124_transact_needs_message_type_and_message_read_mode() {
    let (s, c) = byte_pair();
    assert_kind(c.transact(b"req", &mut [0; 8]), ErrorKind::BadPipe);
    assert_kind(s.transact(b"req", &mut [0; 8]), ErrorKind::BadPipe);
    let mut o = defaults();
    o.pipe_type(PipeType::Message);
    let (s, c) = pair_with(&o);
    assert_kind(c.transact(b"req", &mut [0; 8]), ErrorKind::BadPipe);
    assert_kind(s.transact(b"req", &mut [0; 8]), ErrorKind::BadPipe);
    // Nothing was written.
    assert_eq!((total(&s), total(&c)), (0, 0));
}

fn sem_125_transact_with_unread_data_is_pipe_busy_and_writes_nothing() {
    let (s, c) = msg_pair();
    s.set_nonblocking(true).unwrap();
    s.send_msg(b"unread").unwrap();
    assert_kind(c.transact(b"req", &mut [0; 8]), ErrorKind::PipeBusy);
    assert_kind(recv_vec(&s, 16), ErrorKind::NoData);
    assert_eq!(recv_vec(&c, 16).unwrap().0, b"unread");
    // An unread empty message counts too.
    s.send_msg(&[]).unwrap();
    assert_kind(c.transact(b"req", &mut [0; 8]), ErrorKind::PipeBusy);
    assert_kind(recv_vec(&s, 16), ErrorKind::NoData);
}

fn sem_126_transact_sends_one_message_and_returns_the_next_reply() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let request = pattern(300, 126);
    let t = pending_transact(&c, &request, 64);
    assert_eq!(recv_vec(&s, 4096).unwrap(), (request, true));
    t.assert_pending("no reply yet");
    s.send_msg(b"the reply").unwrap();
    assert_eq!(t.finish().unwrap(), (b"the reply".to_vec(), true));
}

fn sem_127_long_transact_reply_gives_more_data_and_the_rest_is_readable() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let t = pending_transact(&c, b"q", 6);
    assert_eq!(recv_vec(&s, 16).unwrap().0, b"q");
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(t.finish().unwrap(), (b"012345".to_vec(), false));
    assert_eq!(recv_vec(&*c, 32).unwrap(), (b"6789".to_vec(), true));
}

fn sem_128_transact_ignores_the_quota_behind_a_pending_write() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let big = pattern(1024 + 2000, 128);
    let w = pending_send(&c, big.clone());
    await_total(&s, 3024);
    let t = pending_transact(&c, b"request", 64);
    // The request is queued at once, behind the still pending write.
    let queued = wait_until(QUICK, || total(&s) == 3024 + 7);
    w.assert_pending_now("3024 bytes, quota 1024");
    t.assert_pending_now("no reply yet");
    assert_eq!(recv_vec(&s, 4096).unwrap(), (big, true));
    assert_eq!(w.finish().unwrap(), 3024);
    assert_eq!(recv_vec(&s, 64).unwrap(), (b"request".to_vec(), true));
    s.send_msg(b"reply").unwrap();
    assert_eq!(t.finish().unwrap(), (b"reply".to_vec(), true));
    assert!(
        queued,
        "the transact request waited behind the pending write instead of being queued at once"
    );
}

fn sem_129_only_a_reply_completes_a_transact_even_an_empty_one() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let t = pending_transact(&c, b"req", 0);
    assert_eq!(recv_vec(&s, 16).unwrap(), (b"req".to_vec(), true));
    t.assert_pending("the peer read the request but did not reply");
    s.send_msg(&[]).unwrap();
    assert_eq!(t.finish().unwrap(), (Vec::new(), true));
}

fn sem_130_either_end_transacts_and_a_transact_can_be_the_reply() {
    let (s, c) = msg_pair();
    let s = Arc::new(s);
    let c = Arc::new(c);
    let tc = pending_transact(&c, b"ping", 64);
    assert_eq!(recv_vec(&*s, 16).unwrap(), (b"ping".to_vec(), true));
    let ts = pending_transact(&s, b"pong", 64);
    assert_eq!(tc.finish().unwrap(), (b"pong".to_vec(), true));
    ts.assert_pending("the client has not answered the server's transact");
    c.send_msg(b"ack").unwrap();
    assert_eq!(ts.finish().unwrap(), (b"ack".to_vec(), true));
}

/// A message server instance answering one request with `reply(request)`
/// on its own thread; returns what the server saw afterwards: the result of
/// a read (the client's close) and of a write.
fn serve_one(
    s: Arc<NamedPipeServer>,
    reply: impl Fn(&[u8]) -> Vec<u8> + Send + 'static,
) -> Pending<(ReadResult, io::Result<usize>)> {
    Pending::start("server", move || {
        s.connect().unwrap();
        let (req, complete) = recv_vec(&*s, 4096).unwrap();
        assert!(complete);
        s.send_msg(&reply(&req)).unwrap();
        let after = recv_vec(&*s, 16);
        (after, s.send_msg(b"x"))
    })
}

fn sem_132_call_opens_transacts_and_closes() {
    let name = unique("call");
    let s = Arc::new(message_opts().create(&name).unwrap());
    let server = serve_one(Arc::clone(&s), |r| r.to_ascii_uppercase());
    let mut reply = [0u8; 64];
    let m = call(&name, b"ping", &mut reply, WaitTimeout::Default).unwrap();
    assert_eq!((&reply[..m.len], m.complete), (&b"PING"[..], true));
    // The call's client end is closed afterwards.
    let (after, write) = server.finish();
    assert_kind(after, ErrorKind::BrokenPipe);
    assert_kind(write, ErrorKind::NoData);
}

fn sem_133_call_with_short_buffer_truncates_the_reply() {
    let name = unique("call-short");
    let s = Arc::new(message_opts().create(&name).unwrap());
    let server = serve_one(Arc::clone(&s), |_| b"0123456789abcdefghij".to_vec());
    let mut reply = [0u8; 8];
    let m = call(&name, b"q", &mut reply, WaitTimeout::Default).unwrap();
    assert_eq!(
        m,
        MsgRead {
            len: 8,
            complete: false
        }
    );
    assert_eq!(&reply, b"01234567");
    // The rest went with the closed client end.
    let (after, write) = server.finish();
    assert_kind(after, ErrorKind::BrokenPipe);
    assert_kind(write, ErrorKind::NoData);
}

fn sem_134_call_waits_for_a_busy_pipe_according_to_its_timeout() {
    let name = unique("call-busy");
    let s = Arc::new(message_opts().create(&name).unwrap());
    let holder = ClientOptions::new().open(&name).unwrap();
    let mut reply = [0u8; 16];
    assert_kind(
        call(&name, b"q", &mut reply, WaitTimeout::NoWait),
        ErrorKind::PipeBusy,
    );
    assert_kind(
        call(
            &name,
            b"q",
            &mut reply,
            WaitTimeout::Duration(Duration::from_millis(200)),
        ),
        ErrorKind::Timeout,
    );
    // An instance that becomes Listening during the wait serves the call.
    let caller = {
        let name = name.clone();
        Pending::start("call", move || {
            let mut reply = [0u8; 16];
            call(&name, b"late", &mut reply, WaitTimeout::Duration(HANG))
                .map(|m| reply[..m.len].to_vec())
        })
    };
    caller.assert_pending("every instance is busy");
    drop(holder);
    s.disconnect().unwrap();
    let server = serve_one(s, |r| r.to_ascii_uppercase());
    assert_eq!(caller.finish().unwrap(), b"LATE");
    let (after, _) = server.finish();
    assert_kind(after, ErrorKind::BrokenPipe);
}

fn sem_135_call_on_byte_pipe_or_missing_name_fails() {
    let name = unique("call-byte");
    let _s = defaults().create(&name).unwrap();
    let mut reply = [0u8; 16];
    assert_kind(
        call(&name, b"q", &mut reply, WaitTimeout::Default),
        ErrorKind::InvalidParameter,
    );
    assert_kind(
        call(&unique("nobody"), b"q", &mut reply, WaitTimeout::Default),
        ErrorKind::FileNotFound,
    );
}

// ------------------- 9.14 operations pending at once (blocking, in threads)

fn sem_142_two_pending_reads_complete_in_issue_order() {
    // Blocking reads in two threads, the second issued once the first is
    // surely waiting: successive writes complete them in that order. In
    // message-read mode, and in byte-read mode (where a read returns as soon
    // as some bytes are there).
    for message in [true, false] {
        let (s, c) = if message { msg_pair() } else { byte_pair() };
        let c = Arc::new(c);
        let first = pending_recv(&c, 16);
        first.assert_pending("nothing written yet");
        let second = pending_recv(&c, 16);
        second.assert_pending("nothing written yet");
        s.send_msg(b"one").unwrap();
        assert_eq!(first.finish().unwrap(), (b"one".to_vec(), true));
        second.assert_pending("the first write went to the first read");
        s.send_msg(b"two").unwrap();
        assert_eq!(second.finish().unwrap(), (b"two".to_vec(), true));
    }
}

fn sem_146_pending_read_and_write_on_one_duplex_end_complete_independently() {
    // The server end has a read waiting for the client and a write waiting
    // on the quota (out quota 16, nothing read yet): each completes when
    // its own condition is met, in either order.
    for write_first in [true, false] {
        let (s, c) = quota_pair(16, 1024);
        let s = Arc::new(s);
        let read = pending_recv(&s, 64);
        read.assert_pending("the client wrote nothing");
        let write = pending_send(&s, vec![7u8; 48]);
        write.assert_pending("48 bytes over a 16-byte quota, nothing read");
        read.assert_pending_now("a pending write does not complete a read");
        if write_first {
            assert_eq!(read_n(&c, 48), vec![7u8; 48]);
            assert_eq!(write.finish().unwrap(), 48);
            read.assert_pending("the client still wrote nothing");
            c.send_msg(b"up").unwrap();
            assert_eq!(read.finish().unwrap(), (b"up".to_vec(), true));
        } else {
            c.send_msg(b"up").unwrap();
            assert_eq!(read.finish().unwrap(), (b"up".to_vec(), true));
            write.assert_pending("the client still read nothing");
            assert_eq!(read_n(&c, 48), vec![7u8; 48]);
            assert_eq!(write.finish().unwrap(), 48);
        }
    }
}

common::tests! {
    tests: [
        sem_124_transact_needs_message_type_and_message_read_mode,
        sem_125_transact_with_unread_data_is_pipe_busy_and_writes_nothing,
        sem_126_transact_sends_one_message_and_returns_the_next_reply,
        sem_127_long_transact_reply_gives_more_data_and_the_rest_is_readable,
        sem_128_transact_ignores_the_quota_behind_a_pending_write,
        sem_129_only_a_reply_completes_a_transact_even_an_empty_one,
        sem_130_either_end_transacts_and_a_transact_can_be_the_reply,
        sem_132_call_opens_transacts_and_closes,
        sem_133_call_with_short_buffer_truncates_the_reply,
        sem_134_call_waits_for_a_busy_pipe_according_to_its_timeout,
        sem_135_call_on_byte_pipe_or_missing_name_fails,
        sem_142_two_pending_reads_complete_in_issue_order,
        sem_146_pending_read_and_write_on_one_duplex_end_complete_independently,
    ],
    children: [],
}
