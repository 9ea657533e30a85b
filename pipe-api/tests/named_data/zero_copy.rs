//! Zero-copy operations (`send_msg_with`, `recv_msg_with`, `read_with`)
//! across processes: message framing both ways, a zero-copy write pending
//! on the quota in another process (spec 5.2), and a zero-copy writer
//! killed while its write pends (spec 7.5: the unread rest vanishes).
//! Kills inside the fill closure and a hostile writer changing bytes under
//! a reader's slice are in `anonymous_xproc/zero_copy.rs`.

use crate::common;

use super::support::*;
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

common::tests! {
    tests: [
        zero_copy_messages_stay_whole_across_processes,
        zero_copy_write_in_another_process_completes_by_the_quota,
        zero_copy_writer_killed_while_pending_loses_the_unread_rest,
    ],
    children: [child_zc_framing, child_zc_pending_writer, child_zc_killed_pending_writer],
}
