//! The Windows `CallNamedPipe` client sample, on shmpipe: one call opens
//! the pipe (waiting up to 20 seconds while every instance is busy), switches
//! to message-read mode, sends the request, reads the reply and closes. A
//! reply longer than the buffer comes back truncated and its rest is lost.
//!
//! ```text
//! cargo run -p shmpipe --example named_call_client -- [--name NAME] [MESSAGE]
//! ```
//!
//! Start `named_server_multithreaded` first.

use shmpipe::named::{call, WaitTimeout};
use shmpipe::{Error, ErrorKind};
use std::io;
use std::time::{Duration, Instant};

/// The pipe the samples use unless told otherwise.
pub const DEFAULT_NAME: &str = r"\\.\pipe\mynamedpipe";
/// The reply buffer of the Windows sample.
pub const BUFSIZE: usize = 512;
/// How long to keep trying while every instance is busy.
pub const BUSY_WAIT: Duration = Duration::from_secs(20);

/// A reply, and whether it was cut short by the buffer size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The bytes that fit.
    pub data: Vec<u8>,
    /// The reply was longer than the buffer; the rest is gone.
    pub truncated: bool,
}

/// Calls `name` with `request`, receiving at most `buf_len` reply bytes.
///
/// `call` waits once for a busy pipe and then tries a single open, which
/// another client may win (the wait reserves nothing): then it fails with
/// `PipeBusy`, and this tries again until [`BUSY_WAIT`] has passed.
pub fn call_once(name: &str, request: &[u8], buf_len: usize) -> io::Result<Reply> {
    let deadline = Instant::now() + BUSY_WAIT;
    let mut buf = vec![0u8; buf_len];
    let m = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match call(name, request, &mut buf, WaitTimeout::Duration(left)) {
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::PipeBusy) && !left.is_zero() => {}
            r => break r?,
        }
    };
    buf.truncate(m.len);
    Ok(Reply {
        data: buf,
        truncated: !m.complete,
    })
}

fn main() -> io::Result<()> {
    let mut name = DEFAULT_NAME.to_owned();
    let mut message = "Default message from client.".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--name" => name = args.next().ok_or_else(|| io::Error::other("--name NAME"))?,
            _ => message = arg,
        }
    }
    let reply = call_once(&name, message.as_bytes(), BUFSIZE)?;
    println!(
        "Server replied{}: {}",
        if reply.truncated { " (truncated)" } else { "" },
        String::from_utf8_lossy(&reply.data)
    );
    Ok(())
}
