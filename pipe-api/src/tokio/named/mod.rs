//! Async named pipe ends: [`NamedPipeServer`], [`NamedPipeClient`], and
//! [`wait_available`], shaped like `tokio::net::windows::named_pipe`.
//!
//! Both ends are duplex: reads and writes have a readiness eventfd each,
//! so a read and a write pending at once complete independently.

use super::anonymous::try_write_bytes;
use super::half::Half;
use crate::datapath::{Conn, MsgRead};
use crate::error::{Error, ErrorKind};
use crate::info::{PeekInfo, PipeInfo, PipeState, PipeType};
use crate::named::server::async_hooks::ConnectProgress;
use crate::named::{self, ClientOptions, Connected, ServerOptions, WaitTimeout};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};

/// The blocking ends' hooks the async ends run on.
trait Backend {
    fn conn<T>(&self, op: impl FnOnce(&Conn) -> io::Result<T>) -> io::Result<T>;
    fn need(&self, read: bool, write: bool) -> io::Result<()>;
    fn message_read(&self) -> bool;
    fn pipe_type(&self) -> PipeType;
    /// A remote client end's flush after the local one (waits for the
    /// remote reader: `remote::bridge::Link::flush`), if it is one.
    fn remote_flush(&self) -> Option<Box<dyn FnOnce() -> io::Result<()> + Send>> {
        None
    }
}

impl Backend for named::NamedPipeServer {
    fn conn<T>(&self, op: impl FnOnce(&Conn) -> io::Result<T>) -> io::Result<T> {
        self.async_conn(op)
    }
    fn need(&self, read: bool, write: bool) -> io::Result<()> {
        self.async_need(read, write)
    }
    fn message_read(&self) -> bool {
        self.async_message_read()
    }
    fn pipe_type(&self) -> PipeType {
        self.async_pipe_type()
    }
}

impl Backend for named::NamedPipeClient {
    fn conn<T>(&self, op: impl FnOnce(&Conn) -> io::Result<T>) -> io::Result<T> {
        self.async_conn(op)
    }
    #[cfg(feature = "remote")]
    fn remote_flush(&self) -> Option<Box<dyn FnOnce() -> io::Result<()> + Send>> {
        self.async_remote_flush()
    }
    fn need(&self, read: bool, write: bool) -> io::Result<()> {
        self.async_need(read, write)
    }
    fn message_read(&self) -> bool {
        self.async_message_read()
    }
    fn pipe_type(&self) -> PipeType {
        self.async_pipe_type()
    }
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

fn eof_is_zero(r: io::Result<usize>) -> io::Result<usize> {
    match r {
        Err(e) if Error::kind_of(&e) == Some(ErrorKind::BrokenPipe) => Ok(0),
        r => r,
    }
}

/// What both async ends do, written once.
#[derive(Debug)]
struct Duplex<B> {
    end: B,
    rd: Half,
    wr: Half,
}

impl<B: Backend> Duplex<B> {
    fn new(end: B) -> io::Result<Self> {
        Ok(Duplex {
            end,
            rd: Half::new()?,
            wr: Half::new()?,
        })
    }

    fn announce_read(&self) -> io::Result<shmpipe_engine::readiness::Tickets> {
        self.end.conn(Conn::announce_read)
    }

    fn announce_write(&self) -> io::Result<shmpipe_engine::readiness::Tickets> {
        self.end.conn(Conn::announce_write)
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
        self.end.need(true, false)?;
        let message = self.end.message_read();
        self.end.conn(|c| {
            if message {
                c.read_msg(buf, true)
            } else {
                c.read_bytes(buf, true).map(|len| MsgRead {
                    len,
                    complete: true,
                })
            }
        })
    }

    fn try_send(&self, data: &[u8]) -> io::Result<usize> {
        self.end.need(false, true)?;
        let message = self.end.pipe_type() == PipeType::Message;
        self.end.conn(|c| {
            if !message {
                return try_write_bytes(c, data);
            }
            if data.len() as u64 > u64::from(c.quota()) {
                // A nonblocking message write is all or nothing (spec
                // 5.5): one larger than the quota would never fit.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an async message write larger than the write quota",
                ));
            }
            match c.write(data, true)? {
                0 if !data.is_empty() => Err(would_block()),
                n => Ok(n),
            }
        })
    }

    async fn recv_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
        self.rd
            .op(|| self.announce_read(), || self.try_recv(buf))
            .await
    }

    async fn send_msg(&self, data: &[u8]) -> io::Result<usize> {
        self.wr
            .op(|| self.announce_write(), || self.try_send(data))
            .await
    }

    async fn transact(&self, request: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        self.end.need(true, true)?;
        if self.end.pipe_type() != PipeType::Message || !self.end.message_read() {
            return Err(Error::io(ErrorKind::BadPipe));
        }
        self.send_msg(request).await?;
        self.recv_msg(reply).await
    }

    async fn readable(&self) -> io::Result<()> {
        self.rd
            .op(
                || self.announce_read(),
                || match self.end.conn(|c| c.read_bytes(&mut [], true)) {
                    Ok(_) => Ok(()),
                    Err(e) if Error::kind_of(&e) == Some(ErrorKind::BrokenPipe) => Ok(()),
                    Err(e) => Err(e),
                },
            )
            .await
    }

    async fn writable(&self) -> io::Result<()> {
        self.wr
            .op(
                || self.announce_write(),
                || {
                    self.end.conn(|c| {
                        if c.unread_by_peer() < u64::from(c.quota()) || !c.peer_alive() {
                            Ok(())
                        } else {
                            Err(would_block())
                        }
                    })
                },
            )
            .await
    }

    async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        match (interest.is_readable(), interest.is_writable()) {
            (true, true) => match super::half::either(self.readable(), self.writable()).await {
                Ok(r) => r.map(|()| Ready::READABLE),
                Err(w) => w.map(|()| Ready::WRITABLE),
            },
            (true, false) => self.readable().await.map(|()| Ready::READABLE),
            (false, true) => self.writable().await.map(|()| Ready::WRITABLE),
            (false, false) => std::future::pending().await,
        }
    }

    async fn flush_buffers(&self) -> io::Result<()> {
        self.end.need(false, true)?;
        self.wr
            .op(
                || self.announce_write(),
                || {
                    self.end.conn(|c| {
                        if c.unread_by_peer() == 0 {
                            Ok(())
                        } else if !c.peer_alive() {
                            Err(Error::io(ErrorKind::BrokenPipe))
                        } else {
                            Err(would_block())
                        }
                    })
                },
            )
            .await?;
        match self.end.remote_flush() {
            // It blocks until the gateway answers: off the runtime's workers.
            Some(f) => tokio::task::spawn_blocking(f)
                .await
                .unwrap_or_else(|_| Err(Error::io(ErrorKind::BrokenPipe))),
            None => Ok(()),
        }
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let dst = buf.initialize_unfilled();
        let n = std::task::ready!(self.rd.poll_op(
            cx,
            || self.announce_read(),
            || eof_is_zero(self.try_recv(dst).map(|m| m.len))
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.wr
            .poll_op(cx, || self.announce_write(), || self.try_send(data))
    }
}

mod ends;
mod options;

pub use ends::{call, wait_available, NamedPipeClient, NamedPipeServer};
