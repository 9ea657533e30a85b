//! The remote rows (`shmpipe bench --remote`, `--only remote`): a named
//! pipe reached as `\\host\pipe\name` through a gateway, next to a bare
//! quinn stream and a TCP + rustls stream between the same two processes,
//! on loopback, in the same run.
//!
//! * This process makes a temporary CA, gateway and client certificate
//!   (`shmpipe::remote::init`, as `shmpipe gateway init` does) and is the
//!   client of all three rows: the remote pipe through the `shmpipe`
//!   client (its own runtime and bridge threads), the quinn stream on a
//!   current-thread tokio runtime, the TLS stream with blocking calls.
//! * One peer process serves all three: the local named-pipe server, the
//!   gateway ([`Gateway`](shmpipe::remote::Gateway) on a thread of that
//!   process, with its own runtime and bridge tasks exactly as `shmpipe
//!   gateway` runs them: a third process would add nothing to the data
//!   path, which crosses the local pipe's shared memory either way, and
//!   the baselines must run between the same two processes), the quinn
//!   server and the TLS server. The gateway switches thread credentials,
//!   so the rows need root.
//! * All three carry the same certificates and TLS rules (TLS 1.3, ring,
//!   mutual authentication; `tls.rs`). The rows measure a 64 B round trip
//!   and one-way throughput of 64 B, 64 KiB and 1 MiB writes (the receiver
//!   acknowledges the last byte); the three rows take turns each round so
//!   a drift of the machine's speed lands on all of them alike.

mod peer;
mod tls;

use crate::peer::protocol::{protocol_error, Process};
use crate::stats::{self, Summary};
use crate::suite::Mode;
use peer::{header, ECHO, MAX_SIZE, SINK};
use serde::Serialize;
use shmpipe::named::{ClientOptions, NamedPipeClient};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) use peer::serve;

/// The peer role (and `--only` name) of the remote rows.
pub const ROLE: &str = "remote";
/// The write sizes of the throughput columns.
pub const SIZES: [usize; 3] = [64, 64 << 10, 1 << 20];
/// Target: the remote pipe's RTT p50 at most this multiple of the bare
/// quinn stream's (issue 13).
pub const RTT_TARGET: f64 = 1.3;
/// Target: the remote pipe's throughput at least this share of the bare
/// quinn stream's (issue 13).
pub const THROUGHPUT_TARGET: f64 = 0.8;
/// Where the gateway runs, for the report.
pub const GATEWAY: &str =
    "a thread of the server's peer process (its own one-worker tokio runtime, \
                           one bridge task per stream, as `shmpipe gateway` runs them)";
/// The host name the remote pipe is opened through.
const HOST: &str = "shmpipe-bench";

/// The rows, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// A byte-mode named pipe opened as `\\host\pipe\name` via a gateway.
    Pipe,
    /// One bidirectional quinn stream.
    Quinn,
    /// rustls over a TCP connection.
    Tls,
}

impl RemoteKind {
    /// Every row, in table order.
    pub const ALL: [RemoteKind; 3] = [RemoteKind::Pipe, RemoteKind::Quinn, RemoteKind::Tls];

    /// Name in tables and the JSON.
    ///
    /// ```
    /// assert_eq!(shmpipe_benches::remote::RemoteKind::Quinn.name(), "quinn-stream");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            RemoteKind::Pipe => "remote-pipe",
            RemoteKind::Quinn => "quinn-stream",
            RemoteKind::Tls => "tcp-rustls",
        }
    }

    /// What the row measures, for legends.
    pub fn describe(self) -> &'static str {
        match self {
            RemoteKind::Pipe => {
                "shmpipe named pipe (byte mode) opened as \\\\host\\pipe\\name: client bridge, \
                 QUIC, gateway, local pipe to the server; write_all / read_exact"
            }
            RemoteKind::Quinn => {
                "one quinn bidirectional stream, current-thread tokio runtime each side"
            }
            RemoteKind::Tls => "rustls StreamOwned over std TCP (TCP_NODELAY), blocking calls",
        }
    }
}

/// One-way throughput at one write size.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Bytes per write.
    pub size: usize,
    /// Median over rounds.
    pub bytes_per_s: f64,
    /// The same in writes per second.
    pub msgs_per_s: f64,
    /// Over the bare quinn stream's (target for the pipe: at least
    /// [`THROUGHPUT_TARGET`]).
    pub to_quinn: f64,
}

/// One row's results.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteRow {
    /// [`RemoteKind::name`].
    pub name: &'static str,
    /// Round trips of a 64 B message.
    pub rtt: Summary,
    /// `rtt.p50_ns` over the bare quinn stream's (target for the pipe: at
    /// most [`RTT_TARGET`]).
    pub rtt_p50_to_quinn: f64,
    /// The same at the p99.
    pub rtt_p99_to_quinn: f64,
    /// One entry per [`SIZES`].
    pub throughput: Vec<Throughput>,
}

/// What [`run`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteReport {
    /// Where the gateway ran ([`GATEWAY`]).
    pub gateway: &'static str,
    /// Rounds each row got.
    pub rounds: u32,
    /// Per row, in [`RemoteKind::ALL`] order.
    pub rows: Vec<RemoteRow>,
}

/// Rounds, round trips per round and bytes per throughput run, by mode.
fn budget(mode: Mode) -> (u32, u64, u64) {
    match mode {
        Mode::Smoke => (1, 16, 4 << 10),
        Mode::Quick => (3, 2000, 32 << 20),
        Mode::Full => (5, 5000, 128 << 20),
    }
}

/// Writes of `size` in one throughput run of about `bytes` (64 B writes
/// move a 64th: each is a whole round of the stack).
fn count(size: usize, bytes: u64) -> u64 {
    let bytes = if size == 64 { bytes / 64 } else { bytes };
    (bytes / size as u64).max(2)
}

/// The temporary certificate directory, removed at the end.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The client's three connections.
struct Clients {
    pipe: NamedPipeClient,
    rt: tokio::runtime::Runtime,
    quinn: (quinn::SendStream, quinn::RecvStream),
    // Kept open while the stream is used.
    _quinn_conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

fn connect(dir: &Path, ports: &str, pipe: &str) -> io::Result<Clients> {
    let mut w = ports.split_whitespace().skip(1);
    let mut port = || -> io::Result<u16> {
        w.next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| protocol_error(format!("bad ports line {ports:?}")))
    };
    let (gw, qp, tp) = (port()?, port()?, port()?);
    let d = dir.display();
    let remote = format!(
        "[hosts.\"{HOST}\"]\naddress = \"127.0.0.1\"\nport = {gw}\nserver_name = \"{}\"\n\
         ca = \"{d}/ca.pem\"\ncert = \"{d}/client.pem\"\nkey = \"{d}/client.key\"\n",
        tls::SERVER_NAME
    );
    let remote_path = dir.join("remote.toml");
    std::fs::write(&remote_path, remote)?;
    // Only this process's view; the remote client reads it at each open.
    std::env::set_var(shmpipe::remote::CLIENT_CONFIG_ENV, &remote_path);
    let name = pipe.replacen(r"\\.\", &format!(r"\\{HOST}\"), 1);
    let pipe = ClientOptions::new().open(&name)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (endpoint, conn, quinn) = rt.block_on(async {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("literal"))?;
        let conn = endpoint
            .connect_with(
                tls::quinn_client(dir)?,
                ([127, 0, 0, 1], qp).into(),
                tls::SERVER_NAME,
            )
            .map_err(io::Error::other)?
            .await
            .map_err(io::Error::other)?;
        let bi = conn.open_bi().await.map_err(io::Error::other)?;
        Ok::<_, io::Error>((endpoint, conn, bi))
    })?;

    let sock = TcpStream::connect(("127.0.0.1", tp))?;
    sock.set_nodelay(true)?;
    let name =
        rustls::pki_types::ServerName::try_from(tls::SERVER_NAME).map_err(io::Error::other)?;
    let tls_conn =
        rustls::ClientConnection::new(tls::client(dir)?, name).map_err(io::Error::other)?;
    Ok(Clients {
        pipe,
        rt,
        quinn,
        _quinn_conn: conn,
        _endpoint: endpoint,
        tls: rustls::StreamOwned::new(tls_conn, sock),
    })
}

fn bad_echo(i: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("round trip {i} came back changed"),
    )
}

fn stamp(buf: &mut [u8], i: u64) {
    buf[..8].copy_from_slice(&i.to_le_bytes());
}

fn rtt_blocking(s: &mut (impl Read + Write), n: u64, samples: &mut Vec<u64>) -> io::Result<()> {
    let (mut out, mut back) = ([0x5au8; 64], [0u8; 64]);
    s.write_all(&header(ECHO, 64, n))?;
    for i in 0..n {
        stamp(&mut out, i);
        let t = Instant::now();
        s.write_all(&out)?;
        s.flush()?;
        s.read_exact(&mut back)?;
        samples.push(t.elapsed().as_nanos() as u64);
        if back != out {
            return Err(bad_echo(i));
        }
    }
    Ok(())
}

fn sink_blocking(s: &mut (impl Read + Write), data: &[u8], n: u64) -> io::Result<Duration> {
    s.write_all(&header(SINK, data.len(), n))?;
    s.flush()?;
    let t = Instant::now();
    for _ in 0..n {
        s.write_all(data)?;
    }
    s.flush()?;
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack)?;
    Ok(t.elapsed())
}

async fn rtt_quinn(
    (send, recv): &mut (quinn::SendStream, quinn::RecvStream),
    n: u64,
    samples: &mut Vec<u64>,
) -> io::Result<()> {
    let (mut out, mut back) = ([0x5au8; 64], [0u8; 64]);
    send.write_all(&header(ECHO, 64, n)).await?;
    for i in 0..n {
        stamp(&mut out, i);
        let t = Instant::now();
        send.write_all(&out).await?;
        recv.read_exact(&mut back).await.map_err(io::Error::other)?;
        samples.push(t.elapsed().as_nanos() as u64);
        if back != out {
            return Err(bad_echo(i));
        }
    }
    Ok(())
}

async fn sink_quinn(
    (send, recv): &mut (quinn::SendStream, quinn::RecvStream),
    data: &[u8],
    n: u64,
) -> io::Result<Duration> {
    send.write_all(&header(SINK, data.len(), n)).await?;
    let t = Instant::now();
    for _ in 0..n {
        send.write_all(data).await?;
    }
    let mut ack = [0u8; 1];
    recv.read_exact(&mut ack).await.map_err(io::Error::other)?;
    Ok(t.elapsed())
}

impl Clients {
    fn rtt(&mut self, k: RemoteKind, n: u64, samples: &mut Vec<u64>) -> io::Result<()> {
        match k {
            RemoteKind::Pipe => rtt_blocking(&mut &self.pipe, n, samples),
            RemoteKind::Quinn => self.rt.block_on(rtt_quinn(&mut self.quinn, n, samples)),
            RemoteKind::Tls => rtt_blocking(&mut self.tls, n, samples),
        }
    }

    fn sink(&mut self, k: RemoteKind, data: &[u8], n: u64) -> io::Result<Duration> {
        match k {
            RemoteKind::Pipe => sink_blocking(&mut &self.pipe, data, n),
            RemoteKind::Quinn => self.rt.block_on(sink_quinn(&mut self.quinn, data, n)),
            RemoteKind::Tls => sink_blocking(&mut self.tls, data, n),
        }
    }
}

/// Lets the calling thread (and the threads it starts) run on every CPU
/// until dropped, then restores its affinity: every process of the rows
/// runs several threads (runtimes, bridges, gateway), which a pin made
/// for the two-thread rows would crowd onto one CPU.
struct Unpinned(Option<rustix::thread::CpuSet>);

impl Unpinned {
    fn new() -> Unpinned {
        let old = rustix::thread::sched_getaffinity(None).ok();
        let mut all = rustix::thread::CpuSet::new();
        for c in 0..rustix::thread::CpuSet::MAX_CPU {
            all.set(c);
        }
        // The kernel keeps only the CPUs this process may use.
        let _ = rustix::thread::sched_setaffinity(None, &all);
        Unpinned(old)
    }
}

impl Drop for Unpinned {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = rustix::thread::sched_setaffinity(None, old);
        }
    }
}

/// Measures the three rows; `progress(label)` is told what runs.
///
/// ```no_run
/// use shmpipe_benches::{remote, suite::Mode};
/// // The binary must call `shmpipe_benches::run_if_peer()` first in `main`.
/// let r = remote::run(Mode::Quick, &mut |_| {})?;
/// println!("remote pipe RTT p50 = {:.2}x quinn's", r.rows[0].rtt_p50_to_quinn);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run(mode: Mode, progress: &mut dyn FnMut(&str)) -> io::Result<RemoteReport> {
    if !rustix::process::geteuid().is_root() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the remote rows need root: the gateway switches a thread's credentials \
             to the identity a client certificate maps to",
        ));
    }
    progress("remote: certificates, gateway and servers");
    let _unpinned = Unpinned::new();
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("shmpipe-bench-remote-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir)?;
    let dir = TempDir(dir);
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let names = [tls::SERVER_NAME.to_owned(), "127.0.0.1".to_owned()];
    let init = shmpipe::remote::init(&dir.0, &names, uid, gid, HOST, 0)?;
    std::fs::write(dir.0.join("gateway.snippet"), &init.gateway_toml)?;
    let pipe = format!(r"\\.\pipe\shmpipe-bench-remote-{pid}");
    let args = [dir.0.display().to_string(), pipe.clone()];
    let mut process = Process::spawn(ROLE, Vec::new(), &args, None)?;
    let ports = process.expect("ports")?;
    let mut clients = connect(&dir.0, &ports, &pipe)?;

    let (rounds, n, bytes) = budget(mode);
    let data = vec![0xa5u8; MAX_SIZE];
    let mut samples: Vec<Vec<u64>> = vec![Vec::new(); RemoteKind::ALL.len()];
    let mut rates: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); SIZES.len()]; RemoteKind::ALL.len()];
    // A first short round of everything, untimed: connections warm.
    for k in RemoteKind::ALL {
        clients.rtt(k, n.min(100), &mut Vec::new())?;
        clients.sink(k, &data[..64 << 10], 4)?;
    }
    for round in 1..=rounds {
        for (i, k) in RemoteKind::ALL.into_iter().enumerate() {
            progress(&format!("remote: round {round}/{rounds}, {}", k.name()));
            clients.rtt(k, n, &mut samples[i])?;
            for (j, &size) in SIZES.iter().enumerate() {
                let c = count(size, bytes);
                let t = clients.sink(k, &data[..size], c)?;
                rates[i][j].push((size as u64 * c) as f64 / t.as_secs_f64().max(1e-9));
            }
        }
    }
    drop(clients);
    process.quit()?;

    let mut rows = Vec::new();
    for (i, k) in RemoteKind::ALL.into_iter().enumerate() {
        let rtt = stats::summarize(&mut samples[i]).expect("round trips ran");
        let throughput = SIZES
            .iter()
            .enumerate()
            .map(|(j, &size)| {
                let bytes_per_s = stats::median(&mut rates[i][j]).expect("runs ran");
                Throughput {
                    size,
                    bytes_per_s,
                    msgs_per_s: bytes_per_s / size as f64,
                    to_quinn: 0.0,
                }
            })
            .collect();
        rows.push(RemoteRow {
            name: k.name(),
            rtt,
            rtt_p50_to_quinn: 0.0,
            rtt_p99_to_quinn: 0.0,
            throughput,
        });
    }
    let quinn = rows[1].clone();
    for r in &mut rows {
        r.rtt_p50_to_quinn = r.rtt.p50_ns as f64 / quinn.rtt.p50_ns.max(1) as f64;
        r.rtt_p99_to_quinn = r.rtt.p99_ns as f64 / quinn.rtt.p99_ns.max(1) as f64;
        for (t, q) in r.throughput.iter_mut().zip(&quinn.throughput) {
            t.to_quinn = t.bytes_per_s / q.bytes_per_s;
        }
    }
    Ok(RemoteReport {
        gateway: GATEWAY,
        rounds,
        rows,
    })
}

fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// The section `shmpipe bench` prints.
///
/// ```no_run
/// # let r: shmpipe_benches::remote::RemoteReport = unimplemented!();
/// print!("{}", shmpipe_benches::remote::render(&r));
/// ```
pub fn render(r: &RemoteReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nRemote (loopback, QUIC / TLS 1.3): 64 B round trip, us, and one-way throughput; \
         x = ratio to quinn-stream"
    );
    let _ = writeln!(
        out,
        "{:<13}  {:>7}  {:>7}  {:>6}  {:>15}  {:>16}  {:>16}",
        "", "p50", "p99", "p50 x", "64 B msg/s", "64 KiB MB/s", "1 MiB MB/s"
    );
    for row in &r.rows {
        let t = &row.throughput;
        let _ = writeln!(
            out,
            "{:<13}  {:>7}  {:>7}  {:>6}  {:>15}  {:>16}  {:>16}",
            row.name,
            micros(row.rtt.p50_ns),
            micros(row.rtt.p99_ns),
            format!("{:.2}x", row.rtt_p50_to_quinn),
            format!("{:.0}k ({:.2}x)", t[0].msgs_per_s / 1e3, t[0].to_quinn),
            format!("{:.0} ({:.2}x)", t[1].bytes_per_s / 1e6, t[1].to_quinn),
            format!("{:.0} ({:.2}x)", t[2].bytes_per_s / 1e6, t[2].to_quinn),
        );
    }
    for k in RemoteKind::ALL {
        let _ = writeln!(out, "{}: {}", k.name(), k.describe());
    }
    let _ = writeln!(
        out,
        "Targets for remote-pipe: RTT p50 <= {RTT_TARGET:.1}x, throughput >= {THROUGHPUT_TARGET:.1}x. \
         Gateway: {}. {} rounds, medians.",
        r.gateway, r.rounds
    );
    out
}
