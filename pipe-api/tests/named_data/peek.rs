//! Spec 9.8: peek (SEM-082..091).

use crate::common;

use super::support::*;
use common::{pattern, within};
use shmpipe::named::{ClientOptions, Direction};
use shmpipe::ErrorKind;
use std::sync::Arc;

// --------------------------------------------------------------- 9.8 peek

fn sem_082_peek_copies_without_consuming() {
    let (s, c) = byte_pair();
    s.send_msg(b"peek me").unwrap();
    for _ in 0..2 {
        let mut buf = [0u8; 32];
        let p = c.peek(Some(&mut buf)).unwrap();
        assert_eq!((p.copied, p.total_available), (7, 7));
        assert_eq!(&buf[..7], b"peek me");
    }
    assert_eq!(recv_vec(&c, 32).unwrap().0, b"peek me");
    assert_eq!(total(&c), 0);
}

fn sem_083_peek_counts_every_queued_message() {
    let (s, c) = msg_pair();
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(total(&c), 21);
    c.send_msg(b"hello world").unwrap();
    c.send_msg(b"0123456789").unwrap();
    assert_eq!(total(&s), 21);
}

fn sem_084_peek_on_message_pipe_stops_at_the_head_message() {
    let (s, c) = pair_with(&message_opts());
    // The client end is in byte-read mode; peek still respects messages.
    assert!(!c.state().unwrap().message_read);
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    c.send_msg(b"hello world").unwrap();
    c.send_msg(b"0123456789").unwrap();
    for p in [
        {
            let mut buf = [0u8; 32];
            let p = c.peek(Some(&mut buf)).unwrap();
            assert_eq!(&buf[..p.copied], b"hello world");
            p
        },
        {
            let mut buf = [0u8; 32];
            let p = s.peek(Some(&mut buf)).unwrap();
            assert_eq!(&buf[..p.copied], b"hello world");
            p
        },
    ] {
        assert_eq!(p.copied, 11);
        assert_eq!(p.total_available, 21);
        assert_eq!(p.left_in_message, 0);
    }
}

fn sem_085_short_peek_reports_bytes_left_in_message() {
    let (s, c) = msg_pair();
    s.send_msg(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    let p = c.peek(Some(&mut buf)).unwrap();
    assert_eq!(&buf, b"0123");
    assert_eq!((p.copied, p.total_available, p.left_in_message), (4, 10, 6));

    let (s, c) = byte_pair();
    s.send_msg(b"0123456789").unwrap();
    let mut buf = [0u8; 4];
    let p = c.peek(Some(&mut buf)).unwrap();
    assert_eq!(&buf, b"0123");
    assert_eq!((p.copied, p.total_available, p.left_in_message), (4, 10, 0));
}

fn sem_086_peek_without_buffer_reports_totals_and_head_message_length() {
    let (s, c) = msg_pair();
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    let p = c.peek(None).unwrap();
    assert_eq!(
        (p.copied, p.total_available, p.left_in_message),
        (0, 21, 11)
    );
    let p = c.peek(Some(&mut [])).unwrap();
    assert_eq!(
        (p.copied, p.total_available, p.left_in_message),
        (0, 21, 11)
    );

    let (s, c) = byte_pair();
    s.send_msg(b"hello world").unwrap();
    let p = c.peek(None).unwrap();
    assert_eq!((p.copied, p.total_available, p.left_in_message), (0, 11, 0));
}

fn sem_087_peek_on_empty_pipe_returns_at_once() {
    let (s, c) = msg_pair();
    let (b, m) = byte_pair();
    let results = within("peek on empty pipes", move || {
        let mut buf = [0u8; 16];
        [
            c.peek(None),
            c.peek(Some(&mut buf)),
            s.peek(Some(&mut buf)),
            b.peek(None),
            m.peek(Some(&mut buf)),
        ]
        .map(|r| r.map(|p| (p.copied, p.total_available, p.left_in_message)))
    });
    for r in results {
        assert_eq!(r.unwrap(), (0, 0, 0));
    }
}

fn sem_088_peek_on_unconnected_ends() {
    let name = unique("peek-states");
    let s = defaults().create(&name).unwrap();
    assert_kind(s.peek(None), ErrorKind::BadPipe);
    let c = ClientOptions::new().open(&name).unwrap();
    s.send_msg(b"x").unwrap();
    s.disconnect().unwrap();
    assert_kind(s.peek(None), ErrorKind::BadPipe);
    assert_kind(c.peek(None), ErrorKind::PipeNotConnected);
}

fn sem_089_peek_after_peer_closed_reports_queued_data_then_broken_pipe() {
    let (s, c) = byte_pair();
    c.send_msg(b"left behind!").unwrap();
    drop(c);
    let mut buf = [0u8; 32];
    let p = s.peek(Some(&mut buf)).unwrap();
    assert_eq!((p.copied, p.total_available), (12, 12));
    assert_eq!(read_n(&s, 12), b"left behind!");
    assert_kind(s.peek(None), ErrorKind::BrokenPipe);

    let (s, c) = msg_pair();
    s.send_msg(b"left behind!").unwrap();
    drop(s);
    let p = c.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (12, 12));
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"left behind!".to_vec(), true));
    assert_kind(c.peek(None), ErrorKind::BrokenPipe);
}

fn sem_090_peek_without_read_data_access_is_access_denied() {
    let name = unique("peek-access");
    let s = defaults().create(&name).unwrap();
    let c = ClientOptions::new().read(false).open(&name).unwrap();
    s.send_msg(b"x").unwrap();
    assert_kind(c.peek(None), ErrorKind::AccessDenied);

    let name = unique("peek-outbound");
    let mut o = defaults();
    o.access(Direction::Outbound);
    let s = o.create(&name).unwrap();
    let _c = ClientOptions::new().write(false).open(&name).unwrap();
    assert_kind(s.peek(None), ErrorKind::AccessDenied);
}

fn sem_091_peek_after_one_byte_of_a_large_message() {
    let (s, c) = msg_pair();
    let s = Arc::new(s);
    let data = pattern(5000, 91);
    let w = pending_send(&s, data.clone());
    assert_eq!(recv_vec(&c, 1).unwrap(), (data[..1].to_vec(), false));
    let p = c.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (4999, 4999));
    let mut buf = [0u8; 100];
    let p = c.peek(Some(&mut buf)).unwrap();
    assert_eq!(&buf[..], &data[1..101]);
    assert_eq!((p.copied, p.left_in_message), (100, 4899));
    assert_eq!(recv_vec(&c, 8192).unwrap(), (data[1..].to_vec(), true));
    assert_eq!(w.finish().unwrap(), 5000);
}

common::tests! {
    tests: [
        sem_082_peek_copies_without_consuming,
        sem_083_peek_counts_every_queued_message,
        sem_084_peek_on_message_pipe_stops_at_the_head_message,
        sem_085_short_peek_reports_bytes_left_in_message,
        sem_086_peek_without_buffer_reports_totals_and_head_message_length,
        sem_087_peek_on_empty_pipe_returns_at_once,
        sem_088_peek_on_unconnected_ends,
        sem_089_peek_after_peer_closed_reports_queued_data_then_broken_pipe,
        sem_090_peek_without_read_data_access_is_access_denied,
        sem_091_peek_after_one_byte_of_a_large_message,
    ],
    children: [],
}
