//! `shmpipe bench`: every transport measured in one run, printed as one
//! table (and small ones for connection set-up and for noticing a killed
//! peer), optionally saved as JSON and drawn as SVG charts.
//!
//! The measurements themselves (transports, peer process, suite, charts)
//! live in the `shmpipe-benches` library, shared with the criterion benches;
//! this module only parses options, shows progress and formats the results.

mod render;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use shmpipe_benches::liveness::{self, KillReport};
use shmpipe_benches::remote::{self, RemoteReport};
use shmpipe_benches::scale::{self, ScaleReport};
use shmpipe_benches::suite::{self, Config, Mode, Report};
use shmpipe_benches::zero_copy::{self, ZeroCopyRow};
use shmpipe_benches::{plot, Kind, Options};
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
    print!("{}", render::render(&report, kill.as_ref()));
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
