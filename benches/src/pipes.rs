//! The `shmpipe` crate's pipes as transports: what applications call, on top
//! of the engine's channels (which `engine` and `engine-spsc` measure
//! directly).
//!
//! * `anon`: two anonymous pipes ([`PipeBuilder`]), one each way; the child
//!   gets the read end of parent→child and the write end of child→parent
//!   ([`PipeReader::into_fd`] / [`PipeReader::from_fd`]). A byte stream
//!   through [`Read`] / [`Write`].
//! * `named-byte`, `named-msg`: one duplex named pipe instance. The parent
//!   creates it under a name of its own (`\\.\pipe\shmpipe-bench-<pid>-<n>`)
//!   and the peer opens it as the client ([`ClientOptions::open`]): the
//!   peer gets the name, not descriptors. Byte mode moves a message as a
//!   byte stream (`Read` / `Write` on `&NamedPipeServer` /
//!   `&NamedPipeClient`); message mode puts both ends in message read mode
//!   and moves each benchmark message as one pipe message
//!   ([`NamedPipeServer::send_msg`] / [`NamedPipeServer::recv_msg`]),
//!   checking that it arrives whole.
//!
//! # Buffering
//!
//! [`Options::capacity`] is the write quota of every pipe
//! ([`PipeBuilder::buffer_size`], [`ServerOptions::quotas`]`(c, c)`): a
//! blocking write returns once at most that many bytes are unread, and a
//! larger write is never refused, it completes as the reader catches up. So
//! a 1 MiB message through a pipe with a smaller quota (`--buffer-kib`) is
//! still one message. The pipes size their rings above the quota (room for
//! the quota plus a write in flight).
//!
//! # Wait policies
//!
//! Anonymous ends change theirs in place ([`PipeReader::set_wait_policy`]).
//! A named-pipe end gets its policy when it is created or opened
//! ([`ServerOptions::wait_policy`], [`ClientOptions::wait_policy`]) and
//! cannot change it afterwards, so [`Link::set_policy`] reconnects, as an
//! application would: the parent creates a fresh instance of the name with
//! the new policy and closes the old one, then the peer opens the fresh
//! instance with the new policy and closes its old end. Both sides reconnect
//! on every call (never deciding on their own that nothing changed), so they
//! cannot disagree about it. Until the first call, the ends wait as the
//! engine's default says.

use crate::link::{human_bytes, take, Link, Options, Setup};
use crate::policy::default_wait_policy;
use rustix::fd::OwnedFd;
use shmpipe::named::{ClientOptions, Direction, NamedPipeClient, NamedPipeServer, ServerOptions};
use shmpipe::{PipeBuilder, PipeReader, PipeType, PipeWriter, ReadMode, WaitPolicy};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

fn quota(opts: &Options) -> io::Result<u32> {
    u32::try_from(opts.capacity).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a pipe quota is at most 4 GiB, not {} bytes", opts.capacity),
        )
    })
}

/// Reads exactly `msg.len()` bytes from a byte stream.
fn read_full(mut from: impl Read, msg: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < msg.len() {
        match from.read(&mut msg[got..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed its end",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One side of `anon`: where it writes, where it reads.
struct Anon {
    tx: PipeWriter,
    rx: PipeReader,
}

impl Link for Anon {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.write_all(msg)
    }

    fn recv(&mut self, msg: &mut [u8]) -> io::Result<()> {
        read_full(&mut self.rx, msg)
    }

    fn set_policy(&mut self, wait: WaitPolicy) -> io::Result<()> {
        self.tx.set_wait_policy(wait);
        self.rx.set_wait_policy(wait);
        Ok(())
    }
}

/// Two anonymous pipes with the requested quota.
pub fn open_anon(opts: &Options) -> io::Result<Setup> {
    let mut builder = PipeBuilder::new();
    builder
        .buffer_size(quota(opts)?)
        .wait_policy(default_wait_policy());
    let (down_r, down_w) = builder.build()?;
    let (up_r, up_w) = builder.build()?;
    Ok(Setup {
        link: Box::new(Anon {
            tx: down_w,
            rx: up_r,
        }),
        child_fds: vec![down_r.into_fd(), up_w.into_fd()],
        child_arg: None,
        buffers: format!("quota {} per direction", human_bytes(opts.capacity)),
    })
}

/// Rebuilds the child's anonymous ends.
pub fn adopt_anon(fds: Vec<OwnedFd>) -> io::Result<Box<dyn Link>> {
    let [rx, tx] = take::<2>(fds)?;
    let mut link = Anon {
        tx: PipeWriter::from_fd(tx)?,
        rx: PipeReader::from_fd(rx)?,
    };
    link.set_policy(default_wait_policy())?;
    Ok(Box::new(link))
}

/// Either end of a named pipe instance.
enum NamedEnd {
    Server(NamedPipeServer),
    Client(NamedPipeClient),
}

impl NamedEnd {
    fn send_msg(&self, msg: &[u8]) -> io::Result<usize> {
        match self {
            NamedEnd::Server(s) => s.send_msg(msg),
            NamedEnd::Client(c) => c.send_msg(msg),
        }
    }

    fn recv_msg(&self, buf: &mut [u8]) -> io::Result<shmpipe::named::MsgRead> {
        match self {
            NamedEnd::Server(s) => s.recv_msg(buf),
            NamedEnd::Client(c) => c.recv_msg(buf),
        }
    }

    fn write_all(&self, msg: &[u8]) -> io::Result<()> {
        match self {
            NamedEnd::Server(s) => (&*s).write_all(msg),
            NamedEnd::Client(c) => (&*c).write_all(msg),
        }
    }

    fn read_full(&self, msg: &mut [u8]) -> io::Result<()> {
        match self {
            NamedEnd::Server(s) => read_full(s, msg),
            NamedEnd::Client(c) => read_full(c, msg),
        }
    }
}

/// One side of `named-byte` / `named-msg`.
struct Named {
    end: NamedEnd,
    name: String,
    message: bool,
    /// The server's options (the parent's side only), to create fresh
    /// instances with.
    server: Option<ServerOptions>,
}

impl Link for Named {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if !self.message {
            return self.end.write_all(msg);
        }
        let n = self.end.send_msg(msg)?;
        if n != msg.len() {
            return Err(io::Error::other(format!(
                "send_msg took {n} of {} bytes",
                msg.len()
            )));
        }
        Ok(())
    }

    fn recv(&mut self, msg: &mut [u8]) -> io::Result<()> {
        if !self.message {
            return self.end.read_full(msg);
        }
        let m = self.end.recv_msg(msg)?;
        if !m.complete || m.len != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a {} B message arrived as {} B ({})",
                    msg.len(),
                    m.len,
                    if m.complete { "complete" } else { "more data" }
                ),
            ));
        }
        Ok(())
    }

    fn set_policy(&mut self, wait: WaitPolicy) -> io::Result<()> {
        self.end = match &self.server {
            Some(opts) => {
                let mut opts = opts.clone();
                // The fresh instance listens before the old one closes, so
                // the name never vanishes in between.
                NamedEnd::Server(opts.wait_policy(wait).create(&self.name)?)
            }
            None => NamedEnd::Client(open_client(&self.name, self.message, wait)?),
        };
        Ok(())
    }
}

fn open_client(name: &str, message: bool, wait: WaitPolicy) -> io::Result<NamedPipeClient> {
    let client = ClientOptions::new().wait_policy(wait).open(name)?;
    if message {
        // Client ends start in byte read mode.
        client.set_read_mode(ReadMode::Message)?;
    }
    Ok(client)
}

/// A name no other instance of the benchmark uses.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        r"\\.\pipe\shmpipe-bench-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    )
}

/// Creates a duplex named pipe instance (message type and read mode when
/// `message`) with the requested quotas; the child opens it by name.
pub fn open_named(opts: &Options, message: bool) -> io::Result<Setup> {
    let q = quota(opts)?;
    let (ty, mode) = if message {
        (PipeType::Message, ReadMode::Message)
    } else {
        (PipeType::Byte, ReadMode::Byte)
    };
    let mut server = ServerOptions::new();
    server
        .access(Direction::Duplex)
        .pipe_type(ty)
        .read_mode(mode)
        .quotas(q, q);
    let name = unique_name();
    let end = server
        .clone()
        .wait_policy(default_wait_policy())
        .create(&name)?;
    Ok(Setup {
        link: Box::new(Named {
            end: NamedEnd::Server(end),
            name: name.clone(),
            message,
            server: Some(server),
        }),
        child_fds: Vec::new(),
        child_arg: Some(name),
        buffers: format!("quotas {} each way", human_bytes(opts.capacity)),
    })
}

/// Opens the client end of the parent's instance `name`.
pub fn adopt_named(name: &str, message: bool) -> io::Result<Box<dyn Link>> {
    let client = open_client(name, message, default_wait_policy())?;
    Ok(Box::new(Named {
        end: NamedEnd::Client(client),
        name: name.to_owned(),
        message,
        server: None,
    }))
}
