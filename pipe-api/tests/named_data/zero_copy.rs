//! Zero-copy operations (`send_msg_with`, `recv_msg_with`, `read_with`)
//! across processes: message framing both ways, a zero-copy write pending
//! on the quota in another process (spec 5.2), and a zero-copy writer
//! killed while its write pends (spec 7.5: the unread rest vanishes),
//! messages larger than one slice refused on both sides, and a cancelled
//! zero-copy write withdrawn for a reader in another process (spec 7.4).
//! Kills inside the fill closure and a hostile writer changing bytes under
//! a reader's slice are in `anonymous_xproc/zero_copy.rs`.

use crate::common;

use super::support::*;
use common::named::{hear, say, Kid};
use common::{
    assert_child_ok, child_done, pattern, wait_child, wait_until_process_blocked, within,
};
use shmpipe::named::{ClientOptions, NamedPipeServer};
use shmpipe::{ErrorKind, ReadMode};

/// Message sizes: empty, inline in the header line (≤ 48), just past it,
/// the quota, and well over the quota (it pends until read) but one slice.
const SIZES: [usize; 6] = [0, 1, 48, 49, 1024, 20_000];

/// Waits until the client connected and `n` bytes are queued for `s`.
fn queued(s: &NamedPipeServer, n: u64) {
    let seen = wait_until(common::HANG, || {
        s.peek(None).is_ok_and(|p| p.total_available == n)
    });
    assert!(seen, "{n} bytes never arrived");
}

fn child_zc_framing() {
    let c = ClientOptions::new().open(&child_pipe()).unwrap();
    c.set_read_mode(ReadMode::Message).unwrap();
    for (k, &len) in SIZES.iter().enumerate() {
        let want = pattern(len, k as u8);
        let n = c.send_msg_with(len, |buf| {
            buf.copy_from_slice(&want);
            buf.len()
        });
        assert_eq!(n.unwrap(), len);
    }
    // The server's replies, one message each, in order.
    for (k, &len) in SIZES.iter().enumerate() {
        let got = c.recv_msg_with(|m| m.to_vec()).unwrap();
        assert_eq!(got, pattern(len, 100 + k as u8), "reply {k}");
    }
    child_done();
}

fn zero_copy_messages_stay_whole_across_processes() {
    let name = unique("zc-framing");
    let s = message_opts().create(&name).unwrap();
    let child = spawn_child("child_zc_framing", &name);
    let s = within("the child's messages", move || {
        // Ok, or PipeConnected if the child was quicker.
        if let Err(e) = s.connect() {
            assert_eq!(kind(&e), Some(ErrorKind::PipeConnected), "{e:?}");
        }
        for (k, &len) in SIZES.iter().enumerate() {
            let got = s.recv_msg_with(|m| m.to_vec()).unwrap();
            assert_eq!(got, pattern(len, k as u8), "message {k}");
        }
        for (k, &len) in SIZES.iter().enumerate() {
            let reply = pattern(len, 100 + k as u8);
            s.send_msg_with(len, |buf| buf.copy_from_slice(&reply))
                .unwrap();
        }
        s
    });
    let (status, stderr) = wait_child(child);
    assert_child_ok(status, &stderr);
    drop(s);
}

fn child_zc_pending_writer() {
    let c = ClientOptions::new().open(&child_pipe()).unwrap();
    // 3024 bytes, quota 1024: pends until 2000 of them were read.
    let w = c.send_msg_with(3024, |buf| buf.copy_from_slice(&pattern(3024, 7)));
    w.unwrap();
    child_done();
}

fn zero_copy_write_in_another_process_completes_by_the_quota() {
    let name = unique("zc-quota");
    let s = defaults().create(&name).unwrap();
    let child = spawn_child("child_zc_pending_writer", &name);
    let pid = child.id();
    queued(&s, 3024);
    wait_until_process_blocked(pid);
    let want = pattern(3024, 7);
    let mut got = Vec::new();
    let take = |got: &mut Vec<u8>, n: usize| {
        s.read_with(|b| {
            let n = n.min(b.len());
            got.extend_from_slice(&b[..n]);
            n
        })
        .unwrap()
    };
    assert_eq!(take(&mut got, 1999), 1999);
    // 1025 bytes still ahead of the write's end: it still pends (a
    // completed writer exits, and the wait below would find it gone).
    wait_until_process_blocked(pid);
    assert_eq!(take(&mut got, 1), 1);
    let (status, stderr) = wait_child(child);
    assert_child_ok(status, &stderr);
    while got.len() < want.len() {
        take(&mut got, usize::MAX);
    }
    assert_eq!(got, want);
}

fn child_zc_killed_pending_writer() {
    let c = ClientOptions::new().open(&child_pipe()).unwrap();
    let _ = c.send_msg_with(3024, |buf| buf.copy_from_slice(&pattern(3024, 9)));
    std::process::exit(3);
}

fn zero_copy_writer_killed_while_pending_loses_the_unread_rest() {
    let name = unique("zc-killed");
    let s = defaults().create(&name).unwrap();
    let child = spawn_child("child_zc_killed_pending_writer", &name);
    queued(&s, 3024);
    wait_until_process_blocked(child.id());
    let first = s.read_with(|b| b.len().min(100)).unwrap();
    assert_eq!(first, 100);
    kill(child);
    // What was read stays read; the unread rest went with its writer.
    let (_s, r) = within("read after the kill", move || {
        let r = s.read_with(|b| b.len());
        (s, r)
    });
    match r {
        Ok(n) => panic!("read {n} bytes of a write whose process was killed"),
        Err(e) => assert_eq!(kind(&e), Some(ErrorKind::BrokenPipe), "{e:?}"),
    }
}

// ------------------------------------------------- larger than one slice

/// Over one zero-copy slice of the default ring (64 KiB: 32704 bytes).
const BIG: usize = 40_000;

fn child_zc_big_writer() {
    let c = ClientOptions::new().open(&child_pipe()).unwrap();
    // Refused before the fill runs: nothing is written.
    let e = c
        .send_msg_with(BIG, |_| panic!("larger than one slice"))
        .unwrap_err();
    assert_eq!(kind(&e), Some(ErrorKind::InvalidParameter));
    // The copy API sends it, in fragments.
    assert_eq!(c.send_msg(&pattern(BIG, 5)).unwrap(), BIG);
    child_done();
}

fn zero_copy_refuses_messages_larger_than_a_slice_both_ways() {
    let name = unique("zc-big");
    let s = message_opts().create(&name).unwrap();
    let child = spawn_child("child_zc_big_writer", &name);
    let s = within("the big message", move || {
        if let Err(e) = s.connect() {
            assert_eq!(kind(&e), Some(ErrorKind::PipeConnected), "{e:?}");
        }
        // Refused whole, nothing consumed, whichever part has arrived.
        while s.peek(None).unwrap().total_available == 0 {
            std::thread::yield_now();
        }
        let e = s.recv_msg_with(|_| panic!("not one slice")).unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::InvalidParameter));
        let mut buf = vec![0u8; BIG];
        let m = s.recv_msg(&mut buf).unwrap();
        assert_eq!((m.len, m.complete), (BIG, true));
        assert_eq!(buf, pattern(BIG, 5));
        s
    });
    let (status, stderr) = wait_child(child);
    assert_child_ok(status, &stderr);
    drop(s);
}

// ---------------------------------------------------------- cancellation

fn child_zc_reader_after_go() {
    let c = ClientOptions::new().open(&child_pipe()).unwrap();
    c.set_read_mode(ReadMode::Message).unwrap();
    say("open");
    assert_eq!(hear().as_deref(), Some("go"));
    // The cancelled write was withdrawn whole: the next message is first.
    let m = c.recv_msg_with(|m| m.to_vec()).unwrap();
    assert_eq!(m, b"after");
    say("got after");
    child_done();
}

fn zero_copy_write_cancelled_on_the_quota_is_withdrawn_for_the_reader_process() {
    let name = unique("zc-cancel");
    let s = message_opts().create(&name).unwrap();
    let mut kid = Kid::spawn("child_zc_reader_after_go", &[(PIPE_ENV, name.clone())]);
    kid.expect("open");
    let s = std::sync::Arc::new(s);
    let canceller = s.canceller();
    let w = {
        let s = std::sync::Arc::clone(&s);
        common::Pending::start("zero-copy write over the quota", move || {
            s.send_msg_with(3024, |b| b.fill(0xAB))
        })
    };
    w.assert_pending("3024 bytes unread, quota 1024");
    assert!(canceller.pending() > 0);
    canceller.cancel().unwrap();
    assert_kind(w.finish(), ErrorKind::OperationAborted);
    // Completes at once: the withdrawn bytes no longer count against the
    // quota (a write left in place would hold it back for good).
    let s = within("the write after the withdrawn one", move || {
        s.send_msg_with(5, |b| b.copy_from_slice(b"after")).unwrap();
        s
    });
    kid.tell("go");
    kid.expect("got after");
    kid.finish();
    drop(s);
}

common::tests! {
    tests: [
        zero_copy_messages_stay_whole_across_processes,
        zero_copy_write_in_another_process_completes_by_the_quota,
        zero_copy_writer_killed_while_pending_loses_the_unread_rest,
        zero_copy_refuses_messages_larger_than_a_slice_both_ways,
        zero_copy_write_cancelled_on_the_quota_is_withdrawn_for_the_reader_process,
    ],
    children: [
        child_zc_framing,
        child_zc_pending_writer,
        child_zc_killed_pending_writer,
        child_zc_big_writer,
        child_zc_reader_after_go,
    ],
}
