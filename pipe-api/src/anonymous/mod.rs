//! Anonymous pipes: one-way, byte-stream pipes between related processes
//! (Windows' `CreatePipe`).
//!
//! [`pipe()`] mirrors [`std::io::pipe`]; [`PipeBuilder`] sets the buffer size
//! (the write quota of spec 2.4) and inheritability. The read end behaves as
//! the server end of an inbound pipe and the write end as its client end
//! (spec 1.2), which is what [`PipeReader::info`] and [`PipeWriter::info`]
//! report.
//!
//! # Data semantics
//!
//! * A write is atomic: its bytes are contiguous in the stream even with
//!   several writers (handles duplicated across threads and processes).
//! * A blocking write returns when at most *quota* bytes, its own included,
//!   are unread (spec 5.2); a single write up to the quota therefore returns
//!   at once, and a larger one returns as the reader catches up. The bytes of
//!   a write are readable from the moment they are published, before the
//!   write returns.
//! * End of data: once every handle of the write end, in every process, is
//!   closed (or its process died), the reader gets what was written and then
//!   end-of-pipe: `Ok(0)` from [`Read::read`], [`ErrorKind::BrokenPipe`] from
//!   [`PipeReader::read_pipe`]. A write after every read handle closed fails
//!   with [`ErrorKind::NoData`] (`io::ErrorKind::BrokenPipe`); there is no
//!   SIGPIPE.
//! * Nonblocking ends ([`PipeReader::set_nonblocking`]) return
//!   `WouldBlock` (kind [`ErrorKind::NoData`]) from a read with nothing
//!   queued; a nonblocking write follows spec 5.5 (all or nothing,
//!   [`PipeWriter::try_write`]).
//!
//! ```
//! use std::io::{Read, Write};
//! let (mut reader, mut writer) = shmpipe::pipe()?;
//! writer.write_all(b"hello")?;
//! drop(writer);
//! let mut text = String::new();
//! reader.read_to_string(&mut text)?;
//! assert_eq!(text, "hello");
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::conn::Conn;
use crate::error::{from_engine, Error, ErrorKind};
use crate::info::{EndKind, PeekInfo, PipeInfo, PipeState, PipeType, ReadMode, WaitMode};
use crate::quota::ring_capacity;
use shmpipe_engine::channel::{End, ROLE_READER, ROLE_WRITER};
use shmpipe_engine::layout::{HANGUP_READER, HANGUP_WRITER};
use shmpipe_engine::WaitPolicy;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// `user_flags` of an anonymous pipe's segment.
pub(crate) const KIND_ANONYMOUS: u32 = 0x414e_4f4e; // "ANON"
/// The default buffer size (and quota) for a size hint of 0.
///
/// ```
/// use shmpipe::{anonymous::DEFAULT_BUFFER_SIZE, PipeBuilder};
/// let (reader, _writer) = PipeBuilder::new().buffer_size(0).build()?;
/// assert_eq!(reader.info()?.in_size, DEFAULT_BUFFER_SIZE);
/// # Ok::<(), std::io::Error>(())
/// ```
pub const DEFAULT_BUFFER_SIZE: u32 = 4096;

// Per-end modes live in the ring's user words, so that every handle of an
// end, in every process, shares them (SEM-027). A peer could write anything
// there: they are only ever tested as flags.
const W_READER_MODE: usize = 0;
const W_WRITER_MODE: usize = 1;
const MODE_NONBLOCKING: u64 = 1;

/// Creates an anonymous pipe with the default buffer size (4096 bytes) whose
/// ends are not inheritable. Mirrors [`std::io::pipe`].
///
/// ```
/// let (reader, writer) = shmpipe::pipe()?;
/// assert_eq!(reader.info()?.in_size, 4096);
/// # drop((reader, writer));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    PipeBuilder::new().build()
}

/// Options for creating an anonymous pipe.
///
/// ```
/// let (reader, writer) = shmpipe::PipeBuilder::new()
///     .buffer_size(64 * 1024)
///     .inheritable(true)
///     .build()?;
/// assert!(writer.is_inheritable());
/// assert_eq!(reader.info()?.out_size, 64 * 1024);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PipeBuilder {
    size: u32,
    inheritable: bool,
    policy: Option<WaitPolicy>,
}

impl Default for PipeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PipeBuilder {
    /// Default options: buffer size 4096, not inheritable.
    ///
    /// ```
    /// let (_reader, writer) = shmpipe::PipeBuilder::new().build()?;
    /// assert!(!writer.is_inheritable());
    /// assert_eq!(writer.info()?.out_size, 4096);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        PipeBuilder {
            size: 0,
            inheritable: false,
            policy: None,
        }
    }

    /// The buffer size hint: the write quota (spec 2.4). 0 means 4096.
    ///
    /// ```
    /// let (_reader, mut writer) = shmpipe::PipeBuilder::new().buffer_size(100).build()?;
    /// writer.set_nonblocking(true)?;
    /// assert_eq!(writer.try_write(&[7; 100])?, 100);
    /// assert_eq!(writer.try_write(&[7; 1])?, 0); // 100 bytes unread: the quota is full
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn buffer_size(&mut self, size: u32) -> &mut Self {
        self.size = size;
        self
    }

    /// Whether both ends may be handed to child processes
    /// ([`CommandExt::inherit_end`](crate::CommandExt::inherit_end)).
    ///
    /// ```
    /// let (reader, writer) = shmpipe::PipeBuilder::new().inheritable(true).build()?;
    /// assert!(reader.is_inheritable() && writer.is_inheritable());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn inheritable(&mut self, yes: bool) -> &mut Self {
        self.inheritable = yes;
        self
    }

    /// How blocking operations wait (default: spin briefly, then park).
    ///
    /// ```
    /// use shmpipe::{PipeBuilder, WaitPolicy};
    /// use std::io::{Read, Write};
    /// let (mut reader, mut writer) = PipeBuilder::new().wait_policy(WaitPolicy::spin()).build()?;
    /// writer.write_all(b"spun")?;
    /// let mut buf = [0u8; 4];
    /// reader.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"spun");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_policy(&mut self, policy: WaitPolicy) -> &mut Self {
        self.policy = Some(policy);
        self
    }

    /// Creates the pipe.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let (mut reader, mut writer) = shmpipe::PipeBuilder::new().build()?;
    /// writer.write_all(b"ok")?;
    /// let mut buf = [0u8; 2];
    /// reader.read_exact(&mut buf)?;
    /// assert_eq!(&buf, b"ok");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(&self) -> io::Result<(PipeReader, PipeWriter)> {
        let quota = if self.size == 0 {
            DEFAULT_BUFFER_SIZE
        } else {
            self.size
        };
        let mut user = [0u64; 8];
        user[0] = u64::from(quota);
        let (tx, rx) = shmpipe_engine::channel_with(ring_capacity(quota), KIND_ANONYMOUS, user)
            .map_err(|e| from_engine(e, ErrorKind::BrokenPipe))?;
        let (wend, rend) = (Arc::clone(tx.end()), Arc::clone(rx.end()));
        drop((tx, rx));
        Ok((
            PipeReader(AnonEnd::new(
                rend,
                Side::Reader,
                quota,
                self.inheritable,
                self.policy,
            )?),
            PipeWriter(AnonEnd::new(
                wend,
                Side::Writer,
                quota,
                self.inheritable,
                self.policy,
            )?),
        ))
    }
}

/// Which end of the pipe's one ring a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Reader,
    Writer,
}

impl Side {
    fn role(self) -> u32 {
        match self {
            Side::Reader => ROLE_READER,
            Side::Writer => ROLE_WRITER,
        }
    }

    fn peer_role(self) -> u32 {
        match self {
            Side::Reader => ROLE_WRITER,
            Side::Writer => ROLE_READER,
        }
    }

    fn hangup(self) -> u32 {
        match self {
            Side::Reader => HANGUP_READER,
            Side::Writer => HANGUP_WRITER,
        }
    }

    /// The ring's user word holding this end's modes: in the segment, so
    /// duplicates in every process share them.
    fn mode_word(self) -> usize {
        match self {
            Side::Reader => W_READER_MODE,
            Side::Writer => W_WRITER_MODE,
        }
    }

    /// Windows reports the read end as the server end (spec 4.14).
    fn end_kind(self) -> EndKind {
        match self {
            Side::Reader => EndKind::Server,
            Side::Writer => EndKind::Client,
        }
    }
}

/// What a reader and a writer share: one handle of one end of the ring.
#[derive(Debug)]
struct AnonEnd {
    conn: Conn,
    side: Side,
    quota: u32,
    inheritable: bool,
}

impl AnonEnd {
    fn new(
        end: Arc<End>,
        side: Side,
        quota: u32,
        inheritable: bool,
        policy: Option<WaitPolicy>,
    ) -> io::Result<AnonEnd> {
        let (write, read) = match side {
            Side::Reader => (None, Some(0)),
            Side::Writer => (Some(0), None),
        };
        let conn = Conn::new(
            end,
            write,
            read,
            side.peer_role(),
            PipeType::Byte,
            quota,
            policy,
        )?;
        Ok(AnonEnd {
            conn,
            side,
            quota,
            inheritable,
        })
    }

    fn from_fd(fd: OwnedFd, side: Side) -> io::Result<AnonEnd> {
        let end = End::attach(fd, side.role(), &[(0, side.hangup())]).map_err(map_from_fd)?;
        let quota = quota_of(&end)?;
        AnonEnd::new(end, side, quota, false, None)
    }

    fn try_clone(&self) -> io::Result<AnonEnd> {
        let end = self.conn.end().try_clone().map_err(map_from_fd)?;
        AnonEnd::new(end, self.side, self.quota, self.inheritable, None)
    }

    fn into_fd(self) -> OwnedFd {
        End::into_fd(Arc::clone(self.conn.end())).expect("duplicating a descriptor we own")
    }

    fn modes(&self) -> &AtomicU64 {
        &self.conn.user_words()[self.side.mode_word()]
    }

    fn is_nonblocking(&self) -> bool {
        self.modes().load(Relaxed) & MODE_NONBLOCKING != 0
    }

    fn info(&self) -> PipeInfo {
        PipeInfo {
            end: self.side.end_kind(),
            pipe_type: PipeType::Byte,
            out_size: self.quota,
            in_size: self.quota,
            max_instances: 1,
        }
    }

    fn state(&self) -> PipeState {
        PipeState {
            nonblocking: self.is_nonblocking(),
            message_read: false,
            current_instances: 1,
        }
    }

    fn set_state(
        &self,
        read_mode: Option<ReadMode>,
        wait_mode: Option<WaitMode>,
    ) -> io::Result<()> {
        if read_mode == Some(ReadMode::Message) {
            return Err(Error::io(ErrorKind::InvalidParameter));
        }
        match wait_mode {
            Some(WaitMode::Nonblocking) => {
                self.modes().fetch_or(MODE_NONBLOCKING, Relaxed);
            }
            Some(WaitMode::Blocking) => {
                self.modes().fetch_and(!MODE_NONBLOCKING, Relaxed);
            }
            None => {}
        }
        Ok(())
    }
}

/// Reads the quota from a validated segment header (still peer-written data:
/// clamp to the u32 range the API promises).
fn quota_of(end: &End) -> io::Result<u32> {
    let h = end.segment().header();
    if h.user_flags != KIND_ANONYMOUS || h.ring_count != 1 {
        return Err(Error::with_source(
            ErrorKind::InvalidHandle,
            "descriptor is not an anonymous pipe end",
        )
        .into());
    }
    Ok(h.user[0].min(u64::from(u32::MAX)) as u32)
}

fn map_from_fd(e: shmpipe_engine::Error) -> io::Error {
    match e {
        shmpipe_engine::Error::WrongEnd => Error::with_source(ErrorKind::AccessDenied, e).into(),
        shmpipe_engine::Error::Corrupt(_) | shmpipe_engine::Error::Incompatible(_) => {
            Error::with_source(ErrorKind::InvalidHandle, e).into()
        }
        e => from_engine(e, ErrorKind::BrokenPipe),
    }
}

fn would_block() -> io::Error {
    io::Error::new(io::ErrorKind::WouldBlock, Error::new(ErrorKind::NoData))
}

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
pub struct PipeReader(AnonEnd);

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
pub struct PipeWriter(AnonEnd);

impl PipeReader {
    /// Reads like [`Read::read`], but reports the end of the pipe as the
    /// spec does: [`ErrorKind::BrokenPipe`] once every write handle is closed
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
    /// with [`ErrorKind::InvalidParameter`]: anonymous pipes are byte pipes.
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
    /// [`ErrorKind::AccessDenied`], anything else with
    /// [`ErrorKind::InvalidHandle`].
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

/// The end's descriptor: the shared-memory segment, holding the end's
/// liveness lock. It is not a kernel pipe: polling it says nothing about
/// data, and it must not become a child's stdin or stdout (see
/// [`crate::redirect`]); pass it on with [`PipeReader::send_to`] or
/// [`CommandExt::inherit_end`](crate::CommandExt::inherit_end).
///
/// ```
/// use std::os::fd::AsFd;
/// let (reader, _writer) = shmpipe::pipe()?;
/// let fd = reader.as_fd();
/// # let _ = fd;
/// # Ok::<(), std::io::Error>(())
/// ```
impl AsFd for PipeReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.conn.end().fd()
    }
}

/// The descriptor number (see `AsFd for PipeReader`).
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (reader, _writer) = shmpipe::pipe()?;
/// assert!(reader.as_raw_fd() >= 0);
/// # Ok::<(), std::io::Error>(())
/// ```
impl AsRawFd for PipeReader {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// Gives up the handle, keeping the end open in the descriptor (see
/// [`PipeReader::into_fd`]).
///
/// ```
/// use std::os::fd::OwnedFd;
/// let (reader, _writer) = shmpipe::pipe()?;
/// let fd: OwnedFd = reader.into();
/// let back = shmpipe::PipeReader::try_from(fd)?;
/// # let _ = back;
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<PipeReader> for OwnedFd {
    fn from(end: PipeReader) -> OwnedFd {
        end.into_fd()
    }
}

/// Adopts a descriptor of this kind of end ([`PipeReader::from_fd`]: the
/// segment is validated, and a descriptor of anything else is refused, so
/// this is `TryFrom`, unlike std's infallible `From<OwnedFd>`).
///
/// ```
/// use std::os::fd::OwnedFd;
/// let (reader, _writer) = shmpipe::pipe()?;
/// let fd: OwnedFd = reader.into();
/// let again = shmpipe::PipeReader::try_from(fd)?;
/// # let _ = again;
/// # Ok::<(), std::io::Error>(())
/// ```
impl TryFrom<OwnedFd> for PipeReader {
    type Error = io::Error;

    fn try_from(fd: OwnedFd) -> io::Result<PipeReader> {
        PipeReader::from_fd(fd)
    }
}

impl PipeWriter {
    /// Writes all of `buf` as one atomic write and waits, in blocking mode,
    /// until at most the quota's worth of bytes is unread (spec 5.2). In
    /// nonblocking mode the write is all or nothing (spec 5.5): returns the
    /// bytes written, possibly 0, never an error for a full pipe.
    ///
    /// Errors: [`ErrorKind::NoData`] when the read end was already closed,
    /// [`ErrorKind::BrokenPipe`] when it closed while the write waited.
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

    /// Waits until the reader has read every byte written to this end
    /// (Windows' `FlushFileBuffers`, spec 4.11). Returns at once when nothing
    /// is unread. `Ok` always means "read": if the read end is gone (closed
    /// or killed, before the call or while it waits) with bytes unread, it
    /// fails with [`ErrorKind::BrokenPipe`] (Windows would let a flush after
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

    /// See [`PipeReader::info`]: the write end reports itself as the client
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
    /// [`ErrorKind::InvalidParameter`].
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
    /// A read end's descriptor is refused with [`ErrorKind::AccessDenied`].
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

/// The end's descriptor: the shared-memory segment, holding the end's
/// liveness lock. It is not a kernel pipe: polling it says nothing about
/// data, and it must not become a child's stdin or stdout (see
/// [`crate::redirect`]); pass it on with [`PipeWriter::send_to`] or
/// [`CommandExt::inherit_end`](crate::CommandExt::inherit_end).
///
/// ```
/// use std::os::fd::AsFd;
/// let (_reader, writer) = shmpipe::pipe()?;
/// let fd = writer.as_fd();
/// # let _ = fd;
/// # Ok::<(), std::io::Error>(())
/// ```
impl AsFd for PipeWriter {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.conn.end().fd()
    }
}

/// The descriptor number (see `AsFd for PipeWriter`).
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (_reader, writer) = shmpipe::pipe()?;
/// assert!(writer.as_raw_fd() >= 0);
/// # Ok::<(), std::io::Error>(())
/// ```
impl AsRawFd for PipeWriter {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// Gives up the handle, keeping the end open in the descriptor (see
/// [`PipeWriter::into_fd`]).
///
/// ```
/// use std::os::fd::OwnedFd;
/// let (_reader, writer) = shmpipe::pipe()?;
/// let fd: OwnedFd = writer.into();
/// let back = shmpipe::PipeWriter::try_from(fd)?;
/// # let _ = back;
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<PipeWriter> for OwnedFd {
    fn from(end: PipeWriter) -> OwnedFd {
        end.into_fd()
    }
}

/// Adopts a descriptor of this kind of end ([`PipeWriter::from_fd`]: the
/// segment is validated, and a descriptor of anything else is refused, so
/// this is `TryFrom`, unlike std's infallible `From<OwnedFd>`).
///
/// ```
/// use std::os::fd::OwnedFd;
/// let (_reader, writer) = shmpipe::pipe()?;
/// let fd: OwnedFd = writer.into();
/// let again = shmpipe::PipeWriter::try_from(fd)?;
/// # let _ = again;
/// # Ok::<(), std::io::Error>(())
/// ```
impl TryFrom<OwnedFd> for PipeWriter {
    type Error = io::Error;

    fn try_from(fd: OwnedFd) -> io::Result<PipeWriter> {
        PipeWriter::from_fd(fd)
    }
}
