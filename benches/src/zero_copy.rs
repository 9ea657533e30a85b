//! Zero copy against the copy API of the pipes (`shmpipe bench --only
//! zero-copy`): GB/s of the same work moved through the same pipe, once
//! with `write` / `recv_msg` (a copy into the ring and a copy out of it) and
//! once with `write_with` / `read_with` or `send_msg_with` /
//! `recv_msg_with` (no copy), in batches that alternate between the two in
//! one run (as the suite's aligned and offset runs do: the machine's drift
//! falls on both alike), at 64 KiB and 1 MiB.
//!
//! # The work
//!
//! The benchmark process is the sender, a peer process (role [`ROLE`] of
//! the peer protocol) the receiver, on the pipe given to it: an anonymous
//! pipe (`anon`) or a message-type named pipe in message read mode
//! (`named-msg`), quota 1 MiB, so every message is one zero-copy slice.
//!
//! * Producing a message: writing every byte (one byte value per message,
//!   `fill`) and the sequence stamps of [`crate::payload`]. The copy API
//!   produces it into a buffer and writes that; zero copy produces it in
//!   the ring.
//! * Consuming one: checking its stamps (every message) and every byte
//!   (the first message of each batch). The copy API reads it into a
//!   buffer and checks there; zero copy checks in the ring.
//!
//! That is the cheapest production and consumption there are: the rows show
//! what the two copies cost. Work that takes longer per byte brings the
//! ratio towards 1; data that already sits in a buffer (the sender copies
//! it into the slice) keeps the receiver's saving only.
//!
//! ```text
//! child:  hello pinned=<0|1>                 (after opening its end)
//! parent: run <size> <zc 0|1> <n>   -> ok     (after n messages, checked)
//! parent: quit
//! ```

use crate::mode::Mode;
use crate::payload;
use crate::peer::protocol::{num, pin, protocol_error, report, Control, Process};
use crate::stats;
use rustix::fd::OwnedFd;
use serde::Serialize;
use shmpipe::named::{ClientOptions, NamedPipeServer, ServerOptions};
use shmpipe::{PipeBuilder, PipeReader, PipeType, PipeWriter, ReadMode};
use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

/// The peer role's name.
pub const ROLE: &str = "zero-copy";
/// Message sizes measured.
pub const SIZES: [usize; 2] = [64 << 10, 1 << 20];
/// The pipes measured, by their suite names.
pub const PIPES: [&str; 2] = ["anon", "named-msg"];
/// The pipes' quota: every measured message is one slice.
const QUOTA: u32 = 1 << 20;

/// One row: a pipe and a size, both APIs.
#[derive(Debug, Clone, Serialize)]
pub struct ZeroCopyRow {
    /// `anon` or `named-msg`.
    pub pipe: &'static str,
    /// Message size in bytes.
    pub size: usize,
    /// Median batch of the copy API, GB/s.
    pub copy_gb_per_s: f64,
    /// Median batch of the zero-copy API, GB/s.
    pub zero_copy_gb_per_s: f64,
    /// `zero_copy_gb_per_s / copy_gb_per_s`.
    pub ratio: f64,
    /// Batches of each API.
    pub batches: usize,
}

/// The sending side of one pipe.
enum Sender {
    Anon(Box<PipeWriter>),
    Named(NamedPipeServer),
}

impl Sender {
    fn send(&self, msg: &mut [u8], zero_copy: bool, seq: u64) -> io::Result<()> {
        let produce = |b: &mut [u8]| {
            b.fill(seq as u8 | 1);
            payload::stamp(b, seq);
        };
        let len = msg.len();
        let n = match (self, zero_copy) {
            (Sender::Anon(w), true) => w.write_with(len, produce).map(|()| len)?,
            (Sender::Named(s), true) => s.send_msg_with(len, produce).map(|()| len)?,
            (Sender::Anon(w), false) => {
                produce(msg);
                w.try_write(msg)?
            }
            (Sender::Named(s), false) => {
                produce(msg);
                s.send_msg(msg)?
            }
        };
        if n != len {
            return Err(io::Error::other(format!("wrote {n} of {len} bytes")));
        }
        Ok(())
    }
}

/// What a consumer found wrong with message `seq` (`full`: every byte).
fn check(m: &[u8], seq: u64, full: bool) -> Option<String> {
    let ok = if full {
        let mut want = vec![seq as u8 | 1; m.len()];
        payload::stamp(&mut want, seq);
        m == &want[..]
    } else {
        payload::stamps_ok(m, seq)
    };
    (!ok).then(|| format!("message {seq} of {} B", m.len()))
}

/// Runs every row, about the mode's stream budget per API and row.
/// `progress(i, label)` is called before each of the [`PIPES`] ×
/// [`SIZES`] rows.
pub fn run(
    mode: Mode,
    cpu: Option<usize>,
    progress: &mut dyn FnMut(usize, &str),
) -> io::Result<Vec<ZeroCopyRow>> {
    let mut rows = Vec::new();
    for pipe in PIPES {
        let (sender, mut peer) = open(pipe, cpu)?;
        for size in SIZES {
            progress(
                rows.len(),
                &format!("zero copy: {pipe}, {} KiB", size >> 10),
            );
            rows.push(measure(&sender, &mut peer, pipe, size, mode)?);
        }
        drop(sender);
        peer.quit()?;
    }
    Ok(rows)
}

fn open(pipe: &str, cpu: Option<usize>) -> io::Result<(Sender, Process)> {
    if pipe == "anon" {
        let (r, w) = PipeBuilder::new().buffer_size(QUOTA).build()?;
        let peer = Process::spawn(ROLE, vec![r.into_fd()], &["anon".into()], cpu)?;
        return Ok((Sender::Anon(Box::new(w)), peer));
    }
    let name = format!(r"\\.\pipe\shmpipe-bench-zc-{}", std::process::id());
    let server = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .quotas(QUOTA, QUOTA)
        .create(&name)?;
    // The peer opens the client before it says hello: connected from then.
    let peer = Process::spawn(ROLE, Vec::new(), &["named".into(), name], cpu)?;
    Ok((Sender::Named(server), peer))
}

/// One batch of `n` messages: from the command to the peer's `ok`.
fn batch(
    sender: &Sender,
    peer: &mut Process,
    buf: &mut [u8],
    zero_copy: bool,
    n: u64,
) -> io::Result<Duration> {
    let start = Instant::now();
    peer.command(&format!("run {} {} {n}", buf.len(), u8::from(zero_copy)))?;
    for seq in 0..n {
        sender
            .send(buf, zero_copy, seq)
            .map_err(|e| peer.link_failed(e))?;
    }
    peer.expect("ok")?;
    Ok(start.elapsed())
}

fn measure(
    sender: &Sender,
    peer: &mut Process,
    pipe: &'static str,
    size: usize,
    mode: Mode,
) -> io::Result<ZeroCopyRow> {
    let mut buf = payload::Buf::new(size, 0);
    let buf = buf.as_mut_slice();
    let budget = match mode {
        Mode::Smoke => Duration::ZERO,
        Mode::Quick => Duration::from_millis(500),
        Mode::Full => Duration::from_secs(2),
    };
    // Batches of about an eighth of the budget, sized on the copy API.
    let mut n = 3u64;
    if mode != Mode::Smoke {
        let target = budget / 8;
        let calibrating = Instant::now();
        n = 1;
        loop {
            let d = batch(sender, peer, buf, false, n)?;
            if d >= target / 4 || calibrating.elapsed() >= budget / 3 {
                n = ((n as f64 * target.as_secs_f64() / d.as_secs_f64().max(1e-9)) as u64).max(1);
                break;
            }
            n *= 4;
        }
    }
    let mut rates = [Vec::new(), Vec::new()];
    let start = Instant::now();
    loop {
        for (i, zero_copy) in [false, true].into_iter().enumerate() {
            let d = batch(sender, peer, buf, zero_copy, n)?;
            rates[i].push(n as f64 * size as f64 / d.as_secs_f64() / 1e9);
        }
        let batches = rates[0].len();
        if mode == Mode::Smoke || (batches >= 3 && start.elapsed() >= 2 * budget) {
            break;
        }
    }
    let batches = rates[0].len();
    let [mut c, mut z] = rates;
    let copy = stats::median(&mut c).expect("a batch ran");
    let zero = stats::median(&mut z).expect("a batch ran");
    Ok(ZeroCopyRow {
        pipe,
        size,
        copy_gb_per_s: copy,
        zero_copy_gb_per_s: zero,
        ratio: zero / copy,
        batches,
    })
}

/// The receiving side of one pipe, in the peer.
enum Receiver {
    Anon(Box<PipeReader>),
    Named(shmpipe::named::NamedPipeClient),
}

impl Receiver {
    /// Receives message `seq` of `buf.len()` bytes; what was wrong with it.
    fn recv(
        &self,
        buf: &mut [u8],
        zero_copy: bool,
        seq: u64,
        full: bool,
    ) -> io::Result<Option<String>> {
        let len = buf.len();
        let short = |got: usize| io::Error::other(format!("a {len} B message came as {got} B"));
        match (self, zero_copy) {
            (Receiver::Named(c), true) => c.recv_msg_with(|m| {
                if m.len() == len {
                    Ok(check(m, seq, full))
                } else {
                    Err(short(m.len()))
                }
            })?,
            (Receiver::Named(c), false) => {
                let m = c.recv_msg(buf)?;
                if !m.complete || m.len != len {
                    return Err(short(m.len));
                }
                Ok(check(buf, seq, full))
            }
            (Receiver::Anon(r), true) => {
                // A write is one record: one slice unless a copying read
                // took part of it (none here).
                let mut bad = Ok(None);
                let got = r.read_with(|m| {
                    bad = if m.len() == len {
                        Ok(check(m, seq, full))
                    } else {
                        Err(short(m.len()))
                    };
                    m.len()
                })?;
                debug_assert!(got <= len);
                bad
            }
            (Receiver::Anon(r), false) => {
                let mut got = 0;
                while got < len {
                    got += r.read_pipe(&mut buf[got..])?;
                }
                Ok(check(buf, seq, full))
            }
        }
    }
}

/// The peer side: opens its end as `args` say (`anon` with the read end in
/// `fds`, or `named <name>`), says hello and runs batches until `quit`.
pub(crate) fn serve(
    ctl: &mut Control,
    fds: Vec<OwnedFd>,
    args: &[String],
    cpu: Option<usize>,
) -> io::Result<()> {
    let pinned = pin(cpu);
    let rx = match (args.first().map(String::as_str), args.get(1)) {
        (Some("anon"), None) => {
            let [fd] = crate::link::take::<1>(fds)?;
            Receiver::Anon(Box::new(PipeReader::from_fd(fd)?))
        }
        (Some("named"), Some(name)) => {
            let c = ClientOptions::new().open(name)?;
            c.set_read_mode(ReadMode::Message)?;
            Receiver::Named(c)
        }
        _ => return Err(protocol_error(format!("bad zero-copy arguments {args:?}"))),
    };
    ctl.send(&format!("hello pinned={}", u8::from(pinned)))?;
    let mut buf = Vec::new();
    while let Some(line) = ctl.recv()? {
        let mut w = line.split_whitespace();
        match w.next() {
            Some("quit") => return Ok(()),
            Some("run") => {
                let size: usize = num(w.next())?;
                let zero_copy = num::<u8>(w.next())? == 1;
                let n: u64 = num(w.next())?;
                buf.resize(size, 0);
                let mut bad = None;
                for seq in 0..n {
                    let b = rx.recv(&mut buf, zero_copy, seq, seq == 0)?;
                    bad = bad.or(b);
                }
                report(ctl, bad)?;
            }
            _ => return Err(protocol_error(format!("unknown command {line:?}"))),
        }
    }
    Ok(())
}

/// The rows as a table, ratios within the run.
pub fn render(rows: &[ZeroCopyRow]) -> String {
    let mut out = String::from(
        "\nzero copy vs copy API (same pipe, same work, alternating batches)\n\
         pipe       size      copy GB/s   zero-copy GB/s   ratio\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<10} {:>5} KiB {:>10.2} {:>16.2} {:>7.2}x",
            r.pipe,
            r.size >> 10,
            r.copy_gb_per_s,
            r.zero_copy_gb_per_s,
            r.ratio
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_catch_a_wrong_stamp_or_byte() {
        let mut m = vec![7u8 | 1; 4096];
        payload::stamp(&mut m, 7);
        assert_eq!(check(&m, 7, true), None);
        assert!(check(&m, 8, false).is_some());
        m[100] ^= 2;
        assert_eq!(check(&m, 7, false), None, "stamps only");
        assert!(check(&m, 7, true).is_some());
    }
}
