//! The async role: the peer process on the far side of one async
//! transport ([`super::AsyncKind`]), on a current-thread tokio runtime of
//! its own. The role's arguments are the transport's name and, for a named
//! pipe, the name to open; its descriptors are its side of the transport.
//!
//! ```text
//! child:  hello pinned=<0|1>               (after rebuilding its side)
//! parent: rtt <first> <n>          -> ready, n echoes on the link, ok | error <why>
//! parent: stream <first> <n>       -> ready, n 64 B messages + 1 ack on the link, ok | error <why>
//! parent: quit                        (child exits 0; so does EOF)
//! ```
//!
//! Each command's messages move in one `block_on` of the whole loop, so
//! the peer, like the parent, is a tokio program awaiting each operation:
//! when one cannot complete, the runtime parks in its I/O driver until the
//! end's descriptor is ready.

use super::ends::{self, End};
use super::AsyncKind;
use crate::payload::{self, Buf};
use crate::peer::protocol::{num, pin, protocol_error, report, Control};
use crate::peer::SMALL;
use rustix::fd::OwnedFd;
use std::io;

/// The peer side of the async role: rebuilds its side of the transport
/// `args[0]` from `fds` (and `args[1]`, a pipe name), pins itself to `cpu`
/// if given, says hello and serves the parent's commands.
pub(crate) fn serve(
    ctl: &mut Control,
    fds: Vec<OwnedFd>,
    args: &[String],
    cpu: Option<usize>,
) -> io::Result<()> {
    let kind = args
        .first()
        .and_then(|n| AsyncKind::from_name(n))
        .ok_or_else(|| protocol_error(format!("bad async role arguments {args:?}")))?;
    // First, as the other roles do: the runtime and the readiness bridge
    // thread the end starts inherit the CPU.
    let pinned = pin(cpu);
    let rt = super::runtime()?;
    let mut end = {
        let _in = rt.enter();
        ends::adopt(kind, fds, args.get(1).map(String::as_str))?
    };
    ctl.send(&format!("hello pinned={}", u8::from(pinned)))?;
    let mut buf = Buf::new(SMALL, 0);
    let mut ack = Buf::new(SMALL, 0);
    while let Some(line) = ctl.recv()? {
        let mut w = line.split_whitespace();
        let cmd = w.next();
        if cmd == Some("quit") {
            return Ok(());
        }
        if !matches!(cmd, Some("rtt" | "stream")) {
            return Err(protocol_error(format!("unknown command {line:?}")));
        }
        let (first, n): (u64, u64) = (num(w.next())?, num(w.next())?);
        let last = first
            .checked_add(n)
            .ok_or_else(|| protocol_error(format!("bad command {line:?}")))?;
        ctl.send("ready")?;
        let bad = if cmd == Some("rtt") {
            rt.block_on(echo(&mut end, &mut buf, first..last))?
        } else {
            let bad = rt.block_on(sink(&mut end, &mut buf, first..last))?;
            payload::stamp(ack.as_mut_slice(), last.wrapping_sub(1));
            rt.block_on(end.send(ack.as_slice()))?;
            bad
        };
        report(ctl, bad)?;
    }
    Ok(())
}

/// Echoes each round trip's message; the first wrong stamp, if any.
async fn echo(
    end: &mut End,
    buf: &mut Buf,
    seqs: std::ops::Range<u64>,
) -> io::Result<Option<String>> {
    let mut bad = None;
    for seq in seqs {
        end.recv(buf.as_mut_slice()).await?;
        let got = payload::first_word(buf.as_slice());
        if got != seq && bad.is_none() {
            bad = Some(format!("round trip {seq} arrived as {got}"));
        }
        end.send(buf.as_slice()).await?;
    }
    Ok(bad)
}

/// Receives a stream's messages, checking the whole pattern of the first
/// and the stamps of every one; the first failure, if any.
async fn sink(
    end: &mut End,
    buf: &mut Buf,
    seqs: std::ops::Range<u64>,
) -> io::Result<Option<String>> {
    let first = seqs.start;
    let mut bad = None;
    for seq in seqs {
        end.recv(buf.as_mut_slice()).await?;
        let m = buf.as_slice();
        let ok = if seq == first {
            payload::full_ok(m, seq)
        } else {
            payload::stamps_ok(m, seq)
        };
        if !ok && bad.is_none() {
            bad = Some(format!(
                "message {seq} arrived corrupted (first word {})",
                payload::first_word(m)
            ));
        }
    }
    Ok(bad)
}
