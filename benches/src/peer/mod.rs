//! The peer process and the control protocol that drives it.
//!
//! # Spawning
//!
//! [`Peer::spawn`] makes a transport, then re-executes the current binary
//! (`std::env::current_exe()`) with [`PEER_ENV`] set. The child's
//! descriptors travel by inheritance: the parent duplicates each one above
//! [`STAGING_MIN`] (close-on-exec, so nothing leaks anywhere else), and the
//! `pre_exec` hook of the child alone `dup2`s them to fixed numbers (control
//! socket at [`CONTROL_FD`], the transport's descriptors after it), which
//! clears close-on-exec on the copies only. The parent then closes its own
//! copies of the child's ends: a pipe's EOF and an end's liveness lock must
//! depend on the child alone. The child also asks for `SIGKILL` when its
//! parent dies, so a killed benchmark never leaves a spinning orphan.
//! Strings a transport needs besides descriptors (the name a named pipe is
//! opened by) travel in the child's environment ([`PEER_ARG_ENV`]).
//!
//! A peer either serves one transport (the role is the transport's name) or,
//! with the role [`CONNECT_ROLE`], serves connections for the set-up
//! measurement of [`crate::connect`]; both share the spawning and the
//! control socket (`Process`).
//!
//! Every binary that spawns peers calls [`run_if_peer`] first thing in
//! `main`: the criterion bench binary and the `shmpipe` CLI each re-execute
//! themselves.
//!
//! # Control protocol
//!
//! Text lines over a Unix stream socket, never on the timed path:
//!
//! ```text
//! child:  hello pinned=<0|1>                 (or: error <why>)
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

use crate::link::{Handover, Link, Options};
use crate::payload::{self, Buf};
use crate::policy::{self, Policy};
use crate::transport::{self, Kind};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use shmpipe_engine::WaitPolicy;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Environment variable that turns a process into a peer: `kind=<name>;
/// fds=<n>;args=<n>;cpu=<n|none>`, where `<name>` is a transport's name or
/// [`CONNECT_ROLE`].
pub const PEER_ENV: &str = "SHMPIPE_BENCH_PEER";
/// Prefix of the environment variables carrying the peer's string arguments
/// (`SHMPIPE_BENCH_PEER_ARG0`, ...): whatever a transport needs besides
/// descriptors, such as a named pipe's name.
pub const PEER_ARG_ENV: &str = "SHMPIPE_BENCH_PEER_ARG";
/// The peer role that serves the connection set-up measurement.
pub const CONNECT_ROLE: &str = "connect-server";
/// The control socket's descriptor number in the child.
pub const CONTROL_FD: RawFd = 100;
/// Where the transport's descriptors start in the child.
pub const FIRST_LINK_FD: RawFd = CONTROL_FD + 1;
/// Parent-side copies are made at or above this number, clear of the
/// targets, so one `dup2` can never overwrite the source of another.
pub const STAGING_MIN: RawFd = 200;

/// How long a control reply may take. Replies come right after the child's
/// work, which ends when the parent's does, so this only catches a wedged
/// peer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
/// Size of round-trip messages and of the stream acknowledgement.
pub const SMALL: usize = 64;

/// A line-oriented control connection.
pub(crate) struct Control {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Control {
    fn new(sock: UnixStream) -> io::Result<Control> {
        Ok(Control {
            writer: sock.try_clone()?,
            reader: BufReader::new(sock),
        })
    }

    /// Sends one line (a newline inside `line` would split it: it becomes a
    /// space).
    pub(crate) fn send(&mut self, line: &str) -> io::Result<()> {
        self.writer
            .write_all(format!("{}\n", line.replace('\n', " ")).as_bytes())
    }

    /// The next line, `None` at EOF.
    pub(crate) fn recv(&mut self) -> io::Result<Option<String>> {
        let mut s = String::new();
        if self.reader.read_line(&mut s)? == 0 {
            return Ok(None);
        }
        Ok(Some(s.trim_end().to_owned()))
    }

    fn set_timeout(&self, t: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(t))
    }
}

pub(crate) fn protocol_error(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A running peer process and the parent's end of its control socket.
pub(crate) struct Process {
    child: Child,
    ctl: Control,
    /// The protocol is out of step (an error mid-command): kill, don't ask.
    broken: bool,
    reaped: bool,
    pinned: bool,
}

impl Process {
    /// Starts the current binary as a peer with `role` (a transport name,
    /// or [`CONNECT_ROLE`]), handing it `fds` (which only the child holds
    /// afterwards) and `args`, pinned to `cpu` if given; returns once it
    /// said hello.
    pub(crate) fn spawn(
        role: &str,
        fds: Vec<OwnedFd>,
        args: &[String],
        cpu: Option<usize>,
    ) -> io::Result<Process> {
        let (ctl_parent, ctl_child) = UnixStream::pair()?;
        let mut staged = vec![rustix::io::fcntl_dupfd_cloexec(&ctl_child, STAGING_MIN)?];
        for fd in &fds {
            staged.push(rustix::io::fcntl_dupfd_cloexec(fd, STAGING_MIN)?);
        }
        let moves: Vec<(RawFd, RawFd)> = staged
            .iter()
            .zip(CONTROL_FD..)
            .map(|(fd, to)| (fd.as_raw_fd(), to))
            .collect();
        let spec = format!(
            "kind={role};fds={};args={};cpu={}",
            fds.len(),
            args.len(),
            cpu.map_or_else(|| "none".to_owned(), |c| c.to_string())
        );
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(PEER_ENV, spec)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (i, arg) in args.iter().enumerate() {
            cmd.env(format!("{PEER_ARG_ENV}{i}"), arg);
        }
        // SAFETY: the hook runs in the forked child before exec. It only
        // makes async-signal-safe system calls (dup2, prctl) on numbers
        // computed before the fork, reads a Vec allocated before the fork,
        // and neither allocates nor takes locks. The sources are open
        // (held by `staged` until after spawn) and lie above every target.
        unsafe {
            cmd.pre_exec(move || {
                for &(from, to) in &moves {
                    if libc::dup2(from, to) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let child = cmd.spawn()?;
        // Only the child may hold its ends from now on.
        drop(staged);
        drop(fds);
        drop(ctl_child);

        let ctl = Control::new(ctl_parent)?;
        ctl.set_timeout(CONTROL_TIMEOUT)?;
        let mut process = Process {
            child,
            ctl,
            broken: false,
            reaped: false,
            pinned: false,
        };
        let hello = process.expect("hello")?;
        process.pinned = hello.split_whitespace().any(|w| w == "pinned=1");
        Ok(process)
    }

    /// Whether the peer pinned itself to the CPU it was given.
    pub(crate) fn pinned(&self) -> bool {
        self.pinned
    }

    /// Reads the next control line, which must start with `what`.
    pub(crate) fn expect(&mut self, what: &str) -> io::Result<String> {
        let r = match self.ctl.recv() {
            Ok(Some(line)) if line.split_whitespace().next() == Some(what) => Ok(line),
            Ok(Some(line)) => match line.strip_prefix("error ") {
                Some(why) => Err(io::Error::other(format!("the peer reported: {why}"))),
                None => Err(protocol_error(format!(
                    "the peer sent {line:?}, expected {what:?}"
                ))),
            },
            // A peer that dies with unread control lines resets the socket.
            Ok(None) => Err(self.exited()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Err(self.exited()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer did not answer on the control socket",
                ))
            }
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn exited(&mut self) -> io::Error {
        let status = match self.child.wait() {
            Ok(s) => {
                self.reaped = true;
                s.to_string()
            }
            Err(e) => e.to_string(),
        };
        io::Error::other(format!("the peer exited unexpectedly ({status})"))
    }

    /// Turns an error of the measured transport into one that says what the
    /// peer saw, if it reported anything.
    pub(crate) fn link_failed(&mut self, e: io::Error) -> io::Error {
        self.broken = true;
        let _ = self.ctl.set_timeout(Duration::from_secs(2));
        match self.ctl.recv() {
            Ok(Some(line)) if line.starts_with("error ") => {
                io::Error::new(e.kind(), format!("{e} (the peer reported: {})", &line[6..]))
            }
            _ => e,
        }
    }

    /// Sends a command line.
    pub(crate) fn command(&mut self, line: &str) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "the peer is unusable after an earlier error",
            ));
        }
        if let Err(e) = self.ctl.send(line) {
            self.broken = true;
            return Err(e);
        }
        Ok(())
    }

    /// Marks the protocol as out of step (the peer is killed, not asked, at
    /// the end).
    pub(crate) fn set_broken(&mut self) {
        self.broken = true;
    }

    /// Tells the peer to quit and reaps it.
    pub(crate) fn quit(mut self) -> io::Result<ExitStatus> {
        self.command("quit")?;
        let status = self.reap()?;
        if status.success() {
            Ok(status)
        } else {
            Err(io::Error::other(format!("the peer exited with {status}")))
        }
    }

    /// Waits up to 5 s for the child, then kills it.
    fn reap(&mut self) -> io::Result<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(s) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(s);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let s = self.child.wait()?;
                self.reaped = true;
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        if self.broken || self.ctl.send("quit").is_err() {
            let _ = self.child.kill();
        }
        let _ = self.reap();
    }
}

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

/// If this process was started as a peer (see [`PEER_ENV`]), serves the
/// parent and exits; otherwise returns at once. Call it first in `main`.
pub fn run_if_peer() {
    let Ok(spec) = std::env::var(PEER_ENV) else {
        return;
    };
    let code = match peer_main(&spec) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shmpipe bench peer: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// What a peer process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The far side of a transport.
    Link(Kind),
    /// The server of the connection set-up measurement ([`crate::connect`]).
    Connect,
}

struct Spec {
    role: Role,
    fds: usize,
    args: usize,
    cpu: Option<usize>,
}

fn parse_spec(spec: &str) -> Option<Spec> {
    let mut role = None;
    let mut fds = None;
    let mut args = None;
    let mut cpu = None;
    for part in spec.split(';') {
        let (k, v) = part.split_once('=')?;
        match k {
            "kind" if v == CONNECT_ROLE => role = Some(Role::Connect),
            "kind" => role = Kind::from_name(v).map(Role::Link),
            "fds" => fds = v.parse().ok().filter(|&n: &usize| n <= 8),
            "args" => args = v.parse().ok().filter(|&n: &usize| n <= 8),
            "cpu" => cpu = Some(v.parse().ok()),
            _ => return None,
        }
    }
    Some(Spec {
        role: role?,
        fds: fds?,
        args: args?,
        cpu: cpu?,
    })
}

/// Takes ownership of a descriptor the parent placed at `fd`.
fn claim(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: only checks that `fd` is open; the borrow ends with the call.
    rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(fd) })
        .map_err(|e| io::Error::other(format!("descriptor {fd} was not inherited: {e}")))?;
    // SAFETY: the spawn protocol reserves these numbers: the parent put an
    // open descriptor at `fd` for this process, nothing in this process
    // opened it (it was open before `main`), and each number is claimed once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The string arguments the parent passed (see [`PEER_ARG_ENV`]).
fn claim_args(n: usize) -> io::Result<Vec<String>> {
    (0..n)
        .map(|i| {
            let var = format!("{PEER_ARG_ENV}{i}");
            std::env::var(&var).map_err(|e| io::Error::other(format!("{var}: {e}")))
        })
        .collect()
}

/// Pins the calling thread to `cpu`, if given; whether it worked.
pub(crate) fn pin(cpu: Option<usize>) -> bool {
    cpu.is_some_and(|c| crate::affinity::pin_current_thread(c).is_ok())
}

fn peer_main(spec: &str) -> io::Result<()> {
    let spec = parse_spec(spec)
        .ok_or_else(|| io::Error::other(format!("bad {PEER_ENV} value {spec:?}")))?;
    let mut ctl = Control::new(UnixStream::from(claim(CONTROL_FD)?))?;
    let r = (|| {
        let fds = (0..spec.fds)
            .map(|i| claim(FIRST_LINK_FD + i as RawFd))
            .collect::<io::Result<Vec<_>>>()?;
        for fd in &fds {
            rustix::io::fcntl_setfd(fd.as_fd(), rustix::io::FdFlags::CLOEXEC)?;
        }
        let args = claim_args(spec.args)?;
        match spec.role {
            Role::Link(kind) => {
                let mut link = transport::adopt(
                    kind,
                    Handover {
                        fds,
                        arg: args.into_iter().next(),
                    },
                )?;
                let pinned = pin(spec.cpu);
                ctl.send(&format!("hello pinned={}", u8::from(pinned)))?;
                serve(&mut *link, &mut ctl)
            }
            Role::Connect => crate::connect::serve(&mut ctl, &args, spec.cpu),
        }
    })();
    match r {
        Ok(()) => Ok(()),
        Err(e) => {
            // The parent reports it; say it here only if it cannot hear.
            match ctl.send(&format!("error {e}")) {
                Ok(()) => std::process::exit(1),
                Err(_) => Err(e),
            }
        }
    }
}

pub(crate) fn num<T: std::str::FromStr>(w: Option<&str>) -> io::Result<T> {
    w.and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol_error("malformed command".into()))
}

/// Parses the arguments of a `policy` command.
pub(crate) fn parse_policy<'a>(mut w: impl Iterator<Item = &'a str>) -> io::Result<WaitPolicy> {
    match (w.next(), w.next()) {
        (Some(spin), Some(slice)) => policy::decode_wait(spin, slice),
        _ => None,
    }
    .ok_or_else(|| protocol_error("bad policy command".into()))
}

fn serve(link: &mut dyn Link, ctl: &mut Control) -> io::Result<()> {
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

fn report(ctl: &mut Control, bad: Option<String>) -> io::Result<()> {
    match bad {
        None => ctl.send("ok"),
        Some(why) => ctl.send(&format!("error payload check failed: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_and_rejects_garbage() {
        let s = parse_spec("kind=pipe;fds=2;args=0;cpu=1").unwrap();
        assert_eq!(
            (s.role, s.fds, s.args, s.cpu),
            (Role::Link(Kind::Pipe), 2, 0, Some(1))
        );
        let s = parse_spec("kind=named-msg;fds=0;args=1;cpu=none").unwrap();
        assert_eq!(
            (s.role, s.args, s.cpu),
            (Role::Link(Kind::NamedMsg), 1, None)
        );
        let s = parse_spec("kind=connect-server;fds=0;args=2;cpu=none").unwrap();
        assert_eq!(s.role, Role::Connect);
        assert!(parse_spec("kind=nope;fds=1;args=0;cpu=none").is_none());
        assert!(parse_spec("kind=pipe;fds=99;args=0;cpu=none").is_none());
        assert!(parse_spec("kind=pipe;fds=2;args=0").is_none());
        assert!(parse_spec("kind=pipe;fds=2;cpu=none").is_none());
    }

    #[test]
    fn policy_commands_parse() {
        let w = WaitPolicy::spin();
        let line = policy::encode_wait(&w);
        assert_eq!(parse_policy(line.split(' ')).unwrap(), w);
        assert!(parse_policy("12".split(' ')).is_err());
    }
}
