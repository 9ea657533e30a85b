//! The Windows "Multithreaded Pipe Server" sample, on shmpipe: the main
//! thread creates an instance of a message pipe, waits for a client to
//! attach, creates the next instance and hands the connected one to a
//! thread of its own. Each instance thread reads requests (whole messages, however
//! small its buffer), answers each with the request in upper case, and when
//! its client closes, flushes, disconnects and ends.
//!
//! ```text
//! cargo run -p shmpipe --example named_server_multithreaded -- [--name NAME] [--clients N]
//! ```
//!
//! The server stops accepting after `N` clients (unlimited by default), or
//! when a client sends the request `quit`; it then waits for the instance
//! threads and exits. Try it with the `named_client`, `named_transact_client`
//! and `named_call_client` examples.

use shmpipe::named::{NamedPipeServer, ServerOptions, UNLIMITED_INSTANCES};
use shmpipe::{Error, ErrorKind, PipeType, ReadMode, WaitMode};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The pipe the samples use unless told otherwise.
pub const DEFAULT_NAME: &str = r"\\.\pipe\mynamedpipe";
/// Buffer sizes of the Windows sample: both quotas and the read buffer.
pub const BUFSIZE: usize = 512;
/// The request that stops the server.
pub const QUIT: &[u8] = b"quit";

/// How often the accepting thread looks at the stop flag while no client
/// comes (its `connect` is nonblocking so that a `quit` can end it).
const POLL: Duration = Duration::from_millis(20);

/// The answer to a request.
pub fn reply_for(request: &[u8]) -> Vec<u8> {
    request.to_ascii_uppercase()
}

/// What a server run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Clients that attached.
    pub clients: usize,
    /// Requests answered.
    pub requests: usize,
}

struct Shared {
    stop: AtomicBool,
    requests: AtomicUsize,
}

fn kind(e: &io::Error) -> Option<ErrorKind> {
    Error::kind_of(e)
}

/// Serves `name` until `max_clients` clients attached (forever if `None`)
/// or a client asked to quit; `ready` runs once the first instance
/// listens. Returns when every instance thread has ended.
pub fn serve(name: &str, max_clients: Option<usize>, ready: impl FnOnce()) -> io::Result<Summary> {
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        requests: AtomicUsize::new(0),
    });
    let create = || {
        ServerOptions::new()
            .pipe_type(PipeType::Message)
            .read_mode(ReadMode::Message)
            .wait_mode(WaitMode::Nonblocking)
            .max_instances(UNLIMITED_INSTANCES)
            .quotas(BUFSIZE as u32, BUFSIZE as u32)
            .create(name)
    };
    let mut threads = Vec::new();
    let mut clients = 0;
    let mut listening = Some(create()?);
    ready();
    while let Some(pipe) = listening.take() {
        if !wait_for_client(&pipe, &shared.stop)? {
            break;
        }
        clients += 1;
        // The next instance listens before this one is handed over: if the
        // client were served and gone first, the name would vanish for a
        // moment and a client opening then would get FileNotFound.
        let more = max_clients.is_none_or(|max| clients < max);
        if more && !shared.stop.load(Ordering::SeqCst) {
            listening = Some(create()?);
        }
        pipe.set_state(None, Some(WaitMode::Blocking))?;
        let shared = Arc::clone(&shared);
        threads.push(std::thread::spawn(move || instance_thread(pipe, &shared)));
    }
    for t in threads {
        t.join().expect("instance thread panicked")?;
    }
    Ok(Summary {
        clients,
        requests: shared.requests.load(Ordering::SeqCst),
    })
}

/// Waits for a client on a fresh nonblocking instance; `false` if told to
/// stop first.
fn wait_for_client(pipe: &NamedPipeServer, stop: &AtomicBool) -> io::Result<bool> {
    loop {
        match pipe.connect() {
            // Already attached (Windows' ERROR_PIPE_CONNECTED) is a success.
            Ok(_) => return Ok(true),
            Err(e) if kind(&e) == Some(ErrorKind::PipeListening) => {
                if stop.load(Ordering::SeqCst) {
                    return Ok(false);
                }
                std::thread::sleep(POLL);
            }
            // A client attached and left before we looked: it is owed
            // nothing, so serve it like any other (its reads end at once).
            Err(e) if kind(&e) == Some(ErrorKind::NoData) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// Answers the requests of one client, then cuts the instance loose.
fn instance_thread(pipe: NamedPipeServer, shared: &Shared) -> io::Result<()> {
    let mut buf = [0u8; BUFSIZE];
    loop {
        let mut request = Vec::new();
        // A request longer than the buffer arrives in pieces (MoreData).
        loop {
            match pipe.recv_msg(&mut buf) {
                Ok(m) => {
                    request.extend_from_slice(&buf[..m.len]);
                    if m.complete {
                        break;
                    }
                }
                Err(e) if kind(&e) == Some(ErrorKind::BrokenPipe) => {
                    return finish(&pipe);
                }
                Err(e) => return Err(e),
            }
        }
        shared.requests.fetch_add(1, Ordering::SeqCst);
        if request == QUIT {
            shared.stop.store(true, Ordering::SeqCst);
        }
        match pipe.send_msg(&reply_for(&request)) {
            Ok(_) => {}
            // The client left without reading all of the reply (a `call`
            // with a short buffer does that): nothing more to do for it.
            Err(e) if matches!(kind(&e), Some(ErrorKind::BrokenPipe | ErrorKind::NoData)) => {
                return finish(&pipe);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Lets the client read everything, then disconnects (the Windows sample's
/// FlushFileBuffers + DisconnectNamedPipe).
fn finish(pipe: &NamedPipeServer) -> io::Result<()> {
    match pipe.flush_buffers() {
        Ok(()) => {}
        // The client left without reading all of its replies: there is
        // nobody left to wait for (the flush says so, as it must not claim
        // they were read).
        Err(e) if kind(&e) == Some(ErrorKind::BrokenPipe) => {}
        Err(e) => return Err(e),
    }
    pipe.disconnect()
}

fn main() -> io::Result<()> {
    let mut name = DEFAULT_NAME.to_owned();
    let mut clients = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--name", Some(v)) => name = v,
            ("--clients", Some(v)) => {
                clients = Some(v.parse().map_err(|_| io::Error::other("bad --clients"))?)
            }
            _ => {
                eprintln!("usage: named_server_multithreaded [--name NAME] [--clients N]");
                std::process::exit(2);
            }
        }
    }
    let summary = serve(&name, clients, || {
        println!("Pipe server awaiting clients on {name}")
    })?;
    println!(
        "Served {} clients, {} requests",
        summary.clients, summary.requests
    );
    Ok(())
}
