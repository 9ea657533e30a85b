//! [`PipeWriter`], the write end: its writes and flush, and the shared
//! end's methods with the write end's docs.

use super::end::{fd_conversions, would_block, AnonEnd, Side};
use crate::info::{PipeInfo, PipeState, ReadMode, WaitMode};
use shmpipe_engine::WaitPolicy;
use std::io::{self, Write};
use std::os::fd::OwnedFd;

/// The writing end of an anonymous pipe.
///
/// ```
/// use std::io::{Read, Write};
/// let (mut reader, writer) = shmpipe::pipe()?;
/// let writers = [writer.try_clone()?, writer];
/// let threads: Vec<_> = writers
///     .into_iter()
///     .map(|mut w| std::thread::spawn(move || w.write_all(b"abcd")))
///     .collect();
/// for t in threads {
///     t.join().unwrap()?;
/// }
/// let mut text = String::new();
/// reader.read_to_string(&mut text)?;
/// assert_eq!(text, "abcdabcd"); // each write stays whole
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PipeWriter(pub(crate) AnonEnd);

impl PipeWriter {
    /// Writes all of `buf` as one atomic write and waits, in blocking mode,
    /// until at most the quota's worth of bytes is unread (spec 5.2). In
    /// nonblocking mode the write is all or nothing (spec 5.5): returns the
    /// bytes written, possibly 0, never an error for a full pipe.
    ///
    /// Errors: [`ErrorKind::NoData`](crate::ErrorKind::NoData) when the read end was already closed,
    /// [`ErrorKind::BrokenPipe`](crate::ErrorKind::BrokenPipe) when it closed while the write waited.
    ///
    /// ```
    /// let (r, mut w) = shmpipe::pipe()?;           // quota 4096
    /// assert_eq!(w.try_write(&[1; 4096])?, 4096);   // fits: done at once
    /// w.set_nonblocking(true)?;
    /// assert_eq!(w.try_write(&[1; 1])?, 0);         // over the quota: nothing
    /// # drop(r);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.conn.write(buf, self.0.is_nonblocking())
    }

    /// Writes `len` bytes in place (zero copy): `fill` gets the reserved
    /// room in the pipe's shared ring and writes the bytes there; when it
    /// returns they are published as one write, which then completes like
    /// [`PipeWriter::try_write`] (spec 5.2: in blocking mode `Ok` once at
    /// most the quota's worth of bytes is unread). Returns what `fill`
    /// returned.
    ///
    /// * `len` up to the pipe's buffer size is always accepted (the limit
    ///   is half the ring less 64 bytes); a larger one fails with
    ///   [`ErrorKind::InvalidParameter`](crate::ErrorKind::InvalidParameter)
    ///   before `fill` runs: a zero-copy write is never fragmented.
    /// * Waiting for room happens before `fill` runs: cancelled there
    ///   ([`Canceller`](crate::Canceller)) or with the reader gone, nothing
    ///   was written and `fill` never ran. Cancelled while it waits for the
    ///   quota, the write is withdrawn as a copy write is (spec 7.4).
    /// * `fill` runs under the pipe's writer lock: other writers of this
    ///   pipe wait meanwhile, so keep it short, and do not use this end
    ///   from inside it. If it panics, nothing is published.
    /// * Nonblocking mode: if the write does not fit the quota and the ring
    ///   now, fails with [`io::ErrorKind::WouldBlock`] and `fill` does not
    ///   run.
    /// * The room is memory the reading process can also write: bytes read
    ///   back from it are not necessarily the bytes written (see the guide,
    ///   "Zero copy").
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut r, w) = shmpipe::pipe()?;
    /// let n = w.write_with(5, |buf| {
    ///     buf.copy_from_slice(b"hello");
    ///     buf.len()
    /// })?;
    /// assert_eq!(n, 5);
    /// let mut got = [0u8; 5];
    /// r.read_exact(&mut got)?;
    /// assert_eq!(&got, b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_with<R>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> io::Result<R> {
        self.0.conn.write_with(len, self.0.is_nonblocking(), fill)
    }

    /// Waits until the reader has read every byte written to this end
    /// (Windows' `FlushFileBuffers`, spec 4.11). Returns at once when nothing
    /// is unread. `Ok` always means "read": if the read end is gone (closed
    /// or killed, before the call or while it waits) with bytes unread, it
    /// fails with [`ErrorKind::BrokenPipe`](crate::ErrorKind::BrokenPipe) (Windows would let a flush after
    /// the close succeed).
    /// ([`Write::flush`] does not wait: like `std`'s pipes, it has no buffer
    /// to flush.)
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut r, mut w) = shmpipe::pipe()?;
    /// w.write_all(b"ping")?;
    /// let t = std::thread::spawn(move || { let mut b = [0; 4]; r.read_exact(&mut b).map(|_| b) });
    /// w.flush_buffers()?; // returns once "ping" was read
    /// assert_eq!(&t.join().unwrap()?, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn flush_buffers(&self) -> io::Result<()> {
        self.0.conn.flush()
    }

    /// See [`PipeReader::info`](super::PipeReader::info): the write end reports itself as the client
    /// end.
    ///
    /// ```
    /// let (_reader, writer) = shmpipe::pipe()?;
    /// assert_eq!(writer.info()?.end, shmpipe::EndKind::Client);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn info(&self) -> io::Result<PipeInfo> {
        Ok(self.0.info())
    }

    /// The end's modes (spec 4.15).
    ///
    /// ```
    /// let (_reader, writer) = shmpipe::pipe()?;
    /// writer.set_nonblocking(true)?;
    /// assert!(writer.state()?.nonblocking);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn state(&self) -> io::Result<PipeState> {
        Ok(self.0.state())
    }

    /// Changes the end's modes (spec 4.16); message read mode is refused with
    /// [`ErrorKind::InvalidParameter`](crate::ErrorKind::InvalidParameter).
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind, ReadMode, WaitMode};
    /// let (_reader, writer) = shmpipe::pipe()?;
    /// writer.set_state(None, Some(WaitMode::Nonblocking))?;
    /// assert!(writer.state()?.nonblocking);
    /// let e = writer.set_state(Some(ReadMode::Message), None).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::InvalidParameter));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_state(
        &self,
        read_mode: Option<ReadMode>,
        wait_mode: Option<WaitMode>,
    ) -> io::Result<()> {
        self.0.set_state(read_mode, wait_mode)
    }

    /// Shorthand for `set_state(None, Some(..))`.
    ///
    /// ```
    /// use std::io::Write;
    /// let (_reader, mut writer) = shmpipe::PipeBuilder::new().buffer_size(4).build()?;
    /// writer.set_nonblocking(true)?;
    /// writer.write_all(b"1234")?;
    /// let e = writer.write(b"5").unwrap_err(); // over the quota
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.set_state(None, Some(WaitMode::from_nonblocking(nonblocking)))
    }

    /// Whether this handle may be passed to a child process.
    ///
    /// ```
    /// let (_reader, writer) = shmpipe::PipeBuilder::new().inheritable(true).build()?;
    /// assert!(writer.is_inheritable());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_inheritable(&self) -> bool {
        self.0.inheritable
    }

    /// Sets whether this handle may be passed to a child process.
    ///
    /// ```
    /// let (_reader, mut writer) = shmpipe::PipeBuilder::new().inheritable(true).build()?;
    /// writer.set_inheritable(false);
    /// assert!(!writer.is_inheritable());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_inheritable(&mut self, yes: bool) {
        self.0.inheritable = yes;
    }

    /// The canceller of this handle's blocking writes (waiting for the quota) and flushes (Windows'
    /// `CancelIoEx`); each handle, duplicates included, has its own. See
    /// [`Canceller`](crate::Canceller) for what a cancelled operation
    /// leaves behind.
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind};
    /// use std::io::Write;
    /// let (_reader, mut writer) = shmpipe::pipe()?;
    /// writer.write_all(b"unread")?;
    /// let canceller = writer.canceller();
    /// // The flush waits for the reader, which never reads.
    /// let t = std::thread::spawn(move || writer.flush_buffers());
    /// while canceller.pending() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// canceller.cancel()?;
    /// let e = t.join().unwrap().unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::OperationAborted));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn canceller(&self) -> crate::Canceller {
        crate::Canceller(self.0.conn.canceller())
    }

    /// A duplicate handle of the same end.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut reader, mut writer) = shmpipe::pipe()?;
    /// let mut duplicate = writer.try_clone()?;
    /// writer.write_all(b"a")?;
    /// drop(writer);
    /// duplicate.write_all(b"b")?;
    /// drop(duplicate); // the last write handle: end of data
    /// let mut text = String::new();
    /// reader.read_to_string(&mut text)?;
    /// assert_eq!(text, "ab");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<PipeWriter> {
        self.0.try_clone().map(PipeWriter)
    }

    /// Rebuilds a write end from a descriptor made by [`PipeWriter::into_fd`].
    /// A read end's descriptor is refused with [`ErrorKind::AccessDenied`](crate::ErrorKind::AccessDenied).
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind, PipeWriter};
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// let e = PipeWriter::from_fd(reader.into_fd()).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied)); // a read end
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_fd(fd: OwnedFd) -> io::Result<PipeWriter> {
        AnonEnd::from_fd(fd, Side::Writer).map(PipeWriter)
    }

    /// The descriptor that carries this end to another process.
    ///
    /// ```
    /// use shmpipe::PipeWriter;
    /// use std::io::{Read, Write};
    /// let (mut reader, writer) = shmpipe::pipe()?;
    /// let mut writer = PipeWriter::from_fd(writer.into_fd())?;
    /// writer.write_all(b"fd")?;
    /// let mut buf = [0u8; 2];
    /// reader.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"fd");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_fd(self) -> OwnedFd {
        self.0.into_fd()
    }

    /// Sets how blocking writes wait (this handle only).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// let (mut reader, mut writer) = shmpipe::PipeBuilder::new().buffer_size(4).build()?;
    /// writer.set_wait_policy(shmpipe::WaitPolicy::spin_then_park(Duration::from_micros(50)));
    /// let t = std::thread::spawn(move || writer.write_all(b"12345678")); // waits for the reader
    /// let mut buf = [0u8; 8];
    /// reader.read_exact(&mut buf)?;
    /// t.join().unwrap()?;
    /// assert_eq!(&buf, b"12345678");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.0.conn.set_wait_policy(policy);
    }
}

impl Write for PipeWriter {
    /// See `Write for &PipeWriter`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    /// Does nothing (see [`PipeWriter::flush_buffers`]).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writing through a shared reference is sound: each write is atomic, and
/// concurrent writes of one handle are serialised inside, as writes through
/// duplicate handles are.
impl Write for &PipeWriter {
    /// Writes all of `buf` (one atomic write; see [`PipeWriter::try_write`]).
    /// A nonblocking end that cannot take the write returns `WouldBlock`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.try_write(buf)? {
            0 if !buf.is_empty() => Err(would_block()),
            n => Ok(n),
        }
    }

    /// Does nothing: a pipe has no user-space buffer. To wait until the
    /// reader has read everything, use [`PipeWriter::flush_buffers`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fd_conversions!(PipeWriter, "writer", "(_reader, writer)");
