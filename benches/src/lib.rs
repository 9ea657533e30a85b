//! Measurements of shmpipe against kernel pipes and Unix sockets, across two
//! processes, shared by the criterion benches (`benches/engine.rs`) and the
//! `shmpipe bench` command.
//!
//! * [`transport`]: the registry of the transports ([`Kind`]), which
//!   dispatches to their modules: [`floor`] (cache-line ping-pong, the
//!   latency floor), [`shm`] (the engine's channels, locked and lock-free),
//!   [`pipes`] (the `shmpipe` crate's anonymous and named pipes, what
//!   applications call), [`kernel`] (pipes, Unix stream and seqpacket
//!   sockets). Those build only on [`link`] (the [`Link`] trait and what a
//!   transport hands its peer) and [`policy`] (wait policies), never on the
//!   registry.
//! * [`connect`]: named-pipe open + first round trip against Unix socket
//!   connect + first round trip.
//! * [`zero_copy`]: the pipes' zero-copy API against their copy API
//!   (`shmpipe bench --only zero-copy`).
//! * [`asyncio`]: the async rows, shmpipe's tokio ends next to tokio's
//!   `UnixStream` and pipe (`shmpipe bench --only async`).
//! * [`remote`]: a named pipe across a gateway on loopback next to a bare
//!   quinn stream and TCP + rustls (`shmpipe bench --remote`).
//! * [`liveness`]: how long a blocked pipe end takes to learn that its peer
//!   process was SIGKILLed (`shmpipe bench --only kill`).
//! * [`scale`]: resident memory and descriptors per connected named-pipe
//!   instance, both sides, at 1, 100 and 1000 instances (`shmpipe bench
//!   --full`, `--only scale`).
//! * [`peer`]: the child process on the other end, started by re-executing
//!   the current binary, the control protocol that drives it, and its
//!   roles: the far side of a transport ([`Peer`]), the server of
//!   [`connect`], the victim of [`liveness`].
//! * [`payload`]: aligned buffers, sequence stamps and payload checks;
//!   [`rng`]: a small random generator.
//! * [`suite`]: the full comparison the CLI prints; [`plot`]: its charts as
//!   SVG; [`stats`]: percentiles; [`affinity`], [`machine`]: where it ran;
//!   [`mode`]: how long a run measures (shared by the suite and the kill
//!   bench).
//!
//! Every binary that spawns peers must call [`peer::run_if_peer`] first in
//! `main`.
#![warn(missing_docs)]

pub mod affinity;
pub mod asyncio;
pub mod connect;
pub mod floor;
pub mod kernel;
pub mod link;
pub mod liveness;
pub mod machine;
pub mod mode;
pub mod payload;
pub mod peer;
pub mod pipes;
pub mod plot;
pub mod policy;
pub mod remote;
pub mod rng;
pub mod scale;
pub mod shm;
pub mod stats;
pub mod suite;
pub mod transport;
pub mod zero_copy;

pub use connect::{ConnectPeer, Target};
pub use link::{Link, Options};
pub use peer::{run_if_peer, Peer};
pub use policy::Policy;
pub use transport::Kind;
