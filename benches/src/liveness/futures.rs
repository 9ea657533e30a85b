//! The async cases of the `kill` measurement: the parent's end is pending
//! in a future on a current-thread tokio runtime, made in the thread that
//! awaits it (the thread of [`super::Blocked`]), so that the wake-up path
//! is the one a tokio program has: the runtime parks in its I/O driver
//! (`epoll_wait`) and is woken by the end's descriptor becoming ready.
//!
//! Each call of the shared read and write loops ([`read_side`],
//! [`write_side`]) runs one future to completion with `block_on`; the last
//! one is the future pending when the peer is killed.

use super::{read_side, write_side, Msg};
use std::io;
use std::os::fd::OwnedFd;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Runtime;

fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
}

/// Makes the runtime and the async end (inside it: the end registers with
/// its reactor), or says why not.
fn setup<T>(make: impl FnOnce() -> io::Result<T>) -> Result<(Runtime, T), Msg> {
    let rt = runtime().map_err(|e| Msg::Failed(format!("making the runtime: {e}")))?;
    let end = {
        let _in = rt.enter();
        make().map_err(|e| Msg::Failed(format!("making the async end: {e}")))?
    };
    Ok((rt, end))
}

/// Reads the peer's data, then awaits one more read, which must return 0
/// (`AsyncRead`'s end of the pipe).
fn read_loop(rt: &Runtime, mut end: impl AsyncRead + Unpin, seq: u64, tx: &Sender<Msg>) -> Msg {
    read_side(
        |buf| match rt.block_on(end.read(buf))? {
            0 => Ok(None),
            n => Ok(Some(n)),
        },
        seq,
        tx,
    )
}

/// Awaits `write_all` of `big` until it fails; only a broken pipe is an
/// acceptable end.
fn write_loop(rt: &Runtime, mut end: impl AsyncWrite + Unpin, big: &[u8], tx: &Sender<Msg>) -> Msg {
    write_side(|| rt.block_on(end.write_all(big)).map(|()| big.len()), tx)
}

/// `async-anon-read`.
pub(super) fn anon_read(end: shmpipe::PipeReader, seq: u64, tx: &Sender<Msg>) -> Msg {
    match setup(|| shmpipe::tokio::PipeReader::from_std(end)) {
        Ok((rt, end)) => read_loop(&rt, end, seq, tx),
        Err(m) => m,
    }
}

/// `async-anon-write`.
pub(super) fn anon_write(end: shmpipe::PipeWriter, big: Arc<[u8]>, tx: &Sender<Msg>) -> Msg {
    match setup(|| shmpipe::tokio::PipeWriter::from_std(end)) {
        Ok((rt, end)) => write_loop(&rt, end, &big, tx),
        Err(m) => m,
    }
}

/// `async-pipe-read`: `from_owned_fd` checks that `fd` is a pipe's read
/// end and makes it nonblocking (the peer's write end is a description of
/// its own, left alone).
pub(super) fn pipe_read(fd: OwnedFd, seq: u64, tx: &Sender<Msg>) -> Msg {
    match setup(|| tokio::net::unix::pipe::Receiver::from_owned_fd(fd)) {
        Ok((rt, end)) => read_loop(&rt, end, seq, tx),
        Err(m) => m,
    }
}

/// `async-pipe-write`.
pub(super) fn pipe_write(fd: OwnedFd, big: Arc<[u8]>, tx: &Sender<Msg>) -> Msg {
    match setup(|| tokio::net::unix::pipe::Sender::from_owned_fd(fd)) {
        Ok((rt, end)) => write_loop(&rt, end, &big, tx),
        Err(m) => m,
    }
}
