//! Windows-style pipes for Linux, on a lock-free shared-memory engine
//! ([`shmpipe_engine`]).
//!
//! * [`pipe()`] and [`PipeBuilder`]: anonymous pipes ([`PipeReader`],
//!   [`PipeWriter`]), shaped like [`std::io::pipe`], with Windows pipe
//!   semantics (write quota, peek, duplicate handles, inheritance, hand-off
//!   over Unix sockets).
//! * [`CommandExt`]: hand pipe ends to child processes.
//! * [`Error`] / [`ErrorKind`]: the spec's error kinds with their Windows
//!   codes, inside [`std::io::Error`].
//!
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
#![deny(missing_docs)]

pub mod anonymous;
mod conn;
mod error;
pub mod handoff;
mod info;
pub mod inherit;
pub mod named;
mod pending;
mod quota;
pub mod redirect;

pub use anonymous::{pipe, PipeBuilder, PipeReader, PipeWriter};
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

/// The named-pipe guide's examples, compiled and run as doctests.
#[doc = include_str!("../../docs/guide/named-pipes.md")]
#[cfg(doctest)]
pub struct GuideNamedDoctests;
