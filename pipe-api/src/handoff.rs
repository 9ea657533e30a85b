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
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

const TAG_READER: u8 = b'R';
const TAG_WRITER: u8 = b'W';
/// A named pipe's client end (see `NamedPipeClient::send_to`).
pub(crate) const TAG_NAMED_CLIENT: u8 = b'C';

/// Largest description that may travel with a descriptor.
pub(crate) const MAX_DESCRIPTION: usize = 4096;

/// Sends one descriptor with a one-byte tag and a description of the end:
/// `[tag, len as u16 LE, description]`, the descriptor riding on the first
/// byte. The receiver's `recvmsg` stops after the bytes that carried a
/// descriptor (Linux never joins them to what follows), and reads the rest
/// of a long description by its length, so ends sent back to back never
/// mix.
pub(crate) fn send_end(
    sock: &UnixStream,
    fd: BorrowedFd<'_>,
    tag: u8,
    description: &[u8],
) -> io::Result<()> {
    let len = u16::try_from(description.len())
        .ok()
        .filter(|&n| usize::from(n) <= MAX_DESCRIPTION)
        .ok_or_else(|| io::Error::other("end description too long"))?;
    let mut msg = Vec::with_capacity(3 + description.len());
    msg.push(tag);
    msg.extend_from_slice(&len.to_le_bytes());
    msg.extend_from_slice(description);
    // A receiver of another uid reopens the segment by path: let it (the
    // memfd is owner-only until then). Best effort: a segment this process
    // does not own cannot be widened, and the receiver's attach says so.
    if let Ok(peer) = crate::named::wire::peer_cred(sock) {
        let _ = shmpipe_engine::Segment::share_with(fd, peer.uid);
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    let n = rustix::net::sendmsg(
        sock,
        &[IoSlice::new(&msg)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    // The descriptor went with the first bytes; the rest is plain data.
    (&*sock).write_all(&msg[n..])
}

/// Receives what [`send_end`] sent: the tag, the descriptor
/// (close-on-exec) and the description.
pub(crate) fn recv_end(sock: &UnixStream) -> io::Result<(u8, OwnedFd, Vec<u8>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = vec![0u8; 3 + MAX_DESCRIPTION];
    let msg = loop {
        match rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(m) => break m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(crate::error::from_os(e.into())),
        }
    };
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
    let mut n = msg.bytes;
    if n == 0 {
        return Err(closed("the socket closed before an end arrived"));
    }
    // The kernel could not install the descriptor: we have none left.
    if got.is_none() && msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        return Err(Error::with_source(
            ErrorKind::NoSystemResources,
            "the end sent could not be received (no descriptor left)",
        )
        .into());
    }
    let Some(fd) = got else {
        return Err(
            Error::with_source(ErrorKind::InvalidHandle, "no descriptor in the message").into(),
        );
    };
    let bad = || Error::with_source(ErrorKind::InvalidHandle, "malformed end description");
    let rest = |buf: &mut [u8]| {
        (&*sock).read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                closed("the socket closed in the middle of an end's description")
            } else {
                crate::error::from_os(e)
            }
        })
    };
    if n < 3 {
        rest(&mut buf[n..3])?;
        n = 3;
    }
    let len = usize::from(u16::from_le_bytes([buf[1], buf[2]]));
    if len > MAX_DESCRIPTION || n > 3 + len {
        return Err(bad().into());
    }
    rest(&mut buf[n..3 + len])?;
    buf.truncate(3 + len);
    let tag = buf[0];
    buf.drain(..3);
    Ok((tag, fd, buf))
}

/// An end that arrived but cannot be attached because its segment is
/// owner-only and was not opened to this uid (a sender that does not own
/// it cannot open it up): `AccessDenied`, not a bare OS error.
pub(crate) fn attach_error(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::EACCES) {
        return Error::with_source(
            ErrorKind::AccessDenied,
            "the end's segment is not open to this uid (only its owner can share it)",
        )
        .into();
    }
    e
}

/// The sender went away: `BrokenPipe`, as a read from a pipe whose writer
/// closed (a bare `UnexpectedEof` would carry no pipe error kind).
fn closed(why: &'static str) -> io::Error {
    Error::with_source(ErrorKind::BrokenPipe, why).into()
}

/// Receives an anonymous end: a descriptor with an empty description.
fn recv_fd(sock: &UnixStream) -> io::Result<(u8, OwnedFd)> {
    match recv_end(sock)? {
        (tag, fd, d) if d.is_empty() => Ok((tag, fd)),
        (TAG_NAMED_CLIENT, ..) => Err(wrong_tag()),
        _ => Err(Error::with_source(ErrorKind::InvalidHandle, "malformed end description").into()),
    }
}

fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>, tag: u8) -> io::Result<()> {
    send_end(sock, fd, tag, &[])
}

pub(crate) fn wrong_tag() -> io::Error {
    Error::with_source(
        ErrorKind::AccessDenied,
        "the socket carried another kind of end",
    )
    .into()
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
            (TAG_READER, fd) => PipeReader::from_fd(fd).map_err(attach_error),
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

    /// Receives a write end sent with [`PipeWriter::send_to`]. A socket
    /// whose sender closed without sending an end (or in the middle of
    /// one) gives `BrokenPipe`.
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind};
    /// use std::os::unix::net::UnixStream;
    /// let (a, b) = UnixStream::pair()?;
    /// drop(a); // the sender went away
    /// let e = shmpipe::PipeWriter::recv_from(&b).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe));
    /// assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_from(sock: &UnixStream) -> io::Result<PipeWriter> {
        match recv_fd(sock)? {
            (TAG_WRITER, fd) => PipeWriter::from_fd(fd).map_err(attach_error),
            _ => Err(wrong_tag()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding (issue 9, item 4): a closed socket gave a bare
    /// `UnexpectedEof`, with no pipe error kind.
    #[test]
    fn a_closed_socket_is_broken_pipe_with_a_reason() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        for e in [
            recv_end(&b).unwrap_err(),
            PipeReader::recv_from(&b).unwrap_err(),
            crate::named::NamedPipeClient::recv_from(&b).unwrap_err(),
        ] {
            assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe), "{e}");
            assert!(e.to_string().contains("socket closed"), "{e}");
        }
    }

    #[test]
    fn a_sender_that_closes_mid_description_is_broken_pipe() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, _w) = crate::pipe().unwrap();
        // Header and descriptor promise 100 bytes of description; 10 come.
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [r.as_fd()];
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        let msg = [&[TAG_NAMED_CLIENT, 100, 0][..], &[7u8; 10]].concat();
        rustix::net::sendmsg(&a, &[IoSlice::new(&msg)], &mut control, SendFlags::empty()).unwrap();
        drop(a);
        let e = recv_end(&b).unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe), "{e}");
        assert!(e.to_string().contains("middle"), "{e}");
    }
}
