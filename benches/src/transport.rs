//! The transports under test, behind one small trait.
//!
//! A transport is a bidirectional [`Link`] between the benchmark process and
//! its peer process. [`open`] makes both sides in the parent and returns what
//! the child needs: descriptors, and for transports found by name (the named
//! pipes) a string argument; [`adopt`] rebuilds the child's side from them.
//! Both sides of every transport live in this crate, so the criterion
//! benches and the `shmpipe bench` command measure the same code.
//!
//! The transports come in four families ([`Family`]): the floor, the
//! engine's channel API (`engine-spsc`, `engine`: what the pipes are built
//! on, not what applications call), the pipes of the `shmpipe` crate that
//! applications use (`anon`, `named-byte`, `named-msg`), and the kernel's
//! pipes and sockets.

use crate::{floor, kernel, pipes, shm};
use rustix::fd::OwnedFd;
use serde::Serialize;
use shmpipe_engine::WaitPolicy;
use std::io;
use std::sync::OnceLock;

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

/// How a shared-memory side waits for its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Spin and never sleep (`WaitPolicy::spin()`; the floor always spins).
    Spin,
    /// The engine's default: spin briefly, then park on a futex. For the
    /// kernel transports: their ordinary blocking system calls.
    Default,
}

impl Policy {
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Spin => "spin",
            Policy::Default => "default",
        }
    }

    /// The engine wait policy this stands for.
    pub fn resolve(self) -> WaitPolicy {
        match self {
            Policy::Spin => WaitPolicy::spin(),
            Policy::Default => default_wait_policy(),
        }
    }
}

/// The engine's [`WaitPolicy::default`], resolved once per process.
///
/// The engine derives it from the CPUs the calling thread may use, so a
/// thread pinned to one CPU gets `park()` (no spinning) even on a machine
/// with many. [`affinity::place`](crate::affinity::place) resolves it before
/// pinning, and the parent ships the resolved values to its peers (which
/// start out pinned), so "default" means what an unpinned application on
/// this machine gets.
pub fn default_wait_policy() -> WaitPolicy {
    static RESOLVED: OnceLock<WaitPolicy> = OnceLock::new();
    *RESOLVED.get_or_init(WaitPolicy::default)
}

/// A short description of a wait policy.
pub fn describe(w: &WaitPolicy) -> String {
    match w.spin {
        None => "spin".into(),
        Some(d) if d.is_zero() => format!("park (slice {:?})", w.park_slice),
        Some(d) => format!("spin {d:?}, then park (slice {:?})", w.park_slice),
    }
}

/// Encodes a wait policy for the control protocol: `<spin ns|none> <slice ns>`.
pub(crate) fn encode_wait(w: &WaitPolicy) -> String {
    let spin = w
        .spin
        .map_or_else(|| "none".to_owned(), |d| d.as_nanos().to_string());
    format!("{spin} {}", w.park_slice.as_nanos())
}

/// Decodes [`encode_wait`].
pub(crate) fn decode_wait(spin: &str, slice: &str) -> Option<WaitPolicy> {
    let spin = match spin {
        "none" => None,
        ns => Some(std::time::Duration::from_nanos(ns.parse().ok()?)),
    };
    let park_slice = std::time::Duration::from_nanos(slice.parse().ok()?);
    Some(WaitPolicy { spin, park_slice })
}

/// What a transport stands for in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// The cache-line ping-pong.
    Floor,
    /// The engine's channel API, below the pipes.
    Engine,
    /// The `shmpipe` crate's pipes: what applications use.
    Pipe,
    /// Kernel pipes and sockets: what applications would use otherwise.
    Kernel,
}

impl Family {
    /// A short description, for legends.
    pub fn describe(self) -> &'static str {
        match self {
            Family::Floor => "latency floor",
            Family::Engine => "shmpipe engine (internal API)",
            Family::Pipe => "shmpipe pipes (user API)",
            Family::Kernel => "kernel",
        }
    }
}

/// The transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Two atomics in shared memory, both sides spinning: the latency floor.
    Floor,
    /// The engine's raw `Producer` / `Consumer` (no admission locks).
    EngineSpsc,
    /// The engine's `Sender` / `Receiver` (admission locks, liveness): the
    /// path the pipes are built on.
    Engine,
    /// Two `shmpipe` anonymous pipes (`PipeWriter` / `PipeReader`), byte
    /// stream through `Read` / `Write`.
    Anon,
    /// A duplex `shmpipe` named pipe in byte mode, `Read` / `Write`.
    NamedByte,
    /// A duplex `shmpipe` named pipe in message mode (both ends in message
    /// read mode): each benchmark message is one pipe message
    /// (`send_msg` / `recv_msg`).
    NamedMsg,
    /// Two kernel pipes.
    Pipe,
    /// A `SOCK_STREAM` Unix socket pair.
    UnixStream,
    /// A `SOCK_SEQPACKET` Unix socket pair.
    UnixSeqpacket,
}

impl Kind {
    /// Every transport, in table order.
    pub const ALL: [Kind; 9] = [
        Kind::Floor,
        Kind::EngineSpsc,
        Kind::Engine,
        Kind::Anon,
        Kind::NamedByte,
        Kind::NamedMsg,
        Kind::Pipe,
        Kind::UnixStream,
        Kind::UnixSeqpacket,
    ];

    /// Name used in tables, criterion ids and the peer protocol.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Floor => "floor",
            Kind::EngineSpsc => "engine-spsc",
            Kind::Engine => "engine",
            Kind::Anon => "anon",
            Kind::NamedByte => "named-byte",
            Kind::NamedMsg => "named-msg",
            Kind::Pipe => "pipe",
            Kind::UnixStream => "unix-stream",
            Kind::UnixSeqpacket => "unix-seqpacket",
        }
    }

    /// Parses [`Kind::name`]; also takes the names the engine rows had
    /// before the pipe rows existed (`shmpipe-spsc`, `shmpipe`).
    pub fn from_name(s: &str) -> Option<Kind> {
        match s {
            "shmpipe-spsc" => Some(Kind::EngineSpsc),
            "shmpipe" => Some(Kind::Engine),
            _ => Kind::ALL.into_iter().find(|k| k.name() == s),
        }
    }

    /// The family the transport belongs to.
    pub fn family(self) -> Family {
        match self {
            Kind::Floor => Family::Floor,
            Kind::EngineSpsc | Kind::Engine => Family::Engine,
            Kind::Anon | Kind::NamedByte | Kind::NamedMsg => Family::Pipe,
            Kind::Pipe | Kind::UnixStream | Kind::UnixSeqpacket => Family::Kernel,
        }
    }

    /// Whether the transport waits as an engine [`WaitPolicy`] says.
    pub fn is_shared_memory(self) -> bool {
        matches!(self.family(), Family::Engine | Family::Pipe)
    }

    /// The wait policies that mean something for this transport.
    pub fn policies(self) -> &'static [Policy] {
        match self.family() {
            Family::Floor => &[Policy::Spin],
            Family::Engine | Family::Pipe => &[Policy::Spin, Policy::Default],
            Family::Kernel => &[Policy::Default],
        }
    }

    /// The policy used for throughput runs.
    pub fn stream_policy(self) -> Policy {
        *self.policies().last().expect("every kind has a policy")
    }

    /// Whether the transport carries messages of any size (the floor carries
    /// one 8-byte word and only in strict alternation: no streaming).
    pub fn streams(self) -> bool {
        self != Kind::Floor
    }

    /// Bytes of a message the transport actually carries (the floor: the
    /// sequence word only).
    pub fn carried(self, len: usize) -> usize {
        if self == Kind::Floor {
            8
        } else {
            len
        }
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
    /// [`pipes`].)
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
    /// Descriptors for the child, in the order [`adopt`] expects.
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

/// Makes a transport of `kind`: the parent's side and what the child needs.
pub fn open(kind: Kind, opts: &Options) -> io::Result<Setup> {
    match kind {
        Kind::Floor => floor::open(),
        Kind::EngineSpsc => shm::open(opts, true),
        Kind::Engine => shm::open(opts, false),
        Kind::Anon => pipes::open_anon(opts),
        Kind::NamedByte => pipes::open_named(opts, false),
        Kind::NamedMsg => pipes::open_named(opts, true),
        Kind::Pipe => kernel::open_pipe(opts),
        Kind::UnixStream => kernel::open_socket(opts, false),
        Kind::UnixSeqpacket => kernel::open_socket(opts, true),
    }
}

/// Rebuilds the child's side of a transport from what [`open`] returned.
pub fn adopt(kind: Kind, from: Handover) -> io::Result<Box<dyn Link>> {
    match kind {
        Kind::Floor => floor::adopt(from.fds),
        Kind::EngineSpsc => shm::adopt(from.fds, true),
        Kind::Engine => shm::adopt(from.fds, false),
        Kind::Anon => pipes::adopt_anon(from.fds),
        Kind::NamedByte => pipes::adopt_named(from.need_arg()?, false),
        Kind::NamedMsg => pipes::adopt_named(from.need_arg()?, true),
        Kind::Pipe => kernel::adopt_pipe(from.fds),
        Kind::UnixStream => kernel::adopt_socket(from.fds, false),
        Kind::UnixSeqpacket => kernel::adopt_socket(from.fds, true),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wait_policies_survive_the_control_protocol() {
        for w in [
            WaitPolicy::spin(),
            WaitPolicy::park(),
            WaitPolicy::spin_then_park(Duration::from_micros(20)),
        ] {
            let line = encode_wait(&w);
            let mut parts = line.split(' ');
            let back = decode_wait(parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(back, Some(w), "{line}");
        }
        assert_eq!(decode_wait("x", "1"), None);
    }

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(Kind::from_name("shmpipe"), Some(Kind::Engine));
        assert_eq!(Kind::from_name("tcp"), None);
    }

    #[test]
    fn every_shared_memory_transport_has_both_policies() {
        for k in Kind::ALL {
            let both = k.policies() == [Policy::Spin, Policy::Default];
            assert_eq!(both, k.is_shared_memory(), "{}", k.name());
        }
        assert_eq!(Kind::NamedMsg.family(), Family::Pipe);
        assert_eq!(Kind::Engine.family(), Family::Engine);
    }
}
