//! What the criterion bench binaries share: where the processes run and how
//! a peer starts. The measurements themselves are the library's
//! (`shmpipe_benches::Peer`, `ConnectPeer`), the code `shmpipe bench` runs.

use shmpipe_benches::{affinity, Kind, Options, Peer};

/// Buffering and the CPU the peers are pinned to.
pub struct Setup {
    pub opts: Options,
    pub child_cpu: Option<usize>,
}

impl Setup {
    /// Pins this process and picks the peers' CPU, as `shmpipe bench` does,
    /// and says where on stderr.
    pub fn place() -> Setup {
        let placement = affinity::place(true);
        match (placement.parent_cpu, placement.child_cpu) {
            (Some(p), Some(c)) => eprintln!("pinned: benchmark on CPU {p}, peers on CPU {c}"),
            _ => eprintln!("not pinned (fewer than two usable CPUs, or refused)"),
        }
        Setup {
            opts: Options::default(),
            child_cpu: placement.child_cpu,
        }
    }

    /// A peer process for `kind`, panicking (with the transport's name) if
    /// it cannot start.
    pub fn spawn(&self, kind: Kind) -> Peer {
        Peer::spawn(kind, &self.opts, self.child_cpu)
            .unwrap_or_else(|e| panic!("{}: cannot start the peer: {e}", kind.name()))
    }
}
