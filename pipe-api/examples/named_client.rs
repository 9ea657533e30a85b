//! The Windows "Named Pipe Client" sample, on shmpipe: opens the pipe
//! (waiting up to 20 seconds when every instance is busy), switches the end
//! to message-read mode, writes one request and reads the reply, a buffer at
//! a time, until the whole message is in.
//!
//! ```text
//! cargo run -p shmpipe --example named_client -- [--name NAME] [MESSAGE]
//! ```
//!
//! Start `named_server_multithreaded` first.

use shmpipe::named::{wait_available, ClientOptions, NamedPipeClient, WaitTimeout};
use shmpipe::{Error, ErrorKind, ReadMode};
use std::io;
use std::time::Duration;

/// The pipe the samples use unless told otherwise.
pub const DEFAULT_NAME: &str = r"\\.\pipe\mynamedpipe";
/// The read buffer of the Windows sample.
pub const BUFSIZE: usize = 512;
/// How long to wait for a busy pipe.
pub const BUSY_WAIT: Duration = Duration::from_secs(20);

/// Opens `name`, waiting for a free instance while all are busy.
pub fn open_waiting(name: &str) -> io::Result<NamedPipeClient> {
    loop {
        match ClientOptions::new().open(name) {
            Ok(pipe) => return Ok(pipe),
            // Every instance is busy: wait for one, then try again (another
            // client may still be faster).
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::PipeBusy) => {
                wait_available(name, WaitTimeout::Duration(BUSY_WAIT))?
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends `request` on a new connection and returns the whole reply.
pub fn exchange(name: &str, request: &[u8]) -> io::Result<Vec<u8>> {
    let pipe = open_waiting(name)?;
    // The client end starts in byte-read mode whatever the server uses.
    pipe.set_read_mode(ReadMode::Message)?;
    pipe.send_msg(request)?;
    let mut reply = Vec::new();
    let mut buf = [0u8; BUFSIZE];
    loop {
        let m = pipe.recv_msg(&mut buf)?;
        reply.extend_from_slice(&buf[..m.len]);
        if m.complete {
            return Ok(reply);
        }
    }
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
    let reply = exchange(&name, message.as_bytes())?;
    println!("Server replied: {}", String::from_utf8_lossy(&reply));
    Ok(())
}
