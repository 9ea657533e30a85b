//! Data through the gateway: byte and message modes, transact, call,
//! the async open, wait_available, and a server closing after it wrote.

use crate::common::named::{assert_kind, unique_name};
use crate::common::Pending;
use crate::{ready, remote};
use shmpipe::named::{ClientOptions, ServerOptions, WaitTimeout};
use shmpipe::{ErrorKind, PipeType, ReadMode};
use std::io::{Read, Write};
use std::time::Duration;

/// Bytes both ways through the gateway; the server sees a remote client
/// with the mapped identity.
fn byte_round_trip() {
    if !ready("byte_round_trip") {
        return;
    }
    let name = unique_name("remote-bytes");
    let server = ServerOptions::new().create(&name).unwrap();
    let mut client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    assert!(server.client_is_remote().unwrap());
    let who = server.client_credentials().unwrap();
    assert_eq!((who.uid, who.gid, who.remote), (0, 0, true));
    // Which certificate, as the gateway identified it (a kernel-marked
    // open is the only way to show it).
    let pem = crate::dir().join("a").join("client.pem");
    assert_eq!(
        who.remote_fingerprint,
        Some(shmpipe::remote::fingerprint_of(&pem).unwrap())
    );
    assert_eq!(who.remote_subject.as_deref(), Some("CN=shmpipe client"));
    assert!(!who.groups.contains(&shmpipe::named::REMOTE_MARKER_GID));
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    (&server).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    (&server).write_all(b"PONG").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"PONG");
    // A local client of the same kind of pipe is not remote.
    let local_name = unique_name("remote-bytes-local");
    let local = ServerOptions::new().create(&local_name).unwrap();
    let _c = ClientOptions::new().open(&local_name).unwrap();
    assert!(!local.client_is_remote().unwrap());
}

/// Message boundaries (also of a message longer than one frame), and
/// transact, through the gateway.
fn message_round_trip_and_transact() {
    if !ready("message_round_trip_and_transact") {
        return;
    }
    let name = unique_name("remote-msg");
    let server = ServerOptions::new()
        .pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .quotas(1 << 20, 1 << 20)
        .create(&name)
        .unwrap();
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    assert_eq!(client.info().unwrap().pipe_type, PipeType::Message);
    client.set_read_mode(ReadMode::Message).unwrap();
    let big = crate::common::pattern(200_000, 7);
    client.send_msg(b"first").unwrap();
    client.send_msg(&big).unwrap();
    client.send_msg(b"").unwrap();
    let mut buf = vec![0u8; 300_000];
    let m = server.recv_msg(&mut buf).unwrap();
    assert_eq!((&buf[..m.len], m.complete), (&b"first"[..], true));
    let m = server.recv_msg(&mut buf).unwrap();
    assert!(m.complete);
    assert!(buf[..m.len] == big[..], "the long message arrived whole");
    let m = server.recv_msg(&mut buf).unwrap();
    assert_eq!((m.len, m.complete), (0, true));
    let replier = std::thread::spawn(move || {
        let mut b = [0u8; 16];
        let m = server.recv_msg(&mut b).unwrap();
        assert_eq!(&b[..m.len], b"request");
        server.send_msg(b"reply").unwrap();
        server
    });
    let mut reply = [0u8; 16];
    let m = client.transact(b"request", &mut reply).unwrap();
    assert_eq!((&reply[..m.len], m.complete), (&b"reply"[..], true));
    replier.join().unwrap();
}

/// The tokio layer's open, and the blocking `call`, reach remote names
/// too.
fn async_open_and_call() {
    if !ready("async_open_and_call") {
        return;
    }
    let name = unique_name("remote-async");
    let mut o = ServerOptions::new();
    o.pipe_type(PipeType::Message)
        .read_mode(ReadMode::Message)
        .max_instances(2);
    let first = o.create(&name).unwrap();
    let second = o.create(&name).unwrap();
    let far = remote("gw", &name);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async {
        let c = shmpipe::tokio::NamedPipeClient::open(&ClientOptions::new(), &far).unwrap();
        c.send_msg(b"async").await.unwrap();
        c
    });
    let mut buf = [0u8; 16];
    let m = first.recv_msg(&mut buf).unwrap();
    assert_eq!(&buf[..m.len], b"async");
    first.send_msg(b"back").unwrap();
    rt.block_on(async {
        let m = client.recv_msg(&mut buf).await.unwrap();
        assert_eq!(&buf[..m.len], b"back");
    });
    let replier = std::thread::spawn(move || {
        second.connect().unwrap();
        let mut b = [0u8; 16];
        let m = second.recv_msg(&mut b).unwrap();
        assert_eq!(&b[..m.len], b"question");
        second.send_msg(b"answer").unwrap();
        second
    });
    let m = ClientOptions::new()
        .call(&far, b"question", &mut buf, WaitTimeout::Default)
        .unwrap();
    assert_eq!(&buf[..m.len], b"answer");
    replier.join().unwrap();
}

/// `wait_available` through the gateway: Timeout while the only instance
/// is busy, success once it listens again, FileNotFound for no pipe.
fn wait_available_while_busy() {
    if !ready("wait_available_while_busy") {
        return;
    }
    let name = unique_name("remote-wait");
    let far = remote("gw", &name);
    let server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    let client = ClientOptions::new().open(&far).unwrap();
    assert_kind(
        shmpipe::named::wait_available(&far, WaitTimeout::Duration(Duration::from_millis(200))),
        ErrorKind::Timeout,
        "wait on a busy pipe",
    );
    let far2 = far.clone();
    let wait = Pending::start("remote wait", move || {
        shmpipe::named::wait_available(&far2, WaitTimeout::Forever)
    });
    wait.assert_pending("the only instance is busy");
    drop(client);
    server.disconnect().unwrap();
    let listener = std::thread::spawn(move || server.connect().map(|_| server));
    wait.finish().unwrap();
    // The wait reserved nothing; an open takes the instance.
    let _client = ClientOptions::new().open(&far).unwrap();
    listener.join().unwrap().unwrap();
    assert_kind(
        shmpipe::named::wait_available(&remote("gw", &unique_name("none")), WaitTimeout::Default),
        ErrorKind::FileNotFound,
        "wait for a pipe nobody serves",
    );
}

/// What the server wrote before it closed arrives; then the pipe is
/// broken for the remote client.
fn server_close_after_data() {
    if !ready("server_close_after_data") {
        return;
    }
    let name = unique_name("remote-close");
    let server = ServerOptions::new().create(&name).unwrap();
    let mut client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    (&server).write_all(b"bye").unwrap();
    drop(server);
    let mut got = Vec::new();
    crate::common::within("read to the end", move || {
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
    });
}

/// 100 remote clients at once on one name (100 instances), each a
/// transact through the same gateway connection.
fn hundred_clients_on_one_name() {
    if !ready("hundred_clients_on_one_name") {
        return;
    }
    const N: usize = 100;
    let name = unique_name("remote-many");
    let far = remote("gw", &name);
    let mut o = ServerOptions::new();
    o.pipe_type(PipeType::Message).read_mode(ReadMode::Message);
    let servers: Vec<_> = (0..N)
        .map(|_| {
            let s = o.create(&name).unwrap();
            std::thread::spawn(move || {
                s.connect().unwrap();
                let mut b = [0u8; 64];
                let m = s.recv_msg(&mut b).unwrap();
                s.send_msg(&b[..m.len]).unwrap();
                // Until the client has read the echo and closed.
                let _ = s.recv_msg(&mut b);
            })
        })
        .collect();
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let far = far.clone();
            std::thread::spawn(move || {
                let c = ClientOptions::new().open(&far).unwrap();
                c.set_read_mode(ReadMode::Message).unwrap();
                let req = format!("client {i}");
                let mut b = [0u8; 64];
                let m = c.transact(req.as_bytes(), &mut b).unwrap();
                assert_eq!(&b[..m.len], req.as_bytes());
            })
        })
        .collect();
    crate::common::within("100 remote transacts", move || {
        for t in clients.into_iter().chain(servers) {
            t.join().unwrap();
        }
    });
    // They shared one connection: one per host this process has reached,
    // whichever tests ran before (far fewer than 100).
    let hosts = 10;
    let open = shmpipe::remote::open_connections();
    assert!(
        open <= hosts,
        "{open} QUIC connections for at most {hosts} hosts"
    );
}

/// How many threads of process `pid` wait for a pipe on a remote
/// client's behalf (the gateway names them `shmpipe-gw-as`).
fn gateway_waits(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim_end() == "shmpipe-gw-as")
        .count()
}

fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < crate::common::HANG,
            "{what}: not within {:?}",
            crate::common::HANG
        );
        std::thread::yield_now();
    }
}

/// Dropping an async `wait_available` of a remote pipe (here: aborting its
/// task) ends the gateway's wait too, even one that would wait forever:
/// a wait never outlives its client.
fn dropped_async_wait_ends_the_gateways_wait() {
    if !ready("dropped_async_wait_ends_the_gateways_wait") {
        return;
    }
    let gateway = crate::fixture().waitgw;
    let name = unique_name("remote-wait-drop");
    let _server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    let _busy = ClientOptions::new().open(&name).unwrap();
    let far = remote("waitgw", &name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let task =
        rt.spawn(async move { shmpipe::tokio::wait_available(&far, WaitTimeout::Forever).await });
    until("the gateway waits", || gateway_waits(gateway) == 1);
    task.abort();
    until("the gateway stopped waiting", || {
        gateway_waits(gateway) == 0
    });
}

/// One-way pipes: a write-only remote client of an inbound pipe and a
/// read-only one of an outbound pipe keep their instance as long as they
/// use it (the side with nothing to read must not end it).
fn one_way_pipes() {
    if !ready("one_way_pipes") {
        return;
    }
    use shmpipe::named::Direction;
    let inbound = unique_name("remote-inbound");
    let server = ServerOptions::new()
        .access(Direction::Inbound)
        .create(&inbound)
        .unwrap();
    let mut client = ClientOptions::new()
        .read(false)
        .open(&remote("gw", &inbound))
        .unwrap();
    let mut buf = [0u8; 5];
    for word in [b"first", b"again"] {
        client.write_all(word).unwrap();
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, word);
    }
    let outbound = unique_name("remote-outbound");
    let server = ServerOptions::new()
        .access(Direction::Outbound)
        .create(&outbound)
        .unwrap();
    let mut client = ClientOptions::new()
        .write(false)
        .open(&remote("gw", &outbound))
        .unwrap();
    for word in [b"first", b"again"] {
        (&server).write_all(word).unwrap();
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, word);
    }
}

/// The server's `disconnect` reaches the remote client as it would a
/// local one: `PipeNotConnected`.
fn server_disconnect_is_pipe_not_connected() {
    if !ready("server_disconnect_is_pipe_not_connected") {
        return;
    }
    let name = unique_name("remote-disconnect");
    let server = ServerOptions::new().create(&name).unwrap();
    let client = ClientOptions::new().open(&remote("gw", &name)).unwrap();
    let read = Pending::start("remote read", move || client.recv_msg(&mut [0u8; 8]));
    read.assert_pending("nothing was written");
    server.disconnect().unwrap();
    assert_kind(
        read.finish(),
        ErrorKind::PipeNotConnected,
        "read after disconnect",
    );
}

/// The gateway bridges an instance on its runtime, not on threads of its
/// own: with a remote instance open and data moved both ways, the
/// gateway's process has no bridge thread (`shmpipe-remote-*`).
fn gateway_bridges_without_threads() {
    if !ready("gateway_bridges_without_threads") {
        return;
    }
    let name = unique_name("remote-nothreads");
    let server = ServerOptions::new().create(&name).unwrap();
    let mut client = ClientOptions::new().open(&remote("waitgw", &name)).unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    (&server).read_exact(&mut buf).unwrap();
    (&server).write_all(b"PONG").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"PONG");
    let pid = crate::fixture().waitgw;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let bridges: Vec<String> = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.starts_with("shmpipe-remote"))
        .collect();
    assert!(bridges.is_empty(), "gateway bridge threads: {bridges:?}");
}

crate::common::tests! {
    tests: [gateway_bridges_without_threads, server_disconnect_is_pipe_not_connected, one_way_pipes, dropped_async_wait_ends_the_gateways_wait, hundred_clients_on_one_name, byte_round_trip, message_round_trip_and_transact, async_open_and_call, wait_available_while_busy, server_close_after_data],
    children: [],
}
