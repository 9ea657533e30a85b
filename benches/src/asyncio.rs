//! The async rows (`shmpipe bench --only async`): round trips and one-way
//! 64 B throughput of shmpipe's async ends (`shmpipe::tokio`) next to
//! tokio's own Unix socket and pipe, between two processes, in the same
//! run.
//!
//! Every process (the benchmark and each peer) runs one current-thread
//! tokio runtime with the I/O driver, and awaits each send and receive as
//! a tokio program would: when an operation cannot complete, the runtime
//! parks in `epoll_wait` until the end's descriptor is ready. For the
//! shmpipe ends that descriptor is the end's readiness eventfd, written by
//! the process's readiness bridge thread when the peer notifies (see
//! `shmpipe::tokio`); for tokio's types it is the socket or pipe itself.
//!
//! The four transports ([`AsyncKind`], made in `ends.rs`) get a peer
//! process each, all started up front, and are measured in turns: each
//! round gives every transport a slice of the budget, so a drift of the
//! machine's speed (this VM's drifts 2-4x between minutes) lands on all of
//! them alike and the ratios to `tokio-unix-stream`, which are what the
//! targets are stated in, compare like with like.

mod ends;
pub(crate) mod peer;

use crate::link::Options;
use crate::payload::{self, Buf};
use crate::peer::protocol::{protocol_error, Process};
use crate::peer::SMALL;
use crate::stats::{self, Summary};
use crate::suite::Mode;
use crate::transport::Family;
use ends::End;
use serde::Serialize;
use std::io;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// The peer role of the async rows.
pub const ASYNC_ROLE: &str = "async";
/// Measurements [`run`] reports progress for.
pub const STEPS: usize = 2;
/// Target: an async round trip's p50 at most this share of tokio's
/// `UnixStream`'s (issue 11).
pub const RTT_TARGET: f64 = 1.0 / 3.0;
/// Target: async 64 B messages/s at least this multiple of tokio's
/// `UnixStream`'s (issue 11).
pub const MSGS_TARGET: f64 = 5.0;
/// How the processes run their futures, for the report.
pub const RUNTIME: &str = "one current-thread tokio runtime per process (enable_io), \
                           every send and receive awaited in a block_on of the whole loop";

/// Rounds the budget is split into (see the module doc).
const ROUNDS: u32 = 5;
const MAX_SAMPLES: usize = 1_000_000;
const SMOKE_ROUND_TRIPS: u64 = 32;
const SMOKE_MESSAGES: u64 = 3;

/// The async transports, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AsyncKind {
    /// A duplex `shmpipe` named pipe in message mode, async ends.
    NamedMsg,
    /// Two `shmpipe` anonymous pipes, async ends.
    Anon,
    /// `tokio::net::UnixStream` over a socket pair.
    UnixStream,
    /// `tokio::net::unix::pipe` over two kernel pipes.
    Pipe,
}

impl AsyncKind {
    /// Every async transport, in table order.
    pub const ALL: [AsyncKind; 4] = [
        AsyncKind::NamedMsg,
        AsyncKind::Anon,
        AsyncKind::UnixStream,
        AsyncKind::Pipe,
    ];

    /// Name in tables, the JSON and the peer protocol.
    ///
    /// ```
    /// use shmpipe_benches::asyncio::AsyncKind;
    /// assert_eq!(AsyncKind::from_name(AsyncKind::Anon.name()), Some(AsyncKind::Anon));
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            AsyncKind::NamedMsg => "async-named-msg",
            AsyncKind::Anon => "async-anon",
            AsyncKind::UnixStream => "tokio-unix-stream",
            AsyncKind::Pipe => "tokio-pipe",
        }
    }

    /// Parses [`AsyncKind::name`].
    pub fn from_name(s: &str) -> Option<AsyncKind> {
        AsyncKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// shmpipe's pipes or the kernel's.
    pub fn family(self) -> Family {
        match self {
            AsyncKind::NamedMsg | AsyncKind::Anon => Family::Pipe,
            AsyncKind::UnixStream | AsyncKind::Pipe => Family::Kernel,
        }
    }

    /// What the row measures, for legends.
    pub fn describe(self) -> &'static str {
        match self {
            AsyncKind::NamedMsg => {
                "shmpipe::tokio named pipe, message mode (send_msg / recv_msg), one message each"
            }
            AsyncKind::Anon => {
                "shmpipe::tokio anonymous pipes, one each way (write_all / read_exact)"
            }
            AsyncKind::UnixStream => "tokio::net::UnixStream over a socket pair",
            AsyncKind::Pipe => "tokio::net::unix::pipe Sender / Receiver over two kernel pipes",
        }
    }
}

/// The runtime every process of the async rows awaits on.
pub(crate) fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
}

/// One async transport's results.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncRow {
    /// [`AsyncKind::name`].
    pub name: &'static str,
    /// shmpipe's or the kernel's.
    pub family: Family,
    /// Buffering it got.
    pub buffers: String,
    /// Whether its peer process was pinned.
    pub child_pinned: bool,
    /// Round trips of a 64 B message.
    pub rtt: Summary,
    /// One-way 64 B messages per second, median of the timed batches.
    pub msgs_per_s: f64,
    /// Messages in the timed batches.
    pub messages: u64,
    /// `rtt.p50_ns` over tokio `UnixStream`'s, this run (target: at most
    /// [`RTT_TARGET`]).
    pub rtt_p50_to_unix: Option<f64>,
    /// The same at the p99.
    pub rtt_p99_to_unix: Option<f64>,
    /// `msgs_per_s` over tokio `UnixStream`'s, this run (target: at least
    /// [`MSGS_TARGET`]).
    pub msgs_to_unix: Option<f64>,
}

/// What [`run`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncReport {
    /// How the futures ran ([`RUNTIME`]).
    pub runtime: &'static str,
    /// Per transport, in [`AsyncKind::ALL`] order.
    pub rows: Vec<AsyncRow>,
}

impl AsyncReport {
    /// The row of `kind`.
    ///
    /// ```no_run
    /// use shmpipe_benches::asyncio::{self, AsyncKind};
    /// use shmpipe_benches::{suite::Mode, Options};
    /// // The binary must call `shmpipe_benches::run_if_peer()` first in `main`.
    /// let r = asyncio::run(&Options::default(), None, Mode::Quick, &mut |_, _| {})?;
    /// let anon = r.row(AsyncKind::Anon).unwrap();
    /// println!("async anon RTT p50 = {:.2}x tokio UnixStream's", anon.rtt_p50_to_unix.unwrap());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn row(&self, kind: AsyncKind) -> Option<&AsyncRow> {
        self.rows.iter().find(|r| r.name == kind.name())
    }
}

/// The parent's side of one async transport and its peer.
struct Side {
    kind: AsyncKind,
    // Declared before `process`: the parent's end closes first.
    end: End,
    process: Process,
    buffers: String,
    seq: u64,
    out: Buf,
    inbox: Buf,
    samples: Vec<u64>,
    rates: Vec<f64>,
    messages: u64,
}

impl Side {
    fn spawn(
        rt: &Runtime,
        kind: AsyncKind,
        opts: &Options,
        child_cpu: Option<usize>,
    ) -> io::Result<Side> {
        let made = {
            let _in = rt.enter();
            ends::open(kind, opts)?
        };
        let mut args = vec![kind.name().to_owned()];
        args.extend(made.child_arg);
        let process = Process::spawn(ASYNC_ROLE, made.child_fds, &args, child_cpu)?;
        if let End::Server(s) = &made.end {
            // The peer opened the instance before it said hello.
            rt.block_on(s.connect())?;
        }
        let mut out = Buf::new(SMALL, 0);
        payload::fill_pattern(out.as_mut_slice());
        Ok(Side {
            kind,
            end: made.end,
            process,
            buffers: made.buffers,
            seq: 0,
            out,
            inbox: Buf::new(SMALL, 0),
            samples: Vec::new(),
            rates: Vec::new(),
            messages: 0,
        })
    }

    /// Starts a command of `n` messages on the peer; the first sequence
    /// number.
    fn command(&mut self, what: &str, n: u64) -> io::Result<u64> {
        let first = self.seq + 1;
        self.seq += n;
        self.process.command(&format!("{what} {first} {n}"))?;
        self.process.expect("ready")?;
        Ok(first)
    }

    /// `n` round trips; the total time, and each one's in `samples` if
    /// `keep`.
    fn roundtrips(&mut self, rt: &Runtime, n: u64, keep: bool) -> io::Result<Duration> {
        let first = self.command("rtt", n)?;
        let Side {
            end,
            out,
            inbox,
            samples,
            ..
        } = self;
        let r = rt.block_on(async {
            let start = Instant::now();
            let mut t0 = start;
            for seq in first..first + n {
                payload::stamp(out.as_mut_slice(), seq);
                end.send(out.as_slice()).await?;
                end.recv(inbox.as_mut_slice()).await?;
                if inbox.as_slice() != out.as_slice() {
                    return Err(protocol_error(format!(
                        "echo of message {seq} differs (first word {})",
                        payload::first_word(inbox.as_slice())
                    )));
                }
                if keep {
                    let t1 = Instant::now();
                    samples.push((t1 - t0).as_nanos() as u64);
                    t0 = t1;
                }
            }
            Ok(start.elapsed())
        });
        let total = r.map_err(|e| self.process.link_failed(e))?;
        self.process.expect("ok")?;
        Ok(total)
    }

    /// Streams `n` 64 B messages and waits for the peer's acknowledgement
    /// of the last; the time from the first send to the acknowledgement.
    fn stream(&mut self, rt: &Runtime, n: u64) -> io::Result<Duration> {
        let first = self.command("stream", n)?;
        let Side {
            end, out, inbox, ..
        } = self;
        let r = rt.block_on(async {
            let start = Instant::now();
            for seq in first..first + n {
                payload::stamp(out.as_mut_slice(), seq);
                end.send(out.as_slice()).await?;
            }
            end.recv(inbox.as_mut_slice()).await?;
            Ok::<_, io::Error>(start.elapsed())
        });
        let elapsed = r.map_err(|e| self.process.link_failed(e))?;
        let last = first + n - 1;
        if !payload::stamps_ok(self.inbox.as_slice(), last) {
            self.process.set_broken();
            return Err(protocol_error(format!(
                "the acknowledgement of message {last} is wrong (says {})",
                payload::first_word(self.inbox.as_slice())
            )));
        }
        self.process.expect("ok")?;
        Ok(elapsed)
    }
}

fn with_context<T>(r: io::Result<T>, kind: AsyncKind, what: &str) -> io::Result<T> {
    r.map_err(|e| io::Error::new(e.kind(), format!("{}: {what}: {e}", kind.name())))
}

/// Messages per batch that take about `target`, warming up on the way.
fn calibrate(side: &mut Side, rt: &Runtime, target: Duration) -> io::Result<u64> {
    let mut n = 16u64;
    loop {
        let d = side.stream(rt, n)?;
        if d >= target / 4 || n >= 1 << 26 {
            let scale = target.as_secs_f64() / d.as_secs_f64().max(1e-9);
            return Ok(((n as f64 * scale) as u64).max(1));
        }
        n *= 4;
    }
}

/// Runs the async rows: one peer per transport, pinned to `child_cpu` if
/// given (the calling thread should be pinned already, as
/// [`crate::suite::run`] does). `progress(i, label)` is called before each
/// of the [`STEPS`] measurements.
pub fn run(
    opts: &Options,
    child_cpu: Option<usize>,
    mode: Mode,
    progress: &mut dyn FnMut(usize, &str),
) -> io::Result<AsyncReport> {
    let rt = runtime()?;
    let mut sides = AsyncKind::ALL
        .into_iter()
        .map(|k| with_context(Side::spawn(&rt, k, opts, child_cpu), k, "starting the peer"))
        .collect::<io::Result<Vec<_>>>()?;

    progress(0, "async: round trips, tokio current-thread runtimes");
    if mode == Mode::Smoke {
        for s in &mut sides {
            with_context(
                s.roundtrips(&rt, SMOKE_ROUND_TRIPS, true),
                s.kind,
                "round trips",
            )?;
        }
    } else {
        let slice = mode.rtt_budget() / ROUNDS;
        let mut chunk = vec![0u64; sides.len()];
        for (s, c) in sides.iter_mut().zip(&mut chunk) {
            // Warm-up, which also sizes a chunk to a twentieth of a slice.
            let (mut n, start) = (0u64, Instant::now());
            while start.elapsed() < slice / 4 {
                with_context(s.roundtrips(&rt, 100, false), s.kind, "round trips")?;
                n += 100;
            }
            let per = start.elapsed().as_secs_f64() / n as f64;
            *c = ((slice / 20).as_secs_f64() / per.max(1e-9)).clamp(50.0, 100_000.0) as u64;
        }
        for _ in 0..ROUNDS {
            for (s, &c) in sides.iter_mut().zip(&chunk) {
                let start = Instant::now();
                while start.elapsed() < slice && s.samples.len() < MAX_SAMPLES {
                    with_context(s.roundtrips(&rt, c, true), s.kind, "round trips")?;
                }
            }
        }
    }

    progress(1, "async: stream 64 B, tokio current-thread runtimes");
    let (rounds, target) = if mode == Mode::Smoke {
        (1, Duration::ZERO)
    } else {
        (ROUNDS, mode.stream_budget() / ROUNDS / 2)
    };
    let mut batch = vec![SMOKE_MESSAGES; sides.len()];
    if mode != Mode::Smoke {
        for (s, b) in sides.iter_mut().zip(&mut batch) {
            *b = with_context(calibrate(s, &rt, target), s.kind, "stream")?;
        }
    }
    for _ in 0..rounds {
        for (s, &n) in sides.iter_mut().zip(&batch) {
            // Two batches per turn: the median of an odd round count
            // of one each would hang on a single batch.
            for _ in 0..2 {
                let d = with_context(s.stream(&rt, n), s.kind, "stream")?;
                s.rates.push(n as f64 / d.as_secs_f64().max(1e-9));
                s.messages += n;
            }
        }
    }

    let mut rows = Vec::new();
    for mut s in sides {
        let rtt = stats::summarize(&mut s.samples).expect("round trips ran");
        let msgs_per_s = stats::median(&mut s.rates).expect("batches ran");
        rows.push(AsyncRow {
            name: s.kind.name(),
            family: s.kind.family(),
            buffers: std::mem::take(&mut s.buffers),
            child_pinned: s.process.pinned(),
            rtt,
            msgs_per_s,
            messages: s.messages,
            rtt_p50_to_unix: None,
            rtt_p99_to_unix: None,
            msgs_to_unix: None,
        });
        let Side {
            kind, end, process, ..
        } = s;
        drop(end);
        with_context(process.quit().map(drop), kind, "stopping the peer")?;
    }
    fill_ratios(&mut rows);
    Ok(AsyncReport {
        runtime: RUNTIME,
        rows,
    })
}

fn fill_ratios(rows: &mut [AsyncRow]) {
    let Some(unix) = rows.iter().find(|r| r.name == AsyncKind::UnixStream.name()) else {
        return;
    };
    let (p50, p99, msgs) = (
        unix.rtt.p50_ns as f64,
        unix.rtt.p99_ns as f64,
        unix.msgs_per_s,
    );
    let div = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    for r in rows {
        r.rtt_p50_to_unix = div(r.rtt.p50_ns as f64, p50);
        r.rtt_p99_to_unix = div(r.rtt.p99_ns as f64, p99);
        r.msgs_to_unix = div(r.msgs_per_s, msgs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in AsyncKind::ALL {
            assert_eq!(AsyncKind::from_name(k.name()), Some(k));
        }
        assert_eq!(AsyncKind::from_name("anon"), None);
    }
}
