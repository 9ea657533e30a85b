//! `shmpipe bench`: every transport measured in one run, printed as one
//! table (and small ones for connection set-up and for noticing a killed
//! peer), optionally saved as JSON and drawn as SVG charts.
//!
//! The measurements themselves (transports, peer process, suite, charts)
//! live in the `shmpipe-benches` library, shared with the criterion benches;
//! this module only parses options, shows progress and formats the results.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use shmpipe_benches::asyncio::{self, AsyncKind, AsyncReport};
use shmpipe_benches::connect::ConnectReport;
use shmpipe_benches::liveness::{self, Case, KillReport};
use shmpipe_benches::remote::{self, RemoteReport};
use shmpipe_benches::scale::{self, ScaleReport};
use shmpipe_benches::suite::{self, Config, Mode, Report, TransportReport, OFFSETS, SIZES};
use shmpipe_benches::transport::human_bytes;
use shmpipe_benches::zero_copy::{self, ZeroCopyRow};
use shmpipe_benches::{plot, Kind, Options, Policy, Target};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// Options of `shmpipe bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Measure for about three minutes instead of under one
    #[arg(long)]
    full: bool,
    /// Also write the raw results to FILE as JSON
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also draw latency and throughput charts into FILE (SVG)
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Let the scheduler place the two processes (no CPU pinning)
    #[arg(long)]
    no_pin: bool,
    /// Buffering per direction for every transport, in KiB (a power of two)
    #[arg(long, value_name = "KIB", default_value_t = 1024)]
    buffer_kib: usize,
    /// Only these transports (comma-separated; default: all); `connect`
    /// stands for the connection set-up measurement, `kill` for how fast a
    /// blocked pipe end notices that its peer process was killed, `scale`
    /// for the memory and descriptors of each connected instance (part of
    /// --full), `zero-copy` for the pipes' zero-copy API against their copy
    /// API, `async` for the tokio rows, `remote` for the rows of --remote
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    only: Vec<String>,
    /// Also measure a named pipe reached through a gateway on loopback,
    /// next to a bare quinn stream and TCP + rustls (needs root)
    #[arg(long)]
    remote: bool,
    /// A few iterations of every measurement: checks that everything works,
    /// measures nothing (for tests)
    #[arg(long, hide = true, conflicts_with = "full")]
    smoke: bool,
}

/// The `--only` name of the connection set-up measurement.
const CONNECT: &str = "connect";
/// The `--only` name of the killed-peer measurement.
const KILL: &str = "kill";
/// The `--only` name of the per-instance cost measurement (part of `--full`).
const SCALE: &str = "scale";
/// The `--only` name of the zero-copy measurement.
const ZERO_COPY: &str = shmpipe_benches::zero_copy::ROLE;
/// The `--only` name of the async rows.
const ASYNC: &str = "async";
/// The `--only` name of the remote rows (also `--remote`).
const REMOTE: &str = remote::ROLE;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn config(args: &BenchArgs) -> io::Result<Config> {
    let mode = if args.smoke {
        Mode::Smoke
    } else if args.full {
        Mode::Full
    } else {
        Mode::Quick
    };
    let kib = args.buffer_kib;
    if !kib.is_power_of_two() || !(4..=64 * 1024).contains(&kib) {
        return Err(invalid(format!(
            "--buffer-kib must be a power of two from 4 to 65536, not {kib}"
        )));
    }
    let asyncio = args.only.is_empty() || args.only.iter().any(|n| n.trim() == ASYNC);
    let (kinds, connect) = if args.only.is_empty() {
        (Kind::ALL.to_vec(), true)
    } else {
        let mut kinds = Vec::new();
        let mut connect = false;
        for name in &args.only {
            let name = name.trim();
            if name == CONNECT {
                connect = true;
                continue;
            }
            if [KILL, SCALE, ZERO_COPY, ASYNC, REMOTE].contains(&name) {
                continue; // see `wants_kill`, `wants_scale`, `wants`
            }
            let k = Kind::from_name(name).ok_or_else(|| {
                let mut all: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                all.push(CONNECT);
                all.push(KILL);
                all.push(SCALE);
                all.push(ZERO_COPY);
                all.push(ASYNC);
                all.push(REMOTE);
                invalid(format!(
                    "unknown transport {name:?} (known: {})",
                    all.join(", ")
                ))
            })?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        // Table order, whatever the command line said.
        let kinds = Kind::ALL
            .into_iter()
            .filter(|k| kinds.contains(k))
            .collect();
        (kinds, connect)
    };
    Ok(Config {
        mode,
        pin: !args.no_pin,
        transport: Options {
            capacity: kib << 10,
        },
        kinds,
        connect,
        asyncio,
    })
}

/// Whether the killed-peer measurement runs (it is not part of the suite's
/// `Config`).
fn wants_kill(args: &BenchArgs) -> bool {
    wants(args, KILL)
}

/// Whether the measurement `--only` calls `name` runs.
fn wants(args: &BenchArgs, name: &str) -> bool {
    args.only.is_empty() || args.only.iter().any(|n| n.trim() == name)
}

/// Whether the remote rows run: only when asked for, never by default.
fn wants_remote(args: &BenchArgs) -> bool {
    args.remote || args.only.iter().any(|n| n.trim() == REMOTE)
}

/// Whether the per-instance cost measurement runs: in `--full`, or named.
fn wants_scale(args: &BenchArgs) -> bool {
    (args.full && args.only.is_empty()) || args.only.iter().any(|n| n.trim() == SCALE)
}

/// What `--json` writes: the suite's report with the killed-peer and
/// per-instance results beside it.
#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    report: &'a Report,
    kill: Option<&'a KillReport>,
    scale: Option<&'a ScaleReport>,
    zero_copy: Option<&'a [ZeroCopyRow]>,
    remote: Option<&'a RemoteReport>,
}

/// Runs `shmpipe bench`.
pub fn run(args: &BenchArgs) -> io::Result<()> {
    let config = config(args)?;
    let kill = wants_kill(args);
    // Fail before measuring, not after, if the results cannot be saved.
    let create = |path: &PathBuf| {
        File::create(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    };
    let json = match &args.json {
        Some(path) => Some((create(path)?, path)),
        None => None,
    };
    let svg = match &args.plot {
        Some(path) => Some((create(path)?, path)),
        None => None,
    };
    let steps = config.steps();
    let bar = ProgressBar::new((steps + usize::from(kill)) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed:>4} {msg}")
            .expect("valid template"),
    );
    let report = suite::run(&config, &mut |i, label| {
        bar.set_position(i as u64);
        bar.set_message(label.to_owned());
    })
    .and_then(|mut report| {
        if !kill {
            return Ok((report, None));
        }
        // After the suite, which pinned this thread: the blocked calls run
        // on the benchmark's CPU, the peers on theirs.
        bar.set_position(steps as u64);
        let started = std::time::Instant::now();
        let (warmup, n) = liveness::repetitions(config.mode);
        let k = liveness::run(warmup, n, report.placement.child_cpu, &mut |i, total| {
            bar.set_message(format!("kill: SIGKILL the peer, {i}/{total}"))
        })?;
        // The whole run's wall time.
        report.seconds += started.elapsed().as_secs_f64();
        Ok((report, Some(k)))
    });
    let report = report.and_then(|(mut report, kill)| {
        if !wants(args, ZERO_COPY) {
            return Ok((report, kill, None));
        }
        let started = std::time::Instant::now();
        let rows = zero_copy::run(config.mode, report.placement.child_cpu, &mut |_, label| {
            bar.set_message(label.to_owned())
        })?;
        report.seconds += started.elapsed().as_secs_f64();
        Ok((report, kill, Some(rows)))
    });
    let report = report.and_then(|(mut report, kill, zc)| {
        if !wants_remote(args) {
            return Ok((report, kill, zc, None));
        }
        let started = std::time::Instant::now();
        let r = remote::run(config.mode, &mut |label| bar.set_message(label.to_owned()))
            .map_err(|e| io::Error::new(e.kind(), format!("remote rows: {e}")))?;
        report.seconds += started.elapsed().as_secs_f64();
        Ok((report, kill, zc, Some(r)))
    });
    bar.finish_and_clear();
    let (report, kill, zc, remote_rows) = report?;
    let scale = if wants_scale(args) {
        Some(scale::run()?)
    } else {
        None
    };
    print!("{}", render(&report, kill.as_ref()));
    if let Some(rows) = &zc {
        print!("{}", zero_copy::render(rows));
    }
    if let Some(r) = &remote_rows {
        print!("{}", remote::render(r));
    }
    if let Some(s) = &scale {
        print!("\n{}", s.table());
    }
    if let Some((file, path)) = json {
        let mut w = BufWriter::new(file);
        let doc = JsonReport {
            report: &report,
            kill: kill.as_ref(),
            scale: scale.as_ref(),
            zero_copy: zc.as_deref(),
            remote: remote_rows.as_ref(),
        };
        serde_json::to_writer_pretty(&mut w, &doc)
            .map_err(io::Error::from)
            .and_then(|()| w.write_all(b"\n"))
            .and_then(|()| w.flush())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    if let Some((mut file, path)) = svg {
        plot::svg(&report)
            .and_then(|doc| file.write_all(doc.as_bytes()))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

fn micros(ns: u64) -> String {
    let us = ns as f64 / 1000.0;
    if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

fn rtt_cell(t: &TransportReport, policy: Policy) -> String {
    match t.rtt(policy) {
        Some(r) => format!(
            "{} / {} / {}",
            micros(r.latency.p50_ns),
            micros(r.latency.p99_ns),
            micros(r.latency.p999_ns)
        ),
        None => "-".into(),
    }
}

fn slice_waits_cell(t: &TransportReport) -> String {
    t.slice_waits()
        .map_or_else(|| "-".into(), |w| format!("{} / {}", w.bench, w.peer))
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(String::new, |x| format!(" ({x:.2}x)"))
}

fn stream_cell(t: &TransportReport, size: usize, offset: usize) -> String {
    match t.stream(size, offset) {
        None => "-".into(),
        Some(r) if size == 64 => {
            format!("{:.2} M{}", r.msgs_per_s / 1e6, ratio(r.ratio_to_pipe))
        }
        Some(r) => match r.ratio_to_aligned {
            Some(a) => format!("{:.2}{} {a:.2}a", r.gb_per_s, ratio(r.ratio_to_pipe)),
            None => format!("{:.2}{}", r.gb_per_s, ratio(r.ratio_to_pipe)),
        },
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The machine description, the table and its legend.
fn render(report: &Report, kill: Option<&KillReport>) -> String {
    let m = &report.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "shmpipe bench ({:?} mode, {:.0} s): two processes, every transport in the same run",
        report.mode, report.seconds
    );
    let _ = writeln!(out, "cpu:      {}", m.cpu_model);
    let _ = writeln!(
        out,
        "machine:  {} CPUs online, {} usable; kernel {}; hypervisor: {}; clock: {} ({} ns per read); load {}",
        m.cpus_online,
        m.cpus_allowed,
        m.kernel,
        yes_no(m.hypervisor),
        m.clocksource,
        report.timer_overhead_ns,
        m.load_average
    );
    let p = &report.placement;
    let placement = match (p.parent_cpu, p.child_cpu) {
        (Some(a), Some(b)) => format!(" (benchmark on CPU {a}, peers on CPU {b})"),
        _ => String::new(),
    };
    let _ = writeln!(out, "pinned:   {}{placement}", yes_no(p.pinned));
    if report.transports.is_empty() {
        if let Some(c) = &report.connect {
            out.push('\n');
            render_connect(&mut out, c);
        }
        if let Some(a) = &report.asyncio {
            out.push('\n');
            render_async(&mut out, a);
        }
        if let Some(k) = kill {
            out.push('\n');
            render_kill(&mut out, k);
        }
        return out;
    }
    let buffers: Vec<String> = report
        .transports
        .iter()
        .map(|t| format!("{}: {}", t.name, t.buffers))
        .collect();
    let _ = writeln!(
        out,
        "buffers:  {} requested per direction; {}",
        human_bytes(report.capacity),
        buffers.join("; ")
    );
    out.push('\n');

    let mut rows: Vec<Vec<String>> = vec![
        vec![
            "transport".into(),
            "RTT spin, us".into(),
            "RTT default, us".into(),
            "64 B msg/s".into(),
        ],
        vec![
            String::new(),
            "p50 / p99 / p99.9".into(),
            "p50 / p99 / p99.9".into(),
            String::new(),
        ],
    ];
    for &size in &SIZES[1..] {
        rows[0].push(format!("{} GB/s", human_bytes(size)));
        rows[1].push(String::new());
    }
    rows[0].push("slice waits".into());
    rows[1].push("bench / peer".into());
    for t in &report.transports {
        for offset in OFFSETS {
            if offset != 0 && t.stream.is_empty() {
                continue;
            }
            let mut row = if offset == 0 {
                vec![
                    t.name.to_owned(),
                    rtt_cell(t, Policy::Spin),
                    rtt_cell(t, Policy::Default),
                ]
            } else {
                vec![
                    format!("  +{offset} B buffers"),
                    String::new(),
                    String::new(),
                ]
            };
            for size in SIZES {
                row.push(stream_cell(t, size, offset));
            }
            row.push(if offset == 0 {
                slice_waits_cell(t)
            } else {
                String::new()
            });
            rows.push(row);
        }
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[c]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if i == 1 {
            let total = widths.iter().sum::<usize>() + 2 * (cols - 1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    out.push('\n');
    let _ = write!(
        out,
        "Rows: floor = cache-line ping-pong; engine-spsc, engine = shmpipe's engine (lock-free\n\
         ring; channel Sender/Receiver), the internal API under the pipes; anon, named-byte,\n\
         named-msg = shmpipe's pipes as applications use them (anonymous pipes; a named pipe in\n\
         byte mode; in message mode, one pipe message per benchmark message); then the kernel's.\n\
         RTT: a 64 B message to the peer process and back (floor: one 8-byte word each way).\n\
         spin: both sides spin; default: the engine's WaitPolicy::default() for this machine\n\
         ({}), and plain blocking system calls for the kernel transports.\n\
         Throughput: one way, every message checked by the receiver, median of timed batches,\n\
         default wait policy; (Nx) = ratio to the kernel pipe in this run. +16 B buffers: both\n\
         user buffers start 16 bytes past a 64-byte boundary; Na = ratio to aligned: median over\n\
         rounds of two 1 ms batches, aligned and +16 B, run back to back.\n\
         slice waits: hand-offs that slept a whole park slice although what they waited for had\n\
         arrived (a lost wake-up), in the benchmark / peer process, over the default-policy round\n\
         trips and every throughput run; should be 0 (a few can come from scheduling on a machine\n\
         with more runnable threads than CPUs, see docs/performance.md).\n",
        report.default_wait
    );
    if let Some(c) = &report.connect {
        out.push('\n');
        render_connect(&mut out, c);
    }
    if let Some(a) = &report.asyncio {
        out.push('\n');
        render_async(&mut out, a);
    }
    if let Some(k) = kill {
        out.push('\n');
        render_kill(&mut out, k);
    }
    out
}

/// The connection set-up section.
fn render_connect(out: &mut String, c: &ConnectReport) {
    let _ = writeln!(
        out,
        "Connect + first 64 B round trip, us ({} connections each; server in the peer process)",
        c.repetitions
    );
    let _ = writeln!(
        out,
        "{:<14}  {:>7}  {:>7}  {:>7}",
        "", "p50", "p99", "p99.9"
    );
    for t in Target::ALL {
        let s = c.summary(t);
        let _ = writeln!(
            out,
            "{:<14}  {:>7}  {:>7}  {:>7}",
            t.name(),
            micros(s.p50_ns),
            micros(s.p99_ns),
            micros(s.p999_ns)
        );
    }
    let _ = writeln!(
        out,
        "{:<14}  {:>7}  {:>7}",
        "named / unix",
        format!("{:.2}x", c.ratio_p50),
        format!("{:.2}x", c.ratio_p99)
    );
    for t in Target::ALL {
        let _ = writeln!(out, "{}: {}", t.name(), t.describe());
    }
    let _ = writeln!(out, "named-pipe wait policy: {}", c.wait);
}

/// The async section.
fn render_async(out: &mut String, a: &AsyncReport) {
    let _ = writeln!(
        out,
        "Async (tokio): 64 B round trip, us, and one-way 64 B messages/s; x = ratio to tokio-unix-stream"
    );
    let head = [
        "",
        "p50",
        "p99",
        "p99.9",
        "64 B msg/s",
        "RTT p50 x",
        "RTT p99 x",
        "msg/s x",
    ];
    let line = |c: [&str; 8]| {
        format!(
            "{:<17}  {:>7}  {:>7}  {:>7}  {:>10}  {:>9}  {:>9}  {:>7}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
        )
    };
    let _ = writeln!(out, "{}", line(head));
    let x = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}x"));
    for r in &a.rows {
        let cells = [
            r.name.to_owned(),
            micros(r.rtt.p50_ns),
            micros(r.rtt.p99_ns),
            micros(r.rtt.p999_ns),
            format!("{:.2} M", r.msgs_per_s / 1e6),
            x(r.rtt_p50_to_unix),
            x(r.rtt_p99_to_unix),
            x(r.msgs_to_unix),
        ];
        let _ = writeln!(out, "{}", line(cells.each_ref().map(String::as_str)));
    }
    for k in AsyncKind::ALL {
        let _ = writeln!(out, "{}: {}", k.name(), k.describe());
    }
    let _ = writeln!(
        out,
        "Targets for the shmpipe rows: RTT p50 <= {:.2}x, msg/s >= {:.0}x. Runtime: {}.",
        asyncio::RTT_TARGET,
        asyncio::MSGS_TARGET,
        a.runtime
    );
}

/// The killed-peer section.
fn render_kill(out: &mut String, k: &KillReport) {
    let _ = writeln!(
        out,
        "Killed peer noticed: SIGKILL returned -> blocked call returned, us ({} kills each)",
        k.repetitions
    );
    let target = format!("<= {} ms", k.target_ms);
    let _ = writeln!(
        out,
        "{:<16}  {:>7}  {:>7}  {:>7}  {:>8}  {:>16}  {:>7}  {:>7}",
        "", "p50", "p99", "max", target, "vs kernel", "p50", "p99"
    );
    for c in &k.cases {
        let s = &c.latency;
        let (vs, p50, p99) = if c.kernel == c.case {
            (String::new(), String::new(), String::new())
        } else {
            (
                c.kernel.name().to_owned(),
                format!("{:.2}x", c.ratio_p50),
                format!("{:.2}x", c.ratio_p99),
            )
        };
        let _ = writeln!(
            out,
            "{:<16}  {:>7}  {:>7}  {:>7}  {:>8}  {:>16}  {:>7}  {:>7}",
            c.case.name(),
            micros(s.p50_ns),
            micros(s.p99_ns),
            micros(s.max_ns),
            format!("{}/{}", c.within_target, s.samples),
            vs,
            p50,
            p99
        );
    }
    for c in Case::ALL {
        let _ = writeln!(out, "{}: {}", c.name(), c.describe());
    }
    let _ = writeln!(
        out,
        "The other end is held by a peer process alone, killed 0.5-5.5 ms (random) after the\n\
         call blocked. anon ends: default wait policy ({}); async: current-thread tokio runtime.",
        k.wait
    );
}
