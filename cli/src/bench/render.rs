//! The text tables `shmpipe bench` prints: the suite's transports with
//! their ratios to the kernel pipe, connection set-up, the async rows and
//! the killed-peer measurement (the zero-copy, scale and remote sections
//! render themselves in `shmpipe_benches`).

use shmpipe_benches::asyncio::{self, AsyncKind, AsyncReport};
use shmpipe_benches::connect::ConnectReport;
use shmpipe_benches::liveness::{Case, KillReport};
use shmpipe_benches::suite::{Report, TransportReport, OFFSETS, SIZES};
use shmpipe_benches::transport::human_bytes;
use shmpipe_benches::{Policy, Target};
use std::fmt::Write as _;

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
pub(super) fn render(report: &Report, kill: Option<&KillReport>) -> String {
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
