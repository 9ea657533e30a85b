//! The link role: a peer on the far side of one transport, and the
//! parent's [`Peer`] handle that drives it.
//!
//! The parent makes the transport ([`transport::open`]) and spawns the peer
//! with the transport's name as its role; the peer rebuilds its side
//! ([`transport::adopt`]), says hello, then answers commands, moving the
//! measured messages over the transport, never over the control socket:
//!
//! ```text
//! parent: policy <spin ns|none> <slice ns> -> ok     (after the parent's side changed)
//! parent: rtt <first> <n>                ->  ready, n echoes on the link, ok | error <why>
//! parent: stream <size> <off> <first> <n> -> ready, n messages + 1 ack on the link, ok | error <why>
//! parent: slice-waits                    -> slice-waits <n>   (the peer's full_slice_waits())
//! parent: quit                               (child exits 0; so does EOF)
//! ```
//!
//! Sequence numbers continue across commands (`first`), so a message left
//! over from an earlier command can never pass for a new one (and the
//! floor's "value changed" test works for runs of one iteration, which is
//! what criterion's test mode asks for).

use super::protocol::{num, parse_policy, pin, protocol_error, report, Control, Process, SMALL};
use crate::link::{Handover, Link, Options};
use crate::payload::{self, Buf};
use crate::policy::{self, Policy};
use crate::transport::{self, Kind};
use rustix::fd::OwnedFd;
use std::io;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// The parent's handle on a peer process and the transport to it.
pub struct Peer {
    kind: Kind,
    // Declared before `process`: the parent's side closes first, so the
    // peer sees the transport end before it is told to quit.
    link: Box<dyn Link>,
    process: Process,
    buffers: String,
    seq: u64,
    small_out: Buf,
    small_in: Buf,
    stream_out: Option<Buf>,
}

impl Peer {
    /// Makes a `kind` transport and starts the peer process on it, pinned
    /// to `child_cpu` if given.
    pub fn spawn(kind: Kind, opts: &Options, child_cpu: Option<usize>) -> io::Result<Peer> {
        let setup = transport::open(kind, opts)?;
        let args: Vec<String> = setup.child_arg.into_iter().collect();
        let process = Process::spawn(kind.name(), setup.child_fds, &args, child_cpu)?;
        let mut peer = Peer {
            kind,
            link: setup.link,
            process,
            buffers: setup.buffers,
            seq: 0,
            small_out: Buf::new(SMALL, 0),
            small_in: Buf::new(SMALL, 0),
            stream_out: None,
        };
        payload::fill_pattern(peer.small_out.as_mut_slice());
        Ok(peer)
    }

    /// The transport.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// What buffering the transport got.
    pub fn buffers(&self) -> &str {
        &self.buffers
    }

    /// Whether the peer pinned itself to the CPU it was given.
    pub fn child_pinned(&self) -> bool {
        self.process.pinned()
    }

    /// Sets the wait policy on both sides, the parent's first (see
    /// [`Link::set_policy`]).
    pub fn set_policy(&mut self, policy: Policy) -> io::Result<()> {
        // Resolved here and sent as numbers: the peer, pinned from birth,
        // would resolve the engine default differently.
        let wait = policy.resolve();
        if let Err(e) = self.link.set_policy(wait) {
            self.process.set_broken();
            return Err(e);
        }
        self.process
            .command(&format!("policy {}", policy::encode_wait(&wait)))?;
        self.process.expect("ok")?;
        Ok(())
    }

    /// `n` round trips of a 64-byte message (the peer echoes it). Returns
    /// the total time; with `samples`, also pushes each round trip's
    /// duration in nanoseconds.
    pub fn roundtrip(&mut self, n: u64, samples: Option<&mut Vec<u64>>) -> io::Result<Duration> {
        let first = self.seq + 1;
        self.seq += n;
        self.process.command(&format!("rtt {first} {n}"))?;
        self.process.expect("ready")?;
        let carried = self.kind.carried(SMALL);
        let r = run_roundtrips(
            &mut *self.link,
            &mut self.small_out,
            &mut self.small_in,
            carried,
            first..first + n,
            samples,
        );
        let total = r.map_err(|e| self.process.link_failed(e))?;
        self.process.expect("ok")?;
        Ok(total)
    }

    /// Streams `n` messages of `size` bytes from a buffer `offset` bytes past
    /// a 64-byte boundary (the peer reads into one with the same offset),
    /// and waits for the peer's acknowledgement of the last one. Returns the
    /// time from the first write to the acknowledgement.
    pub fn stream(&mut self, size: usize, offset: usize, n: u64) -> io::Result<Duration> {
        if !self.kind.streams() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{} does not stream", self.kind.name()),
            ));
        }
        if size < 16 || offset >= 64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stream messages need at least 16 bytes and an offset below 64",
            ));
        }
        let reuse = self
            .stream_out
            .as_ref()
            .is_some_and(|b| b.len() == size && b.misalignment() == offset);
        if !reuse {
            let mut b = Buf::new(size, offset);
            payload::fill_pattern(b.as_mut_slice());
            self.stream_out = Some(b);
        }
        let first = self.seq + 1;
        self.seq += n;
        self.process
            .command(&format!("stream {size} {offset} {first} {n}"))?;
        self.process.expect("ready")?;
        let out = self.stream_out.as_mut().expect("made above");
        let start = Instant::now();
        let r = (|| {
            for seq in first..first + n {
                payload::stamp(out.as_mut_slice(), seq);
                self.link.send(out.as_slice())?;
            }
            self.link.recv(self.small_in.as_mut_slice())
        })();
        let elapsed = start.elapsed();
        r.map_err(|e| self.process.link_failed(e))?;
        let ack = self.small_in.as_slice();
        let last = first + n - 1;
        if !payload::stamps_ok(ack, last) {
            self.process.set_broken();
            return Err(protocol_error(format!(
                "the acknowledgement of message {last} is wrong (says {})",
                payload::first_word(ack)
            )));
        }
        self.process.expect("ok")?;
        Ok(elapsed)
    }

    /// How many hand-offs in the peer process, since it started, waited a
    /// full park slice: its `shmpipe_engine::wait::full_slice_waits()`, a
    /// process-wide count (callers take differences).
    ///
    /// ```no_run
    /// use shmpipe_benches::{Kind, Options, Peer, Policy};
    /// // The binary must call `shmpipe_benches::run_if_peer()` first in `main`.
    /// let mut peer = Peer::spawn(Kind::Engine, &Options::default(), None)?;
    /// peer.set_policy(Policy::Default)?;
    /// let before = peer.full_slice_waits()?;
    /// peer.roundtrip(10_000, None)?;
    /// println!("lost wake-ups in the peer: {}", peer.full_slice_waits()? - before);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn full_slice_waits(&mut self) -> io::Result<u64> {
        self.process.command("slice-waits")?;
        let line = self.process.expect("slice-waits")?;
        let mut w = line.split_whitespace().skip(1);
        match (w.next().and_then(|n| n.parse().ok()), w.next()) {
            (Some(n), None) => Ok(n),
            _ => {
                self.process.set_broken();
                Err(protocol_error(format!("bad slice-waits reply {line:?}")))
            }
        }
    }

    /// Tells the peer to quit and reaps it.
    pub fn quit(self) -> io::Result<ExitStatus> {
        let Peer { link, process, .. } = self;
        drop(link);
        process.quit()
    }
}

fn run_roundtrips(
    link: &mut dyn Link,
    out: &mut Buf,
    echo: &mut Buf,
    carried: usize,
    seqs: std::ops::Range<u64>,
    mut samples: Option<&mut Vec<u64>>,
) -> io::Result<Duration> {
    let start = Instant::now();
    let mut t0 = start;
    for seq in seqs {
        payload::stamp(out.as_mut_slice(), seq);
        link.send(out.as_slice())?;
        link.recv(echo.as_mut_slice())?;
        if echo.as_slice()[..carried] != out.as_slice()[..carried] {
            return Err(protocol_error(format!(
                "echo of message {seq} differs (first word {})",
                payload::first_word(echo.as_slice())
            )));
        }
        if let Some(s) = samples.as_deref_mut() {
            let t1 = Instant::now();
            s.push((t1 - t0).as_nanos() as u64);
            t0 = t1;
        }
    }
    Ok(start.elapsed())
}

/// The peer side of the link role: rebuilds its side of a `kind`
/// transport from `fds` and `args`, pins itself to `cpu` if given, says
/// hello and serves the parent's commands.
pub(super) fn serve(
    ctl: &mut Control,
    kind: Kind,
    fds: Vec<OwnedFd>,
    args: Vec<String>,
    cpu: Option<usize>,
) -> io::Result<()> {
    let mut link = transport::adopt(
        kind,
        Handover {
            fds,
            arg: args.into_iter().next(),
        },
    )?;
    let pinned = pin(cpu);
    ctl.send(&format!("hello pinned={}", u8::from(pinned)))?;
    serve_commands(&mut *link, ctl)
}

fn serve_commands(link: &mut dyn Link, ctl: &mut Control) -> io::Result<()> {
    let mut small = Buf::new(SMALL, 0);
    let mut ack = Buf::new(SMALL, 0);
    let mut inbox: Option<Buf> = None;
    while let Some(line) = ctl.recv()? {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("quit") => return Ok(()),
            Some("policy") => {
                link.set_policy(parse_policy(w)?)?;
                ctl.send("ok")?;
            }
            Some("slice-waits") => {
                let n = shmpipe_engine::wait::full_slice_waits();
                ctl.send(&format!("slice-waits {n}"))?;
            }
            Some("rtt") => {
                let (first, n): (u64, u64) = (num(w.next())?, num(w.next())?);
                ctl.send("ready")?;
                let mut bad = None;
                for seq in first..first + n {
                    link.recv(small.as_mut_slice())?;
                    let got = payload::first_word(small.as_slice());
                    if got != seq && bad.is_none() {
                        bad = Some(format!("round trip {seq} arrived as {got}"));
                    }
                    link.send(small.as_slice())?;
                }
                report(ctl, bad)?;
            }
            Some("stream") => {
                let size: usize = num(w.next())?;
                let offset: usize = num(w.next())?;
                let (first, n): (u64, u64) = (num(w.next())?, num(w.next())?);
                if size < 16 || offset >= 64 {
                    return Err(protocol_error(format!("bad stream command {line:?}")));
                }
                let buf = match inbox.take() {
                    Some(b) if b.len() == size && b.misalignment() == offset => b,
                    _ => Buf::new(size, offset),
                };
                let buf = inbox.insert(buf);
                ctl.send("ready")?;
                let mut bad = None;
                for seq in first..first + n {
                    link.recv(buf.as_mut_slice())?;
                    let m = buf.as_slice();
                    // The whole pattern once per run, the stamps always.
                    let ok = if seq == first {
                        payload::full_ok(m, seq)
                    } else {
                        payload::stamps_ok(m, seq)
                    };
                    if !ok && bad.is_none() {
                        bad = Some(format!(
                            "message {seq} of {size} B arrived corrupted (first word {})",
                            payload::first_word(m)
                        ));
                    }
                }
                payload::stamp(ack.as_mut_slice(), first + n - 1);
                link.send(ack.as_slice())?;
                report(ctl, bad)?;
            }
            _ => return Err(protocol_error(format!("unknown command {line:?}"))),
        }
    }
    Ok(())
}
