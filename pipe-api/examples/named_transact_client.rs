//! The Windows "Transactions on Named Pipes" client sample, on shmpipe:
//! opens the pipe (waiting while every instance is busy), switches to
//! message-read mode and sends the request and receives the reply in one
//! `transact`; a reply longer than the buffer (Windows' `ERROR_MORE_DATA`,
//! here `complete == false`) is read to its end with further reads.
//!
//! ```text
//! cargo run -p shmpipe --example named_transact_client -- [--name NAME] [MESSAGE]
//! ```
//!
//! Start `named_server_multithreaded` first.

use shmpipe::named::{wait_available, ClientOptions, NamedPipeClient, WaitTimeout};
use shmpipe::{Error, ErrorKind, ReadMode};
use std::io;
use std::time::Duration;

/// The pipe the samples use unless told otherwise.
pub const DEFAULT_NAME: &str = r"\\.\pipe\mynamedpipe";
/// The reply buffer of the Windows sample.
pub const BUFSIZE: usize = 512;

fn open_waiting(name: &str) -> io::Result<NamedPipeClient> {
    loop {
        match ClientOptions::new().open(name) {
            Ok(pipe) => return Ok(pipe),
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::PipeBusy) => {
                wait_available(name, WaitTimeout::Duration(Duration::from_secs(20)))?
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends `request` with `transact` on a new connection and returns the
/// whole reply.
pub fn transact_once(name: &str, request: &[u8]) -> io::Result<Vec<u8>> {
    let pipe = open_waiting(name)?;
    // transact needs message-read mode (BadPipe otherwise).
    pipe.set_read_mode(ReadMode::Message)?;
    let mut buf = [0u8; BUFSIZE];
    let mut m = pipe.transact(request, &mut buf)?;
    let mut reply = buf[..m.len].to_vec();
    while !m.complete {
        m = pipe.recv_msg(&mut buf)?;
        reply.extend_from_slice(&buf[..m.len]);
    }
    Ok(reply)
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
    let reply = transact_once(&name, message.as_bytes())?;
    println!("Server replied: {}", String::from_utf8_lossy(&reply));
    Ok(())
}
