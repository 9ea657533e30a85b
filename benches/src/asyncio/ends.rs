//! The async transports of [`super`]: what each side holds, how the parent
//! makes both sides ([`open`]) and how the peer rebuilds its own
//! ([`adopt`]). Every end is made inside the calling thread's tokio
//! runtime (it registers with that runtime's reactor).
//!
//! * `async-named-msg`: a duplex `shmpipe` named pipe in message mode; the
//!   parent creates the instance ([`ServerOptions::create_async`]) and the
//!   peer opens it by name ([`ClientOptions::open_async`]), then switches
//!   to message read mode; one benchmark message is one pipe message.
//! * `async-anon`: two `shmpipe` anonymous pipes, one each way, made
//!   blocking and handed over as descriptors, then made async on each side
//!   ([`shmpipe::tokio::PipeReader::from_std`]); a byte stream.
//! * `tokio-unix-stream`: a `SOCK_STREAM` Unix socket pair as
//!   [`tokio::net::UnixStream`].
//! * `tokio-pipe`: two kernel pipes as [`tokio::net::unix::pipe`]'s
//!   `Sender` / `Receiver`.
//!
//! Buffering matches the blocking rows of the same names: the pipes'
//! quotas, the kernel pipe's size and the socket buffers are
//! [`Options::capacity`] where the kernel allows it.

use super::AsyncKind;
use crate::link::{human_bytes, take, Options};
use rustix::fd::OwnedFd;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustix::pipe::PipeFlags;
use shmpipe::named::{ClientOptions, Direction, ServerOptions};
use shmpipe::{PipeBuilder, PipeType, ReadMode};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

/// One side of an async transport.
// One per transport side, made once and never moved on the measured path:
// its size does not matter, an indirection on every send would.
#[allow(clippy::large_enum_variant)]
pub(super) enum End {
    Server(shmpipe::tokio::NamedPipeServer),
    Client(shmpipe::tokio::NamedPipeClient),
    Anon {
        tx: shmpipe::tokio::PipeWriter,
        rx: shmpipe::tokio::PipeReader,
    },
    Unix(tokio::net::UnixStream),
    Pipe {
        tx: pipe::Sender,
        rx: pipe::Receiver,
    },
}

fn short_message(what: &str, got: usize, want: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what} {got} of {want} bytes"),
    )
}

fn check_msg(m: shmpipe::named::MsgRead, want: usize) -> io::Result<()> {
    if !m.complete || m.len != want {
        return Err(short_message("a message arrived as", m.len, want));
    }
    Ok(())
}

impl End {
    /// Sends `msg` whole (one message on a named pipe in message mode).
    pub(super) async fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let sent = match self {
            End::Server(s) => s.send_msg(msg).await?,
            End::Client(c) => c.send_msg(msg).await?,
            End::Anon { tx, .. } => return tx.write_all(msg).await,
            End::Unix(s) => return s.write_all(msg).await,
            End::Pipe { tx, .. } => return tx.write_all(msg).await,
        };
        if sent != msg.len() {
            return Err(short_message("send_msg took", sent, msg.len()));
        }
        Ok(())
    }

    /// Fills `msg` (with one whole message on a named pipe).
    pub(super) async fn recv(&mut self, msg: &mut [u8]) -> io::Result<()> {
        let want = msg.len();
        match self {
            End::Server(s) => check_msg(s.recv_msg(msg).await?, want),
            End::Client(c) => check_msg(c.recv_msg(msg).await?, want),
            End::Anon { rx, .. } => rx.read_exact(msg).await.map(drop),
            End::Unix(s) => s.read_exact(msg).await.map(drop),
            End::Pipe { rx, .. } => rx.read_exact(msg).await.map(drop),
        }
    }
}

/// The parent's side of a fresh transport and what the peer needs.
pub(super) struct Made {
    pub(super) end: End,
    pub(super) child_fds: Vec<OwnedFd>,
    pub(super) child_arg: Option<String>,
    pub(super) buffers: String,
}

fn quota(opts: &Options) -> io::Result<u32> {
    u32::try_from(opts.capacity).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a pipe quota is at most 4 GiB, not {} bytes", opts.capacity),
        )
    })
}

/// A name no other instance of the benchmark uses.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        r"\\.\pipe\shmpipe-bench-async-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    )
}

/// Makes a `kind` transport; must run inside the parent's runtime.
pub(super) fn open(kind: AsyncKind, opts: &Options) -> io::Result<Made> {
    match kind {
        AsyncKind::NamedMsg => {
            let q = quota(opts)?;
            let name = unique_name();
            let server = ServerOptions::new()
                .access(Direction::Duplex)
                .pipe_type(PipeType::Message)
                .read_mode(ReadMode::Message)
                .quotas(q, q)
                .create_async(&name)?;
            Ok(Made {
                end: End::Server(server),
                child_fds: Vec::new(),
                child_arg: Some(name),
                buffers: format!("quotas {} each way", human_bytes(opts.capacity)),
            })
        }
        AsyncKind::Anon => {
            let mut builder = PipeBuilder::new();
            builder.buffer_size(quota(opts)?);
            let (down_r, down_w) = builder.build()?;
            let (up_r, up_w) = builder.build()?;
            Ok(Made {
                end: End::Anon {
                    tx: shmpipe::tokio::PipeWriter::from_std(down_w)?,
                    rx: shmpipe::tokio::PipeReader::from_std(up_r)?,
                },
                child_fds: vec![down_r.into_fd(), up_w.into_fd()],
                child_arg: None,
                buffers: format!("quota {} per direction", human_bytes(opts.capacity)),
            })
        }
        AsyncKind::UnixStream => {
            let (a, b) = rustix::net::socketpair(
                AddressFamily::UNIX,
                SocketType::STREAM,
                SocketFlags::CLOEXEC,
                None,
            )?;
            for s in [&a, &b] {
                // Capped at net.core.wmem_max / rmem_max, as the blocking
                // unix-stream row's; the reported size is what counts.
                let _ = rustix::net::sockopt::set_socket_send_buffer_size(s, opts.capacity);
                let _ = rustix::net::sockopt::set_socket_recv_buffer_size(s, opts.capacity);
            }
            let sndbuf = rustix::net::sockopt::socket_send_buffer_size(&a)?;
            Ok(Made {
                end: unix_end(a)?,
                child_fds: vec![b],
                child_arg: None,
                buffers: format!("SO_SNDBUF {}", human_bytes(sndbuf)),
            })
        }
        AsyncKind::Pipe => {
            let (down_r, down_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
            let (up_r, up_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
            let mut size = usize::MAX;
            for p in [&down_w, &up_w] {
                let _ = rustix::pipe::fcntl_setpipe_size(p, opts.capacity);
                size = size.min(rustix::pipe::fcntl_getpipe_size(p)?);
            }
            Ok(Made {
                end: End::Pipe {
                    tx: pipe::Sender::from_owned_fd(down_w)?,
                    rx: pipe::Receiver::from_owned_fd(up_r)?,
                },
                child_fds: vec![down_r, up_w],
                child_arg: None,
                buffers: format!("pipe buffer {}", human_bytes(size)),
            })
        }
    }
}

fn unix_end(sock: OwnedFd) -> io::Result<End> {
    let sock = std::os::unix::net::UnixStream::from(sock);
    sock.set_nonblocking(true)?;
    Ok(End::Unix(tokio::net::UnixStream::from_std(sock)?))
}

/// Rebuilds the peer's side from what [`open`] handed over; must run
/// inside the peer's runtime.
pub(super) fn adopt(kind: AsyncKind, fds: Vec<OwnedFd>, arg: Option<&str>) -> io::Result<End> {
    match kind {
        AsyncKind::NamedMsg => {
            let name = arg.ok_or_else(|| io::Error::other("no pipe name was handed over"))?;
            let client = ClientOptions::new().open_async(name)?;
            // Client ends start in byte read mode.
            client.get_ref().set_read_mode(ReadMode::Message)?;
            Ok(End::Client(client))
        }
        AsyncKind::Anon => {
            let [rx, tx] = take::<2>(fds)?;
            Ok(End::Anon {
                tx: shmpipe::tokio::PipeWriter::from_std(shmpipe::PipeWriter::from_fd(tx)?)?,
                rx: shmpipe::tokio::PipeReader::from_std(shmpipe::PipeReader::from_fd(rx)?)?,
            })
        }
        AsyncKind::UnixStream => {
            let [sock] = take::<1>(fds)?;
            unix_end(sock)
        }
        AsyncKind::Pipe => {
            let [rx, tx] = take::<2>(fds)?;
            Ok(End::Pipe {
                tx: pipe::Sender::from_owned_fd(tx)?,
                rx: pipe::Receiver::from_owned_fd(rx)?,
            })
        }
    }
}
