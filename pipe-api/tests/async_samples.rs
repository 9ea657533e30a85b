//! The ported Windows samples (`examples/async_overlapped_server.rs`,
//! `examples/async_completion_server.rs`): each, on one current-thread
//! runtime, serves 64 clients at once and then 64 more. Every request is
//! answered with its own answer, and since a server has at most 64
//! instances, the second round can only be served by instances reused
//! after a disconnect (each connection's end is counted by the server).

mod common;

#[allow(dead_code)]
#[path = "../examples/async_completion_server.rs"]
mod completion;
#[allow(dead_code)]
#[path = "../examples/async_overlapped_server.rs"]
mod overlapped;

use common::named::unique_name;
use common::HANG;
use shmpipe::named::{wait_available, ClientOptions, NamedPipeClient, WaitTimeout};
use shmpipe::{Error, ErrorKind, ReadMode};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

const CLIENTS: usize = 64;
const ROUNDS: usize = 2;
const REQUESTS: usize = 5;

/// Opens `name`, waiting for a free instance as the Windows client sample
/// does (`WaitNamedPipe` on ERROR_PIPE_BUSY).
fn open(name: &str) -> NamedPipeClient {
    loop {
        match ClientOptions::new().open(name) {
            Ok(c) => return c,
            Err(e) if Error::kind_of(&e) == Some(ErrorKind::PipeBusy) => {
                match wait_available(name, WaitTimeout::Forever) {
                    Ok(()) => {}
                    Err(e) if Error::kind_of(&e) == Some(ErrorKind::PipeBusy) => {}
                    Err(e) => panic!("wait_available: {e:?}"),
                }
            }
            Err(e) => panic!("open: {e:?}"),
        }
    }
}

/// One round: `CLIENTS` clients at once, each with `REQUESTS` requests.
fn round(name: &str, round: usize, answer: fn(&[u8]) -> Vec<u8>) {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let name = name.to_owned();
            std::thread::spawn(move || {
                let c = open(&name);
                c.set_read_mode(ReadMode::Message).unwrap();
                for r in 0..REQUESTS {
                    let request = format!("round {round} client {i} request {r}");
                    c.send_msg(request.as_bytes()).unwrap();
                    let mut buf = [0u8; 512];
                    let got = c.recv_msg(&mut buf).unwrap();
                    assert!(got.complete);
                    assert_eq!(&buf[..got.len], &answer(request.as_bytes())[..]);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

/// Runs the server `serve` on a current-thread runtime in a thread; it
/// calls its argument once it listens and returns once `sessions()` says
/// every connection ended. Rounds of clients run against it meanwhile.
fn against<S>(name: &str, answer: fn(&[u8]) -> Vec<u8>, serve: S)
where
    S: FnOnce(mpsc::Sender<()>) + Send + 'static,
{
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = std::thread::spawn(move || serve(ready_tx));
    ready_rx.recv_timeout(HANG).expect("server listening");
    for r in 0..ROUNDS {
        round(name, r, answer);
    }
    server.join().unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn overlapped_sample_serves_two_rounds_of_64_clients_on_one_thread() {
    let name = unique_name("sample-overlapped");
    let server_name = name.clone();
    against(&name, overlapped::answer, move |ready| {
        runtime().block_on(async {
            let counts = Arc::new(overlapped::Counts::default());
            let tasks = overlapped::start(&server_name, &counts).unwrap();
            ready.send(()).unwrap();
            let all = tokio::time::timeout(HANG * 3, async {
                while counts.sessions.load(Ordering::Relaxed) < CLIENTS * ROUNDS {
                    counts.ended.notified().await;
                }
            });
            all.await.expect("every connection ended");
            assert_eq!(counts.sessions.load(Ordering::Relaxed), CLIENTS * ROUNDS);
            assert_eq!(
                counts.answered.load(Ordering::Relaxed),
                CLIENTS * ROUNDS * REQUESTS
            );
            drop(tasks);
        });
    });
}

#[test]
fn completion_sample_serves_two_rounds_of_64_clients_on_one_thread() {
    let name = unique_name("sample-completion");
    let server_name = name.clone();
    against(&name, completion::answer, move |ready| {
        runtime().block_on(async {
            let counts = Arc::new(completion::Counts::default());
            let server = tokio::spawn(completion::run(
                server_name,
                Arc::clone(&counts),
                move || {
                    ready.send(()).unwrap();
                },
            ));
            let all = tokio::time::timeout(HANG * 3, async {
                while counts.sessions.load(Ordering::Relaxed) < CLIENTS * ROUNDS {
                    counts.ended.notified().await;
                }
            });
            all.await.expect("every connection ended");
            assert_eq!(
                counts.answered.load(Ordering::Relaxed),
                CLIENTS * ROUNDS * REQUESTS
            );
            assert!(
                !server.is_finished(),
                "the server stopped: {:?}",
                server.await
            );
        });
    });
}
