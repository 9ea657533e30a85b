//! The kernel baselines: two pipes, or one Unix socket pair (stream or
//! seqpacket), used with plain blocking `read(2)` / `write(2)`.
//!
//! Buffers are raised to the same size the shared-memory rings get
//! (`F_SETPIPE_SZ`, `SO_SNDBUF`/`SO_RCVBUF`) where the kernel allows it; what
//! they actually got is reported. A seqpacket message larger than the
//! largest packet the send buffer admits goes as several packets (the
//! receiver reassembles by length, as for a byte stream).

use crate::link::{human_bytes, take, Link, Options, Setup};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::pipe::PipeFlags;
use std::io;

/// One side: where it writes, where it reads.
struct FdLink {
    tx: OwnedFd,
    rx: OwnedFd,
    /// For seqpacket: the largest packet to send.
    max_packet: Option<usize>,
}

impl Link for FdLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let mut rest = msg;
        while !rest.is_empty() {
            let chunk = self.max_packet.map_or(rest.len(), |m| m.min(rest.len()));
            match rustix::io::write(&self.tx, &rest[..chunk]) {
                Ok(n) if self.max_packet.is_some() && n != chunk => {
                    return Err(io::Error::other("seqpacket: short packet write"))
                }
                Ok(n) => rest = &rest[n..],
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn recv(&mut self, msg: &mut [u8]) -> io::Result<()> {
        let mut got = 0;
        while got < msg.len() {
            match rustix::io::read(&self.rx, &mut msg[got..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed its end",
                    ))
                }
                Ok(n) => got += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Two pipes; the child gets the read end of parent→child and the write end
/// of child→parent.
pub fn open_pipe(opts: &Options) -> io::Result<Setup> {
    let (down_r, down_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let (up_r, up_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let mut size = usize::MAX;
    for p in [&down_w, &up_w] {
        // Refused above /proc/sys/fs/pipe-max-size for unprivileged users:
        // keep whatever the kernel gives and report it.
        let _ = rustix::pipe::fcntl_setpipe_size(p, opts.capacity);
        size = size.min(rustix::pipe::fcntl_getpipe_size(p)?);
    }
    Ok(Setup {
        link: Box::new(FdLink {
            tx: down_w,
            rx: up_r,
            max_packet: None,
        }),
        child_fds: vec![down_r, up_w],
        child_arg: None,
        buffers: format!("pipe buffer {}", human_bytes(size)),
    })
}

/// A socket pair; the child gets one socket.
pub fn open_socket(opts: &Options, seqpacket: bool) -> io::Result<Setup> {
    let ty = if seqpacket {
        SocketType::SEQPACKET
    } else {
        SocketType::STREAM
    };
    let (a, b) = rustix::net::socketpair(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)?;
    for s in [&a, &b] {
        // Capped at net.core.wmem_max / rmem_max; the reported size is what
        // counts.
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(s, opts.capacity);
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(s, opts.capacity);
    }
    let sndbuf = rustix::net::sockopt::socket_send_buffer_size(&a)?;
    let link = socket_link(a, seqpacket)?;
    let mut buffers = format!("SO_SNDBUF {}", human_bytes(sndbuf));
    if let Some(m) = link.max_packet {
        buffers.push_str(&format!(", packets <= {}", human_bytes(m)));
    }
    Ok(Setup {
        link: Box::new(link),
        child_fds: vec![b],
        child_arg: None,
        buffers,
    })
}

fn socket_link(sock: OwnedFd, seqpacket: bool) -> io::Result<FdLink> {
    let max_packet = if seqpacket {
        // The kernel refuses a packet larger than the send buffer (minus a
        // little); half of it, rounded down to a power of two, always fits.
        let sndbuf = rustix::net::sockopt::socket_send_buffer_size(&sock)?;
        let half = (sndbuf / 2).max(4096);
        Some(1usize << (usize::BITS - 1 - half.leading_zeros()))
    } else {
        None
    };
    let rx = rustix::io::fcntl_dupfd_cloexec(sock.as_fd(), 0)?;
    Ok(FdLink {
        tx: sock,
        rx,
        max_packet,
    })
}

/// Rebuilds the child's pipe ends.
pub fn adopt_pipe(fds: Vec<OwnedFd>) -> io::Result<Box<dyn Link>> {
    let [rx, tx] = take::<2>(fds)?;
    Ok(Box::new(FdLink {
        tx,
        rx,
        max_packet: None,
    }))
}

/// Rebuilds the child's socket.
pub fn adopt_socket(fds: Vec<OwnedFd>, seqpacket: bool) -> io::Result<Box<dyn Link>> {
    let [sock] = take::<1>(fds)?;
    Ok(Box::new(socket_link(sock, seqpacket)?))
}
