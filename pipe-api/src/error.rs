//! Pipe errors: the spec's error kinds, with their Windows names and codes,
//! carried inside [`std::io::Error`].
//!
//! Every fallible operation returns `std::io::Result`, as `std` does; the
//! [`io::ErrorKind`] is the closest standard kind (`BrokenPipe`,
//! `WouldBlock`, `PermissionDenied`, …), and the exact pipe kind is one call
//! away:
//!
//! ```
//! use shmpipe::{Error, ErrorKind};
//! let e: std::io::Error = Error::new(ErrorKind::NoData).into();
//! assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
//! assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData));
//! assert_eq!(ErrorKind::NoData.code(), 232);
//! assert_eq!(ErrorKind::NoData.windows_name(), "ERROR_NO_DATA");
//! ```
//!
//! # Porting code that reads `raw_os_error()`
//!
//! Code written for Windows pipes (tokio's `named_pipe`, std on Windows)
//! finds the Windows code in `io::Error::raw_os_error()`. Here that is
//! `None` for every pipe error, so a branch such as tokio's
//! `Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32)` is never
//! taken. The code is `Error::kind_of(&e).map(ErrorKind::code)`:
//!
//! ```
//! use shmpipe::{Error, ErrorKind};
//! use std::io::Write;
//! const ERROR_NO_DATA: u32 = 232;
//! let (reader, mut writer) = shmpipe::pipe()?;
//! drop(reader);
//! let e = writer.write_all(b"x").unwrap_err(); // the read end is gone
//! assert_eq!(e.raw_os_error(), None);
//! assert_eq!(Error::kind_of(&e).map(ErrorKind::code), Some(ERROR_NO_DATA));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! (The crate docs, [Windows error codes](crate#windows-error-codes-not-raw_os_error),
//! port tokio's retry loop.)

use std::fmt;
use std::io;

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $win:literal, $io:ident;)*) => {
        /// The error kinds of the pipe specification (section 3).
        ///
        /// ```
        /// use shmpipe::{Error, ErrorKind};
        /// use std::io::Write;
        /// let (reader, mut writer) = shmpipe::pipe()?;
        /// drop(reader);
        /// let e = writer.write_all(b"x").unwrap_err();
        /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoData));
        /// # Ok::<(), std::io::Error>(())
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($(#[$doc])* $name,)*
        }

        impl ErrorKind {
            /// The Windows error code.
            ///
            /// ```
            /// assert_eq!(shmpipe::ErrorKind::BrokenPipe.code(), 109);
            /// ```
            pub const fn code(self) -> u32 {
                match self { $(ErrorKind::$name => $code,)* }
            }

            /// The Windows error name (`ERROR_…`).
            ///
            /// ```
            /// assert_eq!(shmpipe::ErrorKind::PipeBusy.windows_name(), "ERROR_PIPE_BUSY");
            /// ```
            pub const fn windows_name(self) -> &'static str {
                match self { $(ErrorKind::$name => $win,)* }
            }

            /// The closest [`io::ErrorKind`].
            ///
            /// ```
            /// use std::io;
            /// assert_eq!(shmpipe::ErrorKind::AccessDenied.io_kind(), io::ErrorKind::PermissionDenied);
            /// ```
            pub const fn io_kind(self) -> io::ErrorKind {
                match self { $(ErrorKind::$name => io::ErrorKind::$io,)* }
            }

            /// The kind with this Windows code, if any.
            ///
            /// ```
            /// use shmpipe::ErrorKind;
            /// assert_eq!(ErrorKind::from_code(232), Some(ErrorKind::NoData));
            /// assert_eq!(ErrorKind::from_code(4), None);
            /// ```
            pub const fn from_code(code: u32) -> Option<ErrorKind> {
                match code { $($code => Some(ErrorKind::$name),)* _ => None }
            }

            /// Every kind, in code order.
            ///
            /// ```
            /// use shmpipe::ErrorKind;
            /// assert!(ErrorKind::ALL.contains(&ErrorKind::PipeBusy));
            /// assert!(ErrorKind::ALL.windows(2).all(|k| k[0].code() < k[1].code()));
            /// ```
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$name),*];
        }
    };
}

kinds! {
    /// An operation the end does not support (`connect` on a client end,
    /// server-only operations on anonymous ends).
    InvalidFunction = 1, "ERROR_INVALID_FUNCTION", Unsupported;
    /// No pipe instance with that name.
    FileNotFound = 2, "ERROR_FILE_NOT_FOUND", NotFound;
    /// Missing access right, direction mismatch, or a security refusal.
    AccessDenied = 5, "ERROR_ACCESS_DENIED", PermissionDenied;
    /// A stale or closed handle.
    InvalidHandle = 6, "ERROR_INVALID_HANDLE", InvalidInput;
    /// The server part of a client name is not `.`.
    BadNetPath = 53, "ERROR_BAD_NETPATH", InvalidInput;
    /// An illegal option or option combination.
    InvalidParameter = 87, "ERROR_INVALID_PARAMETER", InvalidInput;
    /// The peer end closed and nothing is left to read.
    BrokenPipe = 109, "ERROR_BROKEN_PIPE", BrokenPipe;
    /// A wait expired.
    Timeout = 121, "ERROR_SEM_TIMEOUT", TimedOut;
    /// A malformed pipe name.
    InvalidName = 123, "ERROR_INVALID_NAME", InvalidInput;
    /// The operation does not fit the pipe's type or state.
    BadPipe = 230, "ERROR_BAD_PIPE", InvalidInput;
    /// No free instance, or unread data blocks a transaction.
    PipeBusy = 231, "ERROR_PIPE_BUSY", ResourceBusy;
    /// Nonblocking read with nothing queued, or write after the peer closed.
    NoData = 232, "ERROR_NO_DATA", BrokenPipe;
    /// The instance was disconnected.
    PipeNotConnected = 233, "ERROR_PIPE_NOT_CONNECTED", NotConnected;
    /// A partial message was delivered (the bytes were consumed).
    MoreData = 234, "ERROR_MORE_DATA", Other;
    /// A client was already connected (a success outcome of `connect`).
    PipeConnected = 535, "ERROR_PIPE_CONNECTED", AlreadyExists;
    /// No client is connected yet.
    PipeListening = 536, "ERROR_PIPE_LISTENING", NotConnected;
    /// The operation was cancelled, or its end closed. (Not `Interrupted`:
    /// std's `read_exact`, `write_all` and `io::copy` retry that one.)
    OperationAborted = 995, "ERROR_OPERATION_ABORTED", ConnectionAborted;
    /// Nothing to cancel, or no client to report.
    NotFound = 1168, "ERROR_NOT_FOUND", NotFound;
    /// No client identity to report.
    CannotImpersonate = 1368, "ERROR_CANNOT_IMPERSONATE", PermissionDenied;
    /// Shared memory or descriptors ran out, or the shared segment is
    /// unusable.
    NoSystemResources = 1450, "ERROR_NO_SYSTEM_RESOURCES", OutOfMemory;
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.windows_name(), self.code())
    }
}

/// A pipe error: a kind and, optionally, what caused it.
///
/// It travels inside the [`io::Error`] every operation returns; get it back
/// with [`Error::kind_of`] (the kind) or by downcasting. Its Windows code is
/// [`ErrorKind::code`] of the kind: `raw_os_error()` is `None` for pipe
/// errors, unlike on Windows (see
/// [Windows error codes](crate#windows-error-codes-not-raw_os_error)).
///
/// ```
/// use shmpipe::{Error, ErrorKind};
/// let e = Error::with_source(ErrorKind::AccessDenied, "not the owner");
/// assert_eq!(e.to_string(), "ERROR_ACCESS_DENIED (5): not the owner");
/// let io: std::io::Error = e.into();
/// assert_eq!(io.raw_os_error(), None); // not where the Windows code is
/// assert_eq!(Error::kind_of(&io).map(ErrorKind::code), Some(5)); // here it is
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind`.
    ///
    /// ```
    /// let e = shmpipe::Error::new(shmpipe::ErrorKind::PipeBusy);
    /// assert_eq!(e.kind(), shmpipe::ErrorKind::PipeBusy);
    /// ```
    pub fn new(kind: ErrorKind) -> Error {
        Error { kind, source: None }
    }

    /// An error of `kind` caused by `source`.
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind};
    /// let e = Error::with_source(ErrorKind::NoSystemResources, std::io::Error::other("ENOSPC"));
    /// assert!(std::error::Error::source(&e).is_some());
    /// ```
    pub fn with_source(
        kind: ErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error {
            kind,
            source: Some(source.into()),
        }
    }

    /// The pipe error kind.
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind};
    /// assert_eq!(Error::new(ErrorKind::Timeout).kind(), ErrorKind::Timeout);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The pipe error kind inside an [`io::Error`] returned by this crate,
    /// if it carries one.
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind};
    /// let e: std::io::Error = Error::new(ErrorKind::BrokenPipe).into();
    /// assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe));
    /// assert_eq!(Error::kind_of(&std::io::Error::other("x")), None);
    /// ```
    pub fn kind_of(e: &io::Error) -> Option<ErrorKind> {
        e.get_ref()?.downcast_ref::<Error>().map(Error::kind)
    }

    /// The process the trust rule refused, if this error is such a refusal
    /// (see [`UntrustedPeer`]).
    ///
    /// ```
    /// use shmpipe::{Error, ErrorKind, PeerRole, UntrustedPeer};
    /// let peer = UntrustedPeer { role: PeerRole::Owner, pid: Some(4321), uid: 1001, gid: 1001 };
    /// assert_eq!(Error::from(peer).untrusted_peer(), Some(peer));
    /// assert_eq!(Error::new(ErrorKind::AccessDenied).untrusted_peer(), None);
    /// ```
    pub fn untrusted_peer(&self) -> Option<UntrustedPeer> {
        self.source.as_deref()?.downcast_ref().copied()
    }

    /// The process the trust rule refused, if `e` is such a refusal
    /// returned by this crate: what an `open`, `call`, `wait_available` or
    /// `create` that failed with `AccessDenied` because of whom it reached
    /// says about that process.
    ///
    /// ```
    /// use shmpipe::named::ClientOptions;
    /// use shmpipe::Error;
    /// let name = format!(r"\\.\pipe\doc-untrusted-peer-of-{}", std::process::id());
    /// let e = ClientOptions::new().open(&name).unwrap_err();
    /// match Error::untrusted_peer_of(&e) {
    ///     Some(peer) => eprintln!("served by uid {}, which we do not trust", peer.uid),
    ///     None => eprintln!("cannot open {name}: {e}"), // here: nobody serves it
    /// }
    /// assert_eq!(Error::untrusted_peer_of(&e), None);
    /// ```
    pub fn untrusted_peer_of(e: &io::Error) -> Option<UntrustedPeer> {
        e.get_ref()?.downcast_ref::<Error>()?.untrusted_peer()
    }

    /// Shorthand: an [`io::Error`] of `kind`.
    pub(crate) fn io(kind: ErrorKind) -> io::Error {
        Error::new(kind).into()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(s) => write!(f, "{}: {s}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind.io_kind(), e)
    }
}

impl From<ErrorKind> for io::Error {
    fn from(kind: ErrorKind) -> io::Error {
        Error::new(kind).into()
    }
}

/// A process the named-pipe trust rule refused, as the kernel identified
/// it: the owner of a name `create` was to join, or the server of the
/// instance `open`, `call` or `wait_available` reached (see the guide, "Who
/// may serve and who may connect"). It is the source of the
/// [`ErrorKind::AccessDenied`] they return, and its message is that
/// error's explanation; [`Error::untrusted_peer_of`] finds it in the
/// [`io::Error`].
///
/// ```
/// use shmpipe::{Error, ErrorKind, PeerRole, UntrustedPeer};
/// let peer = UntrustedPeer { role: PeerRole::Server, pid: None, uid: 998, gid: 998 };
/// let e: std::io::Error = Error::from(peer).into();
/// assert_eq!(Error::kind_of(&e), Some(ErrorKind::AccessDenied));
/// assert_eq!(Error::untrusted_peer_of(&e), Some(peer));
/// assert!(e.to_string().contains("running as uid 998 (gid 998)"), "{e}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UntrustedPeer {
    /// What the refused process was to this end.
    pub role: PeerRole,
    /// Its process id in this process's pid namespace; `None` when it lives
    /// outside it (the kernel reports no pid then).
    pub pid: Option<u32>,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective (primary) group id.
    pub gid: u32,
}

/// What a refused process was to the end that refused it, which also says
/// which option would have trusted it.
///
/// ```
/// use shmpipe::{PeerRole, UntrustedPeer};
/// fn flag(peer: &UntrustedPeer) -> &'static str {
///     match peer.role {
///         PeerRole::Owner => "ServerOptions::trust_owner_uid",
///         PeerRole::Server => "ClientOptions::trust_server_uid",
///     }
/// }
/// let peer = UntrustedPeer { role: PeerRole::Owner, pid: Some(7), uid: 5, gid: 5 };
/// assert_eq!(flag(&peer), "ServerOptions::trust_owner_uid");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// The process owning the name a server's `create` was to join
    /// (trusted with `ServerOptions::trust_owner_uid`/`_gid`).
    Owner,
    /// The process serving the instance a client reached (trusted with
    /// `ClientOptions::trust_server_uid`/`_gid`/`trust_any_server`).
    Server,
}

impl fmt::Display for UntrustedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The wording is documented (docs/security.md, the guide): keep it.
        let UntrustedPeer { uid, gid, .. } = self;
        match self.role {
            PeerRole::Owner => write!(
                f,
                "the pipe name is owned by a process running as uid {uid} (gid {gid}), which \
                 this server does not trust (see ServerOptions::trust_owner_uid)"
            ),
            PeerRole::Server => write!(
                f,
                "the pipe is served by a process running as uid {uid} (gid {gid}), which this \
                 client does not trust (see ClientOptions::trust_server_uid)"
            ),
        }
    }
}

impl std::error::Error for UntrustedPeer {}

/// The refusal of `peer`: [`ErrorKind::AccessDenied`] with `peer` as its
/// source.
impl From<UntrustedPeer> for Error {
    fn from(peer: UntrustedPeer) -> Error {
        Error::with_source(ErrorKind::AccessDenied, peer)
    }
}

/// Maps an engine error onto a pipe error (`peer_closed` says which kind a
/// closed peer means for the operation at hand).
pub(crate) fn from_engine(e: shmpipe_engine::Error, peer_closed: ErrorKind) -> io::Error {
    use shmpipe_engine::Error as E;
    match e {
        E::PeerClosed => Error::io(peer_closed),
        E::TimedOut => Error::io(ErrorKind::Timeout),
        E::Cancelled => Error::io(ErrorKind::OperationAborted),
        E::Corrupt(_) | E::Incompatible(_) => {
            Error::with_source(ErrorKind::NoSystemResources, e).into()
        }
        E::InvalidArgument(_) | E::TooLarge { .. } => {
            Error::with_source(ErrorKind::InvalidParameter, e).into()
        }
        E::Io(io) => from_os(io),
        other => io::Error::other(other),
    }
}

/// An operating-system error met by a pipe operation: running out of
/// descriptors, memory or shared-memory space is the spec's
/// [`ErrorKind::NoSystemResources`] (with the OS error as its source); any
/// other error stays as the OS reported it.
pub(crate) fn from_os(io: io::Error) -> io::Error {
    let exhausted = matches!(
        io.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOSPC)
    ) || io.kind() == io::ErrorKind::OutOfMemory;
    if exhausted {
        Error::with_source(ErrorKind::NoSystemResources, io).into()
    } else {
        io
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for &k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(k.code()), Some(k));
            assert!(k.windows_name().starts_with("ERROR_"));
        }
        let mut codes: Vec<u32> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn no_pipe_error_is_retried_by_std() {
        // std's read_exact/write_all/copy loop on Interrupted: a pipe error
        // mapped to it would be re-issued forever.
        for &k in ErrorKind::ALL {
            assert_ne!(k.io_kind(), io::ErrorKind::Interrupted, "{k}");
        }
        assert_eq!(
            ErrorKind::OperationAborted.io_kind(),
            io::ErrorKind::ConnectionAborted
        );
    }

    #[test]
    fn exhaustion_is_no_system_resources_and_keeps_the_os_error() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::ENOSPC] {
            let e = from_os(io::Error::from_raw_os_error(errno));
            assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoSystemResources));
            let src = std::error::Error::source(e.get_ref().unwrap()).unwrap();
            assert!(src.to_string().contains("os error"), "{src}");
        }
        let e = from_os(io::Error::from_raw_os_error(libc::EBADF));
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        assert_eq!(Error::kind_of(&e), None);
        let e = from_engine(
            shmpipe_engine::Error::Io(io::Error::from_raw_os_error(libc::EMFILE)),
            ErrorKind::BrokenPipe,
        );
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::NoSystemResources));
    }

    #[test]
    fn io_kinds_fit() {
        assert_eq!(ErrorKind::BrokenPipe.io_kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(ErrorKind::PipeBusy.io_kind(), io::ErrorKind::ResourceBusy);
        let e: io::Error = Error::new(ErrorKind::Timeout).into();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::Timeout));
        assert_eq!(e.to_string(), "ERROR_SEM_TIMEOUT (121)");
    }
}
