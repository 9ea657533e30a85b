//! The Windows sample "Named Pipe Server Using Overlapped I/O", on
//! shmpipe's tokio ends: one thread (a current-thread runtime) serves
//! [`INSTANCES`] instances of a message pipe. Each instance runs the
//! sample's state machine (`CONNECTING_STATE`, `READING_STATE`,
//! `WRITING_STATE`): wait for a client, read a request, write the answer,
//! read the next request; when the client leaves, disconnect and listen
//! again (the sample's `DisconnectAndReconnect`). Where the sample waits
//! on an array of events, the runtime polls one future per instance.
//!
//! ```text
//! cargo run -p shmpipe --features tokio --example async_overlapped_server -- [NAME]
//! ```
//!
//! Try it with the `named_client` example.

use shmpipe::named::ServerOptions;
use shmpipe::tokio::NamedPipeServer;
use shmpipe::{PipeType, ReadMode};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Instances served at once (the sample's `INSTANCES` is 4).
pub const INSTANCES: u32 = 64;
/// Buffer sizes of the sample: both quotas and the request buffer.
pub const BUFSIZE: usize = 512;

/// The sample's `GetAnswerToRequest`: its fixed answer, plus the request,
/// so that a client can tell its own answer.
pub fn answer(request: &[u8]) -> Vec<u8> {
    let mut a = b"Default answer from server: ".to_vec();
    a.extend_from_slice(request);
    a
}

/// The pipe: message type and read mode, `INSTANCES` instances at most.
pub fn options() -> ServerOptions {
    let mut o = ServerOptions::new();
    o.pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .max_instances(INSTANCES)
        .quotas(BUFSIZE as u32, BUFSIZE as u32);
    o
}

/// One instance's state (the sample's `dwState`).
enum State {
    Connecting,
    Reading,
    Writing(Vec<u8>),
}

/// What a run counted, shared by the instances.
#[derive(Debug, Default)]
pub struct Counts {
    /// Client connections that ended (each followed by a disconnect).
    pub sessions: AtomicUsize,
    /// Requests answered.
    pub answered: AtomicUsize,
    /// Notified (one permit) whenever a connection ends.
    pub ended: tokio::sync::Notify,
}

/// Runs one instance's state machine until the runtime drops it.
async fn instance(server: NamedPipeServer, counts: Arc<Counts>) -> io::Result<()> {
    let mut state = State::Connecting;
    let mut request = vec![0u8; BUFSIZE];
    loop {
        state = match state {
            State::Connecting => {
                // `Connected::Already` (the sample's ERROR_PIPE_CONNECTED)
                // and `New` both mean: go read.
                server.connect().await?;
                State::Reading
            }
            State::Reading => match server.recv_msg(&mut request).await {
                Ok(m) => State::Writing(answer(&request[..m.len])),
                Err(_) => disconnect_and_reconnect(&server, &counts)?,
            },
            State::Writing(reply) => match server.send_msg(&reply).await {
                Ok(_) => {
                    counts.answered.fetch_add(1, Ordering::Relaxed);
                    State::Reading
                }
                Err(_) => disconnect_and_reconnect(&server, &counts)?,
            },
        }
    }
}

/// The sample's `DisconnectAndReconnect`: the client left (or failed);
/// cut it off and listen again.
fn disconnect_and_reconnect(server: &NamedPipeServer, counts: &Counts) -> io::Result<State> {
    server.disconnect()?;
    counts.sessions.fetch_add(1, Ordering::Relaxed);
    counts.ended.notify_one();
    Ok(State::Connecting)
}

/// Creates the instances of `name` and runs them on the current runtime
/// until the returned tasks are dropped; `counts` tells what they did.
pub fn start(name: &str, counts: &Arc<Counts>) -> io::Result<tokio::task::JoinSet<io::Result<()>>> {
    let opts = options();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..INSTANCES {
        let server = NamedPipeServer::create(&opts, name)?;
        tasks.spawn(instance(server, Arc::clone(counts)));
    }
    Ok(tasks)
}

fn main() -> io::Result<()> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"\\.\pipe\mynamedpipe".to_owned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let counts = Arc::new(Counts::default());
        let mut tasks = start(&name, &counts)?;
        println!("serving {name} with {INSTANCES} instances on one thread");
        while let Some(r) = tasks.join_next().await {
            r.map_err(io::Error::other)??;
        }
        Ok(())
    })
}
