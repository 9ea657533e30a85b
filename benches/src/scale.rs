//! The `scale` measurement: what one connected named-pipe instance costs,
//! in resident memory and descriptors, on each side, at 1, 100 and 1000
//! connected instances of one name (`shmpipe bench --full`, or `--only
//! scale`).
//!
//! # One round
//!
//! A server process (this binary re-executed, [`run_if_server`] in
//! `main`, via [`run_if_peer`](crate::run_if_peer)) creates `n` instances
//! of a fresh name with default options (byte pipe, 4 KiB quotas: two
//! 64 KiB rings per segment) and says so; it looks at itself first, so
//! what the process holds anyway is left out. The parent (the client
//! side) looks at itself, opens `n` clients, holding every one, and makes
//! one 64 B call on each, which the server answers (echoes); then both
//! sides look again. A look is the process's resident memory (`VmRSS`,
//! which counts the segment pages the process touched, in each process
//! that maps them) and its open descriptors. The segments' committed
//! memory (tmpfs pages, `st_blocks` of the memfds) is counted once, in the
//! server, where it is the same for both sides.
//!
//! Both processes raise their descriptor limit to the hard limit: 1000
//! instances take two descriptors per end (the end and its process slot).

use serde::Serialize;
use shmpipe::named::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

/// Instance counts measured.
pub const COUNTS: [usize; 3] = [1, 100, 1000];
/// The environment variable that makes this binary the server of a round
/// (its value: `<instances>;<pipe name>`).
const SERVER_ENV: &str = "SHMPIPE_BENCH_SCALE_SERVER";

/// One instance count's costs, per connected instance.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRow {
    /// Connected instances (all open at once).
    pub instances: usize,
    /// Server process: resident memory per instance, bytes.
    pub server_rss: u64,
    /// Client process: resident memory per instance, bytes.
    pub client_rss: u64,
    /// Shared memory the segments committed per instance, bytes (counted
    /// once for both sides).
    pub segment: u64,
    /// Server process: descriptors per instance.
    pub server_fds: f64,
    /// Client process: descriptors per instance.
    pub client_fds: f64,
    /// Opening all of them, ms.
    pub open_ms: f64,
}

/// The whole measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    /// One row per entry of [`COUNTS`].
    pub rows: Vec<ScaleRow>,
}

/// A process's resident memory (bytes) and open descriptors.
#[derive(Debug, Clone, Copy, Default)]
struct Look {
    rss: u64,
    fds: u64,
}

fn look() -> Look {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64 - 1);
    Look { rss, fds }
}

/// Bytes the memfds of this process's segments hold (each file once).
fn committed() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0;
    for e in std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        let is_segment = std::fs::read_link(e.path())
            .is_ok_and(|l| l.to_string_lossy().starts_with("/memfd:shmpipe"));
        if !is_segment {
            continue;
        }
        // Follows the link: the memfd itself.
        if let Ok(m) = std::fs::metadata(e.path()) {
            if seen.insert(m.ino()) {
                bytes += m.blocks() * 512;
            }
        }
    }
    bytes
}

/// Raises the soft descriptor limit to the hard one.
fn raise_descriptor_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    );
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// Runs the measurement: one round per entry of [`COUNTS`].
///
/// ```no_run
/// let report = shmpipe_benches::scale::run()?;
/// assert_eq!(report.rows.len(), shmpipe_benches::scale::COUNTS.len());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn run() -> io::Result<ScaleReport> {
    raise_descriptor_limit();
    let rows = COUNTS
        .iter()
        .enumerate()
        .map(|(i, &n)| round(n, i))
        .collect::<io::Result<_>>()?;
    Ok(ScaleReport { rows })
}

fn round(n: usize, seq: usize) -> io::Result<ScaleRow> {
    let name = format!(r"\\.\pipe\shmpipe-bench-scale-{}-{seq}", std::process::id());
    let mut child = Command::new(std::env::current_exe()?)
        .env(SERVER_ENV, format!("{n};{name}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to = child.stdin.take().expect("piped");
    let mut from = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    let mut hear = |line: &mut String| -> io::Result<String> {
        line.clear();
        from.read_line(line)?;
        Ok(line.trim().to_owned())
    };
    if hear(&mut line)? != "ready" {
        return Err(other(format!("scale server: {line:?}")));
    }
    let before = look();
    let start = Instant::now();
    let clients: Vec<NamedPipeClient> = (0..n)
        .map(|_| ClientOptions::new().open(&name))
        .collect::<io::Result<_>>()?;
    let open_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut buf = [0u8; 64];
    for c in &clients {
        c.send_msg(&[7; 64])?;
        let r = c.recv_msg(&mut buf)?;
        if r.len != 64 {
            return Err(other(format!("scale: a reply of {} B", r.len)));
        }
    }
    let after = look();
    writeln!(to, "report")?;
    let said = hear(&mut line)?;
    let w: Vec<u64> = said
        .strip_prefix("costs ")
        .ok_or_else(|| other(format!("scale server: {said:?}")))?
        .split(' ')
        .map(|x| {
            x.parse()
                .map_err(|_| other(format!("scale server: {said:?}")))
        })
        .collect::<io::Result<_>>()?;
    let [server_rss, server_fds, segments] = w[..] else {
        return Err(other(format!("scale server: {said:?}")));
    };
    drop(clients);
    writeln!(to, "quit")?;
    let status = child.wait()?;
    if !status.success() {
        return Err(other(format!("scale server exited with {status}")));
    }
    let per = |x: u64| x / n as u64;
    Ok(ScaleRow {
        instances: n,
        server_rss: per(server_rss),
        client_rss: per(after.rss.saturating_sub(before.rss)),
        segment: per(segments),
        server_fds: server_fds as f64 / n as f64,
        client_fds: after.fds.saturating_sub(before.fds) as f64 / n as f64,
        open_ms,
    })
}

/// In a process started by [`run`] as a round's server: serves the round
/// and exits; elsewhere returns at once. Called by
/// [`run_if_peer`](crate::run_if_peer).
pub fn run_if_server() {
    let Ok(spec) = std::env::var(SERVER_ENV) else {
        return;
    };
    let code = match serve(&spec) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shmpipe bench scale server: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn serve(spec: &str) -> io::Result<()> {
    raise_descriptor_limit();
    let (n, name) = spec
        .split_once(';')
        .and_then(|(n, name)| Some((n.parse::<usize>().ok()?, name)))
        .ok_or_else(|| other(format!("bad spec {spec:?}")))?;
    let before = look();
    let opts = ServerOptions::new();
    let servers: Arc<Vec<NamedPipeServer>> = Arc::new(
        (0..n)
            .map(|_| opts.create(name))
            .collect::<io::Result<_>>()?,
    );
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    // The client opens the instances in creation order and calls them in
    // that order: worker `w` serves instances w, w + WORKERS, ...
    const WORKERS: usize = 4;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let servers = Arc::clone(&servers);
            std::thread::spawn(move || -> io::Result<()> {
                let mut buf = [0u8; 64];
                for s in servers.iter().skip(w).step_by(WORKERS) {
                    s.connect()?;
                    let r = s.recv_msg(&mut buf)?;
                    s.send_msg(&buf[..r.len])?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| other("a worker panicked".into()))??;
    }
    let mut input = BufReader::new(io::stdin().lock());
    let mut line = String::new();
    input.read_line(&mut line)?;
    if line.trim() != "report" {
        return Err(other(format!("expected report, got {line:?}")));
    }
    let after = look();
    writeln!(
        out,
        "costs {} {} {}",
        after.rss.saturating_sub(before.rss),
        after.fds.saturating_sub(before.fds),
        committed()
    )?;
    out.flush()?;
    line.clear();
    input.read_line(&mut line)?;
    drop(servers);
    Ok(())
}

impl ScaleReport {
    /// The report as the table `shmpipe bench` prints.
    ///
    /// ```
    /// use shmpipe_benches::scale::{ScaleReport, ScaleRow};
    /// let row = ScaleRow {
    ///     instances: 100,
    ///     server_rss: 20_000,
    ///     client_rss: 12_000,
    ///     segment: 139_264,
    ///     server_fds: 2.0,
    ///     client_fds: 2.0,
    ///     open_ms: 9.5,
    /// };
    /// let table = ScaleReport { rows: vec![row] }.table();
    /// assert!(table.contains("100"));
    /// ```
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let kib = |b: u64| format!("{:.1}", b as f64 / 1024.0);
        let mut out = String::from(
            "Per connected named-pipe instance (all open at once, one call each; server in another process)\n\
             instances   server RSS KiB   client RSS KiB   segment KiB   server fds   client fds   open all, ms\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:>9} {:>16} {:>16} {:>13} {:>12.2} {:>12.2} {:>14.1}",
                r.instances,
                kib(r.server_rss),
                kib(r.client_rss),
                kib(r.segment),
                r.server_fds,
                r.client_fds,
                r.open_ms
            );
        }
        out.push_str(
            "RSS: growth of VmRSS per instance (segment pages each process touched included; the\n\
             1-instance row also carries what a process makes once: the name's threads and socket).\n\
             segment: shared memory committed per connection (memfd pages), counted once for both.\n\
             fds: descriptors per instance: an end and its process slot on each side.\n",
        );
        out
    }
}
