//! The whole comparison in one run, as `shmpipe bench` performs it: every
//! transport, one peer process each, round-trip latency under each of its
//! wait policies, then streaming throughput at every size, aligned and
//! unaligned; then connection set-up ([`crate::connect`]). Runs are bounded
//! by time (quick or full) or, for smoke tests, by a handful of iterations.

mod report;

use crate::affinity;
use crate::asyncio;
use crate::connect;
use crate::link::{human_bytes, Options};
use crate::machine;
pub use crate::mode::Mode;
use crate::peer::{Peer, SMALL};
use crate::policy::{default_wait_policy, describe, Policy};
use crate::stats;
use crate::transport::Kind;
use report::SliceWaitCounter;
pub use report::{PlacementReport, Report, RttResult, SliceWaits, StreamResult, TransportReport};
use std::io;
use std::time::{Duration, Instant};

/// Message sizes of the throughput runs.
pub const SIZES: [usize; 4] = [64, 4 << 10, 64 << 10, 1 << 20];
/// Buffer offsets from a 64-byte boundary of the throughput runs.
pub const OFFSETS: [usize; 2] = [0, 16];

/// Round trips per sample chunk are sized to take about this share of the
/// budget, so the time bound holds for fast and slow transports alike.
const CHUNK_SHARE: u32 = 20;
/// Memory bound on latency samples (8 bytes each).
const MAX_SAMPLES: usize = 4_000_000;
const SMOKE_ROUND_TRIPS: u64 = 64;
const SMOKE_MESSAGES: u64 = 3;

impl Mode {
    pub(crate) fn rtt_budget(self) -> Duration {
        match self {
            Mode::Smoke => Duration::ZERO,
            Mode::Quick => Duration::from_millis(800),
            Mode::Full => Duration::from_secs(4),
        }
    }

    pub(crate) fn stream_budget(self) -> Duration {
        match self {
            Mode::Smoke => Duration::ZERO,
            Mode::Quick => Duration::from_millis(500),
            Mode::Full => Duration::from_secs(2),
        }
    }

    /// Untimed, then timed connections per target.
    fn connect_repetitions(self) -> (usize, usize) {
        match self {
            Mode::Smoke => (1, 3),
            Mode::Quick => (20, 300),
            Mode::Full => (100, 2000),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long.
    pub mode: Mode,
    /// Pin the two processes to different CPUs if possible.
    pub pin: bool,
    /// Transport buffering.
    pub transport: Options,
    /// Which transports, in table order.
    pub kinds: Vec<Kind>,
    /// Also measure connection set-up (named pipe against Unix socket).
    pub connect: bool,
    /// Also run the async rows ([`crate::asyncio`]).
    pub asyncio: bool,
}

impl Config {
    /// Every transport and the connection set-up, pinned, default buffers.
    pub fn new(mode: Mode) -> Config {
        Config {
            mode,
            pin: true,
            transport: Options::default(),
            kinds: Kind::ALL.to_vec(),
            connect: true,
            asyncio: true,
        }
    }

    /// Number of measurements [`run`] makes (for progress displays).
    pub fn steps(&self) -> usize {
        let transports: usize = self
            .kinds
            .iter()
            .map(|k| k.policies().len() + usize::from(k.streams()) * SIZES.len() * OFFSETS.len())
            .sum();
        transports + usize::from(self.connect) + usize::from(self.asyncio) * asyncio::STEPS
    }
}

fn timer_overhead_ns() -> u64 {
    let mut v: Vec<u64> = (0..1001)
        .map(|_| {
            let a = Instant::now();
            (Instant::now() - a).as_nanos() as u64
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn with_context<T>(r: io::Result<T>, what: &str) -> io::Result<T> {
    r.map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))
}

/// Runs the comparison. `progress(i, label)` is called before measurement
/// `i` of [`Config::steps`].
pub fn run(config: &Config, progress: &mut dyn FnMut(usize, &str)) -> io::Result<Report> {
    let started = Instant::now();
    // Probe before pinning, which narrows the allowed CPUs to one.
    let machine = machine::probe();
    let placement = affinity::place(config.pin);
    let timer_overhead_ns = timer_overhead_ns();
    let mut step = 0;
    let mut transports = Vec::new();
    for &kind in &config.kinds {
        let name = kind.name();
        let mut peer = with_context(
            Peer::spawn(kind, &config.transport, placement.child_cpu),
            &format!("{name}: starting the peer"),
        )?;
        let mut rtt = Vec::new();
        for &policy in kind.policies() {
            let label = format!("{name}: round trip, {} policy", policy.name());
            progress(step, &label);
            step += 1;
            rtt.push(with_context(
                measure_rtt(&mut peer, policy, config.mode),
                &label,
            )?);
        }
        let mut stream = Vec::new();
        if kind.streams() {
            let policy = kind.stream_policy();
            with_context(peer.set_policy(policy), name)?;
            for size in SIZES {
                let label = format!(
                    "{name}: stream {}, aligned and +{} B, alternating",
                    human_bytes(size),
                    OFFSETS[1]
                );
                progress(step, &label);
                step += OFFSETS.len();
                stream.extend(with_context(
                    measure_streams(&mut peer, size, &OFFSETS, policy, config.mode),
                    &label,
                )?);
            }
        }
        let report = TransportReport {
            name,
            family: kind.family(),
            buffers: peer.buffers().to_owned(),
            child_pinned: peer.child_pinned(),
            rtt,
            stream,
        };
        with_context(peer.quit(), name)?;
        transports.push(report);
    }
    fill_ratios(&mut transports);
    let connect = if config.connect {
        let label = "connect + first round trip: named pipe, Unix socket";
        progress(step, label);
        let (warmup, n) = config.mode.connect_repetitions();
        Some(with_context(
            connect::run(placement.child_cpu, warmup, n),
            label,
        )?)
    } else {
        None
    };
    let asyncio = if config.asyncio {
        let first = step + usize::from(config.connect);
        let r = asyncio::run(
            &config.transport,
            placement.child_cpu,
            config.mode,
            &mut |i, l| progress(first + i, l),
        );
        Some(with_context(r, "async rows")?)
    } else {
        None
    };
    let pinned = placement.parent_cpu.is_some()
        && transports.iter().all(|t| t.child_pinned)
        && connect.as_ref().is_none_or(|c| c.child_pinned)
        && asyncio
            .as_ref()
            .is_none_or(|a| a.rows.iter().all(|r| r.child_pinned));
    Ok(Report {
        machine,
        placement: PlacementReport {
            pinned,
            parent_cpu: placement.parent_cpu,
            child_cpu: placement.child_cpu,
        },
        mode: config.mode,
        capacity: config.transport.capacity,
        timer_overhead_ns,
        default_wait: describe(&default_wait_policy()),
        seconds: started.elapsed().as_secs_f64(),
        transports,
        connect,
        asyncio,
    })
}

fn fill_ratios(transports: &mut [TransportReport]) {
    let Some(pipe) = transports.iter().find(|t| t.name == Kind::Pipe.name()) else {
        return;
    };
    let base: Vec<(usize, usize, f64)> = pipe
        .stream
        .iter()
        .map(|r| (r.size, r.offset, r.msgs_per_s))
        .collect();
    for t in transports.iter_mut() {
        for r in &mut t.stream {
            r.ratio_to_pipe = base
                .iter()
                .find(|b| b.0 == r.size && b.1 == r.offset && b.2 > 0.0)
                .map(|b| r.msgs_per_s / b.2);
        }
    }
}

fn wait_of(kind: Kind, policy: Policy) -> Option<String> {
    kind.is_shared_memory().then(|| describe(&policy.resolve()))
}

/// Round-trip latency samples for about the mode's budget.
pub fn measure_rtt(peer: &mut Peer, policy: Policy, mode: Mode) -> io::Result<RttResult> {
    peer.set_policy(policy)?;
    let counter = SliceWaitCounter::start(peer, policy)?;
    let mut samples = Vec::new();
    if mode == Mode::Smoke {
        peer.roundtrip(SMOKE_ROUND_TRIPS, Some(&mut samples))?;
    } else {
        let budget = mode.rtt_budget();
        let start = Instant::now();
        // Warm-up (caches, page faults, frequency), which also tells how
        // many round trips fit in a chunk.
        let (mut n, mut spent) = (0u64, Duration::ZERO);
        while start.elapsed() < budget / 10 {
            spent += peer.roundtrip(100, None)?;
            n += 100;
        }
        let per = spent.as_secs_f64() / n.max(1) as f64;
        let chunk = ((budget / CHUNK_SHARE).as_secs_f64() / per.max(1e-9)) as u64;
        let chunk = chunk.clamp(100, 1_000_000);
        // At least one chunk: a warm-up slowed past the whole budget (a
        // loaded machine) must still leave samples to summarize.
        loop {
            peer.roundtrip(chunk, Some(&mut samples))?;
            if start.elapsed() >= budget || samples.len() >= MAX_SAMPLES {
                break;
            }
        }
    }
    let slice_waits = counter.finish(peer)?;
    let latency = stats::summarize(&mut samples).expect("at least one chunk ran");
    Ok(RttResult {
        policy,
        wait: wait_of(peer.kind(), policy),
        message_bytes: SMALL,
        carried_bytes: peer.kind().carried(SMALL),
        latency,
        slice_waits,
    })
}

/// Grows a batch from one message until it takes a noticeable share of
/// `target` (warming the path up on the way), then scales it to `target`.
fn calibrate(
    peer: &mut Peer,
    size: usize,
    offset: usize,
    target: Duration,
    limit: Duration,
) -> io::Result<u64> {
    let start = Instant::now();
    let mut n = 1u64;
    loop {
        let d = peer.stream(size, offset, n)?;
        if d >= target / 4 || start.elapsed() >= limit {
            let scale = target.as_secs_f64() / d.as_secs_f64().max(1e-9);
            return Ok(((n as f64 * scale) as u64).max(1));
        }
        n *= 4;
    }
}

/// Streaming throughput for about the mode's budget: batches sized to about
/// an eighth of it, reporting the median batch.
pub fn measure_stream(
    peer: &mut Peer,
    size: usize,
    offset: usize,
    policy: Policy,
    mode: Mode,
) -> io::Result<StreamResult> {
    let mut r = measure_streams(peer, size, &[offset], policy, mode)?;
    Ok(r.pop().expect("one result per offset"))
}

/// What one offset's batches add up to.
struct Batches {
    offset: usize,
    n: u64,
    rates: Vec<f64>,
    messages: u64,
    seconds: f64,
    slice_waits: Option<SliceWaits>,
}

impl Batches {
    fn add_waits(&mut self, waits: Option<SliceWaits>) {
        self.slice_waits = match (self.slice_waits, waits) {
            (Some(a), Some(w)) => Some(a.add(w)),
            (a, w) => a.or(w),
        };
    }
}

/// Streaming throughput at `size` for each of `offsets`, about the mode's
/// budget each, in batches that alternate between the offsets (aligned,
/// +16, aligned, ...), each reporting the median of its own batches; then,
/// for every offset after the first, its [`StreamResult::ratio_to_aligned`]
/// from short batches run in pairs ([`measure_ratios`]).
pub fn measure_streams(
    peer: &mut Peer,
    size: usize,
    offsets: &[usize],
    policy: Policy,
    mode: Mode,
) -> io::Result<Vec<StreamResult>> {
    let mut all: Vec<Batches> = offsets
        .iter()
        .map(|&offset| Batches {
            offset,
            n: SMOKE_MESSAGES,
            rates: Vec::new(),
            messages: 0,
            seconds: 0.0,
            slice_waits: None,
        })
        .collect();
    let budget = mode.stream_budget() * offsets.len() as u32;
    let start = Instant::now();
    if mode != Mode::Smoke {
        let target = mode.stream_budget() / 8;
        let limit = mode.stream_budget() / 3;
        for b in &mut all {
            b.n = calibrate(peer, size, b.offset, target, limit)?;
        }
    }
    loop {
        for b in &mut all {
            let counter = SliceWaitCounter::start(peer, policy)?;
            let d = peer.stream(size, b.offset, b.n)?;
            let waits = counter.finish(peer)?;
            b.rates.push(b.n as f64 / d.as_secs_f64());
            b.messages += b.n;
            b.seconds += d.as_secs_f64();
            b.add_waits(waits);
        }
        let batches = all[0].rates.len();
        if mode == Mode::Smoke || (batches >= 3 && start.elapsed() >= budget) {
            break;
        }
    }
    let mut ratios = vec![None; offsets.len()];
    if offsets.len() > 1 {
        let counter = SliceWaitCounter::start(peer, policy)?;
        ratios = measure_ratios(peer, size, offsets, mode)?;
        let waits = counter.finish(peer)?;
        all.last_mut().expect("two offsets").add_waits(waits);
    }
    Ok(all
        .into_iter()
        .zip(ratios)
        .map(|(mut b, ratio_to_aligned)| {
            let batches = b.rates.len();
            let msgs_per_s = stats::median(&mut b.rates).expect("at least one batch ran");
            StreamResult {
                size,
                offset: b.offset,
                policy,
                wait: wait_of(peer.kind(), policy),
                messages: b.messages,
                batches,
                seconds: b.seconds,
                msgs_per_s,
                gb_per_s: msgs_per_s * size as f64 / 1e9,
                ratio_to_pipe: None,
                ratio_to_aligned,
                slice_waits: b.slice_waits,
            }
        })
        .collect())
}

/// The length of one batch of the paired ratio runs.
const PAIR_BATCH: Duration = Duration::from_millis(1);
/// Rounds of the paired ratio runs at the least (the time bound aside).
const MIN_PAIR_ROUNDS: usize = 15;

/// The throughput at each of `offsets` divided by the throughput at the
/// first, as the median over rounds of one short batch per offset, the
/// rounds alternating the order (aligned, +16; +16, aligned; ...); `None`
/// for the first offset.
///
/// The rows' batches are too long for this ratio: this VM's speed drifts
/// 2-4x between minutes and, with more runnable threads than CPUs, other
/// processes take a CPU for milliseconds at a time, so a batch of tens of
/// milliseconds is rarely undisturbed (its rate ran from a fifth to the
/// whole of the undisturbed rate), and a ratio of two such medians moved
/// 0.6-2.0x between runs while the copies themselves ran at 0.9-1.2x.
/// Batches of a millisecond mostly run undisturbed, the two of a round
/// run back to back (a drift touches both alike, and the alternating order
/// cancels one within the round), and the median discards the rounds a
/// preemption hit.
pub fn measure_ratios(
    peer: &mut Peer,
    size: usize,
    offsets: &[usize],
    mode: Mode,
) -> io::Result<Vec<Option<f64>>> {
    let (n, budget) = if mode == Mode::Smoke {
        (SMOKE_MESSAGES, Duration::ZERO)
    } else {
        // The median of three, so that one calibration a preemption
        // stretched does not shrink every batch to a message or two.
        let mut n = [0; 3];
        for n in &mut n {
            *n = calibrate(peer, size, offsets[0], PAIR_BATCH, PAIR_BATCH * 20)?;
        }
        n.sort_unstable();
        (n[1], mode.stream_budget() / 2)
    };
    let mut rates = vec![Vec::new(); offsets.len()];
    let start = Instant::now();
    for round in 0.. {
        let mut order: Vec<usize> = (0..offsets.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let d = peer.stream(size, offsets[i], n)?;
            rates[i].push(n as f64 / d.as_secs_f64());
        }
        let (rounds, elapsed) = (round + 1, start.elapsed());
        if mode == Mode::Smoke
            || (rounds >= MIN_PAIR_ROUNDS && elapsed >= budget)
            || elapsed >= budget * 4
        {
            break;
        }
    }
    Ok(rates
        .iter()
        .enumerate()
        .map(|(i, r)| (i > 0).then(|| median_ratio(r, &rates[0])).flatten())
        .collect())
}

/// The median over rounds of `rates[i] / base[i]` (rounds where `base`
/// has a positive rate); `None` without any.
fn median_ratio(rates: &[f64], base: &[f64]) -> Option<f64> {
    let mut ratios: Vec<f64> = rates
        .iter()
        .zip(base)
        .filter(|(_, &b)| b > 0.0)
        .map(|(&r, &b)| r / b)
        .collect();
    stats::median(&mut ratios)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Family;

    fn rtt(policy: Policy, slice_waits: Option<SliceWaits>) -> RttResult {
        RttResult {
            policy,
            wait: None,
            message_bytes: SMALL,
            carried_bytes: SMALL,
            latency: stats::summarize(&mut [1000]).unwrap(),
            slice_waits,
        }
    }

    fn stream(slice_waits: Option<SliceWaits>) -> StreamResult {
        StreamResult {
            size: 64,
            offset: 0,
            policy: Policy::Default,
            wait: None,
            messages: 1,
            batches: 1,
            seconds: 1.0,
            msgs_per_s: 1.0,
            gb_per_s: 0.0,
            ratio_to_pipe: None,
            ratio_to_aligned: None,
            slice_waits,
        }
    }

    fn report(rtt: Vec<RttResult>, stream: Vec<StreamResult>) -> TransportReport {
        TransportReport {
            name: "engine",
            family: Family::Engine,
            buffers: String::new(),
            child_pinned: false,
            rtt,
            stream,
        }
    }

    #[test]
    fn slice_waits_add_up_over_the_runs_that_can_park() {
        let w = |bench, peer| Some(SliceWaits { bench, peer });
        let t = report(
            vec![rtt(Policy::Spin, None), rtt(Policy::Default, w(1, 0))],
            vec![stream(w(0, 2)), stream(w(3, 0))],
        );
        assert_eq!(t.slice_waits(), w(4, 2));
        // A transport that never parks has no count, not a count of 0.
        let kernel = report(vec![rtt(Policy::Default, None)], vec![stream(None)]);
        assert_eq!(kernel.slice_waits(), None);
    }

    #[test]
    fn slice_waits_are_differences() {
        let before = SliceWaits { bench: 5, peer: 7 };
        let after = SliceWaits { bench: 6, peer: 7 };
        assert_eq!(after.since(before), SliceWaits { bench: 1, peer: 0 });
        // A peer whose count went backwards (it cannot, unless it lies)
        // reads as no waits rather than overflowing.
        let lying = SliceWaits { bench: 6, peer: 0 };
        assert_eq!(lying.since(before), SliceWaits { bench: 1, peer: 0 });
    }

    #[test]
    fn the_ratio_to_aligned_pairs_batches_of_the_same_round() {
        // The machine slows down 4x half-way: the ratio of the offsets'
        // medians would say 0.25 or 4, the rounds say 0.9 throughout.
        let aligned = [100.0, 100.0, 100.0, 25.0, 25.0, 25.0];
        let offset = [90.0, 90.0, 22.5, 22.5, 22.5, 22.5];
        let r = median_ratio(&offset, &aligned[..]).unwrap();
        assert!((r - 0.9).abs() < 1e-9, "{r}");
        // One round that a preemption hit does not move it.
        let r = median_ratio(&[90.0, 9.0, 90.0], &[100.0; 3]).unwrap();
        assert!((r - 0.9).abs() < 1e-9, "{r}");
        assert_eq!(median_ratio(&[], &[]), None);
        assert_eq!(median_ratio(&[1.0], &[0.0]), None);
    }
}
