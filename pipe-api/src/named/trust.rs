//! Who may serve a name: the rule `create` applies to the process that
//! owns a name before joining it, and the rule `open` applies to the
//! process that answers it, both judged on identities the kernel vouches
//! for (see `docs/security.md`, "Named-pipe rendezvous").
//!
//! * A server that finds the name taken learns who holds it from the
//!   kernel (`SO_PEERCRED` of its connection to the name's socket: the
//!   process that listens on it) before it sends anything.
//! * A client learns who answered from the kernel too: it turns on
//!   `SO_PASSCRED`, so the packet that carries the segment's descriptor
//!   comes with the credentials of the process that sent it
//!   (`SCM_CREDENTIALS`, checked by the kernel: a process can claim only
//!   its own pid and one of its own uids and gids). When the owner forwards
//!   the client to another process's instance, that is the member, not the
//!   owner whose socket the client connected to: the socket's own
//!   `SO_PEERCRED` would name the wrong process. The credentials belong to
//!   the very packet that hands out the segment, so no process can pass on
//!   someone else's reply as its own.

use super::wire;
use crate::error::{Error, ErrorKind, UntrustedPeer};
use rustix::net::UCred;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Which processes may serve a pipe, besides root and this process's own
/// effective uid (always trusted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrustRule {
    /// Anyone (Windows' behaviour).
    pub(crate) any: bool,
    /// Further effective uids.
    pub(crate) uids: Vec<u32>,
    /// Further effective (primary) gids.
    pub(crate) gids: Vec<u32>,
}

#[cfg(feature = "remote")]
impl TrustRule {
    /// The rule as a remote open carries it to the gateway.
    pub(crate) fn for_remote(&self) -> crate::remote::frame::Trust {
        crate::remote::frame::Trust {
            any: self.any,
            uids: self.uids.clone(),
            gids: self.gids.clone(),
        }
    }
}

/// Whom a refusal is about: the owner of a name `create` was about to
/// join, or the server of the instance `open` reached.
pub(crate) use crate::error::PeerRole as Role;

impl TrustRule {
    /// Whether a process running as `uid`/`gid` may serve.
    pub(crate) fn allows(&self, uid: u32, gid: u32) -> bool {
        self.any
            || uid == 0
            || uid == rustix::process::geteuid().as_raw()
            || self.uids.contains(&uid)
            || self.gids.contains(&gid)
    }

    /// `Ok` if `uid`/`gid` may serve; if not, `AccessDenied` carrying the
    /// refused process (its message names the uid and gid). `pid` is as
    /// the kernel reported it: 0 for a process outside our pid namespace.
    pub(crate) fn check(&self, role: Role, pid: u32, uid: u32, gid: u32) -> io::Result<()> {
        if self.allows(uid, gid) {
            return Ok(());
        }
        let peer = UntrustedPeer {
            role,
            pid: (pid != 0).then_some(pid),
            uid,
            gid,
        };
        Err(Error::from(peer).into())
    }
}

/// The kernel's account of who sent a packet (`SCM_CREDENTIALS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sender {
    /// In the receiver's pid namespace; 0 when the sender is outside it.
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// A received packet: its length, the first three descriptors that came
/// with it (any others are closed), and who sent it (if the kernel said).
pub(crate) struct Packet {
    pub(crate) len: usize,
    pub(crate) fd: Option<OwnedFd>,
    /// The second and third descriptors (`OPENED` carries the end, its
    /// mapping's and the client's slot's).
    pub(crate) fd2: Option<OwnedFd>,
    pub(crate) fd3: Option<OwnedFd>,
    pub(crate) sender: Option<Sender>,
}

/// This process's pid and effective uid and gid, for [`send_as`] (three
/// system calls: a sender of several packets asks once).
pub(crate) fn self_credentials() -> UCred {
    UCred {
        pid: rustix::process::getpid(),
        uid: rustix::process::geteuid(),
        gid: rustix::process::getegid(),
    }
}

/// Sends one packet, with descriptors (at most three), stating `me` (this
/// process's effective uid and gid, [`self_credentials`]) as its
/// credentials (without them, the kernel would attach the real ones;
/// `SO_PEERCRED` and the owner uid shown everywhere else are the effective
/// ones).
pub(crate) fn send_as(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    me: UCred,
) -> io::Result<()> {
    wire::send_with(sock, bytes, fds, Some(me))
}

/// Receives one packet (waiting up to `t`, `None`: forever) with its
/// sender's credentials. `Ok(None)` at end of stream; `Timeout` when
/// nothing came in time; a packet longer than `buf`, or with more control
/// data than one descriptor and one set of credentials, is malformed.
///
/// Through libc rather than rustix: rustix's credentials type holds a
/// non-zero pid, and the kernel reports 0 for a sender outside our pid
/// namespace.
pub(crate) fn recv_with_sender(
    sock: &OwnedFd,
    buf: &mut [u8],
    t: Option<Duration>,
) -> io::Result<Option<Packet>> {
    wire::set_recv_timeout(sock.as_fd(), t)?;
    recv_with_sender_as_set(sock, buf)
}

/// [`recv_with_sender`] with the socket's receive timeout as it is (the
/// second packet of an exchange, when the first set it).
pub(crate) fn recv_with_sender_as_set(
    sock: &OwnedFd,
    buf: &mut [u8],
) -> io::Result<Option<Packet>> {
    // Room for a few descriptors and one set of credentials; a hostile
    // sender's extra descriptors are cut off (MSG_CTRUNC), and the kernel
    // closes those that did not fit.
    #[repr(C, align(8))]
    struct Space([u8; 256]);
    let mut space = Space([0; 256]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header (null pointers,
    // zero lengths); the fields that matter are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.0.as_mut_ptr().cast();
    msg.msg_controllen = space.0.len() as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` (describing `buf`, writable for its
        // length) and at `space` (writable for `msg_controllen` bytes), all
        // alive for the call; the descriptor is open.
        let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, libc::MSG_CMSG_CLOEXEC) };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Err(Error::io(ErrorKind::Timeout)),
            _ => return Err(e),
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut sender = None;
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR only reads its
    // control pointer and length.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !c.is_null() {
        // SAFETY: a non-null header from CMSG_FIRSTHDR/CMSG_NXTHDR lies
        // within `space` (the macros check it against msg_controllen), is
        // aligned for `cmsghdr` (`space` is 8-aligned, headers are
        // CMSG_ALIGNed), and was written by the kernel.
        let (level, kind, len) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len) };
        // SAFETY: as above; CMSG_DATA is the header plus its aligned size.
        let data = unsafe { libc::CMSG_DATA(c) };
        // `cmsg_len` is a `usize` with glibc, a `u32` with musl.
        #[allow(clippy::unnecessary_cast)]
        let payload = (len as usize).saturating_sub(data as usize - c as usize);
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            for i in 0..payload / std::mem::size_of::<libc::c_int>() {
                // SAFETY: within the payload the kernel wrote (i < payload
                // / 4); unaligned reads need no alignment.
                let raw = unsafe { data.cast::<libc::c_int>().add(i).read_unaligned() };
                // SAFETY: the kernel installed this descriptor in our table
                // for us alone; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        } else if level == libc::SOL_SOCKET
            && kind == libc::SCM_CREDENTIALS
            && payload >= std::mem::size_of::<libc::ucred>()
        {
            // SAFETY: the payload holds a whole `ucred` (checked above),
            // read unaligned; every bit pattern is a valid `ucred`.
            let u = unsafe { data.cast::<libc::ucred>().read_unaligned() };
            sender = Some(Sender {
                pid: u32::try_from(u.pid).unwrap_or(0),
                uid: u.uid,
                gid: u.gid,
            });
        }
        // SAFETY: `c` is a valid header of `msg` (see above).
        c = unsafe { libc::CMSG_NXTHDR(&raw const msg, c) };
    }
    // A descriptor came but the kernel could not install it here: this
    // process is out of descriptors (as `wire` reports it).
    if msg.msg_flags & libc::MSG_CTRUNC != 0 && fds.is_empty() {
        return Err(Error::with_source(
            ErrorKind::NoSystemResources,
            "a descriptor sent to this process could not be received",
        )
        .into());
    }
    if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(wire::bad_packet());
    }
    if n == 0 {
        return Ok(None);
    }
    let mut fds = fds.into_iter();
    Ok(Some(Packet {
        len: n,
        fd: fds.next(),
        fd2: fds.next(),
        fd3: fds.next(),
        sender,
    }))
}

/// Whether a descriptor a name's owner forwarded as a client's connection
/// is one: a connected `AF_UNIX` `SOCK_SEQPACKET` socket. Only then does its
/// `SO_PEERCRED` name the process that will read what we send on it (an
/// unconnected socket, say, reports the overflow uid).
pub(crate) fn is_client_connection(fd: &OwnedFd) -> bool {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    sockopt::socket_domain(fd).is_ok_and(|d| d == AddressFamily::UNIX)
        && sockopt::socket_type(fd).is_ok_and(|t| t == SocketType::SEQPACKET)
        && rustix::net::getpeername(fd).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_self_are_always_trusted_others_only_when_named() {
        let me = rustix::process::geteuid().as_raw();
        let other = if me == 12345 { 12346 } else { 12345 };
        let rule = TrustRule::default();
        assert!(rule.allows(0, 77) && rule.allows(me, 77));
        assert!(!rule.allows(other, 77));
        let e = rule.check(Role::Server, 4321, other, 77).unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied));
        assert!(e.to_string().contains(&format!("uid {other}")), "{e}");
        assert!(rule.check(Role::Owner, 4321, 0, 77).is_ok());
        let by_uid = TrustRule {
            uids: vec![other],
            ..TrustRule::default()
        };
        let by_gid = TrustRule {
            gids: vec![77],
            ..TrustRule::default()
        };
        let any = TrustRule {
            any: true,
            ..TrustRule::default()
        };
        assert!(by_uid.allows(other, 1) && by_gid.allows(other, 77) && any.allows(other, 1));
        assert!(!by_gid.allows(other, 78));
    }

    #[test]
    fn a_refusal_says_whom_it_refused_and_nothing_else_does() {
        let me = rustix::process::geteuid().as_raw();
        let other = if me == 12345 { 12346 } else { 12345 };
        let rule = TrustRule::default();
        for role in [Role::Owner, Role::Server] {
            let e = rule.check(role, 4321, other, 77).unwrap_err();
            let peer = Error::untrusted_peer_of(&e).expect("a refusal names its peer");
            assert_eq!((peer.role, peer.pid), (role, Some(4321)));
            assert_eq!((peer.uid, peer.gid), (other, 77));
            // The documented message, word for word as it was before the
            // refusal carried data.
            let said = match role {
                Role::Owner => format!(
                    "the pipe name is owned by a process running as uid {other} (gid 77), \
                     which this server does not trust (see ServerOptions::trust_owner_uid)"
                ),
                Role::Server => format!(
                    "the pipe is served by a process running as uid {other} (gid 77), which \
                     this client does not trust (see ClientOptions::trust_server_uid)"
                ),
            };
            assert_eq!(e.to_string(), format!("ERROR_ACCESS_DENIED (5): {said}"));
        }
        // A process outside our pid namespace (the kernel says pid 0).
        let e = rule.check(Role::Server, 0, other, 77).unwrap_err();
        assert_eq!(Error::untrusted_peer_of(&e).unwrap().pid, None);
        // Other errors, AccessDenied ones included, refused nobody.
        let others: [io::Error; 4] = [
            Error::io(ErrorKind::AccessDenied),
            Error::with_source(ErrorKind::AccessDenied, "no read access for uid 5").into(),
            Error::io(ErrorKind::FileNotFound),
            io::Error::new(io::ErrorKind::PermissionDenied, "plain"),
        ];
        for e in &others {
            assert_eq!(Error::untrusted_peer_of(e), None, "{e}");
        }
    }

    /// A packet the server sends the moment it accepts, before the client
    /// does anything after `connect`, carries the server's real
    /// credentials. (With `SO_PASSCRED` set after `connect`, as before, such
    /// a packet came with no pid and the overflow uid, and a client
    /// trusting uid 65534 would have taken it for a real sender.)
    #[test]
    fn a_reply_sent_at_accept_carries_real_credentials() {
        let name = format!("shmpipe-test-passcred-{}", std::process::id());
        let listener = wire::listen(&name).unwrap().expect("a free test name");
        let client = wire::connect_with_credentials(&name).unwrap().unwrap();
        let (conn, _) = rustix::net::acceptfrom(&listener).unwrap();
        // A plain send: the kernel attaches credentials only if it was
        // asked to before the packet was queued.
        rustix::net::send(&conn, b"early", rustix::net::SendFlags::empty()).unwrap();
        let mut buf = [0u8; 8];
        let p = recv_with_sender(&client, &mut buf, Some(Duration::from_secs(5)))
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..p.len], b"early");
        let s = p.sender.expect("credentials with the packet");
        assert_eq!(s.pid, std::process::id());
        assert_eq!(s.uid, rustix::process::getuid().as_raw());

        // The old order: the same packet, credentials asked for after it
        // was queued, arrives without a sender's pid.
        let late = wire::connect(&name).unwrap().unwrap();
        let (conn, _) = rustix::net::acceptfrom(&listener).unwrap();
        rustix::net::send(&conn, b"early", rustix::net::SendFlags::empty()).unwrap();
        rustix::net::sockopt::set_socket_passcred(&late, true).unwrap();
        let p = recv_with_sender(&late, &mut buf, Some(Duration::from_secs(5)))
            .unwrap()
            .unwrap();
        assert_ne!(p.sender.map(|s| s.pid), Some(std::process::id()));
    }

    #[test]
    fn a_packet_carries_its_senders_credentials_and_descriptor() {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::net::sockopt::set_socket_passcred(&b, true).unwrap();
        send_as(a.as_fd(), b"x", &[a.as_fd()], self_credentials()).unwrap();
        let mut buf = [0u8; 8];
        let p = recv_with_sender(&b, &mut buf, Some(Duration::from_secs(5)))
            .unwrap()
            .unwrap();
        assert_eq!(p.len, 1);
        assert!(p.fd.is_some());
        let s = p.sender.expect("credentials");
        assert_eq!(s.pid, std::process::id());
        assert_eq!(s.uid, rustix::process::geteuid().as_raw());
        assert!(is_client_connection(&b));
        // Not a connection: a pipe, an unconnected socket.
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(!is_client_connection(&r));
        let lone = rustix::net::socket(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            None,
        )
        .unwrap();
        assert!(!is_client_connection(&lone));
        drop((a, p)); // every copy of the peer: end of stream
        assert!(recv_with_sender(&b, &mut buf, Some(Duration::from_secs(5)))
            .unwrap()
            .is_none());
    }
}
