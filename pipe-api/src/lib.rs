//! Windows-style pipes for Linux, on a lock-free shared-memory engine
//! ([`shmpipe_engine`]).
//!
//! * [`pipe()`] and [`PipeBuilder`]: anonymous pipes ([`PipeReader`],
//!   [`PipeWriter`]), shaped like [`std::io::pipe`], with Windows pipe
//!   semantics (write quota, peek, duplicate handles, inheritance, hand-off
//!   over Unix sockets).
//! * [`CommandExt`]: hand pipe ends to child processes.
//! * [`Error`] / [`ErrorKind`]: the spec's error kinds with their Windows
//!   codes, inside [`std::io::Error`] (read them with [`Error::kind_of`], not
//!   `raw_os_error()`: see [Windows error codes](#windows-error-codes-not-raw_os_error)).
//!
//! * `tokio` (feature `tokio`): the same pipes as async ends for tokio
//!   (`shmpipe::tokio::{pipe, PipeReader, PipeWriter, NamedPipeServer,
//!   NamedPipeClient}`).
//! * [`named`]: named pipes ([`named::ServerOptions`], [`named::ClientOptions`],
//!   [`named::wait_available`], [`named::call`]).
//!
//! ```
//! use std::io::{Read, Write};
//! let (mut reader, mut writer) = shmpipe::pipe()?;
//! let child = std::thread::spawn(move || writer.write_all(b"through shared memory"));
//! let mut text = String::new();
//! reader.read_to_string(&mut text)?;
//! child.join().unwrap()?;
//! assert_eq!(text, "through shared memory");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Windows error codes: not `raw_os_error()`
//!
//! On Windows, tokio's and std's pipes return the Windows code in
//! [`io::Error::raw_os_error`](std::io::Error::raw_os_error), and ported
//! code branches on it (tokio's documented client loop retries on
//! `Some(ERROR_PIPE_BUSY as i32)`). Here that is `None` for every pipe
//! error: the errors come from shared memory, not from a system call, so
//! there is no OS code to give, and a Linux errno in its place would
//! collide with Windows codes (errno 2, `ENOENT`, is not
//! `ERROR_FILE_NOT_FOUND`). Such a branch is silently never taken. Ask
//! [`Error::kind_of`] instead: it gives the pipe [`ErrorKind`], whose
//! [`code`](ErrorKind::code) is the Windows code and whose
//! [`windows_name`](ErrorKind::windows_name) its name.
//!
//! ```
//! use shmpipe::named::{ClientOptions, ServerOptions};
//! use shmpipe::{Error, ErrorKind};
//!
//! /// What `e.raw_os_error()` gives on Windows, for a pipe error.
//! fn windows_code(e: &std::io::Error) -> Option<u32> {
//!     Error::kind_of(e).map(ErrorKind::code)
//! }
//!
//! const ERROR_PIPE_BUSY: u32 = 231; // windows_sys::Win32::Foundation::ERROR_PIPE_BUSY
//! let name = format!(r"\\.\pipe\doc-windows-codes-{}", std::process::id());
//! let _server = ServerOptions::new().max_instances(1).create(&name)?;
//! let _first = ClientOptions::new().open(&name)?; // takes the only instance
//! let e = ClientOptions::new().open(&name).unwrap_err();
//! assert_eq!(e.raw_os_error(), None); // tokio's `Some(ERROR_PIPE_BUSY as i32)` branch: never taken
//! assert_eq!(windows_code(&e), Some(ERROR_PIPE_BUSY)); // the Windows code
//! assert_eq!(Error::kind_of(&e), Some(ErrorKind::PipeBusy)); // or match the kind itself
//! assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy); // the closest std kind
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The few errors that are not pipe errors (an OS failure passed on as it
//! is) have no kind: [`Error::kind_of`] is `None` for them, and their
//! `raw_os_error()` is a Linux errno.
#![deny(missing_docs)]

pub mod anonymous;
mod cancel;
mod datapath;
mod error;
pub mod handoff;
mod info;
pub mod inherit;
pub mod named;
mod quota;
pub mod readiness;
pub mod redirect;
#[cfg(feature = "remote")]
pub mod remote;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use anonymous::{pipe, PipeBuilder, PipeReader, PipeWriter};
pub use cancel::Canceller;
pub use error::{Error, ErrorKind, PeerRole, UntrustedPeer};
pub use info::{EndKind, PeekInfo, PipeInfo, PipeState, PipeType, ReadMode, WaitMode};
pub use inherit::CommandExt;
/// How blocked reads and writes wait: spin, park, or spin then park.
///
/// ```
/// use shmpipe::{PipeBuilder, WaitPolicy};
/// use std::io::{Read, Write};
/// let (mut reader, mut writer) = PipeBuilder::new().wait_policy(WaitPolicy::park()).build()?;
/// let t = std::thread::spawn(move || writer.write_all(b"parked"));
/// let mut buf = [0u8; 6];
/// reader.read_exact(&mut buf)?; // sleeps on a futex, no spinning
/// t.join().unwrap()?;
/// assert_eq!(&buf, b"parked");
/// # Ok::<(), std::io::Error>(())
/// ```
pub use shmpipe_engine::WaitPolicy;

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The anonymous-pipe guide's examples, compiled and run as doctests.
#[doc = include_str!("../../docs/guide/anonymous-pipes.md")]
#[cfg(doctest)]
pub struct GuideAnonymousDoctests;

/// The async guide's examples, compiled and run as doctests.
#[doc = include_str!("../../docs/guide/async.md")]
#[cfg(all(doctest, feature = "tokio"))]
pub struct GuideAsyncDoctests;

/// The remote-pipe guide's examples, compiled as doctests.
#[doc = include_str!("../../docs/guide/remote.md")]
#[cfg(all(doctest, feature = "remote"))]
pub struct GuideRemoteDoctests;

/// The named-pipe guide's examples, compiled and run as doctests.
#[doc = include_str!("../../docs/guide/named-pipes.md")]
#[cfg(doctest)]
pub struct GuideNamedDoctests;

/// The zero-copy guide's examples, compiled and run as doctests.
#[doc = include_str!("../../docs/guide/zero-copy.md")]
#[cfg(doctest)]
pub struct GuideZeroCopyDoctests;
