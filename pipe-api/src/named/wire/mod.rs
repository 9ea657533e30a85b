//! The rendezvous protocol: `SOCK_SEQPACKET` Unix sockets in the abstract
//! namespace, one listening socket per pipe name, one short request/reply
//! exchange per client operation.
//!
//! Requests (client → server), one packet each:
//!
//! ```text
//! OPEN   [1][access: u8][key: UTF-8]      open an instance (reply: OPENED + the end's, the
//!                                         mapping's and the client's slot's descriptors,
//!                                         or ERROR)
//! WAIT   [2][key]                         reply AVAILABLE when an instance is Listening
//!                                         (first STATE with the default timeout if it
//!                                         has to wait; ERROR NoSystemResources when
//!                                         the server parks no more waiters)
//! STATE  [3][key]                         reply STATE with the instance count (ERROR
//!                                         AccessDenied to a peer granted nothing)
//! CREATE [4][direction u8][max u8][key]   a server in another process adds an instance
//!                                         (reply JOINED, or ERROR); the connection then
//!                                         stays open as that instance's *link*
//! INFO   [5][key, or nothing]             reply INFO (or ERROR); an empty key means
//!                                         "whichever name you serve" (listing only
//!                                         knows the socket, whose name is a hash)
//! ```
//!
//! Replies: `OPENED [0x81][type][direction][max][flags][out u32][in u32][timeout_ms u32]
//! [server pid u32][server sid u32]` ([`Opened`]; flags bit 0: the instance lives in a
//! process other than the one that accepted the connection, so the server
//! pid is the one in the packet, not the socket peer's), `ERROR [0x82][code u32]`,
//! `AVAILABLE [0x83]`, `STATE [0x84][count u32]`, `DONE [0x86]` (after OPENED,
//! once the server closed its copy of the client's descriptor: until then a
//! client that closes at once would still look connected),
//!
//! ```text
//! JOINED [0x85][type u8][direction u8][max u8][0][default timeout ms u32]
//!        [owner uid u32][owner gid u32][group permissions u8][others permissions u8]
//! INFO [0x87][type u8][direction u8][max u8][flags u8]
//!      [server pid u32][owner uid u32][default timeout ms u32]
//!      [listening u32][connected u32][client gone u32][disconnected u32][server gone u32]
//!      [name length u16][full name: UTF-8]
//!      [entries u16] entries x [state u8][modes u8][client pid u32][queued out u64][queued in u64]
//!      (flags bit 0 only:) entries x [server pid u32]
//! ```
//!
//! Permissions bytes: bit 0 connect-read, bit 1 connect-write, bit 2
//! create-instance. INFO is answered only to a peer the pipe's security
//! grants something (`AccessDenied` otherwise). Its counts are exact; the
//! entries (one per instance, at most `MAX_INFO_ENTRIES`) are all there
//! unless the counts add up to more. Encoding and the strict decoding are
//! in `status/info.rs`.
//!
//! # Links (instances created by other processes)
//!
//! After JOINED, the CREATE connection is the link between the name's
//! *owner* (the process that bound the socket) and one instance of a
//! *member* process. Packets on a link:
//!
//! ```text
//! FWD   [0x90][access u8] + the client's connection (SCM_RIGHTS)   owner → member
//! STATE [0x91][verdict u8][state u8][modes u8][client pid u32]      member → owner
//! ```
//!
//! FWD hands the member a client whose OPEN chose its instance; the member
//! checks it again, answers the client on that connection itself (OPENED +
//! segment, DONE) and then sends STATE with verdict TAKEN (the client is
//! answered) or BUSY (the instance was not Listening any more: nothing was
//! sent to the client, the owner offers it the next instance). STATE with
//! verdict NONE reports a change: Listening (0), Connected (1), ClientGone
//! (2), Disconnected (3), ServerGone (4). Closing the link closes the
//! instance; a member that sends anything else is cut off.
//!
//! Everything received is parsed strictly; a malformed packet closes that
//! connection and harms nobody else. Who is on the other end is known from the
//! kernel (`SO_PEERCRED`), never from the packet.

mod packets;

pub(crate) use packets::{LinkState, Opened};

use super::name::PipeName;
use crate::error::{Error, ErrorKind};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType, UCred,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const REQ_OPEN: u8 = 1;
pub(crate) const REQ_WAIT: u8 = 2;
pub(crate) const REQ_STATE: u8 = 3;
pub(crate) const REQ_CREATE: u8 = 4;
pub(crate) const REQ_INFO: u8 = 5;
/// `OPEN` from a gateway for a remote client, with the identity of its
/// certificate (`remote_identity`); believed only from a peer the kernel
/// shows with `REMOTE_MARKER_GID` (docs/remote-design.md).
pub(crate) const REQ_OPEN_REMOTE: u8 = 6;

/// The certificate identity a gateway passes with `REQ_OPEN_REMOTE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RemoteIdentity {
    pub(crate) fingerprint: Option<String>,
    pub(crate) subject: Option<String>,
}

impl RemoteIdentity {
    /// `[n u8][fingerprint: n bytes][m u8][subject: m bytes]`; an empty
    /// field is absent, one longer than 255 bytes is not sent.
    #[cfg(feature = "remote")]
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for f in [&self.fingerprint, &self.subject] {
            let b = f.as_deref().unwrap_or("").as_bytes();
            let b = if b.len() > 255 { &[][..] } else { b };
            out.push(b.len() as u8);
            out.extend_from_slice(b);
        }
    }

    /// The identity at the start of `p` (strict UTF-8), and the rest.
    pub(crate) fn decode(p: &[u8]) -> Option<(RemoteIdentity, &[u8])> {
        let mut rest = p;
        let mut fields = [None, None];
        for f in &mut fields {
            let (&n, r) = rest.split_first()?;
            let b = r.get(..usize::from(n))?;
            let s = std::str::from_utf8(b).ok()?;
            *f = (!s.is_empty()).then(|| s.to_owned());
            rest = &r[usize::from(n)..];
        }
        let [fingerprint, subject] = fields;
        Some((
            RemoteIdentity {
                fingerprint,
                subject,
            },
            rest,
        ))
    }
}
pub(crate) const RESP_OPENED: u8 = 0x81;
pub(crate) const RESP_ERROR: u8 = 0x82;
pub(crate) const RESP_AVAILABLE: u8 = 0x83;
pub(crate) const RESP_STATE: u8 = 0x84;
pub(crate) const RESP_JOINED: u8 = 0x85;
pub(crate) const RESP_DONE: u8 = 0x86;
pub(crate) const RESP_INFO: u8 = 0x87;
/// Length of a JOINED reply.
pub(crate) const JOINED_LEN: usize = 19;
/// Owner → member: attach this client (see "Links").
pub(crate) const LINK_FWD: u8 = 0x90;
/// Member → owner: an instance's state, and the verdict on a FWD.
pub(crate) const LINK_STATE: u8 = 0x91;
/// Length of a link STATE packet.
pub(crate) const LINK_STATE_LEN: usize = 8;
/// STATE carries no verdict.
pub(crate) const VERDICT_NONE: u8 = 0;
/// The forwarded client was answered by the member.
pub(crate) const VERDICT_TAKEN: u8 = 1;
/// The forwarded client was left untouched: offer it another instance.
pub(crate) const VERDICT_BUSY: u8 = 2;
/// Link states (the first four are INFO's instance state codes).
pub(crate) const LINK_LISTENING: u8 = 0;
pub(crate) const LINK_CONNECTED: u8 = 1;
pub(crate) const LINK_CLIENT_GONE: u8 = 2;
pub(crate) const LINK_DISCONNECTED: u8 = 3;
pub(crate) const LINK_SERVER_GONE: u8 = 4;
/// Largest packet either side accepts (but an INFO reply).
pub(crate) const MAX_PACKET: usize = 2048;
/// Most instance entries an INFO reply lists.
pub(crate) const MAX_INFO_ENTRIES: usize = 1024;
/// Largest INFO reply: the fixed part, a full name (256 UTF-16 units are at
/// most 768 UTF-8 bytes) and every entry fit, with room to spare.
pub(crate) const MAX_INFO_PACKET: usize = 64 * 1024;

fn addr(name: &str) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(name.as_bytes())?)
}

/// A fresh socket; running out of descriptors is `NoSystemResources`.
fn seqpacket() -> io::Result<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| crate::error::from_os(e.into()))
}

/// Binds and listens on the abstract name; `Ok(None)` if it is taken.
pub(crate) fn listen(name: &str) -> io::Result<Option<OwnedFd>> {
    let fd = seqpacket()?;
    match rustix::net::bind(&fd, &addr(name)?) {
        Ok(()) => {}
        Err(rustix::io::Errno::ADDRINUSE) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    rustix::net::listen(&fd, 128)?;
    Ok(Some(fd))
}

/// Connects to the abstract name; `Ok(None)` if nobody listens there.
pub(crate) fn connect(name: &str) -> io::Result<Option<OwnedFd>> {
    connect_socket(seqpacket()?, name)
}

/// [`connect`] with `SO_PASSCRED` set before the connection exists, so that
/// every packet the peer ever sends on it carries the sender's credentials
/// (`SCM_CREDENTIALS`). Set after `connect`, a packet queued in between
/// would come with the overflow uid and no pid instead, which a client that
/// trusts uid 65534 could take for a real sender.
pub(crate) fn connect_with_credentials(name: &str) -> io::Result<Option<OwnedFd>> {
    let fd = seqpacket()?;
    rustix::net::sockopt::set_socket_passcred(&fd, true)?;
    connect_socket(fd, name)
}

fn connect_socket(fd: OwnedFd, name: &str) -> io::Result<Option<OwnedFd>> {
    match rustix::net::connect(&fd, &addr(name)?) {
        Ok(()) => Ok(Some(fd)),
        Err(rustix::io::Errno::CONNREFUSED | rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One end of a link (see "Links" above): the owner's record of a member
/// instance holds one, the member instance the other. Dropping it shuts the
/// connection down at once, even while the name's thread still holds the
/// descriptor for a poll.
pub(crate) struct Link {
    pub(crate) fd: Arc<OwnedFd>,
}

impl Link {
    pub(crate) fn new(fd: OwnedFd) -> Link {
        Link { fd: Arc::new(fd) }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn shutdown(&self) {
        let _ = rustix::net::shutdown(&*self.fd, rustix::net::Shutdown::Both);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub(crate) fn set_recv_timeout(fd: BorrowedFd<'_>, t: Option<Duration>) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_timeout(
        fd,
        rustix::net::sockopt::Timeout::Recv,
        t,
    )?)
}

pub(crate) fn set_send_timeout(fd: BorrowedFd<'_>, t: Option<Duration>) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_timeout(
        fd,
        rustix::net::sockopt::Timeout::Send,
        t,
    )?)
}

/// Sends one packet, with an optional descriptor.
pub(crate) fn send(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let fds: &[BorrowedFd<'_>] = match &fd {
        Some(fd) => core::slice::from_ref(fd),
        None => &[],
    };
    send_with(sock, bytes, fds, None)
}

/// Sends one packet with up to three descriptors (`SCM_RIGHTS`: an end,
/// its mapping and slot descriptors, see `OPENED`) and optional credentials
/// (`SCM_CREDENTIALS`, see `trust::send_as`).
pub(crate) fn send_with(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    creds: Option<UCred>,
) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3), ScmCredentials(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    if let Some(creds) = creds {
        if !control.push(SendAncillaryMessage::ScmCredentials(creds)) {
            return Err(io::Error::other("control buffer too small"));
        }
    }
    let n = rustix::net::sendmsg(
        sock,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if n != bytes.len() {
        return Err(io::Error::from(io::ErrorKind::WriteZero));
    }
    Ok(())
}

/// Receives one packet into `buf` (a longer packet is an error), and the
/// first descriptor that came with it (others are closed). `Ok(None)` at
/// end of stream.
pub(crate) fn recv(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<Option<(usize, Option<OwnedFd>)>> {
    recv_flags(sock, buf, RecvFlags::CMSG_CLOEXEC)
}

/// [`recv`] that never waits: `WouldBlock` when no packet is queued.
pub(crate) fn recv_nowait(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<Option<(usize, Option<OwnedFd>)>> {
    recv_flags(sock, buf, RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT)
}

fn recv_flags(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: RecvFlags,
) -> io::Result<Option<(usize, Option<OwnedFd>)>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(sock, &mut [IoSliceMut::new(buf)], &mut control, flags) {
            Ok(m) => break m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fd = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for f in fds {
                fd.get_or_insert(f);
            }
        }
    }
    if msg.flags.contains(rustix::net::ReturnFlags::TRUNC) {
        return Err(bad_packet());
    }
    // A descriptor came but the kernel could not install it here: this
    // process is out of descriptors.
    if msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) && fd.is_none() {
        return Err(Error::with_source(
            ErrorKind::NoSystemResources,
            "a descriptor sent to this process could not be received",
        )
        .into());
    }
    if msg.bytes == 0 {
        return Ok(None);
    }
    Ok(Some((msg.bytes, fd)))
}

/// The kernel-checked identity of a socket's peer, as `SO_PEERCRED` reports it.
pub(crate) struct PeerCred {
    /// 0 when the peer lives in a pid namespace this process cannot see.
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// `SO_PEERCRED` through libc: rustix's `UCred` holds a non-zero `Pid`, but
/// the kernel reports pid 0 for a peer outside our pid namespace.
pub(crate) fn peer_cred(sock: &impl AsFd) -> io::Result<PeerCred> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` provides `len` writable bytes of the type the kernel
    // writes for SO_PEERCRED; the descriptor is open for the call.
    let r = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: u32::try_from(cred.pid).unwrap_or(0),
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// This process's session id, or 0 when its session leader lives outside
/// our pid namespace (containers, CI runners) — where rustix's `getsid`
/// would panic on the kernel's legitimate 0.
pub(crate) fn session_id() -> u32 {
    // SAFETY: getsid(0) only reads this process's own session id.
    let sid = unsafe { libc::getsid(0) };
    u32::try_from(sid).unwrap_or(0)
}

/// `SO_PEERGROUPS`: the connecting process's supplementary groups. An
/// error, not an empty list, when the kernel does not say: the groups also
/// carry the remote marker, and "no groups" would let a gateway's open for
/// a remote client pass as a local one.
pub(crate) fn peer_groups(sock: &OwnedFd) -> io::Result<Vec<u32>> {
    use std::os::fd::AsRawFd;
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * 4) as libc::socklen_t;
        // SAFETY: `groups` provides `len` writable bytes; the kernel writes
        // at most `len` bytes and updates `len`; the descriptor is open.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if r == 0 {
            groups.truncate(len as usize / 4);
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) && groups.len() < 65536 {
            groups.resize((len as usize / 4).max(groups.len() * 2), 0);
            continue;
        }
        return Err(e);
    }
}

pub(crate) fn bad_packet() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed control packet")
}

pub(crate) fn error_packet(kind: ErrorKind) -> [u8; 5] {
    let c = kind.code().to_le_bytes();
    [RESP_ERROR, c[0], c[1], c[2], c[3]]
}

/// Decodes an ERROR packet into the error it carries.
pub(crate) fn decode_error(p: &[u8]) -> io::Error {
    match p {
        [RESP_ERROR, a, b, c, d] => {
            match ErrorKind::from_code(u32::from_le_bytes([*a, *b, *c, *d])) {
                Some(k) => Error::io(k),
                None => bad_packet(),
            }
        }
        _ => bad_packet(),
    }
}

/// Little-endian u32 at `at` of `p`.
pub(crate) fn u32_at(p: &[u8], at: usize) -> io::Result<u32> {
    p.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(bad_packet)
}

/// Asks the process that owns `name` for the name's instance count
/// (`STATE`): `FileNotFound` when nobody owns it; any reply but a `STATE`
/// (an `ERROR` from a pipe that grants this process nothing, say) is a
/// malformed-packet error. The client's `get_state` and a member's count
/// both ask this way.
pub(crate) fn ask_instance_count(name: &PipeName) -> io::Result<u32> {
    let sock = connect(&name.socket_name())?.ok_or_else(|| Error::io(ErrorKind::FileNotFound))?;
    let mut req = vec![REQ_STATE];
    req.extend_from_slice(name.key().as_bytes());
    send(sock.as_fd(), &req, None)?;
    let mut buf = [0u8; 16];
    match recv_timeout(&sock, &mut buf, Some(Duration::from_secs(2)))? {
        Some((5, None)) if buf[0] == RESP_STATE => u32_at(&buf, 1),
        _ => Err(bad_packet()),
    }
}

/// A receive that may wait up to `t` (`None`: forever).
pub(crate) fn recv_timeout(
    sock: &OwnedFd,
    buf: &mut [u8],
    t: Option<Duration>,
) -> io::Result<Option<(usize, Option<OwnedFd>)>> {
    set_recv_timeout(sock.as_fd(), t)?;
    match recv(sock.as_fd(), buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(Error::io(ErrorKind::Timeout)),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The groups of a peer the kernel cannot tell are an error, never an
    /// empty list (which would hide the remote marker): here a descriptor
    /// that is no socket at all.
    #[test]
    fn groups_the_kernel_cannot_tell_are_an_error() {
        let (r, _w) = rustix::pipe::pipe().unwrap();
        assert!(peer_groups(&r).is_err());
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a: OwnedFd = a.into();
        assert!(peer_groups(&a).is_ok());
    }
}
