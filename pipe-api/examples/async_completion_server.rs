//! The Windows sample "Named Pipe Server Using Completion Routines", on
//! shmpipe's tokio ends. The sample keeps one `ConnectNamedPipe` pending
//! at a time; when a client attaches, it starts that instance's chain of
//! completion routines (`CompletedReadRoutine` issues the write,
//! `CompletedWriteRoutine` the next read) and at once makes the next
//! instance to wait for the next client. Here the chain is a task, the
//! routines are the two functions below, and everything runs on one thread
//! (a current-thread runtime, as the sample's alertable waits do). Where
//! the sample closes an instance after its client leaves, this port
//! disconnects it and puts it back in a pool the connecting loop draws
//! from first, so at most [`INSTANCES`] instances exist and each is reused.
//!
//! ```text
//! cargo run -p shmpipe --features tokio --example async_completion_server -- [NAME]
//! ```

use shmpipe::named::ServerOptions;
use shmpipe::tokio::NamedPipeServer;
use shmpipe::{PipeType, ReadMode};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// Instances at most.
pub const INSTANCES: u32 = 64;
/// Buffer sizes of the sample.
pub const BUFSIZE: usize = 512;

/// The answer to a request (the sample's `GetAnswerToRequest`).
pub fn answer(request: &[u8]) -> Vec<u8> {
    let mut a = b"Default answer from server: ".to_vec();
    a.extend_from_slice(request);
    a
}

/// What a run counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// Client connections that ended.
    pub sessions: AtomicUsize,
    /// Requests answered.
    pub answered: AtomicUsize,
    /// Notified (one permit) whenever a connection ends.
    pub ended: tokio::sync::Notify,
}

/// What the next completion routine is.
enum Next {
    Read,
    Write(Vec<u8>),
    Done,
}

/// `CompletedWriteRoutine`: the answer went out (read the next request)
/// or the write failed (end the chain).
fn completed_write_routine(written: io::Result<usize>, counts: &Counts) -> Next {
    match written {
        Ok(_) => {
            counts.answered.fetch_add(1, Ordering::Relaxed);
            Next::Read
        }
        Err(_) => Next::Done,
    }
}

/// `CompletedReadRoutine`: a request came (write its answer) or the client
/// left (end the chain).
fn completed_read_routine(request: io::Result<&[u8]>) -> Next {
    match request {
        Ok(r) => Next::Write(answer(r)),
        Err(_) => Next::Done,
    }
}

/// One connected instance's chain of routines; when it ends, the instance
/// is disconnected (the sample's `DisconnectAndClose`, minus the close)
/// and handed back for reuse.
async fn serve_client(
    server: NamedPipeServer,
    counts: Arc<Counts>,
    free: mpsc::UnboundedSender<NamedPipeServer>,
) {
    let mut buf = vec![0u8; BUFSIZE];
    let mut next = Next::Read;
    loop {
        next = match next {
            Next::Read => {
                let r = server.recv_msg(&mut buf).await.map(|m| m.len);
                completed_read_routine(r.map(|n| &buf[..n]))
            }
            Next::Write(reply) => {
                let w = server.send_msg(&reply).await;
                completed_write_routine(w, &counts)
            }
            Next::Done => break,
        };
    }
    let _ = server.disconnect();
    counts.sessions.fetch_add(1, Ordering::Relaxed);
    counts.ended.notify_one();
    let _ = free.send(server);
}

/// The sample's main loop: one pending connect at a time, on a free
/// instance (reused) or a new one while fewer than `INSTANCES` exist.
/// Runs until dropped; `ready` is called once the first instance exists.
pub async fn run(name: String, counts: Arc<Counts>, ready: impl FnOnce()) -> io::Result<()> {
    let mut opts = ServerOptions::new();
    opts.pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .max_instances(INSTANCES)
        .quotas(BUFSIZE as u32, BUFSIZE as u32);
    let (free_tx, mut free_rx) = mpsc::unbounded_channel();
    // One permit per instance that may still be made.
    let budget = Arc::new(Semaphore::new(INSTANCES as usize));
    let mut ready = Some(ready);
    loop {
        let server = match free_rx.try_recv() {
            Ok(s) => s,
            Err(_) => match Arc::clone(&budget).try_acquire_owned() {
                Ok(permit) => {
                    permit.forget();
                    NamedPipeServer::create(&opts, &name)?
                }
                // Every instance is serving: wait for one to come back.
                Err(_) => free_rx.recv().await.expect("the sender lives in this loop"),
            },
        };
        if let Some(ready) = ready.take() {
            ready();
        }
        server.connect().await?;
        tokio::spawn(serve_client(server, Arc::clone(&counts), free_tx.clone()));
    }
}

fn main() -> io::Result<()> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| r"\\.\pipe\mynamedpipe".to_owned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!("serving {name}, up to {INSTANCES} instances, on one thread");
    rt.block_on(run(name, Arc::new(Counts::default()), || {}))
}
