//! The transports under test, behind one small trait.
//!
//! A transport is a bidirectional [`Link`] between the benchmark process and
//! its peer process. [`open`] makes both sides in the parent and returns the
//! descriptors the child needs; [`adopt`] rebuilds the child's side from
//! them. Both sides of every transport live in this crate, so the criterion
//! benches and the `shmpipe bench` command measure the same code.

use crate::{floor, kernel, shm};
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
    fn set_policy(&mut self, _wait: WaitPolicy) {}
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

/// The transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Two atomics in shared memory, both sides spinning: the latency floor.
    Floor,
    /// The engine's raw `Producer` / `Consumer` (no admission locks).
    ShmpipeSpsc,
    /// The engine's `Sender` / `Receiver` (admission locks, liveness).
    Shmpipe,
    /// Two kernel pipes.
    Pipe,
    /// A `SOCK_STREAM` Unix socket pair.
    UnixStream,
    /// A `SOCK_SEQPACKET` Unix socket pair.
    UnixSeqpacket,
}

impl Kind {
    /// Every transport, in table order.
    pub const ALL: [Kind; 6] = [
        Kind::Floor,
        Kind::ShmpipeSpsc,
        Kind::Shmpipe,
        Kind::Pipe,
        Kind::UnixStream,
        Kind::UnixSeqpacket,
    ];

    /// Name used in tables, criterion ids and the peer protocol.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Floor => "floor",
            Kind::ShmpipeSpsc => "shmpipe-spsc",
            Kind::Shmpipe => "shmpipe",
            Kind::Pipe => "pipe",
            Kind::UnixStream => "unix-stream",
            Kind::UnixSeqpacket => "unix-seqpacket",
        }
    }

    /// Parses [`Kind::name`].
    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The wait policies that mean something for this transport.
    pub fn policies(self) -> &'static [Policy] {
        match self {
            Kind::Floor => &[Policy::Spin],
            Kind::ShmpipeSpsc | Kind::Shmpipe => &[Policy::Spin, Policy::Default],
            Kind::Pipe | Kind::UnixStream | Kind::UnixSeqpacket => &[Policy::Default],
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
    /// Bytes of buffering per direction: the shmpipe ring capacity, the pipe
    /// size (`F_SETPIPE_SZ`) and the socket buffers (`SO_SNDBUF`/`SO_RCVBUF`)
    /// are all asked for this much, so no transport wins by buffering more.
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
    /// What buffering the transport actually got (kernels round and cap).
    pub buffers: String,
}

/// Makes a transport of `kind`: the parent's side and the child's descriptors.
pub fn open(kind: Kind, opts: &Options) -> io::Result<Setup> {
    match kind {
        Kind::Floor => floor::open(),
        Kind::ShmpipeSpsc => shm::open(opts, true),
        Kind::Shmpipe => shm::open(opts, false),
        Kind::Pipe => kernel::open_pipe(opts),
        Kind::UnixStream => kernel::open_socket(opts, false),
        Kind::UnixSeqpacket => kernel::open_socket(opts, true),
    }
}

/// Rebuilds the child's side of a transport from the descriptors [`open`]
/// returned.
pub fn adopt(kind: Kind, fds: Vec<OwnedFd>) -> io::Result<Box<dyn Link>> {
    match kind {
        Kind::Floor => floor::adopt(fds),
        Kind::ShmpipeSpsc => shm::adopt(fds, true),
        Kind::Shmpipe => shm::adopt(fds, false),
        Kind::Pipe => kernel::adopt_pipe(fds),
        Kind::UnixStream => kernel::adopt_socket(fds, false),
        Kind::UnixSeqpacket => kernel::adopt_socket(fds, true),
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
        assert_eq!(Kind::from_name("tcp"), None);
    }
}
