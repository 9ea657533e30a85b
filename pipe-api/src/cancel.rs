//! Cancelling a handle's blocked operations from another thread (Windows'
//! `CancelIoEx`, spec 7.4): [`Canceller`].

use crate::error::{Error, ErrorKind};
use std::io;

/// Cancels the blocking operations of one pipe handle that are pending
/// (waiting) when [`Canceller::cancel`] is called, from any thread: Windows'
/// `CancelIoEx(handle, NULL)`.
///
/// Get one from the handle: [`PipeReader::canceller`](crate::PipeReader::canceller),
/// [`PipeWriter::canceller`](crate::PipeWriter::canceller),
/// [`NamedPipeServer::canceller`](crate::named::NamedPipeServer::canceller),
/// [`NamedPipeClient::canceller`](crate::named::NamedPipeClient::canceller).
/// Each cancelled operation fails with
/// [`ErrorKind::OperationAborted`] (`ERROR_OPERATION_ABORTED`, 995) within
/// a futex wake; operations that start waiting after the cancel are not
/// affected. A call waiting for another call of the same handle to finish
/// (a second read of one reader from another thread) is pending too, and
/// a cancel ends it before it touched anything. What a cancelled operation leaves behind (spec 7.4):
///
/// * a read consumes nothing (a message read that had consumed the start
///   of a message whose rest was not written yet returns that part with
///   `complete == false`, and the next read continues the message);
/// * a write keeps what the reader already consumed and withdraws the
///   unread rest: a byte-read reader goes on with the next write's data, a
///   message-read reader that got part of the message gets
///   `OperationAborted` for the rest of it, then the next message;
/// * a transact keeps its request in the pipe (only the wait for the reply
///   is cancelled);
/// * a connect leaves the instance Listening.
///
/// Signals never end an operation: a signal delivered to the waiting thread
/// is a re-check, not an abort.
///
/// ```
/// use shmpipe::{Error, ErrorKind};
/// use std::io::Read;
/// let (mut reader, _writer) = shmpipe::pipe()?;
/// let canceller = reader.canceller();
/// // Nothing is pending: Windows' ERROR_NOT_FOUND.
/// let e = canceller.cancel().unwrap_err();
/// assert_eq!(Error::kind_of(&e), Some(ErrorKind::NotFound));
/// let t = std::thread::spawn(move || reader.read(&mut [0u8; 8]));
/// while canceller.pending() == 0 {
///     std::thread::yield_now(); // until the read waits
/// }
/// canceller.cancel()?;
/// let e = t.join().unwrap().unwrap_err();
/// assert_eq!(Error::kind_of(&e), Some(ErrorKind::OperationAborted));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Canceller(pub(crate) shmpipe_engine::wait::Canceller);

impl Canceller {
    /// Cancels every blocking operation of the handle that is pending now;
    /// `Err` of kind [`ErrorKind::NotFound`] if none is (spec SEM-144).
    ///
    /// ```
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// let e = reader.canceller().cancel().unwrap_err();
    /// assert_eq!(shmpipe::Error::kind_of(&e), Some(shmpipe::ErrorKind::NotFound));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel(&self) -> io::Result<()> {
        self.0
            .cancel()
            .map_err(|e| Error::with_source(ErrorKind::NotFound, e).into())
    }

    /// How many operations of the handle are pending (waiting) now: the
    /// ones the next [`Canceller::cancel`] would end.
    ///
    /// ```
    /// let (reader, _writer) = shmpipe::pipe()?;
    /// assert_eq!(reader.canceller().pending(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pending(&self) -> usize {
        self.0.pending()
    }
}
