//! The connect path: requests served on the name's thread, segments made
//! ahead of the client, and what that must not change: a client that
//! closes right after `open` is seen gone, a reused instance hands each
//! client a segment of its own, a prepared segment never reaches a child
//! process, and a connection that never sends its request delays nobody.

mod common;

use common::named::{assert_kind, child_done, env, hear, say, unique_name, Kid, Pending};
use shmpipe::named::{ClientOptions, Connected, NamedPipeClient, NamedPipeServer, ServerOptions};
use shmpipe::{ErrorKind, WaitPolicy};
use std::time::{Duration, Instant};

const NAME_ENV: &str = "SHMPIPE_TEST_CONNECT_NAME";

/// Between `fork` and `exec`, a child holds a copy of every descriptor of
/// this process, the client ends of concurrently running tests included: a
/// client closed in that window stays open until the `exec`, and its server
/// rightly sees it connected. So the tests that start processes
/// ([`forking`]) never run while one that closes a client in this process
/// and expects it gone at once ([`closing`]) does.
static FORKS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn forking() -> std::sync::RwLockReadGuard<'static, ()> {
    FORKS.read().unwrap_or_else(|e| e.into_inner())
}

fn closing() -> std::sync::RwLockWriteGuard<'static, ()> {
    FORKS.write().unwrap_or_else(|e| e.into_inner())
}

/// Up and down once, with a tag that tells connections apart.
#[track_caller]
fn exchange(server: &NamedPipeServer, client: &NamedPipeClient, tag: &str) {
    let mut buf = [0u8; 64];
    client.send_msg(tag.as_bytes()).unwrap();
    let n = server.recv_msg(&mut buf).unwrap().len;
    assert_eq!(&buf[..n], tag.as_bytes(), "{tag}: client to server");
    server.send_msg(&buf[..n]).unwrap();
    let n = client.recv_msg(&mut buf).unwrap().len;
    assert_eq!(&buf[..n], tag.as_bytes(), "{tag}: server to client");
}

fn child_open_and_close() {
    let name = env(NAME_ENV);
    while let Some(cmd) = hear() {
        assert_eq!(cmd, "go");
        // Closed as soon as `open` returns.
        drop(ClientOptions::new().open(&name).unwrap());
        say("closed");
    }
    child_done();
}

/// `open` returns only once the server let go of its copy of the client's
/// descriptor: a client process that closes right after it is gone for the
/// server, every time, with nothing to wait for.
fn client_in_another_process_closing_at_once_is_seen_gone() {
    let _forks = forking();
    let name = unique_name("fast-close");
    let server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    let mut kid = Kid::spawn("child_open_and_close", &[(NAME_ENV, name.clone())]);
    for round in 0..30 {
        kid.tell("go");
        kid.expect("closed");
        assert_kind(server.connect(), ErrorKind::NoData, "client already left");
        server.disconnect().unwrap();
        let mut buf = [0u8; 4];
        assert_kind(
            server.recv_msg(&mut buf),
            ErrorKind::PipeNotConnected,
            "cut",
        );
        server.set_nonblocking(true).unwrap();
        assert_kind(server.connect(), ErrorKind::PipeListening, "re-armed");
        server.set_nonblocking(false).unwrap();
        let _ = round;
    }
    kid.finish();
}

/// The same within one process, the client on another thread than the
/// server's `connect`.
fn client_thread_closing_at_once_is_seen_gone() {
    let _alone = closing();
    let name = unique_name("fast-close-thread");
    let server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    for _ in 0..50 {
        let n = name.clone();
        std::thread::spawn(move || drop(ClientOptions::new().open(&n).unwrap()))
            .join()
            .unwrap();
        assert_kind(server.connect(), ErrorKind::NoData, "client already left");
        server.disconnect().unwrap();
        server.set_nonblocking(true).unwrap();
        assert_kind(server.connect(), ErrorKind::PipeListening, "re-armed");
        server.set_nonblocking(false).unwrap();
    }
}

/// An instance reused many times gives each client a segment of its own:
/// an orphaned client end never sees the next client's data, and the data
/// of each connection arrives whole.
fn reused_instance_hands_out_a_fresh_segment_each_time() {
    let name = unique_name("reuse");
    let mut server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    server.set_wait_policy(WaitPolicy::park());
    let mut orphans: Vec<NamedPipeClient> = Vec::new();
    for round in 0..40 {
        let client = ClientOptions::new().open(&name).unwrap();
        assert_eq!(server.connect().unwrap(), Connected::Already);
        exchange(&server, &client, &format!("round {round}"));
        server.send_msg(b"left behind").unwrap();
        server.disconnect().unwrap();
        let mut buf = [0u8; 16];
        assert_kind(
            client.recv_msg(&mut buf),
            ErrorKind::PipeNotConnected,
            "orphan",
        );
        orphans.push(client);
        server.set_nonblocking(true).unwrap();
        assert_kind(server.connect(), ErrorKind::PipeListening, "re-armed");
        server.set_nonblocking(false).unwrap();
        for (i, o) in orphans.iter().enumerate() {
            assert_kind(
                o.send_msg(b"x"),
                ErrorKind::PipeNotConnected,
                &format!("orphan {i}"),
            );
        }
    }
}

/// Many clients from several threads against a listener: every one is
/// served by an instance of its own, none is turned away.
fn concurrent_clients_each_get_their_own_instance() {
    let name = unique_name("concurrent");
    let mut listener = shmpipe::named::PipeListener::bind(&name, ServerOptions::new()).unwrap();
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let name = name.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let tag = format!("t{t}-{i}");
                    let client = loop {
                        match ClientOptions::new().open(&name) {
                            Ok(c) => break c,
                            Err(e) if common::named::kind(&e) == Some(ErrorKind::PipeBusy) => {
                                shmpipe::named::wait_available(
                                    &name,
                                    shmpipe::named::WaitTimeout::Forever,
                                )
                                .unwrap();
                            }
                            Err(e) => panic!("{tag}: {e}"),
                        }
                    };
                    client.send_msg(tag.as_bytes()).unwrap();
                    let mut buf = [0u8; 16];
                    let n = client.recv_msg(&mut buf).unwrap().len;
                    assert_eq!(&buf[..n], tag.as_bytes());
                }
            })
        })
        .collect();
    for _ in 0..40 {
        let server = listener.accept().unwrap();
        let mut buf = [0u8; 16];
        let n = server.recv_msg(&mut buf).unwrap().len;
        server.send_msg(&buf[..n]).unwrap();
        server.flush_buffers().unwrap();
    }
    for c in clients {
        c.join().unwrap();
    }
}

/// Descriptors of this process whose target is a shmpipe memfd.
fn segment_fds(pid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|t| t.to_string_lossy().contains("memfd:shmpipe"))
        .count()
}

/// Waits until this process's segment preparer (the thread named
/// `shmpipe-prepare`, started by the first `create`) has done every job it
/// was given: it sleeps on its empty job queue.
fn preparer_idle() {
    let start = Instant::now();
    let tid = loop {
        let found = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(Result::ok)
            .find(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim_end() == "shmpipe-prepare")
            });
        if let Some(t) = found {
            break t.file_name().to_str().unwrap().parse().unwrap();
        }
        assert!(start.elapsed() < common::HANG, "no preparer thread");
        std::thread::sleep(Duration::from_millis(1));
    };
    common::wait_until_blocked(tid);
}

/// A child spawned while an instance listens with its next segment ready
/// holds none of that segment's descriptors (they are close-on-exec).
fn prepared_segment_does_not_leak_into_children() {
    let _forks = forking();
    let name = unique_name("no-leak");
    let _server = ServerOptions::new().create(&name).unwrap();
    // The segment is made in the background: wait until it is there.
    let deadline = Instant::now() + Duration::from_secs(20);
    while segment_fds(std::process::id()) == 0 {
        assert!(Instant::now() < deadline, "no segment was ever prepared");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let leaked = segment_fds(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(leaked, 0, "the child holds segment descriptors");
}

/// Operations blocked on a connection (a read, a write pending on the
/// quota, a flush) fail with `PipeNotConnected` when another thread
/// disconnects, and `disconnect` returns; the instance then serves a new
/// client.
fn disconnect_releases_operations_blocked_on_other_threads() {
    let name = unique_name("disconnect-blocked");
    let server = std::sync::Arc::new(
        ServerOptions::new()
            .max_instances(1)
            .quotas(16, 16)
            .create(&name)
            .unwrap(),
    );
    for round in 0..5 {
        let client = ClientOptions::new().open(&name).unwrap();
        server.connect().unwrap();
        let reader = {
            let s = std::sync::Arc::clone(&server);
            Pending::start("read", move || s.recv_msg(&mut [0u8; 8]).map(|m| m.len))
        };
        let writer = {
            let s = std::sync::Arc::clone(&server);
            // Far over the quota: pending until the client reads.
            Pending::start("write", move || s.send_msg(&[1u8; 64]))
        };
        reader.assert_pending("nothing written");
        writer.assert_pending("64 bytes over a 16-byte quota");
        // Started after the write, so it has unread bytes to wait for.
        let flusher = {
            let s = std::sync::Arc::clone(&server);
            Pending::start("flush", move || s.flush_buffers())
        };
        // Waiting for the write to be read, or done if the pending write
        // counts as unwritten: either way, the disconnect comes after.
        flusher.settle();
        server.disconnect().unwrap();
        let r = reader.finish();
        assert_kind(
            r,
            ErrorKind::PipeNotConnected,
            &format!("round {round}: read"),
        );
        let w = writer.finish();
        assert!(
            matches!(&w, Err(e) if common::named::kind(e) == Some(ErrorKind::PipeNotConnected))
                || matches!(w, Ok(64)),
            "round {round}: write {w:?}"
        );
        let f = flusher.finish();
        assert!(
            f.is_ok()
                || common::named::kind(f.as_ref().unwrap_err())
                    == Some(ErrorKind::PipeNotConnected),
            "round {round}: flush {f:?}"
        );
        assert_kind(server.send_msg(b"x"), ErrorKind::PipeNotConnected, "after");
        drop(client);
        server.set_nonblocking(true).unwrap();
        assert_kind(server.connect(), ErrorKind::PipeListening, "re-armed");
        assert_kind(server.send_msg(b"x"), ErrorKind::PipeListening, "listening");
        server.set_nonblocking(false).unwrap();
    }
}

/// A new wait policy does not wait for an operation in progress: a
/// duplicate blocked in a read keeps waiting (and completes when data
/// comes) while the policy changes through another, on both ends, and the
/// server end's policy carries over to its next connection.
fn set_wait_policy_never_waits_for_a_blocked_operation() {
    let name = unique_name("policy");
    let mut server = ServerOptions::new().max_instances(1).create(&name).unwrap();
    let mut client = ClientOptions::new().open(&name).unwrap();
    let blocked = client.try_clone().unwrap();
    let reader = Pending::start("read", move || {
        blocked.recv_msg(&mut [0u8; 8]).map(|m| m.len)
    });
    reader.assert_pending("nothing written");
    // A write through another duplicate while the policy changes.
    let server_reader = {
        let c = client.try_clone().unwrap();
        std::thread::spawn(move || c.send_msg(b"up").map(|_| c))
    };
    // The reader is blocked; these must return anyway.
    common::within("client set_wait_policy", move || {
        client.set_wait_policy(WaitPolicy::park());
        client
    });
    server.set_wait_policy(WaitPolicy::spin_then_park(Duration::from_micros(5)));
    let _client = server_reader.join().unwrap().unwrap();
    assert_eq!(server.recv_msg(&mut [0u8; 8]).unwrap().len, 2);
    server.send_msg(b"down").unwrap();
    assert_eq!(reader.finish().unwrap(), 4);
    // The next connection of the instance.
    server.disconnect().unwrap();
    drop(_client);
    server.set_nonblocking(true).unwrap();
    assert_kind(server.connect(), ErrorKind::PipeListening, "re-armed");
    server.set_nonblocking(false).unwrap();
    let c2 = ClientOptions::new().open(&name).unwrap();
    assert_eq!(server.connect().unwrap(), Connected::Already);
    exchange(&server, &c2, "next connection");
}

fn child_many_listening_instances() {
    let name = env(NAME_ENV);
    let mut o = ServerOptions::new();
    o.max_instances(shmpipe::named::UNLIMITED_INSTANCES)
        .quotas(1 << 20, 1 << 20);
    let pid = std::process::id();
    // Descriptors one prepared segment holds: from the first instance's,
    // once the preparer (at nice 19: slow under load) is done with it.
    let mut servers = vec![o.create(&name).unwrap()];
    preparer_idle();
    let per = segment_fds(pid);
    servers.extend((1..40).map(|_| o.create(&name).unwrap()));
    // Once it is done with all forty, the preparer made all it ever will.
    preparer_idle();
    say(&format!("segments {} per {per}", segment_fds(pid)));
    let _ = hear();
    drop(servers);
    child_done();
}

/// Segments made ahead of clients hold their rings' memory: forty listening
/// instances with 1 MiB quotas must not commit forty connections' worth
/// (at most 16 segments are prepared ahead in a process).
fn listening_instances_do_not_each_hold_a_prepared_segment() {
    let _forks = forking();
    let name = unique_name("many-listening");
    let mut kid = Kid::spawn(
        "child_many_listening_instances",
        &[(NAME_ENV, name.clone())],
    );
    let line = kid.listen();
    let (n, per) = line
        .strip_prefix("segments ")
        .and_then(|rest| rest.split_once(" per "))
        .and_then(|(n, per)| Some((n.parse::<usize>().ok()?, per.parse::<usize>().ok()?)))
        .unwrap_or_else(|| panic!("child said {line:?}"));
    println!("segment descriptors: {n}, {per} per prepared segment");
    assert!(per > 0, "nothing was prepared ahead");
    assert!(
        n <= 16 * per,
        "{n} segment descriptors ({per} each) for 40 listening instances"
    );
    // And every instance still serves clients (those without a prepared
    // segment make one when the client comes).
    let clients: Vec<NamedPipeClient> = (0..40)
        .map(|_| ClientOptions::new().open(&name).unwrap())
        .collect();
    assert_kind(
        ClientOptions::new().open(&name),
        ErrorKind::PipeBusy,
        "all forty taken",
    );
    drop(clients);
    kid.finish();
}

common::main! {
    tests: [
        client_in_another_process_closing_at_once_is_seen_gone,
        client_thread_closing_at_once_is_seen_gone,
        reused_instance_hands_out_a_fresh_segment_each_time,
        concurrent_clients_each_get_their_own_instance,
        prepared_segment_does_not_leak_into_children,
        disconnect_releases_operations_blocked_on_other_threads,
        set_wait_policy_never_waits_for_a_blocked_operation,
        listening_instances_do_not_each_hold_a_prepared_segment,
    ],
    children: [
        child_open_and_close,
        child_many_listening_instances,
    ],
}
