//! What every transport implements and what it hands to the peer: the
//! [`Link`] trait, the [`Options`] the parent chooses, the parent's
//! [`Setup`] and the child's [`Handover`].
//!
//! A leaf of the crate: the transport modules ([`floor`](crate::floor),
//! [`shm`](crate::shm), [`pipes`](crate::pipes), [`kernel`](crate::kernel))
//! build on these types and nothing else of the benches, and the registry
//! ([`transport`](crate::transport)) that lists them imports them, never the
//! other way round, so no transport module depends on another or on the
//! list.

use rustix::fd::OwnedFd;
use shmpipe_engine::WaitPolicy;
use std::io;

/// One side of a bidirectional transport.
///
/// `send` and `recv` move one whole message (blocking until done); a
/// byte-stream transport reassembles it from partial reads.
pub trait Link {
    /// Sends `msg` as one message.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    /// Receives exactly `msg.len()` bytes.
    fn recv(&mut self, msg: &mut [u8]) -> io::Result<()>;
    /// How blocking operations wait (ignored by transports with one way of
    /// waiting).
    ///
    /// The parent's side is changed first, then the peer's: a transport
    /// whose wait policy is fixed when it connects (the named pipes) changes
    /// it by reconnecting, and its parent side must be listening again
    /// before the peer reopens.
    fn set_policy(&mut self, _wait: WaitPolicy) -> io::Result<()> {
        Ok(())
    }
}

/// Transport configuration chosen by the parent.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Bytes of buffering per direction: the engine's ring capacity, the
    /// `shmpipe` pipes' write quota (anonymous: `buffer_size`; named:
    /// `quotas(out, in)`), the pipe size (`F_SETPIPE_SZ`) and the socket
    /// buffers (`SO_SNDBUF`/`SO_RCVBUF`) are all asked for this much, so no
    /// transport wins by buffering more. (A quota bounds the bytes written
    /// but unread; the pipes size their rings above it, see
    /// [`pipes`](crate::pipes).)
    pub capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { capacity: 1 << 20 }
    }
}

/// The parent's side of a freshly made transport.
pub struct Setup {
    /// The parent's link.
    pub link: Box<dyn Link>,
    /// Descriptors for the child, in the order [`adopt`](crate::transport::adopt) expects.
    pub child_fds: Vec<OwnedFd>,
    /// A string the child needs to find its side (a named pipe's name);
    /// travels in the child's environment, so it may hold any character
    /// but NUL.
    pub child_arg: Option<String>,
    /// What buffering the transport actually got (kernels round and cap).
    pub buffers: String,
}

/// What the child's side is rebuilt from: the descriptors and the argument
/// of a [`Setup`].
pub struct Handover {
    /// [`Setup::child_fds`], in the same order.
    pub fds: Vec<OwnedFd>,
    /// [`Setup::child_arg`].
    pub arg: Option<String>,
}

impl Handover {
    /// The argument, which transports found by name cannot do without.
    pub(crate) fn need_arg(&self) -> io::Result<&str> {
        self.arg.as_deref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the peer got no name to open")
        })
    }
}

/// Takes exactly `N` descriptors out of `fds`.
pub(crate) fn take<const N: usize>(fds: Vec<OwnedFd>) -> io::Result<[OwnedFd; N]> {
    fds.try_into().map_err(|v: Vec<OwnedFd>| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("expected {N} descriptors, got {}", v.len()),
        )
    })
}

/// Formats a byte count as B / KiB / MiB.
pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}
