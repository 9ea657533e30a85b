//! `shmpipe list` and `shmpipe info`: what [`shmpipe::named::list`] and
//! [`shmpipe::named::status`] report, as a table or a description.

use crate::fail::{full_name, Context, Failure};
use clap::Args;
use shmpipe::named::{self, Direction, InstanceState, PipeStatus, UNLIMITED_INSTANCES};
use shmpipe::{PipeType, ReadMode, WaitMode};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

/// Options of `shmpipe list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Refresh every second, until interrupted (Ctrl-C)
    #[arg(long)]
    watch: bool,
}

/// Options of `shmpipe info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The pipe: `\\.\pipe\NAME`, or just NAME
    name: String,
}

fn pipe_type(t: PipeType) -> &'static str {
    match t {
        PipeType::Byte => "byte",
        PipeType::Message => "message",
    }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
        Direction::Duplex => "duplex",
    }
}

fn max_instances(n: u32) -> String {
    if n == UNLIMITED_INSTANCES {
        "unlimited".to_owned()
    } else {
        n.to_string()
    }
}

fn state(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Listening => "listening",
        InstanceState::Connected => "connected",
        InstanceState::ClientGone => "client-gone",
        InstanceState::Disconnected => "disconnected",
        _ => "?",
    }
}

/// The table of `shmpipe list`: one row per pipe, the name last (names can
/// be long and hold spaces).
pub fn table(pipes: &[PipeStatus]) -> String {
    let rows: Vec<[String; 7]> = pipes
        .iter()
        .map(|p| {
            let clients = p.client_pids();
            [
                p.server_pid.to_string(),
                pipe_type(p.pipe_type).to_owned(),
                direction(p.direction).to_owned(),
                format!(
                    "{}/{}/{}",
                    p.listening,
                    p.connected,
                    max_instances(p.max_instances)
                ),
                if clients.is_empty() {
                    "-".to_owned()
                } else {
                    clients
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                },
                format!("{}/{}", p.queued_out(), p.queued_in()),
                p.name.clone(),
            ]
        })
        .collect();
    let header = [
        "SERVER",
        "TYPE",
        "DIRECTION",
        "LISTEN/CONN/MAX",
        "CLIENTS",
        "QUEUED OUT/IN",
        "NAME",
    ];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        line(&r.each_ref().map(String::as_str));
    }
    out
}

/// The description of `shmpipe info`.
pub fn describe(p: &PipeStatus) -> String {
    let mut o = String::new();
    let timeout = if p.default_timeout == Duration::ZERO {
        "0 (50 ms)".to_owned()
    } else {
        format!("{} ms", p.default_timeout.as_millis())
    };
    let _ = writeln!(o, "name:             {}", p.name);
    let _ = writeln!(
        o,
        "type:             {}, {}",
        pipe_type(p.pipe_type),
        direction(p.direction)
    );
    let _ = writeln!(o, "max instances:    {}", max_instances(p.max_instances));
    let _ = writeln!(o, "default timeout:  {timeout}");
    let _ = writeln!(o, "server pid:       {}", p.server_pid);
    let _ = writeln!(o, "owner uid:        {}", p.owner_uid);
    let _ = writeln!(
        o,
        "instances:        {} ({} listening, {} connected, {} client-gone, {} disconnected, {} server-gone)",
        p.current_instances(),
        p.listening,
        p.connected,
        p.client_gone,
        p.disconnected,
        p.server_gone
    );
    let _ = writeln!(
        o,
        "queued:           {} bytes out, {} bytes in",
        p.queued_out(),
        p.queued_in()
    );
    if p.instances.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "\n{:>4}  {:<12}  {:<9}  {:<11}  {:>8}  {:>12}  {:>12}",
        "#", "STATE", "READ MODE", "WAIT MODE", "CLIENT", "QUEUED OUT", "QUEUED IN"
    );
    for (k, i) in p.instances.iter().enumerate() {
        let read = match i.read_mode {
            ReadMode::Byte => "byte",
            ReadMode::Message => "message",
        };
        let wait = match i.wait_mode {
            WaitMode::Blocking => "blocking",
            WaitMode::Nonblocking => "nonblocking",
        };
        let client = i.client_pid.map_or("-".to_owned(), |p| p.to_string());
        let _ = writeln!(
            o,
            "{k:>4}  {:<12}  {read:<9}  {wait:<11}  {client:>8}  {:>12}  {:>12}",
            state(i.state),
            i.queued_out,
            i.queued_in
        );
    }
    let shown = p.instances.len() as u64;
    let total = u64::from(p.current_instances()) - u64::from(p.server_gone);
    if shown < total {
        let _ = writeln!(o, "(the first {shown} of {total} instances)");
    }
    o
}

/// Writes `text` to standard output; `false` when nobody reads it any more.
fn print(text: &str) -> Result<bool, Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure::new("cannot write standard output", e)),
    }
}

/// `shmpipe list`.
pub fn list(args: &ListArgs) -> Result<(), Failure> {
    loop {
        let pipes = named::list().what(|| "cannot list named pipes".to_owned())?;
        let mut text = String::new();
        if args.watch {
            // Home and clear: the new table replaces the old one.
            text.push_str("\x1b[H\x1b[2J");
            let _ = writeln!(
                text,
                "{} named pipe(s), refreshed every second (Ctrl-C to stop)\n",
                pipes.len()
            );
        }
        text.push_str(&table(&pipes));
        if !print(&text)? || !args.watch {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `shmpipe info`.
pub fn info(args: &InfoArgs) -> Result<(), Failure> {
    let name = full_name(&args.name);
    let status = named::status(&name).what(|| format!("no information on {name}"))?;
    print(&describe(&status))?;
    Ok(())
}
