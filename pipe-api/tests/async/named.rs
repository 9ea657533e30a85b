//! Async named pipe ends (`shmpipe::tokio`, spec section 7): async
//! `connect` (pending, immediate, cancelled), a read and a write pending
//! at once on one duplex end, a cancelled `transact`, and futures pending
//! on a client process that is SIGKILLed.

use crate::common;
use crate::support::{bridge_asleep, poll_once, run, serial, spawn_parked};
use common::named::{env, hear, say, unique_name, Kid};
use common::HANG;
use shmpipe::named::{ClientOptions, Connected, ServerOptions};
use shmpipe::tokio::{NamedPipeClient, NamedPipeServer};
use shmpipe::{Error, ErrorKind, PipeType, ReadMode};
use std::future::Future;
use std::task::Poll;
use tokio::io::AsyncReadExt;

const NAME_ENV: &str = "SHMPIPE_ASYNC_NAMED_TEST_NAME";

fn message_opts() -> ServerOptions {
    let mut o = ServerOptions::new();
    o.pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .quotas(4096, 4096);
    o
}

/// SEM-036: an async `connect` on a Listening instance stays pending and
/// completes with success when a client opens.
fn sem_036_async_connect_pends_until_a_client_opens() {
    let _serial = serial();
    run(async {
        let name = unique_name("async-connect");
        let server = NamedPipeServer::create(&ServerOptions::new(), &name).unwrap();
        let mut connect = Box::pin(server.connect());
        assert!(poll_once(&mut connect).await.is_pending());
        let client = NamedPipeClient::open(&ClientOptions::new(), &name).unwrap();
        assert_eq!(connect.await.unwrap(), Connected::New);
        client.send_msg(b"hi").await.unwrap();
        assert_eq!(server.recv_msg(&mut [0; 4]).await.unwrap().len, 2);
    });
}

/// SEM-037: an async `connect` on an instance that already has a client
/// completes at its first poll with PipeConnected (`Connected::Already`).
fn sem_037_async_connect_with_a_client_already_there_completes_at_once() {
    let _serial = serial();
    run(async {
        let name = unique_name("async-connected");
        let server = NamedPipeServer::create(&ServerOptions::new(), &name).unwrap();
        let _client = ClientOptions::new().open(&name).unwrap();
        let mut connect = Box::pin(server.connect());
        match poll_once(&mut connect).await {
            Poll::Ready(Ok(Connected::Already)) => {}
            other => panic!("not completed at once with Already: {other:?}"),
        }
    });
}

/// SEM-038: cancelling a pending `connect` completes it with
/// OperationAborted. In Rust dropping the future is the cancel (there is
/// no completion to deliver: the caller that drops it gets nothing back),
/// so what is checked is its effect on the pipe: the instance stays
/// Listening (Windows' cancelled `ConnectNamedPipe` leaves it so), a
/// client then still opens that very instance (the only one), and the
/// next `connect` reports it as already connected and serves it.
fn sem_038_a_dropped_connect_leaves_the_instance_listening() {
    let _serial = serial();
    run(async {
        let name = unique_name("async-connect-drop");
        let mut opts = ServerOptions::new();
        opts.max_instances(1);
        let server = NamedPipeServer::create(&opts, &name).unwrap();
        let mut connect = Box::pin(server.connect());
        assert!(poll_once(&mut connect).await.is_pending());
        drop(connect);
        let client = NamedPipeClient::open(&ClientOptions::new(), &name).unwrap();
        assert_eq!(server.connect().await.unwrap(), Connected::Already);
        server.send_msg(b"still served").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(client.recv_msg(&mut buf).await.unwrap().len, 12);
    });
}

/// SEM-146: a read and a write pending at once on one duplex end
/// complete independently: the peer's write completes the read while the
/// write still waits for the quota, and the peer's read then completes it.
fn sem_146_a_pending_read_and_write_on_one_end_complete_independently() {
    let _serial = serial();
    run(async {
        let name = unique_name("async-duplex");
        let mut opts = ServerOptions::new();
        opts.quotas(1024, 1024);
        let server = NamedPipeServer::create(&opts, &name).unwrap();
        let client = NamedPipeClient::open(&ClientOptions::new(), &name).unwrap();
        assert_eq!(server.try_write(&[1; 1024]).unwrap(), 1024);
        let mut rbuf = [0u8; 8];
        let mut read = Box::pin(server.recv_msg(&mut rbuf));
        let mut write = Box::pin(server.send_msg(b"second"));
        assert!(poll_once(&mut read).await.is_pending());
        assert!(poll_once(&mut write).await.is_pending());
        client.send_msg(b"in").await.unwrap();
        assert_eq!(read.await.unwrap().len, 2);
        assert!(poll_once(&mut write).await.is_pending());
        let mut got = vec![0u8; 2048];
        assert_eq!(client.recv_msg(&mut got).await.unwrap().len, 1024);
        assert_eq!(write.await.unwrap(), 6);
    });
}

/// Dropping a `transact` that waits for its reply cancels only the read:
/// the request is in the pipe, and the reply goes to the next read.
fn a_dropped_transact_keeps_its_request_in_the_pipe() {
    let _serial = serial();
    run(async {
        let name = unique_name("async-transact");
        let server = NamedPipeServer::create(&message_opts(), &name).unwrap();
        let client = NamedPipeClient::open(&ClientOptions::new(), &name).unwrap();
        client.get_ref().set_read_mode(ReadMode::Message).unwrap();
        let mut reply = [0u8; 16];
        let mut t = Box::pin(client.transact(b"request", &mut reply));
        assert!(poll_once(&mut t).await.is_pending());
        drop(t);
        let mut buf = [0u8; 16];
        let got = server.recv_msg(&mut buf).await.unwrap();
        assert_eq!(&buf[..got.len], b"request");
        server.send_msg(b"reply").await.unwrap();
        let mut buf = [0u8; 16];
        let got = client.recv_msg(&mut buf).await.unwrap();
        assert_eq!(&buf[..got.len], b"reply");
    });
}

/// Disconnecting while an async `connect` of the same instance is pending
/// from another task ends it with PipeNotConnected.
fn disconnect_ends_a_pending_connect() {
    let _serial = serial();
    run(async {
        let name = unique_name("async-connect-cut");
        let server = NamedPipeServer::create(&ServerOptions::new(), &name).unwrap();
        let _c = ClientOptions::new().open(&name).unwrap();
        server.connect().await.unwrap();
        server.disconnect().unwrap();
        let mut connect = Box::pin(server.connect());
        assert!(poll_once(&mut connect).await.is_pending());
        server.disconnect().unwrap();
        let e = connect.await.unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::PipeNotConnected));
    });
}

/// The async `call` waits for a busy name's only instance (on the
/// blocking pool, without stalling the runtime that serves the instance),
/// then gets its answer once the server disconnected the first client and
/// listened again.
fn async_call_waits_for_a_busy_instance_and_gets_its_answer() {
    let _serial = serial();
    run(async {
        let name = unique_name("async-call-busy");
        let mut opts = message_opts();
        opts.max_instances(1);
        let server = NamedPipeServer::create(&opts, &name).unwrap();
        let first = ClientOptions::new().open(&name).unwrap();
        server.connect().await.unwrap();
        let mut reply = [0u8; 16];
        let client_opts = ClientOptions::new();
        let mut call = Box::pin(shmpipe::tokio::call(
            &client_opts,
            &name,
            b"late",
            &mut reply,
            shmpipe::named::WaitTimeout::Forever,
        ));
        assert!(poll_once(&mut call).await.is_pending());
        let serve = async {
            drop(first);
            let e = server.recv_msg(&mut [0; 4]).await.unwrap_err();
            assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe));
            server.disconnect().unwrap();
            server.connect().await.unwrap();
            let mut buf = [0u8; 16];
            let m = server.recv_msg(&mut buf).await.unwrap();
            server
                .send_msg(&buf[..m.len].to_ascii_uppercase())
                .await
                .unwrap();
        };
        let (answer, ()) = tokio::join!(call, serve);
        assert_eq!(&reply[..answer.unwrap().len], b"LATE");
    });
}

/// A `connect` future dropped while pending leaves no clone of its waker
/// behind in the instance (a loop of `timeout(connect)` without clients
/// stays bounded): the waker's count is back to one after the drop. Before
/// the fix the instance kept every dropped future's waker until the next
/// client came.
fn a_dropped_connect_leaves_no_waker_behind() {
    let _serial = serial();
    struct Count;
    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    run(async {
        let name = unique_name("async-connect-drop");
        let server = NamedPipeServer::create(&ServerOptions::new(), &name).unwrap();
        // A hundred tasks' wakers (distinct: no dedup can help).
        let counts: Vec<_> = (0..100).map(|_| std::sync::Arc::new(Count)).collect();
        for count in &counts {
            let waker = std::task::Waker::from(std::sync::Arc::clone(count));
            let mut cx = std::task::Context::from_waker(&waker);
            let mut connect = Box::pin(server.connect());
            assert!(connect.as_mut().poll(&mut cx).is_pending());
            drop(connect);
        }
        let kept = counts
            .iter()
            .filter(|c| std::sync::Arc::strong_count(c) > 1)
            .count();
        assert_eq!(kept, 0, "wakers of dropped connects kept");
        // Still Listening: a client connects and a fresh connect sees it.
        let _client = NamedPipeClient::open(&ClientOptions::new(), &name).unwrap();
        assert_eq!(server.connect().await.unwrap(), Connected::Already);
    });
}

/// `wait_available(Forever)` and `call` on a busy pipe, dropped by a
/// `timeout`: the runtime then shuts down (its drop returns) instead of
/// waiting for the blocking wait, which the drop cancels. Before the fix
/// `drop(runtime)` never returned (the reviewer's wait_hang probe).
fn a_dropped_wait_available_or_call_lets_the_runtime_shut_down() {
    let _serial = serial();
    let name = unique_name("async-wait-drop");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kept = rt.block_on(async {
        let mut o = ServerOptions::new();
        o.max_instances(1)
            .pipe_type(PipeType::Message)
            .read_mode(ReadMode::Message);
        let server = NamedPipeServer::create(&o, &name).unwrap();
        // The only instance is now busy: the waits below wait.
        let client = ClientOptions::new().open(&name).unwrap();
        let short = std::time::Duration::from_millis(100);
        let wait = shmpipe::tokio::wait_available(&name, shmpipe::named::WaitTimeout::Forever);
        assert!(tokio::time::timeout(short, wait).await.is_err());
        let mut reply = [0u8; 8];
        let opts = ClientOptions::new();
        let call = shmpipe::tokio::call(
            &opts,
            &name,
            b"x",
            &mut reply,
            shmpipe::named::WaitTimeout::Forever,
        );
        assert!(tokio::time::timeout(short, call).await.is_err());
        (server, client)
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(HANG).is_ok(),
        "dropping the runtime waited for the cancelled waits"
    );
    drop(kept);
}

/// Child: a client of the parent's pipe that waits to be killed.
fn child_client() {
    let _c = ClientOptions::new().open(&env(NAME_ENV)).unwrap();
    say("open");
    let _ = hear();
    panic!("the parent kills us");
}

/// A read and a flush pending on a client process that is SIGKILLed:
/// both complete with the end of the pipe (`Ok(0)` through `AsyncRead`,
/// `BrokenPipe` for the flush of unread data), noticed through the
/// watcher and the bridge's wait on the announced words, not its fallback
/// slice (the counter stays put).
fn futures_pending_on_a_sigkilled_client_complete() {
    let _serial = serial();
    let fallbacks = shmpipe_engine::readiness::fallback_signals();
    run(async {
        let name = unique_name("async-killed");
        let mut server = NamedPipeServer::create(&ServerOptions::new(), &name).unwrap();
        let mut kid = Kid::spawn("child_client", &[(NAME_ENV, name.clone())]);
        kid.expect("open");
        server.connect().await.unwrap();
        server.try_write(b"unread").unwrap();
        let read = spawn_parked(async move {
            let n = server.read(&mut [0u8; 8]).await;
            (n, server)
        })
        .await;
        bridge_asleep();
        kid.kill();
        let (n, server) = read.await.unwrap();
        assert_eq!(n.unwrap(), 0);
        let e = server.flush_buffers().await.unwrap_err();
        assert_eq!(Error::kind_of(&e), Some(ErrorKind::BrokenPipe), "{e:?}");
    });
    assert_eq!(
        shmpipe_engine::readiness::fallback_signals(),
        fallbacks,
        "the kill was noticed by the bridge's fallback slice"
    );
}

common::tests! {
    tests: [
        sem_036_async_connect_pends_until_a_client_opens,
        sem_037_async_connect_with_a_client_already_there_completes_at_once,
        sem_038_a_dropped_connect_leaves_the_instance_listening,
        sem_146_a_pending_read_and_write_on_one_end_complete_independently,
        a_dropped_transact_keeps_its_request_in_the_pipe,
        disconnect_ends_a_pending_connect,
        async_call_waits_for_a_busy_instance_and_gets_its_answer,
        futures_pending_on_a_sigkilled_client_complete,
        a_dropped_connect_leaves_no_waker_behind,
        a_dropped_wait_available_or_call_lets_the_runtime_shut_down,
    ],
    children: [child_client],
}
