//! Passing pipe ends to unrelated processes over Unix-domain sockets
//! (`SCM_RIGHTS`), Windows' `DuplicateHandle` into another process.
//!
//! The receiver gets a duplicate of the sender's handle: the end stays open
//! while either holds it.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//! let (a, b) = UnixStream::pair()?;
//! let (mut r, w) = shmpipe::pipe()?;
//! w.send_to(&a)?;
//! drop(w);
//! let mut w2 = shmpipe::PipeWriter::recv_from(&b)?;
//! w2.write_all(b"via SCM_RIGHTS")?;
//! drop(w2);
//! let mut s = String::new();
//! r.read_to_string(&mut s)?;
//! assert_eq!(s, "via SCM_RIGHTS");
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::error::{Error, ErrorKind};
use crate::{PipeReader, PipeWriter};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

const TAG_READER: u8 = b'R';
const TAG_WRITER: u8 = b'W';

/// Sends one descriptor with a one-byte tag.
pub(crate) fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>, tag: u8) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    let n = rustix::net::sendmsg(
        sock,
        &[IoSlice::new(&[tag])],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if n != 1 {
        return Err(io::Error::from(io::ErrorKind::WriteZero));
    }
    Ok(())
}

/// Receives one tagged descriptor (close-on-exec).
pub(crate) fn recv_fd(sock: &UnixStream) -> io::Result<(u8, OwnedFd)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut tag = [0u8; 1];
    let msg = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut tag)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut got = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            // Keep the first; the rest (a confused or hostile sender) are
            // closed as the iterator drops them.
            for fd in fds {
                got.get_or_insert(fd);
            }
        }
    }
    match (msg.bytes, got) {
        (1, Some(fd)) => Ok((tag[0], fd)),
        (0, _) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
        _ => {
            Err(Error::with_source(ErrorKind::InvalidHandle, "no descriptor in the message").into())
        }
    }
}

fn wrong_tag() -> io::Error {
    Error::with_source(ErrorKind::AccessDenied, "the socket carried the other end").into()
}

impl PipeReader {
    /// Sends a duplicate of this read end over a Unix socket.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// let (a, b) = UnixStream::pair()?;
    /// let (reader, mut writer) = shmpipe::pipe()?;
    /// reader.send_to(&a)?;
    /// drop(reader); // the received duplicate keeps the read end open
    /// let mut received = shmpipe::PipeReader::recv_from(&b)?;
    /// writer.write_all(b"dup")?;
    /// let mut buf = [0u8; 3];
    /// received.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"dup");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to(&self, sock: &UnixStream) -> io::Result<()> {
        send_fd(sock, self.as_fd(), TAG_READER)
    }

    /// Receives a read end sent with [`PipeReader::send_to`].
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind, PipeReader};
    /// use std::os::unix::net::UnixStream;
    /// let (a, b) = UnixStream::pair()?;
    /// let (_reader, writer) = shmpipe::pipe()?;
    /// writer.send_to(&a)?;
    /// let e = PipeReader::recv_from(&b).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied)); // a write end arrived
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(sock: &UnixStream) -> io::Result<PipeReader> {
        match recv_fd(sock)? {
            (TAG_READER, fd) => PipeReader::from_fd(fd),
            _ => Err(wrong_tag()),
        }
    }
}

impl PipeWriter {
    /// Sends a duplicate of this write end over a Unix socket.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// let (a, b) = UnixStream::pair()?;
    /// let (mut reader, writer) = shmpipe::pipe()?;
    /// writer.send_to(&a)?;
    /// let t = std::thread::spawn(move || -> std::io::Result<()> {
    ///     shmpipe::PipeWriter::recv_from(&b)?.write_all(b"sent")
    /// });
    /// drop(writer);
    /// let mut text = String::new();
    /// reader.read_to_string(&mut text)?;
    /// t.join().unwrap()?;
    /// assert_eq!(text, "sent");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to(&self, sock: &UnixStream) -> io::Result<()> {
        send_fd(sock, self.as_fd(), TAG_WRITER)
    }

    /// Receives a write end sent with [`PipeWriter::send_to`].
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// let (a, b) = UnixStream::pair()?;
    /// drop(a); // the sender went away
    /// let e = shmpipe::PipeWriter::recv_from(&b).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(sock: &UnixStream) -> io::Result<PipeWriter> {
        match recv_fd(sock)? {
            (TAG_WRITER, fd) => PipeWriter::from_fd(fd),
            _ => Err(wrong_tag()),
        }
    }
}
