//! Segment memfds are owner-only (mode 0600, issue 9 item 4), and that
//! mode does not stop an end handed on purpose to a process of another
//! uid (which reopens the memfd by path, and so needs the mode widened).
//! The named-pipe case (a client of another uid) is `named_xproc`'s
//! SEM-149 test; opening another user's segment through `/proc` is in
//! `attacks`.

use crate::common;

use common::named::{become_nobody, child_done, env, say, Kid};
use shmpipe::{CommandExt, PipeBuilder};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::os::unix::process::CommandExt as _;

const ADDR_ENV: &str = "SHMPIPE_SEGMENT_MODE_ADDR";
/// The receiver drops to nobody only after connecting.
const LATE_ENV: &str = "SHMPIPE_SEGMENT_MODE_LATE";

fn mode(fd: impl AsFd) -> u32 {
    rustix::fs::fstat(fd).unwrap().st_mode & 0o777
}

/// Finding: segments were created 0666, openable by any uid that got at
/// them through `/proc/PID/fd`.
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
fn child_receiver() {
    let late = std::env::var(LATE_ENV).is_ok();
    if !late {
        become_nobody();
    }
    let addr = SocketAddr::from_abstract_name(env(ADDR_ENV).as_bytes()).unwrap();
    let sock = UnixStream::connect_addr(&addr).unwrap();
    if late {
        // The socket says root (credentials are taken at connect time).
        become_nobody();
    }
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

/// Whether the test can start a process of another uid; fails under
/// `CI=true` when it cannot.
fn root() -> bool {
    common::require(
        common::is_root(),
        "segment_mode",
        "needs root: it starts a child as uid nobody",
    )
}

fn an_end_handed_to_another_uid_is_usable_there() {
    if !root() {
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

const TOKEN_ENV: &str = "SHMPIPE_SEGMENT_MODE_TOKEN";

/// Started as uid nobody with an inherited read end.
fn child_inheritor() {
    assert_eq!(rustix::process::geteuid().as_raw(), common::named::NOBODY);
    let mut reader = match shmpipe::PipeReader::from_inherited(&env(TOKEN_ENV)) {
        Ok(r) => r,
        Err(e) => {
            say(&format!("from_inherited failed: {e}"));
            child_done();
        }
    };
    let mut buf = [0u8; 5];
    reader.read_exact(&mut buf).unwrap();
    say(&format!("read {}", String::from_utf8_lossy(&buf)));
    child_done();
}

/// A root parent starts a child as another uid (`Command::uid`) with an
/// inherited end: the owner-only segment must not stop the child.
fn an_end_inherited_by_a_child_of_another_uid_is_usable_there() {
    if !root() {
        return;
    }
    let (reader, mut writer) = PipeBuilder::new().inheritable(true).build().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    let token = cmd.inherit_end(&reader).unwrap();
    cmd.args([
        "--exact",
        "child_inheritor",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(common::ROLE_ENV, "child_inheritor")
    .env(TOKEN_ENV, token)
    .uid(common::named::NOBODY)
    .gid(common::named::NOBODY)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    drop((reader, cmd));
    writer.write_all(b"hello").unwrap();
    let (status, out) = {
        let o = common::within("inheriting child", move || {
            child.wait_with_output().unwrap()
        });
        (o.status, o.stdout)
    };
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("@@read hello"), "child said: {out}");
    common::assert_child_ok(status, b"");
}

/// The sender cannot know the receiver's uid when the receiver changed it
/// after connecting: the end arrives but cannot be attached, and the
/// receiver hears `AccessDenied` (not a bare OS error).
fn an_end_the_receiver_may_not_attach_is_access_denied() {
    if !root() {
        return;
    }
    let name = format!("shmpipe-test-segment-mode-late-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let mut kid = Kid::spawn(
        "child_receiver",
        &[(ADDR_ENV, name), (LATE_ENV, "1".to_owned())],
    );
    let (sock, _) = listener.accept().unwrap();
    let (reader, writer) = shmpipe::pipe().unwrap();
    reader.send_to(&sock).unwrap();
    assert_eq!(mode(&writer), 0o600);
    let said = kid.listen();
    assert!(
        said.starts_with("recv_from failed: ERROR_ACCESS_DENIED (5)"),
        "{said}"
    );
    kid.finish();
}

common::tests! {
    tests: [
        segments_are_owner_only_and_stay_so_within_the_uid,
        an_end_handed_to_another_uid_is_usable_there,
        an_end_inherited_by_a_child_of_another_uid_is_usable_there,
        an_end_the_receiver_may_not_attach_is_access_denied,
    ],
    children: [child_receiver, child_inheritor],
}
