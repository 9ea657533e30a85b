//! Segment memfds are owner-only (mode 0600, issue 9 item 4), and that
//! mode does not stop an end handed on purpose to a process of another
//! uid (which reopens the memfd by path, and so needs the mode widened).
//! The named-pipe case (a client of another uid) is `named_xproc`'s
//! SEM-149 test; opening another user's segment through `/proc` is in
//! `attacks`.

mod common;

use common::named::{become_nobody, child_done, env, is_child, say, Kid};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

const ADDR_ENV: &str = "SHMPIPE_SEGMENT_MODE_ADDR";

fn mode(fd: impl AsFd) -> u32 {
    rustix::fs::fstat(fd).unwrap().st_mode & 0o777
}

/// Finding: segments were created 0666, openable by any uid that got at
/// them through `/proc/PID/fd`.
#[test]
fn segments_are_owner_only_and_stay_so_within_the_uid() {
    let (reader, mut writer) = shmpipe::pipe().unwrap();
    assert_eq!(mode(&reader), 0o600);
    // Handed to a process of the same uid: nothing to widen.
    let (a, b) = UnixStream::pair().unwrap();
    reader.send_to(&a).unwrap();
    let mut received = shmpipe::PipeReader::recv_from(&b).unwrap();
    assert_eq!(mode(&received), 0o600);
    writer.write_all(b"same").unwrap();
    let mut buf = [0u8; 4];
    received.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"same");
}

/// Uid nobody receives a read end from root and reads from it.
#[test]
fn child_receiver() {
    if !is_child("child_receiver") {
        return;
    }
    become_nobody();
    let addr = SocketAddr::from_abstract_name(env(ADDR_ENV).as_bytes()).unwrap();
    let sock = UnixStream::connect_addr(&addr).unwrap();
    let mut reader = match shmpipe::PipeReader::recv_from(&sock) {
        Ok(r) => r,
        Err(e) => {
            say(&format!("recv_from failed: {e}"));
            child_done();
        }
    };
    let mut buf = [0u8; 5];
    reader.read_exact(&mut buf).unwrap();
    say(&format!("read {}", String::from_utf8_lossy(&buf)));
    child_done();
}

#[test]
fn an_end_handed_to_another_uid_is_usable_there() {
    if !rustix::process::geteuid().is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "must run as root under CI (it drops a child to uid nobody)"
        );
        println!("skipped: not root (needs to start a process of another uid)");
        return;
    }
    let name = format!("shmpipe-test-segment-mode-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let mut kid = Kid::spawn("child_receiver", &[(ADDR_ENV, name)]);
    let (sock, _) = listener.accept().unwrap();
    let (reader, mut writer) = shmpipe::pipe().unwrap();
    reader.send_to(&sock).unwrap();
    writer.write_all(b"hello").unwrap();
    kid.expect("read hello");
    // Opened up for the receiver, which holds an end of it anyway.
    assert_eq!(mode(&writer), 0o666);
    kid.finish();
}
