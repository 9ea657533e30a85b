//! Spec 9.6: byte-mode transfer (SEM-059..067).

use crate::common;

use super::support::*;
use common::within;
use shmpipe::named::MsgRead;
use shmpipe::ErrorKind;
use std::io::Read;
use std::sync::Arc;

// ------------------------------------------------- 9.6 byte-mode transfer

fn sem_059_duplex_byte_pipe_carries_both_directions_independently() {
    let (s, c) = byte_pair();
    assert_eq!(s.send_msg(b"from the server").unwrap(), 15);
    assert_eq!(c.send_msg(b"from the client!").unwrap(), 16);
    // Each end sees only what the other end wrote.
    assert_eq!(total(&c), 15);
    assert_eq!(total(&s), 16);
    let mut buf = [0u8; 64];
    let n = (&c).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the server");
    // Draining one direction left the other untouched.
    assert_eq!(total(&s), 16);
    let n = (&s).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the client!");
    assert_eq!(total(&c), 0);
    assert_eq!(total(&s), 0);
}

fn sem_060_blocking_read_returns_as_soon_as_some_bytes_are_there() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let r = pending_recv(&c, 100);
    r.assert_pending("nothing was written yet");
    s.send_msg(&[7u8; 10]).unwrap();
    let (data, _) = r.finish().unwrap();
    assert_eq!(data, vec![7u8; 10]);
}

fn sem_061_byte_read_joins_two_writes() {
    let (s, c) = byte_pair();
    s.send_msg(b"hello world").unwrap();
    s.send_msg(b"0123456789").unwrap();
    let (data, complete) = recv_vec(&c, 32).unwrap();
    assert_eq!(data, b"hello world0123456789");
    assert!(complete);
}

fn sem_062_short_byte_read_leaves_the_rest_queued() {
    let (s, c) = byte_pair();
    s.send_msg(b"0123456789").unwrap();
    let (data, complete) = recv_vec(&c, 4).unwrap();
    assert_eq!(data, b"0123");
    assert!(complete, "byte reads never report MoreData");
    assert_eq!(total(&c), 6);
    assert_eq!(recv_vec(&c, 32).unwrap().0, b"456789");
}

fn sem_063_zero_length_write_on_byte_pipe_queues_nothing() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let r = pending_recv(&c, 16);
    r.assert_pending("nothing written yet");
    assert_eq!(s.send_msg(&[]).unwrap(), 0);
    r.assert_pending("a zero-length write on a byte pipe completes no read");
    assert_eq!(total(&*c), 0);
    s.send_msg(b"x").unwrap();
    assert_eq!(r.finish().unwrap().0, b"x");
    // Nothing else was queued by the empty write.
    c.set_nonblocking(true).unwrap();
    assert_kind(recv_vec(&*c, 16), ErrorKind::NoData);
}

fn sem_064_zero_length_byte_read_returns_at_once_and_consumes_nothing() {
    let (s, c) = byte_pair();
    s.send_msg(b"0123456789").unwrap();
    let (c, m) = within("zero-length read", move || {
        let m = c.recv_msg(&mut []);
        (c, m)
    });
    assert_eq!(
        m.unwrap(),
        MsgRead {
            len: 0,
            complete: true
        }
    );
    assert_eq!(total(&c), 10);
    assert_eq!(recv_vec(&c, 32).unwrap().0, b"0123456789");
}

fn sem_066_data_calls_on_a_never_connected_server_end_fail_with_pipe_listening() {
    let s = defaults().create(&unique("listening")).unwrap();
    assert!(!s.state().unwrap().nonblocking);
    let (w, r, rr) = within("read/write on a listening end", move || {
        let w = s.send_msg(b"x");
        let r = s.recv_msg(&mut [0u8; 8]);
        let rr = (&s).read(&mut [0u8; 8]);
        (w, r, rr)
    });
    assert_kind(w, ErrorKind::PipeListening);
    assert_kind(r, ErrorKind::PipeListening);
    assert_kind(rr, ErrorKind::PipeListening);
}

/// Asserts that `stream` consists of whole `block`-byte runs of one byte
/// value each, exactly the values in `want`.
fn assert_blocks(stream: &[u8], block: usize, mut want: Vec<u8>) {
    assert_eq!(stream.len(), block * want.len());
    let mut got: Vec<u8> = stream
        .chunks(block)
        .enumerate()
        .map(|(i, b)| {
            assert!(
                b.iter().all(|&x| x == b[0]),
                "block {i} is not contiguous: another write cut into it"
            );
            b[0]
        })
        .collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

fn sem_067_concurrent_writers_on_one_end_keep_blocks_contiguous() {
    // Two threads here (both directions); two processes on one client end
    // in named_xproc/handoff.rs.
    const BLOCK: usize = 100_000;
    const PER_WRITER: u8 = 3;
    let (s, c) = byte_pair();
    within("two writers, one reader", move || {
        let c2 = c.try_clone().unwrap();
        let want: Vec<u8> = (1..=2 * PER_WRITER).collect();
        // Client → server, through two handles of the client end.
        let stream = std::thread::scope(|sc| {
            for (w, end) in [(0u8, &c), (1u8, &c2)] {
                sc.spawn(move || {
                    for i in 0..PER_WRITER {
                        let v = 1 + w * PER_WRITER + i;
                        assert_eq!(end.send_msg(&vec![v; BLOCK]).unwrap(), BLOCK);
                    }
                });
            }
            read_n(&s, BLOCK * want.len())
        });
        assert_blocks(&stream, BLOCK, want.clone());
        // Server → client, the server end shared by two threads.
        let stream = std::thread::scope(|sc| {
            for w in 0..2u8 {
                let s = &s;
                sc.spawn(move || {
                    for i in 0..PER_WRITER {
                        let v = 1 + w * PER_WRITER + i;
                        assert_eq!(s.send_msg(&vec![v; BLOCK]).unwrap(), BLOCK);
                    }
                });
            }
            read_n(&c, BLOCK * want.len())
        });
        assert_blocks(&stream, BLOCK, want);
    });
}

common::tests! {
    tests: [
        sem_059_duplex_byte_pipe_carries_both_directions_independently,
        sem_060_blocking_read_returns_as_soon_as_some_bytes_are_there,
        sem_061_byte_read_joins_two_writes,
        sem_062_short_byte_read_leaves_the_rest_queued,
        sem_063_zero_length_write_on_byte_pipe_queues_nothing,
        sem_064_zero_length_byte_read_returns_at_once_and_consumes_nothing,
        sem_066_data_calls_on_a_never_connected_server_end_fail_with_pipe_listening,
        sem_067_concurrent_writers_on_one_end_keep_blocks_contiguous,
    ],
    children: [],
}
