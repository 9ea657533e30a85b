//! Spec 9.11: disconnect and close, by the peer, by `disconnect`, and by
//! SIGKILL of a client process (SEM-106..118).

use crate::common;

use super::support::*;
use common::{pattern, within, HANG};
use shmpipe::named::{ClientOptions, Connected};
use shmpipe::{ErrorKind, ReadMode, WaitMode};
use std::io::{self, Read, Write};
use std::sync::Arc;

// ------------------------------------------------ 9.11 disconnect and close

fn sem_106_disconnect_discards_data_in_both_directions() {
    let name = unique("discard");
    let s = defaults().create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    s.send_msg(b"to client").unwrap();
    c.send_msg(b"to server").unwrap();
    assert_eq!((total(&s), total(&c)), (9, 9));
    s.disconnect().unwrap();
    let (s, c, r) = within("reads after disconnect", move || {
        let r = [recv_vec(&c, 32), recv_vec(&s, 32)];
        (s, c, r)
    });
    for r in r {
        assert_kind(r, ErrorKind::PipeNotConnected);
    }
    assert_kind(c.peek(None), ErrorKind::PipeNotConnected);
    // The instance serves a new client with nothing left of the old one.
    s.set_nonblocking(true).unwrap();
    assert_kind(s.connect(), ErrorKind::PipeListening);
    let c2 = ClientOptions::new().open(&name).unwrap();
    assert_eq!(s.connect().unwrap(), Connected::Already);
    assert_eq!((total(&s), total(&c2)), (0, 0));
    assert_kind(recv_vec(&c, 32), ErrorKind::PipeNotConnected);
}

fn sem_107_read_and_write_after_disconnect_are_pipe_not_connected() {
    let (s, c) = byte_pair();
    s.disconnect().unwrap();
    let r = within("data calls after disconnect", move || {
        [
            s.send_msg(b"x").map(drop),
            s.recv_msg(&mut [0; 8]).map(drop),
            c.send_msg(b"x").map(drop),
            c.recv_msg(&mut [0; 8]).map(drop),
            (&c).write(b"x").map(drop),
            (&c).read(&mut [0; 8]).map(drop),
        ]
    });
    for r in r {
        assert_kind(r, ErrorKind::PipeNotConnected);
    }
}

fn sem_108_second_disconnect_is_pipe_not_connected() {
    let (s, _c) = byte_pair();
    s.disconnect().unwrap();
    assert_kind(s.disconnect(), ErrorKind::PipeNotConnected);
}

fn sem_109_disconnect_ends_pending_writes_and_flush_with_pipe_not_connected() {
    let (s, c) = byte_pair();
    let s = Arc::new(s);
    let c = Arc::new(c);
    let ws = pending_send(&s, pattern(3024, 1));
    let wc = pending_send(&c, pattern(3024, 2));
    await_total(&*c, 3024);
    await_total(&*s, 3024);
    let fc = pending_flush(&c);
    ws.assert_pending("3024 bytes, quota 1024");
    wc.assert_pending_now("3024 bytes, quota 1024");
    fc.assert_pending_now("the server read nothing");
    s.disconnect().unwrap();
    assert_kind(ws.finish(), ErrorKind::PipeNotConnected);
    assert_kind(wc.finish(), ErrorKind::PipeNotConnected);
    assert_kind(fc.finish(), ErrorKind::PipeNotConnected);
}

fn sem_110_client_reads_queued_bytes_then_broken_pipe_after_server_closed() {
    let (s, c) = byte_pair();
    s.send_msg(b"twelve bytes").unwrap();
    drop(s);
    let (r1, r2, eof) = within("reads after the server closed", move || {
        let r1 = recv_vec(&c, 64);
        let r2 = recv_vec(&c, 64);
        let eof = (&c).read(&mut [0u8; 8]);
        (r1, r2, eof)
    });
    assert_eq!(r1.unwrap().0, b"twelve bytes");
    assert_kind(r2, ErrorKind::BrokenPipe);
    assert_eq!(eof.unwrap(), 0, "the Read adapter reports the end as Ok(0)");
}

fn sem_111_write_after_peer_closed_is_no_data() {
    let (s, c) = byte_pair();
    drop(c);
    assert_kind(s.send_msg(b"x"), ErrorKind::NoData);
    assert_kind((&s).write(b"x"), ErrorKind::NoData);

    let (s, c) = byte_pair();
    drop(s);
    assert_kind(c.send_msg(b"x"), ErrorKind::NoData);
    assert_kind((&c).write(b"x"), ErrorKind::NoData);
}

fn sem_112_blocked_read_fails_with_broken_pipe_when_peer_closes() {
    let (s, c) = byte_pair();
    let c = Arc::new(c);
    let r = pending_recv(&c, 16);
    r.assert_pending("nothing written");
    drop(s);
    assert_kind(r.finish(), ErrorKind::BrokenPipe);

    let (s, c) = msg_pair();
    let s = Arc::new(s);
    let r = pending_recv(&s, 16);
    r.assert_pending("nothing written");
    drop(c);
    assert_kind(r.finish(), ErrorKind::BrokenPipe);
}

fn sem_113_pending_write_and_flush_fail_with_broken_pipe_when_peer_closes() {
    // Client side: the server closes.
    let (s, c) = quota_pair(5000, 5000);
    let c = Arc::new(c);
    let w = pending_send(&c, pattern(7000, 1));
    await_total(&s, 7000);
    let f = pending_flush(&c);
    w.assert_pending("7000 bytes, quota 5000");
    f.assert_pending_now("nothing was read");
    drop(s);
    let client_side = (w.finish(), f.finish());
    // Server side: the client closes.
    let (s, c) = quota_pair(5000, 5000);
    let s = Arc::new(s);
    let w = pending_send(&s, pattern(7000, 2));
    await_total(&c, 7000);
    let f = pending_flush(&s);
    w.assert_pending("7000 bytes, quota 5000");
    f.assert_pending_now("nothing was read");
    drop(c);
    let server_side = (w.finish(), f.finish());
    let kinds = |(w, f): (io::Result<usize>, io::Result<()>)| {
        (w.map_err(|e| kind(&e)).map(drop), f.map_err(|e| kind(&e)))
    };
    let broken = Err(Some(ErrorKind::BrokenPipe));
    assert_eq!(
        [kinds(client_side), kinds(server_side)],
        [(broken, broken), (broken, broken)],
        "[(client write, client flush), (server write, server flush)]"
    );
}

fn sem_114_empty_message_before_close_is_read_then_broken_pipe() {
    let (s, c) = msg_pair();
    c.send_msg(&[]).unwrap();
    drop(c);
    let (first, second) = within("reads after the close", move || {
        (recv_vec(&s, 16), recv_vec(&s, 16))
    });
    assert_eq!(first.unwrap(), (Vec::new(), true));
    assert_kind(second, ErrorKind::BrokenPipe);
}

fn sem_115_get_and_set_state_work_after_peer_closed() {
    let (s, c) = msg_pair();
    drop(s);
    c.state().unwrap();
    c.set_state(Some(ReadMode::Byte), Some(WaitMode::Nonblocking))
        .unwrap();
    let st = c.state().unwrap();
    assert!(st.nonblocking && !st.message_read);

    let (s, c) = msg_pair();
    drop(c);
    s.state().unwrap();
    s.set_state(Some(ReadMode::Byte), Some(WaitMode::Nonblocking))
        .unwrap();
    let st = s.state().unwrap();
    assert!(st.nonblocking && !st.message_read);
}

const QUEUED: &[u8] = b"queued bytes";

fn child_sem_116_client() {
    let name = child_pipe();
    let c = ClientOptions::new().open(&name).unwrap();
    c.send_msg(QUEUED).unwrap();
    // Wait to be killed; this read ends only if the parent is gone.
    let _ = c.recv_msg(&mut [0u8; 16]);
    std::process::exit(3);
}

fn sem_116_sigkilled_client_looks_closed_to_the_server() {
    let name = unique("sigkill");
    let s = defaults().create(&name).unwrap();
    let child = spawn_child("child_sem_116_client", &name);
    let queued = wait_until(HANG, || {
        s.peek(None)
            .is_ok_and(|p| p.total_available == QUEUED.len() as u64)
    });
    kill(child);
    assert!(queued, "the child's bytes never arrived");
    let (s, r) = within("reads after the kill", move || {
        let r = [recv_vec(&s, 64), recv_vec(&s, 64)];
        (s, r)
    });
    let [data, end] = r;
    assert_eq!(data.unwrap().0, QUEUED);
    assert_kind(end, ErrorKind::BrokenPipe);
    // Like after a close: writes NoData, peek BrokenPipe, and the instance
    // is ClientGone (connect NoData) until disconnect.
    let after = [
        s.send_msg(b"x").map(drop),
        s.peek(None).map(drop),
        s.connect().map(drop),
    ]
    .map(|r| r.map_err(|e| kind(&e)));
    assert_eq!(
        after,
        [
            Err(Some(ErrorKind::NoData)),
            Err(Some(ErrorKind::BrokenPipe)),
            Err(Some(ErrorKind::NoData))
        ],
        "[write, peek, connect] after the client was killed"
    );
}

const FIRST_PART: &[u8] = b"first-part";

fn child_sem_117_writer() {
    let name = child_pipe();
    let c = ClientOptions::new().open(&name).unwrap();
    c.send_msg(FIRST_PART).unwrap();
    // Pends (3024 bytes, quota 1024) until the parent kills us.
    let _ = c.send_msg(&pattern(3024, 117));
    std::process::exit(3);
}

fn sem_117_killed_pending_writer_loses_the_unread_rest() {
    let name = unique("killed-writer");
    let s = defaults().create(&name).unwrap();
    let child = spawn_child("child_sem_117_writer", &name);
    let queued = wait_until(HANG, || {
        s.peek(None)
            .is_ok_and(|p| p.total_available == (FIRST_PART.len() + 3024) as u64)
    });
    if !queued {
        kill(child);
        panic!("the child's writes never arrived");
    }
    assert_eq!(read_n(&s, FIRST_PART.len()), FIRST_PART);
    assert_eq!(read_n(&s, 100), pattern(3024, 117)[..100]);
    kill(child);
    // What was read stays read; the unread 2924 bytes of the pending write
    // are gone with their writer.
    let (s, r) = within("read after the kill", move || {
        let r = recv_vec(&s, 4096);
        (s, r)
    });
    match r {
        Ok((data, _)) => panic!(
            "read {} bytes of a write whose process was killed",
            data.len()
        ),
        Err(e) => assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe), "{e:?}"),
    }
    assert_kind(s.peek(None), ErrorKind::BrokenPipe);
}

fn sem_118_no_client_attaches_to_an_instance_whose_server_end_closed() {
    let name = unique("server-gone");
    let s = defaults().create(&name).unwrap();
    let c = ClientOptions::new().open(&name).unwrap();
    drop(s);
    assert_kind(ClientOptions::new().open(&name), ErrorKind::PipeBusy);
    drop(c);
    assert_kind(ClientOptions::new().open(&name), ErrorKind::FileNotFound);
}

common::tests! {
    tests: [
        sem_106_disconnect_discards_data_in_both_directions,
        sem_107_read_and_write_after_disconnect_are_pipe_not_connected,
        sem_108_second_disconnect_is_pipe_not_connected,
        sem_109_disconnect_ends_pending_writes_and_flush_with_pipe_not_connected,
        sem_110_client_reads_queued_bytes_then_broken_pipe_after_server_closed,
        sem_111_write_after_peer_closed_is_no_data,
        sem_112_blocked_read_fails_with_broken_pipe_when_peer_closes,
        sem_113_pending_write_and_flush_fail_with_broken_pipe_when_peer_closes,
        sem_114_empty_message_before_close_is_read_then_broken_pipe,
        sem_115_get_and_set_state_work_after_peer_closed,
        sem_116_sigkilled_client_looks_closed_to_the_server,
        sem_117_killed_pending_writer_loses_the_unread_rest,
        sem_118_no_client_attaches_to_an_instance_whose_server_end_closed,
    ],
    children: [child_sem_116_client, child_sem_117_writer],
}
