//! The registry of the transports under test: their list ([`Kind::ALL`]),
//! names, families and wait policies, and the two dispatchers to the
//! modules that implement them.
//!
//! A transport is a bidirectional [`Link`] between the benchmark process and
//! its peer process. [`open`] makes both sides in the parent and returns what
//! the child needs: descriptors, and for transports found by name (the named
//! pipes) a string argument; [`adopt`] rebuilds the child's side from them.
//! Both sides of every transport live in this crate, so the criterion
//! benches and the `shmpipe bench` command measure the same code.
//!
//! Imports run one way: this registry imports the transport modules
//! ([`floor`], [`shm`], [`pipes`], [`kernel`]), and they import only the
//! leaf modules [`link`](crate::link) (the trait and the types handed over)
//! and [`policy`](crate::policy), never this one. The items of those leaves
//! are re-exported here, where they were first defined.
//!
//! The transports come in four families ([`Family`]): the floor, the
//! engine's channel API (`engine-spsc`, `engine`: what the pipes are built
//! on, not what applications call), the pipes of the `shmpipe` crate that
//! applications use (`anon`, `named-byte`, `named-msg`), and the kernel's
//! pipes and sockets.

use crate::{floor, kernel, pipes, shm};
use serde::Serialize;
use std::io;

pub use crate::link::{human_bytes, Handover, Link, Options, Setup};
pub use crate::policy::{default_wait_policy, describe, Policy};

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

    /// Whether the transport waits as an engine [`WaitPolicy`](shmpipe_engine::WaitPolicy) says.
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

#[cfg(test)]
mod tests {
    use super::*;

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
