//! Spec 9.9 and 9.10: the quota, blocking writes that pend on it, and
//! nonblocking mode (SEM-092..105).

use crate::common;

use super::support::*;
use common::{pattern, within};
use shmpipe::{ErrorKind, PipeType, ReadMode, WaitMode};
use std::io::{self, Write};
use std::sync::Arc;

// ----------------------------------------------- 9.9 quota, blocking writes

fn sem_092_write_pends_until_bytes_ahead_fit_the_quota() {
    let (s, c) = quota_pair(5000, 5000);
    let s = Arc::new(s);
    let first = pattern(3000, 1);
    let second = pattern(5000, 2);
    // 3000 <= 5000: completes with nobody reading.
    assert_eq!(pending_send(&s, first.clone()).finish().unwrap(), 3000);
    let w = pending_send(&s, second.clone());
    w.assert_pending("8000 bytes queued, quota 5000");
    assert_eq!(read_n(&c, 2999), first[..2999]);
    w.assert_pending("5001 bytes still ahead of its end");
    assert_eq!(read_n(&c, 1), first[2999..]);
    assert_eq!(w.finish().unwrap(), 5000);
    assert_eq!(read_n(&c, 5000), second);
}

fn sem_093_oversized_write_completes_when_the_rest_fits_the_quota() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let data = pattern(1024 + 2000, 93);
    let w = pending_send(&s, data.clone());
    w.assert_pending("3024 bytes queued, quota 1024");
    assert_eq!(read_n(&c, 1999), data[..1999]);
    w.assert_pending("1025 bytes of it still unread");
    assert_eq!(read_n(&c, 1), data[1999..2000]);
    assert_eq!(w.finish().unwrap(), data.len());
    assert_eq!(read_n(&c, 1024), data[2000..]);
}

fn sem_094_bytes_of_a_pending_write_are_peekable_and_readable() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let data = pattern(3024, 94);
    let w = pending_send(&s, data.clone());
    await_total(&c, 3024);
    w.assert_pending_now("3024 bytes queued, quota 1024");
    assert_eq!(read_n(&c, 100), data[..100]);
    w.assert_pending("2924 bytes still queued");
    assert_eq!(total(&c), 2924);
    assert_eq!(read_n(&c, 2924), data[100..]);
    assert_eq!(w.finish().unwrap(), 3024);
}

fn sem_095_pending_writes_complete_in_issue_order() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let a = pattern(2000, 1);
    let b = pattern(500, 2);
    let wa = pending_send(&s, a.clone());
    await_total(&c, 2000);
    let wb = pending_send(&s, b.clone());
    // The second pending write is queued too (spec 5.1, 5.2 worked
    // example): its bytes count as available while it waits.
    let both_queued = wait_until(QUICK, || total(&c) == 2500);
    wa.assert_pending_now("2000 bytes ahead of A's end, quota 1024");
    wb.assert_pending_now("B is behind A");
    // After 976 bytes: ahead(A) = 1024 completes A; ahead(B) = 1524 does not.
    assert_eq!(read_n(&c, 976), a[..976]);
    assert_eq!(wa.finish().unwrap(), 2000);
    wb.assert_pending("1524 bytes ahead of B's end");
    assert_eq!(read_n(&c, 500), a[976..1476]);
    assert_eq!(wb.finish().unwrap(), 500);
    let rest = read_n(&c, 1024);
    assert_eq!(rest[..524], a[1476..]);
    assert_eq!(rest[524..], b[..]);
    assert!(
        both_queued,
        "the bytes of the second pending write were not queued while the first was pending"
    );
}

fn sem_096_quota_per_direction_follows_out_and_in_sizes() {
    let (s, c) = quota_pair(5000, 6000);
    for info in [s.info().unwrap(), c.info().unwrap()] {
        assert_eq!((info.out_size, info.in_size), (5000, 6000));
    }
    let s = Arc::new(s);
    let c = Arc::new(c);
    // Server → client: 5000 bytes complete unread, one more pends.
    assert_eq!(pending_send(&s, vec![1; 5000]).finish().unwrap(), 5000);
    let w = pending_send(&s, vec![2]);
    w.assert_pending("5001 bytes queued towards the client, quota 5000");
    assert_eq!(read_n(&*c, 1), [1]);
    assert_eq!(w.finish().unwrap(), 1);
    // Client → server: 6000 complete unread, one more pends.
    assert_eq!(pending_send(&c, vec![3; 6000]).finish().unwrap(), 6000);
    let w = pending_send(&c, vec![4]);
    w.assert_pending("6001 bytes queued towards the server, quota 6000");
    assert_eq!(read_n(&*s, 1), [3]);
    assert_eq!(w.finish().unwrap(), 1);
}

fn sem_097_zero_length_write_completes_while_other_writes_pend_byte_pipe() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let big = pending_send(&c, pattern(2000, 97));
    await_total(&s, 2000);
    let zero = pending_send(&c, Vec::new());
    // It returns instead of going to sleep.
    assert!(
        !zero.settle(),
        "zero-length write waited behind a pending write"
    );
    big.assert_pending_now("2000 bytes queued, quota 1024");
    assert_eq!(zero.finish().unwrap(), 0);
    assert_eq!(total(&s), 2000);
    assert_eq!(read_n(&s, 2000), pattern(2000, 97));
    assert_eq!(big.finish().unwrap(), 2000);
}

fn sem_097_zero_length_write_completes_while_other_writes_pend_message_pipe() {
    let (s, c) = msg_pair();
    let c = Arc::new(c);
    let big = pending_send(&c, pattern(2000, 97));
    await_total(&s, 2000);
    let zero = pending_send(&c, Vec::new());
    // It returns instead of going to sleep.
    assert!(
        !zero.settle(),
        "zero-length write waited behind a pending write"
    );
    big.assert_pending_now("2000 bytes queued, quota 1024");
    assert_eq!(zero.finish().unwrap(), 0);
    let p = s.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (2000, 2000));
    assert_eq!(recv_vec(&s, 4096).unwrap(), (pattern(2000, 97), true));
    assert_eq!(big.finish().unwrap(), 2000);
    assert_eq!(recv_vec(&s, 4096).unwrap(), (Vec::new(), true));
}

fn sem_098_pending_one_byte_read_lets_quota_plus_one_write_complete() {
    let (s, c) = quota_pair(512, 512);
    let s = Arc::new(s);
    let c = Arc::new(c);
    let r = pending_recv(&c, 1);
    r.assert_pending("nothing written yet");
    let data = pattern(513, 98);
    // Completes without any further read: 1 byte to the read, 512 queued.
    assert_eq!(pending_send(&s, data.clone()).finish().unwrap(), 513);
    assert_eq!(r.finish().unwrap().0, data[..1]);
    assert_eq!(total(&*c), 512);
    assert_eq!(read_n(&*c, 512), data[1..]);
}

fn sem_099_pending_read_takes_its_share_of_a_write() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let c = Arc::new(c);
    let r = pending_recv(&c, 1000);
    r.assert_pending("nothing written yet");
    let data = pattern(4000, 99);
    let w = pending_send(&s, data.clone());
    assert_eq!(r.finish().unwrap(), (data[..1000].to_vec(), true));
    assert_eq!(total(&*c), 3000);
    // 3000 bytes queued against quota 1024: the write itself still waits.
    w.assert_pending("3000 bytes ahead, quota 1024");
    assert_eq!(read_n(&*c, 1976), data[1000..2976]);
    assert_eq!(w.finish().unwrap(), 4000);
    assert_eq!(read_n(&*c, 1024), data[2976..]);
}

// ---------------------------------------------------- 9.10 nonblocking mode

fn sem_100_nonblocking_read_on_empty_pipe_is_no_data() {
    let (s, c) = byte_pair();
    let (ms, mc) = msg_pair();
    let results = within("nonblocking reads", move || {
        let ends: [&dyn PipeEnd; 4] = [&s, &c, &ms, &mc];
        ends.map(|e| {
            e.put_state(None, Some(WaitMode::Nonblocking)).unwrap();
            recv_vec(e, 16)
        })
    });
    for r in results {
        assert_kind(r, ErrorKind::NoData);
    }
}

fn sem_101_nonblocking_write_of_exactly_the_quota_writes_everything() {
    for (s, c) in [byte_pair(), msg_pair()] {
        s.set_nonblocking(true).unwrap();
        c.set_nonblocking(true).unwrap();
        assert_eq!(s.send_msg(&pattern(1024, 1)).unwrap(), 1024);
        assert_eq!(c.send_msg(&pattern(1024, 2)).unwrap(), 1024);
        assert_eq!(total(&c), 1024);
        assert_eq!(total(&s), 1024);
        assert_eq!(recv_vec(&c, 2048).unwrap().0, pattern(1024, 1));
    }
}

fn sem_102_nonblocking_write_over_the_quota_writes_nothing() {
    for (s, c) in [byte_pair(), msg_pair()] {
        s.set_nonblocking(true).unwrap();
        c.set_nonblocking(true).unwrap();
        assert_eq!(s.send_msg(&pattern(1025, 1)).unwrap(), 0);
        assert_eq!(total(&c), 0);
        assert_kind(recv_vec(&c, 2048), ErrorKind::NoData);
        // The Write adapter says "would block" for it.
        let e = (&s).write(&pattern(1025, 1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}

fn sem_103_nonblocking_write_on_byte_pipe_feeds_a_pending_read_only() {
    let (s, c) = quota_pair(512, 512);
    let c = Arc::new(c);
    s.set_nonblocking(true).unwrap();
    let r = pending_recv(&c, 1);
    r.assert_pending("nothing written yet");
    let data = pattern(514, 103);
    // 514 - 1 = 513 > 512: only the pending read's byte is transferred.
    assert_eq!(s.send_msg(&data).unwrap(), 1);
    assert_eq!(r.finish().unwrap(), (data[..1].to_vec(), true));
    assert_eq!(total(&*c), 0, "nothing was queued");
}

fn sem_104_nonblocking_write_on_message_pipe_leaves_a_pending_read_alone() {
    let (s, c) = {
        let mut o = message_opts();
        o.quotas(512, 512);
        pair_with(&o)
    };
    c.set_read_mode(ReadMode::Message).unwrap();
    let c = Arc::new(c);
    s.set_nonblocking(true).unwrap();
    let r = pending_recv(&c, 1);
    r.assert_pending("nothing written yet");
    assert_eq!(s.send_msg(&pattern(514, 104)).unwrap(), 0);
    r.assert_pending("a message that does not fit is not written at all");
    assert_eq!(total(&*c), 0);
    // Control (spec 5.5): with the same read pending, 513 bytes fit (1 to
    // the read, 512 queued), which shows the read was there to be seen.
    let data = pattern(513, 105);
    assert_eq!(s.send_msg(&data).unwrap(), 513);
    assert_eq!(r.finish().unwrap(), (data[..1].to_vec(), false));
    let p = c.peek(None).unwrap();
    assert_eq!((p.total_available, p.left_in_message), (512, 512));
}

fn sem_105_set_state_switches_wait_and_read_modes() {
    let mut o = defaults();
    o.pipe_type(PipeType::Message);
    let (s, c) = pair_with(&o);
    let s = Arc::new(s);
    let c = Arc::new(c);
    fn flags(e: &dyn PipeEnd) -> (bool, bool) {
        let st = e.get_state().unwrap();
        (st.nonblocking, st.message_read)
    }
    for (e, peer) in [(&*s as &dyn PipeEnd, &*c as &dyn PipeEnd), (&*c, &*s)] {
        assert_eq!(flags(e), (false, false));
        e.put_state(Some(ReadMode::Message), Some(WaitMode::Nonblocking))
            .unwrap();
        assert_eq!(flags(e), (true, true));
        assert_kind(recv_vec(e, 8), ErrorKind::NoData);
        e.put_state(None, Some(WaitMode::Blocking)).unwrap();
        assert_eq!(flags(e), (false, true));
        peer.send(b"abc").unwrap();
        peer.send(b"def").unwrap();
        assert_eq!(recv_vec(e, 8).unwrap(), (b"abc".to_vec(), true));
        e.put_state(Some(ReadMode::Byte), None).unwrap();
        assert_eq!(flags(e), (false, false));
        assert_eq!(recv_vec(e, 8).unwrap(), (b"def".to_vec(), true));
    }
    // Blocking again: a read waits.
    let r = pending_recv(&c, 8);
    r.assert_pending("blocking read on an empty pipe");
    s.send_msg(b"late").unwrap();
    assert_eq!(r.finish().unwrap().0, b"late");
}

common::tests! {
    tests: [
        sem_092_write_pends_until_bytes_ahead_fit_the_quota,
        sem_093_oversized_write_completes_when_the_rest_fits_the_quota,
        sem_094_bytes_of_a_pending_write_are_peekable_and_readable,
        sem_095_pending_writes_complete_in_issue_order,
        sem_096_quota_per_direction_follows_out_and_in_sizes,
        sem_097_zero_length_write_completes_while_other_writes_pend_byte_pipe,
        sem_097_zero_length_write_completes_while_other_writes_pend_message_pipe,
        sem_098_pending_one_byte_read_lets_quota_plus_one_write_complete,
        sem_099_pending_read_takes_its_share_of_a_write,
        sem_100_nonblocking_read_on_empty_pipe_is_no_data,
        sem_101_nonblocking_write_of_exactly_the_quota_writes_everything,
        sem_102_nonblocking_write_over_the_quota_writes_nothing,
        sem_103_nonblocking_write_on_byte_pipe_feeds_a_pending_read_only,
        sem_104_nonblocking_write_on_message_pipe_leaves_a_pending_read_alone,
        sem_105_set_state_switches_wait_and_read_modes,
    ],
    children: [],
}
