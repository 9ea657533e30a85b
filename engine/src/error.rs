//! The engine's error type.

use std::io;

/// Why an engine operation failed.
///
/// The pipe layer (`shmpipe`) maps these onto the Windows error kinds of the
/// pipe specification; on its own, every variant converts to an
/// [`io::Error`] with a fitting [`io::ErrorKind`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Shared memory holds a value no correct peer could have written (an
    /// index out of range, a length past the end of the ring, an unknown
    /// flag, a bad magic number). The ring is unusable; nothing outside the
    /// mapping was touched.
    #[error("corrupt shared segment: {0}")]
    Corrupt(&'static str),
    /// The segment was made by an incompatible version of the engine.
    #[error("incompatible shared segment: {0}")]
    Incompatible(&'static str),
    /// Every handle of the peer end is closed (or its processes died).
    #[error("the peer end of the ring is closed")]
    PeerClosed,
    /// The connection was cut (`End::disconnect`): the segment will carry
    /// nothing more.
    #[error("the channel was disconnected")]
    Disconnected,
    /// The operation's deadline passed.
    #[error("timed out")]
    TimedOut,
    /// The message being read was cut short: its writer died (or its write
    /// timed out) after publishing part of it, so the rest will never come.
    /// Reported by the read after the one that returned the message's last
    /// bytes (with `end == false`), so a caller that reads on until the end
    /// of the message gets this error, never the next message glued on.
    #[error("the message was cut short: its writer died or gave up")]
    MessageCut,
    /// The operation was cancelled by its handle's
    /// [`Canceller`](crate::wait::Canceller) while it waited (Windows'
    /// `ERROR_OPERATION_ABORTED`). Nothing was consumed by a cancelled read;
    /// what a cancelled write had published stays published.
    #[error("the operation was cancelled")]
    Cancelled,
    /// A record larger than the ring can ever hold contiguously.
    #[error("record of {len} bytes exceeds the ring's limit of {max} bytes")]
    TooLarge {
        /// The requested length.
        len: usize,
        /// The largest record this ring accepts.
        max: usize,
    },
    /// A descriptor handed to `from_fd` is not the expected end (for
    /// example a read end given to `Sender::from_fd`).
    #[error("the descriptor is not the expected end of the channel")]
    WrongEnd,
    /// An invalid argument (for example a capacity that is not a power of two).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A system call failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Error::Io(e.into())
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Corrupt(_) | Error::Incompatible(_) => io::ErrorKind::InvalidData,
            Error::PeerClosed => io::ErrorKind::BrokenPipe,
            Error::WrongEnd => io::ErrorKind::PermissionDenied,
            Error::Disconnected => io::ErrorKind::NotConnected,
            Error::TimedOut => io::ErrorKind::TimedOut,
            // Not `Interrupted`: std's `read_exact` and `write_all` retry it.
            Error::Cancelled => io::ErrorKind::ConnectionAborted,
            Error::MessageCut => io::ErrorKind::UnexpectedEof,
            Error::TooLarge { .. } | Error::InvalidArgument(_) => io::ErrorKind::InvalidInput,
            Error::Io(_) => {
                let Error::Io(inner) = e else { unreachable!() };
                return inner;
            }
        };
        io::Error::new(kind, e)
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
