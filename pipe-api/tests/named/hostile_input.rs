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

// ------------------------------------------- a forged OPENED

/// Plays a server of `full` for one client: answers its OPEN with a
/// well-formed OPENED (a duplex byte pipe, this process's credentials)
/// carrying `fds`, then DONE.
fn forge_opened(full: &str, fds: Vec<std::os::fd::OwnedFd>) -> std::thread::JoinHandle<()> {
    use rustix::net::{
        AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
        SocketFlags, SocketType, UCred,
    };
    use std::os::fd::AsFd;
    let l = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let addr = SocketAddrUnix::new_abstract_name(socket_name(full).as_bytes()).unwrap();
    rustix::net::bind(&l, &addr).unwrap();
    rustix::net::listen(&l, 4).unwrap();
    std::thread::spawn(move || {
        let conn = rustix::net::accept(&l).unwrap();
        let mut req = [0u8; 1024];
        rustix::net::recv(&conn, &mut req, rustix::net::RecvFlags::empty()).unwrap();
        let me = UCred {
            pid: rustix::process::getpid(),
            uid: rustix::process::geteuid(),
            gid: rustix::process::getegid(),
        };
        let send = |bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]| {
            let mut space = [std::mem::MaybeUninit::uninit();
                rustix::cmsg_space!(ScmRights(3), ScmCredentials(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !fds.is_empty() {
                assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
            }
            assert!(control.push(SendAncillaryMessage::ScmCredentials(me)));
            let iov = [std::io::IoSlice::new(bytes)];
            // The client may have hung up already (it refused the OPENED).
            let _ = rustix::net::sendmsg(&conn, &iov, &mut control, SendFlags::NOSIGNAL);
        };
        // OPENED: byte pipe, duplex, 1 instance, no flags; 4 KiB quotas,
        // 50 ms timeout, our pid, session 0.
        let mut opened = vec![0x81, 0, 3, 1, 0];
        for w in [4096u32, 4096, 50, std::process::id(), 0] {
            opened.extend_from_slice(&w.to_le_bytes());
        }
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        send(&opened, &borrowed);
        drop(fds);
        send(&[0x86], &[]);
    })
}

/// Issue 12: the segment's mapping descriptor (and the one for the
/// client's process slot) now travel with the end in OPENED, and are as
/// hostile as the rest: a descriptor of another memfd, or the end's own
/// description (whose mapping would keep the end open after the client
/// closed it; a slot lock on it would outlive the client), makes `open`
/// fail, with an error and no mapping; the same forged server with a fresh description of the end's
/// file is accepted (so the refusals are the checks, not the forgery), and
/// so is one that sends none (an earlier version's server). With the
/// role check asked through a reopen instead of through the received
/// descriptor, the end's own description was accepted (checked by hand).
#[test]
fn a_forged_mapping_descriptor_is_refused() {
    use shmpipe_engine::liveness::{reopen, EndLock};
    use shmpipe_engine::Segment;
    use std::os::fd::AsFd;
    const ROLE_CLIENT: u32 = 1;
    let segment = || Segment::create(&[64 << 10, 64 << 10], 0, [0; 8]).unwrap().1;
    /// What the forged server sends with OPENED.
    type Fds = Box<dyn Fn() -> Vec<std::os::fd::OwnedFd>>;
    let cases: [(&str, Fds, bool); 6] = [
        (
            "another memfd",
            Box::new(move || {
                let fd = segment();
                let end = EndLock::acquire(fd.as_fd(), ROLE_CLIENT).unwrap().into_fd();
                vec![end, segment()]
            }),
            false,
        ),
        (
            "the end's own description",
            Box::new(move || {
                let fd = segment();
                let end = EndLock::acquire(fd.as_fd(), ROLE_CLIENT).unwrap().into_fd();
                let own = rustix::io::dup(&end).unwrap();
                vec![end, own]
            }),
            false,
        ),
        (
            "a fresh description of the end's file",
            Box::new(move || {
                let fd = segment();
                let end = EndLock::acquire(fd.as_fd(), ROLE_CLIENT).unwrap().into_fd();
                vec![end, reopen(fd.as_fd()).unwrap()]
            }),
            true,
        ),
        (
            "a slot descriptor that is the end's own description",
            Box::new(move || {
                let fd = segment();
                let end = EndLock::acquire(fd.as_fd(), ROLE_CLIENT).unwrap().into_fd();
                let own = rustix::io::dup(&end).unwrap();
                vec![end, reopen(fd.as_fd()).unwrap(), own]
            }),
            false,
        ),
        (
            "fresh mapping and slot descriptions",
            Box::new(move || {
                let fd = segment();
                let end = EndLock::acquire(fd.as_fd(), ROLE_CLIENT).unwrap().into_fd();
                let (map, slot) = (reopen(fd.as_fd()).unwrap(), reopen(fd.as_fd()).unwrap());
                vec![end, map, slot]
            }),
            true,
        ),
        (
            // A server of an earlier version: the client reopens the end.
            "no mapping descriptor",
            Box::new(move || {
                let fd = segment();
                vec![EndLock::acquire(fd.as_fd(), ROLE_CLIENT).unwrap().into_fd()]
            }),
            true,
        ),
    ];
    for (what, fds, accepted) in cases {
        let name = unique_name("forged-mapping");
        let server = forge_opened(&name, fds());
        let r = shmpipe::named::ClientOptions::new().open(&name);
        assert_eq!(r.is_ok(), accepted, "{what}: {r:?}");
        server.join().unwrap();
    }
}
