//! [`PipeReader`], the read end: its reads and peeks, and the shared end's
//! methods with the read end's docs.

use super::end::{fd_conversions, AnonEnd, Side};
use crate::error::{Error, ErrorKind};
use crate::info::{PeekInfo, PipeInfo, PipeState, ReadMode, WaitMode};
use shmpipe_engine::WaitPolicy;
use std::io::{self, Read};
use std::os::fd::OwnedFd;

/// The reading end of an anonymous pipe.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// let (reader, mut writer) = shmpipe::pipe()?;
/// writeln!(writer, "one")?;
/// writeln!(writer, "two")?;
/// drop(writer);
/// let lines = BufReader::new(reader).lines().collect::<std::io::Result<Vec<_>>>()?;
/// assert_eq!(lines, ["one", "two"]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PipeReader(pub(crate) AnonEnd);

impl PipeReader {
    /// Reads like [`Read::read`], but reports the end of the pipe as the
    /// spec does: [`ErrorKind::BrokenPipe`](crate::ErrorKind::BrokenPipe) once every write handle is closed
    /// and everything was read (a Windows `ReadFile`), instead of `Ok(0)`.
    /// A zero-length `buf` also behaves as `ReadFile` does (spec 4.6): it
    /// returns `Ok(0)` once anything is queued, waiting for it in blocking
    /// mode, and consumes nothing.
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind};
    /// use std::io::Write;
    /// let (mut r, mut w) = shmpipe::pipe()?;
    /// w.write_all(b"x")?;
    /// drop(w);
    /// let mut buf = [0u8; 4];
    /// assert_eq!(r.read_pipe(&mut buf)?, 1);
    /// let end = r.read_pipe(&mut buf).unwrap_err();
    /// assert_eq!(Error::kind_of(&end), Some(ErrorKind::BrokenPipe));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_pipe(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.conn.read_bytes(buf, self.0.is_nonblocking())
    }

    /// Reads in place (zero copy), like [`std::io::BufRead::fill_buf`] and
    /// [`consume`](std::io::BufRead::consume) in one call: `look` gets the
    /// unread bytes of the next write in the pipe's shared ring (at least
    /// one byte, or an empty slice for a zero-length write) and returns how
    /// many of them it consumed (more than it got counts as all). Returns
    /// that count. Waits for data in blocking mode; the end of the pipe is
    /// [`ErrorKind::BrokenPipe`](crate::ErrorKind::BrokenPipe), nothing
    /// queued in nonblocking mode [`io::ErrorKind::WouldBlock`].
    ///
    /// * The slice never spans two writes: a write is consumed by one or
    ///   more calls, as `look` decides.
    /// * `look` runs under the pipe's reader lock: keep it short, and do
    ///   not use this end from inside it. If it panics, nothing is
    ///   consumed.
    /// * **The slice is memory the writing process can still change.** A
    ///   well-behaved writer never touches it; a hostile one can change its
    ///   bytes while `look` runs. That changes values only (this crate took
    ///   every length and position from checked copies before making the
    ///   slice, and never reads the bytes itself), but two reads of the
    ///   same byte may disagree: validate what you copied out, not the
    ///   slice in place (see the guide, "Zero copy").
    ///
    /// ```
    /// use std::io::Write;
    /// let (r, mut w) = shmpipe::pipe()?;
    /// w.write_all(b"hello")?;
    /// let mut seen = Vec::new();
    /// let n = r.read_with(|bytes| {
    ///     seen.extend_from_slice(&bytes[..2]);
    ///     2 // consume "he"; "llo" stays queued
    /// })?;
    /// assert_eq!((n, &seen[..]), (2, &b"he"[..]));
    /// assert_eq!(r.read_with(|bytes| bytes.len())?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_with(&self, look: impl FnOnce(&[u8]) -> usize) -> io::Result<usize> {
        self.0.conn.read_with(self.0.is_nonblocking(), look)
    }

    /// Copies queued bytes into `buf` without consuming them and reports
    /// what is queued; never waits (spec 4.8). `None` asks only for the
    /// counts.
    ///
    /// ```
    /// use std::io::Write;
    /// let (mut r, mut w) = shmpipe::pipe()?;
    /// w.write_all(b"abcdef")?;
    /// let mut buf = [0u8; 4];
    /// let p = r.peek(Some(&mut buf))?;
    /// assert_eq!((p.copied, p.total_available, p.left_in_message), (4, 6, 0));
    /// assert_eq!(&buf, b"abcd");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: Option<&mut [u8]>) -> io::Result<PeekInfo> {
        self.0.conn.peek(buf)
    }

    /// Bytes queued and not yet read.
    ///
    /// ```
    /// use std::io::Write;
    /// let (reader, mut writer) = shmpipe::pipe()?;
    /// writer.write_all(b"abc")?;
    /// assert_eq!(reader.available(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn available(&self) -> u64 {
        self.0.conn.available()
    }

    /// What `get_info` reports for the read end: the server end of a byte
    /// pipe with both sizes equal to the effective buffer size and one
    /// instance (spec 4.14).
    ///
    /// ```
    /// let (reader, _writer) = shmpipe::PipeBuilder::new().buffer_size(1024).build()?;
    /// let info = reader.info()?;
    /// assert_eq!(info.end, shmpipe::EndKind::Server);
    /// assert_eq!((info.in_size, info.out_size, info.max_instances), (1024, 1024, 1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn info(&self) -> io::Result<PipeInfo> {
        Ok(self.0.info())
    }

    /// The end's modes (spec 4.15): byte-read always; nonblocking as set.
    ///
    /// ```
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// let state = reader.state()?;
    /// assert!(!state.nonblocking && !state.message_read);
    /// assert_eq!(state.current_instances, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn state(&self) -> io::Result<PipeState> {
        Ok(self.0.state())
    }

    /// Changes the end's modes (spec 4.16). Message read mode is refused
    /// with [`ErrorKind::InvalidParameter`](crate::ErrorKind::InvalidParameter): anonymous pipes are byte pipes.
    /// The change applies to every handle of this end.
    ///
    /// ```
    /// use shmpipe::WaitMode;
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// let duplicate = reader.try_clone()?;
    /// reader.set_state(None, Some(WaitMode::Nonblocking))?;
    /// assert!(duplicate.state()?.nonblocking); // the mode belongs to the end
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
    /// use std::io::Read;
    /// let (mut reader, _writer) = shmpipe::pipe()?;
    /// reader.set_nonblocking(true)?;
    /// let e = reader.read(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.set_state(None, Some(WaitMode::from_nonblocking(nonblocking)))
    }

    /// Whether this handle may be passed to a child process.
    ///
    /// ```
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// assert!(!reader.is_inheritable()); // `pipe()` makes private ends
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_inheritable(&self) -> bool {
        self.0.inheritable
    }

    /// Sets whether this handle may be passed to a child process.
    ///
    /// ```
    /// let (mut reader, _writer) = shmpipe::pipe()?;
    /// reader.set_inheritable(true);
    /// assert!(reader.is_inheritable());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_inheritable(&mut self, yes: bool) {
        self.0.inheritable = yes;
    }

    /// The canceller of this handle's blocking reads (Windows'
    /// `CancelIoEx`); each handle, duplicates included, has its own. See
    /// [`Canceller`](crate::Canceller) for what a cancelled operation
    /// leaves behind.
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind};
    /// use std::io::Read;
    /// let (mut reader, _writer) = shmpipe::pipe()?;
    /// let canceller = reader.canceller();
    /// let t = std::thread::spawn(move || reader.read(&mut [0u8; 8]));
    /// while canceller.pending() == 0 {
    ///     std::thread::yield_now(); // until the read waits
    /// }
    /// canceller.cancel()?;
    /// let e = t.join().unwrap().unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::OperationAborted));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn canceller(&self) -> crate::Canceller {
        crate::Canceller(self.0.conn.canceller())
    }

    /// A duplicate handle of the same end (spec 1.6): the end stays open
    /// until every duplicate, in every process, is closed.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (reader, mut writer) = shmpipe::pipe()?;
    /// let mut duplicate = reader.try_clone()?;
    /// drop(reader);
    /// writer.write_all(b"still open")?; // the duplicate keeps the read end open
    /// let mut buf = [0u8; 10];
    /// duplicate.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"still open");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<PipeReader> {
        self.0.try_clone().map(PipeReader)
    }

    /// Rebuilds a read end from a descriptor made by [`PipeReader::into_fd`]
    /// (received from another process). A descriptor of anything but an
    /// anonymous read end is refused: a write end with
    /// [`ErrorKind::AccessDenied`](crate::ErrorKind::AccessDenied), anything else with
    /// [`ErrorKind::InvalidHandle`](crate::ErrorKind::InvalidHandle).
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind, PipeReader};
    /// let (_reader, writer) = shmpipe::pipe()?;
    /// let e = PipeReader::from_fd(writer.into_fd()).unwrap_err();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied)); // a write end
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_fd(fd: OwnedFd) -> io::Result<PipeReader> {
        AnonEnd::from_fd(fd, Side::Reader).map(PipeReader)
    }

    /// The descriptor that carries this end to another process.
    ///
    /// ```
    /// use shmpipe::PipeReader;
    /// use std::io::{Read, Write};
    /// let (reader, mut writer) = shmpipe::pipe()?;
    /// let fd = reader.into_fd(); // e.g. to send to another process
    /// let mut reader = PipeReader::from_fd(fd)?;
    /// writer.write_all(b"fd")?;
    /// let mut buf = [0u8; 2];
    /// reader.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"fd");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_fd(self) -> OwnedFd {
        self.0.into_fd()
    }

    /// Sets how blocking reads wait (this handle only).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut reader, mut writer) = shmpipe::pipe()?;
    /// reader.set_wait_policy(shmpipe::WaitPolicy::park());
    /// let t = std::thread::spawn(move || writer.write_all(b"wake"));
    /// let mut buf = [0u8; 4];
    /// reader.read_exact(&mut buf)?;
    /// t.join().unwrap()?;
    /// assert_eq!(&buf, b"wake");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.0.conn.set_wait_policy(policy);
    }
}

impl Read for PipeReader {
    /// See `Read for &PipeReader`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

/// Reading through a shared reference is sound: concurrent reads of one
/// handle are serialised inside, like reads through duplicate handles.
impl Read for &PipeReader {
    /// Reads available bytes, waiting for some (unless nonblocking). At the
    /// end of the pipe returns `Ok(0)`, as `std` readers do; so does an empty
    /// `buf`, at once.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.read_pipe(buf) {
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::BrokenPipe) => Ok(0),
            r => r,
        }
    }
}

fd_conversions!(PipeReader, "reader", "(reader, _writer)");
