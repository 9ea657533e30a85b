//! Spec 9.12: flush (SEM-120..123).

use crate::common;

use super::support::*;
use common::{pattern, within};
use shmpipe::named::{ClientOptions, Direction};
use shmpipe::ErrorKind;
use std::sync::Arc;

// -------------------------------------------------------------- 9.12 flush

fn sem_120_flush_returns_at_once_when_everything_was_read() {
    let (s, c) = byte_pair();
    s.send_msg(b"0123456789").unwrap();
    c.send_msg(b"0123456789").unwrap();
    assert_eq!(read_n(&c, 10).len(), 10);
    assert_eq!(read_n(&s, 10).len(), 10);
    let r = within("flush with nothing unread", move || {
        [s.flush_buffers(), c.flush_buffers()]
    });
    for r in r {
        r.unwrap();
    }
    // And with nothing ever written.
    let (s, c) = byte_pair();
    within("flush of a fresh pipe", move || {
        s.flush_buffers().unwrap();
        c.flush_buffers().unwrap();
    });
}

fn sem_120_flush_waits_until_the_peer_read_every_byte() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let c = Arc::new(c);
    // Server end.
    s.send_msg(&[1; 100]).unwrap();
    let f = pending_flush(&s);
    f.assert_pending("nothing read");
    read_n(&*c, 99);
    f.assert_pending("one byte unread");
    read_n(&*c, 1);
    f.finish().unwrap();
    // Client end.
    c.send_msg(&[2; 100]).unwrap();
    let f = pending_flush(&c);
    f.assert_pending("nothing read");
    read_n(&*s, 99);
    f.assert_pending("one byte unread");
    read_n(&*s, 1);
    f.finish().unwrap();
}

fn sem_120_flush_waits_for_the_bytes_of_pending_writes() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let w = pending_send(&c, pattern(3024, 120));
    await_total(&s, 3024);
    let f = pending_flush(&c);
    f.assert_pending("nothing read");
    read_n(&s, 3023);
    assert_eq!(w.finish().unwrap(), 3024);
    f.assert_pending("one byte of the pending write unread");
    read_n(&s, 1);
    f.finish().unwrap();
}

fn sem_120_flush_waits_for_a_queued_empty_message() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    c.send_msg(&[]).unwrap();
    let f = pending_flush(&c);
    f.assert_pending("the empty message is unread");
    assert_eq!(recv_vec(&s, 16).unwrap(), (Vec::new(), true));
    f.finish().unwrap();
}

fn sem_122_flush_without_write_data_access_is_access_denied() {
    let name = unique("flush-access");
    let s = defaults().create(&name).unwrap();
    let c = ClientOptions::new().write(false).open(&name).unwrap();
    assert_kind(c.flush_buffers(), ErrorKind::AccessDenied);
    drop((s, c));

    let name = unique("flush-inbound");
    let mut o = defaults();
    o.access(Direction::Inbound);
    let s = o.create(&name).unwrap();
    let _c = ClientOptions::new().read(false).open(&name).unwrap();
    assert_kind(s.flush_buffers(), ErrorKind::AccessDenied);
}

/// SEM-123, with shmpipe's deliberate difference (issue 9): a flush after
/// the peer closed returns at once, `Ok` only if the peer had read
/// everything, `BrokenPipe` if bytes were left unread.
fn sem_123_flush_after_peer_closed_returns_at_once_and_ok_only_if_all_was_read() {
    let (s, c) = byte_pair();
    c.send_msg(&[1; 100]).unwrap();
    drop(s);
    let r = within("client flush after the server closed", move || {
        c.flush_buffers()
    });
    assert_kind(r, ErrorKind::BrokenPipe);

    let (s, c) = byte_pair();
    s.send_msg(&[1; 100]).unwrap();
    drop(c);
    let r = within("server flush after the client closed", move || {
        s.flush_buffers()
    });
    assert_kind(r, ErrorKind::BrokenPipe);

    let (s, c) = byte_pair();
    c.send_msg(&[1; 100]).unwrap();
    assert_eq!(s.recv_msg(&mut [0; 100]).unwrap().len, 100);
    drop(s);
    within(
        "client flush after the server read all and closed",
        move || c.flush_buffers(),
    )
    .unwrap();
}

common::tests! {
    tests: [
        sem_120_flush_returns_at_once_when_everything_was_read,
        sem_120_flush_waits_until_the_peer_read_every_byte,
        sem_120_flush_waits_for_the_bytes_of_pending_writes,
        sem_120_flush_waits_for_a_queued_empty_message,
        sem_122_flush_without_write_data_access_is_access_denied,
        sem_123_flush_after_peer_closed_returns_at_once_and_ok_only_if_all_was_read,
    ],
    children: [],
}
