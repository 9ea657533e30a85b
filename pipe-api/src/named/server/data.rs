//! The data operations of a [`NamedPipeServer`]: writes and reads, byte and
//! message, copying and zero-copy, peek, flush and transact (spec 4.5-4.11).
//! Each checks the handle's access, then runs on the connection's data path
//! (`crate::datapath`) under [`NamedPipeServer::with_conn`], which refuses
//! an instance that is not connected.

use super::{err, NamedPipeServer};
use crate::datapath::{Conn, MsgRead};
use crate::error::{Error, ErrorKind};
use crate::info::{PeekInfo, PipeType};
use crate::named::options::{MODE_MESSAGE_READ, MODE_NONBLOCKING};
use std::io;

impl NamedPipeServer {
    /// Writes one write (a message on a message pipe), following the quota
    /// (spec 5.2) or, for a nonblocking end, spec 5.5 (returns the bytes
    /// written, possibly 0).
    pub fn send_msg(&self, data: &[u8]) -> io::Result<usize> {
        self.need(self.access().write_data)?;
        let nonblocking = self.nonblocking();
        self.with_conn(|c| c.write(data, nonblocking))
    }

    /// Reads one message in message-read mode, or bytes in byte-read mode
    /// (`complete` is then always `true`).
    pub fn recv_msg(&self, buf: &mut [u8]) -> io::Result<MsgRead> {
        self.need(self.access().read_data)?;
        let modes = self.modes();
        let nonblocking = modes & MODE_NONBLOCKING != 0;
        self.with_conn(|conn| {
            if modes & MODE_MESSAGE_READ != 0 {
                conn.read_msg(buf, nonblocking)
            } else {
                conn.read_bytes(buf, nonblocking).map(|len| MsgRead {
                    len,
                    complete: true,
                })
            }
        })
    }

    /// Writes one write of `len` bytes in place (zero copy; a message on a
    /// message pipe): `fill` writes the bytes into the reserved room of the
    /// shared ring, and when it returns they are published as one unit,
    /// which then completes as [`NamedPipeServer::send_msg`] does (spec
    /// 5.2). Returns what `fill` returned. The rules (size limit: the
    /// pipe's out buffer size is always accepted, larger may be refused
    /// with `InvalidParameter`; waiting before `fill`; cancellation;
    /// nonblocking `WouldBlock`; the writer lock; a panic publishes
    /// nothing; the room is memory the peer can also write) are those of
    /// [`PipeWriter::write_with`](crate::PipeWriter::write_with).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-server-send-with-{}", std::process::id());
    /// let server = ServerOptions::new().pipe_type(PipeType::Message).create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.set_read_mode(ReadMode::Message)?;
    /// server.send_msg_with(4, |buf| buf.copy_from_slice(b"ping"))?;
    /// assert!(client.recv_msg_with(|msg| msg == b"ping")?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_msg_with<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> io::Result<R> {
        self.need(self.access().write_data)?;
        let nonblocking = self.nonblocking();
        self.with_conn(|c| c.write_with(len, nonblocking, fill))
    }

    /// Reads in place (zero copy): in message-read mode `look` gets the
    /// whole next message (or the rest of one a [`recv_msg`] left with
    /// `complete == false`) as one slice, which is consumed when it
    /// returns; in byte-read mode the unread bytes of the next write, all
    /// consumed. Returns what `look` returned.
    ///
    /// A message written by a copying write larger than the largest
    /// zero-copy write arrives in fragments and is not one slice: it fails
    /// with [`ErrorKind::InvalidParameter`],
    /// consumes nothing, and is read with [`recv_msg`]. Errors, waiting
    /// and the hostile-writer rule (the slice is memory the writing
    /// process can still change) are those of [`recv_msg`] and
    /// [`PipeReader::read_with`](crate::PipeReader::read_with).
    ///
    /// [`recv_msg`]: NamedPipeServer::recv_msg
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// use shmpipe::{PipeType, ReadMode};
    /// let name = format!(r"\\.\pipe\doc-server-recv-with-{}", std::process::id());
    /// let server = ServerOptions::new()
    ///     .pipe_type(PipeType::Message)
    ///     .read_mode(ReadMode::Message)
    ///     .create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.send_msg(b"one")?;
    /// client.send_msg(b"three")?;
    /// assert_eq!(server.recv_msg_with(|msg| msg.len())?, 3); // message by message
    /// assert_eq!(server.recv_msg_with(|msg| msg.to_vec())?, b"three");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_msg_with<R>(&self, look: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
        self.need(self.access().read_data)?;
        let modes = self.modes();
        let nonblocking = modes & MODE_NONBLOCKING != 0;
        self.with_conn(|conn| {
            if modes & MODE_MESSAGE_READ != 0 {
                conn.read_msg_with(nonblocking, look)
            } else {
                conn.read_whole_with(nonblocking, look)
            }
        })
    }

    /// Reads bytes in place (zero copy), whatever the read mode, as
    /// [`PipeReader::read_with`](crate::PipeReader::read_with) does:
    /// `look` gets the unread bytes of the next write and returns how many
    /// it consumed.
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-server-read-with-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// client.send_msg(b"abcdef")?;
    /// assert_eq!(server.read_with(|bytes| bytes.len().min(4))?, 4);
    /// assert_eq!(server.read_with(|bytes| bytes.len())?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_with(&self, look: impl FnOnce(&[u8]) -> usize) -> io::Result<usize> {
        self.need(self.access().read_data)?;
        let nonblocking = self.nonblocking();
        self.with_conn(|conn| conn.read_with(nonblocking, look))
    }

    /// Peeks (spec 4.8); `BadPipe` while Listening or Disconnected.
    pub fn peek(&self, buf: Option<&mut [u8]>) -> io::Result<PeekInfo> {
        self.need(self.access().read_data)?;
        let mut no_conn = true;
        self.with_conn(|conn| {
            no_conn = false;
            conn.peek(buf)
        })
        .map_err(|e| match Error::kind_of(&e) {
            Some(ErrorKind::PipeListening | ErrorKind::PipeNotConnected) if no_conn => {
                err(ErrorKind::BadPipe)
            }
            _ => e,
        })
    }

    /// Waits until the client read everything written (spec 4.11). `Ok`
    /// always means "read": if the client end is gone (closed or killed,
    /// before the call or while it waits) with bytes unread, it fails with
    /// `BrokenPipe` (Windows would let a flush after the close succeed; see
    /// `docs/guide/named-pipes.md`).
    ///
    /// ```
    /// use shmpipe::named::{ClientOptions, ServerOptions};
    /// let name = format!(r"\\.\pipe\doc-server-flush-{}", std::process::id());
    /// let server = ServerOptions::new().create(&name)?;
    /// let client = ClientOptions::new().open(&name)?;
    /// server.connect()?;
    /// server.send_msg(b"data")?;
    /// let t = std::thread::spawn(move || client.recv_msg(&mut [0u8; 4]).map(|m| m.len));
    /// server.flush_buffers()?; // returns once the client has read it
    /// assert_eq!(t.join().unwrap()?, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn flush_buffers(&self) -> io::Result<()> {
        self.need(self.access().write_data)?;
        self.with_conn(Conn::flush)
    }

    /// Sends `request` as one message and waits for the next message
    /// (spec 4.9).
    pub fn transact(&self, request: &[u8], reply: &mut [u8]) -> io::Result<MsgRead> {
        let a = self.access();
        self.need(a.read_data && a.write_data)?;
        if self.name.attrs.pipe_type != PipeType::Message || self.modes() & MODE_MESSAGE_READ == 0 {
            return Err(err(ErrorKind::BadPipe));
        }
        self.with_conn(|c| c.transact(request, reply))
    }
}
