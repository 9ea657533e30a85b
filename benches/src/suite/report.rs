//! What one run of the suite reports: per transport its round trips and
//! streams, where the processes ran, and the lost-wake-up counters; the
//! JSON the CLI writes is these types serialised.

use crate::connect::ConnectReport;
use crate::machine::Machine;
use crate::mode::Mode;
use crate::peer::Peer;
use crate::policy::Policy;
use crate::stats::Summary;
use crate::transport::{Family, Kind};
use serde::Serialize;
use shmpipe_engine::wait;
use std::io;

/// Hand-offs that waited a full park slice during a measurement, in each
/// of its two processes: the difference of
/// `shmpipe_engine::wait::full_slice_waits()` (a process-wide count) across
/// the measurement, warm-up included. Each is most likely a lost wake-up
/// that cost a park slice (4 ms by default); with a correct wait/notify
/// handshake both stay 0.
///
/// ```
/// use shmpipe_benches::suite::SliceWaits;
/// let w = SliceWaits { bench: 0, peer: 0 };
/// assert_eq!(w, SliceWaits::default(), "no lost wake-up in either process");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SliceWaits {
    /// In the benchmark process.
    pub bench: u64,
    /// In the peer process, as it reported them.
    pub peer: u64,
}

impl SliceWaits {
    /// Both processes' counts now; the peer's over the control socket.
    fn now(peer: &mut Peer) -> io::Result<SliceWaits> {
        Ok(SliceWaits {
            bench: wait::full_slice_waits(),
            peer: peer.full_slice_waits()?,
        })
    }

    /// The counts since `before`.
    pub(super) fn since(self, before: SliceWaits) -> SliceWaits {
        SliceWaits {
            bench: self.bench.saturating_sub(before.bench),
            peer: self.peer.saturating_sub(before.peer),
        }
    }

    pub(super) fn add(self, other: SliceWaits) -> SliceWaits {
        SliceWaits {
            bench: self.bench + other.bench,
            peer: self.peer + other.peer,
        }
    }
}

/// Counts [`SliceWaits`] over a measurement, if it can park at all: only a
/// shared-memory transport under a policy that parks (`spin()` never does,
/// and the kernel transports wait in the kernel).
pub(super) struct SliceWaitCounter(Option<SliceWaits>);

impl SliceWaitCounter {
    pub(super) fn start(peer: &mut Peer, policy: Policy) -> io::Result<SliceWaitCounter> {
        let parks = peer.kind().is_shared_memory() && policy.resolve().spin.is_some();
        Ok(SliceWaitCounter(if parks {
            Some(SliceWaits::now(peer)?)
        } else {
            None
        }))
    }

    pub(super) fn finish(self, peer: &mut Peer) -> io::Result<Option<SliceWaits>> {
        self.0
            .map(|before| Ok(SliceWaits::now(peer)?.since(before)))
            .transpose()
    }
}

/// Round-trip latency of one transport under one policy.
#[derive(Debug, Clone, Serialize)]
pub struct RttResult {
    /// Wait policy.
    pub policy: Policy,
    /// The engine wait policy behind it (shared-memory transports only).
    pub wait: Option<String>,
    /// Message size.
    pub message_bytes: usize,
    /// Bytes the transport actually carried each way (the floor: 8).
    pub carried_bytes: usize,
    /// Percentiles.
    #[serde(flatten)]
    pub latency: Summary,
    /// Hand-offs that waited a full park slice (runs that can park only).
    pub slice_waits: Option<SliceWaits>,
}

/// One-way streaming throughput of one transport at one size and offset.
#[derive(Debug, Clone, Serialize)]
pub struct StreamResult {
    /// Message size in bytes.
    pub size: usize,
    /// Offset of both user buffers from a 64-byte boundary.
    pub offset: usize,
    /// Wait policy.
    pub policy: Policy,
    /// The engine wait policy behind it (shared-memory transports only).
    pub wait: Option<String>,
    /// Messages in the timed batches.
    pub messages: u64,
    /// Timed batches.
    pub batches: usize,
    /// Time in the timed batches.
    pub seconds: f64,
    /// Median over batches.
    pub msgs_per_s: f64,
    /// `msgs_per_s * size / 1e9`.
    pub gb_per_s: f64,
    /// Throughput divided by the kernel pipe's at the same size and offset,
    /// measured in the same run.
    pub ratio_to_pipe: Option<f64>,
    /// For an offset other than 0: throughput divided by the aligned
    /// throughput, as the median over rounds of two short batches run back
    /// to back (see [`measure_ratios`](crate::suite::measure_ratios)), not
    /// the ratio of the two `msgs_per_s`; `None` for the aligned result and
    /// for an offset measured alone.
    pub ratio_to_aligned: Option<f64>,
    /// Hand-offs that waited a full park slice (runs that can park only);
    /// the last offset's count includes the batches of the ratio runs.
    pub slice_waits: Option<SliceWaits>,
}

/// Everything measured for one transport.
#[derive(Debug, Clone, Serialize)]
pub struct TransportReport {
    /// Transport name.
    pub name: &'static str,
    /// What it stands for: the floor, the engine's internal API, the pipes
    /// applications use, or the kernel.
    pub family: Family,
    /// Buffering it got.
    pub buffers: String,
    /// Whether its peer process was pinned.
    pub child_pinned: bool,
    /// Latency per policy.
    pub rtt: Vec<RttResult>,
    /// Throughput per size and offset (empty for the floor).
    pub stream: Vec<StreamResult>,
}

impl TransportReport {
    /// The latency result under `policy`.
    pub fn rtt(&self, policy: Policy) -> Option<&RttResult> {
        self.rtt.iter().find(|r| r.policy == policy)
    }

    /// Hand-offs that waited a full park slice, over every run of this
    /// transport that can park; `None` if none can.
    ///
    /// ```no_run
    /// use shmpipe_benches::suite::{self, Config, Mode};
    /// // The binary must call `shmpipe_benches::run_if_peer()` first in `main`.
    /// let report = suite::run(&Config::new(Mode::Quick), &mut |_, _| {})?;
    /// for t in &report.transports {
    ///     if let Some(w) = t.slice_waits() {
    ///         assert_eq!((w.bench, w.peer), (0, 0), "{}: lost wake-ups", t.name);
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn slice_waits(&self) -> Option<SliceWaits> {
        let rtt = self.rtt.iter().map(|r| r.slice_waits);
        let stream = self.stream.iter().map(|r| r.slice_waits);
        rtt.chain(stream).flatten().reduce(SliceWaits::add)
    }

    /// The throughput result at `size` and `offset`.
    pub fn stream(&self, size: usize, offset: usize) -> Option<&StreamResult> {
        self.stream
            .iter()
            .find(|r| r.size == size && r.offset == offset)
    }
}

/// Where the processes ran.
#[derive(Debug, Clone, Serialize)]
pub struct PlacementReport {
    /// Both processes of every transport were pinned.
    pub pinned: bool,
    /// CPU of the benchmark process.
    pub parent_cpu: Option<usize>,
    /// CPU of the peers.
    pub child_cpu: Option<usize>,
}

/// The result of [`run`](super::run).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// CPU placement.
    pub placement: PlacementReport,
    /// How long it ran.
    pub mode: Mode,
    /// Requested buffering per direction, bytes.
    pub capacity: usize,
    /// Cost of one clock read, included once in every latency sample.
    pub timer_overhead_ns: u64,
    /// What the "default" policy resolved to (the engine's
    /// `WaitPolicy::default()` for an unpinned process on this machine).
    pub default_wait: String,
    /// Wall time of the whole run.
    pub seconds: f64,
    /// Per transport, in table order.
    pub transports: Vec<TransportReport>,
    /// Connection set-up, if measured.
    pub connect: Option<ConnectReport>,
    /// The async rows, if measured.
    pub asyncio: Option<crate::asyncio::AsyncReport>,
}

impl Report {
    /// The report of transport `kind`.
    pub fn transport(&self, kind: Kind) -> Option<&TransportReport> {
        self.transports.iter().find(|t| t.name == kind.name())
    }
}
