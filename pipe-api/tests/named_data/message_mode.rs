//! Spec 9.7: message mode (SEM-068..081).

use crate::common;

use super::support::*;
use common::{pattern, within, HANG};
use shmpipe::named::MsgRead;
use shmpipe::{ErrorKind, PipeType, ReadMode, WaitMode};
use std::io::Read;
use std::sync::Arc;

// ------------------------------------------------------- 9.7 message mode

fn sem_068_message_read_returns_one_message_per_read() {
    let (s, c) = msg_pair();
    c.send_msg(b"first message").unwrap();
    c.send_msg(b"second").unwrap();
    assert_eq!(
        recv_vec(&s, 256).unwrap(),
        (b"first message".to_vec(), true)
    );
    assert_eq!(recv_vec(&s, 256).unwrap(), (b"second".to_vec(), true));
}

fn sem_069_short_message_reads_give_more_data_then_the_rest() {
    let (s, c) = msg_pair();
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"0123".to_vec(), false));
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"4567".to_vec(), false));
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"89".to_vec(), true));
}

fn sem_070_partly_read_message_is_continued_by_another_thread() {
    // Another thread here, through a duplicate handle (client) and a shared
    // end (server); another process in named_xproc/handoff.rs.
    let (s, c) = msg_pair();
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"0123".to_vec(), false));
    let dup = Arc::new(c.try_clone().unwrap());
    let rest = pending_recv(&dup, 32).finish().unwrap();
    assert_eq!(rest, (b"456789".to_vec(), true));

    c.send_msg(b"abcdefghij").unwrap();
    let s = Arc::new(s);
    assert_eq!(recv_vec(&*s, 4).unwrap(), (b"abcd".to_vec(), false));
    let rest = pending_recv(&s, 32).finish().unwrap();
    assert_eq!(rest, (b"efghij".to_vec(), true));
}

fn sem_071_byte_read_end_on_message_pipe_reads_across_messages() {
    let (s, c) = pair_with(&message_opts());
    assert!(!c.state().unwrap().message_read);
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(
        recv_vec(&c, 32).unwrap(),
        (b"hello world0123456789".to_vec(), true)
    );
}

fn sem_072_byte_read_end_on_message_pipe_never_gets_more_data() {
    let (s, c) = pair_with(&message_opts());
    s.send_msg(b"0123456789").unwrap();
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"0123".to_vec(), true));
    let mut buf = [0u8; 4];
    assert_eq!((&c).read(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"4567");
    assert_eq!(recv_vec(&c, 4).unwrap(), (b"89".to_vec(), true));
}

fn sem_073_zero_length_write_on_message_pipe_is_an_empty_message() {
    let (s, c) = msg_pair();
    assert_eq!(c.send_msg(&[]).unwrap(), 0);
    let (s, r) = within("read the empty message", move || {
        let r = recv_vec(&s, 32);
        (s, r)
    });
    assert_eq!(r.unwrap(), (Vec::new(), true));
    // Exactly one message was queued.
    s.set_nonblocking(true).unwrap();
    assert_kind(recv_vec(&s, 32), ErrorKind::NoData);
}

fn sem_074_empty_message_completes_exactly_one_of_two_pending_reads() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let first = pending_recv(&c, 32);
    first.assert_pending("nothing written yet");
    let second = pending_recv(&c, 32);
    second.assert_pending("nothing written yet");
    s.send_msg(&[]).unwrap();
    // Which thread's read was issued first is not observable from here (a
    // loaded machine may start them late), so accept either as the one the
    // empty message completes.
    let mut done = None;
    assert!(
        wait_until(HANG, || {
            done = first
                .try_finish()
                .map(|r| (r, 0))
                .or_else(|| second.try_finish().map(|r| (r, 1)));
            done.is_some()
        }),
        "the empty message completed no read"
    );
    let (r, which) = done.unwrap();
    assert_eq!(r.unwrap(), (Vec::new(), true));
    let other = if which == 0 { second } else { first };
    other.assert_pending("an empty message completes only one read");
    s.send_msg(b"next").unwrap();
    assert_eq!(other.finish().unwrap(), (b"next".to_vec(), true));
}

fn sem_075_empty_message_behind_data_is_read_separately_in_both_read_modes() {
    let (s, c) = msg_pair();
    for mode in [ReadMode::Message, ReadMode::Byte] {
        c.set_read_mode(mode).unwrap();
        s.send_msg(b"abc").unwrap();
        s.send_msg(&[]).unwrap();
        s.send_msg(b"def").unwrap();
        assert_eq!(
            recv_vec(&c, 32).unwrap(),
            (b"abc".to_vec(), true),
            "{mode:?}"
        );
        assert_eq!(recv_vec(&c, 32).unwrap(), (Vec::new(), true), "{mode:?}");
        assert_eq!(
            recv_vec(&c, 32).unwrap(),
            (b"def".to_vec(), true),
            "{mode:?}"
        );
    }
}

fn sem_076_zero_length_message_read_gives_more_data_and_consumes_nothing() {
    let (s, c) = msg_pair();
    s.send_msg(b"0123456789").unwrap();
    let (c, m) = within("zero-length message read", move || {
        let m = c.recv_msg(&mut []);
        (c, m)
    });
    assert_eq!(
        m.unwrap(),
        MsgRead {
            len: 0,
            complete: false
        }
    );
    let p = c.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (10, 10));
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"0123456789".to_vec(), true));
}

fn sem_077_message_larger_than_the_quota_arrives_intact() {
    let (s, c) = msg_pair();
    let s = Arc::new(s);
    let data = pattern(1024 + 2000, 77);
    let w = pending_send(&s, data.clone());
    let (got, complete) = recv_vec(&c, 8192).unwrap();
    assert!(complete);
    assert_eq!(got, data);
    assert_eq!(w.finish().unwrap(), data.len());
}

fn sem_078_message_read_mode_on_byte_pipe_is_invalid_parameter() {
    let (s, c) = byte_pair();
    assert_kind(
        s.set_read_mode(ReadMode::Message),
        ErrorKind::InvalidParameter,
    );
    assert_kind(
        c.set_read_mode(ReadMode::Message),
        ErrorKind::InvalidParameter,
    );
    assert_kind(
        c.set_state(Some(ReadMode::Message), Some(WaitMode::Nonblocking)),
        ErrorKind::InvalidParameter,
    );
    for st in [s.state().unwrap(), c.state().unwrap()] {
        assert!(!st.message_read);
        assert!(!st.nonblocking, "a failed set_state changed nothing");
    }
}

fn sem_079_message_type_without_message_read_option_starts_in_byte_read_mode() {
    let mut o = defaults();
    o.pipe_type(PipeType::Message);
    let (s, c) = pair_with(&o);
    assert!(!s.state().unwrap().message_read);
    assert_eq!(s.info().unwrap().pipe_type, PipeType::Message);
    // And it reads like a byte-read end: across message boundaries.
    c.send_msg(b"ab").unwrap();
    c.send_msg(b"cd").unwrap();
    assert_eq!(recv_vec(&s, 32).unwrap(), (b"abcd".to_vec(), true));
}

fn sem_080_client_switches_read_mode_and_each_read_follows_it() {
    let (s, c) = pair_with(&message_opts());
    for m in ["one", "two", "three", "four", "five"] {
        s.send_msg(m.as_bytes()).unwrap();
    }
    assert!(!c.state().unwrap().message_read);
    assert_eq!(recv_vec(&c, 5).unwrap(), (b"onetw".to_vec(), true));
    c.set_read_mode(ReadMode::Message).unwrap();
    assert!(c.state().unwrap().message_read);
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"o".to_vec(), true));
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"three".to_vec(), true));
    c.set_read_mode(ReadMode::Byte).unwrap();
    assert!(!c.state().unwrap().message_read);
    assert_eq!(recv_vec(&c, 32).unwrap(), (b"fourfive".to_vec(), true));
}

/// Message `seq` of writer `w` in SEM-081: a header naming both, then a
/// pattern; lengths from 3 to 3002 bytes (many above the quota).
fn numbered_message(w: u8, seq: u16) -> Vec<u8> {
    let len = 3 + (usize::from(seq) * 397 + usize::from(w) * 131) % 3000;
    let mut m = vec![w];
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend(pattern(
        len - 3,
        w.wrapping_mul(100).wrapping_add(seq as u8),
    ));
    m
}

fn sem_081_messages_of_concurrent_writers_arrive_whole_and_separate() {
    // Two threads with duplicate handles of the client end; two processes
    // in named_xproc/handoff.rs.
    const PER_WRITER: u16 = 40;
    let (s, c) = msg_pair();
    within("two message writers", move || {
        let c2 = c.try_clone().unwrap();
        std::thread::scope(|sc| {
            for (w, end) in [(0u8, &c), (1u8, &c2)] {
                sc.spawn(move || {
                    for seq in 0..PER_WRITER {
                        let m = numbered_message(w, seq);
                        assert_eq!(end.send_msg(&m).unwrap(), m.len());
                    }
                });
            }
            let mut next = [0u16; 2];
            for _ in 0..2 * PER_WRITER {
                let (m, complete) = recv_vec(&s, 4096).unwrap();
                assert!(complete, "a message was split");
                let w = m[0];
                let seq = u16::from_le_bytes([m[1], m[2]]);
                assert_eq!(seq, next[usize::from(w)], "writer {w}: lost or reordered");
                assert_eq!(m, numbered_message(w, seq), "message mixed with another");
                next[usize::from(w)] += 1;
            }
        });
    });
}

common::tests! {
    tests: [
        sem_068_message_read_returns_one_message_per_read,
        sem_069_short_message_reads_give_more_data_then_the_rest,
        sem_070_partly_read_message_is_continued_by_another_thread,
        sem_071_byte_read_end_on_message_pipe_reads_across_messages,
        sem_072_byte_read_end_on_message_pipe_never_gets_more_data,
        sem_073_zero_length_write_on_message_pipe_is_an_empty_message,
        sem_074_empty_message_completes_exactly_one_of_two_pending_reads,
        sem_075_empty_message_behind_data_is_read_separately_in_both_read_modes,
        sem_076_zero_length_message_read_gives_more_data_and_consumes_nothing,
        sem_077_message_larger_than_the_quota_arrives_intact,
        sem_078_message_read_mode_on_byte_pipe_is_invalid_parameter,
        sem_079_message_type_without_message_read_option_starts_in_byte_read_mode,
        sem_080_client_switches_read_mode_and_each_read_follows_it,
        sem_081_messages_of_concurrent_writers_arrive_whole_and_separate,
    ],
    children: [],
}
