//! Async anonymous pipe ends: [`PipeReader`], [`PipeWriter`], [`pipe()`].

use super::half::Half;
use crate::error::{Error, ErrorKind};
use crate::info::{PeekInfo, PipeInfo, PipeState};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};

/// Creates an anonymous pipe (4096-byte buffer) with async ends. Must be
/// called inside a tokio runtime.
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
/// let (mut reader, mut writer) = shmpipe::tokio::pipe()?;
/// writer.write_all(b"hello").await?;
/// drop(writer);
/// let mut text = String::new();
/// reader.read_to_string(&mut text).await?;
/// assert_eq!(text, "hello");
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pipe() -> io::Result<(PipeReader, PipeWriter)> {
    let (r, w) = crate::pipe()?;
    Ok((PipeReader::from_std(r)?, PipeWriter::from_std(w)?))
}

/// The reading end of an anonymous pipe, for tokio: [`AsyncRead`],
/// readiness ([`PipeReader::readable`], [`PipeReader::ready`]),
/// [`PipeReader::try_read`], and `&self` reads that may be pending several
/// at once ([`PipeReader::read_pipe`]).
///
/// Dropping a pending read consumes nothing: bytes are copied into the
/// caller's buffer and consumed in one step inside `poll`.
///
/// ```
/// use tokio::io::AsyncReadExt;
/// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
/// let (r, mut w) = shmpipe::pipe()?; // blocking ends...
/// let mut reader = shmpipe::tokio::PipeReader::from_std(r)?; // ...one made async
/// std::thread::spawn(move || std::io::Write::write_all(&mut w, b"from a thread"));
/// let mut buf = [0u8; 13];
/// reader.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"from a thread");
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PipeReader {
    end: crate::PipeReader,
    half: Half,
}

impl PipeReader {
    /// Makes a blocking read end async (inside a tokio runtime). The end's
    /// shared mode (nonblocking or not) is left alone: async operations
    /// never block either way.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (r, _w) = shmpipe::pipe()?;
    /// let reader = shmpipe::tokio::PipeReader::from_std(r)?;
    /// assert_eq!(reader.available(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(end: crate::PipeReader) -> io::Result<PipeReader> {
        Ok(PipeReader {
            end,
            half: Half::new()?,
        })
    }

    /// Gives back the blocking end.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, _writer) = shmpipe::tokio::pipe()?;
    /// let blocking: shmpipe::PipeReader = reader.into_std()?;
    /// # drop(blocking);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<crate::PipeReader> {
        Ok(self.end)
    }

    /// The blocking end, for what only it offers (state, inheritance,
    /// descriptors). Blocking calls on it block the runtime's thread.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, _writer) = shmpipe::tokio::pipe()?;
    /// assert!(!reader.get_ref().state()?.nonblocking);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &crate::PipeReader {
        &self.end
    }

    fn try_bytes(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.end.0.conn.read_bytes(buf, true)
    }

    /// Reads what is queued, waiting for something; the end of the pipe is
    /// [`ErrorKind::BrokenPipe`] (as the blocking
    /// [`read_pipe`](crate::PipeReader::read_pipe)). A zero-length `buf`
    /// completes with 0 once anything is queued and consumes nothing
    /// (spec 4.6). Takes `&self`: several reads may be pending at once;
    /// dropping one consumes nothing.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// writer.try_write(b"abc")?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(reader.read_pipe(&mut buf).await?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn read_pipe(&self, buf: &mut [u8]) -> io::Result<usize> {
        let conn = &self.end.0.conn;
        self.half
            .op(|| conn.announce_read(), || conn.read_bytes(buf, true))
            .await
    }

    /// Reads without waiting: `WouldBlock` when nothing is queued, `Ok(0)`
    /// at the end of the pipe (as [`AsyncRead`]).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(reader.try_read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// writer.try_write(b"x")?;
    /// assert_eq!(reader.try_read(&mut buf)?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        eof_is_zero(self.try_bytes(buf))
    }

    /// Waits until a read may make progress: bytes are queued, or the
    /// writing end is closed. Like tokio's, readiness can be stale by the
    /// time the caller reads: [`PipeReader::try_read`] may still say
    /// `WouldBlock` (another handle read first).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// writer.try_write(b"x")?;
    /// reader.readable().await?;
    /// assert_eq!(reader.try_read(&mut [0; 4])?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        let conn = &self.end.0.conn;
        self.half
            .op(
                || conn.announce_read(),
                || {
                    // The zero-length read is the spec's "is anything
                    // queued" (spec 4.6); it consumes nothing.
                    match conn.read_bytes(&mut [], true) {
                        Ok(_) => Ok(()),
                        Err(e) if Error::kind_of(&e) == Some(ErrorKind::BrokenPipe) => Ok(()),
                        Err(e) => Err(e),
                    }
                },
            )
            .await
    }

    /// Waits for the readiness `interest` asks for; a read end only ever
    /// becomes readable (a write interest alone never completes).
    ///
    /// ```
    /// use tokio::io::Interest;
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// writer.try_write(b"x")?;
    /// assert!(reader.ready(Interest::READABLE).await?.is_readable());
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        if !interest.is_readable() {
            std::future::pending::<()>().await;
        }
        self.readable().await?;
        Ok(Ready::READABLE)
    }

    /// Copies queued bytes without consuming them (spec 4.8); never waits.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// writer.try_write(b"abc")?;
    /// assert_eq!(reader.peek(None)?.total_available, 3);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: Option<&mut [u8]>) -> io::Result<PeekInfo> {
        self.end.peek(buf)
    }

    /// Bytes queued and not yet read.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// writer.try_write(b"abc")?;
    /// assert_eq!(reader.available(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn available(&self) -> u64 {
        self.end.available()
    }

    /// What the blocking end's [`info`](crate::PipeReader::info) reports.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, _writer) = shmpipe::tokio::pipe()?;
    /// assert_eq!(reader.info()?.in_size, 4096);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn info(&self) -> io::Result<PipeInfo> {
        self.end.info()
    }

    /// What the blocking end's [`state`](crate::PipeReader::state) reports.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, _writer) = shmpipe::tokio::pipe()?;
    /// assert_eq!(reader.state()?.current_instances, 1);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn state(&self) -> io::Result<PipeState> {
        self.end.state()
    }
}

/// A byte-pipe write of what fits the quota now (a nonblocking write is
/// all or nothing, spec 5.5: so offer it only what fits); `WouldBlock` when
/// nothing does.
pub(crate) fn try_write_bytes(conn: &crate::datapath::Conn, buf: &[u8]) -> io::Result<usize> {
    let room = u64::from(conn.quota()).saturating_sub(conn.unread_by_peer());
    // At least one byte is offered: a pending read's share (spec 5.3) may
    // take it even with the quota full, and the write path checks the peer.
    let n = buf.len().min(room.max(1) as usize);
    match conn.write(&buf[..n], true)? {
        0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
        n => Ok(n),
    }
}

fn eof_is_zero(r: io::Result<usize>) -> io::Result<usize> {
    match r {
        Err(e) if Error::kind_of(&e) == Some(ErrorKind::BrokenPipe) => Ok(0),
        r => r,
    }
}

impl AsyncRead for PipeReader {
    /// Reads what is queued, waiting for something; `Ok` with nothing
    /// filled at the end of the pipe.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = &*self;
        let conn = &this.end.0.conn;
        let dst = buf.initialize_unfilled();
        let n = std::task::ready!(this.half.poll_op(
            cx,
            || conn.announce_read(),
            || eof_is_zero(conn.read_bytes(dst, true))
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The writing end of an anonymous pipe, for tokio: [`AsyncWrite`],
/// readiness ([`PipeWriter::writable`]), [`PipeWriter::try_write`], and an
/// async [`PipeWriter::flush_buffers`] (Windows' `FlushFileBuffers`: waits
/// until the reader read everything).
///
/// A write publishes what fits the quota when it is polled and returns
/// that count; it is pending only while nothing fits, and then has
/// published nothing, so dropping a pending write leaves nothing behind.
///
/// ```
/// use tokio::io::AsyncWriteExt;
/// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
/// let (r, mut writer) = shmpipe::tokio::pipe()?;
/// writer.write_all(b"abc").await?;
/// assert_eq!(r.available(), 3);
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PipeWriter {
    end: crate::PipeWriter,
    half: Half,
}

impl PipeWriter {
    /// Makes a blocking write end async (inside a tokio runtime).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (_r, w) = shmpipe::pipe()?;
    /// let writer = shmpipe::tokio::PipeWriter::from_std(w)?;
    /// assert_eq!(writer.try_write(b"x")?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std(end: crate::PipeWriter) -> io::Result<PipeWriter> {
        Ok(PipeWriter {
            end,
            half: Half::new()?,
        })
    }

    /// Gives back the blocking end.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (_reader, writer) = shmpipe::tokio::pipe()?;
    /// let blocking: shmpipe::PipeWriter = writer.into_std()?;
    /// # drop(blocking);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> io::Result<crate::PipeWriter> {
        Ok(self.end)
    }

    /// The blocking end (state, inheritance, descriptors).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (_reader, writer) = shmpipe::tokio::pipe()?;
    /// assert!(!writer.get_ref().state()?.nonblocking);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &crate::PipeWriter {
        &self.end
    }

    fn try_some(&self, buf: &[u8]) -> io::Result<usize> {
        try_write_bytes(&self.end.0.conn, buf)
    }

    /// Writes what fits the quota now, without waiting: `WouldBlock` when
    /// nothing does. A write to a closed pipe fails at once with
    /// [`ErrorKind::NoData`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// assert_eq!(writer.try_write(&[7; 5000])?, 4096); // the quota
    /// assert_eq!(writer.try_write(b"x").unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # drop(reader);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.try_some(buf)
    }

    /// Writes what fits, waiting until something does (`&self`: several
    /// writes may be pending at once).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// assert_eq!(writer.write_pipe(b"abc").await?, 3);
    /// # drop(reader);
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn write_pipe(&self, buf: &[u8]) -> io::Result<usize> {
        let conn = &self.end.0.conn;
        self.half
            .op(|| conn.announce_write(), || self.try_some(buf))
            .await
    }

    /// Waits until a write may make progress: less than the quota is
    /// unread, or the reading end is closed (the write then fails).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (_reader, writer) = shmpipe::tokio::pipe()?;
    /// writer.writable().await?;
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        let conn = &self.end.0.conn;
        self.half
            .op(
                || conn.announce_write(),
                || {
                    if conn.unread_by_peer() < u64::from(conn.quota()) || !conn.peer_alive() {
                        Ok(())
                    } else {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                },
            )
            .await
    }

    /// Waits for the readiness `interest` asks for; a write end only ever
    /// becomes writable.
    ///
    /// ```
    /// use tokio::io::Interest;
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (_reader, writer) = shmpipe::tokio::pipe()?;
    /// assert!(writer.ready(Interest::WRITABLE).await?.is_writable());
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        if !interest.is_writable() {
            std::future::pending::<()>().await;
        }
        self.writable().await?;
        Ok(Ready::WRITABLE)
    }

    /// Waits until the reader has read everything written (Windows'
    /// `FlushFileBuffers`); [`ErrorKind::BrokenPipe`] if it closed with
    /// anything unread.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_io().build()?.block_on(async {
    /// let (reader, writer) = shmpipe::tokio::pipe()?;
    /// writer.try_write(b"abc")?;
    /// let drain = async { reader.read_pipe(&mut [0; 8]).await };
    /// let (flushed, read) = tokio::join!(writer.flush_buffers(), drain);
    /// assert_eq!(read?, 3);
    /// flushed?;
    /// # Ok::<(), std::io::Error>(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn flush_buffers(&self) -> io::Result<()> {
        let conn = &self.end.0.conn;
        self.half
            .op(
                || conn.announce_write(),
                || {
                    if conn.unread_by_peer() == 0 {
                        Ok(())
                    } else if !conn.peer_alive() {
                        Err(Error::io(ErrorKind::BrokenPipe))
                    } else {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                },
            )
            .await
    }
}

impl AsyncWrite for PipeWriter {
    /// Publishes what fits the quota; pending (having published nothing)
    /// while nothing fits.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &*self;
        let conn = &this.end.0.conn;
        this.half
            .poll_op(cx, || conn.announce_write(), || this.try_some(buf))
    }

    /// Nothing is buffered in the handle: done at once. (Waiting for the
    /// reader is [`PipeWriter::flush_buffers`].)
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// A handle cannot half-close its end: dropping it closes it. Done at
    /// once.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
