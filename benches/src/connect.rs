//! Connection set-up: opening a named pipe and doing one 64 B round trip,
//! against connecting a Unix stream socket and doing the same, with the peer
//! process as the server in both cases.
//!
//! # The servers
//!
//! The peer runs what a simple real server runs, one connection at a time
//! on its main thread:
//!
//! * a named message pipe served through [`PipeListener`] (default quotas,
//!   the default wait policy): `accept` waits for a client, puts a fresh
//!   instance in its place (so the next client never meets `PipeBusy`) and
//!   returns the connected one. The fresh instance is created before
//!   `accept` returns, so its cost lands in the client's first round trip,
//!   as it would for any `PipeListener` user; a server that creates its
//!   next instance after answering would hide it, but would turn clients
//!   away while it answers.
//! * a Unix stream socket listening on a path in the temporary directory
//!   (`UnixListener::bind`, default buffers): `accept`, serve, close.
//!
//! Each reads the 64 B request, checks it, sends it back and reads until the
//! client closes.
//!
//! # One repetition
//!
//! The parent asks the peer over the control socket to serve one
//! connection; the peer answers `ready` and blocks in `accept`, as an idle
//! server would. The parent then times, on its side: open
//! ([`ClientOptions::open`] and message read mode) or `connect`, the
//! request, and the reply. It closes (untimed) and waits for the peer's
//! `ok`, so no repetition overlaps the previous one's teardown.
//!
//! ```text
//! parent: policy <spin ns|none> <slice ns>    -> ok   (wait policy of both named ends)
//! parent: named <seq>                         -> ready, one connection, ok | error <why>
//! parent: unix <seq>                          -> ready, one connection, ok | error <why>
//! parent: quit
//! ```

use crate::payload::{self, Buf};
use crate::peer::protocol::{self, Control, Process, CONNECT_ROLE, SMALL};
use crate::policy::{self, Policy};
use crate::stats::{self, Summary};
use serde::Serialize;
use shmpipe::named::{ClientOptions, PipeListener, ServerOptions};
use shmpipe::{Error, ErrorKind, PipeType, ReadMode, WaitPolicy};
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A `shmpipe` named pipe in message mode.
    NamedPipe,
    /// A Unix stream socket.
    UnixStream,
}

impl Target {
    /// Both, in table order.
    pub const ALL: [Target; 2] = [Target::NamedPipe, Target::UnixStream];

    /// Name used in tables and criterion ids.
    pub fn name(self) -> &'static str {
        match self {
            Target::NamedPipe => "named-pipe",
            Target::UnixStream => "unix-stream",
        }
    }

    /// What the client does in the timed part.
    pub fn describe(self) -> &'static str {
        match self {
            Target::NamedPipe => {
                "ClientOptions::open + set_read_mode(Message) + send_msg + recv_msg; \
                 server: PipeListener::accept"
            }
            Target::UnixStream => {
                "UnixStream::connect(path) + write_all + read_exact; server: UnixListener::accept"
            }
        }
    }

    fn command(self) -> &'static str {
        match self {
            Target::NamedPipe => "named",
            Target::UnixStream => "unix",
        }
    }
}

/// The parent's handle on the connection server process.
pub struct ConnectPeer {
    process: Process,
    name: String,
    /// The server's socket file, removed here too in case the server was
    /// killed (dropped after `process`, so after the server is gone).
    socket: SocketFile,
    wait: WaitPolicy,
    seq: u64,
    request: Buf,
    reply: Buf,
}

impl ConnectPeer {
    /// Starts the server process, pinned to `child_cpu` if given, with the
    /// default wait policy.
    pub fn spawn(child_cpu: Option<usize>) -> io::Result<ConnectPeer> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "shmpipe-bench-connect-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        );
        let name = format!(r"\\.\pipe\{tag}");
        let path = std::env::temp_dir().join(format!("{tag}.sock"));
        let path_arg = path
            .to_str()
            .ok_or_else(|| io::Error::other("the temporary directory's path is not UTF-8"))?
            .to_owned();
        let process = Process::spawn(
            CONNECT_ROLE,
            Vec::new(),
            &[name.clone(), path_arg],
            child_cpu,
        )?;
        let mut request = Buf::new(SMALL, 0);
        payload::fill_pattern(request.as_mut_slice());
        let mut peer = ConnectPeer {
            process,
            name,
            socket: SocketFile(path),
            wait: policy::default_wait_policy(),
            seq: 0,
            request,
            reply: Buf::new(SMALL, 0),
        };
        peer.set_policy(Policy::Default)?;
        Ok(peer)
    }

    /// Whether the server pinned itself to the CPU it was given.
    pub fn child_pinned(&self) -> bool {
        self.process.pinned()
    }

    /// Sets the wait policy of both ends of the named pipe connections made
    /// from now on (the server re-binds its listener).
    pub fn set_policy(&mut self, policy: Policy) -> io::Result<()> {
        let wait = policy.resolve();
        self.process
            .command(&format!("policy {}", policy::encode_wait(&wait)))?;
        self.process.expect("ok")?;
        self.wait = wait;
        Ok(())
    }

    /// One connection: the time from the start of the open or connect to
    /// the arrival of the reply to the first request.
    pub fn once(&mut self, target: Target) -> io::Result<Duration> {
        self.seq += 1;
        let seq = self.seq;
        self.process
            .command(&format!("{} {seq}", target.command()))?;
        self.process.expect("ready")?;
        payload::stamp(self.request.as_mut_slice(), seq);
        let r = match target {
            Target::NamedPipe => self.named_once(),
            Target::UnixStream => self.unix_once(),
        };
        let elapsed = r.map_err(|e| self.process.link_failed(e))?;
        if self.reply.as_slice() != self.request.as_slice() {
            self.process.set_broken();
            return Err(protocol::protocol_error(format!(
                "the reply to connection {seq} differs from the request (first word {})",
                payload::first_word(self.reply.as_slice())
            )));
        }
        self.process.expect("ok")?;
        Ok(elapsed)
    }

    fn named_once(&mut self) -> io::Result<Duration> {
        let start = Instant::now();
        let client = ClientOptions::new()
            .wait_policy(self.wait)
            .open(&self.name)?;
        client.set_read_mode(ReadMode::Message)?;
        client.send_msg(self.request.as_slice())?;
        let m = client.recv_msg(self.reply.as_mut_slice())?;
        let elapsed = start.elapsed();
        if !m.complete || m.len != SMALL {
            return Err(protocol::protocol_error(format!(
                "the reply came as {} B (complete: {})",
                m.len, m.complete
            )));
        }
        Ok(elapsed)
    }

    fn unix_once(&mut self) -> io::Result<Duration> {
        let start = Instant::now();
        let mut sock = UnixStream::connect(&self.socket.0)?;
        sock.write_all(self.request.as_slice())?;
        sock.read_exact(self.reply.as_mut_slice())?;
        Ok(start.elapsed())
    }

    /// `n` connections; the sum of their times (for criterion's
    /// `iter_custom`).
    pub fn measure(&mut self, target: Target, n: u64) -> io::Result<Duration> {
        let mut total = Duration::ZERO;
        for _ in 0..n {
            total += self.once(target)?;
        }
        Ok(total)
    }

    /// Tells the server to quit and reaps it.
    pub fn quit(self) -> io::Result<()> {
        self.process.quit().map(drop)
    }
}

/// Connection set-up results.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectReport {
    /// Timed connections per target (after a few untimed ones).
    pub repetitions: usize,
    /// The wait policy of both named-pipe ends.
    pub wait: String,
    /// Whether the server process was pinned.
    pub child_pinned: bool,
    /// Named pipe: open + one 64 B round trip.
    pub named_pipe: Summary,
    /// Unix stream socket: connect + one 64 B round trip.
    pub unix_stream: Summary,
    /// `named_pipe.p50 / unix_stream.p50`.
    pub ratio_p50: f64,
    /// `named_pipe.p99 / unix_stream.p99`.
    pub ratio_p99: f64,
    /// What each side does, per target.
    pub method: Vec<(Target, &'static str)>,
}

impl ConnectReport {
    /// The summary for `target`.
    pub fn summary(&self, target: Target) -> &Summary {
        match target {
            Target::NamedPipe => &self.named_pipe,
            Target::UnixStream => &self.unix_stream,
        }
    }
}

/// `warmup` untimed then `n` timed connections to each target, alternating
/// so that both see the same machine, under the default wait policy.
pub fn run(child_cpu: Option<usize>, warmup: usize, n: usize) -> io::Result<ConnectReport> {
    let mut peer = ConnectPeer::spawn(child_cpu)?;
    for _ in 0..warmup {
        for t in Target::ALL {
            peer.once(t)?;
        }
    }
    let mut named = Vec::with_capacity(n);
    let mut unix = Vec::with_capacity(n);
    for _ in 0..n {
        named.push(peer.once(Target::NamedPipe)?.as_nanos() as u64);
        unix.push(peer.once(Target::UnixStream)?.as_nanos() as u64);
    }
    let child_pinned = peer.child_pinned();
    let wait = policy::describe(&peer.wait);
    peer.quit()?;
    let named_pipe = stats::summarize(&mut named).ok_or_else(no_samples)?;
    let unix_stream = stats::summarize(&mut unix).ok_or_else(no_samples)?;
    Ok(ConnectReport {
        repetitions: n,
        wait,
        child_pinned,
        ratio_p50: named_pipe.p50_ns as f64 / unix_stream.p50_ns.max(1) as f64,
        ratio_p99: named_pipe.p99_ns as f64 / unix_stream.p99_ns.max(1) as f64,
        named_pipe,
        unix_stream,
        method: Target::ALL.iter().map(|&t| (t, t.describe())).collect(),
    })
}

fn no_samples() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "no repetitions")
}

/// Removes the socket file when the server goes.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn named_listener(name: &str, wait: WaitPolicy) -> io::Result<PipeListener> {
    let mut opts = ServerOptions::new();
    opts.pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .wait_policy(wait);
    PipeListener::bind(name, opts)
}

/// The peer side: serves connections as the parent asks (see the module
/// documentation). `args` are the pipe name and the socket path.
pub(crate) fn serve(ctl: &mut Control, args: &[String], cpu: Option<usize>) -> io::Result<()> {
    let [name, path] = args else {
        return Err(io::Error::other(
            "the connection server needs two arguments",
        ));
    };
    // First, so that the threads the named pipe starts run there too.
    let pinned = protocol::pin(cpu);
    let _ = std::fs::remove_file(path);
    let unix = UnixListener::bind(path)?;
    let _file = SocketFile(PathBuf::from(path));
    let mut named: Option<PipeListener> = None;
    ctl.send(&format!("hello pinned={}", u8::from(pinned)))?;
    let mut buf = Buf::new(SMALL, 0);
    while let Some(line) = ctl.recv()? {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("quit") => return Ok(()),
            Some("policy") => {
                let wait = protocol::parse_policy(w)?;
                // The old name goes first: one name cannot be bound twice.
                drop(named.take());
                named = Some(named_listener(name, wait)?);
                ctl.send("ok")?;
            }
            Some("named") => {
                let seq: u64 = protocol::num(w.next())?;
                let listener = named
                    .as_mut()
                    .ok_or_else(|| io::Error::other("named: no policy set yet"))?;
                ctl.send("ready")?;
                let server = listener.accept()?;
                let m = server.recv_msg(buf.as_mut_slice())?;
                let bad = check(&buf, seq, m.len == SMALL && m.complete);
                server.send_msg(buf.as_slice())?;
                // Until the client closes: then the read says BrokenPipe.
                loop {
                    match server.recv_msg(buf.as_mut_slice()) {
                        Ok(_) => {}
                        Err(e) if Error::kind_of(&e) == Some(ErrorKind::BrokenPipe) => break,
                        Err(e) => return Err(e),
                    }
                }
                drop(server);
                protocol::report(ctl, bad)?;
            }
            Some("unix") => {
                let seq: u64 = protocol::num(w.next())?;
                ctl.send("ready")?;
                let (mut sock, _) = unix.accept()?;
                sock.read_exact(buf.as_mut_slice())?;
                let bad = check(&buf, seq, true);
                sock.write_all(buf.as_slice())?;
                let mut rest = [0u8; 64];
                while sock.read(&mut rest)? != 0 {}
                drop(sock);
                protocol::report(ctl, bad)?;
            }
            _ => {
                return Err(protocol::protocol_error(format!(
                    "unknown command {line:?}"
                )))
            }
        }
    }
    Ok(())
}

fn check(buf: &Buf, seq: u64, whole: bool) -> Option<String> {
    let m = buf.as_slice();
    (!whole || !payload::full_ok(m, seq)).then(|| {
        format!(
            "request {seq} arrived corrupted or split (first word {})",
            payload::first_word(m)
        )
    })
}
