//! Hostile input on the rendezvous socket: a connection that sends garbage
//! is dropped and the name goes on serving.

use crate::common;

use super::support::*;
use common::named::{default_opts, unique_name, HANG};
use shmpipe::named::Connected;

// ------------------------------------------- hostile rendezvous input

/// The abstract socket a pipe's server listens on: a copy of the crate's
/// private `PipeName::socket_name` for ASCII names (their key is the
/// uppercased name part). If the crate changes it, the check at the start
/// of the test says so.
fn socket_name(full: &str) -> String {
    let key = full
        .strip_prefix(r"\\.\pipe\")
        .expect("full name")
        .to_ascii_uppercase();
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
    let mut h2: u64 = 0x6c62_272e_07bb_0142;
    for b in key.bytes() {
        h1 = (h1 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        h2 = (h2 ^ u64::from(b))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(17);
    }
    format!("shmpipe-v1/{h1:016x}{h2:016x}")
}

fn raw_connect(full: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = SocketAddrUnix::new_abstract_name(socket_name(full).as_bytes())?;
    rustix::net::connect(&fd, &addr)?;
    Ok(fd)
}

/// Waits for the server to close `fd`, skipping any reply; fails the test
/// if it keeps the connection for [`HANG`].
#[track_caller]
fn assert_dropped(fd: &std::os::fd::OwnedFd, what: &str) {
    rustix::net::sockopt::set_socket_timeout(fd, rustix::net::sockopt::Timeout::Recv, Some(HANG))
        .unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..4 {
        match rustix::net::recv(fd, &mut buf, rustix::net::RecvFlags::empty()) {
            Ok((0, _)) => return,
            Ok(_) => continue, // an error reply; the close follows
            Err(rustix::io::Errno::CONNRESET) => return,
            Err(e) => panic!("{what}: the server kept the connection ({e})"),
        }
    }
    panic!("{what}: the server kept answering");
}

#[test]
fn garbage_on_the_rendezvous_socket_is_dropped() {
    use rustix::net::SendFlags;
    let name = unique_name("garbage");
    let server = default_opts().create(&name).unwrap();
    raw_connect(&name).expect(
        "the test's copy of PipeName::socket_name no longer matches the crate: \
         a test hook exposing the socket name is needed",
    );
    let long_key = vec![b'K'; 3000];
    let mut bad_access = vec![1u8, 0xff];
    bad_access.extend_from_slice(b"X");
    let mut wrong_key = vec![1u8, 0x0f];
    wrong_key.extend_from_slice(b"NOT-THIS-PIPE");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", b"\x00\xde\xad\xbe\xef garbage".to_vec()),
        ("unknown request", vec![0x7f, 1, 2, 3]),
        ("a reply code as request", vec![0x81; 25]),
        ("OPEN with bad access bits", bad_access),
        ("OPEN for another key", wrong_key),
        ("truncated CREATE", vec![4u8]),
        ("oversized packet", long_key),
        ("empty packet", Vec::new()),
    ];
    for (what, bytes) in &cases {
        let fd = raw_connect(&name).unwrap();
        rustix::net::send(&fd, bytes, SendFlags::NOSIGNAL).unwrap();
        assert_dropped(&fd, what);
    }
    // A peer that sends nothing, and one that sends a descriptor with its
    // request, are dropped too.
    let silent = raw_connect(&name).unwrap();
    assert_dropped(&silent, "silent peer");
    {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage};
        use std::mem::MaybeUninit;
        let fd = raw_connect(&name).unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [std::os::fd::AsFd::as_fd(&devnull)];
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        let mut req = vec![1u8, 0x0f];
        req.extend_from_slice(
            name.strip_prefix(r"\\.\pipe\")
                .unwrap()
                .to_ascii_uppercase()
                .as_bytes(),
        );
        rustix::net::sendmsg(
            &fd,
            &[std::io::IoSlice::new(&req)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .unwrap();
        assert_dropped(&fd, "request with a descriptor");
    }
    // Nothing of it took the instance or hurt the name.
    let client = open(&name);
    assert_eq!(server.connect().unwrap(), Connected::Already);
    assert_data_flows(&server, &client, "after garbage");
}
